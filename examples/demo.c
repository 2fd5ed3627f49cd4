/*
 * demo.c - a short client of uzswapd, run by scripts/run: it connects,
 * allocates a managed region, fills it with a pattern, reads it back and
 * prints what the daemon saw (faults, resident and registered bytes).
 *
 * Usage: uzswap-demo [MIB]     (socket from $UZSWAP_SOCKET)
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <uzswap.h>

#define MIB (1024 * 1024)

static void print_stats(uzswap_t *c, const char *when)
{
	struct uzswap_stats st;
	int ret = uzswap_stats(c, &st);

	if (ret) {
		fprintf(stderr, "uzswap_stats: %s\n", uzswap_strerror(ret));
		return;
	}
	printf("%-22s registered %6.1f MiB  resident %6.1f MiB  faults %llu\n",
	       when, (double)st.registered_bytes / MIB,
	       (double)st.resident_bytes / MIB,
	       (unsigned long long)st.faults);
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 256;
	size_t i, n = mib * MIB / sizeof(uint64_t), bad = 0;
	uint64_t *p;
	uzswap_t *c;

	c = uzswap_connect(NULL);
	if (!c) {
		fprintf(stderr, "uzswap_connect: %s\n", uzswap_strerror(errno));
		return 1;
	}
	p = uzswap_alloc(c, mib * MIB, "demo");
	if (!p) {
		fprintf(stderr, "uzswap_alloc: %s\n", uzswap_strerror(errno));
		uzswap_disconnect(c);
		return 1;
	}
	printf("region of %zu MiB at %p, served by uzswapd\n", mib, (void *)p);
	print_stats(c, "after uzswap_alloc:");
	for (i = 0; i < n; i++)
		p[i] = i * 0x9e3779b97f4a7c15ull;
	print_stats(c, "after writing it all:");
	for (i = 0; i < n; i++)
		bad += p[i] != i * 0x9e3779b97f4a7c15ull;
	printf("read back: %s\n", bad ? "MISMATCH" : "every word intact");
	uzswap_free(c, p);
	uzswap_disconnect(c);
	return bad ? 1 : 0;
}
