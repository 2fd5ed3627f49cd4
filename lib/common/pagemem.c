/*
 * pagemem.c - the page provider (see pagemem.h): each table is one
 * mapping, sized in whole pages.
 *
 * Anonymous tables are private anonymous mappings. A reservation is the
 * same mapping made PROT_NONE; committing makes a part read-write, and
 * decommitting maps fresh PROT_NONE memory over it, which frees its pages.
 *
 * File-backed tables are one MAP_SHARED mapping of the file from offset 0,
 * also when the file is shorter than the reservation: the part past its
 * end is PROT_NONE and never touched. Committing grows the file if needed
 * (sparse: ftruncate() allocates nothing) and makes the part read-write;
 * decommitting punches the part's pages out of the file (which also drops
 * them from every mapping) and makes it PROT_NONE again.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "failpoint.h"
#include "pagemem.h"

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL		0x0008U
#endif

#define PAGEMEM_ANON_FLAGS (MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE)
#define PAGEMEM_FILE_FLAGS (MAP_SHARED | MAP_NORESERVE)

static const struct pagemem_src pagemem_anon = { PAGEMEM_ANON, -1 };

/* Prepare the new mapping [@addr, @addr + @len) of @m: no transparent
 * huge pages (one written entry would take 2 MiB, not a page), and named
 * in /proc/PID/maps when anonymous (a file mapping is named by its file;
 * kernels without anonymous mapping names, before 5.17 or built without
 * them, leave it unnamed). Both are advice: failures change nothing. */
static void pagemem_prepare(const struct pagemem *m, void *addr, size_t len)
{
	madvise(addr, len, MADV_NOHUGEPAGE);
	if (m->fd >= 0)
		madvise(addr, len, MADV_RANDOM);
#ifdef PR_SET_VMA_ANON_NAME
	if (m->fd < 0)
		prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)addr,
		      len, (unsigned long)m->name);
#endif
}

/* Set *@fd to the table's own descriptor of @src's file, -1 for anonymous
 * memory. */
static int pagemem_open(const struct pagemem_src *src, const char *name,
			int *fd)
{
	*fd = -1;
	switch (src->kind) {
	case PAGEMEM_ANON:
		return 0;
	case PAGEMEM_MEMFD:
		if (failpoint_hit())
			return -ENOMEM;
		*fd = memfd_create(name, MFD_CLOEXEC | MFD_NOEXEC_SEAL);
		if (*fd < 0 && errno == EINVAL)	/* kernel before 6.3 */
			*fd = memfd_create(name, MFD_CLOEXEC);
		break;
	case PAGEMEM_FILE:
		if (src->fd < 0)
			return -EINVAL;
		*fd = fcntl(src->fd, F_DUPFD_CLOEXEC, 0);
		break;
	default:
		return -EINVAL;
	}
	return *fd < 0 ? -errno : 0;
}

/* Make @m's file at least @size bytes long; never shortens it. */
static int pagemem_grow(struct pagemem *m, size_t size)
{
	struct stat st;
	int ret = 0;

	pthread_mutex_lock(&m->grow_lock);
	if (fstat(m->fd, &st) < 0)
		ret = -errno;
	else if ((size_t)st.st_size >= size)
		ret = 0;
	else if (failpoint_hit())
		ret = -ENOMEM;
	else if (ftruncate(m->fd, (off_t)size) < 0)
		ret = -errno;
	pthread_mutex_unlock(&m->grow_lock);
	return ret;
}

/* Map @size bytes of @src with @prot into @m, named @name; a file is first
 * grown to @grow bytes. */
static int pagemem_map(struct pagemem *m, const struct pagemem_src *src,
		       size_t size, size_t grow, int prot, const char *name)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	void *base;
	int ret;

	*m = (struct pagemem){ .name = name, .fd = -1 };
	if (!src)
		src = &pagemem_anon;
	if (!size)
		return -EINVAL;
	if (size > SIZE_MAX - page + 1 || (off_t)size < 0)
		return -ENOMEM;
	size = (size + page - 1) & ~(page - 1);
	ret = pagemem_open(src, name, &m->fd);
	if (ret)
		return ret;
	pthread_mutex_init(&m->grow_lock, NULL);
	if (m->fd >= 0 && grow) {
		ret = pagemem_grow(m, size);
		if (ret)
			goto out_close;
	}
	if (failpoint_hit()) {
		ret = -ENOMEM;
		goto out_close;
	}
	if (m->fd < 0)
		base = mmap(NULL, size, prot, PAGEMEM_ANON_FLAGS, -1, 0);
	else
		base = mmap(NULL, size, prot, PAGEMEM_FILE_FLAGS, m->fd, 0);
	if (base == MAP_FAILED) {
		ret = -errno;
		goto out_close;
	}
	m->base = base;
	m->len = size;
	pagemem_prepare(m, base, size);
	return 0;

out_close:
	pthread_mutex_destroy(&m->grow_lock);
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
	return ret;
}

int pagemem_alloc(struct pagemem *m, const struct pagemem_src *src,
		  size_t size, const char *name)
{
	return pagemem_map(m, src, size, size, PROT_READ | PROT_WRITE, name);
}

int pagemem_reserve(struct pagemem *m, const struct pagemem_src *src,
		    size_t size, const char *name)
{
	return pagemem_map(m, src, size, 0, PROT_NONE, name);
}

int pagemem_commit(struct pagemem *m, size_t off, size_t len)
{
	int ret;

	if (m->fd >= 0) {
		ret = pagemem_grow(m, off + len);
		if (ret)
			return ret;
	}
	if (failpoint_hit())
		return -ENOMEM;
	if (mprotect((char *)m->base + off, len, PROT_READ | PROT_WRITE))
		return -errno;
	return 0;
}

int pagemem_decommit(struct pagemem *m, size_t off, size_t len)
{
	char *part = (char *)m->base + off;

	if (m->fd >= 0) {
		if (fallocate(m->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)off, (off_t)len) < 0)
			return -errno;
		return mprotect(part, len, PROT_NONE) ? -errno : 0;
	}
	if (mmap(part, len, PROT_NONE, PAGEMEM_ANON_FLAGS | MAP_FIXED, -1, 0) ==
	    MAP_FAILED)
		return -ENOMEM;
	pagemem_prepare(m, part, len);
	return 0;
}

/* Bytes unmapped per call: each munlock() holds the address space's lock
 * for writing, so the process's own faults wait for one step at most. */
#define UNMAP_STEP	(64ul << 20)

int pagemem_unmap_pages(struct pagemem *m)
{
	size_t off, len;

	if (m->fd < 0)
		return -EINVAL;
	for (off = 0; off < m->len; off += len) {
		len = m->len - off < UNMAP_STEP ? m->len - off : UNMAP_STEP;
		/* advice: a part that fails stays mapped, nothing else */
		munlock((char *)m->base + off, len);
		madvise((char *)m->base + off, len, MADV_DONTNEED);
	}
	return 0;
}

size_t pagemem_next_data(const struct pagemem *m, size_t off, size_t *end)
{
	off_t data, hole;

	if (end)
		*end = m->len;
	if (off >= m->len)
		return m->len;
	if (m->fd < 0)
		return off;
	/* ENXIO: no data at or after @off; on any other error all of it is
	 * read, which may cost memory but never a wrong answer */
	data = lseek(m->fd, (off_t)off, SEEK_DATA);
	if (data < 0)
		return errno == ENXIO ? m->len : off;
	if ((size_t)data >= m->len)
		return m->len;
	if (!end)
		return (size_t)data;
	hole = lseek(m->fd, data, SEEK_HOLE);
	if (hole >= 0 && (size_t)hole < m->len)
		*end = (size_t)hole;
	return (size_t)data;
}

void pagemem_free(struct pagemem *m)
{
	if (m->base) {
		munmap(m->base, m->len);
		pthread_mutex_destroy(&m->grow_lock);
		if (m->fd >= 0)
			close(m->fd);
	}
	*m = (struct pagemem){ .fd = -1 };
}
