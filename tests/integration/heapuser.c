/*
 * heapuser.c - a plain C program that only uses malloc() and friends, for
 * check_preload and check_programs: it knows nothing of uzswap (nor
 * links jemalloc: purge finds mallctl() with dlsym()), and runs under
 * libuzswap-preload.so (LD_PRELOAD) to show that an unmodified program's
 * heap is managed.
 *
 *   heapuser fill MIB   allocate MIB MiB in blocks of many kinds (small,
 *                       large, huge past jemalloc's 8 MiB threshold,
 *                       aligned), each filled with a pattern of its own
 *                       and its checksum kept; print "filled BLOCKS",
 *                       wait for a line on stdin, then print for each kind
 *                       "region KIND IN OUT": how many of its blocks made
 *                       after the start-up (the first WARMUP_BYTES) lie
 *                       in the "/memfd:uzswap:" mappings of
 *                       /proc/self/maps; last "verified BLOCKS", or
 *                       "corrupt BLOCK" and exit 1
 *   heapuser churn SECONDS  4 threads malloc, realloc and free blocks of
 *                       random sizes, each checked against its checksum
 *                       before realloc and free; "churn OPS ERRORS", exit 1
 *                       on an error
 *   heapuser purge MIB  PURGE_BLOCKS blocks of MIB MiB filled with a
 *                       pattern of no zero word; "filled PURGE_BLOCKS",
 *                       wait for a line on stdin (the test sees the daemon
 *                       evict part of them meanwhile), free them, have
 *                       jemalloc purge every arena (mallctl, looked up
 *                       with dlsym(): heapuser does not link jemalloc;
 *                       "no-jemalloc" and exit 1 without it), then read
 *                       the freed blocks, still mapped (jemalloc retains
 *                       its extents): "purged zeros", or "purged STALE N"
 *                       with N words not zero (exit 1 at the end); on a
 *                       line of stdin, calloc() them again: "calloc
 *                       zeros" or "calloc STALE N"
 *   heapuser hello      a few allocations, "ok"
 */
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MIB		(1024 * 1024)
/* What the program allocates first may come from jemalloc's start-up
 * chunk, mapped before the preload's hooks (2 MiB): not counted. */
#define WARMUP_BYTES	(4 * MIB)
#define CHURN_THREADS	4
#define CHURN_SLOTS	256

enum kind { SMALL, LARGE, HUGE, ALIGNED, NR_KINDS };

static const char *const kind_names[NR_KINDS] = {
	"small", "large", "huge", "aligned",
};

struct block {
	uint64_t *p;
	size_t words;
	uint64_t sum;
	enum kind kind;
	bool counted;		/* made after the start-up */
};

/* The heap's managed regions (the preload's chunks), from maps. */
#define REGIONS_MAX	64
static struct {
	uintptr_t lo, hi;
} regions[REGIONS_MAX];
static size_t nr_regions;

/* The word @j of block @seed's pattern: distinct per block and offset,
 * and compressible, as real heaps are. */
static uint64_t pattern(uint64_t seed, size_t j)
{
	return (seed << 32) ^ (j * 0x9e37ull) ^ (j >> 3);
}

static uint64_t fill(uint64_t *p, size_t words, uint64_t seed)
{
	uint64_t sum = 0;
	size_t j;

	for (j = 0; j < words; j++) {
		p[j] = pattern(seed, j);
		sum = (sum << 1 | sum >> 63) ^ p[j];
	}
	return sum;
}

static uint64_t checksum(const uint64_t *p, size_t words)
{
	uint64_t sum = 0;
	size_t j;

	for (j = 0; j < words; j++)
		sum = (sum << 1 | sum >> 63) ^ p[j];
	return sum;
}

/* The managed regions' bounds, from /proc/self/maps. */
static void region_find(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];

	if (!f)
		return;
	while (nr_regions < REGIONS_MAX && fgets(line, sizeof(line), f))
		if (strstr(line, "/memfd:uzswap:") &&
		    sscanf(line, "%lx-%lx", &regions[nr_regions].lo,
			   &regions[nr_regions].hi) == 2)
			nr_regions++;
	fclose(f);
}

static bool in_region(const void *p)
{
	size_t i;

	for (i = 0; i < nr_regions; i++)
		if ((uintptr_t)p >= regions[i].lo &&
		    (uintptr_t)p < regions[i].hi)
			return true;
	return false;
}

/* The @i-th block of a fill: kinds in turn, sizes varied. */
static void *block_alloc(unsigned int i, enum kind *kind, size_t *size)
{
	void *p = NULL;

	*kind = i % 16 == 0 ? HUGE : i % 16 < 4 ? LARGE : i % 16 < 8 ? ALIGNED :
		SMALL;
	switch (*kind) {
	case SMALL:
		*size = 8 + (i * 37) % 2040;
		return malloc(*size);
	case LARGE:
		*size = 16384 + (size_t)(i * 7919) % (4 * MIB);
		return i % 8 == 1 ? calloc(1, *size) : malloc(*size);
	case HUGE:
		*size = (size_t)(9 + i % 5) * MIB;
		return malloc(*size);
	case ALIGNED:
		*size = 4096 + (size_t)(i * 131) % (256 * 1024);
		if (i % 3 == 0) {
			*size = (*size + 65535) & ~(size_t)65535;
			return aligned_alloc(65536, *size);
		}
		if (i % 3 == 1)
			return posix_memalign(&p, 4096, *size) ? NULL : p;
		return memalign(2 * MIB, *size);
	default:
		return NULL;
	}
}

static int fill_main(size_t mib)
{
	size_t want = mib * MIB, have = 0, n = 0, cap = 1024, i;
	unsigned long in[NR_KINDS] = { 0 }, out[NR_KINDS] = { 0 };
	size_t out_bytes[NR_KINDS] = { 0 };
	struct block *b = malloc(cap * sizeof(*b));
	unsigned int k;
	char line[64];

	/* many small blocks first, whatever the mix: the start-up */
	while (b && have < want) {
		enum kind kind = SMALL;
		size_t size = 0;
		void *p = have < WARMUP_BYTES ? malloc(size = 4096) :
			  block_alloc((unsigned int)n, &kind, &size);

		if (!p) {
			printf("alloc failed at block %zu (%zu bytes)\n", n,
			       size);
			return 1;
		}
		if (n == cap) {
			struct block *nb = realloc(b, 2 * cap * sizeof(*b));

			if (!nb)
				return 1;
			b = nb;
			cap *= 2;
		}
		b[n].p = p;
		b[n].words = size / 8;
		b[n].kind = kind;
		b[n].counted = have >= WARMUP_BYTES;
		b[n].sum = fill(p, b[n].words, n + 1);
		have += size;
		n++;
	}
	if (!b)
		return 1;
	printf("filled %zu\n", n);
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		line[0] = '\0';

	region_find();
	for (i = 0; i < n; i++) {
		if (!b[i].counted)
			continue;
		if (in_region(b[i].p))
			in[b[i].kind]++;
		else {
			out[b[i].kind]++;
			out_bytes[b[i].kind] += b[i].words * 8;
		}
	}
	for (k = 0; k < NR_KINDS; k++)
		printf("region %s %lu %lu %zu\n", kind_names[k], in[k], out[k],
		       out_bytes[k]);
	for (i = 0; i < n; i++) {
		if (checksum(b[i].p, b[i].words) != b[i].sum) {
			printf("corrupt %zu\n", i);
			return 1;
		}
		free(b[i].p);
	}
	free(b);
	printf("verified %zu\n", n);
	return 0;
}

/*****************
 * churn
 *****************/

struct churner {
	pthread_t thread;
	unsigned int id;
	time_t until;
	unsigned long ops;
	unsigned long errors;
};

static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static size_t churn_size(uint64_t *rnd)
{
	uint64_t r = next_rand(rnd);

	if (r % 64 == 0)
		return 8 + r % (2 * MIB);
	return 8 + r % 8192;
}

static void *churn(void *arg)
{
	struct churner *c = arg;
	struct block slot[CHURN_SLOTS] = { { 0 } };
	uint64_t rnd = 0x2545f4914f6cdd1dull * (c->id + 1), seed = c->id;
	unsigned int i;

	while (time(NULL) < c->until) {
		struct block *s = &slot[next_rand(&rnd) % CHURN_SLOTS];
		size_t size = churn_size(&rnd);

		c->ops++;
		if (s->p && checksum(s->p, s->words) != s->sum)
			c->errors++;
		if (!s->p || next_rand(&rnd) % 2) {
			uint64_t *p = realloc(s->p, size);

			if (!p) {
				c->errors++;
				continue;
			}
			s->p = p;
			s->words = size / 8;
			s->sum = fill(p, s->words, (seed += CHURN_THREADS));
		} else {
			free(s->p);
			s->p = NULL;
		}
	}
	for (i = 0; i < CHURN_SLOTS; i++) {
		if (slot[i].p && checksum(slot[i].p, slot[i].words) !=
		    slot[i].sum)
			c->errors++;
		free(slot[i].p);
	}
	return NULL;
}

static int churn_main(int seconds)
{
	struct churner c[CHURN_THREADS];
	unsigned long ops = 0, errors = 0;
	unsigned int i;

	for (i = 0; i < CHURN_THREADS; i++) {
		c[i] = (struct churner){ .id = i, .until = time(NULL) + seconds };
		if (pthread_create(&c[i].thread, NULL, churn, &c[i]))
			return 1;
	}
	for (i = 0; i < CHURN_THREADS; i++) {
		pthread_join(c[i].thread, NULL);
		ops += c[i].ops;
		errors += c[i].errors;
	}
	printf("churn %lu %lu\n", ops, errors);
	return errors ? 1 : 0;
}

/*****************
 * purge
 *****************/

#define PURGE_BLOCKS	4
/* jemalloc's MALLCTL_ARENAS_ALL: "arena.<i>.purge" of every arena. */
#define PURGE_ALL_ARENAS "arena.4096.purge"

typedef int mallctl_fn(const char *name, void *oldp, size_t *oldlenp,
		       void *newp, size_t newlen);

/* Words of @p[0..@words) that are not zero. */
static size_t nonzero_words(const volatile uint64_t *p, size_t words)
{
	size_t j, n = 0;

	for (j = 0; j < words; j++)
		n += p[j] != 0;
	return n;
}

static int purge_main(size_t mib)
{
	mallctl_fn *mallctl = (mallctl_fn *)dlsym(RTLD_DEFAULT, "mallctl");
	size_t words = mib * MIB / 8, stale = 0, j;
	uint64_t *b[PURGE_BLOCKS];
	uintptr_t freed[PURGE_BLOCKS];	/* where they were */
	char line[64];
	unsigned int i;
	int ret;

	/* stdout's buffer now, not between the free and the reads */
	printf("purge %zu\n", mib);
	fflush(stdout);
	if (!mallctl) {
		printf("no-jemalloc\n");
		return 1;
	}
	for (i = 0; i < PURGE_BLOCKS; i++) {
		b[i] = malloc(words * 8);
		if (!b[i]) {
			printf("alloc failed\n");
			return 1;
		}
		for (j = 0; j < words; j++)
			b[i][j] = pattern(i + 1, j) | 1;
	}
	printf("filled %d\n", PURGE_BLOCKS);
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		line[0] = '\0';

	for (i = 0; i < PURGE_BLOCKS; i++) {
		freed[i] = (uintptr_t)b[i];
		free(b[i]);
	}
	ret = mallctl(PURGE_ALL_ARENAS, NULL, NULL, NULL, 0);
	if (ret) {
		printf("mallctl %s: %s\n", PURGE_ALL_ARENAS, strerror(ret));
		return 1;
	}
	/* No allocation since the free: the blocks' pages are where
	 * jemalloc keeps them, purged, in the region it never unmaps. */
	for (i = 0; i < PURGE_BLOCKS; i++)
		stale += nonzero_words((const volatile uint64_t *)freed[i],
				       words);
	if (stale)
		printf("purged STALE %zu\n", stale);
	else
		printf("purged zeros\n");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		line[0] = '\0';

	for (i = 0; i < PURGE_BLOCKS; i++) {
		b[i] = calloc(words, 8);
		if (!b[i]) {
			printf("calloc failed\n");
			return 1;
		}
	}
	for (i = 0, j = 0; i < PURGE_BLOCKS; i++) {
		j += nonzero_words(b[i], words);
		free(b[i]);
	}
	if (j)
		printf("calloc STALE %zu\n", j);
	else
		printf("calloc zeros\n");
	return stale || j ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "fill"))
		return fill_main(strtoul(argv[2], NULL, 10));
	if (argc == 3 && !strcmp(argv[1], "churn"))
		return churn_main(atoi(argv[2]));
	if (argc == 3 && !strcmp(argv[1], "purge"))
		return purge_main(strtoul(argv[2], NULL, 10));
	if (argc == 2 && !strcmp(argv[1], "hello")) {
		char *p = strdup("hello");

		free(p);
		printf("ok\n");
		return 0;
	}
	fprintf(stderr, "usage: heapuser fill MIB | churn SECONDS | "
		"purge MIB | hello\n");
	return 2;
}
