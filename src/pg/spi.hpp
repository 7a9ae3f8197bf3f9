// Typed helpers over SPI: parameterised statements, checked return codes, schema-qualified SQL.
// Plain C-style functions: they ereport on failure, so callers must hold no C++ objects.
#pragma once

#include <cstdint>

#include "core/locks.hpp"

extern "C" {
#include "postgres.h"

#include "executor/spi.h"
}

namespace thrillmon::pg {

// Runs sql with nargs parameters; raises ERROR unless SPI returns `expected`.
void SpiRun(const char *sql, int expected, int nargs = 0, Oid *types = nullptr, Datum *values = nullptr,
            const char *nulls = nullptr);

// Runs a query returning one int8 column; fills a palloc'd array (in the caller's memory context,
// not SPI's, so it survives SPI_finish) and returns how many rows it had.
int SpiInt64Column(const char *sql, int64_t **out, int nargs = 0, Oid *types = nullptr, Datum *values = nullptr);

// Runs a query returning one text column; palloc'd C strings in the caller's context.
int SpiTextColumn(const char *sql, char ***out);

// Runs a query returning a single int8 value (0 when NULL).
int64_t SpiInt64(const char *sql, int nargs = 0, Oid *types = nullptr, Datum *values = nullptr);

// Takes one of thrillmon's job locks (src/core/locks.hpp) for the rest of the transaction,
// waiting (under lock_timeout). Needs no SPI connection of the caller's.
void SpiJobLock(const thrillmon::locks::Lock &lock);

} // namespace thrillmon::pg
