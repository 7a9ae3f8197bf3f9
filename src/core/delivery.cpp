#include "core/delivery.hpp"

#include <arpa/inet.h>

#include <cstdint>
#include <cstring>

namespace thrillmon::delivery {

namespace {

char
Lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string
Lowered(std::string_view s)
{
	std::string out(s);
	for (char &c : out)
		c = Lower(c);
	return out;
}

// A decimal number from lo to hi, digits only (no sign, no space); false otherwise.
bool
ParseNumber(std::string_view text, int lo, int hi, int *out)
{
	if (text.empty())
		return false;
	int n = 0;
	for (char c : text) {
		if (c < '0' || c > '9' || n > hi)
			return false;
		n = n * 10 + (c - '0');
	}
	if (n < lo || n > hi)
		return false;
	*out = n;
	return true;
}

// An address as 16 bytes (IPv4 mapped into ::ffff:0:0/96, so one comparison serves both).
struct Address {
	unsigned char bytes[16];
};

bool
ParseAddress(std::string_view text, Address *out, bool *v4)
{
	if (text.empty() || text.size() > 45)
		return false;
	char buf[64];
	std::memcpy(buf, text.data(), text.size());
	buf[text.size()] = '\0';
	unsigned char raw[16];
	if (inet_pton(AF_INET, buf, raw) == 1) {
		std::memset(out->bytes, 0, 10);
		out->bytes[10] = out->bytes[11] = 0xff;
		std::memcpy(out->bytes + 12, raw, 4);
		*v4 = true;
		return true;
	}
	if (inet_pton(AF_INET6, buf, raw) == 1) {
		std::memcpy(out->bytes, raw, 16);
		*v4 = false;
		return true;
	}
	return false;
}

bool
PrefixEqual(const Address &a, const Address &b, int bits)
{
	for (int i = 0; i < 16 && bits > 0; i++, bits -= 8) {
		const unsigned mask = bits >= 8 ? 0xffu : (0xffu << (8 - bits)) & 0xffu;
		if ((a.bytes[i] & mask) != (b.bytes[i] & mask))
			return false;
	}
	return true;
}

// One entry of the allow-list, taken apart.
struct Entry {
	std::string host; // name, *.domain, "*", or address text
	int port = 0;     // 0: any
	bool is_address = false;
	Address address {};
	int prefix_bits = 128;
};

// Splits "host[:port]", "[v6]:port", "v6", "net/bits" into an entry; false for nonsense.
bool
ParseEntry(std::string_view text, Entry *e)
{
	std::string_view host = text;
	std::string_view port;
	if (!text.empty() && text.front() == '[') {
		const std::size_t close = text.find(']');
		if (close == std::string_view::npos)
			return false;
		host = text.substr(1, close - 1);
		std::string_view rest = text.substr(close + 1);
		if (!rest.empty()) {
			if (rest.front() != ':')
				return false;
			port = rest.substr(1);
		}
	} else {
		const std::size_t colon = text.find(':');
		// More than one colon without brackets: a bare IPv6 address (or network), no port.
		if (colon != std::string_view::npos && text.find(':', colon + 1) == std::string_view::npos) {
			host = text.substr(0, colon);
			port = text.substr(colon + 1);
		}
	}
	if (!port.empty() && !ParseNumber(port, 1, 65535, &e->port))
		return false;
	std::string_view bits;
	const std::size_t slash = host.find('/');
	if (slash != std::string_view::npos) {
		bits = host.substr(slash + 1);
		host = host.substr(0, slash);
	}
	bool v4 = false;
	if (ParseAddress(host, &e->address, &v4)) {
		e->is_address = true;
		e->host = std::string(host);
		e->prefix_bits = 128;
		if (!bits.empty()) {
			int b = 0;
			if (!ParseNumber(bits, 0, v4 ? 32 : 128, &b))
				return false;
			e->prefix_bits = v4 ? 96 + b : b;
		}
		return true;
	}
	if (!bits.empty() || host.empty())
		return false;
	e->host = Lowered(host);
	return true;
}

// Calls f(entry) for each well-formed entry; f returns true to stop.
template <typename F>
bool
AnyEntry(std::string_view list, F f)
{
	std::size_t i = 0;
	while (i < list.size()) {
		while (i < list.size() && (list[i] == ',' || list[i] == ' ' || list[i] == '\t' || list[i] == '\n'))
			i++;
		std::size_t j = i;
		while (j < list.size() && list[j] != ',' && list[j] != ' ' && list[j] != '\t' && list[j] != '\n')
			j++;
		if (j > i) {
			Entry e;
			if (ParseEntry(list.substr(i, j - i), &e) && f(e))
				return true;
		}
		i = j;
	}
	return false;
}

bool
NameMatches(const Entry &e, const std::string &host)
{
	if (e.host == "*")
		return true;
	if (e.host.size() > 2 && e.host[0] == '*' && e.host[1] == '.') {
		const std::string_view suffix = std::string_view(e.host).substr(1); // ".domain"
		return host.size() > suffix.size() && host.compare(host.size() - suffix.size(), suffix.size(), suffix) == 0;
	}
	return e.host == host;
}

} // namespace

bool
ParseUrl(std::string_view url, Url *out, std::string *error)
{
	for (char c : url) {
		if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
			*error = "URL contains a space or a control character";
			return false;
		}
	}
	const std::size_t sep = url.find("://");
	if (sep == std::string_view::npos) {
		*error = "URL must start with http:// or https://";
		return false;
	}
	out->scheme = Lowered(url.substr(0, sep));
	if (out->scheme != "http" && out->scheme != "https") {
		*error = "URL scheme must be http or https, not \"" + out->scheme + "\"";
		return false;
	}
	std::string_view rest = url.substr(sep + 3);
	const std::size_t end = rest.find_first_of("/?#");
	const std::string_view authority = rest.substr(0, end);
	if (authority.find('@') != std::string_view::npos) {
		*error = "URL must not contain user information (put credentials in the channel's headers)";
		return false;
	}
	std::string_view host = authority;
	std::string_view port;
	if (!host.empty() && host.front() == '[') {
		const std::size_t close = host.find(']');
		if (close == std::string_view::npos) {
			*error = "URL has an unterminated [IPv6] host";
			return false;
		}
		std::string_view after = host.substr(close + 1);
		host = host.substr(1, close - 1);
		if (!after.empty()) {
			if (after.front() != ':') {
				*error = "URL has text after its [IPv6] host";
				return false;
			}
			port = after.substr(1);
		}
		Address a;
		bool v4;
		if (!ParseAddress(host, &a, &v4) || v4) {
			*error = "URL has an invalid [IPv6] host";
			return false;
		}
		out->host_is_ip = true;
	} else {
		const std::size_t colon = host.rfind(':');
		if (colon != std::string_view::npos) {
			port = host.substr(colon + 1);
			host = host.substr(0, colon);
		}
		Address a;
		bool v4;
		out->host_is_ip = ParseAddress(host, &a, &v4);
	}
	if (host.empty()) {
		*error = "URL has no host";
		return false;
	}
	for (char c : host) {
		const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		                c == '.' || c == '_' || (out->host_is_ip && c == ':');
		if (!ok) {
			*error = "URL host contains a character a host name cannot have";
			return false;
		}
	}
	out->host = Lowered(host);
	out->port = out->scheme == "https" ? 443 : 80;
	if (!port.empty() && !ParseNumber(port, 1, 65535, &out->port)) {
		*error = "URL port is not a number from 1 to 65535";
		return false;
	}
	return true;
}

bool
HostAllowed(std::string_view allowlist, const Url &url, bool *by_address)
{
	*by_address = false;
	if (url.host_is_ip)
		return AddressAllowed(allowlist, url.host, url.port) || AnyEntry(allowlist, [&](const Entry &e) {
			       return e.host == "*" && (e.port == 0 || e.port == url.port);
		       });
	if (AnyEntry(allowlist, [&](const Entry &e) {
		    return !e.is_address && NameMatches(e, url.host) && (e.port == 0 || e.port == url.port);
	    }))
		return true;
	if (HasAddressEntries(allowlist)) {
		*by_address = true;
		return true;
	}
	return false;
}

bool
AddressAllowed(std::string_view allowlist, std::string_view address, int port)
{
	Address a;
	bool v4;
	if (!ParseAddress(address, &a, &v4))
		return false;
	return AnyEntry(allowlist, [&](const Entry &e) {
		if (e.host == "*")
			return e.port == 0 || e.port == port;
		return e.is_address && PrefixEqual(e.address, a, e.prefix_bits) && (e.port == 0 || e.port == port);
	});
}

bool
HasAddressEntries(std::string_view allowlist)
{
	return AnyEntry(allowlist, [](const Entry &e) { return e.is_address; });
}

bool
LikeMatch(std::string_view p, std::string_view t)
{
	// Iterative matching with one backtrack point (the last %): linear in practice, never
	// exponential, whatever the pattern.
	std::size_t pi = 0, ti = 0, star_p = std::string_view::npos, star_t = 0;
	auto char_len = [](std::string_view s, std::size_t i) {
		std::size_t n = 1;
		while (i + n < s.size() && (static_cast<unsigned char>(s[i + n]) & 0xC0) == 0x80)
			n++;
		return n;
	};
	while (ti < t.size()) {
		if (pi < p.size() && p[pi] == '%') {
			star_p = pi++;
			star_t = ti;
			continue;
		}
		if (pi < p.size() && p[pi] == '_') {
			pi++;
			ti += char_len(t, ti);
			continue;
		}
		if (pi < p.size()) {
			std::size_t q = pi;
			if (p[q] == '\\' && q + 1 < p.size())
				q++;
			const std::size_t n = char_len(p, q);
			if (t.compare(ti, n, p.substr(q, n)) == 0) {
				pi = q + n;
				ti += n;
				continue;
			}
		}
		if (star_p == std::string_view::npos)
			return false;
		pi = star_p + 1;
		star_t += char_len(t, star_t);
		ti = star_t;
	}
	while (pi < p.size() && p[pi] == '%')
		pi++;
	return pi == p.size();
}

} // namespace thrillmon::delivery
