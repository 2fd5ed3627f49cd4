/*
 * addr.c - HOST:PORT addresses of uzswapd's TCP listener (see addr.h).
 *
 * One parser for the "metrics" configuration key (conf.c checks a value
 * with it) and for the socket metrics.c binds, so that what the
 * configuration takes is exactly what can be served. HOST is an IPv4
 * literal, "localhost" (127.0.0.1, never looked up) or an IPv6 literal in
 * brackets; IPv6 without brackets is refused, as "::1:9577" is ambiguous.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

/* PORT: decimal digits only, at most 65535. */
static int addr_parse_port(const char *s, uint16_t *port)
{
	unsigned long n;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	n = strtoul(s, &end, 10);
	if (*end || errno || n > 65535)
		return -EINVAL;
	*port = (uint16_t)n;
	return 0;
}

/* The address @host (NUL-terminated, no brackets) of family @family at
 * @port into @sa. */
static int addr_fill(int family, const char *host, uint16_t port,
		     struct sockaddr_storage *sa, socklen_t *len)
{
	struct sockaddr_in *in = (struct sockaddr_in *)sa;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;

	if (family == AF_INET6) {
		if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
			return -EINVAL;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*len = sizeof(*in6);
		return 0;
	}
	if (!strcmp(host, "localhost"))
		host = "127.0.0.1";
	if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
		return -EINVAL;
	in->sin_family = AF_INET;
	in->sin_port = htons(port);
	*len = sizeof(*in);
	return 0;
}

int addr_parse(const char *s, struct sockaddr_storage *sa, socklen_t *len,
	       const char **why)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon = strrchr(s, ':'), *hs = s, *he = colon;
	bool v6 = s[0] == '[';
	const char *ignored;
	uint16_t port;

	if (!why)
		why = &ignored;
	memset(sa, 0, sizeof(*sa));
	*len = 0;
	if (!strcmp(s, "off")) {
		sa->ss_family = AF_UNSPEC;
		return 0;
	}
	if (!colon) {
		*why = "expected HOST:PORT";
		return -EINVAL;
	}
	if (v6) {
		if (colon[-1] != ']') {
			*why = "expected [IPV6-ADDRESS]:PORT";
			return -EINVAL;
		}
		hs = s + 1;
		he = colon - 1;
	}
	if (addr_parse_port(colon + 1, &port)) {
		*why = "the port must be a number from 0 to 65535";
		return -EINVAL;
	}
	if (he <= hs || (size_t)(he - hs) >= sizeof(host)) {
		*why = "expected an IP address or localhost before the port";
		return -EINVAL;
	}
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';
	if (addr_fill(v6 ? AF_INET6 : AF_INET, host, port, sa, len)) {
		*why = v6 ? "not an IPv6 address"
			  : "not an IPv4 address (IPv6 goes in brackets: "
			    "[::1]:9577)";
		return -EINVAL;
	}
	return 0;
}

void addr_format(const struct sockaddr_storage *sa, char *buf, size_t size)
{
	char host[INET6_ADDRSTRLEN];

	if (sa->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
			(const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(buf, size, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(buf, size, "%s:%u", host, ntohs(in->sin_port));
	}
}
