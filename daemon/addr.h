/*
 * addr.h - the HOST:PORT addresses uzswapd listens on (the metrics
 * endpoint): the one parser of the configuration key and of the socket
 * it binds, and its inverse.
 *
 * Private to uzswapd. Pure functions of their arguments (libc only): safe
 * from any thread; no name is ever resolved.
 */
#ifndef UZSWAPD_ADDR_H
#define UZSWAPD_ADDR_H

#include <netinet/in.h>
#include <sys/socket.h>

/* "[V6-ADDRESS]:65535" and its NUL */
#define ADDR_STRLEN	(INET6_ADDRSTRLEN + 8)

/*
 * addr_parse() - parse "IPV4:PORT", "[IPV6]:PORT", "localhost:PORT"
 * (127.0.0.1) or "off"
 * @s:    the text
 * @sa:   the address; sa->ss_family is AF_UNSPEC for "off"
 * @len:  its length (0 for "off")
 * @why:  on -EINVAL, what is wrong (static text); may be NULL
 *
 * PORT is decimal digits, 0 to 65535 (0: any free port).
 * Return: 0, or -EINVAL.
 */
int addr_parse(const char *s, struct sockaddr_storage *sa, socklen_t *len,
	       const char **why);

/* "ADDR:PORT" or "[ADDR]:PORT" of an AF_INET or AF_INET6 @sa, into @buf
 * of @size bytes (ADDR_STRLEN is enough). */
void addr_format(const struct sockaddr_storage *sa, char *buf, size_t size);

#endif /* UZSWAPD_ADDR_H */
