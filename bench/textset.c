/*
 * textset.c - the "text" working set of the benchmarks (see textset.h):
 * phrases of words of a fixed dictionary, drawn by a seeded generator.
 * workload.c (--dump text) and pool_bench.c both fill their pages here,
 * so that every benchmark that stores text stores the same pages.
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lib/common/macros.h"
#include "pagesum.h"
#include "textset.h"

#define PAGE		4096ul
#define TEXTSET_SEED	0x7e47ull	/* page i's stream: seed << 32 | i */

/* A fixed dictionary: common English words, the most frequent first. */
static const char *const dict[] = {
	"the", "of", "and", "to", "a", "in", "is", "that", "for", "it",
	"as", "was", "with", "be", "by", "on", "not", "he", "this", "are",
	"or", "his", "from", "at", "which", "but", "have", "an", "had",
	"they", "you", "were", "their", "one", "all", "we", "can", "her",
	"has", "there", "been", "if", "more", "when", "will", "would", "who",
	"so", "no", "she", "other", "its", "may", "these", "what", "them",
	"than", "some", "him", "time", "into", "only", "do", "out", "two",
	"any", "could", "our", "then", "first", "new", "very", "my", "also",
	"made", "like", "such", "after", "about", "over", "should", "most",
	"people", "many", "those", "before", "must", "through", "years",
	"where", "much", "your", "way", "well", "down", "even", "because",
	"each", "good", "being", "world", "still", "under", "never", "same",
	"another", "while", "last", "might", "great", "since", "against",
	"right", "without", "three", "general", "system", "number", "memory",
	"program", "license", "software", "page", "process", "kernel",
	"compressed", "daemon", "between", "during", "public", "version",
	"free", "copy", "source", "code", "file", "distribute", "modify",
	"terms", "conditions", "warranty", "including", "work", "based",
	"provided", "without", "limitation", "rights", "permission",
	"notice", "following", "whether", "however", "therefore", "example",
	"string", "value", "function", "return", "error", "buffer", "table",
	"object", "module", "package", "library", "interface", "thread",
	"signal", "socket", "request", "response", "client", "server",
	"network", "address", "pointer", "integer", "character", "sequence",
	"algorithm", "structure", "operation", "management", "performance",
	"implementation", "configuration", "documentation", "information",
	"application", "development", "environment", "particular", "purpose",
	"merchantability", "fitness", "liability", "damages", "contract",
	"otherwise", "arising", "connection", "holders", "contributors",
	"express", "implied", "warranties", "disclaimer", "redistribution",
	"binary", "form", "reproduce", "materials", "written", "prior",
	"specific", "promote", "products", "derived", "names", "endorse",
};
#define DICT_SIZE (ARRAY_SIZE(dict))

/*
 * Text is phrases: PHRASES fixed phrases of 2 to 6 dictionary words
 * (built once from a fixed seed, words skewed towards the front of the
 * dictionary), drawn per page with a skew too, in sentences of 2 to 5
 * phrases, lines of about 72 characters, now and then a number. Real
 * text repeats word sequences the same way; lz4 makes about 2.4x of a
 * page of it (2.4x here).
 */
#define PHRASES		64
#define PHRASE_MAX	64

static char phrase[PHRASES][PHRASE_MAX];

static void phrases_init(void)
{
	uint64_t s = 0x9d7a5eull;
	unsigned int i, j, n;

	for (i = 0; i < PHRASES; i++) {
		size_t len = 0;

		n = 2 + (unsigned int)rnd_below(&s, 5);
		for (j = 0; j < n; j++) {
			double u = rnd_unit(&s);
			const char *w = dict[(size_t)((double)DICT_SIZE * u *
						      u)];

			if (len + strlen(w) + 2 > PHRASE_MAX)
				break;
			if (j)
				phrase[i][len++] = ' ';
			memcpy(phrase[i] + len, w, strlen(w));
			len += strlen(w);
		}
		phrase[i][len] = '\0';
	}
}

/* One page of text from the stream seeded with @seed. */
static void text_page(uint8_t *page, uint64_t seed)
{
	uint64_t s = seed;
	size_t pos = 0, col = 0;
	unsigned int left = 0;
	bool cap = true;

	while (pos < PAGE) {
		char word[PHRASE_MAX + 8];
		size_t len, i;

		if (rnd_below(&s, 64) == 0) {
			len = (size_t)snprintf(word, sizeof(word), "%u",
					       (unsigned int)rnd_below(&s,
								   100000));
		} else {
			double u = rnd_unit(&s);
			const char *w = phrase[(size_t)(PHRASES * u * u)];

			len = strlen(w);
			memcpy(word, w, len);
		}
		if (cap && word[0] >= 'a' && word[0] <= 'z')
			word[0] = (char)(word[0] - 'a' + 'A');
		cap = false;
		if (!left)
			left = 2 + (unsigned int)rnd_below(&s, 4);
		if (--left == 0) {
			word[len++] = rnd_below(&s, 5) ? '.' : ',';
			cap = word[len - 1] == '.';
		}
		if (col + len + 1 > 72) {
			word[len++] = '\n';
			col = 0;
		} else {
			word[len++] = ' ';
			col += len;
		}
		for (i = 0; i < len && pos < PAGE; i++)
			page[pos++] = (uint8_t)word[i];
	}
}

void textset_fill(uint8_t *buf, size_t nr_pages)
{
	size_t i;

	phrases_init();
	for (i = 0; i < nr_pages; i++)
		text_page(buf + i * PAGE, TEXTSET_SEED << 32 | i);
}
