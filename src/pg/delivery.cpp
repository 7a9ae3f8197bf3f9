// Alert delivery over HTTP with libcurl: the delivery worker (a background worker of its own, so
// a slow receiver never delays collection or detection), _http_post() for test_channel(), and
// _url_problem() for the channel check. The outbox, retries and formats are SQL (65_delivery.sql);
// this file only moves bytes, under the rules of thrillmon.notify_allowed_hosts.
//
// C-style like worker.cpp, and for the same reason: PG_TRY is a sigsetjmp, and an ERROR's
// longjmp must skip no C++ destructor. The core's URL and allow-list checks (which build
// std::strings) run inside CheckUrl/CheckAddress, which catch everything and return plain values.
// libcurl is C; its callbacks never call anything of Postgres' that can ereport (they read
// InterruptPending, a flag, and nothing else).
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/delivery.hpp"
#include "pg/boundary.hpp"
#include "pg/guc.hpp"
#include "pg/worker.hpp"

extern "C" {
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/pmsignal.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

PGDLLEXPORT void thrillmon_delivery_main(Datum main_arg);
}

namespace {

namespace delivery = thrillmon::delivery;

constexpr int kMaxTransfers = (delivery::kMaxInFlightPerChannel + 1) * delivery::kMaxChannels;
constexpr long kClaimEveryMs = 1000;
constexpr long kIdleSleepMs = 10000;
constexpr long kWaitExtensionMs = 2000;
constexpr long kErrorBackoffMs = 5000;
constexpr int kNameBytes = 64;

// ---- the URL rules, as plain values -------------------------------------------------------------

// Whether url may be reached under allowlist: false with the reason in why. *by_address: the host
// is a name allowed only through network entries, so the address connected to must be checked.
// host and port, when given, receive the URL's (host_len bytes at most).
bool
CheckUrl(const char *url, const char *allowlist, char *why, size_t why_len, bool *by_address, char *host = nullptr,
         size_t host_len = 0, int *port = nullptr) noexcept
{
	try {
		delivery::Url u;
		std::string error;
		if (!delivery::ParseUrl(url, &u, &error)) {
			snprintf(why, why_len, "%s", error.c_str());
			return false;
		}
		if (host != nullptr)
			snprintf(host, host_len, "%s", u.host.c_str());
		if (port != nullptr)
			*port = u.port;
		if (!delivery::HostAllowed(allowlist == nullptr ? "" : allowlist, u, by_address)) {
			snprintf(why, why_len, "host \"%s\" port %d is not in thrillmon.notify_allowed_hosts", u.host.c_str(),
			         u.port);
			return false;
		}
		return true;
	} catch (...) {
		snprintf(why, why_len, "out of memory checking the URL");
		return false;
	}
}

bool
CheckAddress(const char *allowlist, const char *address, int port) noexcept
{
	try {
		return delivery::AddressAllowed(allowlist == nullptr ? "" : allowlist, address, port);
	} catch (...) {
		return false;
	}
}

// ---- one HTTP request -----------------------------------------------------------------------------

// Everything a request owns, in malloc'd or fixed memory (it lives across transactions, and
// libcurl's callbacks write into it).
struct Transfer {
	bool used;
	bool in_multi;
	CURL *easy;
	curl_slist *headers;
	char *body;
	char *allowlist; // a copy: a reload frees the setting's string while we may still connect
	bool by_address;
	bool refused_address;
	bool interruptible; // a backend's request gives up when the query is cancelled
	char channel[kNameBytes];
	int64 delivery_id; // 0: not an outbox row (a re-send)
	const char *purpose;
	TimestampTz started;
	char excerpt[delivery::kResponseExcerptChars + 1];
	size_t excerpt_len;
	size_t total;
	bool too_big;
	char errbuf[CURL_ERROR_SIZE];
};

// What a finished request comes to, for the record.
struct Outcome {
	char channel[kNameBytes];
	int64 delivery_id;
	const char *purpose;
	TimestampTz started;
	int http_status;
	double latency_ms;
	bool failed;
	char error[512];
	char excerpt[delivery::kResponseExcerptChars + 1];
};

// Keeps the first bytes of an answer, printable ASCII only (it becomes text in a table and is
// never interpreted), reads on to kMaxResponseBytes and then stops the transfer.
size_t
OnBody(char *data, size_t size, size_t nmemb, void *userdata)
{
	Transfer *t = static_cast<Transfer *>(userdata);
	const size_t n = size * nmemb;
	for (size_t i = 0; i < n && t->excerpt_len < delivery::kResponseExcerptChars; i++) {
		const unsigned char c = static_cast<unsigned char>(data[i]);
		t->excerpt[t->excerpt_len++] =
		    (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : (c == '\n' || c == '\t' ? ' ' : '?');
	}
	t->excerpt[t->excerpt_len] = '\0';
	t->total += n;
	if (t->total > delivery::kMaxResponseBytes) {
		t->too_big = true;
		return 0; // CURLE_WRITE_ERROR: the rest is not read
	}
	return n;
}

// A backend's request (test_channel()) stops when the query is cancelled or the backend told to
// end; the interrupt itself is served once libcurl has returned.
int
OnProgress(void *clientp, curl_off_t, curl_off_t, curl_off_t, curl_off_t)
{
	const Transfer *t = static_cast<const Transfer *>(clientp);
	return (t->interruptible && InterruptPending) ? 1 : 0;
}

// Every connection's address is checked when the URL's host was allowed only through network
// entries of the allow-list: a name that resolves elsewhere (a DNS change) is not connected to.
curl_socket_t
OnOpenSocket(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
	Transfer *t = static_cast<Transfer *>(clientp);
	if (t->by_address) {
		char text[INET6_ADDRSTRLEN] = "";
		int port = 0;
		if (address->family == AF_INET) {
			const sockaddr_in *in = reinterpret_cast<const sockaddr_in *>(&address->addr);
			inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
			port = ntohs(in->sin_port);
		} else if (address->family == AF_INET6) {
			const sockaddr_in6 *in6 = reinterpret_cast<const sockaddr_in6 *>(&address->addr);
			inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
			port = ntohs(in6->sin6_port);
		}
		if (text[0] == '\0' || !CheckAddress(t->allowlist, text, port)) {
			t->refused_address = true;
			return CURL_SOCKET_BAD;
		}
	}
	return socket(address->family, address->socktype, address->protocol);
}

void
FreeTransfer(Transfer *t)
{
	if (t->easy != nullptr)
		curl_easy_cleanup(t->easy);
	if (t->headers != nullptr)
		curl_slist_free_all(t->headers);
	free(t->body);
	free(t->allowlist);
	memset(t, 0, sizeof *t);
}

// Fills t for a POST of body to url with the header lines ("Name: value" per line). False (with
// the reason in why, nothing to free) when the URL is not allowed or memory ran out.
bool
PrepareTransfer(Transfer *t, const char *url, const char *header_lines, const char *body, int timeout_ms, char *why,
                size_t why_len)
{
	const char *allow = thrillmon::pg::notify_allowed_hosts;
	bool by_address = false;
	if (!CheckUrl(url, allow, why, why_len, &by_address))
		return false;
	t->allowlist = strdup(allow == nullptr ? "" : allow);
	t->body = strdup(body == nullptr ? "" : body);
	t->easy = curl_easy_init();
	if (t->allowlist == nullptr || t->body == nullptr || t->easy == nullptr) {
		snprintf(why, why_len, "out of memory preparing the request");
		FreeTransfer(t);
		return false;
	}
	t->by_address = by_address;
	t->used = true;
	if (header_lines != nullptr) {
		const char *p = header_lines;
		while (*p != '\0') {
			const char *nl = strchr(p, '\n');
			const size_t len = nl == nullptr ? strlen(p) : static_cast<size_t>(nl - p);
			char line[4096];
			if (len > 0 && len < sizeof line) {
				memcpy(line, p, len);
				line[len] = '\0';
				curl_slist *next = curl_slist_append(t->headers, line);
				if (next == nullptr) {
					snprintf(why, why_len, "out of memory preparing the request");
					FreeTransfer(t);
					return false;
				}
				t->headers = next;
			}
			p += len;
			if (*p == '\n')
				p++;
		}
	}
	// No "Expect: 100-continue" (a receiver that does not answer it would cost a second a request).
	curl_slist *next = curl_slist_append(t->headers, "Expect:");
	if (next != nullptr)
		t->headers = next;

	CURL *e = t->easy;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(strlen(t->body)));
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "thrillmon/" THRILLMON_VERSION);
	// The whole request, connection included, within the channel's timeout; redirects are
	// answers, not followed (a 3xx is a failure); only http and https; no proxy from the server's
	// environment (the allow-list speaks of the receiver, not of a proxy); no signals (the backend
	// owns them: libcurl's resolver runs in a thread instead of using alarm()).
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms));
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout_ms));
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(e, CURLOPT_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, OnBody);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, OnOpenSocket);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, t);
	curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, OnProgress);
	curl_easy_setopt(e, CURLOPT_XFERINFODATA, t);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
	curl_easy_setopt(e, CURLOPT_PRIVATE, t);
	t->started = GetCurrentTimestamp();
	return true;
}

// The outcome of a finished transfer (rc: libcurl's result), then t freed.
void
FinishTransfer(Transfer *t, CURLcode rc, Outcome *o)
{
	memset(o, 0, sizeof *o);
	snprintf(o->channel, sizeof o->channel, "%s", t->channel);
	o->delivery_id = t->delivery_id;
	o->purpose = t->purpose;
	o->started = t->started;
	long status = 0;
	curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
	double total_s = 0;
	curl_easy_getinfo(t->easy, CURLINFO_TOTAL_TIME, &total_s);
	o->http_status = static_cast<int>(status);
	o->latency_ms = total_s * 1000.0;
	snprintf(o->excerpt, sizeof o->excerpt, "%s", t->excerpt);
	if (rc == CURLE_WRITE_ERROR && t->too_big)
		rc = CURLE_OK; // the answer was read far enough to have its status; the rest is dropped
	if (t->refused_address) {
		o->failed = true;
		snprintf(o->error, sizeof o->error,
		         "the address the host resolves to is not in thrillmon.notify_allowed_hosts");
	} else if (rc != CURLE_OK) {
		o->failed = true;
		snprintf(o->error, sizeof o->error, "%s", t->errbuf[0] != '\0' ? t->errbuf : curl_easy_strerror(rc));
	} else if (status < 200 || status > 299) {
		o->failed = true;
		snprintf(o->error, sizeof o->error, "HTTP %ld%s", status,
		         (status >= 300 && status < 400) ? " (a redirect: not followed)" : "");
	}
	FreeTransfer(t);
}

void
InitCurlOnce()
{
	static bool done = false;
	if (!done) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			ereport(ERROR, (errmsg("thrillmon: libcurl failed to initialise")));
		done = true;
	}
}

Datum
TextOrNull(const char *s, bool *isnull)
{
	*isnull = s == nullptr || s[0] == '\0';
	return *isnull ? (Datum) 0 : CStringGetTextDatum(s);
}

// ---- the delivery worker --------------------------------------------------------------------------

struct DeliveryState {
	Transfer transfers[kMaxTransfers];
	Outcome done[kMaxTransfers];
	int n_done;
	CURLM *multi;
	TimestampTz next_claim;
	bool logged_waiting;
	bool logged_serving;
	MemoryContext loop_ctx;
};

using thrillmon::pg::BeginTx;
using thrillmon::pg::EndTx;

int
InFlight(const DeliveryState *st)
{
	int n = 0;
	for (const Transfer &t : st->transfers)
		n += t.used ? 1 : 0;
	return n;
}

// Moves every finished transfer's outcome to st->done.
void
Harvest(DeliveryState *st)
{
	int running = 0;
	curl_multi_perform(st->multi, &running);
	int left = 0;
	CURLMsg *msg;
	while ((msg = curl_multi_info_read(st->multi, &left)) != nullptr) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		Transfer *t = nullptr;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char **>(&t));
		const CURLcode rc = msg->data.result;
		curl_multi_remove_handle(st->multi, msg->easy_handle);
		if (t != nullptr && st->n_done < kMaxTransfers)
			FinishTransfer(t, rc, &st->done[st->n_done++]);
		else if (t != nullptr)
			FreeTransfer(t);
	}
}

// Writes the finished requests' outcomes (in the claim's transaction: one transaction a turn).
void
Record(DeliveryState *st)
{
	for (int i = 0; i < st->n_done; i++) {
		const Outcome &o = st->done[i];
		Oid types[8] = {INT8OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, INT4OID, TEXTOID, FLOAT8OID, TEXTOID};
		Datum values[8];
		char nulls[9] = "        ";
		values[0] = Int64GetDatum(o.delivery_id);
		if (o.delivery_id == 0)
			nulls[0] = 'n';
		values[1] = CStringGetTextDatum(o.channel);
		values[2] = CStringGetTextDatum(o.purpose);
		values[3] = TimestampTzGetDatum(o.started);
		values[4] = Int32GetDatum(o.http_status);
		bool isnull;
		values[5] = TextOrNull(o.failed ? o.error : nullptr, &isnull);
		if (isnull)
			nulls[5] = 'n';
		values[6] = Float8GetDatum(o.latency_ms);
		values[7] = TextOrNull(o.excerpt, &isnull);
		if (isnull)
			nulls[7] = 'n';
		if (SPI_execute_with_args("SELECT thrillmon._delivery_attempted($1, $2, $3, $4, $5, $6, $7, $8)", 8, types,
		                          values, nulls, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "thrillmon: recording a delivery attempt failed");
	}
	st->n_done = 0;
}

Transfer *
FreeSlot(DeliveryState *st)
{
	for (Transfer &t : st->transfers)
		if (!t.used)
			return &t;
	return nullptr;
}

// Starts one request from a claimed row (columns: delivery_id or NULL, channel, url,
// header_lines, timeout_ms, body at the given positions). A URL the allow-list no longer allows
// is an outcome at once, with no connection made.
void
StartFromRow(DeliveryState *st, HeapTuple tup, TupleDesc desc, int c_id, int c_channel, int c_url, int c_headers,
             int c_timeout, int c_body, const char *purpose)
{
	Transfer *t = FreeSlot(st);
	if (t == nullptr)
		return;
	bool isnull;
	int64 id = 0;
	if (c_id > 0) {
		Datum d = SPI_getbinval(tup, desc, c_id, &isnull);
		id = isnull ? 0 : DatumGetInt64(d);
	}
	char *channel = SPI_getvalue(tup, desc, c_channel);
	char *url = SPI_getvalue(tup, desc, c_url);
	char *headers = SPI_getvalue(tup, desc, c_headers);
	char *timeout = SPI_getvalue(tup, desc, c_timeout);
	char *body = SPI_getvalue(tup, desc, c_body);
	if (channel == nullptr || url == nullptr)
		return;
	char why[512] = "";
	memset(t, 0, sizeof *t);
	snprintf(t->channel, sizeof t->channel, "%s", channel);
	t->delivery_id = id;
	t->purpose = purpose;
	if (!PrepareTransfer(t, url, headers, body, timeout == nullptr ? 5000 : atoi(timeout), why, sizeof why)) {
		if (st->n_done < kMaxTransfers) {
			Outcome *o = &st->done[st->n_done++];
			memset(o, 0, sizeof *o);
			snprintf(o->channel, sizeof o->channel, "%s", channel);
			o->delivery_id = id;
			o->purpose = purpose;
			o->started = GetCurrentTimestamp();
			o->failed = true;
			snprintf(o->error, sizeof o->error, "%s", why);
		}
		memset(t, 0, sizeof *t);
		return;
	}
	snprintf(t->channel, sizeof t->channel, "%s", channel);
	t->delivery_id = id;
	t->purpose = purpose;
	if (curl_multi_add_handle(st->multi, t->easy) != CURLM_OK) {
		FreeTransfer(t);
		return;
	}
	t->in_multi = true;
}

// The outbox rows in flight, as a bigint[] (the claim skips them, and counts them against their
// channel's limit).
Datum
InFlightDeliveries(DeliveryState *st)
{
	Datum elems[kMaxTransfers];
	int n = 0;
	for (const Transfer &t : st->transfers)
		if (t.used && t.delivery_id != 0)
			elems[n++] = Int64GetDatum(t.delivery_id);
	return PointerGetDatum(construct_array(elems, n, INT8OID, 8, true, TYPALIGN_DOUBLE));
}

// The channels with a request in flight, as a text[]: a re-send waits until its channel is idle,
// so it never crosses an alert's resolution on the way.
Datum
BusyChannels(DeliveryState *st)
{
	Datum elems[kMaxTransfers];
	int n = 0;
	for (const Transfer &t : st->transfers)
		if (t.used)
			elems[n++] = CStringGetTextDatum(t.channel);
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

// Records what finished, then claims what is due and starts it, in one transaction. False when
// the extension is not there (or too old).
bool
Claim(DeliveryState *st)
{
	bool ready = false;
	BeginTx("thrillmon delivery: recording and claiming");
	if (SPI_execute("SELECT pg_catalog.to_regprocedure('thrillmon._deliveries_due(bigint[])') IS NOT NULL "
	                "FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'thrillmon'",
	                true, 0) != SPI_OK_SELECT)
		elog(ERROR, "thrillmon: checking the extension failed");
	if (SPI_processed > 0) {
		bool isnull;
		ready = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	if (!ready)
		st->n_done = 0; // (the extension is gone: nothing to record them in)
	if (ready) {
		Record(st);
		Oid types[1] = {INT8ARRAYOID};
		Datum values[1] = {InFlightDeliveries(st)};
		if (SPI_execute_with_args("SELECT delivery_id, channel, url, header_lines, timeout_ms, body "
		                          "FROM thrillmon._deliveries_due($1)",
		                          1, types, values, nullptr, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "thrillmon: claiming deliveries failed");
		SPITupleTable *tt = SPI_tuptable;
		for (uint64 i = 0; i < SPI_processed; i++)
			StartFromRow(st, tt->vals[i], tt->tupdesc, 1, 2, 3, 4, 5, 6, "delivery");
		types[0] = TEXTARRAYOID;
		values[0] = BusyChannels(st);
		if (SPI_execute_with_args("SELECT channel, url, header_lines, timeout_ms, body FROM thrillmon._resends_due($1)",
		                          1, types, values, nullptr, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "thrillmon: claiming re-sends failed");
		tt = SPI_tuptable;
		for (uint64 i = 0; i < SPI_processed; i++)
			StartFromRow(st, tt->vals[i], tt->tupdesc, 0, 1, 2, 3, 4, 5, "resend");
	}
	EndTx();
	return ready;
}

// One turn: collect what finished, record it, claim more when something finished or a second
// has passed. Returns how long to wait. Not inlined: its caller's PG_TRY must not share a frame.
pg_noinline long
DeliveryTick(DeliveryState *st)
{
	if (RecoveryInProgress())
		return kIdleSleepMs; // a standby raises no alert and may not write the outbox
	Harvest(st);
	const bool finished = st->n_done > 0;
	const TimestampTz now = GetCurrentTimestamp();
	if (finished || now >= st->next_claim) {
		st->next_claim = TimestampTzPlusMilliseconds(now, kClaimEveryMs);
		if (!Claim(st)) {
			if (!st->logged_waiting)
				ereport(LOG, (errmsg("thrillmon delivery: waiting for CREATE EXTENSION thrillmon (0.8.0 or later)")));
			st->logged_waiting = true;
			st->logged_serving = false;
			st->next_claim = TimestampTzPlusMilliseconds(now, kWaitExtensionMs);
			return kWaitExtensionMs;
		}
		if (!st->logged_serving)
			ereport(LOG, (errmsg("thrillmon delivery: delivering this database's alerts")));
		st->logged_serving = true;
		st->logged_waiting = false;
		Harvest(st); // start the new requests at once
	}
	if (st->n_done > 0)
		return 0; // a request finished already (a fast receiver): record it and claim again now
	const long until = static_cast<long>((st->next_claim - GetCurrentTimestamp()) / 1000);
	return until < 1 ? 1 : until;
}

} // namespace

// _url_problem(url): NULL when a channel may use url, else why not. A host name allowed only
// through network entries is resolved now, and must have an address inside them (the worker
// checks the address it connects to again, every time).
THRILLMON_FUNCTION(thrillmon_url_problem)
{
	char *url = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char why[512] = "";
	bool by_address = false;
	char host[delivery::kMaxUrlChars + 1]; // (a host is never longer than its URL)
	int port = 0;
	const char *allow = thrillmon::pg::notify_allowed_hosts;
	if (!CheckUrl(url, allow, why, sizeof why, &by_address, host, sizeof host, &port))
		PG_RETURN_TEXT_P(cstring_to_text(why));
	if (!by_address)
		PG_RETURN_NULL();
	struct addrinfo hints;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	struct addrinfo *res = nullptr;
	const int rc = getaddrinfo(host, nullptr, &hints, &res);
	if (rc != 0) {
		snprintf(
		    why, sizeof why,
		    "host \"%s\" is not in thrillmon.notify_allowed_hosts and cannot be resolved to check its address (%s)",
		    host, gai_strerror(rc));
		PG_RETURN_TEXT_P(cstring_to_text(why));
	}
	bool allowed = false;
	char first[INET6_ADDRSTRLEN] = "";
	for (struct addrinfo *a = res; a != nullptr && !allowed; a = a->ai_next) {
		char text[INET6_ADDRSTRLEN] = "";
		if (a->ai_family == AF_INET)
			inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in *>(a->ai_addr)->sin_addr, text, sizeof text);
		else if (a->ai_family == AF_INET6)
			inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6 *>(a->ai_addr)->sin6_addr, text, sizeof text);
		if (first[0] == '\0')
			snprintf(first, sizeof first, "%s", text);
		allowed = text[0] != '\0' && CheckAddress(allow, text, port);
	}
	freeaddrinfo(res);
	if (allowed)
		PG_RETURN_NULL();
	snprintf(why, sizeof why, "host \"%s\" (%s) port %d is not in thrillmon.notify_allowed_hosts", host, first, port);
	PG_RETURN_TEXT_P(cstring_to_text(why));
}

// _http_post(url, header_lines, body, timeout_ms): one request now, under the worker's rules.
// Nothing here owns a C++ object; libcurl's handle is freed before any ereport.
THRILLMON_FUNCTION(thrillmon_http_post)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(3))
		ereport(ERROR,
		        (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("thrillmon: _http_post needs a URL and a timeout")));
	const char *url = text_to_cstring(PG_GETARG_TEXT_PP(0));
	const char *headers = PG_ARGISNULL(1) ? nullptr : text_to_cstring(PG_GETARG_TEXT_PP(1));
	const char *body = PG_ARGISNULL(2) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(2));
	int timeout_ms = PG_GETARG_INT32(3);
	timeout_ms = timeout_ms < 100 ? 100 : (timeout_ms > 60000 ? 60000 : timeout_ms);
	TupleDesc tupdesc;
	if (get_call_result_type(fcinfo, nullptr, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "thrillmon: return type must be a row type");
	InitCurlOnce();

	Transfer *t = static_cast<Transfer *>(palloc0(sizeof(Transfer)));
	Outcome *o = static_cast<Outcome *>(palloc0(sizeof(Outcome)));
	char why[512] = "";
	if (!PrepareTransfer(t, url, headers, body, timeout_ms, why, sizeof why)) {
		o->failed = true;
		snprintf(o->error, sizeof o->error, "%s", why);
	} else {
		t->interruptible = true;
		const CURLcode rc = curl_easy_perform(t->easy);
		FinishTransfer(t, rc, o); // frees the handle
		CHECK_FOR_INTERRUPTS();   // a cancel that stopped the request ends the query here
	}
	Datum values[4];
	bool nulls[4] = {};
	values[0] = Int32GetDatum(o->http_status);
	nulls[0] = o->http_status == 0;
	values[1] = Float8GetDatum(o->latency_ms);
	values[2] = TextOrNull(o->failed ? o->error : nullptr, &nulls[2]);
	values[3] = TextOrNull(o->excerpt, &nulls[3]);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

extern "C" void
thrillmon_delivery_main(Datum main_arg)
{
	// SIGTERM (an immediate or fast stop included) ends us at the next CHECK_FOR_INTERRUPTS,
	// requests in flight or not: their deliveries are still pending in the outbox, so the next
	// start sends them again (at least once; receivers de-duplicate by the idempotency key).
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(thrillmon::pg::worker_database, nullptr, 0);
	// As in the collector worker (worker.cpp): a superuser in a database someone else may own.
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	pgstat_report_appname("thrillmon delivery");
	InitCurlOnce();

	DeliveryState *st = static_cast<DeliveryState *>(MemoryContextAllocZero(TopMemoryContext, sizeof(DeliveryState)));
	st->loop_ctx = AllocSetContextCreate(TopMemoryContext, "thrillmon delivery loop", ALLOCSET_DEFAULT_SIZES);
	st->multi = curl_multi_init();
	if (st->multi == nullptr)
		ereport(FATAL, (errmsg("thrillmon delivery: libcurl failed to initialise")));

	for (;;) {
		CHECK_FOR_INTERRUPTS();
		if (!PostmasterIsAlive())
			proc_exit(1); // (WaitLatch sees it too, but not while requests are in flight)
		if (ConfigReloadPending) {
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		MemoryContextSwitchTo(st->loop_ctx);
		MemoryContextReset(st->loop_ctx);

		volatile long sleep_ms = kErrorBackoffMs;
		PG_TRY();
		{
			sleep_ms = DeliveryTick(st);
		}
		PG_CATCH();
		{
			// A failed transaction (the extension dropped under us, a lock timeout): requests in
			// flight go on, outcomes not yet recorded are dropped (their deliveries are still
			// pending, so they are sent again), and the worker tries again after a pause.
			MemoryContextSwitchTo(st->loop_ctx);
			ErrorData *edata = CopyErrorData();
			FlushErrorState();
			AbortCurrentTransaction();
			ereport(LOG, (errmsg("thrillmon delivery: %s", edata->message)));
			st->n_done = 0;
			st->next_claim = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), kErrorBackoffMs);
			sleep_ms = kErrorBackoffMs;
		}
		PG_END_TRY();

		if (sleep_ms == 0) {
			continue;
		} else if (InFlight(st) > 0) {
			// Requests in flight: wait on their sockets, a tenth of a second at most, so a SIGTERM
			// or a reload is seen soon.
			const long wait = sleep_ms < 100 ? sleep_ms : 100;
			curl_multi_poll(st->multi, nullptr, 0, static_cast<int>(wait), nullptr);
		} else {
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, sleep_ms, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
	}
}
