#include "core/delivery.hpp"

#include <gtest/gtest.h>

using namespace thrillmon::delivery;

namespace {

Url
Parsed(const char *s)
{
	Url u;
	std::string err;
	EXPECT_TRUE(ParseUrl(s, &u, &err)) << s << ": " << err;
	return u;
}

bool
Refused(const char *s)
{
	Url u;
	std::string err;
	return !ParseUrl(s, &u, &err) && !err.empty();
}

bool
Allowed(const char *list, const char *url, bool *by_address = nullptr)
{
	bool b = false;
	const bool ok = HostAllowed(list, Parsed(url), &b);
	if (by_address)
		*by_address = b;
	return ok;
}

} // namespace

TEST(DeliveryUrl, TakesApartHttpAndHttps)
{
	Url u = Parsed("http://Hooks.Example.com:9093/api/v2/alerts");
	EXPECT_EQ(u.scheme, "http");
	EXPECT_EQ(u.host, "hooks.example.com");
	EXPECT_EQ(u.port, 9093);
	EXPECT_FALSE(u.host_is_ip);
	EXPECT_EQ(Parsed("https://example.com").port, 443);
	EXPECT_EQ(Parsed("http://example.com?x=1").port, 80);
	Url v6 = Parsed("http://[::1]:8080/x");
	EXPECT_EQ(v6.host, "::1");
	EXPECT_TRUE(v6.host_is_ip);
	EXPECT_TRUE(Parsed("http://127.0.0.1/").host_is_ip);
}

TEST(DeliveryUrl, RefusesWhatCannotBeAChannel)
{
	EXPECT_TRUE(Refused("ftp://example.com/"));
	EXPECT_TRUE(Refused("file:///etc/passwd"));
	EXPECT_TRUE(Refused("gopher://127.0.0.1:25/"));
	EXPECT_TRUE(Refused("example.com/hook"));
	EXPECT_TRUE(Refused("http://user:secret@example.com/"));
	EXPECT_TRUE(Refused("http:///path"));
	EXPECT_TRUE(Refused("http://example.com:0/"));
	EXPECT_TRUE(Refused("http://example.com:65536/"));
	EXPECT_TRUE(Refused("http://example.com:80x/"));
	EXPECT_TRUE(Refused("http://exa mple.com/"));
	EXPECT_TRUE(Refused("http://example.com/\r\nHost: evil"));
	EXPECT_TRUE(Refused("http://[::1/"));
	EXPECT_TRUE(Refused("http://[1.2.3.4]/"));
	EXPECT_TRUE(Refused("http://ex%61mple.com/"));
}

TEST(DeliveryAllowList, EmptyAllowsNothing)
{
	EXPECT_FALSE(Allowed("", "http://127.0.0.1:9093/"));
	EXPECT_FALSE(Allowed("", "http://localhost/"));
	EXPECT_FALSE(Allowed(" , ", "http://localhost/"));
}

TEST(DeliveryAllowList, NamesWildcardsAndPorts)
{
	EXPECT_TRUE(Allowed("localhost", "http://LOCALHOST:9093/"));
	EXPECT_FALSE(Allowed("localhost", "http://localhost.evil.com/"));
	EXPECT_TRUE(Allowed("*.example.com", "https://hooks.example.com/"));
	EXPECT_FALSE(Allowed("*.example.com", "https://example.com/"));
	EXPECT_FALSE(Allowed("*.example.com", "https://badexample.com/"));
	EXPECT_TRUE(Allowed("a.org, localhost:9093", "http://localhost:9093/"));
	EXPECT_FALSE(Allowed("a.org, localhost:9093", "http://localhost:9094/"));
	EXPECT_FALSE(Allowed("localhost:9093", "http://localhost/"));
	EXPECT_TRUE(Allowed("*", "http://anything.at.all:1234/"));
	EXPECT_TRUE(Allowed("*", "http://10.1.2.3/"));
	EXPECT_FALSE(Allowed("*:443", "http://anything/"));
}

TEST(DeliveryAllowList, AddressesAndNetworks)
{
	EXPECT_TRUE(Allowed("127.0.0.1", "http://127.0.0.1:9093/"));
	EXPECT_FALSE(Allowed("127.0.0.1", "http://127.0.0.2/"));
	EXPECT_TRUE(Allowed("10.0.0.0/8", "http://10.200.3.4/"));
	EXPECT_FALSE(Allowed("10.0.0.0/8", "http://11.0.0.1/"));
	EXPECT_TRUE(Allowed("[::1]:9093", "http://[::1]:9093/"));
	EXPECT_FALSE(Allowed("[::1]:9093", "http://[::1]:9094/"));
	EXPECT_TRUE(Allowed("fd00::/8", "http://[fd12::1]/"));
	EXPECT_FALSE(Allowed("fd00::/8", "http://[fe80::1]/"));
	// A name is not an address: an address entry does not allow "localhost" outright; it defers
	// to the address the name resolves to when connecting.
	bool by_address = false;
	EXPECT_TRUE(Allowed("127.0.0.0/8", "http://localhost/", &by_address));
	EXPECT_TRUE(by_address);
	EXPECT_TRUE(AddressAllowed("127.0.0.0/8", "127.0.0.1", 80));
	EXPECT_FALSE(AddressAllowed("127.0.0.0/8", "192.168.1.1", 80));
	EXPECT_FALSE(AddressAllowed("localhost", "127.0.0.1", 80));
	EXPECT_FALSE(HasAddressEntries("localhost, *.example.com"));
	EXPECT_TRUE(HasAddressEntries("localhost 127.0.0.1"));
	// Malformed entries are ignored, not taken as "*".
	EXPECT_FALSE(Allowed("10.0.0.0/99, :80, [::1", "http://10.0.0.1/"));
}

TEST(DeliveryLike, SqlLikeSemantics)
{
	EXPECT_TRUE(LikeMatch("%", ""));
	EXPECT_TRUE(LikeMatch("%", "anything"));
	EXPECT_TRUE(LikeMatch("db_%", "db_connections"));
	EXPECT_TRUE(LikeMatch("db\\_%", "db_connections"));
	EXPECT_FALSE(LikeMatch("db\\_%", "dbxconnections"));
	EXPECT_TRUE(LikeMatch("a_c", "abc"));
	EXPECT_TRUE(LikeMatch("a_c", "aéc"));
	EXPECT_FALSE(LikeMatch("a_c", "abbc"));
	EXPECT_TRUE(LikeMatch("%lag%", "replication_lag_seconds"));
	EXPECT_FALSE(LikeMatch("%lag", "replication_lag_seconds"));
	EXPECT_TRUE(LikeMatch("exact", "exact"));
	EXPECT_FALSE(LikeMatch("exact", "exactly"));
	EXPECT_TRUE(LikeMatch("%%a%%b%%", "xxaxxbxx"));
	EXPECT_FALSE(LikeMatch("%a%b", "xxbxxa"));
	// A pathological pattern stays fast (one backtrack point).
	std::string text(20000, 'a');
	EXPECT_FALSE(LikeMatch("%a%a%a%a%a%a%a%b", text));
}

#include "core/detect_pass.hpp"

TEST(MaintenanceWindows, CoverOnlyTheirMetricsAndTimes)
{
	using thrillmon::detect::InWindows;
	using thrillmon::detect::Window;
	using thrillmon::detect::WindowsFor;
	const std::vector<Window> windows = {{"db_%", 100, 200}, {"other", 0, 1000}, {"db_size", 300, 300}};
	const auto w = WindowsFor(windows, "db_size");
	ASSERT_EQ(w.size(), 1u); // the empty window covers nothing
	EXPECT_FALSE(InWindows(w, 99.9));
	EXPECT_TRUE(InWindows(w, 100));
	EXPECT_TRUE(InWindows(w, 199.9));
	EXPECT_FALSE(InWindows(w, 200)); // the end is excluded
	EXPECT_TRUE(WindowsFor(windows, "cpu").empty());
}
