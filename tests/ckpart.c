/*
 * ckpart.c - checks that some machines cannot run, as programs of their
 * own that report SKIP; see ckpart.h.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "ckpart.h"
#include "tmpdir.h"

TCase *ckpart_tcase(Suite *s, const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_set_tags(tc, CKPART_TAG);
	suite_add_tcase(s, tc);
	return tc;
}

int ckpart_run(SRunner *sr, const char *part, ckpart_cannot_run_fn *cannot_run)
{
	const char *why;

	if (!part) {
		srunner_run_tagged(sr, NULL, NULL, NULL, CKPART_TAG, CK_ENV);
	} else {
		why = cannot_run(part);
		if (why) {
			fprintf(stderr, "SKIP %s: %s\n", part, why);
			return CKPART_SKIP;
		}
		srunner_run(sr, NULL, part, CK_ENV);
	}
	return srunner_ntests_failed(sr) ? EXIT_FAILURE : EXIT_SUCCESS;
}

const char *ckpart_cannot_mount(void)
{
	static char why[128];
	char dir[PATH_MAX];
	int err = tmpdir_make(dir, sizeof(dir), "uzswap-mnt");

	if (err) {
		err = -err;
	} else {
		if (mount("tmpfs", dir, "tmpfs", 0, "size=64k,mode=0700") < 0)
			err = errno;
		else
			umount(dir);
		rmdir(dir);
	}
	if (!err)
		return NULL;
	snprintf(why, sizeof(why), "cannot mount a tmpfs: %s", strerror(err));
	return why;
}
