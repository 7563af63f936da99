#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend/dbuf.h"

static void test_add_and_format(void **state)
{
	struct dbuf b;
	(void)state;

	dbuf_init(&b, 1024);
	assert_string_equal(dbuf_str(&b), "");
	assert_int_equal(dbuf_adds(&b, "abc"), 0);
	assert_int_equal(dbuf_addc(&b, '-'), 0);
	assert_int_equal(dbuf_addf(&b, "%d/%s", 42, "x"), 0);
	assert_string_equal(dbuf_str(&b), "abc-42/x");
	assert_int_equal(dbuf_len(&b), 8);
	dbuf_truncate(&b, 3);
	assert_string_equal(dbuf_str(&b), "abc");
	dbuf_free(&b);
}

static void test_cap_is_enforced(void **state)
{
	struct dbuf b;
	(void)state;

	dbuf_init(&b, 8);
	assert_int_equal(dbuf_adds(&b, "12345678"), 0);
	assert_int_equal(dbuf_addc(&b, '9'), -E2BIG);
	assert_int_equal(dbuf_addf(&b, "%s", "x"), -E2BIG);
	/* a failed append leaves the contents alone */
	assert_string_equal(dbuf_str(&b), "12345678");
	dbuf_free(&b);
}

static void test_growth_keeps_bytes(void **state)
{
	struct dbuf b;
	char chunk[1000];
	size_t i, len;
	char *p;
	(void)state;

	for (i = 0; i < sizeof(chunk); i++)
		chunk[i] = (char)(i & 0xff);
	dbuf_init(&b, DBUF_CAP_BODY);
	for (i = 0; i < 100; i++)
		assert_int_equal(dbuf_add(&b, chunk, sizeof(chunk)), 0);
	assert_int_equal(dbuf_len(&b), 100000);
	assert_memory_equal(b.ptr + 99000, chunk, sizeof(chunk));
	p = dbuf_take(&b, &len);
	assert_non_null(p);
	assert_int_equal(len, 100000);
	assert_int_equal(p[len], '\0');
	assert_int_equal(dbuf_len(&b), 0);
	free(p);
	dbuf_free(&b);
}

static void test_take_empty(void **state)
{
	struct dbuf b;
	size_t len = 99;
	char *p;
	(void)state;

	dbuf_init(&b, 16);
	p = dbuf_take(&b, &len);
	assert_non_null(p);
	assert_int_equal(len, 0);
	assert_string_equal(p, "");
	free(p);
}

/* Messages are best effort: no buffer, or no room, is not an error. */
static void test_addf_opt(void **state)
{
	struct dbuf b;
	(void)state;

	dbuf_addf_opt(NULL, "%s", "nowhere");
	dbuf_init(&b, 8);
	dbuf_addf_opt(&b, "%d-%s", 7, "ab");
	assert_string_equal(dbuf_str(&b), "7-ab");
	dbuf_addf_opt(&b, "%s", "too long");
	assert_string_equal(dbuf_str(&b), "7-ab");
	dbuf_addf_opt(&b, "%s", "cd");
	assert_string_equal(dbuf_str(&b), "7-abcd");
	dbuf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_and_format),
		cmocka_unit_test(test_cap_is_enforced),
		cmocka_unit_test(test_growth_keeps_bytes),
		cmocka_unit_test(test_take_empty),
		cmocka_unit_test(test_addf_opt),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
