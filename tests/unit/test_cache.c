/* cache: the table-list snapshot, over a scripted DynamoDB. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend/awscfg.h"
#include "backend/creds.h"
#include "backend/ddb.h"
#include "backend/http.h"
#include "backend/svc.h"
#include "cache/cache.h"

static int requests;
static const char *pages[4];
static int fail_with_status;

/* Answers ListTables with pages[] in turn, following the start name. */
static int list_tables_server(void *ctx, const struct http_request *req,
			      struct http_response *resp)
{
	const char *page;

	(void)ctx;
	(void)req;
	if (fail_with_status) {
		resp->status = fail_with_status;
		dbuf_adds(&resp->body, "{\"__type\":\"com.amazon.coral.service#"
			  "AccessDeniedException\",\"message\":\"no\"}");
		return 0;
	}
	assert_true(requests < 4 && pages[requests]);
	page = pages[requests++];
	resp->status = 200;
	dbuf_adds(&resp->body, page);
	return 0;
}

static void no_sleep(void *ctx, unsigned ms)
{
	(void)ctx;
	(void)ms;
}

struct fixture {
	struct awscfg *cfg;
	struct creds_chain *creds;
	struct http_client *http;
	struct svc *svc;
	struct ddb *ddb;
	struct cache *cache;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct http_opts ho;
	struct svc_opts so;
	struct cache_opts co;
	struct dbuf why;

	setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
	setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
	dbuf_init(&why, DBUF_CAP_SMALL);
	assert_int_equal(awscfg_load(&f->cfg, NULL, &why), 0);
	assert_int_equal(creds_chain_new(&f->creds, f->cfg), 0);
	memset(&ho, 0, sizeof(ho));
	assert_int_equal(http_client_new(&f->http, &ho), 0);
	http_client_set_transport(f->http, list_tables_server, NULL);
	memset(&so, 0, sizeof(so));
	so.endpoint = "http://127.0.0.1:1";
	so.region = "us-east-1";
	so.service = "dynamodb";
	assert_int_equal(svc_new(&f->svc, f->http, f->creds, &so), 0);
	svc_set_sleep(f->svc, no_sleep, NULL);
	assert_int_equal(ddb_new(&f->ddb, f->svc), 0);
	co.ttl_s = 60;
	assert_int_equal(cache_new(&f->cache, f->ddb, &co), 0);
	dbuf_free(&why);
	requests = 0;
	fail_with_status = 0;
	memset(pages, 0, sizeof(pages));
	*state = f;
	return 0;
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
	return 0;
}

static int collect(void *ctx, const char *name)
{
	struct dbuf *b = ctx;

	return dbuf_addf(b, "%s,", name);
}

static void test_lists_all_pages_once_per_ttl(void **state)
{
	struct fixture *f = *state;
	struct dbuf names;

	pages[0] = "{\"TableNames\":[\"a\",\"b\"],\"LastEvaluatedTableName\":\"b\"}";
	pages[1] = "{\"TableNames\":[\"c\"]}";
	dbuf_init(&names, DBUF_CAP_SMALL);
	assert_int_equal(cache_tables(f->cache, collect, &names, NULL), 0);
	assert_string_equal(dbuf_str(&names), "a,b,c,");
	assert_int_equal(requests, 2);

	/* Within the ttl the snapshot serves listings and lookups. */
	dbuf_reset(&names);
	assert_int_equal(cache_tables(f->cache, collect, &names, NULL), 0);
	assert_string_equal(dbuf_str(&names), "a,b,c,");
	assert_int_equal(cache_table_exists(f->cache, "c", NULL), 0);
	assert_int_equal(cache_table_exists(f->cache, "d", NULL), -ENOENT);
	assert_int_equal(requests, 2);
	dbuf_free(&names);
}

static void test_callback_stop_value_is_returned(void **state)
{
	struct fixture *f = *state;

	pages[0] = "{\"TableNames\":[\"x\",\"y\"]}";
	assert_int_equal(cache_table_exists(f->cache, "x", NULL), 0);
}

static void test_error_is_reported(void **state)
{
	struct fixture *f = *state;
	struct aws_err err;
	struct dbuf names;

	fail_with_status = 400;
	dbuf_init(&names, DBUF_CAP_SMALL);
	assert_int_equal(cache_tables(f->cache, collect, &names, &err), -EACCES);
	assert_string_equal(err.type, "AccessDeniedException");
	assert_string_equal(dbuf_str(&names), "");
	dbuf_free(&names);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lists_all_pages_once_per_ttl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_callback_stop_value_is_returned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_error_is_reported, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
