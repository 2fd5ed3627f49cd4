/*
 * check_addr.c - unit tests of uzswapd's HOST:PORT parser (daemon/
 * addr.c), the one the "metrics" key and the metrics listener share:
 * IPv4, localhost and bracketed IPv6 with ports 0 and 65535, "off", and
 * each malformed form (no port, an empty or signed or spaced port, 65536,
 * IPv6 without brackets, brackets around IPv4, names, an empty host);
 * addr_format() gives back what was parsed.
 *
 * Under valgrind: CK_FORK=no valgrind --leak-check=full ./check_addr
 */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/addr.h"

/* @s parses, and formats back as @formatted. */
static void parses_as(const char *s, int family, const char *formatted)
{
	struct sockaddr_storage sa;
	char buf[ADDR_STRLEN];
	const char *why = NULL;
	socklen_t len;

	ck_assert_msg(addr_parse(s, &sa, &len, &why) == 0, "%s: %s", s, why);
	ck_assert_int_eq(sa.ss_family, family);
	ck_assert_uint_eq(len, family == AF_INET6 ? sizeof(struct sockaddr_in6)
						  : sizeof(struct sockaddr_in));
	addr_format(&sa, buf, sizeof(buf));
	ck_assert_str_eq(buf, formatted);
}

/* @s is refused, saying something containing @why. */
static void refused(const char *s, const char *why)
{
	struct sockaddr_storage sa;
	const char *got = NULL;
	socklen_t len;

	ck_assert_msg(addr_parse(s, &sa, &len, &got) == -EINVAL,
		      "'%s' taken", s);
	ck_assert_msg(got && strstr(got, why), "'%s': %s", s, got);
}

START_TEST(test_ipv4)
{
	parses_as("127.0.0.1:9577", AF_INET, "127.0.0.1:9577");
	parses_as("0.0.0.0:0", AF_INET, "0.0.0.0:0");
	parses_as("10.1.2.3:65535", AF_INET, "10.1.2.3:65535");
	parses_as("127.0.0.1:09577", AF_INET, "127.0.0.1:9577");
}
END_TEST

START_TEST(test_localhost)
{
	parses_as("localhost:9577", AF_INET, "127.0.0.1:9577");
	parses_as("localhost:0", AF_INET, "127.0.0.1:0");
}
END_TEST

START_TEST(test_ipv6)
{
	parses_as("[::1]:9577", AF_INET6, "[::1]:9577");
	parses_as("[::]:0", AF_INET6, "[::]:0");
	parses_as("[2001:db8::1]:65535", AF_INET6, "[2001:db8::1]:65535");
	parses_as("[::ffff:127.0.0.1]:80", AF_INET6, "[::ffff:127.0.0.1]:80");
}
END_TEST

START_TEST(test_off)
{
	struct sockaddr_storage sa;
	socklen_t len = 1;

	ck_assert_int_eq(addr_parse("off", &sa, &len, NULL), 0);
	ck_assert_int_eq(sa.ss_family, AF_UNSPEC);
	ck_assert_uint_eq(len, 0);
	refused("OFF", "HOST:PORT");
	refused("off:9577", "IPv4");
}
END_TEST

START_TEST(test_bad_port)
{
	refused("127.0.0.1", "HOST:PORT");
	refused("127.0.0.1:", "port");
	refused("127.0.0.1:65536", "port");
	refused("127.0.0.1:99999999999999999999", "port");
	refused("127.0.0.1:-1", "port");
	refused("127.0.0.1:+80", "port");
	refused("127.0.0.1: 80", "port");
	refused("127.0.0.1:80 ", "port");
	refused("127.0.0.1:0x50", "port");
	refused("[::1]", "[IPV6-ADDRESS]:PORT");
	refused("[::1]:", "port");
	refused("[::1]:65536", "port");
}
END_TEST

START_TEST(test_bad_host)
{
	refused(":9577", "before the port");
	refused("[]:9577", "before the port");
	refused("256.1.1.1:9577", "IPv4");
	refused("1.2.3:9577", "IPv4");
	refused("example.com:9577", "IPv4");
	refused("::1:9577", "brackets");
	refused("[127.0.0.1]:9577", "IPv6");
	refused("[::1:9577", "[IPV6-ADDRESS]:PORT");
	refused("::1]:9577", "IPv4");
	refused("[::g]:9577", "IPv6");
	refused("[0000:0000:0000:0000:0000:0000:0000:0000:0000:0000]:1",
		"before the port");
	refused("", "HOST:PORT");
}
END_TEST

/* The longest IPv6 text formats within ADDR_STRLEN. */
START_TEST(test_format_longest)
{
	parses_as("[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535",
		  AF_INET6, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
}
END_TEST

static Suite *addr_suite(void)
{
	Suite *s = suite_create("addr");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, test_ipv4);
	tcase_add_test(tc, test_localhost);
	tcase_add_test(tc, test_ipv6);
	tcase_add_test(tc, test_off);
	tcase_add_test(tc, test_bad_port);
	tcase_add_test(tc, test_bad_host);
	tcase_add_test(tc, test_format_longest);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(addr_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
