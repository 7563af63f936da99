/* Unit tests of ddbjson: rendering against jq's layout (fixtures made with
 * jq, see tests/fixtures/ddbjson/README.md), parsing with type
 * preservation, exact numbers, error messages, and a randomized round
 * trip. */
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
#include "backend/ddbjson.h"
#include "backend/ddbnum.h"

/* ---- helpers ------------------------------------------------------ */

static char *load_fixture(const char *name, size_t *len)
{
	const char *dir = getenv("DYNFS_FIXTURES");
	char path[4096];
	struct dbuf b;
	char chunk[4096];
	size_t n;
	FILE *f;

	assert_non_null(dir);
	snprintf(path, sizeof(path), "%s/ddbjson/%s", dir, name);
	f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s", path);
	dbuf_init(&b, DBUF_CAP_BODY);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		assert_int_equal(dbuf_add(&b, chunk, n), 0);
	fclose(f);
	return dbuf_take(&b, len);
}

static json_t *parse_ok(const char *text, enum ddbjson_format fmt,
			const json_t *old)
{
	struct dbuf why;
	json_t *item = NULL;
	int rc;

	dbuf_init(&why, DBUF_CAP_SMALL);
	rc = ddbjson_parse(text, strlen(text), fmt, old, &item, &why);
	if (rc)
		fail_msg("parse failed (%d): %s\ntext: %s", rc, dbuf_str(&why),
			 text);
	assert_non_null(item);
	dbuf_free(&why);
	return item;
}

static json_t *jload(const char *text)
{
	json_error_t err;
	json_t *j = json_loads(text, 0, &err);

	if (!j)
		fail_msg("bad test JSON: %s: %s", err.text, text);
	return j;
}

static char *render(const json_t *item, enum ddbjson_format fmt)
{
	struct dbuf out;
	int rc;

	dbuf_init(&out, DBUF_CAP_BODY);
	rc = ddbjson_render(item, fmt, &out);
	if (rc)
		fail_msg("render failed: %d", rc);
	return dbuf_take(&out, NULL);
}

/* Parse must fail with -EINVAL and a why containing want. */
static void expect_bad(const char *text, size_t len, enum ddbjson_format fmt,
		       const json_t *old, const char *want)
{
	struct dbuf why;
	json_t *item = (json_t *)1;
	int rc;

	dbuf_init(&why, DBUF_CAP_SMALL);
	rc = ddbjson_parse(text, len, fmt, old, &item, &why);
	if (rc != -EINVAL || item)
		fail_msg("parse of '%.*s' gave %d, wanted -EINVAL", (int)len,
			 text, rc);
	if (!strstr(dbuf_str(&why), want))
		fail_msg("why of '%.*s' is '%s', wanted '%s'", (int)len, text,
			 dbuf_str(&why), want);
	dbuf_free(&why);
}

static void expect_bad_s(const char *text, enum ddbjson_format fmt,
			 const json_t *old, const char *want)
{
	expect_bad(text, strlen(text), fmt, old, want);
}

/* Plain text of a typed item given as typed JSON text. */
static void expect_plain(const char *typed, const char *want)
{
	json_t *item = jload(typed);
	char *got = render(item, DDBJSON_PLAIN);

	assert_string_equal(got, want);
	free(got);
	json_decref(item);
}

/* parse(plain, old) must give the typed item want (typed JSON text). */
static void expect_typed(const char *plain, const char *old_typed,
			 const char *want)
{
	json_t *old = old_typed ? jload(old_typed) : NULL;
	json_t *w = jload(want);
	json_t *got = parse_ok(plain, DDBJSON_PLAIN, old);

	if (!json_equal(got, w)) {
		char *g = json_dumps(got, JSON_SORT_KEYS);

		fail_msg("parse of %s\n gave   %s\n wanted %s", plain, g, want);
	}
	json_decref(got);
	json_decref(w);
	json_decref(old);
}

/* ---- rendering ---------------------------------------------------- */

static void test_fixture_matches_jq(void **state)
{
	size_t len, plen, tlen;
	char *typed = load_fixture("rich.typed.json", &len);
	char *plain_want = load_fixture("rich.plain.expected", &plen);
	char *typed_want = load_fixture("rich.typed.expected", &tlen);
	json_t *item, *viaj;
	struct dbuf why, out;
	(void)state;

	dbuf_init(&why, DBUF_CAP_SMALL);
	assert_int_equal(ddbjson_parse(typed, len, DDBJSON_TYPED, NULL, &item,
				       &why),
			 0);
	/* our parser reads the typed fixture as jansson does */
	viaj = jload(typed);
	assert_true(json_equal(item, viaj));

	dbuf_init(&out, DBUF_CAP_BODY);
	assert_int_equal(ddbjson_render(item, DDBJSON_PLAIN, &out), 0);
	assert_int_equal(dbuf_len(&out), plen);
	assert_memory_equal(dbuf_str(&out), plain_want, plen);

	dbuf_reset(&out);
	assert_int_equal(ddbjson_render(item, DDBJSON_TYPED, &out), 0);
	assert_int_equal(dbuf_len(&out), tlen);
	assert_memory_equal(dbuf_str(&out), typed_want, tlen);

	/* render appends */
	assert_int_equal(ddbjson_render(item, DDBJSON_TYPED, &out), 0);
	assert_int_equal(dbuf_len(&out), 2 * tlen);

	dbuf_free(&out);
	dbuf_free(&why);
	json_decref(item);
	json_decref(viaj);
	free(typed);
	free(plain_want);
	free(typed_want);
}

/* The plain fixture, read back with the typed item as the old value, is
 * the typed item again: every B, SS, NS and BS keeps its type. */
static void test_fixture_round_trip(void **state)
{
	static const char *const plains[] = { "rich.plain.expected",
					      "rich.plain.json" };
	size_t len, plen, i;
	char *typed = load_fixture("rich.typed.json", &len);
	json_t *old = jload(typed), *item;
	struct dbuf why;
	char *again, *want;
	(void)state;

	dbuf_init(&why, DBUF_CAP_SMALL);
	want = load_fixture("rich.plain.expected", &plen);
	for (i = 0; i < 2; i++) {
		char *text = load_fixture(plains[i], &len);

		assert_int_equal(ddbjson_parse(text, len, DDBJSON_PLAIN, old,
					       &item, &why),
				 0);
		assert_true(json_equal(item, old));
		again = render(item, DDBJSON_PLAIN);
		assert_string_equal(again, want);
		free(again);
		json_decref(item);
		free(text);
	}
	free(want);
	dbuf_free(&why);
	json_decref(old);
	free(typed);
}

static void test_render_each_type(void **state)
{
	(void)state;

	expect_plain("{}", "{}\n");
	expect_plain("{\"s\":{\"S\":\"x\"}}", "{\n  \"s\": \"x\"\n}\n");
	expect_plain("{\"n\":{\"N\":\"-12.50\"}}", "{\n  \"n\": -12.50\n}\n");
	expect_plain("{\"b\":{\"BOOL\":false}}", "{\n  \"b\": false\n}\n");
	expect_plain("{\"z\":{\"NULL\":true}}", "{\n  \"z\": null\n}\n");
	expect_plain("{\"b\":{\"B\":\"AAE=\"}}", "{\n  \"b\": \"AAE=\"\n}\n");
	expect_plain("{\"m\":{\"M\":{\"b\":{\"N\":\"1\"},\"a\":{\"S\":\"\"}}}}",
		     "{\n  \"m\": {\n    \"a\": \"\",\n    \"b\": 1\n  }\n}\n");
	expect_plain("{\"l\":{\"L\":[{\"N\":\"1\"},{\"L\":[]},{\"M\":{}}]}}",
		     "{\n  \"l\": [\n    1,\n    [],\n    {}\n  ]\n}\n");
	/* sets sorted: SS and BS by bytes, NS numerically */
	expect_plain("{\"s\":{\"SS\":[\"b\",\"B\",\"a\",\"\xc3\xa9\",\"ab\"]}}",
		     "{\n  \"s\": [\n    \"B\",\n    \"a\",\n    \"ab\",\n"
		     "    \"b\",\n    \"\xc3\xa9\"\n  ]\n}\n");
	expect_plain("{\"n\":{\"NS\":[\"10\",\"9\",\"-1E+2\",\"0.5\",\"1e1\",\"-3\"]}}",
		     "{\n  \"n\": [\n    -1E+2,\n    -3,\n    0.5,\n    9,\n"
		     "    10,\n    1e1\n  ]\n}\n");
	expect_plain("{\"b\":{\"BS\":[\"Zm9v\",\"AAEC\",\"YmFy\"]}}",
		     "{\n  \"b\": [\n    \"AAEC\",\n    \"YmFy\",\n    \"Zm9v\"\n  ]\n}\n");
}

static void test_render_typed_format(void **state)
{
	json_t *item = jload("{\"n\":{\"N\":\"+.5\"},\"s\":{\"NS\":[\"2\",\"1\"]},"
			     "\"z\":{\"NULL\":true},\"m\":{\"M\":{}}}");
	char *got = render(item, DDBJSON_TYPED);
	(void)state;

	/* N as DynamoDB sent it, as a string; sets sorted all the same */
	assert_string_equal(got, "{\n"
				 "  \"m\": {\n"
				 "    \"M\": {}\n"
				 "  },\n"
				 "  \"n\": {\n"
				 "    \"N\": \"+.5\"\n"
				 "  },\n"
				 "  \"s\": {\n"
				 "    \"NS\": [\n"
				 "      \"1\",\n"
				 "      \"2\"\n"
				 "    ]\n"
				 "  },\n"
				 "  \"z\": {\n"
				 "    \"NULL\": true\n"
				 "  }\n"
				 "}\n");
	free(got);
	json_decref(item);
}

static void test_render_escapes(void **state)
{
	json_t *item = json_object();
	char *got;
	(void)state;

	/* json_stringn: a NUL inside a value (and a key, with jansson 2.14) */
	json_object_set_new(item, "s",
			    json_pack("{s:o}", "S",
				      json_stringn("a\0b\x01\x1f\x7f\"\\/\b\f\n\r\t\xe2\x80\xa8", 17)));
#if JANSSON_VERSION_HEX >= 0x020e00
	json_object_setn_new(item, "k\0x", 3, json_pack("{s:s}", "S", "v"));
#else
	json_object_set_new(item, "k", json_pack("{s:s}", "S", "v"));
#endif
	got = render(item, DDBJSON_PLAIN);
#if JANSSON_VERSION_HEX >= 0x020e00
	assert_string_equal(got, "{\n  \"k\\u0000x\": \"v\",\n"
#else
	assert_string_equal(got, "{\n  \"k\": \"v\",\n"
#endif
				 "  \"s\": \"a\\u0000b\\u0001\\u001f\\u007f\\\"\\\\/\\b\\f\\n\\r\\t\xe2\x80\xa8\"\n}\n");
	free(got);
	json_decref(item);
}

static void test_render_number_forms(void **state)
{
	static const struct {
		const char *n, *want;
	} cases[] = {
		{ "5", "5" },         { "-0", "-0" },       { "1E5", "1E5" },
		{ "1e-5", "1e-5" },   { "+5", "5" },        { ".5", "0.5" },
		{ "5.", "5" },        { "-.5", "-0.5" },    { "007", "7" },
		{ "-00.10", "-0.10" }, { "+0.50e+3", "0.50e+3" },
		{ "5.E3", "5E3" },    { "00", "0" },
		{ "12345678901234567890123456789012345678",
		  "12345678901234567890123456789012345678" },
	};
	size_t i;
	char typed[256], want[256];
	(void)state;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(typed, sizeof(typed), "{\"n\":{\"N\":\"%s\"}}", cases[i].n);
		snprintf(want, sizeof(want), "{\n  \"n\": %s\n}\n", cases[i].want);
		expect_plain(typed, want);
	}
}

static void test_render_rejects_bad_items(void **state)
{
	static const char *const bad[] = {
		"{\"a\":{\"X\":\"1\"}}",        "{\"a\":{\"S\":1}}",
		"{\"a\":{\"S\":\"1\",\"N\":\"1\"}}", "{\"a\":\"plain\"}",
		"{\"a\":{\"N\":\"abc\"}}",      "{\"a\":{\"N\":1}}",
		"{\"a\":{\"SS\":[1]}}",         "{\"a\":{\"M\":[]}}",
		"{\"a\":{\"L\":{}}}",           "{\"a\":{\"BOOL\":\"true\"}}",
		"[]",
	};
	struct dbuf out;
	json_t *item;
	size_t i;
	(void)state;

	dbuf_init(&out, DBUF_CAP_SMALL);
	assert_int_equal(dbuf_adds(&out, "keep"), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		item = jload(bad[i]);
		if (ddbjson_render(item, DDBJSON_PLAIN, &out) != -EINVAL)
			fail_msg("rendered %s", bad[i]);
		/* a failed render leaves out as it was */
		assert_string_equal(dbuf_str(&out), "keep");
		json_decref(item);
	}
	dbuf_free(&out);

	/* the cap of out is honoured */
	item = jload("{\"a\":{\"S\":\"0123456789\"}}");
	dbuf_init(&out, 8);
	assert_int_equal(ddbjson_render(item, DDBJSON_PLAIN, &out), -E2BIG);
	assert_int_equal(dbuf_len(&out), 0);
	dbuf_free(&out);
	json_decref(item);
}

/* ---- parsing ------------------------------------------------------ */

static void test_parse_each_type(void **state)
{
	(void)state;

	expect_typed("{}", NULL, "{}");
	expect_typed("{\"s\": \"x\", \"n\": -1.5e3, \"t\": true, \"f\": false,"
		     " \"z\": null, \"m\": {\"a\": [1, \"b\"]}, \"e\": [], \"o\": {}}",
		     NULL,
		     "{\"s\":{\"S\":\"x\"},\"n\":{\"N\":\"-1.5e3\"},\"t\":{\"BOOL\":true},"
		     "\"f\":{\"BOOL\":false},\"z\":{\"NULL\":true},"
		     "\"m\":{\"M\":{\"a\":{\"L\":[{\"N\":\"1\"},{\"S\":\"b\"}]}}},"
		     "\"e\":{\"L\":[]},\"o\":{\"M\":{}}}");
	/* a base64-looking string without an old B is just a string */
	expect_typed("{\"b\": \"AAE=\"}", NULL, "{\"b\":{\"S\":\"AAE=\"}}");
	/* new attributes next to old ones take their natural type */
	expect_typed("{\"b\": \"AAE=\", \"c\": \"AAE=\", \"d\": [\"x\"]}",
		     "{\"b\":{\"B\":\"AAA=\"}}",
		     "{\"b\":{\"B\":\"AAE=\"},\"c\":{\"S\":\"AAE=\"},"
		     "\"d\":{\"L\":[{\"S\":\"x\"}]}}");
}

static void test_parse_strings(void **state)
{
	json_t *item;
	const char *s;
	(void)state;

	expect_typed("{\"s\": \"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u65E5\\ud83d\\ude00\"}",
		     NULL,
		     "{\"s\":{\"S\":\"\\\"\\\\/\\b\\f\\n\\r\\t\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80\"}}");
	/* raw UTF-8 passes through */
	expect_typed("{\"\xd0\xba\": \"\xf0\x9f\x98\x80 \xe2\x80\xa8\"}", NULL,
		     "{\"\xd0\xba\":{\"S\":\"\xf0\x9f\x98\x80 \xe2\x80\xa8\"}}");
	/* U+0000 in a value and (jansson 2.14) in a key */
#if JANSSON_VERSION_HEX >= 0x020e00
	item = parse_ok("{\"k\\u0000\": \"a\\u0000b\"}", DDBJSON_PLAIN, NULL);
	assert_int_equal(json_object_size(item), 1);
	s = json_string_value(json_object_get(json_object_getn(item, "k\0", 2), "S"));
#else
	expect_bad_s("{\"k\\u0000\": 1}", DDBJSON_PLAIN, NULL,
		     "keys containing \\u0000 are not supported");
	item = parse_ok("{\"k\": \"a\\u0000b\"}", DDBJSON_PLAIN, NULL);
	s = json_string_value(json_object_get(json_object_get(item, "k"), "S"));
#endif
	assert_non_null(s);
	assert_memory_equal(s, "a\0b", 4);
	json_decref(item);
	/* a BOM and surrounding whitespace are accepted */
	expect_typed("\xef\xbb\xbf \r\n\t{\"a\":1}\n\n", NULL,
		     "{\"a\":{\"N\":\"1\"}}");
}

static void test_numbers_exact(void **state)
{
	static const char *const good[] = {
		"12345678901234567890123456789012345678",
		"-12345678901234567890123456789012345678",
		"-0.00000000000000000000000000000000000001234567890123456789012345678901234567",
		"0.1234567890123456789012345678901234567800000",
		"99999999999999999999999999999999999999000000000000",
		"1E+125",
		"1.0E-130",
		"-1e-130",
		"9.9999999999999999999999999999999999999E+125",
		"-9.9999999999999999999999999999999999999E+125",
		"0",
		"-0",
		"0e999",
		"0.0000e-99999",
		"100000000000000000000000000000000000000000000000000",
		"1e0000000000000000000000000000125",
		"123.456e-7",
	};
	char text[512], *out, want[512];
	json_t *item;
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(ddbnum_check(good[i], strlen(good[i]), NULL), 0);
		snprintf(text, sizeof(text), "{\"n\": %s, \"s\": [%s]}", good[i],
			 good[i]);
		item = parse_ok(text, DDBJSON_PLAIN, NULL);
		assert_string_equal(json_string_value(json_object_get(
					    json_object_get(item, "n"), "N")),
				    good[i]);
		out = render(item, DDBJSON_PLAIN);
		snprintf(want, sizeof(want), "{\n  \"n\": %s,\n  \"s\": [\n    %s\n  ]\n}\n",
			 good[i], good[i]);
		assert_string_equal(out, want);
		free(out);
		json_decref(item);
	}
}

static void test_numbers_out_of_range(void **state)
{
	static const struct {
		const char *n, *why;
	} bad[] = {
		{ "1e999", "out of DynamoDB's range" },
		{ "1E+126", "out of DynamoDB's range" },
		{ "10E+125", "out of DynamoDB's range" },
		{ "1E-131", "out of DynamoDB's range" },
		{ "0.1E-130", "out of DynamoDB's range" },
		{ "-1e99999999999999999999999999", "out of DynamoDB's range" },
		{ "1e-99999999999999999999999999", "out of DynamoDB's range" },
		{ "123456789012345678901234567890123456789",
		  "has more than 38 significant digits" },
		{ "1.00000000000000000000000000000000000001",
		  "has more than 38 significant digits" },
	};
	char text[256], want[256];
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(ddbnum_check(bad[i].n, strlen(bad[i].n), NULL),
				 -EINVAL);
		snprintf(text, sizeof(text), "{\n  \"price\": %s\n}", bad[i].n);
		snprintf(want, sizeof(want),
			 "line 2, column 12: attribute price: number %s %s",
			 bad[i].n, bad[i].why[0] == 'o' ? "is" : "");
		expect_bad_s(text, DDBJSON_PLAIN, NULL, want);
		expect_bad_s(text, DDBJSON_PLAIN, NULL, bad[i].why);
		/* typed format: the same limits */
		snprintf(text, sizeof(text), "{\"price\":{\"N\":\"%s\"}}", bad[i].n);
		expect_bad_s(text, DDBJSON_TYPED, NULL, bad[i].why);
	}
}

/* Old typed item for the preservation tests: sets and B at the top, in
 * an M and in an L. */
static const char old_sets[] =
	"{\"ss\":{\"SS\":[\"a\",\"b\"]},\"ns\":{\"NS\":[\"1\",\"2.5\"]},"
	"\"bs\":{\"BS\":[\"AA==\",\"AQ==\"]},\"b\":{\"B\":\"aGk=\"},"
	"\"m\":{\"M\":{\"ss\":{\"SS\":[\"x\"]},\"b\":{\"B\":\"AA==\"},"
	"\"in\":{\"M\":{\"ns\":{\"NS\":[\"7\"]}}}}},"
	"\"l\":{\"L\":[{\"B\":\"AA==\"},{\"NS\":[\"1\"]},{\"L\":[{\"BS\":[\"AA==\"]}]}]}}";

static void test_types_kept(void **state)
{
	(void)state;

	/* members added: still sets; B edited to other base64: still B */
	expect_typed("{\"ss\": [\"a\", \"b\", \"c\"], \"ns\": [2.5, 1, 1e40],"
		     " \"bs\": [\"AQ==\", \"AA==\", \"Ag==\"], \"b\": \"aGV5\","
		     " \"m\": {\"ss\": [\"x\", \"y\"], \"b\": \"AQ==\","
		     " \"in\": {\"ns\": [7, 8]}},"
		     " \"l\": [\"AQ==\", [1, 2], [[\"AA==\", \"AQ==\"]]]}",
		     old_sets,
		     "{\"ss\":{\"SS\":[\"a\",\"b\",\"c\"]},"
		     "\"ns\":{\"NS\":[\"2.5\",\"1\",\"1e40\"]},"
		     "\"bs\":{\"BS\":[\"AQ==\",\"AA==\",\"Ag==\"]},\"b\":{\"B\":\"aGV5\"},"
		     "\"m\":{\"M\":{\"ss\":{\"SS\":[\"x\",\"y\"]},\"b\":{\"B\":\"AQ==\"},"
		     "\"in\":{\"M\":{\"ns\":{\"NS\":[\"7\",\"8\"]}}}}},"
		     "\"l\":{\"L\":[{\"B\":\"AQ==\"},{\"NS\":[\"1\",\"2\"]},"
		     "{\"L\":[{\"BS\":[\"AA==\",\"AQ==\"]}]}]}}");
	/* the set type only where the old one was a set */
	expect_typed("{\"x\": [\"a\"]}", "{\"x\":{\"L\":[{\"S\":\"a\"}]}}",
		     "{\"x\":{\"L\":[{\"S\":\"a\"}]}}");
	/* a value of another kind than the old one takes its natural type */
	expect_typed("{\"ss\": \"a\", \"ns\": 3, \"bs\": {}, \"b\": 5, \"l\": \"AA==\"}",
		     old_sets,
		     "{\"ss\":{\"S\":\"a\"},\"ns\":{\"N\":\"3\"},\"bs\":{\"M\":{}},"
		     "\"b\":{\"N\":\"5\"},\"l\":{\"S\":\"AA==\"}}");
}

static void test_sets_that_no_longer_fit(void **state)
{
	(void)state;

	/* duplicates, a member of another type, or (BS, B) not base64: L
	 * (or S), because DynamoDB would refuse it as a set */
	expect_typed("{\"ss\": [\"a\", \"a\"]}", old_sets,
		     "{\"ss\":{\"L\":[{\"S\":\"a\"},{\"S\":\"a\"}]}}");
	expect_typed("{\"ss\": [\"a\", 1]}", old_sets,
		     "{\"ss\":{\"L\":[{\"S\":\"a\"},{\"N\":\"1\"}]}}");
	expect_typed("{\"ns\": [1, 1.0]}", old_sets,
		     "{\"ns\":{\"L\":[{\"N\":\"1\"},{\"N\":\"1.0\"}]}}");
	expect_typed("{\"ns\": [1, 10E-1]}", old_sets,
		     "{\"ns\":{\"L\":[{\"N\":\"1\"},{\"N\":\"10E-1\"}]}}");
	expect_typed("{\"ns\": [1, \"2\"]}", old_sets,
		     "{\"ns\":{\"L\":[{\"N\":\"1\"},{\"S\":\"2\"}]}}");
	expect_typed("{\"bs\": [\"AA==\", \"hello!\"]}", old_sets,
		     "{\"bs\":{\"L\":[{\"S\":\"AA==\"},{\"S\":\"hello!\"}]}}");
	expect_typed("{\"bs\": [\"AA==\", \"AA==\"]}", old_sets,
		     "{\"bs\":{\"L\":[{\"S\":\"AA==\"},{\"S\":\"AA==\"}]}}");
	expect_typed("{\"ss\": [[\"a\"]]}", old_sets,
		     "{\"ss\":{\"L\":[{\"L\":[{\"S\":\"a\"}]}]}}");
	/* non-canonical or unpadded base64 is not kept as B */
	expect_typed("{\"b\": \"hello!\"}", old_sets, "{\"b\":{\"S\":\"hello!\"}}");
	expect_typed("{\"b\": \"AB==\"}", old_sets, "{\"b\":{\"S\":\"AB==\"}}");
	expect_typed("{\"b\": \"AA\"}", old_sets, "{\"b\":{\"S\":\"AA\"}}");
	expect_typed("{\"b\": \"\"}", old_sets, "{\"b\":{\"B\":\"\"}}");
}

static void test_empty_set_rejected(void **state)
{
	json_t *old = jload(old_sets);
	(void)state;

	expect_bad_s("{\"ss\": []}", DDBJSON_PLAIN, old,
		     "line 1, column 8: attribute ss: an empty set cannot be stored in DynamoDB; delete the attribute instead");
	expect_bad_s("{\"ns\": [ ]}", DDBJSON_PLAIN, old, "attribute ns: an empty set");
	expect_bad_s("{\"m\": {\"in\": {\"ns\": []}}}", DDBJSON_PLAIN, old,
		     "attribute m.in.ns: an empty set");
	expect_bad_s("{\"l\": [1, [5], [[]]]}", DDBJSON_PLAIN, old,
		     "attribute l[2][0]: an empty set");
	expect_bad_s("{\"s\": {\"SS\": []}}", DDBJSON_TYPED, NULL,
		     "attribute s: an empty set cannot be stored");
	json_decref(old);
}

static void test_invalid_json(void **state)
{
	static const struct {
		const char *text, *why;
	} cases[] = {
		{ "{\n  \"a\": 1\n  \"b\": 2\n}", "line 3, column 3: expected ',' or '}'" },
		{ "{\"a\": 1,}", "line 1, column 8: trailing comma before '}'" },
		{ "{\"a\": [1,]}", "line 1, column 9: trailing comma before ']'" },
		{ "{\"a\": [1 2]}", "line 1, column 10: expected ',' or ']'" },
		{ "{\"a\" 1}", "line 1, column 6: expected ':'" },
		{ "{a: 1}", "line 1, column 2: expected a key in double quotes" },
		{ "{'a': 1}", "strings must be in double quotes" },
		{ "{\"a\": 'x'}", "line 1, column 7: expected a value; strings must be in double quotes" },
		{ "{\"a\": 1 // note\n}", "comments are not allowed in JSON" },
		{ "{/* c */ \"a\": 1}", "line 1, column 2: expected a key in double quotes; comments are not allowed" },
		{ "{\"a\": \"x}", "line 1, column 7: unterminated string" },
		{ "{\"a\": \"x\n\"}", "line 1, column 9: unterminated string (a line break" },
		{ "{\"a\": \"x\ty\"}", "control character U+0009 in a string must be escaped" },
		{ "{\"a\": \"\\x\"}", "line 1, column 8: invalid escape '\\x'" },
		{ "{\"a\": \"\\u12G4\"}", "\\u must be followed by four hex digits" },
		{ "{\"a\": \"\\u12\"}", "\\u must be followed by four hex digits" },
		{ "{\"a\": \"\\ud800\"}", "lone surrogate \\ud800" },
		{ "{\"a\": \"\\ud800\\u0041\"}", "lone surrogate \\ud800" },
		{ "{\"a\": \"\\udc00\"}", "lone surrogate \\udc00" },
		{ "{\"a\": \"\xc3\"}", "line 1, column 8: invalid UTF-8 in a string" },
		{ "{\"a\": \"\xc0\xaf\"}", "invalid UTF-8" },
		{ "{\"a\": \"\xed\xa0\x80\"}", "invalid UTF-8" },
		{ "{\"a\": \"\xf4\x90\x80\x80\"}", "invalid UTF-8" },
		{ "{\"a\": \"\xff\"}", "invalid UTF-8" },
		{ "{\"a\": 01}", "line 1, column 8: numbers cannot have leading zeros" },
		{ "{\"a\": 1.}", "line 1, column 9: expected a digit after '.'" },
		{ "{\"a\": 1e}", "expected a digit in the exponent" },
		{ "{\"a\": -}", "expected a digit after '-'" },
		{ "{\"a\": -.5}", "expected a digit between '-' and '.'" },
		{ "{\"a\": .5}", "line 1, column 7: expected a value" },
		{ "{\"a\": +1}", "line 1, column 7: expected a value" },
		{ "{\"a\": NaN}", "expected a value" },
		{ "{\"a\": Infinity}", "expected a value" },
		{ "{\"a\": tru}", "expected a value" },
		{ "{\"a\": nul", "expected a value" },
		{ "{\"a\": truex}", "line 1, column 11: expected ',' or '}'" },
		{ "{\"a\": 1, \"a\": 2}", "line 1, column 10: duplicate key \"a\"" },
		{ "{\"m\": {\"x\": 1, \"y\": 2, \"x\": 3}}", "line 1, column 24: duplicate key \"x\"" },
		{ "{\"a\": 1} x", "line 1, column 10: unexpected text after the end of the item" },
		{ "{\"a\": 1}{}", "unexpected text after the end of the item" },
		{ "", "line 1, column 1: the file is empty; the item must be a JSON object" },
		{ " \n ", "the file is empty" },
		{ "[1, 2]", "line 1, column 1: the item must be a JSON object" },
		{ "\"x\"", "the item must be a JSON object" },
		{ "42", "the item must be a JSON object" },
		{ "null", "the item must be a JSON object" },
		{ "{", "line 1, column 2: expected a key in double quotes, but the text ended" },
		{ "{\"a\":", "expected a value, but the text ended" },
		{ "{\"a\": [1, 2", "expected ',' or ']', but the text ended" },
		{ "{\"a\": 1", "expected ',' or '}', but the text ended" },
		{ "{\"\": 1}", "line 1, column 2: attribute names cannot be empty" },
		{ "{\"a\": \xc3\xa9}", "line 1, column 7: expected a value" },
		/* columns count characters, not bytes */
		{ "{\"\xc3\xa9\xc3\xa9\": x}", "line 1, column 8: expected a value" },
	};
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_bad_s(cases[i].text, DDBJSON_PLAIN, NULL, cases[i].why);
	/* a NUL byte in the text, and a text that is not NUL-terminated */
	expect_bad("{\"a\": \"x\0\"}", 11, DDBJSON_PLAIN, NULL,
		   "control character U+0000");
	expect_bad("{\"a\": 1}", 7, DDBJSON_PLAIN, NULL, "but the text ended");
	/* a NULL why is allowed */
	{
		json_t *item = NULL;

		assert_int_equal(ddbjson_parse("[", 1, DDBJSON_PLAIN, NULL, &item,
					       NULL),
				 -EINVAL);
		assert_null(item);
	}
}

/* {"a": [[[...]]]} with n containers in all (the item counting). */
static char *nested(int n, int typed)
{
	struct dbuf b;
	int i;

	dbuf_init(&b, DBUF_CAP_BODY);
	assert_int_equal(dbuf_adds(&b, "{\"a\":"), 0);
	for (i = 1; i < n; i++)
		assert_int_equal(dbuf_adds(&b, typed ? "{\"L\":[" : "["), 0);
	if (typed)
		assert_int_equal(dbuf_adds(&b, "{\"S\":\"x\"}"), 0);
	else
		assert_int_equal(dbuf_adds(&b, "\"x\""), 0);
	for (i = 1; i < n; i++)
		assert_int_equal(dbuf_adds(&b, typed ? "]}" : "]"), 0);
	assert_int_equal(dbuf_adds(&b, "}"), 0);
	return dbuf_take(&b, NULL);
}

static void test_depth_limit(void **state)
{
	json_t *item;
	char *text, *out;
	int typed;
	(void)state;

	for (typed = 0; typed < 2; typed++) {
		enum ddbjson_format fmt = typed ? DDBJSON_TYPED : DDBJSON_PLAIN;

		text = nested(DDBJSON_MAX_DEPTH, typed);
		item = parse_ok(text, fmt, NULL);
		out = render(item, fmt);
		free(out);
		json_decref(item);
		free(text);

		text = nested(DDBJSON_MAX_DEPTH + 1, typed);
		expect_bad_s(text, fmt, NULL, "nesting deeper than 64 levels");
		free(text);

		/* far deeper: no stack trouble, the same answer */
		text = nested(100000, typed);
		expect_bad_s(text, fmt, NULL, "nesting deeper than 64 levels");
		free(text);
	}
	text = nested(DDBJSON_MAX_DEPTH + 1, 1);
	item = jload(text);
	{
		struct dbuf o;

		dbuf_init(&o, DBUF_CAP_BODY);
		assert_int_equal(ddbjson_render(item, DDBJSON_PLAIN, &o), -EINVAL);
		dbuf_free(&o);
	}
	json_decref(item);
	free(text);
}

static void test_typed_parse(void **state)
{
	static const struct {
		const char *text, *why;
	} bad[] = {
		{ "{\"a\": {\"N\": 12}}", "line 1, column 13: numbers are strings in the typed format: write {\"N\": \"12\"}" },
		{ "{\"a\": \"x\"}", "attribute a: expected a typed value such as {\"S\": \"text\"}" },
		{ "{\"a\": {}}", "attribute a: a typed value must have exactly one key" },
		{ "{\"a\": {\"S\": \"x\", \"N\": \"1\"}}", "exactly one key" },
		{ "{\"a\": {\"s\": \"x\"}}", "attribute a: unknown type \"s\"" },
		{ "{\"a\": {\"S\": true}}", "S must be a string" },
		{ "{\"a\": {\"N\": \"x\"}}", "attribute a: N value \"x\" is not a number" },
		{ "{\"a\": {\"N\": \" 1\"}}", "is not a number" },
		{ "{\"a\": {\"N\": true}}", "N must be a string holding a number" },
		{ "{\"a\": {\"B\": \"AB==\"}}", "B must be a base64 string" },
		{ "{\"a\": {\"BOOL\": \"true\"}}", "BOOL must be true or false" },
		{ "{\"a\": {\"NULL\": false}}", "NULL must be true" },
		{ "{\"a\": {\"M\": []}}", "M must be an object" },
		{ "{\"a\": {\"L\": {}}}", "L must be an array" },
		{ "{\"a\": {\"M\": {\"b\": {\"L\": [{\"S\": true}]}}}}", "attribute a.b[0]: S must be a string" },
		{ "{\"a\": {\"SS\": \"x\"}}", "SS must be an array" },
		{ "{\"a\": {\"SS\": [\"x\", \"x\"]}}", "attribute a: SS holds \"x\" twice" },
		{ "{\"a\": {\"SS\": [\"x\", 1]}}", "line 1, column 20: numbers are strings" },
		{ "{\"a\": {\"SS\": [\"x\", true]}}", "attribute a[1]: SS members must be strings" },
		{ "{\"a\": {\"NS\": [\"1\", \"1.0\"]}}", "NS holds \"1\" twice" },
		{ "{\"a\": {\"NS\": [\"1e999\"]}}", "attribute a[0]: number 1e999 is out of DynamoDB's range" },
		{ "{\"a\": {\"BS\": [\"AA==\", \"x\"]}}", "attribute a[1]: BS members must be base64" },
		{ "{\"a\": {\"BS\": [\"AA==\", \"AA==\"]}}", "BS holds \"AA==\" twice" },
		{ "{\"a\": {\"S\": \"x\"}, \"a\": {\"S\": \"y\"}}", "duplicate key \"a\"" },
		{ "[]", "the item must be a JSON object" },
		{ "{\"\": {\"S\": \"x\"}}", "attribute names cannot be empty" },
	};
	size_t i;
	json_t *item, *want;
	(void)state;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_bad_s(bad[i].text, DDBJSON_TYPED, NULL, bad[i].why);

	/* N strings kept as written; old is not used in the typed format */
	item = parse_ok("{\"n\": {\"N\": \"+.5\"}, \"s\": {\"NS\": [\"1\", \"10E-2\"]},"
			" \"x\": {\"L\": [{\"NULL\": true}, {\"BS\": [\"AA==\"]}]}}",
			DDBJSON_TYPED, NULL);
	want = jload("{\"n\": {\"N\": \"+.5\"}, \"s\": {\"NS\": [\"1\", \"10E-2\"]},"
		     " \"x\": {\"L\": [{\"NULL\": true}, {\"BS\": [\"AA==\"]}]}}");
	assert_true(json_equal(item, want));
	json_decref(item);
	json_decref(want);
}

/* ---- randomized round trip ---------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
	/* xorshift64*: fixed seed, the same items on every run */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (uint32_t)((rng * 0x2545f4914f6cdd1dull) >> 32) % n;
}

static void gen_str(struct dbuf *b, int maxlen)
{
	static const char *const pieces[] = {
		"a", "b", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\x01",
		"\x1f", "\x7f", "\xc3\xa9", "\xe6\x97\xa5", "\xf0\x9f\x98\x80",
		"\xe2\x80\xa8", "{", "]", ",", ":", "=", "+",
	};
	int n = (int)rnd((uint32_t)maxlen + 1), i;

	dbuf_reset(b);
	for (i = 0; i < n; i++)
		assert_int_equal(dbuf_adds(b, pieces[rnd(sizeof(pieces) /
							 sizeof(pieces[0]))]),
				 0);
}

/* A valid DynamoDB number, as a JSON number token in one of several
 * forms. */
static void gen_num(struct dbuf *b)
{
	char dig[40];
	int nd = 1 + (int)rnd(rnd(2) ? 38 : 5), e, i, form;

	dbuf_reset(b);
	if (!rnd(10)) {
		assert_int_equal(dbuf_adds(b, "0"), 0);
		return;
	}
	for (i = 0; i < nd; i++)
		dig[i] = (char)('0' + rnd(10));
	dig[0] = (char)('1' + rnd(9));
	dig[nd] = '\0';
	if (rnd(2))
		assert_int_equal(dbuf_addc(b, '-'), 0);
	/* e: the exponent of the first digit, within DynamoDB's range */
	e = rnd(3) ? (int)rnd(60) - 20 : (int)rnd(256) - 130;
	form = (int)rnd(3);
	if (form == 0 && e >= nd - 1 && e < 45) {
		/* integer: digits then zeros */
		assert_int_equal(dbuf_adds(b, dig), 0);
		for (i = nd - 1; i < e; i++)
			assert_int_equal(dbuf_addc(b, '0'), 0);
	} else if (form == 1 && e < 0 && e > -45) {
		assert_int_equal(dbuf_adds(b, "0."), 0);
		for (i = -1; i > e; i--)
			assert_int_equal(dbuf_addc(b, '0'), 0);
		assert_int_equal(dbuf_adds(b, dig), 0);
	} else {
		assert_int_equal(dbuf_addc(b, dig[0]), 0);
		if (nd > 1)
			assert_int_equal(dbuf_addf(b, ".%s", dig + 1), 0);
		assert_int_equal(dbuf_addf(b, "%s%s%d", rnd(2) ? "e" : "E",
					   e >= 0 && rnd(2) ? "+" : "", e),
				 0);
	}
}

static void gen_b64(struct dbuf *b)
{
	static const char a[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char raw[16];
	size_t n = rnd(sizeof(raw) + 1), i;
	uint32_t v;

	for (i = 0; i < n; i++)
		raw[i] = (unsigned char)rnd(256);
	dbuf_reset(b);
	for (i = 0; i < n; i += 3) {
		v = (uint32_t)raw[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)raw[i + 1] << 8;
		if (i + 2 < n)
			v |= raw[i + 2];
		assert_int_equal(dbuf_addc(b, a[v >> 18]), 0);
		assert_int_equal(dbuf_addc(b, a[(v >> 12) & 63]), 0);
		assert_int_equal(dbuf_addc(b, i + 1 < n ? a[(v >> 6) & 63] : '='), 0);
		assert_int_equal(dbuf_addc(b, i + 2 < n ? a[v & 63] : '='), 0);
	}
}

static int set_has(const json_t *set, const char *s, size_t len, int num)
{
	size_t i;
	json_t *e;

	json_array_foreach (set, i, e) {
		if (num ? !ddbnum_cmp(json_string_value(e),
				      json_string_length(e), s, len) :
			  (json_string_length(e) == len &&
			   !memcmp(json_string_value(e), s, len)))
			return 1;
	}
	return 0;
}

static json_t *gen_tv(int depth);

static json_t *gen_map(int depth, int top)
{
	json_t *m = json_object();
	struct dbuf k;
	int n = (int)rnd(top ? 8 : 5), i;

	dbuf_init(&k, DBUF_CAP_SMALL);
	for (i = 0; i < n; i++) {
		gen_str(&k, 6);
		if (top && !dbuf_len(&k))
			assert_int_equal(dbuf_addc(&k, 'k'), 0);
		/* (the generated keys hold no U+0000) */
		json_object_set_new(m, dbuf_str(&k), gen_tv(depth + 1));
	}
	dbuf_free(&k);
	return m;
}

static json_t *gen_tv(int depth)
{
	struct dbuf b;
	json_t *v = NULL, *arr;
	int t = (int)rnd(depth > 5 ? 6 : 10), n, i, num;

	dbuf_init(&b, DBUF_CAP_SMALL);
	switch (t) {
	case 0:
		gen_str(&b, 8);
		v = json_pack("{s:s%}", "S", dbuf_str(&b), dbuf_len(&b));
		break;
	case 1:
		gen_num(&b);
		v = json_pack("{s:s}", "N", dbuf_str(&b));
		break;
	case 2:
		v = json_pack("{s:b}", "BOOL", (int)rnd(2));
		break;
	case 3:
		v = json_pack("{s:b}", "NULL", 1);
		break;
	case 4:
		gen_b64(&b);
		v = json_pack("{s:s}", "B", dbuf_str(&b));
		break;
	case 5:
	case 6:
		/* SS, NS or BS of distinct members */
		num = t == 5 && rnd(2);
		arr = json_array();
		n = 1 + (int)rnd(5);
		for (i = 0; i < n; i++) {
			if (num)
				gen_num(&b);
			else if (t == 6)
				gen_b64(&b);
			else
				gen_str(&b, 5);
			if (!set_has(arr, dbuf_str(&b), dbuf_len(&b), num))
				json_array_append_new(arr, json_stringn(dbuf_str(&b),
									dbuf_len(&b)));
		}
		v = json_pack("{s:o}", num ? "NS" : t == 6 ? "BS" : "SS", arr);
		break;
	case 7:
	case 8:
		v = json_pack("{s:o}", "M", gen_map(depth, 0));
		break;
	default:
		arr = json_array();
		n = (int)rnd(5);
		for (i = 0; i < n; i++)
			json_array_append_new(arr, gen_tv(depth + 1));
		v = json_pack("{s:o}", "L", arr);
		break;
	}
	dbuf_free(&b);
	assert_non_null(v);
	return v;
}

static void test_random_round_trip(void **state)
{
	struct dbuf why;
	json_t *item, *back, *natural;
	char *plain, *typed, *p2, *t2;
	int round;
	(void)state;

	dbuf_init(&why, DBUF_CAP_SMALL);
	for (round = 0; round < 400; round++) {
		item = gen_map(0, 1);
		plain = render(item, DDBJSON_PLAIN);
		typed = render(item, DDBJSON_TYPED);

		/* plain, with the item as the old value: the same item */
		if (ddbjson_parse(plain, strlen(plain), DDBJSON_PLAIN, item,
				  &back, &why))
			fail_msg("round %d: %s\n%s", round, dbuf_str(&why), plain);
		t2 = render(back, DDBJSON_TYPED);
		assert_string_equal(t2, typed);
		p2 = render(back, DDBJSON_PLAIN);
		assert_string_equal(p2, plain);
		free(t2);
		free(p2);
		json_decref(back);

		/* plain without an old value: natural types, same text */
		if (ddbjson_parse(plain, strlen(plain), DDBJSON_PLAIN, NULL,
				  &natural, &why))
			fail_msg("round %d: %s\n%s", round, dbuf_str(&why), plain);
		p2 = render(natural, DDBJSON_PLAIN);
		assert_string_equal(p2, plain);
		free(p2);
		json_decref(natural);

		/* typed */
		if (ddbjson_parse(typed, strlen(typed), DDBJSON_TYPED, NULL,
				  &back, &why))
			fail_msg("round %d: %s\n%s", round, dbuf_str(&why), typed);
		/* (sets come back in the sorted order they were written in) */
		t2 = render(back, DDBJSON_TYPED);
		assert_string_equal(t2, typed);
		free(t2);
		json_decref(back);

		free(plain);
		free(typed);
		json_decref(item);
	}
	dbuf_free(&why);
}

/* Every prefix of a valid text is refused cleanly (no crash, no leak, a
 * message), and so is every one-byte corruption that breaks it. */
static void test_truncations(void **state)
{
	size_t len, i;
	char *text = load_fixture("rich.plain.expected", &len);
	struct dbuf why;
	json_t *item;
	int rc;
	(void)state;

	dbuf_init(&why, DBUF_CAP_SMALL);
	for (i = 0; i < len; i++) {
		rc = ddbjson_parse(text, i, DDBJSON_PLAIN, NULL, &item, &why);
		/* only the text without its final newline is still whole */
		if (i + 1 < len) {
			assert_int_equal(rc, -EINVAL);
			assert_true(dbuf_len(&why) > 0);
		} else {
			assert_int_equal(rc, 0);
			json_decref(item);
		}
	}
	for (i = 0; i < len; i += 7) {
		char save = text[i];

		text[i] = '\x02';
		/* a raw control byte is never valid, in a string or out */
		rc = ddbjson_parse(text, len, DDBJSON_PLAIN, NULL, &item, &why);
		assert_int_equal(rc, -EINVAL);
		text[i] = save;
	}
	dbuf_free(&why);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixture_matches_jq),
		cmocka_unit_test(test_fixture_round_trip),
		cmocka_unit_test(test_render_each_type),
		cmocka_unit_test(test_render_typed_format),
		cmocka_unit_test(test_render_escapes),
		cmocka_unit_test(test_render_number_forms),
		cmocka_unit_test(test_render_rejects_bad_items),
		cmocka_unit_test(test_parse_each_type),
		cmocka_unit_test(test_parse_strings),
		cmocka_unit_test(test_numbers_exact),
		cmocka_unit_test(test_numbers_out_of_range),
		cmocka_unit_test(test_types_kept),
		cmocka_unit_test(test_sets_that_no_longer_fit),
		cmocka_unit_test(test_empty_set_rejected),
		cmocka_unit_test(test_invalid_json),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_typed_parse),
		cmocka_unit_test(test_random_round_trip),
		cmocka_unit_test(test_truncations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
