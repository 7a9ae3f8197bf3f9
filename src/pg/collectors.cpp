// SQL collectors: checking a collector at registration, and running its query as its owner.
//
// A collector's query runs with its owner's privileges, never the worker's superuser ones: the
// user id is switched for the call, in a security-restricted context (so the query cannot SET
// ROLE back, nor reach session-level state), in a read-only transaction state, under a
// per-collector timeout. Running a query is C-style (PG_TRY is used, so no C++ object lives in
// those functions); the registration rules are the core's (ValidateCollector).
#include <cctype>
#include <cstring>
#include <optional>
#include <string_view>

#include "core/validation.hpp"
#include "core/sketch.hpp"
#include "pg/boundary.hpp"
#include "pg/args.hpp"
#include "pg/shmem.hpp"
#include "pg/worker.hpp"

extern "C" {
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/datetime.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "pg/compat.hpp"
}

namespace {

constexpr int kMaxCollectorRows = 1000;

// The collector timeout: our own timeout ids (not STATEMENT_TIMEOUT, which belongs to the
// client's statement and which we must not disarm), registered once per backend. The first
// cancels the query; a query that catches the cancel (a PL/pgSQL function's EXCEPTION WHEN
// query_canceled) and goes on is still running kEscalateAfterMs later, when the second ends the
// session: no ERROR is out of a query's reach, but the end of its process is.
constexpr int kEscalateAfterMs = 1000;
TimeoutId collector_timeout_id = MAX_TIMEOUTS;
TimeoutId escalate_timeout_id = MAX_TIMEOUTS;
volatile sig_atomic_t collector_timed_out = 0;
volatile sig_atomic_t collector_query_running = 0; // between SPI_execute's start and its end
volatile sig_atomic_t collector_defied = 0;
char running_collector[520]; // the name of the collector whose query runs (for the exit record)
bool exit_callback_registered = false;

void
CollectorTimeoutHandler(void)
{
	// Runs in a signal handler: set flags only; CHECK_FOR_INTERRUPTS raises the cancel.
	collector_timed_out = 1;
	InterruptPending = true;
	QueryCancelPending = true;
	SetLatch(MyLatch);
}

void
EscalateTimeoutHandler(void)
{
	// Still inside the collector's query a second after its cancel: it caught the cancel. Ask
	// for the process's end (die(), as SIGTERM would); RecordDefiant() says why on the way out.
	if (!collector_query_running)
		return;
	collector_defied = 1;
	InterruptPending = true;
	ProcDiePending = true;
	SetLatch(MyLatch);
}

// At exit (before_shmem_exit: shared memory still there, and no signal handler running): if a
// collector defied its timeout, record it, so that the next collection in this database disables
// it, and say so in the log.
void
RecordDefiant(int code, Datum arg)
{
	if (!collector_defied)
		return;
	thrillmon::pg::SharedSetDefiant(MyDatabaseId, running_collector);
	ereport(LOG,
	        (errmsg("thrillmon: collector \"%s\" went on after its statement_timeout cancelled it; its session was "
	                "terminated, and the next collection disables it",
	                running_collector)));
}

bool
IsNumericType(Oid t)
{
	return t == INT2OID || t == INT4OID || t == INT8OID || t == FLOAT4OID || t == FLOAT8OID || t == NUMERICOID;
}

bool
IsTextType(Oid t)
{
	return t == TEXTOID || t == VARCHAROID || t == NAMEOID || t == BPCHAROID;
}

// The query must be exactly one plain SELECT: no other statement, no SELECT INTO, no row locks,
// no data-modifying WITH. Raises a clear error otherwise.
void
CheckIsPlainSelect(const char *query)
{
	List *parsed = pg_parse_query(query);
	if (list_length(parsed) != 1)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		                errmsg("thrillmon: a collector query must be exactly one SELECT statement, got %d statements",
		                       list_length(parsed))));
	Node *stmt = linitial_node(RawStmt, parsed)->stmt;
	if (!IsA(stmt, SelectStmt))
		ereport(
		    ERROR,
		    (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		     errmsg("thrillmon: a collector query must be a SELECT; data-modifying and other statements are refused")));
	SelectStmt *select = (SelectStmt *) stmt;
	if (select->intoClause != nullptr)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		                errmsg("thrillmon: a collector query must not use SELECT INTO")));
	if (select->lockingClause != NIL)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		                errmsg("thrillmon: a collector query must not lock rows (FOR UPDATE/SHARE)")));
	if (select->withClause != nullptr) {
		ListCell *lc;
		foreach (lc, select->withClause->ctes) {
			CommonTableExpr *cte = lfirst_node(CommonTableExpr, lc);
			if (!IsA(cte->ctequery, SelectStmt))
				ereport(ERROR,
				        (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				         errmsg("thrillmon: a collector query must not modify data (WITH \"%s\" is not a SELECT)",
				                cte->ctename)));
		}
	}
}

char *
WrappedQuery(const char *query, const char *limit)
{
	// A subquery, so nothing but a query expression fits, and the column names do not matter.
	// Trailing semicolons (and blanks) are dropped: "SELECT 1;" is one statement, and
	// CheckIsPlainSelect() has already refused anything after them. The newlines end any
	// trailing "--" comment before the closing parenthesis.
	int len = (int) strlen(query);
	while (len > 0 && (query[len - 1] == ';' || isspace((unsigned char) query[len - 1])))
		len--;
	return psprintf("SELECT * FROM (\n%.*s\n) AS thrillmon_collector %s", len, query, limit);
}

// Checks the result shape of an executed probe or run; returns the column count.
int
CheckShape(TupleDesc desc)
{
	if (desc->natts == 1 && IsNumericType(TupleDescAttr(desc, 0)->atttypid))
		return 1;
	if (desc->natts == 2 && IsTextType(TupleDescAttr(desc, 0)->atttypid) &&
	    IsNumericType(TupleDescAttr(desc, 1)->atttypid))
		return 2;
	StringInfoData got;
	initStringInfo(&got);
	for (int i = 0; i < desc->natts; i++)
		appendStringInfo(&got, "%s%s", i ? ", " : "", format_type_be(TupleDescAttr(desc, i)->atttypid));
	ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
	                errmsg("thrillmon: a collector query must return one numeric column, or two columns (metric_name "
	                       "text, value numeric); it returns (%s)",
	                       got.data)));
	return 0;
}

// In the worker, every session-level lock of the user lock method (advisory locks) that a
// collector took: the worker holds none of its own (thrillmon's job locks are row locks), and a
// lock a collector left would stay with the worker for good. (In a session that runs
// collect_metrics() by hand the session's own advisory locks may be the caller's: left alone.)
void
ReleaseCollectorSessionLocks()
{
	if (thrillmon::pg::IsThrillmonWorker())
		LockReleaseSession(USER_LOCKMETHOD);
}

} // namespace

// _defiant_collector(): the collector of this database that defied its timeout (its session was
// terminated), taken from shared memory, or NULL. The collection job disables it.
THRILLMON_FUNCTION(thrillmon_defiant_collector)
{
	char name[520];
	TimestampTz at;
	if (!thrillmon::pg::SharedTakeDefiant(MyDatabaseId, name, sizeof name, &at))
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(name));
}

// _check_collector(name, category, collect_interval): register_collector()'s rules, the core's.
THRILLMON_FUNCTION(thrillmon_check_collector)
{
	const std::optional<std::string_view> name = thrillmon::pg::TextArg(fcinfo, 0);
	const std::optional<std::string_view> category = thrillmon::pg::TextArg(fcinfo, 1);
	std::optional<thrillmon::IntervalValue> interval;
	if (!PG_ARGISNULL(2)) {
		const Interval *iv = PG_GETARG_INTERVAL_P(2);
		// Its text as the session prints it (IntervalStyle), for the message.
		const char *text = DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(iv)));
		interval = thrillmon::IntervalValue {iv->month, iv->day, iv->time, text};
	}
	thrillmon::pg::RunCore([&] { return thrillmon::ValidateCollector(name, category, interval); });
	PG_RETURN_VOID();
}

// _probe_collector_query(query): as the caller, check the statement and its result shape
// without fetching a row. Returns the number of columns (1 or 2).
THRILLMON_FUNCTION(thrillmon_probe_collector_query)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
		        (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("thrillmon: collector query must not be NULL")));
	const char *query = text_to_cstring(PG_GETARG_TEXT_PP(0));
	CheckIsPlainSelect(query);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "thrillmon: SPI_connect failed");
	const int ret = SPI_execute(WrappedQuery(query, "LIMIT 0"), true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "thrillmon: probing the collector query returned %s", SPI_result_code_string(ret));
	const int natts = CheckShape(SPI_tuptable->tupdesc);
	SPI_finish();
	PG_RETURN_INT32(natts);
}

// _run_collector_query(query, owner_role, timeout_ms): the collector's rows as (metric_name,
// metric_value); metric_name is NULL for a one-column collector (the caller names it). NULL
// values are skipped (no data is not an error).
THRILLMON_FUNCTION(thrillmon_run_collector_query)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
		        (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("thrillmon: collector arguments must not be NULL")));
	const char *query = text_to_cstring(PG_GETARG_TEXT_PP(0));
	const Oid owner = get_role_oid(NameStr(*PG_GETARG_NAME(1)), false);
	// At least 1 ms: 0 would arm no timer (the table refuses less than 1 ms; 0.6.0's SQL rounded
	// sub-millisecond values down to 0 here).
	const int timeout_ms = Max(PG_GETARG_INT32(2), 1);
	// The collector's name (0.7.0's SQL passes it), for the record if it defies its timeout.
	strlcpy(running_collector, PG_NARGS() > 3 && !PG_ARGISNULL(3) ? text_to_cstring(PG_GETARG_TEXT_PP(3)) : "(unnamed)",
	        sizeof running_collector);

	InitMaterializedSRF(fcinfo, 0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	if (collector_timeout_id == MAX_TIMEOUTS) {
		collector_timeout_id = RegisterTimeout(USER_TIMEOUT, CollectorTimeoutHandler);
		escalate_timeout_id = RegisterTimeout(USER_TIMEOUT, EscalateTimeoutHandler);
	}
	if (!exit_callback_registered) {
		before_shmem_exit(RecordDefiant, (Datum) 0);
		exit_callback_registered = true;
	}

	Oid save_userid;
	int save_sec_context;
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	// Like a SECURITY DEFINER function's SET clause: settings changed from here on are undone
	// by AtEOXact_GUC below, or by the (sub)transaction abort on error.
	const int save_nestlevel = NewGUCNestLevel();
	SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	(void) set_config_option("transaction_read_only", "on", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0,
	                         false);

	collector_timed_out = 0;
	EnableTimeoutParams timers[2] = {{collector_timeout_id, TMPARAM_AFTER, timeout_ms, 0},
	                                 {escalate_timeout_id, TMPARAM_AFTER, timeout_ms + kEscalateAfterMs, 0}};
	enable_timeouts(timers, 2);
	PG_TRY();
	{
		CheckIsPlainSelect(query);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "thrillmon: SPI_connect failed");
		char *wrapped = WrappedQuery(query, psprintf("LIMIT %d", kMaxCollectorRows + 1));
		collector_query_running = 1;
		const int ret = SPI_execute(wrapped, true, 0);
		collector_query_running = 0;
		// The timeout fired while the query ran, and the query caught the cancel and returned
		// anyway: it timed out all the same.
		if (collector_timed_out)
			ereport(ERROR, (errcode(ERRCODE_QUERY_CANCELED), errmsg("canceling statement due to user request")));
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "thrillmon: collector query returned %s", SPI_result_code_string(ret));
		const int natts = CheckShape(SPI_tuptable->tupdesc);
		if (SPI_processed > (uint64) kMaxCollectorRows)
			ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			                errmsg("thrillmon: collector query returned more than %d rows", kMaxCollectorRows)));
		for (uint64 i = 0; i < SPI_processed; i++) {
			char *value = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, natts);
			if (value == nullptr)
				continue;
			Datum values[2];
			bool nulls[2] = {true, false};
			if (natts == 2) {
				char *name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
				if (name == nullptr)
					ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					                errmsg("thrillmon: collector query returned a NULL metric_name")));
				values[0] = CStringGetTextDatum(name);
				nulls[0] = false;
			}
			values[1] = DirectFunctionCall1(float8in, CStringGetDatum(value));
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
		SPI_finish();
	}
	PG_CATCH();
	{
		collector_query_running = 0;
		disable_timeout(collector_timeout_id, false);
		disable_timeout(escalate_timeout_id, false);
		ReleaseCollectorSessionLocks();
		if (collector_timed_out) {
			// The cancel we caused reads "canceling statement due to user request": say what
			// happened instead. The enclosing (sub)transaction abort restores user and settings.
			collector_timed_out = 0;
			FlushErrorState();
			// Not QUERY_CANCELED: PL/pgSQL's WHEN OTHERS does not catch that code (so that a
			// user's cancel is never swallowed), and a slow collector must not stop the others.
			ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			                errmsg("thrillmon: collector query timed out after %d ms", timeout_ms)));
		}
		PG_RE_THROW();
	}
	PG_END_TRY();
	disable_timeout(collector_timeout_id, false);
	disable_timeout(escalate_timeout_id, false);
	ReleaseCollectorSessionLocks();
	if (collector_timed_out) {
		// It fired after the query had finished: the cancel it requested is ours to withdraw,
		// or the caller's next CHECK_FOR_INTERRUPTS would abort the whole collection.
		collector_timed_out = 0;
		QueryCancelPending = false;
	}
	// isCommit = false: undo every setting changed since NewGUCNestLevel(), including a plain
	// SET or set_config(..., false) made by the collector's query itself, which would otherwise
	// outlive the call in the caller's session (a search_path planted for the worker, say).
	AtEOXact_GUC(false, save_nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	return (Datum) 0;
}
