// Recording: record_metric() and the CHECK constraint of metric_time_series (thin: the rules are
// the core's, src/core/validation.cpp).
#include <optional>
#include <string_view>

#include "core/validation.hpp"
#include "pg/args.hpp"
#include "pg/boundary.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
}

using thrillmon::pg::RunCore;
using thrillmon::pg::TextArg;

namespace {

thrillmon::JsonKind
KindOf(Jsonb *j)
{
	return JB_ROOT_IS_OBJECT(j)   ? thrillmon::JsonKind::Object
	       : JB_ROOT_IS_SCALAR(j) ? thrillmon::JsonKind::Scalar
	                              : thrillmon::JsonKind::Array;
}

// The prepared INSERT, kept for the life of the backend (SPI_keepplan moves it out of the
// call's memory). The plan cache re-plans it by itself if the table changes (new partitions,
// DROP/CREATE EXTENSION), because the statement names the table, not an OID we hold.
SPIPlanPtr insert_plan = nullptr;

} // namespace

// record_metric(metric_name, metric_value, metric_category, metadata, ts): validate, then insert.
THRILLMON_FUNCTION(thrillmon_record_metric)
{
	// Read: everything from fcinfo into plain values (detoasting may ereport, so before compute).
	const std::optional<std::string_view> name = TextArg(fcinfo, 0);
	const std::optional<double> value = PG_ARGISNULL(1) ? std::nullopt : std::optional<double>(PG_GETARG_FLOAT8(1));
	const std::optional<std::string_view> category = TextArg(fcinfo, 2);
	Jsonb *metadata = PG_ARGISNULL(3) ? nullptr : PG_GETARG_JSONB_P(3);
	thrillmon::JsonKind metadata_kind = thrillmon::JsonKind::Object;
	size_t metadata_size = 0;
	if (metadata != nullptr) {
		metadata_kind = KindOf(metadata);
		metadata_size = VARSIZE(metadata) - VARHDRSZ;
	}
	const TimestampTz now = GetCurrentTransactionStartTimestamp();
	const TimestampTz ts = PG_ARGISNULL(4) ? now : PG_GETARG_TIMESTAMPTZ(4);

	// Compute: the core's rules, first failure wins, in the order of the parameters.
	RunCore([&] {
		thrillmon::MaybeError e = thrillmon::ValidatePoint(name, value, category);
		if (!e && metadata != nullptr)
			e = thrillmon::ValidateMetadata(metadata_kind, metadata_size);
		if (!e)
			e = thrillmon::ValidateRecordedTimestamp(!TIMESTAMP_NOT_FINITE(ts), ts, now);
		return e;
	});

	// Write: one parameterised INSERT through the partitioned parent.
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "thrillmon: SPI_connect failed");
	if (insert_plan == nullptr) {
		Oid types[5] = {TEXTOID, TEXTOID, FLOAT8OID, TIMESTAMPTZOID, JSONBOID};
		SPIPlanPtr plan = SPI_prepare("INSERT INTO thrillmon.metric_time_series "
		                              "(metric_name, metric_category, metric_value, \"timestamp\", metadata) "
		                              "VALUES ($1, $2, $3, $4, $5)",
		                              5, types);
		if (plan == nullptr)
			elog(ERROR, "thrillmon: could not prepare insert: %s", SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "thrillmon: could not keep insert plan");
		insert_plan = plan;
	}
	Datum values[5] = {PG_GETARG_DATUM(0), PG_GETARG_DATUM(2), PG_GETARG_DATUM(1), TimestampTzGetDatum(ts),
	                   metadata != nullptr ? PointerGetDatum(metadata) : (Datum) 0};
	const char nulls[5] = {' ', ' ', ' ', ' ', metadata != nullptr ? ' ' : 'n'};
	const int ret = SPI_execute_plan(insert_plan, values, nulls, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "thrillmon: insert into metric_time_series returned %s", SPI_result_code_string(ret));
	SPI_finish();
	PG_RETURN_VOID();
}

// _metric_point_valid(metric_name, metric_category, metric_value, "timestamp", metadata): the
// table's CHECK constraint metric_point_valid (see 10_schema.sql for why it is C). An invalid row
// raises the rule's own message as a check_violation (SQLSTATE 23514) rather than returning
// false, so a direct writer learns which rule, not only which constraint.
THRILLMON_FUNCTION(thrillmon_metric_point_valid)
{
	// NOT NULL is checked before CHECK constraints; a NULL here can only come from a direct call,
	// and a CHECK that yields NULL passes, as Postgres's own would.
	for (int i = 0; i < 4; i++)
		if (PG_ARGISNULL(i))
			PG_RETURN_NULL();
	const std::string_view name = *TextArg(fcinfo, 0);
	const std::string_view category = *TextArg(fcinfo, 1);
	const double value = PG_GETARG_FLOAT8(2);
	const bool ts_finite = !TIMESTAMP_NOT_FINITE(PG_GETARG_TIMESTAMPTZ(3));
	std::optional<thrillmon::MetadataShape> metadata;
	if (!PG_ARGISNULL(4)) {
		Jsonb *j = PG_GETARG_JSONB_P(4);
		metadata = thrillmon::MetadataShape {KindOf(j), VARSIZE(j) - VARHDRSZ};
	}

	const thrillmon::pg::PlainError err = thrillmon::pg::TryCore(
	    [&] { return thrillmon::ValidateStoredPoint(name, value, category, metadata, ts_finite); });
	if (err.set)
		ereport(
		    ERROR,
		    (errcode(ERRCODE_CHECK_VIOLATION), errmsg("thrillmon: %s", err.message),
		     errdetail("Every row of thrillmon.metric_time_series is checked by constraint \"metric_point_valid\"."),
		     err.hint[0] != '\0' ? errhint("%s", err.hint) : 0));
	PG_RETURN_BOOL(true);
}
