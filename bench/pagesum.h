/*
 * pagesum.h - what the benchmarks fill pages with and check them by: a
 * seeded splitmix64 stream (and uniform draws from it) and a 64-bit page
 * checksum (four xxhash64-style lanes, about 0.2 µs a page), the same in
 * every benchmark and build.
 *
 * Private to bench/.
 */
#ifndef UZSWAP_BENCH_PAGESUM_H
#define UZSWAP_BENCH_PAGESUM_H

#include <stddef.h>
#include <stdint.h>

#define PAGESUM_WORDS	(4096 / sizeof(uint64_t))

/* splitmix64: a seeded stream. */
static inline uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, n). */
static inline uint64_t rnd_below(uint64_t *s, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)rnd(s) * n) >> 64);
}

/* Uniform in [0, 1). */
static inline double rnd_unit(uint64_t *s)
{
	return (double)(rnd(s) >> 11) * 0x1.0p-53;
}

static inline uint64_t rotl(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

/* The checksum of a 4 KiB page. */
static inline uint64_t page_sum(const void *page)
{
	const uint64_t P1 = 0x9e3779b185ebca87ull, P2 = 0xc2b2ae3d27d4eb4full;
	const uint64_t *w = page;
	uint64_t a = P1, b = P2, c = 0, d = P1 ^ P2;
	size_t i;

	for (i = 0; i < PAGESUM_WORDS; i += 4) {
		a = rotl(a + w[i] * P2, 31) * P1;
		b = rotl(b + w[i + 1] * P2, 31) * P1;
		c = rotl(c + w[i + 2] * P2, 31) * P1;
		d = rotl(d + w[i + 3] * P2, 31) * P1;
	}
	a = rotl(a, 1) + rotl(b, 7) + rotl(c, 12) + rotl(d, 18);
	a ^= a >> 33;
	a *= P2;
	return a ^ (a >> 29);
}

#endif /* UZSWAP_BENCH_PAGESUM_H */
