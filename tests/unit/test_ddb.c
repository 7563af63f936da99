/* ddb against a fake transport: every request is captured (method, URL,
 * headers, body as JSON) and answered from a queue of canned responses or
 * by a responder function, so no network is used.  The real http client,
 * svc (signing, retries, x-amz-crc32) and awserr run underneath. */
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
#include <zlib.h>

#include "backend/awscfg.h"
#include "backend/creds.h"
#include "backend/ddb.h"
#include "tests/testutil.h"
#include "backend/http.h"
#include "backend/svc.h"

#define ENDPOINT "https://dynamodb.us-east-1.amazonaws.com"
#define MAX_SEEN 512
#define MAX_QUEUE 64

enum { CRC_NONE, CRC_GOOD, CRC_BAD };

struct seen {
	char *method;
	char *url;
	char *target;
	char *ctype;
	int signed_;  /* an authorization header was present */
	char *raw;    /* body bytes */
	json_t *body; /* body parsed */
};

struct canned {
	long status;
	char *body;
	int crc;
};

struct fake;
/* Answer a request dynamically: set *status and *body (malloc'd). */
typedef void (*responder_fn)(struct fake *f, const char *target, json_t *req,
			     long *status, char **body);

struct fake {
	pthread_mutex_t lock;
	struct seen seen[MAX_SEEN];
	size_t nseen;
	struct canned q[MAX_QUEUE];
	size_t nq, next;
	responder_fn respond;
	void *rctx;
	unsigned sleeps[256]; /* ddb's own sleeps */
	size_t nsleeps;
	unsigned long long slept_ms;
};

struct env {
	struct fake fake;
	struct awscfg *cfg;
	struct creds_chain *chain;
	struct http_client *http;
	struct svc *svc;
	struct ddb *ddb;
};

/* ---- the fake transport ------------------------------------------------ */

static char *xstrdup(const char *s)
{
	char *p = strdup(s ? s : "");

	assert_non_null(p);
	return p;
}

static int fake_transport(void *ctx, const struct http_request *req,
			  struct http_response *resp)
{
	struct fake *f = ctx;
	struct seen *s;
	json_t *body;
	long status = 500;
	char *text = NULL;
	int crc = CRC_GOOD;
	size_t i;
	int rc = 0;

	body = json_loadb(req->body, req->body_len, JSON_ALLOW_NUL, NULL);
	pthread_mutex_lock(&f->lock);
	if (f->nseen >= MAX_SEEN) {
		pthread_mutex_unlock(&f->lock);
		json_decref(body);
		return -ECONNREFUSED;
	}
	s = &f->seen[f->nseen++];
	s->method = xstrdup(req->method);
	s->url = xstrdup(req->url);
	s->raw = calloc(1, req->body_len + 1);
	assert_non_null(s->raw);
	memcpy(s->raw, req->body, req->body_len);
	s->body = body;
	for (i = 0; i < req->nheaders; i++) {
		const struct http_header *h = &req->headers[i];

		if (!strcasecmp(h->name, "x-amz-target"))
			s->target = xstrdup(h->value);
		else if (!strcasecmp(h->name, "content-type"))
			s->ctype = xstrdup(h->value);
		else if (!strcasecmp(h->name, "authorization"))
			s->signed_ = 1;
	}
	if (f->respond) {
		f->respond(f, s->target, body, &status, &text);
	} else if (f->next < f->nq) {
		status = f->q[f->next].status;
		text = xstrdup(f->q[f->next].body);
		crc = f->q[f->next].crc;
		f->next++;
	} else {
		rc = -ECONNREFUSED; /* nothing queued: a test bug */
	}
	pthread_mutex_unlock(&f->lock);
	if (rc)
		return rc;

	resp->status = status;
	assert_int_equal(dbuf_adds(&resp->headers,
				   "content-type: application/x-amz-json-1.0\r\n"
				   "x-amzn-RequestId: TESTREQUESTID\r\n"), 0);
	if (crc != CRC_NONE) {
		unsigned long c = crc32(0L, (const Bytef *)text,
					(uInt)strlen(text));

		if (crc == CRC_BAD)
			c ^= 0x5a5a;
		assert_int_equal(dbuf_addf(&resp->headers,
					   "x-amz-crc32: %lu\r\n", c), 0);
	}
	assert_int_equal(dbuf_adds(&resp->body, text), 0);
	free(text);
	return 0;
}

static void push_crc(struct env *e, long status, int crc, const char *body)
{
	struct fake *f = &e->fake;

	assert_true(f->nq < MAX_QUEUE);
	f->q[f->nq].status = status;
	f->q[f->nq].body = xstrdup(body);
	f->q[f->nq].crc = crc;
	f->nq++;
}

static void push(struct env *e, long status, const char *body)
{
	push_crc(e, status, CRC_GOOD, body);
}

static void no_sleep(void *ctx, unsigned ms)
{
	(void)ctx;
	(void)ms;
}

static void record_sleep(void *ctx, unsigned ms)
{
	struct fake *f = ctx;

	pthread_mutex_lock(&f->lock);
	if (f->nsleeps < sizeof(f->sleeps) / sizeof(f->sleeps[0]))
		f->sleeps[f->nsleeps++] = ms;
	f->slept_ms += ms;
	pthread_mutex_unlock(&f->lock);
}

static int setup(void **state)
{
	struct http_opts hopts;
	struct svc_opts sopts;
	struct dbuf why;
	struct env *e;

	e = calloc(1, sizeof(*e));
	assert_non_null(e);
	pthread_mutex_init(&e->fake.lock, NULL);
	/* Only the environment's keys: no profile files are read. */
	setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_PROFILE");
	setenv("AWS_CONFIG_FILE", "/nonexistent/dynfs-test/config", 1);
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/dynfs-test/creds", 1);
	dbuf_init(&why, DBUF_CAP_SMALL);
	assert_int_equal(awscfg_load(&e->cfg, NULL, &why), 0);
	dbuf_free(&why);
	assert_int_equal(creds_chain_new(&e->chain, e->cfg), 0);
	memset(&hopts, 0, sizeof(hopts));
	assert_int_equal(http_client_new(&e->http, &hopts), 0);
	http_client_set_transport(e->http, fake_transport, &e->fake);
	memset(&sopts, 0, sizeof(sopts));
	sopts.endpoint = ENDPOINT;
	sopts.region = "us-east-1";
	sopts.service = "dynamodb";
	sopts.flags = SVC_CHECK_CRC32;
	assert_int_equal(svc_new(&e->svc, e->http, e->chain, &sopts), 0);
	svc_set_sleep(e->svc, no_sleep, NULL);
	assert_int_equal(ddb_new(&e->ddb, e->svc), 0);
	ddb_set_sleep(e->ddb, record_sleep, &e->fake);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	size_t i;

	ddb_free(e->ddb);
	svc_free(e->svc);
	http_client_free(e->http);
	creds_chain_free(e->chain);
	awscfg_free(e->cfg);
	for (i = 0; i < e->fake.nseen; i++) {
		struct seen *s = &e->fake.seen[i];

		free(s->method);
		free(s->url);
		free(s->target);
		free(s->ctype);
		free(s->raw);
		json_decref(s->body);
	}
	for (i = 0; i < e->fake.nq; i++)
		free(e->fake.q[i].body);
	pthread_mutex_destroy(&e->fake.lock);
	free(e);
	return 0;
}

/* ---- helpers ----------------------------------------------------------- */


static void assert_json(json_t *got, const char *want_text)
{
	json_t *want = tu_json(want_text);

	if (!json_equal(got, want)) {
		char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
		char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);

		print_error("got  %s\nwant %s\n", g ? g : "(null)",
			    w ? w : "(null)");
		free(g);
		free(w);
		json_decref(want);
		fail();
	}
	json_decref(want);
}

/* Request n was op, well formed and signed, with body want (JSON). */
static void assert_req(struct env *e, size_t n, const char *op,
		       const char *want)
{
	struct seen *s;
	char target[128];

	assert_true(n < e->fake.nseen);
	s = &e->fake.seen[n];
	snprintf(target, sizeof(target), "DynamoDB_20120810.%s", op);
	assert_string_equal(s->method, "POST");
	assert_string_equal(s->url, ENDPOINT "/");
	assert_non_null(s->target);
	assert_string_equal(s->target, target);
	assert_non_null(s->ctype);
	assert_string_equal(s->ctype, "application/x-amz-json-1.0");
	assert_true(s->signed_);
	assert_non_null(s->body);
	/* Compact: no blank after ':' or ','. */
	assert_null(strstr(s->raw, "\": "));
	assert_null(strstr(s->raw, ", \""));
	if (want)
		assert_json(s->body, want);
}

/* ---- ListTables --------------------------------------------------------- */

struct names {
	char all[256];
	int stop_at; /* stop with 42 at this many names (0: never) */
	int n;
};

static int collect_name(void *ctx, const char *name)
{
	struct names *nm = ctx;

	strncat(nm->all, name, sizeof(nm->all) - strlen(nm->all) - 2);
	strcat(nm->all, ",");
	nm->n++;
	return nm->stop_at && nm->n == nm->stop_at ? 42 : 0;
}

static void test_list_tables_paginates(void **state)
{
	struct env *e = *state;
	struct names nm;
	struct aws_err err;

	memset(&nm, 0, sizeof(nm));
	push(e, 200, "{\"TableNames\":[\"a\",\"b\"],\"LastEvaluatedTableName\":\"b\"}");
	push(e, 200, "{\"TableNames\":[\"c\"],\"LastEvaluatedTableName\":\"c\"}");
	push(e, 200, "{\"TableNames\":[]}");
	assert_int_equal(ddb_list_tables(e->ddb, 0, collect_name, &nm, &err), 0);
	assert_string_equal(nm.all, "a,b,c,");
	assert_int_equal(e->fake.nseen, 3);
	assert_req(e, 0, "ListTables", "{}");
	assert_req(e, 1, "ListTables", "{\"ExclusiveStartTableName\":\"b\"}");
	assert_req(e, 2, "ListTables", "{\"ExclusiveStartTableName\":\"c\"}");
}

static void test_list_tables_limit_reads_one_page(void **state)
{
	struct env *e = *state;
	struct names nm;

	memset(&nm, 0, sizeof(nm));
	push(e, 200, "{\"TableNames\":[\"a\"],\"LastEvaluatedTableName\":\"a\"}");
	assert_int_equal(ddb_list_tables(e->ddb, 1, collect_name, &nm, NULL), 0);
	assert_string_equal(nm.all, "a,");
	assert_int_equal(e->fake.nseen, 1);
	assert_req(e, 0, "ListTables", "{\"Limit\":1}");
}

static void test_list_tables_cb_stops(void **state)
{
	struct env *e = *state;
	struct names nm;

	memset(&nm, 0, sizeof(nm));
	nm.stop_at = 2;
	push(e, 200, "{\"TableNames\":[\"a\",\"b\",\"c\"],\"LastEvaluatedTableName\":\"c\"}");
	assert_int_equal(ddb_list_tables(e->ddb, 0, collect_name, &nm, NULL), 42);
	assert_string_equal(nm.all, "a,b,");
	assert_int_equal(e->fake.nseen, 1);
}

/* ---- tables ------------------------------------------------------------- */

static char *fixture(const char *name)
{
	const char *dir = getenv("DYNFS_FIXTURES");
	char path[1024];
	FILE *fp;
	char *buf;
	long n;

	/* meson sets DYNFS_FIXTURES; run by hand from the source root, the
	 * relative path works. */
	if (!dir)
		dir = "tests/fixtures";
	snprintf(path, sizeof(path), "%s/ddb/%s", dir, name);
	fp = fopen(path, "rb");
	if (!fp)
		fail_msg("cannot open fixture %s", path);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	n = ftell(fp);
	assert_true(n > 0);
	rewind(fp);
	buf = calloc(1, (size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	return buf;
}

static void test_describe_table(void **state)
{
	struct env *e = *state;
	struct aws_err err;
	json_t *t = NULL;
	char *fx = fixture("describe-table.json");

	push(e, 200, fx);
	free(fx);
	assert_int_equal(ddb_describe_table(e->ddb, "files", &t, &err), 0);
	assert_req(e, 0, "DescribeTable", "{\"TableName\":\"files\"}");
	assert_string_equal(json_string_value(json_object_get(t, "TableName")),
			    "files");
	assert_string_equal(json_string_value(json_object_get(t, "TableStatus")),
			    "ACTIVE");
	assert_true(json_is_array(json_object_get(t, "KeySchema")));
	json_decref(t);
}

static void test_describe_missing_table(void **state)
{
	struct env *e = *state;
	struct aws_err err;
	json_t *t = (json_t *)&err; /* must be reset to NULL */
	char *fx = fixture("resource-not-found.json");

	push(e, 400, fx);
	free(fx);
	assert_int_equal(ddb_describe_table(e->ddb, "nope", &t, &err), -ENOENT);
	assert_null(t);
	assert_string_equal(err.type, "ResourceNotFoundException");
	assert_int_equal(err.status, 400);
	assert_string_equal(err.request_id, "TESTREQUESTID");
	/* not retried */
	assert_int_equal(e->fake.nseen, 1);
}

static void test_create_delete_table(void **state)
{
	struct env *e = *state;
	json_t *req, *desc = NULL;
	const char *create =
		"{\"TableName\":\"t\",\"BillingMode\":\"PAY_PER_REQUEST\","
		"\"AttributeDefinitions\":[{\"AttributeName\":\"pk\",\"AttributeType\":\"S\"}],"
		"\"KeySchema\":[{\"AttributeName\":\"pk\",\"KeyType\":\"HASH\"}]}";

	push(e, 200, "{\"TableDescription\":{\"TableName\":\"t\",\"TableStatus\":\"CREATING\"}}");
	push(e, 200, "{\"TableDescription\":{\"TableName\":\"t\",\"TableStatus\":\"DELETING\"}}");
	req = tu_json(create);
	assert_int_equal(ddb_create_table(e->ddb, req, &desc, NULL), 0);
	assert_req(e, 0, "CreateTable", create);
	assert_string_equal(json_string_value(json_object_get(desc, "TableStatus")),
			    "CREATING");
	json_decref(desc);
	json_decref(req);
	assert_int_equal(ddb_delete_table(e->ddb, "t", NULL), 0);
	assert_req(e, 1, "DeleteTable", "{\"TableName\":\"t\"}");
}

static void test_wait_table_active(void **state)
{
	struct env *e = *state;

	push(e, 400, "{\"__type\":\"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException\",\"message\":\"not yet\"}");
	push(e, 200, "{\"Table\":{\"TableName\":\"t\",\"TableStatus\":\"CREATING\"}}");
	push(e, 200, "{\"Table\":{\"TableName\":\"t\",\"TableStatus\":\"ACTIVE\"}}");
	assert_int_equal(ddb_wait_table(e->ddb, "t", 0, 60000, NULL), 0);
	assert_int_equal(e->fake.nseen, 3);
	assert_int_equal(e->fake.nsleeps, 2);
	assert_int_equal(e->fake.sleeps[0], 100);
	assert_int_equal(e->fake.sleeps[1], 200);
}

static void test_wait_table_gone(void **state)
{
	struct env *e = *state;

	push(e, 200, "{\"Table\":{\"TableName\":\"t\",\"TableStatus\":\"DELETING\"}}");
	push(e, 400, "{\"__type\":\"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException\",\"message\":\"gone\"}");
	assert_int_equal(ddb_wait_table(e->ddb, "t", 1, 60000, NULL), 0);
	assert_int_equal(e->fake.nseen, 2);
}

static void table_creating(struct fake *f, const char *target, json_t *req,
			   long *status, char **body)
{
	(void)f;
	(void)target;
	(void)req;
	*status = 200;
	*body = xstrdup("{\"Table\":{\"TableName\":\"t\",\"TableStatus\":\"CREATING\"}}");
}

static void test_wait_table_times_out(void **state)
{
	struct env *e = *state;
	struct aws_err err;

	e->fake.respond = table_creating;
	assert_int_equal(ddb_wait_table(e->ddb, "t", 0, 1000, &err), -ETIMEDOUT);
	/* 100 + 200 + 400 + 300 (the rest) when requests take no time; a
	 * slow run (valgrind) counts the real clock too and sleeps less */
	assert_true(e->fake.slept_ms <= 1000);
	assert_true(e->fake.nseen >= 2 && e->fake.nseen <= 6);
	assert_non_null(strstr(err.message, "not ACTIVE"));
}

/* ---- items -------------------------------------------------------------- */

static void test_get_item(void **state)
{
	struct env *e = *state;
	json_t *key = tu_json("{\"pk\":{\"S\":\"a\"}}"), *item = NULL;

	push(e, 200, "{\"Item\":{\"pk\":{\"S\":\"a\"},\"v\":{\"B\":\"AAEC\"},\"n\":{\"N\":\"12.50\"}}}");
	assert_int_equal(ddb_get_item(e->ddb, "t", key, 1, &item, NULL), 0);
	assert_req(e, 0, "GetItem",
		   "{\"TableName\":\"t\",\"Key\":{\"pk\":{\"S\":\"a\"}},\"ConsistentRead\":true}");
	assert_json(item, "{\"pk\":{\"S\":\"a\"},\"v\":{\"B\":\"AAEC\"},\"n\":{\"N\":\"12.50\"}}");
	json_decref(item);

	/* eventually consistent read, and no such item */
	push(e, 200, "{}");
	item = (json_t *)key;
	assert_int_equal(ddb_get_item(e->ddb, "t", key, 0, &item, NULL), -ENOENT);
	assert_null(item);
	assert_req(e, 1, "GetItem",
		   "{\"TableName\":\"t\",\"Key\":{\"pk\":{\"S\":\"a\"}},\"ConsistentRead\":false}");
	json_decref(key);
}

static void test_put_item_conditional(void **state)
{
	struct env *e = *state;
	struct ddb_cond cond;
	struct aws_err err;
	json_t *item = tu_json("{\"pk\":{\"S\":\"a\"},\"ver\":{\"N\":\"2\"}}");
	char *fx = fixture("conditional-check-failed.json");

	cond.expr = "attribute_not_exists(#p) OR #v = :old";
	cond.names = tu_json("{\"#p\":\"pk\",\"#v\":\"ver\"}");
	cond.values = tu_json("{\":old\":{\"N\":\"1\"}}");
	push(e, 200, "{}");
	push(e, 400, fx);
	free(fx);
	assert_int_equal(ddb_put_item(e->ddb, "t", item, &cond, &err), 0);
	assert_req(e, 0, "PutItem",
		   "{\"TableName\":\"t\",\"Item\":{\"pk\":{\"S\":\"a\"},\"ver\":{\"N\":\"2\"}},"
		   "\"ConditionExpression\":\"attribute_not_exists(#p) OR #v = :old\","
		   "\"ExpressionAttributeNames\":{\"#p\":\"pk\",\"#v\":\"ver\"},"
		   "\"ExpressionAttributeValues\":{\":old\":{\"N\":\"1\"}}}");
	assert_int_equal(ddb_put_item(e->ddb, "t", item, &cond, &err), -ESTALE);
	assert_string_equal(err.type, "ConditionalCheckFailedException");
	assert_int_equal(e->fake.nseen, 2);
	/* the caller's objects are untouched */
	assert_json(item, "{\"pk\":{\"S\":\"a\"},\"ver\":{\"N\":\"2\"}}");
	json_decref(cond.names);
	json_decref(cond.values);
	json_decref(item);
}

static void test_put_and_delete_unconditional(void **state)
{
	struct env *e = *state;
	struct ddb_cond none = { NULL, NULL, NULL };
	json_t *item = tu_json("{\"pk\":{\"S\":\"a\"}}");

	push(e, 200, "{}");
	push(e, 200, "{}");
	push(e, 200, "{}");
	assert_int_equal(ddb_put_item(e->ddb, "t", item, NULL, NULL), 0);
	assert_req(e, 0, "PutItem", "{\"TableName\":\"t\",\"Item\":{\"pk\":{\"S\":\"a\"}}}");
	assert_int_equal(ddb_delete_item(e->ddb, "t", item, &none, NULL), 0);
	assert_req(e, 1, "DeleteItem", "{\"TableName\":\"t\",\"Key\":{\"pk\":{\"S\":\"a\"}}}");
	/* a condition without names or values sends only the expression */
	none.expr = "attribute_exists(pk)";
	none.names = tu_json("{}");
	assert_int_equal(ddb_delete_item(e->ddb, "t", item, &none, NULL), 0);
	assert_req(e, 2, "DeleteItem",
		   "{\"TableName\":\"t\",\"Key\":{\"pk\":{\"S\":\"a\"}},"
		   "\"ConditionExpression\":\"attribute_exists(pk)\"}");
	json_decref(none.names);
	json_decref(item);
}

static void test_update_item(void **state)
{
	struct env *e = *state;
	const char *reqtext =
		"{\"TableName\":\"t\",\"Key\":{\"pk\":{\"S\":\"a\"}},"
		"\"UpdateExpression\":\"SET n = n + :one\","
		"\"ExpressionAttributeValues\":{\":one\":{\"N\":\"1\"}},"
		"\"ReturnValues\":\"UPDATED_NEW\"}";
	json_t *req = tu_json(reqtext), *attrs = NULL;

	push(e, 200, "{\"Attributes\":{\"n\":{\"N\":\"8\"}}}");
	push(e, 200, "{}");
	assert_int_equal(ddb_update_item(e->ddb, req, &attrs, NULL), 0);
	assert_req(e, 0, "UpdateItem", reqtext);
	assert_json(attrs, "{\"n\":{\"N\":\"8\"}}");
	json_decref(attrs);
	attrs = req;
	assert_int_equal(ddb_update_item(e->ddb, req, &attrs, NULL), 0);
	assert_null(attrs);
	json_decref(req);
}

/* The 38 digits of DynamoDB's precision and its smallest exponent cross
 * put and get byte for byte: nothing parses N values. */
#define BIG_N "12345678901234567890123456789012345678"
#define TINY_N "-1.0000000000000000000000000000000000001E-130"

static void test_numbers_untouched(void **state)
{
	struct env *e = *state;
	const char *itemtext = "{\"pk\":{\"S\":\"n\"},\"big\":{\"N\":\"" BIG_N
			       "\"},\"tiny\":{\"N\":\"" TINY_N "\"},"
			       "\"ns\":{\"NS\":[\"" BIG_N "\",\"" TINY_N "\"]}}";
	json_t *item = tu_json(itemtext), *key = tu_json("{\"pk\":{\"S\":\"n\"}}"), *got = NULL;
	char resp[512];

	push(e, 200, "{}");
	snprintf(resp, sizeof(resp), "{\"Item\":%s}", itemtext);
	push(e, 200, resp);
	assert_int_equal(ddb_put_item(e->ddb, "t", item, NULL, NULL), 0);
	/* the wire bytes hold the digits exactly */
	assert_non_null(strstr(e->fake.seen[0].raw, "\"big\":{\"N\":\"" BIG_N "\"}"));
	assert_non_null(strstr(e->fake.seen[0].raw, "\"tiny\":{\"N\":\"" TINY_N "\"}"));
	assert_int_equal(ddb_get_item(e->ddb, "t", key, 1, &got, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(got, "big"), "N")), BIG_N);
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(got, "tiny"), "N")), TINY_N);
	assert_true(json_equal(got, item));
	json_decref(got);
	json_decref(key);
	json_decref(item);
}

/* A string holding NUL, as another writer may store, does not make the
 * response unreadable. */
static void test_nul_in_string(void **state)
{
	struct env *e = *state;
	json_t *key = tu_json("{\"pk\":{\"S\":\"a\"}}"), *item = NULL;
	json_t *s;

	push(e, 200, "{\"Item\":{\"pk\":{\"S\":\"a\"},\"x\":{\"S\":\"a\\u0000b\"}}}");
	assert_int_equal(ddb_get_item(e->ddb, "t", key, 1, &item, NULL), 0);
	s = json_object_get(json_object_get(item, "x"), "S");
	assert_int_equal(json_string_length(s), 3);
	assert_memory_equal(json_string_value(s), "a\0b", 3);
	json_decref(item);
	json_decref(key);
}

/* ---- Query and Scan ----------------------------------------------------- */

struct pages {
	int npages;
	int nitems;
	int stop_at_page; /* 0: never */
};

static int count_page(void *ctx, json_t *items)
{
	struct pages *p = ctx;

	p->npages++;
	p->nitems += (int)json_array_size(items);
	return p->stop_at_page && p->npages == p->stop_at_page ? 7 : 0;
}

static void test_query_paginates(void **state)
{
	struct env *e = *state;
	const char *reqtext =
		"{\"TableName\":\"t\",\"KeyConditionExpression\":\"pk = :p\","
		"\"ExpressionAttributeValues\":{\":p\":{\"S\":\"dir\"}},\"Limit\":2}";
	json_t *req = tu_json(reqtext);
	struct pages p;

	memset(&p, 0, sizeof(p));
	push(e, 200, "{\"Items\":[{\"pk\":{\"S\":\"dir\"},\"sk\":{\"S\":\"a\"}},{\"pk\":{\"S\":\"dir\"},\"sk\":{\"S\":\"b\"}}],"
		     "\"Count\":2,\"ScannedCount\":2,"
		     "\"LastEvaluatedKey\":{\"pk\":{\"S\":\"dir\"},\"sk\":{\"S\":\"b\"}}}");
	push(e, 200, "{\"Items\":[{\"pk\":{\"S\":\"dir\"},\"sk\":{\"S\":\"c\"}},{\"pk\":{\"S\":\"dir\"},\"sk\":{\"S\":\"d\"}}],"
		     "\"Count\":2,\"ScannedCount\":2,"
		     "\"LastEvaluatedKey\":{\"pk\":{\"S\":\"dir\"},\"sk\":{\"S\":\"d\"}}}");
	push(e, 200, "{\"Items\":[],\"Count\":0,\"ScannedCount\":0}");
	assert_int_equal(ddb_query(e->ddb, req, count_page, &p, NULL), 0);
	assert_int_equal(p.npages, 3);
	assert_int_equal(p.nitems, 4);
	assert_req(e, 0, "Query", reqtext);
	assert_req(e, 1, "Query",
		   "{\"TableName\":\"t\",\"KeyConditionExpression\":\"pk = :p\","
		   "\"ExpressionAttributeValues\":{\":p\":{\"S\":\"dir\"}},\"Limit\":2,"
		   "\"ExclusiveStartKey\":{\"pk\":{\"S\":\"dir\"},\"sk\":{\"S\":\"b\"}}}");
	assert_json(json_object_get(e->fake.seen[2].body, "ExclusiveStartKey"),
		    "{\"pk\":{\"S\":\"dir\"},\"sk\":{\"S\":\"d\"}}");
	/* the caller's request is untouched */
	assert_json(req, reqtext);
	json_decref(req);
}

static void test_query_cb_stops(void **state)
{
	struct env *e = *state;
	json_t *req = tu_json("{\"TableName\":\"t\"}");
	struct pages p;

	memset(&p, 0, sizeof(p));
	p.stop_at_page = 1;
	push(e, 200, "{\"Items\":[{\"pk\":{\"S\":\"a\"}}],\"LastEvaluatedKey\":{\"pk\":{\"S\":\"a\"}}}");
	assert_int_equal(ddb_query(e->ddb, req, count_page, &p, NULL), 7);
	assert_int_equal(e->fake.nseen, 1);
	json_decref(req);
}

static void test_scan_serial_paginates(void **state)
{
	struct env *e = *state;
	json_t *req = tu_json("{\"TableName\":\"t\",\"Limit\":1}");
	struct pages p;

	memset(&p, 0, sizeof(p));
	push(e, 200, "{\"Items\":[{\"pk\":{\"S\":\"a\"}}],\"LastEvaluatedKey\":{\"pk\":{\"S\":\"a\"}}}");
	push(e, 200, "{\"Items\":[{\"pk\":{\"S\":\"b\"}}],\"LastEvaluatedKey\":{\"pk\":{\"S\":\"b\"}}}");
	push(e, 200, "{\"Items\":[]}");
	assert_int_equal(ddb_scan(e->ddb, req, 1, count_page, &p, NULL), 0);
	assert_int_equal(p.npages, 3);
	assert_int_equal(p.nitems, 2);
	assert_req(e, 0, "Scan", "{\"TableName\":\"t\",\"Limit\":1}");
	assert_req(e, 1, "Scan", "{\"TableName\":\"t\",\"Limit\":1,\"ExclusiveStartKey\":{\"pk\":{\"S\":\"a\"}}}");
	assert_req(e, 2, "Scan", "{\"TableName\":\"t\",\"Limit\":1,\"ExclusiveStartKey\":{\"pk\":{\"S\":\"b\"}}}");
	json_decref(req);
}

/* Parallel scan: segment s has 3 pages of 5 items, item ids
 * s*1000 + page*10 + i, the page found from ExclusiveStartKey. */
#define SEGS 4
#define PAGES 3
#define PER_PAGE 5

struct scan_rec {
	int seen[SEGS * 1000];
	int in_cb;
	int concurrent;
	int fail_segment; /* -1: none */
	int endless;      /* pages never end by themselves */
	int calls;
	int bad;          /* a malformed request or item was seen */
};

static void scan_responder(struct fake *f, const char *target, json_t *req,
			   long *status, char **body)
{
	struct scan_rec *r = f->rctx;
	json_t *resp, *items, *esk;
	long long seg, total, page = 0, i, id = 0;

	/* This runs on the segments' threads: no cmocka asserts here. */
	seg = json_integer_value(json_object_get(req, "Segment"));
	total = json_integer_value(json_object_get(req, "TotalSegments"));
	if (strcmp(target, "DynamoDB_20120810.Scan") || total != SEGS ||
	    seg < 0 || seg >= SEGS) {
		r->bad = 1;
		seg = 0;
	}
	if (seg == r->fail_segment) {
		*status = 400;
		*body = xstrdup("{\"__type\":\"com.amazon.coral.validate#ValidationException\",\"message\":\"segment broke\"}");
		return;
	}
	esk = json_object_get(json_object_get(req, "ExclusiveStartKey"), "id");
	if (esk)
		page = ((atoll(json_string_value(json_object_get(esk, "N"))) % 1000) / 10 + 1) % 50;
	resp = json_object();
	items = json_array();
	for (i = 0; i < PER_PAGE; i++) {
		char n[32];

		id = seg * 1000 + page * 10 + i;
		snprintf(n, sizeof(n), "%lld", id);
		json_array_append_new(items, json_pack("{s:{s:s}}", "id", "N", n));
	}
	json_object_set_new(resp, "Items", items);
	if (page + 1 < PAGES || r->endless) {
		char n[32];

		snprintf(n, sizeof(n), "%lld", id);
		json_object_set_new(resp, "LastEvaluatedKey",
				    json_pack("{s:{s:s}}", "id", "N", n));
	}
	*status = 200;
	*body = json_dumps(resp, JSON_COMPACT);
	json_decref(resp);
}

static int scan_cb(void *ctx, json_t *items)
{
	struct scan_rec *r = ctx;
	json_t *it;
	size_t i;

	if (__atomic_add_fetch(&r->in_cb, 1, __ATOMIC_SEQ_CST) != 1)
		r->concurrent = 1;
	usleep(500); /* widen the window for overlap */
	r->calls++;
	json_array_foreach(items, i, it) {
		long long id = atoll(json_string_value(
			json_object_get(json_object_get(it, "id"), "N")));
		long long seg = id / 1000, rest = id % 1000;

		if (seg < 0 || seg >= SEGS)
			r->bad = 1;
		else
			r->seen[seg * 1000 + rest]++;
	}
	__atomic_sub_fetch(&r->in_cb, 1, __ATOMIC_SEQ_CST);
	return 0;
}

static void test_scan_parallel(void **state)
{
	struct env *e = *state;
	json_t *req = tu_json("{\"TableName\":\"t\"}");
	struct scan_rec *r = calloc(1, sizeof(*r));
	int s, p, i;

	assert_non_null(r);
	r->fail_segment = -1;
	e->fake.respond = scan_responder;
	e->fake.rctx = r;
	assert_int_equal(ddb_scan(e->ddb, req, SEGS, scan_cb, r, NULL), 0);
	assert_int_equal(e->fake.nseen, SEGS * PAGES);
	assert_int_equal(r->calls, SEGS * PAGES);
	assert_false(r->concurrent);
	assert_false(r->bad);
	for (s = 0; s < SEGS; s++)
		for (p = 0; p < PAGES; p++)
			for (i = 0; i < PER_PAGE; i++)
				assert_int_equal(r->seen[s * 1000 + p * 10 + i], 1);
	/* the caller's request is untouched */
	assert_json(req, "{\"TableName\":\"t\"}");
	json_decref(req);
	free(r);
}

static void test_scan_parallel_error_stops_all(void **state)
{
	struct env *e = *state;
	json_t *req = tu_json("{\"TableName\":\"t\"}");
	struct scan_rec *r = calloc(1, sizeof(*r));
	struct aws_err err;

	assert_non_null(r);
	r->fail_segment = 2;
	r->endless = 1; /* the others would never end by themselves */
	e->fake.respond = scan_responder;
	e->fake.rctx = r;
	assert_int_equal(ddb_scan(e->ddb, req, SEGS, scan_cb, r, &err), -EINVAL);
	assert_string_equal(err.type, "ValidationException");
	assert_string_equal(err.message, "segment broke");
	/* the other segments stopped although their pages never end */
	assert_true(e->fake.nseen < MAX_SEEN);
	assert_false(r->concurrent);
	assert_false(r->bad);
	json_decref(req);
	free(r);
}

static int scan_cb_fail(void *ctx, json_t *items)
{
	int *calls = ctx;

	(void)items;
	__atomic_add_fetch(calls, 1, __ATOMIC_SEQ_CST);
	return -EXDEV;
}

static void test_scan_parallel_cb_stops_all(void **state)
{
	struct env *e = *state;
	json_t *req = tu_json("{\"TableName\":\"t\"}");
	struct scan_rec *r = calloc(1, sizeof(*r));
	int calls = 0;

	assert_non_null(r);
	r->fail_segment = -1;
	r->endless = 1;
	e->fake.respond = scan_responder;
	e->fake.rctx = r;
	assert_int_equal(ddb_scan(e->ddb, req, SEGS, scan_cb_fail, &calls, NULL),
			 -EXDEV);
	/* once cb said stop, it is never called again */
	assert_int_equal(calls, 1);
	json_decref(req);
	free(r);
}

/* ---- batches ------------------------------------------------------------ */

static json_t *keys_n(int n)
{
	json_t *a = json_array();
	int i;

	for (i = 0; i < n; i++) {
		char s[16];

		snprintf(s, sizeof(s), "k%d", i);
		json_array_append_new(a, json_pack("{s:{s:s}}", "pk", "S", s));
	}
	return a;
}

static int count_item(void *ctx, json_t *item)
{
	int *n = ctx;

	assert_true(json_is_object(json_object_get(item, "pk")));
	(*n)++;
	return 0;
}

static void test_batch_get_chunks_and_retries(void **state)
{
	struct env *e = *state;
	json_t *keys = keys_n(250), *sent;
	int found = 0;
	size_t i;

	/* chunk 1: two found, k5 and k6 unprocessed, then found */
	push(e, 200, "{\"Responses\":{\"t\":[{\"pk\":{\"S\":\"k0\"}},{\"pk\":{\"S\":\"k1\"}}]},"
		     "\"UnprocessedKeys\":{\"t\":{\"Keys\":[{\"pk\":{\"S\":\"k5\"}},{\"pk\":{\"S\":\"k6\"}}],\"ConsistentRead\":true}}}");
	push(e, 200, "{\"Responses\":{\"t\":[{\"pk\":{\"S\":\"k5\"}}]},\"UnprocessedKeys\":{}}");
	/* chunk 2 and 3 */
	push(e, 200, "{\"Responses\":{\"t\":[{\"pk\":{\"S\":\"k100\"}}]},\"UnprocessedKeys\":{}}");
	push(e, 200, "{\"Responses\":{\"t\":[]}}");
	assert_int_equal(ddb_batch_get(e->ddb, "t", keys, 1, count_item, &found, NULL), 0);
	assert_int_equal(found, 4);
	assert_int_equal(e->fake.nseen, 4);
	assert_req(e, 0, "BatchGetItem", NULL);
	sent = json_object_get(json_object_get(e->fake.seen[0].body, "RequestItems"), "t");
	assert_int_equal(json_object_size(e->fake.seen[0].body), 1);
	assert_int_equal(json_array_size(json_object_get(sent, "Keys")), 100);
	assert_true(json_is_true(json_object_get(sent, "ConsistentRead")));
	for (i = 0; i < 100; i++)
		assert_true(json_equal(json_array_get(json_object_get(sent, "Keys"), i),
				       json_array_get(keys, i)));
	assert_req(e, 1, "BatchGetItem",
		   "{\"RequestItems\":{\"t\":{\"Keys\":[{\"pk\":{\"S\":\"k5\"}},{\"pk\":{\"S\":\"k6\"}}],\"ConsistentRead\":true}}}");
	sent = json_object_get(json_object_get(e->fake.seen[2].body, "RequestItems"), "t");
	assert_int_equal(json_array_size(json_object_get(sent, "Keys")), 100);
	assert_json(json_array_get(json_object_get(sent, "Keys"), 0), "{\"pk\":{\"S\":\"k100\"}}");
	sent = json_object_get(json_object_get(e->fake.seen[3].body, "RequestItems"), "t");
	assert_int_equal(json_array_size(json_object_get(sent, "Keys")), 50);
	/* one backoff, within the throttle schedule's first step */
	assert_int_equal(e->fake.nsleeps, 1);
	assert_true(e->fake.sleeps[0] <= 500);
	json_decref(keys);
}

static void test_batch_get_gives_up(void **state)
{
	struct env *e = *state;
	json_t *keys = keys_n(2);
	struct aws_err err;
	int found = 0, i;

	for (i = 0; i < 8; i++)
		push(e, 200, "{\"Responses\":{\"t\":[]},"
			     "\"UnprocessedKeys\":{\"t\":{\"Keys\":[{\"pk\":{\"S\":\"k0\"}},{\"pk\":{\"S\":\"k1\"}}]}}}");
	assert_int_equal(ddb_batch_get(e->ddb, "t", keys, 0, count_item, &found, &err), -EAGAIN);
	assert_int_equal(e->fake.nseen, 8);
	assert_int_equal(e->fake.nsleeps, 7);
	/* exponential backoff with full jitter: within base * 2^(n-1) */
	for (i = 0; i < 7; i++) {
		unsigned cap = 500u << i;

		assert_true(e->fake.sleeps[i] <= (cap > 20000 ? 20000 : cap));
	}
	assert_string_equal(err.type, "UnprocessedKeys");
	assert_non_null(strstr(err.message, "2 requests still unprocessed"));
	json_decref(keys);
}

static void test_batch_write_chunks_and_retries(void **state)
{
	struct env *e = *state;
	json_t *items = json_object(), *puts = json_array(), *dels = json_array();
	json_t *body;
	int i;

	for (i = 0; i < 50; i++) {
		char s[16];

		snprintf(s, sizeof(s), "p%d", i);
		json_array_append_new(puts, json_pack("{s:{s:{s:{s:s}}}}",
			"PutRequest", "Item", "pk", "S", s));
	}
	for (i = 0; i < 10; i++) {
		char s[16];

		snprintf(s, sizeof(s), "d%d", i);
		json_array_append_new(dels, json_pack("{s:{s:{s:{s:s}}}}",
			"DeleteRequest", "Key", "pk", "S", s));
	}
	json_object_set_new(items, "a", puts);
	json_object_set_new(items, "b", dels);
	push(e, 200, "{\"UnprocessedItems\":{}}");
	push(e, 200, "{\"UnprocessedItems\":{\"a\":[{\"PutRequest\":{\"Item\":{\"pk\":{\"S\":\"p30\"}}}}]}}");
	push(e, 200, "{\"UnprocessedItems\":{}}");
	push(e, 200, "{}");
	assert_int_equal(ddb_batch_write(e->ddb, items, NULL), 0);
	assert_int_equal(e->fake.nseen, 4);
	body = json_object_get(e->fake.seen[0].body, "RequestItems");
	assert_int_equal(json_array_size(json_object_get(body, "a")), 25);
	assert_null(json_object_get(body, "b"));
	assert_json(json_array_get(json_object_get(body, "a"), 0),
		    "{\"PutRequest\":{\"Item\":{\"pk\":{\"S\":\"p0\"}}}}");
	body = json_object_get(e->fake.seen[1].body, "RequestItems");
	assert_int_equal(json_array_size(json_object_get(body, "a")), 25);
	assert_req(e, 2, "BatchWriteItem",
		   "{\"RequestItems\":{\"a\":[{\"PutRequest\":{\"Item\":{\"pk\":{\"S\":\"p30\"}}}}]}}");
	/* the last chunk: the 10 deletes of the second table */
	body = json_object_get(e->fake.seen[3].body, "RequestItems");
	assert_null(json_object_get(body, "a"));
	assert_int_equal(json_array_size(json_object_get(body, "b")), 10);
	assert_int_equal(e->fake.nsleeps, 1);
	json_decref(items);
}

static void test_batch_write_gives_up(void **state)
{
	struct env *e = *state;
	json_t *items = tu_json("{\"a\":[{\"PutRequest\":{\"Item\":{\"pk\":{\"S\":\"x\"}}}}]}");
	struct aws_err err;
	int i;

	for (i = 0; i < 8; i++)
		push(e, 200, "{\"UnprocessedItems\":{\"a\":[{\"PutRequest\":{\"Item\":{\"pk\":{\"S\":\"x\"}}}}]}}");
	assert_int_equal(ddb_batch_write(e->ddb, items, &err), -EAGAIN);
	assert_int_equal(e->fake.nseen, 8);
	assert_string_equal(err.type, "UnprocessedItems");
	json_decref(items);
}

static void test_batch_write_rejects_bad_shape(void **state)
{
	struct env *e = *state;
	json_t *items = tu_json("{\"a\":{\"PutRequest\":{}}}");

	assert_int_equal(ddb_batch_write(e->ddb, items, NULL), -EINVAL);
	assert_int_equal(e->fake.nseen, 0);
	json_decref(items);
}

/* ---- transactions ------------------------------------------------------- */

static const char *tx_items =
	"[{\"Put\":{\"TableName\":\"t\",\"Item\":{\"pk\":{\"S\":\"a\"}},"
	"\"ConditionExpression\":\"attribute_not_exists(pk)\"}},"
	"{\"Delete\":{\"TableName\":\"t\",\"Key\":{\"pk\":{\"S\":\"b\"}}}}]";

static void test_transact_write(void **state)
{
	struct env *e = *state;
	json_t *items = tu_json(tx_items);
	char want[1024];
	const char *tok;

	push(e, 200, "{}");
	push(e, 200, "{}");
	assert_int_equal(ddb_transact_write(e->ddb, items, "tok-1", NULL), 0);
	snprintf(want, sizeof(want),
		 "{\"TransactItems\":%s,\"ClientRequestToken\":\"tok-1\"}", tx_items);
	assert_req(e, 0, "TransactWriteItems", want);
	/* without a token one is made, so retries stay idempotent */
	assert_int_equal(ddb_transact_write(e->ddb, items, NULL, NULL), 0);
	tok = json_string_value(json_object_get(e->fake.seen[1].body,
						"ClientRequestToken"));
	assert_non_null(tok);
	assert_int_equal(strlen(tok), 36);
	assert_int_equal(tok[14], '4');
	json_decref(items);
}

static void test_transact_cancel_condition_is_estale(void **state)
{
	struct env *e = *state;
	json_t *items = tu_json(tx_items);
	struct aws_err err;
	char *fx = fixture("transaction-canceled-condition.json");

	push(e, 400, fx);
	free(fx);
	assert_int_equal(ddb_transact_write(e->ddb, items, "t", &err), -ESTALE);
	assert_string_equal(err.type, "TransactionCanceledException");
	assert_non_null(strstr(err.message, "Transaction cancelled (2 items)"));
	assert_non_null(strstr(err.message, "item 0 ConditionalCheckFailed: The conditional request failed"));
	assert_null(strstr(err.message, "None"));
	assert_int_equal(e->fake.nseen, 1);
	json_decref(items);
}

static void test_transact_cancel_other_is_ecanceled(void **state)
{
	struct env *e = *state;
	json_t *items = tu_json(tx_items);
	struct aws_err err;
	char *fx;

	push(e, 400, "{\"__type\":\"com.amazonaws.dynamodb.v20120810#TransactionCanceledException\","
		     "\"CancellationReasons\":[{\"Code\":\"ConditionalCheckFailed\",\"Message\":\"The conditional request failed\"},"
		     "{\"Code\":\"TransactionConflict\",\"Message\":\"Transaction is ongoing for the item\"}],"
		     "\"Message\":\"Transaction cancelled, please refer cancellation reasons for specific reasons [ConditionalCheckFailed, TransactionConflict]\"}");
	assert_int_equal(ddb_transact_write(e->ddb, items, "t", &err), -ECANCELED);
	assert_non_null(strstr(err.message, "item 0 ConditionalCheckFailed"));
	assert_non_null(strstr(err.message, "item 1 TransactionConflict: Transaction is ongoing"));
	/* as DynamoDB Local words it: a size error and a failed condition */
	fx = fixture("transaction-canceled-mixed.json");
	push(e, 400, fx);
	free(fx);
	assert_int_equal(ddb_transact_write(e->ddb, items, "t", &err), -ECANCELED);
	assert_string_equal(err.message,
			    "Transaction cancelled (2 items); item 0 ValidationError: "
			    "Item size to update has exceeded the maximum allowed size; "
			    "item 1 ConditionalCheckFailed: The conditional request failed");
	json_decref(items);
}

static void test_transact_cancel_from_message(void **state)
{
	struct env *e = *state;
	json_t *items = tu_json(tx_items);
	struct aws_err err;

	/* no CancellationReasons in the body: read them from the message */
	push(e, 400, "{\"__type\":\"com.amazonaws.dynamodb.v20120810#TransactionCanceledException\","
		     "\"message\":\"Transaction cancelled, please refer cancellation reasons for specific reasons [None, ConditionalCheckFailed]\"}");
	push(e, 400, "{\"__type\":\"com.amazonaws.dynamodb.v20120810#TransactionCanceledException\","
		     "\"message\":\"Transaction cancelled, please refer cancellation reasons for specific reasons [ValidationError, None]\"}");
	assert_int_equal(ddb_transact_write(e->ddb, items, "t", &err), -ESTALE);
	assert_non_null(strstr(err.message, "item 1 ConditionalCheckFailed"));
	assert_int_equal(ddb_transact_write(e->ddb, items, "t", &err), -ECANCELED);
	assert_non_null(strstr(err.message, "item 0 ValidationError"));
	json_decref(items);
}

static void test_transact_get(void **state)
{
	struct env *e = *state;
	const char *gets = "[{\"Get\":{\"TableName\":\"t\",\"Key\":{\"pk\":{\"S\":\"a\"}}}},"
			   "{\"Get\":{\"TableName\":\"t\",\"Key\":{\"pk\":{\"S\":\"z\"}}}}]";
	json_t *items = tu_json(gets), *out = NULL;
	char want[512];

	push(e, 200, "{\"Responses\":[{\"Item\":{\"pk\":{\"S\":\"a\"}}},{}]}");
	assert_int_equal(ddb_transact_get(e->ddb, items, &out, NULL), 0);
	snprintf(want, sizeof(want), "{\"TransactItems\":%s}", gets);
	assert_req(e, 0, "TransactGetItems", want);
	assert_json(out, "[{\"Item\":{\"pk\":{\"S\":\"a\"}}},{}]");
	json_decref(out);
	json_decref(items);
}

/* ---- x-amz-crc32, raw calls, bad responses ------------------------------- */

static void test_crc32_checked(void **state)
{
	struct env *e = *state;
	struct names nm;
	struct aws_err err;

	memset(&nm, 0, sizeof(nm));
	/* absent: accepted; right: accepted */
	push_crc(e, 200, CRC_NONE, "{\"TableNames\":[\"a\"]}");
	push_crc(e, 200, CRC_GOOD, "{\"TableNames\":[\"b\"]}");
	assert_int_equal(ddb_list_tables(e->ddb, 0, collect_name, &nm, NULL), 0);
	assert_int_equal(ddb_list_tables(e->ddb, 0, collect_name, &nm, NULL), 0);
	assert_string_equal(nm.all, "a,b,");
	/* wrong once: retried, then fine */
	push_crc(e, 200, CRC_BAD, "{\"TableNames\":[\"bad\"]}");
	push_crc(e, 200, CRC_GOOD, "{\"TableNames\":[\"c\"]}");
	assert_int_equal(ddb_list_tables(e->ddb, 0, collect_name, &nm, NULL), 0);
	assert_string_equal(nm.all, "a,b,c,");
	assert_int_equal(e->fake.nseen, 4);
	/* wrong every time: an error after the standard 3 attempts, and the
	 * damaged body never reaches the caller */
	push_crc(e, 200, CRC_BAD, "{\"TableNames\":[\"bad\"]}");
	push_crc(e, 200, CRC_BAD, "{\"TableNames\":[\"bad\"]}");
	push_crc(e, 200, CRC_BAD, "{\"TableNames\":[\"bad\"]}");
	assert_int_equal(ddb_list_tables(e->ddb, 0, collect_name, &nm, &err), -EIO);
	assert_int_equal(e->fake.nseen, 7);
	assert_int_equal(err.attempts, 3);
	assert_string_equal(err.type, "CRC32CheckFailed");
	assert_string_equal(nm.all, "a,b,c,");
}

static void test_call_raw(void **state)
{
	struct env *e = *state;
	json_t *req = tu_json("{\"TableName\":\"t\"}"), *out = NULL;

	push(e, 200, "{\"TimeToLiveDescription\":{\"TimeToLiveStatus\":\"DISABLED\"}}");
	assert_int_equal(ddb_call(e->ddb, "DescribeTimeToLive", req, &out, NULL), 0);
	assert_req(e, 0, "DescribeTimeToLive", "{\"TableName\":\"t\"}");
	assert_json(out, "{\"TimeToLiveDescription\":{\"TimeToLiveStatus\":\"DISABLED\"}}");
	json_decref(out);
	json_decref(req);
}

static void test_malformed_response(void **state)
{
	struct env *e = *state;
	json_t *req = tu_json("{}"), *out = NULL;
	struct aws_err err;

	push(e, 200, "{\"TableNames\":[");
	push(e, 200, "[1,2]");
	assert_int_equal(ddb_call(e->ddb, "ListTables", req, &out, &err), -EIO);
	assert_null(out);
	assert_string_equal(err.type, "SerializationException");
	assert_int_equal(ddb_call(e->ddb, "ListTables", req, &out, &err), -EIO);
	assert_null(out);
	json_decref(req);
}

static void test_throttle_retried_by_svc(void **state)
{
	struct env *e = *state;
	json_t *key = tu_json("{\"pk\":{\"S\":\"a\"}}"), *item = NULL;

	push(e, 400, "{\"__type\":\"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException\",\"message\":\"slow down\"}");
	push(e, 200, "{\"Item\":{\"pk\":{\"S\":\"a\"}}}");
	assert_int_equal(ddb_get_item(e->ddb, "t", key, 1, &item, NULL), 0);
	assert_int_equal(e->fake.nseen, 2);
	json_decref(item);
	json_decref(key);
}

static void test_bad_arguments(void **state)
{
	struct env *e = *state;
	json_t *obj = tu_json("{}");
	struct pages p;

	memset(&p, 0, sizeof(p));
	assert_int_equal(ddb_get_item(e->ddb, "t", NULL, 1, NULL, NULL), -EINVAL);
	assert_int_equal(ddb_put_item(e->ddb, NULL, obj, NULL, NULL), -EINVAL);
	assert_int_equal(ddb_query(e->ddb, NULL, count_page, &p, NULL), -EINVAL);
	assert_int_equal(ddb_scan(e->ddb, obj, 5000, count_page, &p, NULL), -EINVAL);
	assert_int_equal(ddb_batch_get(e->ddb, "t", obj, 0, count_item, &p, NULL), -EINVAL);
	assert_int_equal(ddb_transact_write(e->ddb, obj, NULL, NULL), -EINVAL);
	assert_int_equal(e->fake.nseen, 0);
	json_decref(obj);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_list_tables_paginates),
		T(test_list_tables_limit_reads_one_page),
		T(test_list_tables_cb_stops),
		T(test_describe_table),
		T(test_describe_missing_table),
		T(test_create_delete_table),
		T(test_wait_table_active),
		T(test_wait_table_gone),
		T(test_wait_table_times_out),
		T(test_get_item),
		T(test_put_item_conditional),
		T(test_put_and_delete_unconditional),
		T(test_update_item),
		T(test_numbers_untouched),
		T(test_nul_in_string),
		T(test_query_paginates),
		T(test_query_cb_stops),
		T(test_scan_serial_paginates),
		T(test_scan_parallel),
		T(test_scan_parallel_error_stops_all),
		T(test_scan_parallel_cb_stops_all),
		T(test_batch_get_chunks_and_retries),
		T(test_batch_get_gives_up),
		T(test_batch_write_chunks_and_retries),
		T(test_batch_write_gives_up),
		T(test_batch_write_rejects_bad_shape),
		T(test_transact_write),
		T(test_transact_cancel_condition_is_estale),
		T(test_transact_cancel_other_is_ecanceled),
		T(test_transact_cancel_from_message),
		T(test_transact_get),
		T(test_crc32_checked),
		T(test_call_raw),
		T(test_malformed_response),
		T(test_throttle_retried_by_svc),
		T(test_bad_arguments),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
