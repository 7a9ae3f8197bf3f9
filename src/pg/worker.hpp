// What the rest of the glue may ask about the background worker (worker.cpp).
#pragma once

namespace thrillmon::pg {

// True in the thrillmon worker's own process (set at its start), false in every other backend.
bool IsThrillmonWorker();

// A background worker's transaction bracket: start a transaction, connect SPI, push a snapshot and
// report the activity; then finish, pop, commit and report idle (worker.cpp).
void BeginTx(const char *activity);
void EndTx();

} // namespace thrillmon::pg
