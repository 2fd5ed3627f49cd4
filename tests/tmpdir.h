/*
 * tmpdir.h - where the unit tests put their files: "$TMPDIR/NAME.XXXXXX"
 * ("/tmp" without TMPDIR), made with mkdtemp()/mkostemp() by the caller
 * or by tmpdir_make(). Nothing a test writes goes anywhere else.
 *
 * Private to uzswap's tests.
 */
#ifndef UZSWAP_TESTS_TMPDIR_H
#define UZSWAP_TESTS_TMPDIR_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* "$TMPDIR/@name.XXXXXX" into @buf, a template for mkdtemp()/mkostemp(). */
static inline void tmpdir_template(char *buf, size_t size, const char *name)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(buf, size, "%s/%s.XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
}

/* A new directory "$TMPDIR/@name.XXXXXX" into @buf. Return: 0 or -errno. */
static inline int tmpdir_make(char *buf, size_t size, const char *name)
{
	tmpdir_template(buf, size, name);
	return mkdtemp(buf) ? 0 : -errno;
}

#endif /* UZSWAP_TESTS_TMPDIR_H */
