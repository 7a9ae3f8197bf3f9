// The C++/Postgres error boundary (STYLE.md, "non-negotiable").
//
// Postgres reports errors with ereport(ERROR), a siglongjmp that skips C++ destructors; C++
// reports them with exceptions, which must never unwind through Postgres' C frames. So every
// SQL-callable function runs in three phases: read (Postgres -> plain values), compute (core C++,
// inside Compute(), which catches everything), write (plain values -> Postgres). Errors cross from
// the compute phase as a PlainError: fixed-size C buffers, no destructor, safe to carry past the
// point where the C++ objects that produced it are gone. Only then does RaiseIfSet() ereport.
#pragma once

#include "core/validation.hpp"

#include <cstddef>
#include <exception>

extern "C" {
#include "postgres.h"
}

namespace thrillmon::pg {

struct PlainError {
	bool set;
	char sqlstate[6];
	char message[1024];
	char hint[512];
};

// Copies a core validation error into err (truncating, never allocating).
void
CopyError(const thrillmon::ValidationError &error, PlainError *err) noexcept;

// Records an unexpected failure (a C++ exception: a bug or out of memory) as SQLSTATE XX000.
void
SetInternalError(PlainError *err, const char *what) noexcept;

// Runs the compute phase. Nothing in fn may call Postgres functions that can ereport.
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
void
RaiseIfSet(const PlainError *err);

} // namespace thrillmon::pg
