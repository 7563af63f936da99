#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "fs/keyname.h"

/* ---- helpers --------------------------------------------------------- */

/* A fixed-seed generator so every run checks the same inputs. */
static uint64_t rng_state;

static void rng_seed(uint64_t seed)
{
	rng_state = seed;
}

static uint32_t rng(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 2685821657736338717ULL) >> 32);
}

static uint32_t rng_below(uint32_t n)
{
	return rng() % n;
}

static json_t *typed(const char *tag, const char *text, size_t n)
{
	json_t *obj = json_object();
	json_t *s = json_stringn(text, n);

	assert_non_null(obj);
	assert_non_null(s);
	assert_int_equal(json_object_set_new(obj, tag, s), 0);
	return obj;
}

static json_t *typed_s(const char *s)
{
	return typed("S", s, strlen(s));
}

static json_t *typed_n(const char *s)
{
	return typed("N", s, strlen(s));
}

/* Standard base64 by OpenSSL, an independent oracle for our own code. */
static json_t *typed_b(const unsigned char *p, size_t n)
{
	unsigned char *out = malloc(4 * ((n + 2) / 3) + 1);
	json_t *v;
	int len;

	assert_non_null(out);
	len = EVP_EncodeBlock(out, p, (int)n);
	v = typed("B", (const char *)out, (size_t)len);
	free(out);
	return v;
}

/* Encode into a fresh buffer; the result is malloc'd (NULL on error). */
static char *enc(enum keyname_type t, const json_t *v, size_t max_len,
		 int *rc_out)
{
	struct dbuf b;
	char *p = NULL;
	int rc;

	dbuf_init(&b, 4096);
	rc = keyname_encode(t, v, max_len, &b);
	if (rc == 0) {
		p = dbuf_take(&b, NULL);
		assert_non_null(p);
	}
	dbuf_free(&b);
	if (rc_out)
		*rc_out = rc;
	return p;
}

/* A name that must decode to a full key and re-encode to itself. */
static void check_canonical(enum keyname_type t, const char *name,
			    size_t len, size_t max_len)
{
	struct keyname_decoded d;
	char *again;

	assert_int_equal(keyname_decode(t, name, len, max_len, &d), 0);
	assert_int_equal(d.partial, 0);
	assert_non_null(d.value);
	again = enc(t, d.value, max_len, NULL);
	assert_non_null(again);
	assert_int_equal(strlen(again), len);
	assert_memory_equal(again, name, len);
	free(again);
	keyname_decoded_free(&d);
}

/* value encodes to want (under max_len 255), which decodes back to a value
 * equal to canon (value itself when canon is NULL). */
static void check_pair(enum keyname_type t, json_t *value, const char *want,
		       size_t want_len, json_t *canon)
{
	struct keyname_decoded d;
	char *name;
	int rc;

	name = enc(t, value, KEYNAME_MAX_DIR, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(strlen(name), want_len);
	assert_memory_equal(name, want, want_len);
	assert_int_equal(keyname_decode(t, name, want_len, KEYNAME_MAX_DIR, &d),
			 0);
	assert_int_equal(d.partial, 0);
	assert_true(json_equal(d.value, canon ? canon : value));
	check_canonical(t, name, want_len, KEYNAME_MAX_DIR);
	keyname_decoded_free(&d);
	free(name);
	json_decref(value);
	json_decref(canon);
}

static void s_pair(const char *in, size_t in_len, const char *want)
{
	check_pair(KEYNAME_S, typed("S", in, in_len), want, strlen(want),
		   NULL);
}

static void n_pair(const char *in, const char *want)
{
	check_pair(KEYNAME_N, typed_n(in), want, strlen(want), typed_n(want));
}

static void expect_reject(enum keyname_type t, const char *name, size_t len,
			  size_t max_len, int want_rc)
{
	struct keyname_decoded d;

	assert_int_equal(keyname_decode(t, name, len, max_len, &d), want_rc);
	assert_null(d.value);
	assert_int_equal(d.partial, 0);
	keyname_decoded_free(&d);
}

static void reject_s(const char *name, size_t len)
{
	expect_reject(KEYNAME_S, name, len, KEYNAME_MAX_DIR, -EINVAL);
}

static void reject_str(enum keyname_type t, const char *name)
{
	expect_reject(t, name, strlen(name), KEYNAME_MAX_DIR, -EINVAL);
}

/* The long-key hash, computed here independently of keyname.c. */
static void ref_hash(char tag, const void *raw, size_t n, char hex[33])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen, i;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	assert_non_null(ctx);
	assert_int_equal(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL), 1);
	assert_int_equal(EVP_DigestUpdate(ctx, &tag, 1), 1);
	assert_int_equal(EVP_DigestUpdate(ctx, raw, n), 1);
	assert_int_equal(EVP_DigestFinal_ex(ctx, md, &mdlen), 1);
	EVP_MD_CTX_free(ctx);
	for (i = 0; i < 16; i++)
		sprintf(hex + 2 * i, "%02x", md[i]);
}

/* Append one random code point as UTF-8 to p (room for 4 bytes); returns
 * its length.  Weighted towards the bytes the codec treats specially. */
static size_t rand_utf8(unsigned char *p, size_t room)
{
	static const char special[] = "%/.~-_ \\:*?\"<>|";
	uint32_t cp, kind = rng_below(10);

	if (room < 4 && kind >= 6)
		kind = rng_below(6);
	switch (kind) {
	case 0:
		p[0] = (unsigned char)rng_below(0x20);
		return 1;
	case 1:
		p[0] = rng_below(2) ? 0x7F : (unsigned char)special[rng_below(
						   sizeof(special) - 1)];
		return 1;
	case 2:
	case 3:
	case 4:
	case 5:
		p[0] = (unsigned char)(0x20 + rng_below(0x5F));
		return 1;
	case 6:
		cp = 0x80 + rng_below(0x800 - 0x80);
		p[0] = (unsigned char)(0xC0 | cp >> 6);
		p[1] = (unsigned char)(0x80 | (cp & 0x3F));
		return 2;
	case 7:
	case 8:
		do
			cp = 0x800 + rng_below(0x10000 - 0x800);
		while (cp >= 0xD800 && cp <= 0xDFFF);
		p[0] = (unsigned char)(0xE0 | cp >> 12);
		p[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
		p[2] = (unsigned char)(0x80 | (cp & 0x3F));
		return 3;
	default:
		cp = 0x10000 + rng_below(0x110000 - 0x10000);
		p[0] = (unsigned char)(0xF0 | cp >> 18);
		p[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
		p[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
		p[3] = (unsigned char)(0x80 | (cp & 0x3F));
		return 4;
	}
}

/* Exactly n bytes of random valid UTF-8. */
static void rand_utf8_string(unsigned char *p, size_t n)
{
	size_t i = 0;

	while (i < n)
		i += rand_utf8(p + i, n - i);
}

/* ---- strings ----------------------------------------------------------- */

static void test_s_rules(void **state)
{
	(void)state;
	s_pair("abc", 3, "abc");
	s_pair("%", 1, "%25");
	s_pair("/", 1, "%2F");
	s_pair("a/b%c", 5, "a%2Fb%25c");
	s_pair("50%/year", 8, "50%25%2Fyear");
	s_pair("%~", 2, "%25~");
	s_pair("\x01", 1, "%01");
	s_pair("\x1f", 1, "%1F");
	s_pair("\x7f", 1, "%7F");
	s_pair("a\tb\nc\r", 6, "a%09b%0Ac%0D");
	s_pair("a\0b", 3, "a%00b");
	s_pair("\0", 1, "%00");
	s_pair(".hidden", 7, "%2Ehidden");
	s_pair(".", 1, "%2E");
	s_pair("..", 2, "%2E.");
	s_pair("...", 3, "%2E..");
	s_pair("a.b.", 4, "a.b.");
	s_pair("x.json", 6, "x.json");
	/* everything else printable passes through */
	s_pair(" ~!\"#$&'()*+,-:;<=>?@[\\]^_`{|}", 30,
	       " ~!\"#$&'()*+,-:;<=>?@[\\]^_`{|}");
	s_pair("ABCxyz019", 9, "ABCxyz019");
}

static void test_s_unicode(void **state)
{
	(void)state;
	s_pair("\xc3\xa9", 2, "\xc3\xa9");			/* é */
	s_pair("caf\xc3\xa9", 5, "caf\xc3\xa9");
	s_pair("\xe6\x97\xa5\xe6\x9c\xac", 6, "\xe6\x97\xa5\xe6\x9c\xac"); /* 日本 */
	s_pair("\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80");	/* 😀 */
	s_pair(".\xf0\x9f\x98\x80/", 6, "%2E\xf0\x9f\x98\x80%2F");
	/* U+0080..U+009F are C1 controls but not bytes below 0x20: kept */
	s_pair("\xc2\x80\xc2\x9f", 4, "\xc2\x80\xc2\x9f");
	/* U+FFFF, U+10FFFF, U+2028 */
	s_pair("\xef\xbf\xbf\xf4\x8f\xbf\xbf\xe2\x80\xa8", 10,
	       "\xef\xbf\xbf\xf4\x8f\xbf\xbf\xe2\x80\xa8");
}

static void test_s_only_specials(void **state)
{
	(void)state;
	s_pair("%%%", 3, "%25%25%25");
	s_pair("///", 3, "%2F%2F%2F");
	s_pair("%/%/", 4, "%25%2F%25%2F");
	s_pair("/%", 2, "%2F%25");
	s_pair("%2F", 3, "%252F");
	s_pair("%25", 3, "%2525");
	s_pair("%2E", 3, "%252E");
}

static void test_s_rejects(void **state)
{
	(void)state;
	reject_s("", 0);
	reject_s("%", 1);
	reject_s("a%", 2);
	reject_s("%2", 2);
	reject_s("a%2", 3);
	reject_s("%2f", 3);		/* lower-case hex */
	reject_s("%0a", 3);
	reject_s("%2e", 3);
	reject_s("%GG", 3);
	reject_s("%2G", 3);
	reject_s("%G2", 3);
	reject_s("%41", 3);		/* "A" needs no escape */
	reject_s("%20", 3);
	reject_s("%7E", 3);
	reject_s("%80", 3);		/* bytes >= 0x80 are never escaped */
	reject_s("%C3%A9", 6);
	reject_s("a%2E", 4);		/* only a leading dot is escaped */
	reject_s("a%2Eb", 5);
	reject_s("a/b", 3);		/* raw slash */
	reject_s("/", 1);
	reject_s("a\x01", 2);		/* raw control bytes */
	reject_s("\x1f", 1);
	reject_s("a\x7f", 2);
	reject_s("a\0b", 3);
	reject_s(".a", 2);		/* dot-names are never items */
	reject_s(".", 1);
	reject_s("..", 2);
	reject_s(".json", 5);
	reject_s("\xc3", 1);		/* truncated */
	reject_s("a\xe6\x97", 3);
	reject_s("\xe6\x97\x41", 3);	/* bad continuation bytes */
	reject_s("\xf0\x9f\x98\x41", 4);
	reject_s("\xf0\x9f\x41\x80", 4);
	reject_s("\xc3\x41", 2);
	reject_s("\xc0\x80", 2);	/* overlong */
	reject_s("\xc1\xbf", 2);
	reject_s("\xe0\x80\xaf", 3);
	reject_s("\xf0\x80\x80\xaf", 4);
	reject_s("\xed\xa0\x80", 3);	/* surrogate */
	reject_s("\xf4\x90\x80\x80", 4);	/* above U+10FFFF */
	reject_s("\xff", 1);
	reject_s("\x80", 1);
	reject_s("a\xbf", 2);
	reject_s("%~", 2);		/* malformed long-key parts */
	reject_s("a%~", 3);
	reject_s("a%~0123", 7);
	/* longer than max_len */
	expect_reject(KEYNAME_S, "abcdef", 6, 5, -ENAMETOOLONG);
	/* the same names are fine when canonical */
	check_canonical(KEYNAME_S, "%25", 3, KEYNAME_MAX_DIR);
	check_canonical(KEYNAME_S, "%2E", 3, KEYNAME_MAX_DIR);
	check_canonical(KEYNAME_S, "%2E.", 4, KEYNAME_MAX_DIR);
	check_canonical(KEYNAME_S, "%00", 3, KEYNAME_MAX_DIR);
	check_canonical(KEYNAME_S, "abcde", 5, 5);
}

/* ---- numbers ------------------------------------------------------------ */

static void test_numbers(void **state)
{
	char big[200], small[200];
	(void)state;

	n_pair("12.5", "12.5");
	n_pair("-3", "-3");
	n_pair("0", "0");
	n_pair("100", "100");
	n_pair("0.001", "0.001");
	n_pair("-0.5", "-0.5");
	n_pair("10.01", "10.01");
	/* what DynamoDB itself returns for non-normalized input */
	n_pair("12.50", "12.5");
	n_pair("00042", "42");
	n_pair("-0", "0");
	n_pair("0.000", "0");
	n_pair("-0e10", "0");
	n_pair("1.0", "1");
	n_pair("1.5E2", "150");
	n_pair("1e3", "1000");
	n_pair("1E+30", "1000000000000000000000000000000");
	n_pair("1.25e-3", "0.00125");
	n_pair("-1.2E-3", "-0.0012");
	n_pair("+7", "7");
	n_pair(".5", "0.5");
	n_pair("5.", "5");
	n_pair("123.456e1", "1234.56");
	n_pair("123.456e3", "123456");
	n_pair("0.00123e2", "0.123");
	n_pair("1234567890123456789012345678901234567800",
	       "1234567890123456789012345678901234567800");
	n_pair("1.00000000000000007629769841092E+50",
	       "100000000000000007629769841092000000000000000000000");
	/* range ends */
	snprintf(small, sizeof(small), "0.%0129d1", 0);
	n_pair("1E-130", small);
	snprintf(small, sizeof(small), "-0.%0129d%s", 0,
		 "12345678901234567890123456789012345678");
	n_pair("-1.2345678901234567890123456789012345678E-130", small);
	assert_int_equal(strlen(small), 170);
	memset(big, '9', 38);
	snprintf(big + 38, sizeof(big) - 38, "%088d", 0);
	n_pair("9.9999999999999999999999999999999999999E+125", big);
	assert_int_equal(strlen(big), 126);
}

static void test_number_rejects(void **state)
{
	static const char *const bad_values[] = {
		"", "abc", "-", "+", ".", "-.", "1..2", "1.2.3", "--1", "+-1",
		"1e", "1e+", "1e-", "e5", " 1", "1 ", "NaN", "Infinity", "0x10",
		"1,5", "1e1.5", "1E126", "1e-131", "10E125", "0.01e-129",
		"1234567890123456789012345678901234567891",	/* 40 sig */
		"1.23456789012345678901234567890123456789",	/* 39 sig */
	};
	static const char *const bad_names[] = {
		"12.50", "+1", "-0", "01", "00", ".5", "5.", "1e3", "1E3",
		"0.0", "1.", "%31", "-", "1/2", "0.10", "-.5", "1E+30", "%2E5",
	};
	json_t *v;
	size_t i;
	int rc;
	(void)state;

	for (i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++) {
		v = typed_n(bad_values[i]);
		assert_null(enc(KEYNAME_N, v, KEYNAME_MAX_DIR, &rc));
		assert_int_equal(rc, -EINVAL);
		json_decref(v);
	}
	for (i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++)
		reject_str(KEYNAME_N, bad_names[i]);
	/* numbers never take the long-key form */
	v = typed_n("123456");
	assert_null(enc(KEYNAME_N, v, 5, &rc));
	assert_int_equal(rc, -ENAMETOOLONG);
	json_decref(v);
	expect_reject(KEYNAME_N, "123456", 6, 5, -ENAMETOOLONG);
}

/* ---- binary ------------------------------------------------------------ */

static void b_pair(const char *raw, const char *want)
{
	check_pair(KEYNAME_B, typed_b((const unsigned char *)raw, strlen(raw)),
		   want, strlen(want), NULL);
}

static void test_binary(void **state)
{
	unsigned char bytes[256], half[128];
	struct keyname_decoded d;
	json_t *v, *want;
	char *name;
	size_t i;
	int rc;
	(void)state;

	/* RFC 4648 test vectors */
	b_pair("f", "Zg");
	b_pair("fo", "Zm8");
	b_pair("foo", "Zm9v");
	b_pair("foob", "Zm9vYg");
	b_pair("fooba", "Zm9vYmE");
	b_pair("foobar", "Zm9vYmFy");
	/* the two characters that differ from standard base64 */
	b_pair("\xfb\xff", "-_8");
	b_pair("\xfb\xef\xbe", "----");
	b_pair("\xff\xff\xff", "____");

	/* every byte value, alone and in runs that fit a name */
	for (i = 0; i < 256; i++)
		bytes[i] = (unsigned char)i;
	for (i = 0; i < 256; i++) {
		v = typed_b(bytes + i, 1);
		name = enc(KEYNAME_B, v, KEYNAME_MAX_DIR, &rc);
		assert_int_equal(rc, 0);
		assert_int_equal(strlen(name), 2);
		assert_int_equal(keyname_decode(KEYNAME_B, name, 2,
						KEYNAME_MAX_DIR, &d), 0);
		assert_true(json_equal(d.value, v));
		keyname_decoded_free(&d);
		free(name);
		json_decref(v);
	}
	for (i = 0; i < 2; i++) {
		memcpy(half, bytes + 128 * i, 128);
		v = typed_b(half, 128);
		name = enc(KEYNAME_B, v, KEYNAME_MAX_DIR, &rc);
		assert_int_equal(rc, 0);
		assert_int_equal(strlen(name), 171);
		assert_null(strpbrk(name, "+/=%."));
		assert_int_equal(keyname_decode(KEYNAME_B, name, 171,
						KEYNAME_MAX_DIR, &d), 0);
		assert_int_equal(d.partial, 0);
		assert_true(json_equal(d.value, v));
		keyname_decoded_free(&d);
		free(name);
		json_decref(v);
	}

	/* the value may arrive without padding; decode gives it back padded */
	v = typed("B", "Zg", 2);
	want = typed("B", "Zg==", 4);
	check_pair(KEYNAME_B, v, "Zg", 2, want);

	/* bad typed values */
	{
		static const char *const bad[] = {
			"", "Z", "Zg=", "Z===", "Zg===", "Zm9v!", "Zm 9v",
			"Zg==Zg==", "-_8=",
		};
		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			v = typed("B", bad[i], strlen(bad[i]));
			assert_null(enc(KEYNAME_B, v, KEYNAME_MAX_DIR, &rc));
			assert_int_equal(rc, -EINVAL);
			json_decref(v);
		}
	}
}

static void test_binary_rejects(void **state)
{
	static const char *const bad[] = {
		"", "Z", "Zm9vY", "Zh", "Zm9", "Zm9vYh", "Zg==", "Zg=", "Z+8",
		"Z/8", "Zm9v%41", ".Zg", "Zg.", "Zg~", "Zm 9", "%~", "Zg%",
	};
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		reject_str(KEYNAME_B, bad[i]);
	check_canonical(KEYNAME_B, "Zm8", 3, KEYNAME_MAX_DIR);
	check_canonical(KEYNAME_B, "AA", 2, KEYNAME_MAX_DIR);
}

/* ---- typed values -------------------------------------------------------- */

static void test_bad_values(void **state)
{
	json_t *vals[7];
	struct dbuf b;
	size_t i;
	(void)state;

	vals[0] = json_pack("{s:i}", "S", 5);
	vals[1] = typed_n("1");			/* wrong type for S */
	vals[2] = json_pack("{s:s,s:s}", "S", "a", "x", "b");
	vals[3] = json_string("a");
	vals[4] = typed_s("");			/* DynamoDB forbids empty keys */
	vals[5] = json_object();
	vals[6] = json_pack("{s:[s]}", "S", "a");
	dbuf_init(&b, 4096);
	assert_int_equal(dbuf_adds(&b, "keep"), 0);
	for (i = 0; i < 7; i++) {
		assert_non_null(vals[i]);
		assert_int_equal(keyname_encode(KEYNAME_S, vals[i], 255, &b),
				 -EINVAL);
		assert_string_equal(dbuf_str(&b), "keep");
		json_decref(vals[i]);
	}
	assert_int_equal(keyname_encode(KEYNAME_S, NULL, 255, &b), -EINVAL);
	assert_int_equal(keyname_hash_matches(KEYNAME_S, NULL,
		"00000000000000000000000000000000"), -EINVAL);

	/* invalid UTF-8 smuggled past jansson's check */
	vals[0] = json_pack("{s:o}", "S", json_stringn_nocheck("a\xc3", 2));
	assert_non_null(vals[0]);
	assert_int_equal(keyname_encode(KEYNAME_S, vals[0], 255, &b), -EINVAL);
	assert_int_equal(keyname_hash_matches(KEYNAME_S, vals[0],
		"00000000000000000000000000000000"), -EINVAL);
	json_decref(vals[0]);
	/* no such type */
	vals[0] = typed_s("abc");
	assert_int_equal(keyname_encode((enum keyname_type)7, vals[0], 255, &b),
			 -EINVAL);
	assert_int_equal(keyname_hash_matches(KEYNAME_S, vals[0], NULL),
			 -EINVAL);
	assert_int_equal(keyname_hash_matches(KEYNAME_S, vals[0], "0123"), 0);
	json_decref(vals[0]);
	expect_reject((enum keyname_type)7, "abc", 3, 255, -EINVAL);
	assert_string_equal(dbuf_str(&b), "keep");

	/* encode appends and a too-small name buffer leaves it unchanged */
	vals[0] = typed_s("abcdef");
	assert_int_equal(keyname_encode(KEYNAME_S, vals[0], 255, &b), 0);
	assert_string_equal(dbuf_str(&b), "keepabcdef");
	dbuf_free(&b);
	dbuf_init(&b, 8);
	assert_int_equal(dbuf_adds(&b, "xyz"), 0);
	assert_int_equal(keyname_encode(KEYNAME_S, vals[0], 255, &b), -E2BIG);
	assert_string_equal(dbuf_str(&b), "xyz");
	dbuf_free(&b);
	/* room for the stem but not for ".json" */
	dbuf_init(&b, 10);
	assert_int_equal(keyname_encode_item(KEYNAME_S, vals[0], &b), -E2BIG);
	assert_string_equal(dbuf_str(&b), "");
	dbuf_free(&b);
	json_decref(vals[0]);
}

/* ---- item names ---------------------------------------------------------- */

static void test_items(void **state)
{
	struct keyname_decoded d;
	struct dbuf b;
	json_t *v;
	(void)state;

	assert_int_equal(keyname_is_item("a.json"), 1);
	assert_int_equal(keyname_is_item("%2Ea.json"), 1);
	assert_int_equal(keyname_is_item("a.json.json"), 1);
	assert_int_equal(keyname_is_item(".json"), 0);
	assert_int_equal(keyname_is_item(".a.json"), 0);
	assert_int_equal(keyname_is_item("a.jso"), 0);
	assert_int_equal(keyname_is_item("a.json.swp"), 0);
	assert_int_equal(keyname_is_item("a.json~"), 0);
	assert_int_equal(keyname_is_item("json"), 0);
	assert_int_equal(keyname_is_item(""), 0);

	v = typed_s(".x/y");
	dbuf_init(&b, 4096);
	assert_int_equal(keyname_encode_item(KEYNAME_S, v, &b), 0);
	assert_string_equal(dbuf_str(&b), "%2Ex%2Fy.json");
	assert_int_equal(keyname_decode_item(KEYNAME_S, dbuf_str(&b), &d), 0);
	assert_true(json_equal(d.value, v));
	keyname_decoded_free(&d);
	json_decref(v);

	assert_int_equal(keyname_decode_item(KEYNAME_S, "a.txt", &d), -EINVAL);
	assert_null(d.value);
	assert_int_equal(keyname_decode_item(KEYNAME_S, ".a.json", &d),
			 -EINVAL);
	assert_int_equal(keyname_decode_item(KEYNAME_S, "a%2f.json", &d),
			 -EINVAL);
	assert_int_equal(keyname_decode_item(KEYNAME_N, "12.5.json", &d), 0);
	assert_string_equal(json_string_value(json_object_get(d.value, "N")),
			    "12.5");
	keyname_decoded_free(&d);

	/* an item name fits NAME_MAX with its suffix */
	{
		char raw[400];
		memset(raw, 'k', sizeof(raw));
		v = typed("S", raw, sizeof(raw));
		dbuf_reset(&b);
		assert_int_equal(keyname_encode_item(KEYNAME_S, v, &b), 0);
		assert_int_equal(dbuf_len(&b), 255);
		assert_int_equal(keyname_decode_item(KEYNAME_S, dbuf_str(&b),
						     &d), 0);
		assert_int_equal(d.partial, 1);
		assert_int_equal(keyname_hash_matches(KEYNAME_S, v, d.hash),
				 1);
		keyname_decoded_free(&d);
		json_decref(v);
	}
	dbuf_free(&b);
}

/* ---- random round trips -------------------------------------------------- */

static void roundtrip(enum keyname_type t, json_t *v)
{
	struct keyname_decoded d;
	char *name;
	size_t len;
	int rc;

	name = enc(t, v, KEYNAME_MAX_DIR, &rc);
	assert_int_equal(rc, 0);
	len = strlen(name);
	assert_true(len > 0 && len <= KEYNAME_MAX_DIR);
	assert_true(name[0] != '.');
	assert_null(memchr(name, '/', len));
	assert_int_equal(keyname_decode(t, name, len, KEYNAME_MAX_DIR, &d), 0);
	assert_int_equal(d.partial, 0);
	assert_true(json_equal(d.value, v));
	check_canonical(t, name, len, KEYNAME_MAX_DIR);
	keyname_decoded_free(&d);
	free(name);
}

static void test_random_roundtrip(void **state)
{
	unsigned char buf[256];
	char num[80];
	size_t n, j;
	json_t *v;
	int i;
	(void)state;

	rng_seed(0x6b65796e616d65ULL);
	/* S: random valid UTF-8; short enough (<= 60 bytes, so at most 180
	 * encoded) that no long-key form is needed. */
	for (i = 0; i < 10000; i++) {
		n = 1 + rng_below(60);
		rand_utf8_string(buf, n);
		v = typed("S", (const char *)buf, n);
		roundtrip(KEYNAME_S, v);
		json_decref(v);
	}
	/* B: random bytes, up to 190 (254 characters) */
	for (i = 0; i < 10000; i++) {
		n = 1 + rng_below(190);
		for (j = 0; j < n; j++)
			buf[j] = (unsigned char)rng();
		v = typed_b(buf, n);
		roundtrip(KEYNAME_B, v);
		json_decref(v);
	}
	/* N: random digits with a point and an exponent, normalized by
	 * encode, then round-tripped from the normalized form. */
	for (i = 0; i < 10000; i++) {
		char *name;
		int rc;

		n = 0;
		if (rng_below(2))
			num[n++] = '-';
		for (j = 1 + rng_below(19); j > 0; j--)
			num[n++] = (char)('0' + (rng_below(3) ? rng_below(10) :
							  0));
		if (rng_below(2)) {
			num[n++] = '.';
			for (j = rng_below(19); j > 0; j--)
				num[n++] = (char)('0' + rng_below(10));
		}
		if (rng_below(2))
			n += (size_t)snprintf(num + n, sizeof(num) - n, "E%d",
					      (int)rng_below(200) - 100);
		num[n] = '\0';
		v = typed_n(num);
		name = enc(KEYNAME_N, v, KEYNAME_MAX_DIR, &rc);
		assert_int_equal(rc, 0);
		json_decref(v);
		v = typed_n(name);
		roundtrip(KEYNAME_N, v);
		json_decref(v);
		free(name);
	}
}

/* Random names from fragments that hit every rule: whatever decode
 * accepts must come back unchanged through encode. */
static void test_fuzz_names(void **state)
{
	static const char *const frags[] = {
		"a", "Z", "0", "9", "-", "_", "+", "=", ".", "/", "~", "%",
		"%2", "%25", "%2F", "%2f", "%2E", "%41", "%00", "%1F", "%7F",
		"%7f", "%20", "\x01", "\x7f", "\xc3\xa9", "\xc3", "\xa9",
		"\xf0\x9f\x98\x80", "\xed\xa0\x80", "e", "E", "E+", "1", "00",
		"%~", "%~0123456789abcdef0123456789abcdef", "Zg", "AA",
	};
	enum keyname_type types[] = { KEYNAME_S, KEYNAME_N, KEYNAME_B };
	struct keyname_decoded d;
	char name[300];
	size_t n, k, nf = sizeof(frags) / sizeof(frags[0]);
	int i, accepted = 0;
	unsigned ti;
	(void)state;

	rng_seed(42);
	for (ti = 0; ti < 3; ti++) {
		for (i = 0; i < 30000; i++) {
			n = 0;
			for (k = 1 + rng_below(6); k > 0; k--) {
				const char *f = frags[rng_below((uint32_t)nf)];
				memcpy(name + n, f, strlen(f));
				n += strlen(f);
			}
			/* short max_len so that "%~" tails can be valid */
			if (keyname_decode(types[ti], name, n,
					   rng_below(2) ? 255 : n, &d))
				continue;
			accepted++;
			if (!d.partial)
				check_canonical(types[ti], name, n, n);
			keyname_decoded_free(&d);
		}
	}
	assert_true(accepted > 1000);
}

/* ---- long keys ------------------------------------------------------------ */

/* Check the long-key name of v (raw bytes raw[0..n)) under max_len. */
static void check_long(enum keyname_type t, json_t *v, const char *raw,
		       size_t n, size_t max_len)
{
	struct keyname_decoded d;
	char hex[33], *name, *pname;
	const char *ptext;
	size_t len, plen;
	json_t *other;
	int rc;

	name = enc(t, v, max_len, &rc);
	assert_int_equal(rc, 0);
	len = strlen(name);
	assert_true(len <= max_len);
	assert_int_equal(keyname_decode(t, name, len, max_len, &d), 0);
	if (!d.partial) {
		/* it fit after all: then it must be the full encoding */
		assert_true(json_equal(d.value, v));
		keyname_decoded_free(&d);
		free(name);
		return;
	}
	plen = len - KEYNAME_FALLBACK_LEN;
	assert_memory_equal(name + plen, "%~", 2);
	assert_string_equal(name + plen + 2, d.hash);
	ref_hash(t == KEYNAME_S ? 'S' : 'B', raw, n, hex);
	assert_string_equal(d.hash, hex);
	assert_int_equal(keyname_hash_matches(t, v, d.hash), 1);
	assert_int_equal(keyname_matches(t, v, max_len, name, len), 1);
	if (t == KEYNAME_S) {
		/* longest cut: one more unit (<= 4 bytes) would not fit */
		assert_true(plen + KEYNAME_FALLBACK_LEN + 4 > max_len);
		ptext = json_string_value(json_object_get(d.value, "S"));
		assert_true(json_string_length(json_object_get(d.value, "S")) <
			    n);
		assert_memory_equal(ptext, raw,
			json_string_length(json_object_get(d.value, "S")));
	} else {
		assert_int_equal(plen, (max_len - 34) / 4 * 4);
	}
	/* The prefix is whole units: it is exactly the encoding of the
	 * decoded prefix, so no escape or UTF-8 sequence was split. */
	pname = enc(t, d.value, 4096, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(strlen(pname), plen);
	assert_memory_equal(pname, name, plen);
	free(pname);
	/* another key with the same prefix does not match */
	{
		char *raw2 = malloc(n);
		assert_non_null(raw2);
		memcpy(raw2, raw, n);
		raw2[n - 1] = raw2[n - 1] == 'q' ? 'r' : 'q';
		if (t == KEYNAME_S) {
			/* keep it valid UTF-8: replace the last character */
			size_t k = n - 1;
			while (k > 0 && ((unsigned char)raw[k] & 0xC0) == 0x80)
				k--;
			memset(raw2 + k, 'q', n - k);
			if (memcmp(raw2, raw, n) == 0)
				raw2[n - 1] = 'r';
			other = typed("S", raw2, n);
		} else {
			other = typed_b((unsigned char *)raw2, n);
		}
		assert_int_equal(keyname_hash_matches(t, other, d.hash), 0);
		assert_int_equal(keyname_matches(t, other, max_len, name, len),
				 0);
		json_decref(other);
		free(raw2);
	}
	keyname_decoded_free(&d);
	free(name);
}

static void test_long_keys(void **state)
{
	unsigned char *raw = malloc(2048);
	size_t n;
	json_t *v;
	(void)state;

	assert_non_null(raw);
	rng_seed(7);
	for (n = 251; n <= 2048; n++) {
		rand_utf8_string(raw, n);
		v = typed("S", (const char *)raw, n);
		check_long(KEYNAME_S, v, (const char *)raw, n, KEYNAME_MAX_STEM);
		check_long(KEYNAME_S, v, (const char *)raw, n, KEYNAME_MAX_DIR);
		json_decref(v);

		for (size_t j = 0; j < n; j++)
			raw[j] = (unsigned char)rng();
		v = typed_b(raw, n);
		check_long(KEYNAME_B, v, (const char *)raw, n, KEYNAME_MAX_STEM);
		check_long(KEYNAME_B, v, (const char *)raw, n, KEYNAME_MAX_DIR);
		json_decref(v);
	}
	/* Escapes and 4-byte sequences right at the cut, for every max_len
	 * offset: "xxxx..." then a run of one kind of unit. */
	{
		static const char *const units[] = {
			"%", "/", "\x01", "\xf0\x9f\x98\x80", "\xe6\x97\xa5",
			"\xc3\xa9", "a",
		};
		size_t u, lead, k, ulen;
		for (u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
			ulen = strlen(units[u]);
			for (lead = 0; lead < 4; lead++) {
				memset(raw, 'x', lead);
				for (k = lead; k + ulen <= 600; k += ulen)
					memcpy(raw + k, units[u], ulen);
				v = typed("S", (const char *)raw, k);
				check_long(KEYNAME_S, v, (const char *)raw, k,
					   KEYNAME_MAX_STEM);
				check_long(KEYNAME_S, v, (const char *)raw, k,
					   KEYNAME_MAX_DIR);
				json_decref(v);
			}
		}
	}
	free(raw);
}

static void test_shared_prefix(void **state)
{
	char a[2000], b[2000];
	char *na, *nb;
	json_t *va, *vb;
	int rc;
	(void)state;

	memset(a, 'p', sizeof(a));
	memcpy(b, a, sizeof(b));
	b[sizeof(b) - 1] = 'q';

	va = typed("S", a, sizeof(a));
	vb = typed("S", b, sizeof(b));
	na = enc(KEYNAME_S, va, KEYNAME_MAX_STEM, &rc);
	nb = enc(KEYNAME_S, vb, KEYNAME_MAX_STEM, &rc);
	assert_int_equal(strlen(na), strlen(nb));
	assert_memory_equal(na, nb, strlen(na) - KEYNAME_HASH_HEX);
	assert_string_not_equal(na, nb);
	assert_int_equal(keyname_matches(KEYNAME_S, va, KEYNAME_MAX_STEM, na,
					 strlen(na)), 1);
	assert_int_equal(keyname_matches(KEYNAME_S, vb, KEYNAME_MAX_STEM, na,
					 strlen(na)), 0);
	assert_int_equal(keyname_matches(KEYNAME_S, vb, KEYNAME_MAX_STEM, nb,
					 strlen(nb)), 1);
	free(na);
	free(nb);
	json_decref(va);
	json_decref(vb);

	va = typed_b((unsigned char *)a, sizeof(a));
	vb = typed_b((unsigned char *)b, sizeof(b));
	na = enc(KEYNAME_B, va, KEYNAME_MAX_DIR, &rc);
	nb = enc(KEYNAME_B, vb, KEYNAME_MAX_DIR, &rc);
	assert_memory_equal(na, nb, strlen(na) - KEYNAME_HASH_HEX);
	assert_string_not_equal(na, nb);
	free(na);
	free(nb);
	json_decref(va);
	json_decref(vb);

	/* an S key and a B key with the same bytes hash apart */
	va = typed("S", a, sizeof(a));
	vb = typed_b((unsigned char *)a, sizeof(a));
	na = enc(KEYNAME_S, va, KEYNAME_MAX_DIR, &rc);
	assert_int_equal(keyname_hash_matches(KEYNAME_S, va,
		na + strlen(na) - KEYNAME_HASH_HEX), 1);
	assert_int_equal(keyname_hash_matches(KEYNAME_B, vb,
		na + strlen(na) - KEYNAME_HASH_HEX), 0);
	free(na);
	json_decref(va);
	json_decref(vb);
}

static void test_partial_rejects(void **state)
{
	char name[300], raw[600], *good;
	struct keyname_decoded d;
	size_t len, plen;
	json_t *v;
	int rc;
	(void)state;

	memset(raw, 'a', sizeof(raw));
	v = typed("S", raw, sizeof(raw));
	good = enc(KEYNAME_S, v, KEYNAME_MAX_STEM, &rc);
	len = strlen(good);
	assert_int_equal(len, KEYNAME_MAX_STEM);
	plen = len - KEYNAME_FALLBACK_LEN;
	assert_int_equal(keyname_decode(KEYNAME_S, good, len, KEYNAME_MAX_STEM,
					&d), 0);
	assert_int_equal(d.partial, 1);
	assert_int_equal(json_string_length(json_object_get(d.value, "S")),
			 plen);
	keyname_decoded_free(&d);

	/* upper-case, short, long, or non-hex hash */
	memcpy(name, good, len);
	name[len - 1] = 'A';
	expect_reject(KEYNAME_S, name, len, KEYNAME_MAX_STEM, -EINVAL);
	name[len - 1] = 'g';
	expect_reject(KEYNAME_S, name, len, KEYNAME_MAX_STEM, -EINVAL);
	expect_reject(KEYNAME_S, good, len - 1, KEYNAME_MAX_STEM, -EINVAL);
	memcpy(name, good, len);
	name[len] = '0';
	expect_reject(KEYNAME_S, name, len + 1, KEYNAME_MAX_STEM + 1, -EINVAL);
	/* text after the hash, or "%~" not at the end */
	memcpy(name, good, len);
	memcpy(name + len - 3, "abc", 3);
	memcpy(name + 10, "%~", 2);
	expect_reject(KEYNAME_S, name, len, KEYNAME_MAX_STEM, -EINVAL);
	/* a prefix shorter than encode's cut: one 4-byte unit shorter is
	 * still accepted by decode (keyname_matches catches it), more is not */
	memcpy(name, good + 5, len - 5);
	expect_reject(KEYNAME_S, name, len - 5, KEYNAME_MAX_STEM, -EINVAL);
	memcpy(name, good + 3, len - 3);
	assert_int_equal(keyname_decode(KEYNAME_S, name, len - 3,
					KEYNAME_MAX_STEM, &d), 0);
	keyname_decoded_free(&d);
	assert_int_equal(keyname_matches(KEYNAME_S, v, KEYNAME_MAX_STEM, name,
					 len - 3), 0);
	/* an empty prefix */
	expect_reject(KEYNAME_S, good + plen, KEYNAME_FALLBACK_LEN,
		      KEYNAME_FALLBACK_LEN, -EINVAL);
	/* the same name under a longer max_len is not what encode makes */
	expect_reject(KEYNAME_S, good, len, KEYNAME_MAX_DIR, -EINVAL);
	/* numbers have no long-key form */
	expect_reject(KEYNAME_N, good + plen - 2, KEYNAME_FALLBACK_LEN + 2,
		      KEYNAME_MAX_DIR, -EINVAL);
	memcpy(name, "12", 2);
	memcpy(name + 2, good + plen, KEYNAME_FALLBACK_LEN);
	expect_reject(KEYNAME_N, name, KEYNAME_FALLBACK_LEN + 2, 36, -EINVAL);
	free(good);
	json_decref(v);

	/* binary: the cut is exactly (max_len - 34) / 4 groups */
	v = typed_b((unsigned char *)raw, sizeof(raw));
	good = enc(KEYNAME_B, v, KEYNAME_MAX_DIR, &rc);
	len = strlen(good);
	assert_int_equal(len, 220 + KEYNAME_FALLBACK_LEN);
	check_long(KEYNAME_B, v, raw, sizeof(raw), KEYNAME_MAX_DIR);
	expect_reject(KEYNAME_B, good + 4, len - 4, KEYNAME_MAX_DIR, -EINVAL);
	expect_reject(KEYNAME_B, good + 1, len - 1, KEYNAME_MAX_DIR, -EINVAL);
	expect_reject(KEYNAME_B, good, len, KEYNAME_MAX_STEM, -ENAMETOOLONG);
	assert_int_equal(keyname_decode(KEYNAME_B, good, len, 254, &d), 0);
	keyname_decoded_free(&d);
	expect_reject(KEYNAME_B, good, len, 258, -EINVAL);
	assert_int_equal(keyname_decode(KEYNAME_B, good, len, 257, &d), 0);
	keyname_decoded_free(&d);
	free(good);
	json_decref(v);

	/* too little room for any prefix */
	v = typed("S", raw, 100);
	assert_null(enc(KEYNAME_S, v, KEYNAME_FALLBACK_LEN, &rc));
	assert_int_equal(rc, -ENAMETOOLONG);
	json_decref(v);
	memset(raw, '/', 100);
	v = typed("S", raw, 100);
	assert_null(enc(KEYNAME_S, v, KEYNAME_FALLBACK_LEN + 2, &rc));
	assert_int_equal(rc, -ENAMETOOLONG);
	good = enc(KEYNAME_S, v, KEYNAME_FALLBACK_LEN + 3, &rc);
	assert_int_equal(rc, 0);
	assert_memory_equal(good, "%2F%~", 5);
	check_long(KEYNAME_S, v, raw, 100, KEYNAME_FALLBACK_LEN + 3);
	free(good);
	json_decref(v);
	v = typed_b((unsigned char *)raw, 100);
	assert_null(enc(KEYNAME_B, v, KEYNAME_FALLBACK_LEN + 3, &rc));
	assert_int_equal(rc, -ENAMETOOLONG);
	json_decref(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_s_rules),
		cmocka_unit_test(test_s_unicode),
		cmocka_unit_test(test_s_only_specials),
		cmocka_unit_test(test_s_rejects),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_number_rejects),
		cmocka_unit_test(test_binary),
		cmocka_unit_test(test_binary_rejects),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_items),
		cmocka_unit_test(test_random_roundtrip),
		cmocka_unit_test(test_fuzz_names),
		cmocka_unit_test(test_long_keys),
		cmocka_unit_test(test_shared_prefix),
		cmocka_unit_test(test_partial_rejects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
