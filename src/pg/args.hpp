// Reading SQL arguments into plain C++ values for the compute phase (see boundary.hpp).
#pragma once

#include <optional>
#include <string_view>

extern "C" {
#include "postgres.h"

#include "fmgr.h"
}

namespace thrillmon::pg {

// A text argument as a view of its (detoasted) bytes, or nullopt for NULL. The view points into
// memory of the current call: use it before the function returns.
inline std::optional<std::string_view>
TextArg(FunctionCallInfo fcinfo, int n)
{
	if (PG_ARGISNULL(n))
		return std::nullopt;
	text *t = PG_GETARG_TEXT_PP(n);
	return std::string_view(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
}

} // namespace thrillmon::pg
