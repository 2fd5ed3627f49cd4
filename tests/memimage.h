/*
 * memimage.h - a real process memory image for density tests and
 * benchmarks.
 *
 * Private to uzswap's tests and benchmarks. memimage_build() starts a perl
 * interpreter (perl-base is Essential in Debian, so it is on every machine)
 * that parses the Perl modules and license texts shipped with the system
 * into hashes, arrays and records until its resident size reaches the
 * target, then copies the interpreter's private writable memory (heap and
 * anonymous mappings) page by page from /proc/PID/mem. Nothing is
 * downloaded and nothing is synthetic: the pages are what a real program's
 * memory looks like.
 */
#ifndef UZSWAP_TESTS_MEMIMAGE_H
#define UZSWAP_TESTS_MEMIMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MEMIMAGE_PAGE_SIZE 4096u

struct memimage {
	uint8_t *pages;   /* nr_pages * MEMIMAGE_PAGE_SIZE bytes */
	size_t nr_pages;  /* all pages copied, same-filled ones included */
};

/*
 * memimage_build() - image of a perl process grown to about @target_mib MiB
 * Return: 0, or -errno with a line on stderr saying what failed.
 */
int memimage_build(unsigned int target_mib, struct memimage *img);

void memimage_free(struct memimage *img);

/* Whether @page (MEMIMAGE_PAGE_SIZE bytes) repeats one 64-bit word, the
 * pages a store keeps without payload. */
bool memimage_page_same_filled(const uint8_t *page);

static inline const uint8_t *memimage_page(const struct memimage *img,
					   size_t i)
{
	return img->pages + i * MEMIMAGE_PAGE_SIZE;
}

#endif /* UZSWAP_TESTS_MEMIMAGE_H */
