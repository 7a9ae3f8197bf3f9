// What the rest of the glue may ask about the background worker (worker.cpp).
#pragma once

namespace thrillmon::pg {

// True in the thrillmon worker's own process (set at its start), false in every other backend.
bool IsThrillmonWorker();

} // namespace thrillmon::pg
