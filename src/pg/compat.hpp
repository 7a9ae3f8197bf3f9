// What other server versions than the one built and tested here (15) name or shape differently,
// for the glue to read as on 15. Include after postgres.h and funcapi.h, inside the same
// extern "C" block. Nothing here is built on
// 15 itself: these are the guards that keep 13-17 within reach (docs/packaging.md says which
// versions are actually built).
#pragma once

#if PG_VERSION_NUM < 150000
// InitMaterializedSRF() arrived in 15; before it every set-returning function set up its own
// tuplestore. src/pg/compat.cpp does it the same way for 13 and 14 (flags: only 0 is used).
void InitMaterializedSRF(FunctionCallInfo fcinfo, bits32 flags);
#endif
