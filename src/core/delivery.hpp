// Alert delivery, the parts that need no Postgres: which URLs a channel may have, which hosts
// and addresses thrillmon.notify_allowed_hosts lets it reach, and SQL LIKE matching of metric
// patterns (silences, maintenance windows and channels share it). The glue (src/pg/delivery.cpp)
// does the HTTP with libcurl; the SQL side keeps the outbox.
#pragma once
#include "core/no_postgres.hpp"

#include <cstddef>
#include <string>
#include <string_view>

namespace thrillmon::delivery {

// Bounds of what an admin can create (the SQL side's CHECKs and messages take them through sqlgen).
inline constexpr int kMaxChannels = 32;
inline constexpr int kMaxActiveSilences = 1000;
inline constexpr int kMaxPendingDeliveries = 100000;
// Requests in flight to one channel at once (for different alerts: one alert's go one at a time).
inline constexpr int kMaxInFlightPerChannel = 4;
inline constexpr int kMaxUrlChars = 2048;
inline constexpr int kMaxHeadersBytes = 8192;
// What is kept of a receiver's answer (the rest is read up to kMaxResponseBytes, then dropped).
inline constexpr std::size_t kResponseExcerptChars = 256;
inline constexpr std::size_t kMaxResponseBytes = 65536;

// An http or https URL, taken apart as far as the allow-list needs: the host as written (a name,
// lower-cased; an IPv4 literal; an IPv6 literal without its brackets) and the port (the scheme's
// default when absent).
struct Url {
	std::string scheme;
	std::string host;
	int port = 0;
	bool host_is_ip = false;
};

// Parses url into *out; on failure returns false with a reason in *error. Refused: other schemes,
// user information (a password in a URL would be readable by anyone who can read the URL), an
// empty host, a port outside 1..65535, control characters and spaces.
bool ParseUrl(std::string_view url, Url *out, std::string *error);

// thrillmon.notify_allowed_hosts: entries separated by commas or spaces. An entry is a host name
// (exact, case-insensitive), *.domain (any host below domain), an IP address, an IP network in
// CIDR notation, or any of these followed by :port to allow that port only. "*" alone allows every
// host. Empty: nothing is allowed.
//
// Whether a URL's host and port are allowed before any connection: true when an entry names them
// (a name entry for a name, an address or network entry for an IP literal). *by_address is set
// when a host name is allowed only because network entries might cover its addresses: the glue
// must then check the address it actually connects to with AddressAllowed (so a DNS change
// cannot take the channel outside the networks listed).
bool HostAllowed(std::string_view allowlist, const Url &url, bool *by_address);

// Whether an address (textual IPv4 or IPv6) and port are covered by an address or network entry.
bool AddressAllowed(std::string_view allowlist, std::string_view address, int port);

// Whether any address or network entry exists (a host name may then be reachable through one).
bool HasAddressEntries(std::string_view allowlist);

// SQL LIKE: % any run, _ one character (a UTF-8 sequence), backslash escapes the next character.
bool LikeMatch(std::string_view pattern, std::string_view text);

} // namespace thrillmon::delivery
