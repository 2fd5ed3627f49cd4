/*
 * size.h - sizes as people write them ("512M", "4G", "none", "20%"), for
 * the daemon's configuration and uzswapctl alike, so both accept (and
 * print) the same text.
 *
 * Private to uzswap.
 */
#ifndef UZSWAP_SIZE_H
#define UZSWAP_SIZE_H

#include <stddef.h>
#include <stdint.h>

#define SIZE_NONE_OK	0x1u	/* "none" (and 0) mean no limit: 0 */
#define SIZE_PCT_OK	0x2u	/* "N%" is N percent of the machine's RAM */
#define SIZE_PCT_OVER	0x4u	/* with SIZE_PCT_OK: N may pass 100, up to
				   SIZE_PCT_MAX (a multiple of RAM) */
#define SIZE_PCT_MAX	100000u

/*
 * size_parse() - a number of bytes with an optional K, M, G or T suffix
 * (powers of 1024), or what @flags allow besides
 * Return: 0 and *@out, or -EINVAL (garbage, overflow, a zero without
 * SIZE_NONE_OK, a percentage over 100 without SIZE_PCT_OVER, or without
 * SIZE_PCT_OK).
 */
int size_parse(const char *s, unsigned int flags, uint64_t *out);

/* @v bytes as "0 B", "12.0 KiB", "1.5 GiB" into @buf (@len bytes, 16
 * are enough); returns @buf. */
const char *size_format(uint64_t v, char *buf, size_t len);

/* The machine's RAM in bytes. */
uint64_t size_ram_bytes(void);

#endif /* UZSWAP_SIZE_H */
