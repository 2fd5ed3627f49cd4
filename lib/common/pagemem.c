/*
 * pagemem.c - the page provider (see pagemem.h): each table is one
 * anonymous private mapping, sized in whole pages. A reservation is the
 * same mapping made PROT_NONE; committing makes a part read-write, and
 * decommitting maps fresh PROT_NONE memory over it, which frees its pages.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "failpoint.h"
#include "pagemem.h"

#define PAGEMEM_FLAGS (MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE)

/* Name [@addr, @addr + @len) in /proc/PID/maps; kernels without
 * anonymous mapping names (before 5.17, or built without them) just leave
 * it unnamed. */
static void pagemem_name(void *addr, size_t len, const char *name)
{
#ifdef PR_SET_VMA_ANON_NAME
	prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)addr, len,
	      (unsigned long)name);
#else
	(void)addr;
	(void)len;
	(void)name;
#endif
}

/* Map @size bytes with @prot into @m, named @name. */
static int pagemem_map(struct pagemem *m, size_t size, int prot,
		       const char *name)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	void *base;

	*m = (struct pagemem){ NULL, 0, name };
	if (!size)
		return -EINVAL;
	if (size > SIZE_MAX - page + 1 || failpoint_hit())
		return -ENOMEM;
	size = (size + page - 1) & ~(page - 1);
	base = mmap(NULL, size, prot, PAGEMEM_FLAGS, -1, 0);
	if (base == MAP_FAILED)
		return -ENOMEM;
	*m = (struct pagemem){ base, size, name };
	pagemem_name(base, size, name);
	return 0;
}

int pagemem_alloc(struct pagemem *m, size_t size, const char *name)
{
	return pagemem_map(m, size, PROT_READ | PROT_WRITE, name);
}

int pagemem_reserve(struct pagemem *m, size_t size, const char *name)
{
	return pagemem_map(m, size, PROT_NONE, name);
}

int pagemem_commit(struct pagemem *m, size_t off, size_t len)
{
	if (failpoint_hit() ||
	    mprotect((char *)m->base + off, len, PROT_READ | PROT_WRITE))
		return -ENOMEM;
	return 0;
}

int pagemem_decommit(struct pagemem *m, size_t off, size_t len)
{
	char *part = (char *)m->base + off;

	if (mmap(part, len, PROT_NONE, PAGEMEM_FLAGS | MAP_FIXED, -1, 0) ==
	    MAP_FAILED)
		return -ENOMEM;
	pagemem_name(part, len, m->name);
	return 0;
}

void pagemem_free(struct pagemem *m)
{
	if (m->base)
		munmap(m->base, m->len);
	*m = (struct pagemem){ NULL, 0, NULL };
}
