/*
 * textset.h - the "text" working set of the benchmarks: phrases of 2 to 6
 * words of a fixed dictionary, in sentences and lines of about 72
 * characters, now and then a number, drawn by a seeded generator (the
 * same pages in every run and build). lz4 makes about 2.4x of a page of
 * it, as of real text.
 *
 * Private to bench/.
 */
#ifndef UZSWAP_BENCH_TEXTSET_H
#define UZSWAP_BENCH_TEXTSET_H

#include <stddef.h>
#include <stdint.h>

/* Fill the @nr_pages 4 KiB pages at @buf with the text set's first
 * @nr_pages pages. */
void textset_fill(uint8_t *buf, size_t nr_pages);

#endif /* UZSWAP_BENCH_TEXTSET_H */
