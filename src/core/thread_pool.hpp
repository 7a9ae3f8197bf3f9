// Chunks of pure computation on a few threads, for a caller that is a Postgres backend (the
// detection pass). A backend is not thread-safe, so the extra threads must run core C++ only: no
// Postgres call, no palloc, no ereport; each touches only its own chunks' data. Three rules make
// that safe here:
// * Signals: a new thread inherits its creator's signal mask. The threads are started with every
//   signal blocked (and the caller's mask restored right after), so that Postgres' handlers,
//   which set flags and latches for the process, only ever run in the backend's own thread.
// * Exceptions are caught in the thread that threw (one escaping a thread would terminate the
//   process) and rethrown in the caller once every chunk has finished.
// * A thread that cannot be started (out of threads or memory), or comes late, is no failure:
//   the calling thread does its share.
#pragma once
#include "core/no_postgres.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <pthread.h>
#include <thread>
#include <vector>

namespace thrillmon {

// How many threads to use for `items` items: `configured` (thrillmon.detect_threads), but at most
// one per min_per_thread items (waking a helper costs tens of microseconds; a few items are not
// worth it), and at least one.
inline int
ThreadsFor(std::size_t items, int configured, std::size_t min_per_thread = 64)
{
	const std::size_t by_work = std::max<std::size_t>(1, items / std::max<std::size_t>(1, min_per_thread));
	return static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(std::max(1, configured)), by_work));
}

// Helper threads kept for the life of the process, for work shared out in chunks (RunChunks). A
// new thread is slow to start where it matters: on a virtual machine with two CPUs it usually
// runs only once its creator stops (measured: 2.4 ms median, 0.8 ms at best), longer than a
// steady pass's whole scoring, while a waiting thread wakes in under 0.02 ms. The threads are
// made on first use (never in the postmaster, which scores nothing) with every signal blocked,
// and are never joined or destroyed: the object is allocated and left, so no destructor runs at
// exit() while a thread waits on its condition variable (the process ends them).
class HelperThreads {
public:
	static HelperThreads &
	Get()
	{
		static HelperThreads *threads = new HelperThreads();
		return *threads;
	}

	// Starts helpers up to `helpers`, to be waiting by the time work comes (a pass calls it before
	// it reads its points, so a new thread's slow start falls in the read). Returns how many there
	// are.
	int
	Reserve(int helpers)
	{
		std::lock_guard<std::mutex> lock(mu_);
		return StartUpTo(helpers);
	}

	// Runs task(0) in the caller and task(w), w in [1, workers), in each helper that is free
	// before the caller's task(0) returns. A helper that comes later runs nothing, so the task
	// itself must share out the work (RunChunks does). Returns once every task started has
	// returned: the number of threads that ran one (1 when no helper could be started or none
	// came in time), or rethrows the first exception of one.
	int
	Share(int workers, const std::function<void(int)> &task)
	{
		std::lock_guard<std::mutex> one_at_a_time(share_mu_);
		std::vector<std::exception_ptr> errors(static_cast<std::size_t>(std::max(1, workers)));
		{
			std::lock_guard<std::mutex> lock(mu_);
			StartUpTo(workers - 1);
			task_ = &task;
			errors_ = &errors;
			open_ = std::min(workers - 1, started_);
			next_ = 1;
			came_ = 0;
		}
		cv_work_.notify_all();
		try {
			task(0);
		} catch (...) {
			errors[0] = std::current_exception();
		}
		int ran;
		{
			std::unique_lock<std::mutex> lock(mu_);
			open_ = 0; // too late now
			cv_done_.wait(lock, [&] { return busy_ == 0; });
			ran = 1 + came_;
			task_ = nullptr;
			errors_ = nullptr;
		}
		for (const std::exception_ptr &e : errors)
			if (e)
				std::rethrow_exception(e);
		return ran;
	}

private:
	HelperThreads() = default;

	// (Called with mu_ held, as StartOne.) Returns how many helpers there are.
	int
	StartUpTo(int helpers)
	{
		while (started_ < helpers && StartOne())
			started_++;
		return started_;
	}

	// (Called with mu_ held: the new thread waits for it before it looks at anything.)
	bool
	StartOne()
	{
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		bool ok = true;
		try {
			std::thread([this] { Loop(); }).detach();
		} catch (...) {
			ok = false; // out of threads or memory: fewer helpers, the caller does their share
		}
		pthread_sigmask(SIG_SETMASK, &old, nullptr);
		return ok;
	}

	void
	Loop()
	{
		std::unique_lock<std::mutex> lock(mu_);
		for (;;) {
			cv_work_.wait(lock, [&] { return open_ > 0; });
			const int w = next_++;
			open_--;
			busy_++;
			came_++;
			const std::function<void(int)> *task = task_;
			std::vector<std::exception_ptr> *errors = errors_;
			lock.unlock();
			try {
				(*task)(w);
			} catch (...) {
				(*errors)[static_cast<std::size_t>(w)] = std::current_exception();
			}
			lock.lock();
			if (--busy_ == 0)
				cv_done_.notify_all();
		}
	}

	std::mutex share_mu_;
	std::mutex mu_;
	std::condition_variable cv_work_;
	std::condition_variable cv_done_;
	const std::function<void(int)> *task_ = nullptr;
	std::vector<std::exception_ptr> *errors_ = nullptr;
	int started_ = 0; // helpers alive
	int open_ = 0;    // tasks a helper may still take in this round
	int next_ = 1;    // the next one's worker number
	int busy_ = 0;    // helpers running a task
	int came_ = 0;    // helpers that took one in this round
};

// Runs f(lo, hi, worker) over [0, n) in chunks of `chunk` items, taken in order by up to
// `workers` threads as each becomes free: worker 0 is the calling thread, the others helper
// threads (HelperThreads). A worker sees its chunks in increasing order. A helper that comes late
// finds the work done rather than making the caller wait for its share; a worker whose f throws
// takes no more chunks, and the others finish the rest. Returns the number of threads that took
// part (1 when no helper came), once every chunk is done, or rethrows the first
// worker's exception.
template <typename F>
int
RunChunks(std::size_t n, int workers, std::size_t chunk, F &&f)
{
	chunk = std::max<std::size_t>(1, chunk);
	std::atomic<std::size_t> next {0};
	auto take = [&](int worker) {
		for (;;) {
			const std::size_t lo = next.fetch_add(chunk, std::memory_order_relaxed);
			if (lo >= n)
				return;
			f(lo, std::min(n, lo + chunk), worker);
		}
	};
	if (workers <= 1 || n <= chunk) {
		take(0);
		return 1;
	}
	return HelperThreads::Get().Share(workers, take);
}

} // namespace thrillmon
