/*
 * pagemem.c - the page provider (see pagemem.h): each table is one
 * anonymous private mapping, sized in whole pages.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "failpoint.h"
#include "pagemem.h"

/* Name the mapping of @m in /proc/PID/maps; kernels without anonymous
 * mapping names (before 5.17, or built without them) just leave it
 * unnamed. */
static void pagemem_name(const struct pagemem *m, const char *name)
{
#ifdef PR_SET_VMA_ANON_NAME
	prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)m->base,
	      m->len, (unsigned long)name);
#else
	(void)m;
	(void)name;
#endif
}

int pagemem_alloc(struct pagemem *m, size_t size, const char *name)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	void *base;

	*m = (struct pagemem){ NULL, 0 };
	if (!size)
		return -EINVAL;
	if (size > SIZE_MAX - page + 1 || failpoint_hit())
		return -ENOMEM;
	size = (size + page - 1) & ~(page - 1);
	base = mmap(NULL, size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		return -ENOMEM;
	*m = (struct pagemem){ base, size };
	pagemem_name(m, name);
	return 0;
}

void pagemem_free(struct pagemem *m)
{
	if (m->base)
		munmap(m->base, m->len);
	*m = (struct pagemem){ NULL, 0 };
}
