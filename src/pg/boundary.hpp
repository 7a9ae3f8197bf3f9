// The C++/Postgres error boundary (STYLE.md, "non-negotiable").
//
// Postgres reports errors with ereport(ERROR), a siglongjmp that skips C++ destructors; C++
// reports them with exceptions, which must never unwind through Postgres' C frames. So every
// SQL-callable function runs in three phases: read (Postgres -> plain values), compute (core C++,
// inside RunCore(), which catches everything), write (plain values -> Postgres). Errors cross from
// the compute phase as a PlainError: fixed-size C buffers, no destructor, safe to carry past the
// point where the C++ objects that produced it are gone. Only then is it raised.
//
// Every SQL-callable function is declared with THRILLMON_FUNCTION, whose outer guard turns a C++
// exception that escaped its body (a bug: C++ work belongs in RunCore) into an ERROR instead of
// std::terminate(), which would take the whole cluster through a crash restart.
#pragma once

#include "core/validation.hpp"

#include <cstddef>
#include <exception>
#include <type_traits>

extern "C" {
#include "postgres.h"

#include "fmgr.h"
}

namespace thrillmon::pg {

struct PlainError {
	bool set;
	char sqlstate[6];
	char message[1024];
	char hint[512];
};

// Copies a core validation error into err (truncating, never allocating).
void CopyError(const thrillmon::ValidationError &error, PlainError *err) noexcept;

// Records an unexpected failure (a C++ exception: a bug or out of memory) as SQLSTATE XX000.
void SetInternalError(PlainError *err, const char *what) noexcept;

// Runs fn inside a catch-all. Nothing in fn may call Postgres functions that can ereport.
template <typename Fn>
void
Compute(PlainError *err, Fn &&fn) noexcept
{
	try {
		fn();
	} catch (const std::exception &e) {
		SetInternalError(err, e.what());
	} catch (...) {
		SetInternalError(err, "unknown C++ exception");
	}
}

// ereport(ERROR) if err is set. Call it only from a frame that owns no C++ object.
void RaiseIfSet(const PlainError *err);

// The compute phase, without raising: runs fn (core C++) in the catch-all and returns what went
// wrong. fn returns void, or a MaybeError (a rule broken, reported with its SQLSTATE and hint).
template <typename Fn>
PlainError
TryCore(Fn &&fn) noexcept
{
	PlainError err {};
	Compute(&err, [&] {
		if constexpr (std::is_void_v<std::invoke_result_t<Fn &>>) {
			fn();
		} else {
			if (auto e = fn())
				CopyError(*e, &err);
		}
	});
	return err;
}

// The compute phase: TryCore, then the error raised, once fn's objects are gone. Call it only from
// a frame that owns no C++ object with a destructor (plain values, views and pointers only).
template <typename Fn>
void
RunCore(Fn &&fn)
{
	const PlainError err = TryCore(fn);
	RaiseIfSet(&err);
}

// The outer guard of THRILLMON_FUNCTION (boundary.cpp). An ereport inside body longjmps through
// its frame, which owns nothing.
Datum Guarded(PGFunction body, FunctionCallInfo fcinfo, const char *name);

} // namespace thrillmon::pg

// Declares an SQL-callable function `name` (extern "C", exported, with its V1 info record) whose
// body follows the macro, run inside the outer guard:
//
//   THRILLMON_FUNCTION(thrillmon_record_metric)
//   {
//   	... read, RunCore([&] { ... }), write ...
//   }
#define THRILLMON_FUNCTION(name)                                                                                       \
	extern "C" {                                                                                                       \
	PGDLLEXPORT Datum name(PG_FUNCTION_ARGS);                                                                          \
	PG_FUNCTION_INFO_V1(name);                                                                                         \
	}                                                                                                                  \
	static Datum name##_body(PG_FUNCTION_ARGS);                                                                        \
	extern "C" Datum name(PG_FUNCTION_ARGS)                                                                            \
	{                                                                                                                  \
		return thrillmon::pg::Guarded(name##_body, fcinfo, #name);                                                     \
	}                                                                                                                  \
	static Datum name##_body(PG_FUNCTION_ARGS)
