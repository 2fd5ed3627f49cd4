/*
 * check_recover.c - a successor's recovery (daemon/recover.c) with no
 * daemon: every page state a dead daemon can leave, with and without data
 * in the client's memfd, becomes what docs/architecture.md ("Restart
 * without loss") says, and never NEW where content existed.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>

#include "daemon/recover.h"
#include "lib/common/macros.h"

#define HANDLE	0x1234ull << 18		/* a handle: no slot tag */
#define SLOT	(PAGE_DATA_SLOT | 77ull << PAGE_WB_LEN_BITS | 1500)
#define WORD	0x5a5a5a5a5a5a5a5aull

/* One case: an entry as left, whether its memfd holds data, and what it
 * must become. */
struct rule {
	uint32_t info;
	uint64_t data;
	bool has_data;
	enum recover_verdict verdict;
	unsigned int state;
	uint32_t flags;
	uint64_t new_data;
};

static const struct rule rules[] = {
	/* the memfd holds it: RESIDENT whatever the entry says */
	{ PAGE_NEW, 0, true, RECOVER_RESIDENT, PAGE_RESIDENT, 0, 0 },
	{ PAGE_RESIDENT | PAGE_ACTIVE | 7u << PAGE_STAMP_SHIFT, 0, true,
	  RECOVER_RESIDENT, PAGE_RESIDENT, PAGE_ACTIVE, 0 },
	{ PAGE_EVICTING, HANDLE, true, RECOVER_RESIDENT, PAGE_RESIDENT, 0,
	  0 },
	{ PAGE_COMPRESSED | PAGE_UNPUNCHED, HANDLE, true, RECOVER_RESIDENT,
	  PAGE_RESIDENT, 0, 0 },
	{ PAGE_LOADING | PAGE_COMPRESSED << PAGE_FROM_SHIFT, HANDLE, true,
	  RECOVER_RESIDENT, PAGE_RESIDENT, 0, 0 },
	{ PAGE_LOST, 0, true, RECOVER_RESIDENT, PAGE_RESIDENT, 0, 0 },
	/* a hole and nothing stored: zeros are right */
	{ PAGE_RESIDENT, 0, false, RECOVER_NEW, PAGE_NEW, 0, 0 },
	/* a hole and a stored copy: the copy, flags kept, no stamp */
	{ PAGE_COMPRESSED | PAGE_ZSTD | 9u << PAGE_STAMP_SHIFT, HANDLE, false,
	  RECOVER_STORED, PAGE_COMPRESSED, PAGE_ZSTD, HANDLE },
	{ PAGE_COMPRESSED | PAGE_RAW | PAGE_UNPUNCHED, HANDLE, false,
	  RECOVER_STORED, PAGE_COMPRESSED, PAGE_RAW, HANDLE },
	{ PAGE_SAME, WORD, false, RECOVER_STORED, PAGE_SAME, 0, WORD },
	{ PAGE_WRITTEN_BACK | PAGE_ZSTD, SLOT, false, RECOVER_STORED,
	  PAGE_WRITTEN_BACK, PAGE_ZSTD, SLOT },
	/* LOADING: back to what it was taken from */
	{ PAGE_LOADING | PAGE_ZSTD | PAGE_COMPRESSED << PAGE_FROM_SHIFT,
	  HANDLE, false, RECOVER_STORED, PAGE_COMPRESSED, PAGE_ZSTD,
	  HANDLE },
	{ PAGE_LOADING | PAGE_SAME << PAGE_FROM_SHIFT, WORD, false,
	  RECOVER_STORED, PAGE_SAME, 0, WORD },
	{ PAGE_LOADING | PAGE_WRITTEN_BACK << PAGE_FROM_SHIFT, SLOT, false,
	  RECOVER_STORED, PAGE_WRITTEN_BACK, 0, SLOT },
	/* a write-back that wrote the object and its slot, not its state */
	{ PAGE_LOADING | PAGE_RAW | PAGE_COMPRESSED << PAGE_FROM_SHIFT, SLOT,
	  false, RECOVER_STORED, PAGE_WRITTEN_BACK, PAGE_RAW, SLOT },
	/* the evict order broken, or nothing known: lost, never NEW */
	{ PAGE_EVICTING, HANDLE, false, RECOVER_LOST, PAGE_LOST, 0, 0 },
	{ PAGE_LOADING | PAGE_NEW << PAGE_FROM_SHIFT, 0, false, RECOVER_LOST,
	  PAGE_LOST, 0, 0 },
	{ PAGE_LOST, 0, false, RECOVER_LOST, PAGE_LOST, 0, 0 },
	{ 0x0f, HANDLE, false, RECOVER_LOST, PAGE_LOST, 0, 0 },
};

START_TEST(test_rules)
{
	const struct rule *r = &rules[_i];
	struct page_entry e = { .data = r->data, .evicted_at = 3 };
	uint32_t info;

	atomic_store(&e.info, r->info);
	ck_assert_int_eq(recover_entry(&e, r->has_data), r->verdict);
	info = atomic_load(&e.info);
	ck_assert_uint_eq(page_state(info), r->state);
	ck_assert_uint_eq(info & ~PAGE_STATE_MASK, r->flags);
	ck_assert_uint_eq(e.data, r->new_data);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("recover");
	TCase *tc = tcase_create("rules");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(tc, test_rules, 0, (int)ARRAY_SIZE(rules));
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
