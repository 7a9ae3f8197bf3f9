// SPI helpers (see spi.hpp).
#include "pg/boundary.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
}

namespace thrillmon::pg {

namespace {

const char *
SpiCodeName(int code)
{
	return SPI_result_code_string(code);
}

} // namespace

void
SpiRun(const char *sql, int expected, int nargs, Oid *types, Datum *values, const char *nulls)
{
	int ret =
	    nargs > 0 ? SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0) : SPI_execute(sql, false, 0);
	if (ret != expected)
		elog(ERROR, "thrillmon: SPI returned %s (expected %s) for: %s", SpiCodeName(ret), SpiCodeName(expected), sql);
}

int
SpiInt64Column(const char *sql, int64_t **out, int nargs, Oid *types, Datum *values)
{
	// Remember the caller's context: SPI switches to its own, freed at SPI_finish.
	MemoryContext caller = CurrentMemoryContext;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "thrillmon: SPI_connect failed");
	SpiRun(sql, SPI_OK_SELECT, nargs, types, values, nullptr);
	const int n = static_cast<int>(SPI_processed);
	int64_t *result = static_cast<int64_t *>(MemoryContextAlloc(caller, sizeof(int64_t) * (n > 0 ? n : 1)));
	for (int i = 0; i < n; i++) {
		bool isnull;
		Datum d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
		result[i] = isnull ? 0 : DatumGetInt64(d);
	}
	SPI_finish();
	*out = result;
	return n;
}

int
SpiTextColumn(const char *sql, char ***out)
{
	MemoryContext caller = CurrentMemoryContext;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "thrillmon: SPI_connect failed");
	SpiRun(sql, SPI_OK_SELECT);
	const int n = static_cast<int>(SPI_processed);
	char **result = static_cast<char **>(MemoryContextAlloc(caller, sizeof(char *) * (n > 0 ? n : 1)));
	for (int i = 0; i < n; i++) {
		char *v = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		result[i] = MemoryContextStrdup(caller, v ? v : "");
	}
	SPI_finish();
	*out = result;
	return n;
}

int64_t
SpiInt64(const char *sql, int nargs, Oid *types, Datum *values)
{
	int64_t *vals;
	const int n = SpiInt64Column(sql, &vals, nargs, types, values);
	return n > 0 ? vals[0] : 0;
}

void
SpiJobLock(const thrillmon::locks::Lock &lock)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "thrillmon: SPI_connect failed");
	const Oid nsp = get_namespace_oid("thrillmon", false);
	if (OidIsValid(get_relname_relid("job_locks", nsp))) {
		Oid types[1] = {TEXTOID};
		Datum values[1] = {CStringGetTextDatum(lock.name.data())};
		SpiRun("SELECT 1 FROM thrillmon.job_locks l WHERE l.name OPERATOR(pg_catalog.=) $1 FOR UPDATE", SPI_OK_SELECT,
		       1, types, values, nullptr);
		if (SPI_processed != 1)
			ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			                errmsg("thrillmon: job lock \"%s\" is missing from thrillmon.job_locks", lock.name.data()),
			                errhint("Recreate the extension, or put the row back as a superuser.")));
	} else {
		// A schema of 0.6.0 or before (ALTER EXTENSION UPDATE not run yet): its advisory lock.
		Oid types[2] = {INT4OID, INT4OID};
		Datum values[2] = {Int32GetDatum(thrillmon::locks::kClass), Int32GetDatum(lock.key)};
		SpiRun("SELECT pg_catalog.pg_advisory_xact_lock($1, $2)", SPI_OK_SELECT, 2, types, values, nullptr);
	}
	SPI_finish();
}

} // namespace thrillmon::pg
