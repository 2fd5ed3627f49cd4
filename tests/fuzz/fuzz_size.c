/*
 * fuzz_size.c - libFuzzer target: size_parse(), which reads sizes from
 * uzswapctl's arguments and the daemon's command line and configuration.
 *
 * Input: one byte of flags (SIZE_NONE_OK, SIZE_PCT_OK), then the text (up
 * to its first NUL). size_parse() must agree with size_model(), which
 * spells out the grammar size.h documents: "none" where allowed, or
 * decimal digits followed by nothing, one of K M G T (either case;
 * powers of 1024) or, where allowed, "%" of a number up to 100; no other
 * character anywhere; zero only where "none" is allowed; no overflow.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "lib/common/size.h"

/* The documented meaning of @s: 0 and *@out, or -EINVAL. */
static int size_model(const char *s, unsigned int flags, uint64_t *out)
{
	static const char units[] = "KkMmGgTt";
	unsigned int shift = 0;
	const char *unit;
	uint64_t v = 0;

	if ((flags & SIZE_NONE_OK) && !strcmp(s, "none")) {
		*out = 0;
		return 0;
	}
	if (*s < '0' || *s > '9')
		return -EINVAL;
	for (; *s >= '0' && *s <= '9'; s++)
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(*s - '0'), &v))
			return -EINVAL;
	if (v == 0 && !(flags & SIZE_NONE_OK))
		return -EINVAL;
	if (*s == '%') {
		if (!(flags & SIZE_PCT_OK) || s[1] || v > 100)
			return -EINVAL;
		*out = size_ram_bytes() / 100 * v;
		return 0;
	}
	if (*s) {
		unit = strchr(units, *s);
		if (!unit || s[1])
			return -EINVAL;
		shift = 10 * (unsigned int)((unit - units) / 2 + 1);
	}
	if (v > UINT64_MAX >> shift)
		return -EINVAL;
	*out = v << shift;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t got = 0, want = 0;
	unsigned int flags;
	int ret, model;
	char *s;

	if (size == 0)
		return 0;
	flags = data[0] & (SIZE_NONE_OK | SIZE_PCT_OK);
	s = strndup((const char *)data + 1, size - 1);
	if (!s)
		return 0;
	ret = size_parse(s, flags, &got);
	model = size_model(s, flags, &want);
	FUZZ_CHECK(ret == model);
	FUZZ_CHECK(ret || got == want);
	free(s);
	return 0;
}
