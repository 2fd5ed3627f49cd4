/*
 * demo.c - a short client of uzswapd, run by scripts/run: it connects,
 * sets itself a resident budget of an eighth of its data, allocates a
 * managed region, fills it with text-like data, and shows most of it
 * living compressed in the daemon; then reads it all back, intact.
 *
 * Usage: uzswap-demo [MIB]     (socket from $UZSWAP_SOCKET)
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <uzswap.h>

#define MIB (1024 * 1024)

/* Text-like data: short runs of letters, with a few per-word changes. */
static uint64_t word(size_t i)
{
	return 0x2065687420666f20ull + ((i % 97 == 0) ? i : 0);
}

static void print_stats(uzswap_t *c, const char *when)
{
	struct uzswap_stats st;
	int ret = uzswap_stats(c, &st);

	if (ret) {
		fprintf(stderr, "uzswap_stats: %s\n", uzswap_strerror(ret));
		return;
	}
	printf("%-22s resident %6.1f of %6.1f MiB, compressed: %6lu pages in "
	       "%6.1f MiB, faults %llu\n", when,
	       (double)st.resident_bytes / MIB,
	       (double)st.registered_bytes / MIB,
	       (unsigned long)st.stored_pages,
	       (double)st.compressed_bytes / MIB,
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
	if (uzswap_set_limit(c, mib * MIB / 8) < 0)
		fprintf(stderr, "uzswap_set_limit: not supported\n");
	p = uzswap_alloc(c, mib * MIB, "demo");
	if (!p) {
		fprintf(stderr, "uzswap_alloc: %s\n", uzswap_strerror(errno));
		uzswap_disconnect(c);
		return 1;
	}
	printf("region of %zu MiB at %p, budget %zu MiB, served by uzswapd\n",
	       mib, (void *)p, mib / 8);
	print_stats(c, "after uzswap_alloc:");
	for (i = 0; i < n; i++)
		p[i] = word(i);
	sleep(1);	/* let the evictor catch up */
	print_stats(c, "after writing it all:");
	for (i = 0; i < n; i++)
		bad += p[i] != word(i);
	print_stats(c, "after reading it back:");
	printf("read back: %s\n", bad ? "MISMATCH" : "every word intact");
	uzswap_free(c, p);
	uzswap_disconnect(c);
	return bad ? 1 : 0;
}
