// Module entry: PG_MODULE_MAGIC, _PG_init and the GUCs.
#include "pg/guc.hpp"

extern "C" {
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);
}

namespace thrillmon::pg {

// GUC storage must be plain C variables: guc.c writes them directly.
int partition_premake_days = 7;

namespace {

void
InitGucs()
{
	DefineCustomIntVariable("thrillmon.partition_premake_days",
	                        "Daily partitions of metric_time_series created ahead of today.",
	                        "maintain_partitions() keeps partitions from yesterday up to this many days ahead.",
	                        &partition_premake_days, 7, 0, 365, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("thrillmon");
#else
	EmitWarningsOnPlaceholders("thrillmon");
#endif
}

} // namespace
} // namespace thrillmon::pg

extern "C" void
_PG_init(void)
{
	// GUCs are defined whether or not the library is preloaded, so SET and SHOW work after the
	// first thrillmon function loads it; the worker (a later release) registers only when preloaded.
	thrillmon::pg::InitGucs();
}
