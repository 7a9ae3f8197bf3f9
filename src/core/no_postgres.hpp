// Guard included first by every src/core header: the core must build and be tested without
// Postgres. If postgres.h was already included, its macros (Min, Max, snprintf -> pg_snprintf,
// gettext, _) would silently change what core code means, so refuse to compile instead.
#pragma once

#ifdef POSTGRES_H
static_assert(false, "src/core must not be compiled with Postgres headers; include core headers before postgres.h");
#endif
