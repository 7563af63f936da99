#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend/dbuf.h"
#include "backend/ddbnum.h"

/* How the three reasons of ddbnum_check start. */
static const char not_a_number[] = "is not a number";
static const char too_precise[] = "has more than 38 significant digits";
static const char out_of_range[] = "is out of DynamoDB's range";

static void check_ok(const char *s)
{
	const char *why = "unset";

	if (ddbnum_check(s, strlen(s), &why))
		fail_msg("\"%s\" refused: %s", s, why);
	assert_null(why);
}

static void check_bad(const char *s, const char *why_start)
{
	const char *why = NULL;

	if (ddbnum_check(s, strlen(s), &why) != -EINVAL)
		fail_msg("\"%s\" accepted", s);
	assert_non_null(why);
	if (strncmp(why, why_start, strlen(why_start)))
		fail_msg("\"%s\": %s", s, why);
	assert_int_equal(ddbnum_check(s, strlen(s), NULL), -EINVAL);
}

/* Apply f to s, expecting want, or -EINVAL when want is NULL. */
static void check_form(int (*f)(const char *, size_t, struct dbuf *),
		       const char *s, const char *want)
{
	struct dbuf b;
	int rc;

	dbuf_init(&b, 4096);
	assert_int_equal(dbuf_adds(&b, "<"), 0);
	rc = f(s, strlen(s), &b);
	if (!want) {
		if (rc != -EINVAL)
			fail_msg("\"%s\" gave %d \"%s\"", s, rc, dbuf_str(&b));
		assert_string_equal(dbuf_str(&b), "<");
	} else {
		if (rc)
			fail_msg("\"%s\" failed: %d", s, rc);
		assert_string_equal(dbuf_str(&b) + 1, want);
	}
	dbuf_free(&b);
}

static void normalize(const char *s, const char *want)
{
	check_form(ddbnum_normalize, s, want);
}

static void to_json(const char *s, const char *want)
{
	check_form(ddbnum_to_json, s, want);
}

static int cmp(const char *a, const char *b)
{
	return ddbnum_cmp(a, strlen(a), b, strlen(b));
}

static void test_check(void **state)
{
	static const char *const syntax[] = {
		"", "-", "+", ".", "-.", "1..2", "1.2.3", "--1", "+-1", "1e",
		"1e+", "1e-", "e5", " 1", "1 ", "NaN", "Infinity", "0x10", "1,5",
		"1e1.5", ".e1",
	};
	char text[2200];
	size_t i;
	(void)state;

	check_ok("0");
	check_ok("-0");
	check_ok("+.5");
	check_ok("5.");
	check_ok("1E+125");
	check_ok("1e-130");
	check_ok("9.9999999999999999999999999999999999999E+125");
	check_ok("-1.2345678901234567890123456789012345678E-130");
	check_ok("12345678901234567890123456789012345678");
	check_ok("1234567890123456789012345678901234567800000");
	/* zero is zero whatever its exponent */
	check_ok("0e99999999999999999999999999");
	for (i = 0; i < sizeof(syntax) / sizeof(syntax[0]); i++)
		check_bad(syntax[i], not_a_number);
	check_bad("123456789012345678901234567890123456789", too_precise);
	check_bad("1.00000000000000000000000000000000000001", too_precise);
	check_bad("1E126", out_of_range);
	check_bad("10E125", out_of_range);
	check_bad("1e-131", out_of_range);
	check_bad("0.01e-129", out_of_range);
	check_bad("1e99999999999999999999999999", out_of_range);
	check_bad("-1e-99999999999999999999999999", out_of_range);
	/* any length of zero padding: the digits are not counted */
	memset(text, '0', sizeof(text) - 1);
	text[sizeof(text) - 2] = '7';
	text[sizeof(text) - 1] = '\0';
	check_ok(text);
	text[1] = '.';
	check_bad(text, out_of_range);
	/* not NUL-terminated, and no text at all */
	assert_int_equal(ddbnum_check("12x", 2, NULL), 0);
	assert_int_equal(ddbnum_check(NULL, 0, NULL), -EINVAL);
}

static void test_normalize(void **state)
{
	char want[200];
	(void)state;

	normalize("12.5", "12.5");
	normalize("12.50", "12.5");
	normalize("00042", "42");
	normalize("-0", "0");
	normalize("+0.000e-999", "0");
	normalize("1.0", "1");
	normalize("1.5E2", "150");
	normalize("+7", "7");
	normalize(".5", "0.5");
	normalize("5.", "5");
	normalize("-.5e1", "-5");
	normalize("1.25e-3", "0.00125");
	normalize("123.456e1", "1234.56");
	normalize("0.00123e2", "0.123");
	normalize("100e-2", "1");
	normalize("1E+30", "1000000000000000000000000000000");
	/* the range ends: 126 integer digits, and 170 characters */
	memset(want, '9', 38);
	snprintf(want + 38, sizeof(want) - 38, "%088d", 0);
	normalize("9.9999999999999999999999999999999999999E+125", want);
	snprintf(want, sizeof(want), "-0.%0129d%s", 0,
		 "12345678901234567890123456789012345678");
	normalize("-1.2345678901234567890123456789012345678E-130", want);
	assert_int_equal(strlen(want), 170);
	/* what ddbnum_check refuses */
	normalize("", NULL);
	normalize("1e", NULL);
	normalize("1E126", NULL);
	normalize("1.00000000000000000000000000000000000001", NULL);
}

static void test_to_json(void **state)
{
	(void)state;

	/* already JSON: as is, whatever the digits */
	to_json("12.50", "12.50");
	to_json("-0", "-0");
	to_json("1E+400", "1E+400");
	to_json("0.5e-3", "0.5e-3");
	/* only the form changes */
	to_json("+5", "5");
	to_json(".5", "0.5");
	to_json("-.5", "-0.5");
	to_json("5.", "5");
	to_json("007", "7");
	to_json("00.10", "0.10");
	to_json("+.5E+2", "0.5E+2");
	to_json("1.e3", "1e3");
	to_json("x", NULL);
	to_json("1e", NULL);
}

static void test_cmp(void **state)
{
	static const char *const ascending[] = {
		"-9.9999999999999999999999999999999999999E+125",
		"-1E+100",
		"-100",
		"-99.5",
		"-2",
		"-1.5",
		"-1",
		"-1E-130",
		"0",
		"1E-130",
		"0.00012",
		"0.1",
		"0.5",
		"1",
		"1.000000000000000000000000000000000000001",
		"1.5",
		"2",
		"9",
		"10",
		"12345678901234567890123456789012345677",
		"12345678901234567890123456789012345678",
		"1.2345678901234567890123456789012345679E+37",
		"1E+38",
		"9.9999999999999999999999999999999999999E+125",
	};
	static const char *const equal[][2] = {
		{ "1", "1.0" },      { "10E-1", "1" },   { "0", "-0" },
		{ "0", "0.000e5" },  { "+1", "1" },       { ".5", "0.50" },
		{ "5.", "5" },       { "100", "1E2" },    { "1e+2", "0.001e5" },
		{ "-2.50", "-25e-1" }, { "007", "7" },
	};
	size_t i, j;
	(void)state;

	for (i = 0; i < sizeof(ascending) / sizeof(ascending[0]); i++) {
		for (j = 0; j < sizeof(ascending) / sizeof(ascending[0]); j++) {
			int r = cmp(ascending[i], ascending[j]);
			int want = i < j ? -1 : i > j;

			if ((r > 0) - (r < 0) != want)
				fail_msg("ddbnum_cmp(%s, %s) = %d", ascending[i],
					 ascending[j], r);
		}
	}
	for (i = 0; i < sizeof(equal) / sizeof(equal[0]); i++) {
		assert_int_equal(cmp(equal[i][0], equal[i][1]), 0);
		assert_int_equal(cmp(equal[i][1], equal[i][0]), 0);
	}
	/* not numbers: after every number, bytewise among themselves */
	assert_true(cmp("x", "1e125") > 0);
	assert_true(cmp("1", "") < 0);
	assert_true(cmp("a", "b") < 0);
	assert_int_equal(cmp("1e", "1e"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_to_json),
		cmocka_unit_test(test_cmp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
