/*
 * uffd_rt.c - the bare userfaultfd round trip; see uffd_rt.h.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/uffd/uffd.h"
#include "uffd_rt.h"

#define PAGE	4096ul

/* Shared with the handler, which may be a child process (MAP_SHARED). */
struct handler {
	int uffd;
	int stopfd;		/* eventfd: stop (sleeping handler) */
	bool busy;
	unsigned long base;	/* the region's start */
	unsigned long copy;	/* bytes per UFFDIO_COPY: an aligned block */
	atomic_bool stop;	/* stop (busy handler) */
	uint64_t faults;
	int err;		/* first unexpected error, -errno */
};

static const char zero_block[UFFD_RT_MAX_BLOCK * PAGE]
	__attribute__((aligned(4096)));

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void touch(volatile char *p)
{
	*p = 1;
}

static void serve(struct handler *h)
{
	struct uffd_msg msgs[16];
	int n, i, ret;

	n = uffd_read_msgs(h->uffd, msgs, 16);
	if (n < 0 && n != -EAGAIN && !h->err)
		h->err = n;
	for (i = 0; i < n; i++) {
		unsigned long addr;

		if (msgs[i].event != UFFD_EVENT_PAGEFAULT)
			continue;
		addr = msgs[i].arg.pagefault.address;
		addr = h->base + ((addr - h->base) & ~(h->copy - 1));
		ret = uffd_copy(h->uffd, addr, zero_block, h->copy, 0);
		if (ret == -EEXIST)
			ret = uffd_wake(h->uffd, addr, h->copy);
		if (ret) {
			/* never leave the toucher asleep: report the error
			 * and resolve the faulting page alone */
			if (!h->err)
				h->err = ret;
			addr = msgs[i].arg.pagefault.address & ~(PAGE - 1);
			if (uffd_copy(h->uffd, addr, zero_block, PAGE, 0))
				uffd_wake(h->uffd, addr, PAGE);
		}
		h->faults++;
	}
}

static void *handler_main(void *arg)
{
	struct handler *h = arg;
	struct pollfd pfd[2] = {
		{ .fd = h->uffd, .events = POLLIN },
		{ .fd = h->stopfd, .events = POLLIN },
	};

	if (h->busy) {
		while (!atomic_load_explicit(&h->stop, memory_order_relaxed))
			serve(h);
		return NULL;
	}
	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			h->err = -errno;
			return NULL;
		}
		if (pfd[1].revents)
			return NULL;
		if (pfd[0].revents)
			serve(h);
	}
}

int uffd_rt_run(unsigned long pages, const struct uffd_rt_mode *mode,
		double *lat_us, struct uffd_rt_sample *s)
{
	unsigned long block = mode->block;
	unsigned long stride = block > 1 ? 1 : UFFD_RT_STRIDE;
	size_t len;
	uint64_t ioctls = 0, one = 1;
	struct handler *h;
	int memfd, ret, status;
	pthread_t tid;
	pid_t child = -1, parent;
	unsigned long i;
	char *region;
	double t0;

	if (block == 0 || block > UFFD_RT_MAX_BLOCK || (block & (block - 1)))
		return -EINVAL;
	len = ((pages * stride + block - 1) / block) * block * PAGE;
	h = mmap(NULL, sizeof(*h), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (h == MAP_FAILED)
		return -errno;
	*h = (struct handler){ .uffd = -1, .stopfd = -1, .busy = mode->busy,
			       .copy = block * PAGE };
	memfd = memfd_region_create("uffd_rt", len);
	if (memfd < 0) {
		munmap(h, sizeof(*h));
		return memfd;
	}
	region = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (region == MAP_FAILED) {
		ret = -errno;
		region = NULL;
		goto out;
	}
	madvise(region, len, MADV_NOHUGEPAGE);
	h->base = (unsigned long)region;
	ret = h->uffd = uffd_open(NULL);
	if (ret < 0)
		goto out;
	ret = uffd_api(h->uffd, UFFD_FEATURE_MISSING_SHMEM, NULL);
	if (ret < 0)
		goto out;
	ret = uffd_register(h->uffd, region, len,
			    UFFDIO_REGISTER_MODE_MISSING, &ioctls);
	if (ret < 0)
		goto out;
	if (!(ioctls & (1ull << _UFFDIO_COPY))) {
		ret = -EOPNOTSUPP;
		goto out;
	}
	h->stopfd = eventfd(0, EFD_CLOEXEC);
	if (h->stopfd < 0) {
		ret = -errno;
		goto out;
	}
	if (mode->process) {
		/* the child only polls, reads and ioctls: fork-safe */
		parent = getpid();
		child = fork();
		if (child < 0) {
			ret = -errno;
			goto out;
		}
		if (child == 0) {
			/* do not outlive a benchmark that was killed */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() == parent)
				handler_main(h);
			_exit(0);
		}
	} else {
		ret = -pthread_create(&tid, NULL, handler_main, h);
		if (ret)
			goto out;
	}

	t0 = now();
	if (lat_us) {
		for (i = 0; i < pages; i++) {
			double t = now();

			touch(region + i * stride * PAGE);
			lat_us[i] = (now() - t) * 1e6;
		}
	} else {
		for (i = 0; i < pages; i++)
			touch(region + i * stride * PAGE);
	}
	s->seconds = now() - t0;

	atomic_store(&h->stop, true);
	if (write(h->stopfd, &one, sizeof(one)) < 0 && !h->err)
		h->err = -errno;
	if (mode->process) {
		while (waitpid(child, &status, 0) < 0 && errno == EINTR)
			;
	} else {
		pthread_join(tid, NULL);
	}
	s->pages = pages;
	s->faults = h->faults;
	ret = h->err;
out:
	if (h->stopfd >= 0)
		close(h->stopfd);
	if (h->uffd >= 0)
		close(h->uffd);
	if (region)
		munmap(region, len);
	close(memfd);
	munmap(h, sizeof(*h));
	return ret;
}
