// GUC variables shared across the glue (defined in module.cpp).
#pragma once

namespace thrillmon::pg {

extern int partition_premake_days;

} // namespace thrillmon::pg
