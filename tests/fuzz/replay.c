/*
 * replay.c - main() for a fuzz target without libFuzzer: runs every input
 * of the target's seed corpus (FUZZ_CORPUS_DIR/FUZZ_TARGET, compiled in)
 * through LLVMFuzzerTestOneInput(), so that `make check` regression-tests
 * the corpus in every build, with any compiler. Arguments (files or directories) replace
 * the corpus, to reproduce one crashing input:
 *
 *	tests/fuzz/replay_size crash-1234
 *
 * Exit: 0 when every input ran, 99 (automake's hard error) when the
 * corpus is missing or empty or a file cannot be read; a broken property
 * aborts.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#define REPLAY_ERROR 99

/* Run the file at @path; 0 or -errno. */
static int replay_file(const char *path)
{
	struct stat st;
	uint8_t *data;
	size_t got;
	FILE *f;
	int ret = 0;

	f = fopen(path, "rb");
	if (!f)
		return -errno;
	if (fstat(fileno(f), &st) < 0) {
		ret = -errno;
		goto out_close;
	}
	/* exactly the input's size, so ASan sees any read past its end */
	data = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!data) {
		ret = -ENOMEM;
		goto out_close;
	}
	got = fread(data, 1, (size_t)st.st_size, f);
	if (got != (size_t)st.st_size)
		ret = -EIO;
	else
		LLVMFuzzerTestOneInput(data, got);
	free(data);
out_close:
	fclose(f);
	return ret;
}

static int regular_file(const struct dirent *e)
{
	return e->d_type == DT_REG || e->d_type == DT_UNKNOWN;
}

/* Run every file of directory @dir in name order; how many, or -errno. */
static int replay_dir(const char *dir)
{
	struct dirent **names;
	char path[4096];
	int n, i, ret = 0;

	n = scandir(dir, &names, regular_file, alphasort);
	if (n < 0)
		return -errno;
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		if (ret == 0) {
			ret = replay_file(path);
			if (ret)
				fprintf(stderr, "replay: %s: %s\n", path,
					strerror(-ret));
		}
		free(names[i]);
	}
	free(names);
	return ret ? ret : n;
}

/* Run @path, a file or a directory; how many inputs ran, or -errno. */
static int replay(const char *path)
{
	struct stat st;
	int ret;

	if (stat(path, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return replay_dir(path);
	ret = replay_file(path);
	return ret ? ret : 1;
}

int main(int argc, char **argv)
{
	const char *fallback[] = { FUZZ_CORPUS_DIR "/" FUZZ_TARGET };
	const char *const *paths = argc > 1 ? (const char *const *)argv + 1 :
					      fallback;
	int npaths = argc > 1 ? argc - 1 : 1;
	int i, n;

	for (i = 0; i < npaths; i++) {
		n = replay(paths[i]);
		if (n <= 0) {
			fprintf(stderr, "replay: %s: %s\n", paths[i],
				n ? strerror(-n) : "no inputs");
			return REPLAY_ERROR;
		}
		printf("replay: %d inputs of %s ran\n", n, paths[i]);
	}
	return 0;
}
