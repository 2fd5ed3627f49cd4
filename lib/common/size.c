/*
 * size.c - parsing and printing sizes (see size.h).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "size.h"

uint64_t size_ram_bytes(void)
{
	return (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* The shift of suffix @c, -1 if it is none. memchr(), not strchr(): a
 * space (0x20) folds to the string's NUL, which strchr() finds. */
static int suffix_shift(char c)
{
	static const char suffixes[] = "KMGT";
	const char *p = memchr(suffixes, c & ~0x20, sizeof(suffixes) - 1);

	return p ? 10 * (int)(p - suffixes + 1) : -1;
}

int size_parse(const char *s, unsigned int flags, uint64_t *out)
{
	unsigned long long v;
	char *end;
	int shift;

	if ((flags & SIZE_NONE_OK) && !strcmp(s, "none")) {
		*out = 0;
		return 0;
	}
	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	if (*end == '%') {
		if (!(flags & SIZE_PCT_OK) || end[1] ||
		    v > (flags & SIZE_PCT_OVER ? SIZE_PCT_MAX : 100) ||
		    (v == 0 && !(flags & SIZE_NONE_OK)))
			return -EINVAL;
		*out = size_ram_bytes() / 100 * v;
		return 0;
	}
	shift = *end ? suffix_shift(*end) : 0;
	if (shift < 0 || (*end && end[1]) || v > (~0ull >> shift))
		return -EINVAL;
	if (v == 0 && !(flags & SIZE_NONE_OK))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

const char *size_format(uint64_t v, char *buf, size_t len)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB" };
	double d = (double)v;
	int i = -1;

	if (v < 1024) {
		snprintf(buf, len, "%" PRIu64 " B", v);
		return buf;
	}
	while (d >= 1024 && i < 3) {
		d /= 1024;
		i++;
	}
	snprintf(buf, len, "%.1f %s", d, units[i]);
	return buf;
}
