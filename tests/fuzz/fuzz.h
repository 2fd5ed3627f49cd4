/*
 * fuzz.h - what the fuzz targets of tests/fuzz share: the entry point
 * libFuzzer calls (and replay.c, in builds without libFuzzer), and the
 * check that turns a broken property into a crash the fuzzer reports.
 */
#ifndef UZSWAP_FUZZ_H
#define UZSWAP_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Run one input; always returns 0 (libFuzzer's convention). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property of the code under test failed: say which, and crash. */
#define FUZZ_CHECK(cond)						\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "%s:%d: check failed: %s\n",	\
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

#endif /* UZSWAP_FUZZ_H */
