/* ddb against a real DynamoDB Local (started by run-with-ddb-local.sh,
 * which exports DYNFS_TEST_DDB_ENDPOINT).  Nothing is mocked: requests
 * are signed, sent with curl and answered by the emulator.  One http
 * client observes the exchanges (a transport that forwards to a second,
 * real client) to check that DynamoDB Local sends x-amz-crc32 and that
 * it matches.  Without the endpoint the program reports a skip (77). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <zlib.h>

#include "backend/awscfg.h"
#include "backend/creds.h"
#include "backend/ddb.h"
#include "tests/testutil.h"
#include "backend/http.h"
#include "backend/svc.h"

#define T_SK "dynfs_it_sk"       /* pk (S) + sk (S) */
#define T_PK "dynfs_it_pk"       /* pk (S) only */
#define T_CHECK "dynfs_it_check" /* read back by check-ddb-local.mjs */
#define T_MANY "dynfs_it_many_"  /* prefix of 101 tables */
#define N_MANY 101

#define BIG_N "12345678901234567890123456789012345678"
#define TINY_N "-1.0000000000000000000000000000000000001E-130"
/* DynamoDB stores numbers as decimals and answers in plain notation:
 * the 38 significant digits of TINY_N come back exactly, spelled out. */
#define TINY_N_CANON                                                      \
	"-0.000000000000000000000000000000000000000000000000000000000000" \
	"0000000000000000000000000000000000000000000000000000000000000000" \
	"0000010000000000000000000000000000000000001"

/* What the observing transport saw. */
struct observer {
	struct http_client *real;
	pthread_mutex_t lock;
	unsigned responses;   /* 2xx responses */
	unsigned with_crc;    /* ... carrying x-amz-crc32 */
	unsigned crc_ok;      /* ... whose value matched the body */
	int tamper;           /* alter x-amz-crc32 before svc sees it */
};

struct env {
	struct awscfg *cfg;
	struct creds_chain *chain;
	struct http_client *http;
	struct svc *svc;
	struct ddb *ddb;
	struct observer obs;
};

static struct env *g_env;

static void no_sleep(void *ctx, unsigned ms)
{
	(void)ctx;
	(void)ms;
}

/* Forward to the real client, note x-amz-crc32, and optionally damage it
 * (the body stays intact, so only the check can notice). */
static int observe(void *ctx, const struct http_request *req,
		   struct http_response *resp)
{
	struct observer *o = ctx;
	const char *v;
	size_t len;
	int rc, tamper;

	rc = http_perform(o->real, req, resp, NULL);
	if (rc || resp->status < 200 || resp->status >= 300)
		return rc;
	v = http_response_header(resp, "x-amz-crc32", &len);
	pthread_mutex_lock(&o->lock);
	tamper = o->tamper;
	o->responses++;
	if (v) {
		char num[16];
		unsigned long want;

		o->with_crc++;
		if (len < sizeof(num)) {
			memcpy(num, v, len);
			num[len] = '\0';
			want = strtoul(num, NULL, 10);
			if (want == crc32(0L, (const Bytef *)dbuf_str(&resp->body),
					  (uInt)dbuf_len(&resp->body)))
				o->crc_ok++;
		}
	}
	pthread_mutex_unlock(&o->lock);
	if (tamper && v) {
		/* Rewrite the header block with a wrong value. */
		struct dbuf h;

		dbuf_init(&h, DBUF_CAP_SMALL);
		if (dbuf_add(&h, resp->headers.ptr,
			     (size_t)(v - resp->headers.ptr)) ||
		    dbuf_adds(&h, "1") ||
		    dbuf_adds(&h, v + len)) {
			dbuf_free(&h);
			return -ENOMEM;
		}
		dbuf_free(&resp->headers);
		resp->headers = h;
	}
	return 0;
}

/* ---- fixtures ----------------------------------------------------------- */


static char *describe(const struct aws_err *err)
{
	static __thread char buf[800];

	return (char *)awserr_describe(err, buf, sizeof(buf));
}

#define OK(call)                                                          \
	do {                                                              \
		int rc_ = (call);                                         \
		if (rc_)                                                  \
			fail_msg("%s: %d (%s)", #call, rc_,               \
				 describe(&err));                         \
	} while (0)

static void drop_table(struct env *e, const char *name)
{
	struct aws_err err;
	int rc = ddb_delete_table(e->ddb, name, &err);

	if (rc == 0)
		OK(ddb_wait_table(e->ddb, name, 1, 30000, &err));
	else if (rc != -ENOENT)
		fail_msg("DeleteTable %s: %s", name, describe(&err));
}

static void make_table(struct env *e, const char *name, int with_sk)
{
	struct aws_err err;
	json_t *req, *desc = NULL;

	drop_table(e, name);
	if (with_sk)
		req = json_pack("{s:s, s:s, s:[{s:s, s:s}, {s:s, s:s}],"
				" s:[{s:s, s:s}, {s:s, s:s}]}",
				"TableName", name, "BillingMode", "PAY_PER_REQUEST",
				"AttributeDefinitions",
				"AttributeName", "pk", "AttributeType", "S",
				"AttributeName", "sk", "AttributeType", "S",
				"KeySchema",
				"AttributeName", "pk", "KeyType", "HASH",
				"AttributeName", "sk", "KeyType", "RANGE");
	else
		req = json_pack("{s:s, s:s, s:[{s:s, s:s}], s:[{s:s, s:s}]}",
				"TableName", name, "BillingMode", "PAY_PER_REQUEST",
				"AttributeDefinitions",
				"AttributeName", "pk", "AttributeType", "S",
				"KeySchema",
				"AttributeName", "pk", "KeyType", "HASH");
	assert_non_null(req);
	OK(ddb_create_table(e->ddb, req, &desc, &err));
	assert_string_equal(json_string_value(json_object_get(desc, "TableName")),
			    name);
	json_decref(desc);
	json_decref(req);
	OK(ddb_wait_table(e->ddb, name, 0, 30000, &err));
}

static int group_setup(void **state)
{
	const char *endpoint = getenv("DYNFS_TEST_DDB_ENDPOINT");
	struct http_opts hopts;
	struct svc_opts sopts;
	struct dbuf why;
	struct env *e;

	e = calloc(1, sizeof(*e));
	if (!e)
		return -1;
	pthread_mutex_init(&e->obs.lock, NULL);
	dbuf_init(&why, DBUF_CAP_SMALL);
	if (awscfg_load(&e->cfg, NULL, &why) ||
	    creds_chain_new(&e->chain, e->cfg)) {
		fprintf(stderr, "credentials: %s\n", dbuf_str(&why));
		dbuf_free(&why);
		return -1;
	}
	dbuf_free(&why);
	memset(&hopts, 0, sizeof(hopts));
	if (http_client_new(&e->http, &hopts) ||
	    http_client_new(&e->obs.real, &hopts))
		return -1;
	http_client_set_transport(e->http, observe, &e->obs);
	memset(&sopts, 0, sizeof(sopts));
	sopts.endpoint = endpoint;
	sopts.region = getenv("AWS_REGION") ? getenv("AWS_REGION") : "us-east-1";
	sopts.service = "dynamodb";
	sopts.flags = SVC_CHECK_CRC32;
	if (svc_new(&e->svc, e->http, e->chain, &sopts) ||
	    ddb_new(&e->ddb, e->svc))
		return -1;
	/* The tamper test's retries need not wait. */
	svc_set_sleep(e->svc, no_sleep, NULL);
	g_env = e;
	*state = e;
	make_table(e, T_SK, 1);
	make_table(e, T_PK, 0);
	make_table(e, T_CHECK, 1);
	return 0;
}

static int group_teardown(void **state)
{
	struct env *e = *state;

	if (!e)
		return 0;
	/* T_CHECK stays: check-ddb-local.mjs reads it afterwards. */
	drop_table(e, T_SK);
	drop_table(e, T_PK);
	ddb_free(e->ddb);
	svc_free(e->svc);
	http_client_free(e->http);
	http_client_free(e->obs.real);
	creds_chain_free(e->chain);
	awscfg_free(e->cfg);
	pthread_mutex_destroy(&e->obs.lock);
	free(e);
	return 0;
}

static json_t *key2(const char *pk, const char *sk)
{
	json_t *k = json_pack("{s:{s:s}, s:{s:s}}", "pk", "S", pk, "sk", "S", sk);

	assert_non_null(k);
	return k;
}

static json_t *key1(const char *pk)
{
	json_t *k = json_pack("{s:{s:s}}", "pk", "S", pk);

	assert_non_null(k);
	return k;
}

static void assert_json_eq(json_t *got, json_t *want)
{
	if (!json_equal(got, want)) {
		char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
		char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);

		print_error("got  %.2000s\nwant %.2000s\n", g ? g : "(null)",
			    w ? w : "(null)");
		free(g);
		free(w);
		fail();
	}
}

/* ---- tables ------------------------------------------------------------- */

struct names {
	int n;
	int ours; /* names starting with T_MANY */
	int sk_seen;
};

static int collect_name(void *ctx, const char *name)
{
	struct names *nm = ctx;

	nm->n++;
	if (!strncmp(name, T_MANY, strlen(T_MANY)))
		nm->ours++;
	if (!strcmp(name, T_SK))
		nm->sk_seen++;
	return 0;
}

static void test_list_tables_paginates(void **state)
{
	struct env *e = *state;
	struct aws_err err;
	struct names nm;
	json_t *req, *resp = NULL;
	char name[64];
	int i;

	/* More tables than one ListTables page (100) holds. */
	for (i = 0; i < N_MANY; i++) {
		snprintf(name, sizeof(name), T_MANY "%03d", i);
		make_table(e, name, 0);
	}
	memset(&nm, 0, sizeof(nm));
	OK(ddb_list_tables(e->ddb, 0, collect_name, &nm, &err));
	assert_int_equal(nm.ours, N_MANY);
	assert_int_equal(nm.sk_seen, 1);
	assert_true(nm.n > 100);
	/* limit > 0: only the first page, of that size */
	memset(&nm, 0, sizeof(nm));
	OK(ddb_list_tables(e->ddb, 3, collect_name, &nm, &err));
	assert_int_equal(nm.n, 3);
	/* the server's side of it, through the raw call */
	req = tu_json("{\"Limit\":2}");
	OK(ddb_call(e->ddb, "ListTables", req, &resp, &err));
	assert_int_equal(json_array_size(json_object_get(resp, "TableNames")), 2);
	assert_true(json_is_string(json_object_get(resp, "LastEvaluatedTableName")));
	json_decref(resp);
	json_decref(req);
	/* DeleteTable and waiting for the table to go */
	for (i = 0; i < N_MANY; i++) {
		snprintf(name, sizeof(name), T_MANY "%03d", i);
		OK(ddb_delete_table(e->ddb, name, &err));
	}
	OK(ddb_wait_table(e->ddb, T_MANY "000", 1, 30000, &err));
	memset(&nm, 0, sizeof(nm));
	OK(ddb_list_tables(e->ddb, 0, collect_name, &nm, &err));
	assert_int_equal(nm.ours, 0);
}

static void test_describe(void **state)
{
	struct env *e = *state;
	struct aws_err err;
	json_t *t = NULL;

	OK(ddb_describe_table(e->ddb, T_SK, &t, &err));
	assert_string_equal(json_string_value(json_object_get(t, "TableStatus")),
			    "ACTIVE");
	assert_int_equal(json_array_size(json_object_get(t, "KeySchema")), 2);
	json_decref(t);
	t = (json_t *)&err;
	assert_int_equal(ddb_describe_table(e->ddb, "dynfs_it_missing", &t, &err),
			 -ENOENT);
	assert_null(t);
	assert_string_equal(err.type, "ResourceNotFoundException");
	assert_int_equal(err.status, 400);
	assert_int_equal(ddb_delete_table(e->ddb, "dynfs_it_missing", &err),
			 -ENOENT);
}

/* ---- items -------------------------------------------------------------- */

static void test_put_get_update_delete(void **state)
{
	struct env *e = *state;
	struct aws_err err;
	json_t *item, *key = key2("dir", "file"), *got = NULL, *req, *attrs = NULL;

	item = tu_json("{\"pk\":{\"S\":\"dir\"},\"sk\":{\"S\":\"file\"},"
		 "\"data\":{\"B\":\"aGVsbG8gd29ybGQ=\"},\"size\":{\"N\":\"11\"},"
		 "\"tags\":{\"SS\":[\"a\",\"b\"]},\"meta\":{\"M\":{\"mode\":{\"N\":\"420\"}}},"
		 "\"name\":{\"S\":\"h\\u00e9llo \\u2603\"}}");
	OK(ddb_put_item(e->ddb, T_SK, item, NULL, &err));
	OK(ddb_get_item(e->ddb, T_SK, key, 1, &got, &err));
	assert_json_eq(got, item);
	json_decref(got);
	got = NULL;

	req = json_pack("{s:s, s:O, s:s, s:{s:{s:s}}, s:s}", "TableName", T_SK,
			"Key", key, "UpdateExpression", "SET size = size + :d",
			"ExpressionAttributeValues", ":d", "N", "5",
			"ReturnValues", "UPDATED_NEW");
	OK(ddb_update_item(e->ddb, req, &attrs, &err));
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(attrs, "size"), "N")), "16");
	json_decref(attrs);
	json_decref(req);

	OK(ddb_delete_item(e->ddb, T_SK, key, NULL, &err));
	assert_int_equal(ddb_get_item(e->ddb, T_SK, key, 1, &got, &err), -ENOENT);
	assert_null(got);
	json_decref(key);
	json_decref(item);
}

static void test_conditions(void **state)
{
	struct env *e = *state;
	struct aws_err err;
	struct ddb_cond create = { "attribute_not_exists(pk)", NULL, NULL };
	struct ddb_cond ver;
	json_t *item = tu_json("{\"pk\":{\"S\":\"c\"},\"ver\":{\"N\":\"1\"}}");
	json_t *key = key1("c");

	OK(ddb_put_item(e->ddb, T_PK, item, &create, &err));
	/* the same create again loses */
	assert_int_equal(ddb_put_item(e->ddb, T_PK, item, &create, &err), -ESTALE);
	assert_string_equal(err.type, "ConditionalCheckFailedException");
	/* a delete guarded by a version */
	ver.expr = "#v = :v";
	ver.names = tu_json("{\"#v\":\"ver\"}");
	ver.values = tu_json("{\":v\":{\"N\":\"2\"}}");
	assert_int_equal(ddb_delete_item(e->ddb, T_PK, key, &ver, &err), -ESTALE);
	json_decref(ver.values);
	ver.values = tu_json("{\":v\":{\"N\":\"1\"}}");
	OK(ddb_delete_item(e->ddb, T_PK, key, &ver, &err));
	json_decref(ver.names);
	json_decref(ver.values);
	json_decref(key);
	json_decref(item);
}

static void test_limits(void **state)
{
	struct env *e = *state;
	struct aws_err err;
	json_t *item;
	char *big;

	/* over 400 KB */
	big = malloc(410 * 1024 + 1);
	assert_non_null(big);
	memset(big, 'x', 410 * 1024);
	big[410 * 1024] = '\0';
	item = json_pack("{s:{s:s}, s:{s:s}}", "pk", "S", "big", "d", "S", big);
	free(big);
	assert_non_null(item);
	assert_int_equal(ddb_put_item(e->ddb, T_PK, item, NULL, &err), -EFBIG);
	assert_string_equal(err.type, "ValidationException");
	json_decref(item);
	/* an empty set */
	item = tu_json("{\"pk\":{\"S\":\"empty\"},\"s\":{\"SS\":[]}}");
	assert_int_equal(ddb_put_item(e->ddb, T_PK, item, NULL, &err), -EINVAL);
	assert_string_equal(err.type, "ValidationException");
	json_decref(item);
}

static void test_numbers(void **state)
{
	struct env *e = *state;
	struct aws_err err;
	json_t *item, *key = key1("numbers"), *got = NULL;

	item = tu_json("{\"pk\":{\"S\":\"numbers\"},\"big\":{\"N\":\"" BIG_N "\"},"
		 "\"neg\":{\"N\":\"-" BIG_N "\"},\"tiny\":{\"N\":\"" TINY_N "\"},"
		 "\"ns\":{\"NS\":[\"" BIG_N "\"]}}");
	OK(ddb_put_item(e->ddb, T_PK, item, NULL, &err));
	OK(ddb_get_item(e->ddb, T_PK, key, 1, &got, &err));
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(got, "big"), "N")), BIG_N);
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(got, "neg"), "N")), "-" BIG_N);
	assert_string_equal(json_string_value(json_array_get(json_object_get(
				    json_object_get(got, "ns"), "NS"), 0)), BIG_N);
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(got, "tiny"), "N")), TINY_N_CANON);
	json_decref(got);
	json_decref(key);
	json_decref(item);
}

/* ---- Query and Scan ----------------------------------------------------- */

struct qpages {
	int pages;
	int items;
	char last[16];
	int ordered;
};

static int query_page(void *ctx, json_t *items)
{
	struct qpages *q = ctx;
	json_t *it;
	size_t i;

	q->pages++;
	json_array_foreach(items, i, it) {
		const char *sk = json_string_value(json_object_get(
			json_object_get(it, "sk"), "S"));

		if (!sk || strcmp(sk, q->last) <= 0)
			q->ordered = 0;
		snprintf(q->last, sizeof(q->last), "%s", sk ? sk : "");
		q->items++;
	}
	return 0;
}

static void test_query_paginates(void **state)
{
	struct env *e = *state;
	struct aws_err err;
	struct qpages q;
	json_t *req;
	char sk[16];
	int i;

	for (i = 0; i < 10; i++) {
		json_t *item;

		snprintf(sk, sizeof(sk), "f%02d", i);
		item = json_pack("{s:{s:s}, s:{s:s}}", "pk", "S", "qdir", "sk", "S", sk);
		OK(ddb_put_item(e->ddb, T_SK, item, NULL, &err));
		json_decref(item);
	}
	memset(&q, 0, sizeof(q));
	q.ordered = 1;
	req = json_pack("{s:s, s:s, s:{s:{s:s}}, s:i, s:b}", "TableName", T_SK,
			"KeyConditionExpression", "pk = :p",
			"ExpressionAttributeValues", ":p", "S", "qdir",
			"Limit", 3, "ConsistentRead", 1);
	OK(ddb_query(e->ddb, req, query_page, &q, &err));
	assert_int_equal(q.items, 10);
	assert_true(q.pages >= 4);
	assert_true(q.ordered);
	assert_string_equal(q.last, "f09");
	assert_null(json_object_get(req, "ExclusiveStartKey"));
	json_decref(req);
}

struct scan_rec {
	int seen[300];
	int in_cb;
	int concurrent;
	int stray;
	int pages;
};

static int scan_page(void *ctx, json_t *items)
{
	struct scan_rec *r = ctx;
	json_t *it;
	size_t i;

	if (__atomic_add_fetch(&r->in_cb, 1, __ATOMIC_SEQ_CST) != 1)
		r->concurrent = 1;
	r->pages++;
	json_array_foreach(items, i, it) {
		const char *pk = json_string_value(json_object_get(
			json_object_get(it, "pk"), "S"));
		int n;

		if (pk && sscanf(pk, "scan-%d", &n) == 1 && n >= 0 && n < 300)
			r->seen[n]++;
		else
			r->stray++;
	}
	__atomic_sub_fetch(&r->in_cb, 1, __ATOMIC_SEQ_CST);
	return 0;
}

/* 300 items through BatchWriteItem into a fresh table of their own. */
static void put_scan_items(struct env *e)
{
	struct aws_err err;
	json_t *items, *list;
	int i;

	make_table(e, T_PK "_scan", 0);
	items = json_object();
	list = json_array();
	assert_non_null(items);
	assert_non_null(list);
	for (i = 0; i < 300; i++) {
		char pk[32], n[16];

		snprintf(pk, sizeof(pk), "scan-%d", i);
		snprintf(n, sizeof(n), "%d", i);
		json_array_append_new(list, json_pack("{s:{s:{s:{s:s}, s:{s:s}}}}",
			"PutRequest", "Item", "pk", "S", pk, "n", "N", n));
	}
	json_object_set_new(items, T_PK "_scan", list);
	OK(ddb_batch_write(e->ddb, items, &err));
	json_decref(items);
}

static void test_scan_parallel(void **state)
{
	struct env *e = *state;
	struct aws_err err;
	struct scan_rec *r = calloc(1, sizeof(*r));
	json_t *req;
	int i;

	assert_non_null(r);
	put_scan_items(e);
	req = json_pack("{s:s, s:i}", "TableName", T_PK "_scan", "Limit", 17);
	OK(ddb_scan(e->ddb, req, 4, scan_page, r, &err));
	for (i = 0; i < 300; i++)
		if (r->seen[i] != 1)
			fail_msg("item scan-%d seen %d times", i, r->seen[i]);
	assert_int_equal(r->stray, 0);
	assert_false(r->concurrent);
	/* 300 items at 17 a page need at least 18 pages */
	assert_true(r->pages >= 18);
	/* serial, the same */
	memset(r, 0, sizeof(*r));
	OK(ddb_scan(e->ddb, req, 1, scan_page, r, &err));
	for (i = 0; i < 300; i++)
		assert_int_equal(r->seen[i], 1);
	json_decref(req);
	free(r);
	drop_table(e, T_PK "_scan");
}

/* ---- batches ------------------------------------------------------------ */

static int batch_found(void *ctx, json_t *item)
{
	int *seen = ctx;
	const char *pk = json_string_value(json_object_get(
		json_object_get(item, "pk"), "S"));
	int n;

	if (pk && sscanf(pk, "b-%d", &n) == 1 && n >= 0 && n < 60)
		seen[n]++;
	else
		seen[60]++;
	return 0;
}

static void test_batch_write_get(void **state)
{
	struct env *e = *state;
	struct aws_err err;
	json_t *items = json_object(), *list = json_array(), *keys = json_array();
	int seen[61], i;

	for (i = 0; i < 60; i++) {
		char pk[16];

		snprintf(pk, sizeof(pk), "b-%d", i);
		json_array_append_new(list, json_pack("{s:{s:{s:{s:s}, s:{s:s}}}}",
			"PutRequest", "Item", "pk", "S", pk, "v", "S", "x"));
		json_array_append_new(keys, key1(pk));
	}
	/* and a few keys that have no item */
	for (i = 0; i < 5; i++) {
		char pk[16];

		snprintf(pk, sizeof(pk), "missing-%d", i);
		json_array_append_new(keys, key1(pk));
	}
	json_object_set_new(items, T_PK, list);
	OK(ddb_batch_write(e->ddb, items, &err));
	memset(seen, 0, sizeof(seen));
	OK(ddb_batch_get(e->ddb, T_PK, keys, 1, batch_found, seen, &err));
	for (i = 0; i < 60; i++)
		assert_int_equal(seen[i], 1);
	assert_int_equal(seen[60], 0);
	/* deletes through the same path */
	json_decref(items);
	items = json_object();
	list = json_array();
	for (i = 0; i < 60; i++)
		json_array_append_new(list, json_pack("{s:{s:O}}", "DeleteRequest",
			"Key", json_array_get(keys, (size_t)i)));
	json_object_set_new(items, T_PK, list);
	OK(ddb_batch_write(e->ddb, items, &err));
	memset(seen, 0, sizeof(seen));
	OK(ddb_batch_get(e->ddb, T_PK, keys, 0, batch_found, seen, &err));
	for (i = 0; i < 61; i++)
		assert_int_equal(seen[i], 0);
	json_decref(items);
	json_decref(keys);
}

/* ---- transactions ------------------------------------------------------- */

static void test_transactions(void **state)
{
	struct env *e = *state;
	struct aws_err err;
	json_t *tx, *gets, *resp = NULL;
	char *half;
	int rc;

	tx = json_pack("[{s:{s:s, s:{s:{s:s}, s:{s:s}}, s:s}},"
		       " {s:{s:s, s:{s:{s:s}, s:{s:s}}}}]",
		       "Put", "TableName", T_SK, "Item", "pk", "S", "tx", "sk", "S", "1",
		       "ConditionExpression", "attribute_not_exists(pk)",
		       "Put", "TableName", T_SK, "Item", "pk", "S", "tx", "sk", "S", "2");
	assert_non_null(tx);
	OK(ddb_transact_write(e->ddb, tx, "dynfs-it-token-1", &err));
	/* the same again: the first condition fails, the second is fine */
	assert_int_equal(ddb_transact_write(e->ddb, tx, NULL, &err), -ESTALE);
	assert_string_equal(err.type, "TransactionCanceledException");
	assert_non_null(strstr(err.message, "item 0 ConditionalCheckFailed"));
	json_decref(tx);

	/* a reason that is not a condition: an item grown past 400 KB */
	half = malloc(300 * 1024 + 1);
	assert_non_null(half);
	memset(half, 'h', 300 * 1024);
	half[300 * 1024] = '\0';
	tx = json_pack("[{s:{s:s, s:{s:{s:s}, s:{s:s}, s:{s:s}}}}]", "Put",
		       "TableName", T_SK, "Item", "pk", "S", "tx", "sk", "S", "half",
		       "d", "S", half);
	assert_non_null(tx);
	OK(ddb_transact_write(e->ddb, tx, NULL, &err));
	json_decref(tx);
	tx = json_pack("[{s:{s:s, s:{s:{s:s}, s:{s:s}}, s:s, s:{s:{s:s}}}},"
		       " {s:{s:s, s:{s:{s:s}, s:{s:s}}, s:s}}]",
		       "Update", "TableName", T_SK, "Key", "pk", "S", "tx", "sk", "S", "half",
		       "UpdateExpression", "SET e = :v",
		       "ExpressionAttributeValues", ":v", "S", half,
		       "Put", "TableName", T_SK, "Item", "pk", "S", "tx", "sk", "S", "1",
		       "ConditionExpression", "attribute_not_exists(pk)");
	free(half);
	assert_non_null(tx);
	rc = ddb_transact_write(e->ddb, tx, NULL, &err);
	if (rc != -ECANCELED)
		fail_msg("got %d: %s", rc, describe(&err));
	assert_non_null(strstr(err.message, "item 0 ValidationError"));
	assert_non_null(strstr(err.message, "item 1 ConditionalCheckFailed"));
	json_decref(tx);

	gets = json_pack("[{s:{s:s, s:{s:{s:s}, s:{s:s}}}}, {s:{s:s, s:{s:{s:s}, s:{s:s}}}}]",
			 "Get", "TableName", T_SK, "Key", "pk", "S", "tx", "sk", "S", "2",
			 "Get", "TableName", T_SK, "Key", "pk", "S", "tx", "sk", "S", "none");
	OK(ddb_transact_get(e->ddb, gets, &resp, &err));
	assert_int_equal(json_array_size(resp), 2);
	assert_string_equal(json_string_value(json_object_get(json_object_get(
		json_object_get(json_array_get(resp, 0), "Item"), "sk"), "S")), "2");
	assert_null(json_object_get(json_array_get(resp, 1), "Item"));
	json_decref(resp);
	json_decref(gets);
}

/* ---- x-amz-crc32 -------------------------------------------------------- */

static void test_crc32(void **state)
{
	struct env *e = *state;
	struct aws_err err;
	struct names nm;
	unsigned before;

	memset(&nm, 0, sizeof(nm));
	OK(ddb_list_tables(e->ddb, 0, collect_name, &nm, &err));
	pthread_mutex_lock(&e->obs.lock);
	/* every 2xx so far came with a matching x-amz-crc32 */
	assert_true(e->obs.responses > 0);
	assert_int_equal(e->obs.with_crc, e->obs.responses);
	assert_int_equal(e->obs.crc_ok, e->obs.responses);
	before = e->obs.responses;
	e->obs.tamper = 1;
	pthread_mutex_unlock(&e->obs.lock);
	/* a wrong value: retried, then an error */
	assert_int_equal(ddb_list_tables(e->ddb, 0, collect_name, &nm, &err), -EIO);
	assert_string_equal(err.type, "CRC32CheckFailed");
	assert_int_equal(err.attempts, 3);
	pthread_mutex_lock(&e->obs.lock);
	e->obs.tamper = 0;
	assert_int_equal(e->obs.responses - before, 3);
	pthread_mutex_unlock(&e->obs.lock);
	OK(ddb_list_tables(e->ddb, 0, collect_name, &nm, &err));
}

/* ---- for check-ddb-local.mjs -------------------------------------------- */

/* Write an item the AWS SDK for JavaScript reads back afterwards, and
 * save what our client read, for the script to compare with its own. */
static void test_leave_item_for_sdk(void **state)
{
	struct env *e = *state;
	struct aws_err err;
	const char *out = getenv("DYNFS_TEST_DDB_CHECK_FILE");
	json_t *item, *key = key2("check", "item"), *got = NULL;
	FILE *fp;

	item = tu_json("{\"pk\":{\"S\":\"check\"},\"sk\":{\"S\":\"item\"},"
		 "\"big\":{\"N\":\"" BIG_N "\"},\"tiny\":{\"N\":\"" TINY_N "\"},"
		 "\"bin\":{\"B\":\"AAECA/7/\"},\"bs\":{\"BS\":[\"AQ==\",\"Ag==\"]},"
		 "\"ns\":{\"NS\":[\"1.5\",\"-" BIG_N "\"]},"
		 "\"ss\":{\"SS\":[\"x\",\"\\u00e9t\\u00e9\"]},"
		 "\"l\":{\"L\":[{\"S\":\"a\"},{\"N\":\"2\"},{\"BOOL\":true},{\"NULL\":true}]},"
		 "\"m\":{\"M\":{\"inner\":{\"M\":{\"deep\":{\"S\":\"\\u2603 snow\"}}}}},"
		 "\"empty\":{\"S\":\"\"}}");
	OK(ddb_put_item(e->ddb, T_CHECK, item, NULL, &err));
	OK(ddb_get_item(e->ddb, T_CHECK, key, 1, &got, &err));
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(got, "big"), "N")), BIG_N);
	if (out) {
		fp = fopen(out, "w");
		assert_non_null(fp);
		assert_int_equal(json_dumpf(got, fp, JSON_COMPACT | JSON_SORT_KEYS), 0);
		assert_int_equal(fclose(fp), 0);
	}
	json_decref(got);
	json_decref(key);
	json_decref(item);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_describe),
		cmocka_unit_test(test_put_get_update_delete),
		cmocka_unit_test(test_conditions),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_query_paginates),
		cmocka_unit_test(test_scan_parallel),
		cmocka_unit_test(test_batch_write_get),
		cmocka_unit_test(test_transactions),
		cmocka_unit_test(test_list_tables_paginates),
		cmocka_unit_test(test_crc32),
		cmocka_unit_test(test_leave_item_for_sdk),
	};

	if (!getenv("DYNFS_TEST_DDB_ENDPOINT")) {
		fprintf(stderr, "DYNFS_TEST_DDB_ENDPOINT is not set: run me "
				"through tests/integration/run-with-ddb-local.sh\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
