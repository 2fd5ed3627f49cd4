/*
 * check_compress.c - unit tests of uzswapd's compressors (daemon/
 * compress.c): lz4 and zstd round trips on real memory pages, the raw
 * threshold on incompressible pages, corrupt input, cross-algorithm
 * decompression, and allocation failures at creation.
 *
 * Under valgrind: CK_FORK=no valgrind --leak-check=full ./check_compress
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/compress.h"
#include "lib/common/failpoint.h"
#include "memimage.h"

#define PAGE 4096u
#define RAW_THRESHOLD 3072u

static struct memimage img;

static void image_setup(void)
{
	ck_assert_int_eq(memimage_build(16, &img), 0);
}

static void image_teardown(void)
{
	memimage_free(&img);
}

static void round_trip(enum compress_algo algo, int level)
{
	struct compressor *c = compressor_create(algo, level);
	struct compressor *other = compressor_create(!algo, 3);
	uint8_t out[PAGE], dst[PAGE];
	size_t i, n, stored = 0, raw = 0, bytes = 0;

	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_nonnull(other);
	ck_assert_int_eq(compressor_algo(c), algo);
	for (i = 0; i < img.nr_pages; i++) {
		const uint8_t *page = memimage_page(&img, i);

		n = compressor_compress(c, page, PAGE, out, RAW_THRESHOLD);
		if (n == 0) {
			raw++;
			continue;
		}
		ck_assert_uint_le(n, RAW_THRESHOLD);
		memset(dst, 0xa5, sizeof(dst));
		ck_assert_int_eq(compressor_decompress(c, algo, out, n, dst,
						       PAGE), 0);
		ck_assert_mem_eq(dst, page, PAGE);
		/* any compressor decompresses any algorithm */
		memset(dst, 0x5a, sizeof(dst));
		ck_assert_int_eq(compressor_decompress(other, algo, out, n,
						       dst, PAGE), 0);
		ck_assert_mem_eq(dst, page, PAGE);
		stored++;
		bytes += n;
	}
	ck_assert_uint_gt(stored, img.nr_pages / 2);
	ck_assert_uint_lt(bytes, stored * PAGE / 2);
	(void)raw;
	compressor_destroy(other);
	compressor_destroy(c);
}

START_TEST(test_lz4_real_pages)
{
	round_trip(COMPRESS_LZ4, 0);
}
END_TEST

START_TEST(test_zstd_real_pages)
{
	round_trip(COMPRESS_ZSTD, COMPRESS_ZSTD_DEFAULT_LEVEL);
	round_trip(COMPRESS_ZSTD, 1);
}
END_TEST

START_TEST(test_incompressible)
{
	struct compressor *l = compressor_create(COMPRESS_LZ4, 0);
	struct compressor *z = compressor_create(COMPRESS_ZSTD, 3);
	uint8_t page[PAGE], out[PAGE];
	uint64_t x = 88172645463325252ull;
	size_t i;

	for (i = 0; i < PAGE; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		page[i] = (uint8_t)x;
	}
	ck_assert_uint_eq(compressor_compress(l, page, PAGE, out,
					      RAW_THRESHOLD), 0);
	ck_assert_uint_eq(compressor_compress(z, page, PAGE, out,
					      RAW_THRESHOLD), 0);
	compressor_destroy(l);
	compressor_destroy(z);
}
END_TEST

START_TEST(test_corrupt_input)
{
	struct compressor *c = compressor_create(COMPRESS_LZ4, 0);
	uint8_t page[PAGE], out[PAGE], dst[PAGE];
	size_t n, i;

	for (i = 0; i < PAGE; i++)
		page[i] = (uint8_t)(i % 7);
	n = compressor_compress(c, page, PAGE, out, RAW_THRESHOLD);
	ck_assert_uint_gt(n, 0);
	/* truncated, or claimed to expand to a different size */
	ck_assert_int_eq(compressor_decompress(c, COMPRESS_LZ4, out, n / 2,
					       dst, PAGE), -EIO);
	ck_assert_int_eq(compressor_decompress(c, COMPRESS_LZ4, out, n, dst,
					       PAGE / 2), -EIO);
	ck_assert_int_eq(compressor_decompress(c, COMPRESS_ZSTD, out, n, dst,
					       PAGE), -EIO);
	memset(out, 0xff, n);
	ck_assert_int_eq(compressor_decompress(c, COMPRESS_LZ4, out, n, dst,
					       PAGE), -EIO);
	compressor_destroy(c);
}
END_TEST

START_TEST(test_names)
{
	enum compress_algo a;

	ck_assert_int_eq(compress_algo_parse("zstd", &a), 0);
	ck_assert_int_eq(a, COMPRESS_ZSTD);
	ck_assert_str_eq(compress_algo_name(a), "zstd");
	ck_assert_int_eq(compress_algo_parse("lz4", &a), 0);
	ck_assert_str_eq(compress_algo_name(a), "lz4");
	ck_assert_int_eq(compress_algo_parse("gzip", &a), -EINVAL);
	ck_assert_ptr_null(compressor_create((enum compress_algo)7, 0));
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

START_TEST(test_create_failures)
{
	struct compressor *c = NULL;
	unsigned long n;

	for (n = 1; !c; n++) {
		failpoint_arm(n);
		c = compressor_create(COMPRESS_ZSTD, 3);
		ck_assert(c || (errno == ENOMEM && failpoint_failures() == 1));
	}
	failpoint_arm(0);
	ck_assert_uint_gt(n, 3);
	compressor_destroy(c);
}
END_TEST

static Suite *compress_suite(void)
{
	Suite *s = suite_create("compress");
	TCase *tc;

	tc = tcase_create("real-pages");
	tcase_add_unchecked_fixture(tc, image_setup, image_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_lz4_real_pages);
	tcase_add_test(tc, test_zstd_real_pages);
	suite_add_tcase(s, tc);

	tc = tcase_create("edges");
	tcase_add_test(tc, test_incompressible);
	tcase_add_test(tc, test_corrupt_input);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_create_failures);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(compress_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
