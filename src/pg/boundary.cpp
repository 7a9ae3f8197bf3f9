// PlainError handling and the outer guard: the only places the glue turns C++ failures into
// ereport(ERROR).
#include <cstring>

#include "pg/boundary.hpp"

extern "C" {
#include "utils/elog.h"
}

namespace thrillmon::pg {

namespace {

void
CopyTruncated(char *dst, std::size_t size, const char *src) noexcept
{
	std::size_t n = std::strlen(src);
	if (n >= size)
		n = size - 1;
	std::memcpy(dst, src, n);
	dst[n] = '\0';
}

} // namespace

void
CopyError(const thrillmon::ValidationError &error, PlainError *err) noexcept
{
	err->set = true;
	CopyTruncated(err->sqlstate, sizeof err->sqlstate, error.sqlstate.c_str());
	CopyTruncated(err->message, sizeof err->message, error.message.c_str());
	CopyTruncated(err->hint, sizeof err->hint, error.hint.c_str());
}

void
SetInternalError(PlainError *err, const char *what) noexcept
{
	err->set = true;
	CopyTruncated(err->sqlstate, sizeof err->sqlstate, "XX000");
	CopyTruncated(err->message, sizeof err->message, what ? what : "unknown error");
	err->hint[0] = '\0';
}

void
RaiseIfSet(const PlainError *err)
{
	if (!err->set)
		return;
	const char *s = err->sqlstate;
	const int code = MAKE_SQLSTATE(s[0], s[1], s[2], s[3], s[4]);
	ereport(ERROR, (errcode(code), errmsg("thrillmon: %s", err->message),
	                err->hint[0] != '\0' ? errhint("%s", err->hint) : 0));
}

Datum
Guarded(PGFunction body, FunctionCallInfo fcinfo, const char *name)
{
	PlainError err {};
	try {
		return body(fcinfo);
	} catch (const std::exception &e) {
		SetInternalError(&err, e.what());
	} catch (...) {
		SetInternalError(&err, "unknown C++ exception");
	}
	// Out of the catch blocks, with nothing left to destroy: now it may longjmp.
	ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("thrillmon: %s", err.message),
	                errdetail("A C++ exception escaped %s; this is a bug.", name)));
	return (Datum) 0;
}

} // namespace thrillmon::pg
