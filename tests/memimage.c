/*
 * memimage.c - build a real process memory image; see memimage.h.
 *
 * Steps: fork+exec `perl -e SCRIPT MiB` with pipes on its stdin and stdout;
 * wait (bounded) for its "ready" line; read /proc/PID/maps and copy every
 * private writable mapping that is anonymous or the heap through
 * /proc/PID/mem; close its stdin (it then exits) and reap it.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memimage.h"

#define READY_TIMEOUT_MS 120000

/* Grows a realistic heap: word counts, lines, per-file records, numbers. */
static const char perl_script[] =
	"my $target = shift;\n"
	"my (%words, @lines, @records, @nums);\n"
	"my @files = grep { -f } map { glob(\"$_/*.pm $_/*/*.pm\") } @INC;\n"
	"push @files, grep { -f } glob('/usr/share/common-licenses/*');\n"
	"die \"no input files\\n\" unless @files;\n"
	"sub rss_mib { open(my $s, '<', '/proc/self/statm') or return 0;\n"
	"  my @f = split ' ', <$s>; return $f[1] * 4096 / 1048576; }\n"
	"my $round = 0;\n"
	"OUTER: while (1) {\n"
	"  for my $f (@files) {\n"
	"    open(my $fh, '<', $f) or next; my @l = <$fh>; close $fh;\n"
	"    my %rec = (name => \"$f#$round\", lines => scalar(@l), words => 0);\n"
	"    for my $line (@l) {\n"
	"      push @lines, \"$round:$line\";\n"
	"      for my $w (split /\\W+/, $line) {\n"
	"        next unless length $w; $words{$w}++; $words{\"$w.$round\"} = length $w;\n"
	"        $rec{words}++; }\n"
	"    }\n"
	"    push @records, \\%rec;\n"
	"    push @nums, map { $_ * 1.5 + $round } 1 .. scalar(@l);\n"
	"    last OUTER if rss_mib() >= $target;\n"
	"  }\n"
	"  $round++;\n"
	"}\n"
	"$| = 1; print \"ready\\n\"; my $wait = <STDIN>;\n";

bool memimage_page_same_filled(const uint8_t *page)
{
	const uint64_t *w = (const uint64_t *)page;
	size_t i;

	for (i = 1; i < MEMIMAGE_PAGE_SIZE / sizeof(*w); i++)
		if (w[i] != w[0])
			return false;
	return true;
}

static int wait_ready(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char buf[16];
	ssize_t n;
	int r;

	r = poll(&pfd, 1, READY_TIMEOUT_MS);
	if (r <= 0)
		return r == 0 ? -ETIMEDOUT : -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return -EPIPE;
	buf[n] = '\0';
	return strncmp(buf, "ready", 5) == 0 ? 0 : -EPROTO;
}

/* Append pages [start, end) of @memfd to @img. */
static int copy_range(int memfd, unsigned long start, unsigned long end,
		      struct memimage *img)
{
	size_t n = (end - start) / MEMIMAGE_PAGE_SIZE, i;
	uint8_t *grown;

	grown = realloc(img->pages, (img->nr_pages + n) * MEMIMAGE_PAGE_SIZE);
	if (!grown)
		return -ENOMEM;
	img->pages = grown;
	for (i = 0; i < n; i++) {
		uint8_t *dst = img->pages + img->nr_pages * MEMIMAGE_PAGE_SIZE;
		off_t off = (off_t)(start + i * MEMIMAGE_PAGE_SIZE);

		if (pread(memfd, dst, MEMIMAGE_PAGE_SIZE, off) !=
		    MEMIMAGE_PAGE_SIZE)
			continue; /* unreadable page: not part of the image */
		img->nr_pages++;
	}
	return 0;
}

static int copy_private_memory(pid_t pid, struct memimage *img)
{
	char path[64], line[512], perms[8], name[256];
	unsigned long start, end;
	int memfd, ret = 0;
	FILE *maps;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	maps = fopen(path, "re");
	if (!maps)
		return -errno;
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	memfd = open(path, O_RDONLY | O_CLOEXEC);
	if (memfd < 0) {
		ret = -errno;
		goto out_close_maps;
	}
	while (ret == 0 && fgets(line, sizeof(line), maps)) {
		name[0] = '\0';
		if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %255s", &start, &end,
			   perms, name) < 3)
			continue;
		if (strcmp(perms, "rw-p") != 0 ||
		    (name[0] && strcmp(name, "[heap]") != 0))
			continue;
		ret = copy_range(memfd, start, end, img);
	}
	close(memfd);
out_close_maps:
	fclose(maps);
	return ret;
}

static pid_t spawn_perl(unsigned int target_mib, int *to_child,
			int *from_child)
{
	int in[2], out[2];
	char mib[16];
	pid_t pid;

	if (pipe2(in, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(out, O_CLOEXEC) < 0) {
		close(in[0]);
		close(in[1]);
		return -errno;
	}
	snprintf(mib, sizeof(mib), "%u", target_mib);
	pid = fork();
	if (pid == 0) {
		dup2(in[0], STDIN_FILENO);
		dup2(out[1], STDOUT_FILENO);
		execlp("perl", "perl", "-e", perl_script, mib, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	if (pid < 0) {
		close(in[1]);
		close(out[0]);
		return -errno;
	}
	*to_child = in[1];
	*from_child = out[0];
	return pid;
}

int memimage_build(unsigned int target_mib, struct memimage *img)
{
	int to_child = -1, from_child = -1, ret, status;
	pid_t pid;

	img->pages = NULL;
	img->nr_pages = 0;
	pid = spawn_perl(target_mib, &to_child, &from_child);
	if (pid < 0) {
		fprintf(stderr, "memimage: cannot start perl: %s\n",
			strerror((int)-pid));
		return (int)pid;
	}
	ret = wait_ready(from_child);
	if (ret == 0)
		ret = copy_private_memory(pid, img);
	else
		fprintf(stderr, "memimage: perl did not get ready: %s\n",
			strerror(-ret));
	if (ret == -ETIMEDOUT)
		kill(pid, SIGKILL);
	close(to_child);
	close(from_child);
	waitpid(pid, &status, 0);
	if (ret == 0 && img->nr_pages == 0)
		ret = -ENODATA;
	if (ret) {
		fprintf(stderr, "memimage: no image: %s\n", strerror(-ret));
		memimage_free(img);
	}
	return ret;
}

void memimage_free(struct memimage *img)
{
	free(img->pages);
	img->pages = NULL;
	img->nr_pages = 0;
}
