// Slices of pure computation on a few threads, for a caller that is a Postgres backend (the
// detection pass). A backend is not thread-safe, so the extra threads must run core C++ only: no
// Postgres call, no palloc, no ereport; each touches only its own slice's data. Three rules make
// that safe here:
// * Signals: a new thread inherits its creator's signal mask. The threads are started with every
//   signal blocked (and the caller's mask restored right after), so that Postgres' handlers,
//   which set flags and latches for the process, only ever run in the backend's own thread.
// * Exceptions are caught in the thread that threw (one escaping a thread would terminate the
//   process) and rethrown in the caller once every slice has finished.
// * A thread that cannot be started (out of threads or memory) is no failure: its slice runs in
//   the calling thread.
#pragma once
#include "core/no_postgres.hpp"

#include <algorithm>
#include <csignal>
#include <cstddef>
#include <exception>
#include <pthread.h>
#include <thread>
#include <vector>

namespace thrillmon {

// How many threads to use for `items` items: `configured` (thrillmon.detect_threads), but at most
// one per min_per_thread items (a thread costs tens of microseconds to start; a few items are not
// worth it), and at least one.
inline int
ThreadsFor(std::size_t items, int configured, std::size_t min_per_thread = 64)
{
	const std::size_t by_work = std::max<std::size_t>(1, items / std::max<std::size_t>(1, min_per_thread));
	return static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(std::max(1, configured)), by_work));
}

// Runs f(lo, hi, slice) over [0, n) cut into `slices` contiguous slices (slice i covers
// [n * i / slices, n * (i + 1) / slices)), slice 0 in the calling thread and each other one in a
// thread of its own. Returns once every slice has finished: the number of distinct threads that
// ran a slice (1 when none could be started), or rethrows the first slice's exception.
template <typename F>
int
RunSlices(std::size_t n, int slices, F &&f)
{
	if (slices < 1)
		slices = 1;
	auto lo = [&](int i) {
		return n * static_cast<std::size_t>(i) / static_cast<std::size_t>(slices);
	};
	if (slices == 1) {
		f(lo(0), lo(1), 0);
		return 1;
	}
	std::vector<std::exception_ptr> errors(static_cast<std::size_t>(slices));
	std::vector<std::thread> threads;
	threads.reserve(static_cast<std::size_t>(slices - 1));
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	try {
		for (int i = 1; i < slices; i++)
			threads.emplace_back([&, i] {
				try {
					f(lo(i), lo(i + 1), i);
				} catch (...) {
					errors[static_cast<std::size_t>(i)] = std::current_exception();
				}
			});
	} catch (...) {
		// Not started (std::system_error, bad_alloc): the slices without a thread run below.
	}
	pthread_sigmask(SIG_SETMASK, &old, nullptr);
	const int started = static_cast<int>(threads.size()) + 1;
	for (int i = 0; i < slices; i++) {
		if (i > 0 && i < started)
			continue; // its own thread runs it
		try {
			f(lo(i), lo(i + 1), i);
		} catch (...) {
			errors[static_cast<std::size_t>(i)] = std::current_exception();
		}
	}
	for (std::thread &t : threads)
		t.join();
	for (const std::exception_ptr &e : errors)
		if (e)
			std::rethrow_exception(e);
	return started;
}

} // namespace thrillmon
