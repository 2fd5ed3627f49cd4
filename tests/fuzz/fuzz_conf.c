/*
 * fuzz_conf.c - libFuzzer target: conf_load(), the daemon's reader of
 * uzswapd.conf (libinih with conf.c's line reader and setters).
 *
 * Input: the file's bytes. They are put in a memfd and loaded through
 * /proc/self/fd/N, so that conf.c reads them as it reads any file and
 * nothing touches the file system (its drop-in directory, N.d, does not
 * exist). A rejected file must leave a one-line error; an accepted one
 * must print (conf_print(), as --check-config does) into a file that loads
 * again and prints the same.
 */
#include "config.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "daemon/conf.h"
#include "fuzz.h"

/* Load @len bytes of @text as a configuration file into @c; -errno on a
 * refusal, with @err set. */
static int load_text(struct conf *c, const void *text, size_t len,
		     char err[CONF_ERR_MAX])
{
	struct conf_source src = { .path_given = true };
	char path[64];
	int fd, ret;

	fd = memfd_create("fuzz-conf", MFD_CLOEXEC);
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(write(fd, text, len) == (ssize_t)len);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	src.path = path;
	ret = conf_load(c, &src, err);
	close(fd);
	return ret;
}

/* @c as --check-config prints it; the caller frees it. */
static char *print_conf(const struct conf *c, size_t *len)
{
	char *text = NULL;
	FILE *out;

	out = open_memstream(&text, len);
	FUZZ_CHECK(out);
	conf_print(c, out);
	FUZZ_CHECK(fclose(out) == 0);
	return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[CONF_ERR_MAX], *first, *second;
	size_t len1, len2;
	struct conf c;

	memset(err, 0, sizeof(err));
	if (load_text(&c, data, size, err)) {
		FUZZ_CHECK(err[0] && memchr(err, '\0', sizeof(err)));
		FUZZ_CHECK(!strchr(err, '\n'));
		return 0;
	}
	first = print_conf(&c, &len1);
	conf_free(&c);
	if (load_text(&c, first, len1, err)) {
		fprintf(stderr, "printed configuration refused: %s\n", err);
		FUZZ_CHECK(!"the printed configuration loads");
	}
	second = print_conf(&c, &len2);
	conf_free(&c);
	FUZZ_CHECK(len1 == len2 && !memcmp(first, second, len1));
	free(first);
	free(second);
	return 0;
}
