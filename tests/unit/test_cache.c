/* cache over a scripted DynamoDB: the transport below answers the JSON 1.0
 * operations the cache uses from a small in-memory model of two tables,
 * and records every request, so the tests check both what the cache
 * returns and which requests it made (and did not make). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "backend/awscfg.h"
#include "backend/creds.h"
#include "backend/ddb.h"
#include "backend/http.h"
#include "backend/svc.h"
#include "cache/cache.h"

#define MAX_SEEN 128

struct fake {
	pthread_mutex_t lock;
	/* ListTables pages, or NULL */
	const char *pages[4];
	int npage;
	long fail_status; /* answer everything with AccessDenied */
	/* the model: table name -> array of typed items */
	json_t *tables;
	/* requests seen: target (after the dot) and body */
	char *targets[MAX_SEEN];
	json_t *bodies[MAX_SEEN];
	int nseen;
};

static struct fake fk;

/* ---- the model ------------------------------------------------------- */

static const char *table_pk(const char *table)
{
	return !strcmp(table, "orders") || !strcmp(table, "orders2") ?
		"customer" : "id";
}

static const char *table_sk(const char *table)
{
	return !strcmp(table, "orders") || !strcmp(table, "orders2") ?
		"order_id" : NULL;
}

static json_t *model_items(const char *table)
{
	json_t *a = json_object_get(fk.tables, table);

	if (!a) {
		a = json_array();
		json_object_set_new(fk.tables, table, a);
	}
	return a;
}

static int same_key(const char *table, const json_t *item, const json_t *key)
{
	const char *sk = table_sk(table);

	return json_equal(json_object_get(item, table_pk(table)),
			  json_object_get(key, table_pk(table))) &&
	       (!sk || json_equal(json_object_get(item, sk),
				  json_object_get(key, sk)));
}

static int model_find(const char *table, const json_t *key)
{
	json_t *items = model_items(table), *it;
	size_t i;

	json_array_foreach(items, i, it)
		if (same_key(table, it, key))
			return (int)i;
	return -1;
}

static void model_put(const char *table, json_t *item)
{
	int i = model_find(table, item);

	if (i >= 0)
		json_array_set(model_items(table), (size_t)i, item);
	else
		json_array_append(model_items(table), item);
}

static void model_del(const char *table, const json_t *key)
{
	int i = model_find(table, key);

	if (i >= 0)
		json_array_remove(model_items(table), (size_t)i);
}

static char *err_body(const char *type, const char *msg)
{
	char *s = malloc(512);

	assert_non_null(s);
	snprintf(s, 512, "{\"__type\":\"com.amazonaws.dynamodb.v20120810#%s\","
		 "\"message\":\"%s\"}", type, msg);
	return s;
}

static char *dump(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);

	json_decref(j);
	assert_non_null(s);
	return s;
}

static json_t *describe(const char *table)
{
	const char *sk = table_sk(table);
	json_t *t;

	if (!strcmp(table, "nosuch"))
		return NULL;
	t = json_pack("{s:{s:s, s:[{s:s, s:s}], s:[{s:s, s:s}]}}", "Table",
		      "TableName", table, "KeySchema", "AttributeName",
		      table_pk(table), "KeyType", "HASH",
		      "AttributeDefinitions", "AttributeName", table_pk(table),
		      "AttributeType", strcmp(table, "nums") ? "S" : "N");
	if (sk) {
		json_t *tt = json_object_get(t, "Table");

		json_array_append_new(json_object_get(tt, "KeySchema"),
				      json_pack("{s:s, s:s}", "AttributeName",
						sk, "KeyType", "RANGE"));
		json_array_append_new(json_object_get(tt,
						      "AttributeDefinitions"),
				      json_pack("{s:s, s:s}", "AttributeName",
						sk, "AttributeType", "S"));
	}
	return t;
}

static int cond_ok(const char *table, json_t *req, int exists)
{
	const char *cond = json_string_value(json_object_get(
		req, "ConditionExpression"));

	(void)table;
	if (!cond)
		return 1;
	if (!strcmp(cond, "attribute_not_exists(#k)"))
		return !exists;
	if (!strcmp(cond, "attribute_exists(#k)"))
		return exists;
	fail_msg("unexpected condition %s", cond);
	return 0;
}

static long answer(const char *op, json_t *req, char **out)
{
	const char *table = json_string_value(json_object_get(req, "TableName"));
	json_t *items, *it, *res;
	size_t i;

	if (!strcmp(op, "ListTables")) {
		assert_true(fk.npage < 4 && fk.pages[fk.npage]);
		*out = strdup(fk.pages[fk.npage++]);
		return 200;
	}
	if (!strcmp(op, "DescribeTable")) {
		json_t *t = describe(table);

		if (!t) {
			*out = err_body("ResourceNotFoundException", "no table");
			return 400;
		}
		*out = dump(t);
		return 200;
	}
	if (!strcmp(op, "GetItem")) {
		int i2 = model_find(table, json_object_get(req, "Key"));

		*out = i2 < 0 ? strdup("{}")
			      : dump(json_pack("{s:O}", "Item",
					       json_array_get(model_items(table),
							      (size_t)i2)));
		return 200;
	}
	if (!strcmp(op, "PutItem")) {
		it = json_object_get(req, "Item");
		if (!cond_ok(table, req, model_find(table, it) >= 0)) {
			*out = err_body("ConditionalCheckFailedException", "no");
			return 400;
		}
		model_put(table, it);
		*out = strdup("{}");
		return 200;
	}
	if (!strcmp(op, "DeleteItem")) {
		it = json_object_get(req, "Key");
		if (!cond_ok(table, req, model_find(table, it) >= 0)) {
			*out = err_body("ConditionalCheckFailedException", "no");
			return 400;
		}
		model_del(table, it);
		*out = strdup("{}");
		return 200;
	}
	if (!strcmp(op, "Scan") || !strcmp(op, "Query")) {
		const char *proj = json_string_value(json_object_get(
			req, "ProjectionExpression"));
		json_t *v = json_object_get(json_object_get(
			req, "ExpressionAttributeValues"), ":v");
		json_int_t seg = json_integer_value(json_object_get(req, "Segment"));
		json_int_t limit = json_integer_value(json_object_get(req, "Limit"));

		res = json_array();
		items = model_items(table);
		json_array_foreach(items, i, it) {
			if (seg)
				break; /* everything is in segment 0 */
			if (v && !json_equal(json_object_get(it, table_pk(table)),
					     v))
				continue;
			if (proj)
				json_array_append_new(
					res, json_pack("{s:O}", table_pk(table),
						       json_object_get(
							       it,
							       table_pk(table))));
			else
				json_array_append(res, it);
			if (limit && json_array_size(res) >= (size_t)limit)
				break;
		}
		*out = dump(json_pack("{s:o, s:I}", "Items", res, "Count",
				      (json_int_t)json_array_size(res)));
		return 200;
	}
	if (!strcmp(op, "TransactWriteItems")) {
		json_t *ti = json_object_get(req, "TransactItems"), *op1;

		json_array_foreach(ti, i, it) {
			op1 = json_object_get(it, "Put");
			if (op1) {
				const char *t = json_string_value(
					json_object_get(op1, "TableName"));
				json_t *item = json_object_get(op1, "Item");

				if (!cond_ok(t, op1, model_find(t, item) >= 0))
					goto cancel;
			}
			op1 = json_object_get(it, "Delete");
			if (op1) {
				const char *t = json_string_value(
					json_object_get(op1, "TableName"));

				if (!cond_ok(t, op1,
					     model_find(t, json_object_get(
							       op1, "Key")) >= 0))
					goto cancel;
			}
		}
		json_array_foreach(ti, i, it) {
			op1 = json_object_get(it, "Put");
			if (op1)
				model_put(json_string_value(json_object_get(
						  op1, "TableName")),
					  json_object_get(op1, "Item"));
			op1 = json_object_get(it, "Delete");
			if (op1)
				model_del(json_string_value(json_object_get(
						  op1, "TableName")),
					  json_object_get(op1, "Key"));
		}
		*out = strdup("{}");
		return 200;
cancel:
		*out = strdup("{\"__type\":\"com.amazonaws.dynamodb.v20120810#"
			      "TransactionCanceledException\",\"message\":"
			      "\"Transaction cancelled\",\"CancellationReasons\":"
			      "[{\"Code\":\"ConditionalCheckFailed\"},"
			      "{\"Code\":\"None\"}]}");
		return 400;
	}
	fail_msg("unexpected operation %s", op);
	return 500;
}

static int fake_transport(void *ctx, const struct http_request *req,
			  struct http_response *resp)
{
	const char *target = NULL, *op;
	json_t *body;
	char *text = NULL;
	size_t i;

	(void)ctx;
	for (i = 0; i < req->nheaders; i++)
		if (!strcasecmp(req->headers[i].name, "x-amz-target"))
			target = req->headers[i].value;
	assert_non_null(target);
	op = strchr(target, '.') ? strchr(target, '.') + 1 : target;
	body = json_loadb(req->body, req->body_len, 0, NULL);
	assert_non_null(body);
	pthread_mutex_lock(&fk.lock);
	if (fk.nseen < MAX_SEEN) {
		fk.targets[fk.nseen] = strdup(op);
		fk.bodies[fk.nseen] = json_incref(body);
		fk.nseen++;
	}
	if (fk.fail_status) {
		resp->status = fk.fail_status;
		text = err_body("AccessDeniedException", "no");
	} else {
		resp->status = answer(op, body, &text);
	}
	pthread_mutex_unlock(&fk.lock);
	json_decref(body);
	dbuf_adds(&resp->body, text);
	free(text);
	return 0;
}

static void no_sleep(void *ctx, unsigned ms)
{
	(void)ctx;
	(void)ms;
}

/* ---- fixture ------------------------------------------------------------ */

struct fixture {
	struct awscfg *cfg;
	struct creds_chain *creds;
	struct http_client *http;
	struct svc *svc;
	struct ddb *ddb;
	struct cache *cache;
};

static void seen_reset(void)
{
	int i;

	for (i = 0; i < fk.nseen; i++) {
		free(fk.targets[i]);
		json_decref(fk.bodies[i]);
	}
	fk.nseen = 0;
}

/* How many requests of op were made since the last reset. */
static int seen(const char *op)
{
	int i, n = 0;

	for (i = 0; i < fk.nseen; i++)
		n += !strcmp(fk.targets[i], op);
	return n;
}

/* The body of the last request of op. */
static json_t *last(const char *op)
{
	int i;

	for (i = fk.nseen - 1; i >= 0; i--)
		if (!strcmp(fk.targets[i], op))
			return fk.bodies[i];
	fail_msg("no %s request", op);
	return NULL;
}

static int setup_ttl(void **state, unsigned ttl_ms, enum ddbjson_format fmt)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct http_opts ho;
	struct svc_opts so;
	struct cache_opts co;
	struct dbuf why;

	assert_non_null(f);
	setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
	setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
	dbuf_init(&why, DBUF_CAP_SMALL);
	assert_int_equal(awscfg_load(&f->cfg, NULL, &why), 0);
	assert_int_equal(creds_chain_new(&f->creds, f->cfg), 0);
	memset(&ho, 0, sizeof(ho));
	assert_int_equal(http_client_new(&f->http, &ho), 0);
	http_client_set_transport(f->http, fake_transport, NULL);
	memset(&so, 0, sizeof(so));
	so.endpoint = "http://127.0.0.1:1";
	so.region = "us-east-1";
	so.service = "dynamodb";
	assert_int_equal(svc_new(&f->svc, f->http, f->creds, &so), 0);
	svc_set_sleep(f->svc, no_sleep, NULL);
	assert_int_equal(ddb_new(&f->ddb, f->svc), 0);
	ddb_set_sleep(f->ddb, no_sleep, NULL);
	memset(&co, 0, sizeof(co));
	co.ttl_ms = ttl_ms;
	co.fmt = fmt;
	co.mount_time = 1000;
	co.scan_segments = 1;
	assert_int_equal(cache_new(&f->cache, f->ddb, &co), 0);
	dbuf_free(&why);

	pthread_mutex_init(&fk.lock, NULL);
	memset(fk.pages, 0, sizeof(fk.pages));
	fk.npage = 0;
	fk.fail_status = 0;
	fk.tables = json_object();
	seen_reset();
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_ttl(state, 60000, DDBJSON_PLAIN);
}

static int setup_short(void **state)
{
	return setup_ttl(state, 50, DDBJSON_PLAIN);
}

static int setup_typed(void **state)
{
	return setup_ttl(state, 60000, DDBJSON_TYPED);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	cache_free(f->cache);
	ddb_free(f->ddb);
	svc_free(f->svc);
	http_client_free(f->http);
	creds_chain_free(f->creds);
	awscfg_free(f->cfg);
	free(f);
	seen_reset();
	json_decref(fk.tables);
	fk.tables = NULL;
	return 0;
}

static void add(const char *table, const char *item_json)
{
	json_t *it = json_loads(item_json, 0, NULL);

	assert_non_null(it);
	json_array_append_new(model_items(table), it);
}

static json_t *key1(const char *id)
{
	return json_pack("{s:{s:s}}", "id", "S", id);
}

static json_t *key2(const char *c, const char *o)
{
	return json_pack("{s:{s:s}, s:{s:s}}", "customer", "S", c, "order_id",
			 "S", o);
}

/* ---- table list (as before) ------------------------------------------------ */

static int collect(void *ctx, const char *name)
{
	struct dbuf *b = ctx;

	return dbuf_addf(b, "%s,", name);
}

static void test_lists_all_pages_once_per_ttl(void **state)
{
	struct fixture *f = *state;
	struct dbuf names;

	fk.pages[0] = "{\"TableNames\":[\"a\",\"b\"],\"LastEvaluatedTableName\":\"b\"}";
	fk.pages[1] = "{\"TableNames\":[\"c\"]}";
	dbuf_init(&names, DBUF_CAP_SMALL);
	assert_int_equal(cache_tables(f->cache, collect, &names, NULL), 0);
	assert_string_equal(dbuf_str(&names), "a,b,c,");
	assert_int_equal(seen("ListTables"), 2);

	/* Within the ttl the snapshot serves listings and lookups. */
	dbuf_reset(&names);
	assert_int_equal(cache_tables(f->cache, collect, &names, NULL), 0);
	assert_string_equal(dbuf_str(&names), "a,b,c,");
	assert_int_equal(cache_table_exists(f->cache, "c", NULL), 0);
	assert_int_equal(cache_table_exists(f->cache, "d", NULL), -ENOENT);
	assert_int_equal(seen("ListTables"), 2);
	dbuf_free(&names);
}

static void test_error_is_reported(void **state)
{
	struct fixture *f = *state;
	struct aws_err err;
	struct dbuf names;

	fk.fail_status = 400;
	dbuf_init(&names, DBUF_CAP_SMALL);
	assert_int_equal(cache_tables(f->cache, collect, &names, &err), -EACCES);
	assert_string_equal(err.type, "AccessDeniedException");
	assert_string_equal(dbuf_str(&names), "");
	dbuf_free(&names);
}

/* ---- schemas --------------------------------------------------------------- */

static void test_schema_is_described_once(void **state)
{
	struct fixture *f = *state;
	struct cache_schema s;

	assert_int_equal(cache_table_schema(f->cache, "orders", &s, NULL), 0);
	assert_string_equal(s.pk.name, "customer");
	assert_int_equal(s.pk.type, 'S');
	assert_true(s.has_sk);
	assert_string_equal(s.sk.name, "order_id");
	assert_int_equal(cache_table_schema(f->cache, "orders", &s, NULL), 0);
	assert_int_equal(seen("DescribeTable"), 1);
	assert_int_equal(cache_table_schema(f->cache, "users", &s, NULL), 0);
	assert_false(s.has_sk);
	assert_int_equal(cache_table_schema(f->cache, "nosuch", &s, NULL),
			 -ENOENT);
}

/* ---- listings and the item cache --------------------------------------------- */

struct listed {
	struct dbuf names;
	size_t sizes;
	int n;
};

static int list_cb(void *ctx, const json_t *value, const struct cache_stat *st)
{
	struct listed *l = ctx;
	const char *s = json_string_value(json_object_get(value, "S"));

	l->n++;
	l->sizes += st->size;
	return dbuf_addf(&l->names, "%s%s,", s ? s : "?", st->is_dir ? "/" : "");
}

static void test_listing_serves_stat_and_read(void **state)
{
	struct fixture *f = *state;
	struct listed l = { { 0 }, 0, 0 };
	struct cache_stat st;
	struct dbuf text;
	json_t *k = key1("a"), *k2 = key1("zz"), *item = NULL;
	int same = -1;

	add("users", "{\"id\":{\"S\":\"a\"},\"n\":{\"N\":\"1.50\"}}");
	add("users", "{\"id\":{\"S\":\"b\"}}");
	dbuf_init(&l.names, DBUF_CAP_SMALL);
	dbuf_init(&text, DBUF_CAP_SMALL);
	assert_int_equal(cache_list(f->cache, "users", NULL, list_cb, &l, NULL), 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(seen("Scan"), 1);
	assert_true(json_is_true(json_object_get(last("Scan"), "ConsistentRead")));

	/* stat, read and "no such item" come from the listing */
	assert_int_equal(cache_item_stat(f->cache, "users", k, &st, NULL), 0);
	assert_int_equal(cache_item_read(f->cache, "users", k, &text, &item,
					 &st, &same, NULL), 0);
	assert_string_equal(dbuf_str(&text), "{\n  \"id\": \"a\",\n  \"n\": 1.50\n}\n");
	assert_int_equal(st.size, dbuf_len(&text));
	assert_int_equal(st.mtime, 1000); /* unchanged since the mount */
	assert_int_equal(same, 0);       /* first read */
	assert_non_null(item);
	assert_int_equal(cache_item_stat(f->cache, "users", k2, &st, NULL),
			 -ENOENT);
	assert_int_equal(seen("GetItem"), 0);
	assert_int_equal(seen("Scan"), 1);

	/* a second read of the same text may keep the page cache */
	dbuf_reset(&text);
	assert_int_equal(cache_item_read(f->cache, "users", k, &text, NULL,
					 NULL, &same, NULL), 0);
	assert_int_equal(same, 1);

	/* and the listing itself is served once per ttl */
	assert_int_equal(cache_list(f->cache, "users", NULL, list_cb, &l, NULL), 0);
	assert_int_equal(seen("Scan"), 1);
	json_decref(item);
	json_decref(k);
	json_decref(k2);
	dbuf_free(&text);
	dbuf_free(&l.names);
}

static void test_partitions_and_queries(void **state)
{
	struct fixture *f = *state;
	struct listed l = { { 0 }, 0, 0 };
	json_t *p = json_pack("{s:s}", "S", "c1");
	json_t *p3 = json_pack("{s:s}", "S", "c3");

	add("orders", "{\"customer\":{\"S\":\"c1\"},\"order_id\":{\"S\":\"o1\"}}");
	add("orders", "{\"customer\":{\"S\":\"c1\"},\"order_id\":{\"S\":\"o2\"}}");
	add("orders", "{\"customer\":{\"S\":\"c2\"},\"order_id\":{\"S\":\"o3\"}}");
	dbuf_init(&l.names, DBUF_CAP_SMALL);
	/* the table: distinct partitions from a projected Scan */
	assert_int_equal(cache_list(f->cache, "orders", NULL, list_cb, &l, NULL), 0);
	assert_int_equal(l.n, 2);
	assert_non_null(strstr(dbuf_str(&l.names), "c1/,"));
	assert_non_null(strstr(dbuf_str(&l.names), "c2/,"));
	assert_string_equal(json_string_value(json_object_get(last("Scan"),
							      "ProjectionExpression")),
			    "#k");
	/* a partition: a Query on its key */
	l.n = 0;
	dbuf_reset(&l.names);
	assert_int_equal(cache_list(f->cache, "orders", p, list_cb, &l, NULL), 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(seen("Query"), 1);
	assert_true(json_equal(json_object_get(json_object_get(last("Query"),
			"ExpressionAttributeValues"), ":v"), p));
	/* the partition exists (known from the listing, no request) */
	assert_int_equal(cache_part_stat(f->cache, "orders", p, NULL), 0);
	assert_int_equal(cache_part_stat(f->cache, "orders", p3, NULL), -ENOENT);
	assert_int_equal(seen("Query"), 1);

	/* mkdir: local until it gets items; rmdir of a non-empty one */
	assert_int_equal(cache_part_make(f->cache, "orders", p3, NULL), 0);
	assert_int_equal(cache_part_make(f->cache, "orders", p, NULL), -EEXIST);
	assert_int_equal(cache_part_stat(f->cache, "orders", p3, NULL), 0);
	l.n = 0;
	dbuf_reset(&l.names);
	assert_int_equal(cache_list(f->cache, "orders", NULL, list_cb, &l, NULL), 0);
	assert_int_equal(l.n, 3);
	assert_non_null(strstr(dbuf_str(&l.names), "c3/,"));
	assert_int_equal(cache_part_remove(f->cache, "orders", p, NULL),
			 -ENOTEMPTY);
	assert_int_equal(cache_part_remove(f->cache, "orders", p3, NULL), 0);
	assert_int_equal(cache_part_stat(f->cache, "orders", p3, NULL), -ENOENT);
	json_decref(p);
	json_decref(p3);
	dbuf_free(&l.names);
}

static void test_mtime_moves_only_with_content(void **state)
{
	struct fixture *f = *state;
	struct cache_stat st1, st2, st3;
	json_t *k = key1("a");

	add("users", "{\"id\":{\"S\":\"a\"},\"v\":{\"N\":\"1\"}}");
	assert_int_equal(cache_item_stat(f->cache, "users", k, &st1, NULL), 0);
	assert_int_equal(st1.mtime, 1000);
	usleep(80 * 1000); /* past the 50 ms ttl */
	assert_int_equal(cache_item_stat(f->cache, "users", k, &st2, NULL), 0);
	assert_int_equal(seen("GetItem"), 2);
	assert_int_equal(st2.mtime, 1000);
	assert_true(st2.version == st1.version);
	/* another client changes it */
	json_array_clear(model_items("users"));
	add("users", "{\"id\":{\"S\":\"a\"},\"v\":{\"N\":\"2\"}}");
	usleep(80 * 1000);
	assert_int_equal(cache_item_stat(f->cache, "users", k, &st3, NULL), 0);
	assert_true(st3.mtime > 1000);
	assert_true(st3.version != st1.version);
	/* and deletes it */
	json_array_clear(model_items("users"));
	usleep(80 * 1000);
	assert_int_equal(cache_item_stat(f->cache, "users", k, &st3, NULL),
			 -ENOENT);
	json_decref(k);
}

static void test_number_keys_are_one_key(void **state)
{
	struct fixture *f = *state;
	struct listed l = { { 0 }, 0, 0 };
	struct cache_stat st;
	const char *same[] = { "1.50", "1.5", "15E-1", "0.15e1", "+1.500" };
	json_t *k;
	size_t i;

	add("nums", "{\"id\":{\"N\":\"1.5\"}}");
	/* the largest number DynamoDB holds: 9.9999999999999999999999999999999999999E+125 */
	add("nums", "{\"id\":{\"N\":\"999999999999999999999999999999999999990000000000000000000000000000000000000000000000000000000000000000000000000000000000000000\"}}");
	add("nums", "{\"id\":{\"N\":\"0.001\"}}");
	dbuf_init(&l.names, DBUF_CAP_SMALL);
	assert_int_equal(cache_list(f->cache, "nums", NULL, list_cb, &l, NULL), 0);
	assert_int_equal(l.n, 3);
	for (i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		k = json_pack("{s:{s:s}}", "id", "N", same[i]);
		assert_int_equal(cache_item_stat(f->cache, "nums", k, &st, NULL), 0);
		json_decref(k);
	}
	k = json_pack("{s:{s:s}}", "id", "N", "1E-3");
	assert_int_equal(cache_item_stat(f->cache, "nums", k, &st, NULL), 0);
	json_decref(k);
	k = json_pack("{s:{s:s}}", "id", "N", "0.01");
	assert_int_equal(cache_item_stat(f->cache, "nums", k, &st, NULL), -ENOENT);
	json_decref(k);
	assert_int_equal(seen("GetItem"), 0);
	dbuf_free(&l.names);
}

/* ---- saving ------------------------------------------------------------------- */

static void test_save_fills_key_from_name(void **state)
{
	struct fixture *f = *state;
	json_t *k = key2("c1", "o9"), *put;
	const char *text = "{\"total\": 12.50}";

	assert_int_equal(cache_item_save(f->cache, "orders", k, text,
					 strlen(text), NULL, 0, NULL, NULL), 0);
	put = json_object_get(last("PutItem"), "Item");
	assert_string_equal(json_string_value(json_object_get(json_object_get(
				    put, "customer"), "S")), "c1");
	assert_string_equal(json_string_value(json_object_get(json_object_get(
				    put, "order_id"), "S")), "o9");
	assert_string_equal(json_string_value(json_object_get(json_object_get(
				    put, "total"), "N")), "12.50");
	assert_null(json_object_get(last("PutItem"), "ConditionExpression"));
	json_decref(k);
}

static void test_save_rejects_bad_input_without_request(void **state)
{
	struct fixture *f = *state;
	json_t *k = key1("a");
	struct dbuf why, big;
	const char *mismatch = "{\"id\": \"b\", \"x\": 1}";
	const char *same = "{\"id\": \"a\", \"x\": 1}";

	dbuf_init(&why, DBUF_CAP_SMALL);
	dbuf_init(&big, DBUF_CAP_BODY);
	assert_int_equal(cache_item_save(f->cache, "users", k, mismatch,
					 strlen(mismatch), NULL, 0, &why, NULL),
			 -EINVAL);
	assert_non_null(strstr(dbuf_str(&why), "\"id\""));
	assert_non_null(strstr(dbuf_str(&why), "file name"));
	assert_int_equal(cache_item_save(f->cache, "users", k, "{bad", 4, NULL,
					 0, &why, NULL), -EINVAL);
	assert_true(dbuf_len(&why) > 0);
	assert_int_equal(cache_item_save(f->cache, "users", k, "[1]", 3, NULL,
					 0, &why, NULL), -EINVAL);
	/* empty: an error for an existing file, a key-only item for a new one */
	assert_int_equal(cache_item_save(f->cache, "users", k, " \n", 2, NULL,
					 0, &why, NULL), -EINVAL);
	assert_non_null(strstr(dbuf_str(&why), "use rm"));
	dbuf_adds(&big, "{\"s\": \"");
	while (dbuf_len(&big) < 410 * 1024)
		dbuf_adds(&big, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	dbuf_adds(&big, "\"}");
	assert_int_equal(cache_item_save(f->cache, "users", k, dbuf_str(&big),
					 dbuf_len(&big), NULL, 0, &why, NULL),
			 -EFBIG);
	assert_int_equal(fk.nseen - seen("DescribeTable"), 0);

	/* the key attribute may be given, equal to the name */
	assert_int_equal(cache_item_save(f->cache, "users", k, same,
					 strlen(same), NULL, 0, &why, NULL), 0);
	assert_int_equal(cache_item_save(f->cache, "users", k, "", 0, NULL,
					 CACHE_SAVE_NEW, &why, NULL), 0);
	assert_true(json_equal(json_object_get(last("PutItem"), "Item"), k));
	json_decref(k);
	dbuf_free(&why);
	dbuf_free(&big);
}

static void test_save_keeps_types_of_last_read(void **state)
{
	struct fixture *f = *state;
	json_t *k = key1("a"), *put;
	struct dbuf text;
	const char *edit = "{\"tags\": [\"x\", \"y\"], \"new\": [\"p\"]}";

	add("users", "{\"id\":{\"S\":\"a\"},\"tags\":{\"SS\":[\"x\"]}}");
	dbuf_init(&text, DBUF_CAP_SMALL);
	assert_int_equal(cache_item_read(f->cache, "users", k, &text, NULL,
					 NULL, NULL, NULL), 0);
	assert_int_equal(cache_item_save(f->cache, "users", k, edit,
					 strlen(edit), NULL, 0, NULL, NULL), 0);
	put = json_object_get(last("PutItem"), "Item");
	assert_non_null(json_object_get(json_object_get(put, "tags"), "SS"));
	assert_non_null(json_object_get(json_object_get(put, "new"), "L"));
	json_decref(k);
	dbuf_free(&text);
}

static void test_excl_and_delete(void **state)
{
	struct fixture *f = *state;
	json_t *k = key1("a");

	add("users", "{\"id\":{\"S\":\"a\"}}");
	assert_int_equal(cache_item_save(f->cache, "users", k, "", 0, NULL,
					 CACHE_SAVE_NEW | CACHE_SAVE_EXCL, NULL,
					 NULL), -EEXIST);
	assert_string_equal(json_string_value(json_object_get(
				    last("PutItem"), "ConditionExpression")),
			    "attribute_not_exists(#k)");
	assert_int_equal(cache_item_delete(f->cache, "users", k, NULL), 0);
	assert_int_equal(cache_item_delete(f->cache, "users", k, NULL), -ENOENT);
	assert_int_equal(cache_item_save(f->cache, "users", k, "", 0, NULL,
					 CACHE_SAVE_NEW | CACHE_SAVE_EXCL, NULL,
					 NULL), 0);
	json_decref(k);
}

/* ---- moving -------------------------------------------------------------------- */

static void test_move_is_one_transaction(void **state)
{
	struct fixture *f = *state;
	json_t *src = key2("c1", "o1"), *dst = key2("c2", "o7");
	json_t *ti, *put, *del;
	struct cache_stat st;

	add("orders", "{\"customer\":{\"S\":\"c1\"},\"order_id\":{\"S\":\"o1\"},"
		      "\"tags\":{\"SS\":[\"a\"]}}");
	assert_int_equal(cache_item_move(f->cache, "orders", src, "orders", dst,
					 0, NULL), 0);
	assert_int_equal(seen("TransactWriteItems"), 1);
	ti = json_object_get(last("TransactWriteItems"), "TransactItems");
	assert_int_equal(json_array_size(ti), 2);
	put = json_object_get(json_array_get(ti, 0), "Put");
	del = json_object_get(json_array_get(ti, 1), "Delete");
	assert_non_null(put);
	assert_non_null(del);
	assert_string_equal(json_string_value(json_object_get(put, "TableName")),
			    "orders");
	/* key attributes rewritten, the rest (types too) as it was */
	assert_true(json_equal(json_object_get(json_object_get(put, "Item"),
					       "customer"),
			       json_object_get(dst, "customer")));
	assert_true(json_equal(json_object_get(json_object_get(put, "Item"),
					       "order_id"),
			       json_object_get(dst, "order_id")));
	assert_non_null(json_object_get(json_object_get(json_object_get(
		put, "Item"), "tags"), "SS"));
	assert_null(json_object_get(put, "ConditionExpression"));
	assert_true(json_equal(json_object_get(del, "Key"), src));
	assert_string_equal(json_string_value(json_object_get(
				    del, "ConditionExpression")),
			    "attribute_exists(#k)");
	/* the cache knows without asking */
	assert_int_equal(cache_item_stat(f->cache, "orders", src, &st, NULL),
			 -ENOENT);
	assert_int_equal(seen("GetItem"), 1); /* the move's own read */

	/* NOREPLACE onto an existing item */
	add("orders", "{\"customer\":{\"S\":\"c1\"},\"order_id\":{\"S\":\"o1\"}}");
	assert_int_equal(cache_item_move(f->cache, "orders", src, "orders", dst,
					 CACHE_SAVE_EXCL, NULL), -EEXIST);
	/* schemas that differ */
	assert_int_equal(cache_item_move(f->cache, "orders", src, "users", dst,
					 0, NULL), -EXDEV);
	/* a missing source */
	json_array_clear(model_items("orders"));
	assert_int_equal(cache_item_move(f->cache, "orders", src, "orders", dst,
					 0, NULL), -ENOENT);
	json_decref(src);
	json_decref(dst);
}

/* ---- scratch files --------------------------------------------------------------- */

static int scratch_cb(void *ctx, const char *name,
		      const struct cache_scratch_stat *st)
{
	struct dbuf *b = ctx;

	return dbuf_addf(b, "%s:%zu,", name, st->size);
}

static void test_scratch_files(void **state)
{
	struct fixture *f = *state;
	struct cache_scratch *s = NULL, *s2 = NULL;
	struct cache_scratch_stat st;
	struct dbuf names;
	char buf[16];

	dbuf_init(&names, DBUF_CAP_SMALL);
	assert_int_equal(cache_scratch_open(f->cache, "/tables/t/.a.swp", 0, 0,
					    &s), -ENOENT);
	assert_int_equal(cache_scratch_open(f->cache, "/tables/t/.a.swp",
					    CACHE_SCRATCH_CREATE, 0600, &s), 0);
	assert_int_equal(cache_scratch_open(f->cache, "/tables/t/.a.swp",
					    CACHE_SCRATCH_CREATE |
						    CACHE_SCRATCH_EXCL, 0600,
					    &s2), -EEXIST);
	assert_int_equal(cache_scratch_write(s, "hello", 5, 2), 5);
	assert_int_equal(cache_scratch_read(s, buf, sizeof(buf), 0), 7);
	assert_memory_equal(buf, "\0\0hello", 7);
	assert_int_equal(cache_scratch_truncate(s, 4), 0);
	assert_int_equal(cache_scratch_stat(f->cache, "/tables/t/.a.swp", &st), 0);
	assert_int_equal(st.size, 4);
	assert_int_equal(st.mode, 0600);
	assert_int_equal(cache_scratch_count(f->cache, "/tables/t"), 1);
	assert_int_equal(cache_scratch_count(f->cache, "/tables/t/p"), 0);
	assert_int_equal(cache_scratch_rename(f->cache, "/tables/t/.a.swp",
					      "/tables/t/x~", 0), 0);
	assert_int_equal(cache_scratch_list(f->cache, "/tables/t", scratch_cb,
					    &names), 0);
	assert_string_equal(dbuf_str(&names), "x~:4,");
	/* unlinked while open: still readable through the reference */
	assert_int_equal(cache_scratch_unlink(f->cache, "/tables/t/x~"), 0);
	assert_int_equal(cache_scratch_read(s, buf, sizeof(buf), 2), 2);
	assert_int_equal(cache_scratch_count(f->cache, "/tables/t"), 0);
	cache_scratch_put(s);
	dbuf_free(&names);
}

static void test_rename_through_scratch_keeps_types(void **state)
{
	struct fixture *f = *state;
	struct cache_scratch *s = NULL;
	struct cache_scratch_stat ss;
	struct cache_stat st;
	struct dbuf why;
	json_t *k = key1("a"), *put;
	const char *edit = "{\"tags\": [\"x\", \"z\"]}";

	dbuf_init(&why, DBUF_CAP_SMALL);
	add("users", "{\"id\":{\"S\":\"a\"},\"tags\":{\"SS\":[\"x\"]}}");
	/* vim's backup: a.json -> a.json~ deletes the item ... */
	assert_int_equal(cache_item_to_scratch(f->cache, "users", k,
					       "/tables/users/a.json~", NULL), 0);
	assert_int_equal(seen("DeleteItem"), 1);
	assert_int_equal(cache_item_stat(f->cache, "users", k, &st, NULL),
			 -ENOENT);
	assert_int_equal(cache_scratch_stat(f->cache, "/tables/users/a.json~",
					    &ss),
			 0);
	/* ... and the new a.json, written from nothing, keeps SS */
	assert_int_equal(cache_item_save(f->cache, "users", k, edit,
					 strlen(edit), NULL, CACHE_SAVE_NEW,
					 &why, NULL), 0);
	put = json_object_get(last("PutItem"), "Item");
	assert_non_null(json_object_get(json_object_get(put, "tags"), "SS"));

	/* sed -i: a temporary file renamed onto the item */
	assert_int_equal(cache_scratch_open(f->cache, "/tables/users/sedX",
					    CACHE_SCRATCH_CREATE, 0644, &s), 0);
	assert_int_equal(cache_scratch_write(s, "{\"tags\":[\"q\"]}", 14, 0), 14);
	assert_int_equal(cache_scratch_save(f->cache, "/tables/users/sedX",
					    "users", k, 0, &why, NULL), 0);
	put = json_object_get(last("PutItem"), "Item");
	assert_non_null(json_object_get(json_object_get(put, "tags"), "SS"));
	assert_int_equal(cache_scratch_stat(f->cache, "/tables/users/sedX",
					    &ss),
			 -ENOENT);
	cache_scratch_put(s);

	/* a failed save keeps the scratch file */
	assert_int_equal(cache_scratch_open(f->cache, "/tables/users/sedY",
					    CACHE_SCRATCH_CREATE, 0644, &s), 0);
	assert_int_equal(cache_scratch_write(s, "{bad", 4, 0), 4);
	assert_int_equal(cache_scratch_save(f->cache, "/tables/users/sedY",
					    "users", k, 0, &why, NULL), -EINVAL);
	assert_int_equal(cache_scratch_count(f->cache, "/tables/users"), 2);
	cache_scratch_put(s);
	json_decref(k);
	dbuf_free(&why);
}

static void test_typed_format(void **state)
{
	struct fixture *f = *state;
	json_t *k = key1("a"), *put;
	struct dbuf text;
	const char *edit = "{\"b\": {\"B\": \"AAE=\"}}";

	add("users", "{\"id\":{\"S\":\"a\"},\"n\":{\"N\":\"1\"}}");
	dbuf_init(&text, DBUF_CAP_SMALL);
	assert_int_equal(cache_item_read(f->cache, "users", k, &text, NULL,
					 NULL, NULL, NULL), 0);
	assert_string_equal(dbuf_str(&text),
			    "{\n  \"id\": {\n    \"S\": \"a\"\n  },\n"
			    "  \"n\": {\n    \"N\": \"1\"\n  }\n}\n");
	assert_int_equal(cache_item_save(f->cache, "users", k, edit,
					 strlen(edit), NULL, 0, NULL, NULL), 0);
	put = json_object_get(last("PutItem"), "Item");
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(put, "b"), "B")), "AAE=");
	json_decref(k);
	dbuf_free(&text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lists_all_pages_once_per_ttl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_error_is_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_schema_is_described_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_listing_serves_stat_and_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partitions_and_queries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mtime_moves_only_with_content, setup_short, teardown),
		cmocka_unit_test_setup_teardown(test_number_keys_are_one_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_save_fills_key_from_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_save_rejects_bad_input_without_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_save_keeps_types_of_last_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_excl_and_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_move_is_one_transaction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scratch_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_through_scratch_keeps_types, setup, teardown),
		cmocka_unit_test_setup_teardown(test_typed_format, setup_typed, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
