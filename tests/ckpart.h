/*
 * ckpart.h - checks that some machines cannot run, reported as SKIP.
 *
 * Private to uzswap's tests. Check has no per-test skip, and a check that
 * returns early because the machine lacks something (a mount, a
 * capability, hole punching) passes without checking anything. So such a
 * check goes into a tcase of its own, tagged CKPART_TAG, and is built
 * into a test program of its own: the same source compiled with
 * -DCKPART='"TCASE"' (tests/Makefile.am). The suite's own program runs
 * every tcase but the tagged ones; a part's program asks the suite's
 * cannot_run() whether the machine can run the part: if not, it says why
 * on stderr and exits 77, which automake reports as SKIP; if so, it runs
 * that tcase alone, and the check asserts what it needs.
 */
#ifndef UZSWAP_TESTS_CKPART_H
#define UZSWAP_TESTS_CKPART_H

#include <check.h>

#ifndef CKPART
#define CKPART NULL	/* the suite's own program */
#endif

#define CKPART_TAG	"part"
#define CKPART_SKIP		77	/* automake: the test was skipped */

/* Why the machine cannot run tcase @part (static text), or NULL if it can. */
typedef const char *ckpart_cannot_run_fn(const char *part);

/* A new tcase @name of @s, tagged as a part (added to @s). */
TCase *ckpart_tcase(Suite *s, const char *name);

/*
 * ckpart_run() - run what @part's program runs of @sr (see above): every
 * untagged tcase if @part is NULL, else tcase @part unless @cannot_run
 * says the machine cannot.
 * Return: main()'s exit status: EXIT_SUCCESS, EXIT_FAILURE or CKPART_SKIP.
 */
int ckpart_run(SRunner *sr, const char *part, ckpart_cannot_run_fn *cannot_run);

/* NULL if this process can mount a tmpfs, else why not. */
const char *ckpart_cannot_mount(void);

#endif
