#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "backend/b64.h"
#include "backend/dbuf.h"

/* b64_encode of s into a fresh buffer, checked against want. */
static void check_encode(const char *s, size_t n, enum b64_form f,
			 const char *want)
{
	struct dbuf b;

	dbuf_init(&b, 4096);
	assert_int_equal(b64_encode(s, n, f, &b), 0);
	assert_string_equal(dbuf_str(&b), want);
	dbuf_free(&b);
}

/* Decoding text gives exactly want[0..wn), or fails with -EINVAL when want
 * is NULL. */
static void check_decode(const char *text, enum b64_form f, int strict,
			 const char *want, size_t wn)
{
	struct dbuf b;
	int rc;

	dbuf_init(&b, 4096);
	rc = b64_decode(text, strlen(text), f, strict, &b);
	if (!want) {
		if (rc != -EINVAL)
			fail_msg("\"%s\" (form %d, strict %d) decoded", text, f,
				 strict);
		assert_int_equal(dbuf_len(&b), 0);
	} else {
		if (rc)
			fail_msg("\"%s\" (form %d, strict %d): %d", text, f,
				 strict, rc);
		assert_int_equal(dbuf_len(&b), wn);
		assert_memory_equal(dbuf_str(&b), want, wn);
	}
	dbuf_free(&b);
}

static void test_rfc4648_vectors(void **state)
{
	static const struct {
		const char *raw, *std, *url;
	} v[] = {
		{ "", "", "" },
		{ "f", "Zg==", "Zg" },
		{ "fo", "Zm8=", "Zm8" },
		{ "foo", "Zm9v", "Zm9v" },
		{ "foob", "Zm9vYg==", "Zm9vYg" },
		{ "fooba", "Zm9vYmE=", "Zm9vYmE" },
		{ "foobar", "Zm9vYmFy", "Zm9vYmFy" },
		/* the two characters where the alphabets differ */
		{ "\xfb\xff", "+/8=", "-_8" },
		{ "\xfb\xef\xbe", "++++", "----" },
		{ "\xff\xff\xff", "////", "____" },
	};
	size_t i, n;
	(void)state;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		n = strlen(v[i].raw);
		check_encode(v[i].raw, n, B64_STD, v[i].std);
		check_encode(v[i].raw, n, B64_URL, v[i].url);
		check_decode(v[i].std, B64_STD, 1, v[i].raw, n);
		check_decode(v[i].std, B64_STD, 0, v[i].raw, n);
		check_decode(v[i].url, B64_URL, 1, v[i].raw, n);
		check_decode(v[i].url, B64_URL, 0, v[i].raw, n);
		assert_true(b64_canonical(v[i].std, strlen(v[i].std), B64_STD));
		assert_true(b64_canonical(v[i].url, strlen(v[i].url), B64_URL));
	}
}

/* Every length up to 3 groups and every byte value, standard base64
 * checked against OpenSSL's encoder. */
static void test_round_trip(void **state)
{
	unsigned char raw[256], ref[400];
	struct dbuf b, back;
	size_t i, n;
	int len;
	(void)state;

	for (i = 0; i < sizeof(raw); i++)
		raw[i] = (unsigned char)(i * 131 + 7);
	for (n = 0; n <= sizeof(raw); n++) {
		dbuf_init(&b, 4096);
		dbuf_init(&back, 4096);
		assert_int_equal(b64_encode(raw, n, B64_STD, &b), 0);
		len = EVP_EncodeBlock(ref, raw, (int)n);
		assert_int_equal(dbuf_len(&b), (size_t)len);
		assert_memory_equal(dbuf_str(&b), ref, (size_t)len);
		assert_int_equal(b64_decode(dbuf_str(&b), dbuf_len(&b), B64_STD,
					    1, &back), 0);
		assert_int_equal(dbuf_len(&back), n);
		assert_memory_equal(dbuf_str(&back), raw, n);

		/* base64url: the same without padding and with "-_" */
		dbuf_reset(&b);
		dbuf_reset(&back);
		assert_int_equal(b64_encode(raw, n, B64_URL, &b), 0);
		assert_int_equal(dbuf_len(&b), (4 * n + 2) / 3);
		assert_null(memchr(dbuf_str(&b), '=', dbuf_len(&b)));
		assert_int_equal(b64_decode(dbuf_str(&b), dbuf_len(&b), B64_URL,
					    1, &back), 0);
		assert_int_equal(dbuf_len(&back), n);
		assert_memory_equal(dbuf_str(&back), raw, n);
		dbuf_free(&b);
		dbuf_free(&back);
	}
}

static void test_strict_rejects(void **state)
{
	static const char *const bad_std[] = {
		"Zg", "Zm8", "Zg=", "Z===", "Zg===", "Zh==", "Zm9=", "Z",
		"Zm9v!", "Zm 9v", "Zg==Zg==", "-_8=", "====", "=", "Zm9vY",
	};
	static const char *const bad_url[] = {
		"Zg==", "Zg=", "Zh", "Zm9", "Z", "Zm9vY", "Z+8", "Z/8", "Zm 9",
		"Zg.", "%~",
	};
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(bad_std) / sizeof(bad_std[0]); i++) {
		check_decode(bad_std[i], B64_STD, 1, NULL, 0);
		assert_false(b64_canonical(bad_std[i], strlen(bad_std[i]),
					   B64_STD));
	}
	for (i = 0; i < sizeof(bad_url) / sizeof(bad_url[0]); i++) {
		check_decode(bad_url[i], B64_URL, 1, NULL, 0);
		assert_false(b64_canonical(bad_url[i], strlen(bad_url[i]),
					   B64_URL));
	}
	assert_true(b64_canonical("", 0, B64_STD));
	assert_true(b64_canonical("AA==", 4, B64_STD));
	assert_false(b64_canonical("AB==", 4, B64_STD));
	assert_false(b64_canonical("AA", 2, B64_STD));
	assert_true(b64_canonical("AA", 2, B64_URL));
}

/* Not strict: padding is optional and stray low bits are ignored, but
 * the text must still be base64. */
static void test_lenient(void **state)
{
	(void)state;

	check_decode("Zg", B64_STD, 0, "f", 1);
	check_decode("Zh==", B64_STD, 0, "f", 1);
	check_decode("Zh", B64_STD, 0, "f", 1);
	check_decode("Zm8", B64_STD, 0, "fo", 2);
	check_decode("Zm9=", B64_STD, 0, "fo", 2);
	check_decode("Zg==", B64_URL, 0, "f", 1);
	check_decode("-_8", B64_URL, 0, "\xfb\xff", 2);
	check_decode("Zg=", B64_STD, 0, NULL, 0);
	check_decode("Z===", B64_STD, 0, NULL, 0);
	check_decode("Zg===", B64_STD, 0, NULL, 0);
	check_decode("Z", B64_STD, 0, NULL, 0);
	check_decode("Zm9vY", B64_STD, 0, NULL, 0);
	check_decode("-_8=", B64_STD, 0, NULL, 0);
	check_decode("+/8=", B64_URL, 0, NULL, 0);
}

/* A failure leaves what out held before. */
static void test_failure_keeps_out(void **state)
{
	struct dbuf b;
	(void)state;

	dbuf_init(&b, 16);
	assert_int_equal(dbuf_adds(&b, "ab"), 0);
	assert_int_equal(b64_encode("foobar", 6, B64_STD, &b), 0);
	assert_string_equal(dbuf_str(&b), "abZm9vYmFy");
	dbuf_truncate(&b, 2);
	/* 16 characters do not fit after "ab" */
	assert_int_equal(b64_encode("foobarbazqux", 12, B64_STD, &b), -E2BIG);
	assert_string_equal(dbuf_str(&b), "ab");
	/* a bad character after good groups */
	assert_int_equal(b64_decode("Zm9vYmF!", 8, B64_STD, 1, &b), -EINVAL);
	assert_string_equal(dbuf_str(&b), "ab");
	assert_int_equal(b64_decode("Zm9vYmFy", 8, B64_STD, 1, &b), 0);
	assert_string_equal(dbuf_str(&b), "abfoobar");
	/* out of room halfway through */
	assert_int_equal(b64_decode("Zm9vYmFyYmF6cXV4", 16, B64_STD, 1, &b),
			 -E2BIG);
	assert_string_equal(dbuf_str(&b), "abfoobar");
	/* no buffer: only the check */
	assert_int_equal(b64_decode("Zm9vYmFy", 8, B64_STD, 1, NULL), 0);
	dbuf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc4648_vectors),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_strict_rejects),
		cmocka_unit_test(test_lenient),
		cmocka_unit_test(test_failure_keeps_out),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
