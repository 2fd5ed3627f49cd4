/*
 * failpoint.c - allocation fault injection for tests; see failpoint.h.
 *
 * The countdown is process-wide and atomic, so a test that arms it while
 * several threads allocate still fails exactly one request.
 */
#include "config.h"

#include <stdatomic.h>

#include "failpoint.h"

static atomic_ulong failpoint_countdown; /* 0: disarmed */
static atomic_ulong failpoint_failed;

void failpoint_arm(unsigned long nth)
{
	atomic_store(&failpoint_failed, 0);
	atomic_store(&failpoint_countdown, nth);
}

bool failpoint_hit(void)
{
	unsigned long left = atomic_load_explicit(&failpoint_countdown,
						  memory_order_relaxed);

	while (left != 0) {
		if (atomic_compare_exchange_weak(&failpoint_countdown, &left,
						 left - 1)) {
			if (left != 1)
				return false;
			atomic_fetch_add(&failpoint_failed, 1);
			return true;
		}
	}
	return false;
}

unsigned long failpoint_failures(void)
{
	return atomic_load(&failpoint_failed);
}
