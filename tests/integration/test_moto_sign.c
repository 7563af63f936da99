/* Our SigV4 against an independent verifier: moto, started by
 * run-with-moto.sh with authentication on, recomputes every signature with
 * botocore and checks the key against its IAM users and role sessions.
 *
 * Environment (from tests/lib/moto-auth.sh): DYNFS_TEST_MOTO_ENDPOINT,
 * DYNFS_TEST_MOTO_TABLE, DYNFS_TEST_AK/SK (an IAM user's key),
 * DYNFS_TEST_STS_AK/SK/TOKEN (an sts:AssumeRole session). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "backend/awscfg.h"
#include "backend/awserr.h"
#include "backend/creds.h"
#include "backend/dbuf.h"
#include "backend/http.h"
#include "backend/svc.h"

static const char *endpoint, *table;
static const char *good_ak, *good_sk;
static const char *sts_ak, *sts_sk, *sts_token;

struct conn {
	struct awscfg *cfg;
	struct creds_chain *chain;
	struct http_client *http;
	struct svc *svc;
};

static const char *need_env(const char *name)
{
	const char *v = getenv(name);

	if (v == NULL || *v == '\0') {
		fprintf(stderr, "test_moto_sign: %s is not set; run me through "
			"tests/integration/run-with-moto.sh\n", name);
		exit(1);
	}
	return v;
}

/* The environment provider is the only source of keys here: the config
 * files are pointed at empty files by the wrapper and no profile is set. */
static void set_keys(const char *ak, const char *sk, const char *token)
{
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_DEFAULT_PROFILE");
	setenv("AWS_ACCESS_KEY_ID", ak, 1);
	setenv("AWS_SECRET_ACCESS_KEY", sk, 1);
	unsetenv("AWS_SECURITY_TOKEN");
	if (token != NULL)
		setenv("AWS_SESSION_TOKEN", token, 1);
	else
		unsetenv("AWS_SESSION_TOKEN");
}

static void conn_open(struct conn *c, const char *service, const char *ak,
		      const char *sk, const char *token)
{
	struct dbuf why;
	struct http_opts hopts;
	struct svc_opts sopts;

	memset(c, 0, sizeof(*c));
	set_keys(ak, sk, token);
	dbuf_init(&why, DBUF_CAP_SMALL);
	if (awscfg_load(&c->cfg, NULL, &why) != 0)
		fail_msg("awscfg_load: %s", dbuf_str(&why));
	if (creds_chain_new(&c->chain, c->cfg) != 0)
		fail_msg("creds_chain_new failed");
	dbuf_free(&why);

	memset(&hopts, 0, sizeof(hopts));
	hopts.connect_timeout_ms = 5000;
	hopts.timeout_ms = 30000;
	assert_int_equal(http_client_new(&c->http, &hopts), 0);

	memset(&sopts, 0, sizeof(sopts));
	sopts.endpoint = endpoint;
	sopts.region = "us-east-1";
	sopts.service = service;
	assert_int_equal(svc_new(&c->svc, c->http, c->chain, &sopts), 0);
}

static void conn_close(struct conn *c)
{
	svc_free(c->svc);
	http_client_free(c->http);
	creds_chain_free(c->chain);
	awscfg_free(c->cfg);
	memset(c, 0, sizeof(*c));
}

/* The credentials the chain resolved must be the ones we set, so that a
 * pass below really is a pass with these keys. */
static void assert_chain_has(struct conn *c, const char *ak,
			     const char *token)
{
	struct creds cr;
	struct dbuf why;

	memset(&cr, 0, sizeof(cr));
	dbuf_init(&why, DBUF_CAP_SMALL);
	if (creds_get(c->chain, &cr, &why) != 0)
		fail_msg("creds_get: %s", dbuf_str(&why));
	assert_string_equal(cr.access_key, ak);
	if (token != NULL) {
		assert_non_null(cr.session_token);
		assert_string_equal(cr.session_token, token);
	} else {
		assert_null(cr.session_token);
	}
	creds_clear(&cr);
	dbuf_free(&why);
}

static const struct http_header ddb_list_headers[] = {
	{ "content-type", "application/x-amz-json-1.0" },
	{ "x-amz-target", "DynamoDB_20120810.ListTables" },
};

static int list_tables(struct conn *c, struct http_response *resp,
		       struct aws_err *err)
{
	struct svc_call call;

	memset(&call, 0, sizeof(call));
	call.method = "POST";
	call.path = "/";
	call.headers = ddb_list_headers;
	call.nheaders = sizeof(ddb_list_headers) / sizeof(ddb_list_headers[0]);
	call.body = "{}";
	call.body_len = 2;
	call.idempotent = 1;
	awserr_clear(err);
	return svc_call(c->svc, &call, resp, err);
}

/* The ListTables response names our table. */
static void assert_lists_table(const struct http_response *resp)
{
	json_error_t jerr;
	json_t *root, *names, *v;
	size_t i;
	int found = 0;

	assert_int_equal(resp->status, 200);
	root = json_loadb(dbuf_str(&resp->body), dbuf_len(&resp->body), 0,
			  &jerr);
	if (root == NULL)
		fail_msg("ListTables body is not JSON: %s", jerr.text);
	names = json_object_get(root, "TableNames");
	assert_true(json_is_array(names));
	json_array_foreach(names, i, v) {
		if (json_is_string(v) && strcmp(json_string_value(v), table) == 0)
			found = 1;
	}
	json_decref(root);
	assert_true(found);
}

static void expect_list_ok(const char *ak, const char *sk, const char *token)
{
	struct conn c;
	struct http_response resp;
	struct aws_err err;
	char buf[700];
	int rc;

	conn_open(&c, "dynamodb", ak, sk, token);
	assert_chain_has(&c, ak, token);
	http_response_init(&resp);
	rc = list_tables(&c, &resp, &err);
	if (rc != 0)
		fail_msg("ListTables failed (%d): %s", rc,
			 awserr_describe(&err, buf, sizeof(buf)));
	assert_lists_table(&resp);
	http_response_free(&resp);
	conn_close(&c);
}

/* A refusal by moto: 403, -EACCES, an auth error of type want_type. */
static void expect_list_refused(const char *ak, const char *sk,
				const char *token, const char *want_type)
{
	struct conn c;
	struct http_response resp;
	struct aws_err err;
	char buf[700];
	int rc;

	conn_open(&c, "dynamodb", ak, sk, token);
	http_response_init(&resp);
	rc = list_tables(&c, &resp, &err);
	print_message("refused as expected? rc=%d: %s\n", rc,
		      awserr_describe(&err, buf, sizeof(buf)));
	assert_int_equal(rc, -EACCES);
	assert_int_equal(err.status, 403);
	assert_int_equal(err.transport, 0);
	assert_string_equal(err.type, want_type);
	assert_true(err.message[0] != '\0');
	assert_true(awserr_is_auth(&err));
	/* A rejected signature is not worth retrying. */
	assert_int_equal(err.attempts, 1);
	http_response_free(&resp);
	conn_close(&c);
}

static void test_list_tables_user_key(void **state)
{
	(void)state;
	expect_list_ok(good_ak, good_sk, NULL);
}

static void test_list_tables_assumed_role(void **state)
{
	(void)state;
	expect_list_ok(sts_ak, sts_sk, sts_token);
}

static void test_wrong_secret_is_refused(void **state)
{
	char wrong[256];

	(void)state;
	/* Same length, last character changed. */
	snprintf(wrong, sizeof(wrong), "%s", good_sk);
	wrong[strlen(wrong) - 1] = wrong[strlen(wrong) - 1] == 'A' ? 'B' : 'A';
	expect_list_refused(good_ak, wrong, NULL, "SignatureDoesNotMatch");
}

static void test_wrong_session_secret_is_refused(void **state)
{
	(void)state;
	expect_list_refused(sts_ak, "not-the-session-secret", sts_token,
			    "SignatureDoesNotMatch");
}

static void test_wrong_session_token_is_refused(void **state)
{
	char wrong[4096];

	(void)state;
	snprintf(wrong, sizeof(wrong), "%sX", sts_token);
	expect_list_refused(sts_ak, sts_sk, wrong, "InvalidClientTokenId");
}

static void test_unknown_key_is_refused(void **state)
{
	(void)state;
	expect_list_refused("AKIAUNKNOWNDYNFS0000", good_sk, NULL,
			    "InvalidClientTokenId");
}

/* A body with multi-byte UTF-8 and JSON escapes: the payload hash must be
 * over the exact bytes sent. */
static void test_put_get_utf8_item(void **state)
{
	static const char put[] =
		"{\"TableName\":\"%s\",\"Item\":{\"pk\":{\"S\":\"k\\u00e9y \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"},"
		"\"v\":{\"S\":\"line\\nnext \\\"quoted\\\" \xe6\x97\xa5\xe6\x9c\xac\"}}}";
	static const char get[] =
		"{\"TableName\":\"%s\",\"Key\":{\"pk\":{\"S\":\"k\\u00e9y \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}},"
		"\"ConsistentRead\":true}";
	struct http_header hdrs[2] = {
		{ "content-type", "application/x-amz-json-1.0" },
		{ "x-amz-target", "DynamoDB_20120810.PutItem" },
	};
	struct conn c;
	struct svc_call call;
	struct http_response resp;
	struct aws_err err;
	char body[1024], buf[700];
	json_error_t jerr;
	json_t *root, *v;
	int rc, n;

	(void)state;
	conn_open(&c, "dynamodb", good_ak, good_sk, NULL);

	n = snprintf(body, sizeof(body), put, table);
	assert_true(n > 0 && (size_t)n < sizeof(body));
	memset(&call, 0, sizeof(call));
	call.method = "POST";
	call.path = "/";
	call.headers = hdrs;
	call.nheaders = 2;
	call.body = body;
	call.body_len = (size_t)n;
	call.idempotent = 1;
	http_response_init(&resp);
	awserr_clear(&err);
	rc = svc_call(c.svc, &call, &resp, &err);
	if (rc != 0)
		fail_msg("PutItem failed (%d): %s", rc,
			 awserr_describe(&err, buf, sizeof(buf)));
	http_response_free(&resp);

	hdrs[1].value = "DynamoDB_20120810.GetItem";
	n = snprintf(body, sizeof(body), get, table);
	assert_true(n > 0 && (size_t)n < sizeof(body));
	call.body_len = (size_t)n;
	http_response_init(&resp);
	awserr_clear(&err);
	rc = svc_call(c.svc, &call, &resp, &err);
	if (rc != 0)
		fail_msg("GetItem failed (%d): %s", rc,
			 awserr_describe(&err, buf, sizeof(buf)));
	assert_int_equal(resp.status, 200);
	root = json_loadb(dbuf_str(&resp.body), dbuf_len(&resp.body), 0,
			  &jerr);
	if (root == NULL)
		fail_msg("GetItem body is not JSON: %s", jerr.text);
	v = json_object_get(json_object_get(json_object_get(root, "Item"),
					    "v"), "S");
	assert_true(json_is_string(v));
	assert_string_equal(json_string_value(v),
			    "line\nnext \"quoted\" \xe6\x97\xa5\xe6\x9c\xac");
	json_decref(root);
	http_response_free(&resp);
	conn_close(&c);
}

/* STS, a different signing name and a form body. */
static int sts_call(struct conn *c, const char *method, const char *query,
		    const char *body, struct http_response *resp,
		    struct aws_err *err)
{
	static const struct http_header form[] = {
		{ "content-type",
		  "application/x-www-form-urlencoded; charset=utf-8" },
	};
	struct svc_call call;

	memset(&call, 0, sizeof(call));
	call.method = method;
	call.path = "/";
	call.query = query;
	if (body != NULL) {
		call.headers = form;
		call.nheaders = 1;
		call.body = body;
		call.body_len = strlen(body);
	}
	call.idempotent = 1;
	awserr_clear(err);
	return svc_call(c->svc, &call, resp, err);
}

static void expect_caller(const char *ak, const char *sk, const char *token,
			  const char *method, const char *query,
			  const char *body, const char *arn_part)
{
	struct conn c;
	struct http_response resp;
	struct aws_err err;
	char buf[700];
	int rc;

	conn_open(&c, "sts", ak, sk, token);
	http_response_init(&resp);
	rc = sts_call(&c, method, query, body, &resp, &err);
	if (rc != 0)
		fail_msg("GetCallerIdentity failed (%d): %s", rc,
			 awserr_describe(&err, buf, sizeof(buf)));
	assert_int_equal(resp.status, 200);
	if (strstr(dbuf_str(&resp.body), arn_part) == NULL)
		fail_msg("GetCallerIdentity: no '%s' in: %s", arn_part,
			 dbuf_str(&resp.body));
	http_response_free(&resp);
	conn_close(&c);
}

static void test_sts_caller_identity_user(void **state)
{
	(void)state;
	expect_caller(good_ak, good_sk, NULL, "POST", NULL,
		      "Action=GetCallerIdentity&Version=2011-06-15",
		      ":user/dynfs-test<");
}

static void test_sts_caller_identity_assumed_role(void **state)
{
	(void)state;
	expect_caller(sts_ak, sts_sk, sts_token, "POST", NULL,
		      "Action=GetCallerIdentity&Version=2011-06-15",
		      ":assumed-role/dynfs-test-role/dynfs-test-session<");
}

/* A query string beside the form body, out of order, with a repeated key
 * and an encoded space: the canonical query sorts by key, then value.
 * (POST: moto cannot verify a signed GET with a query, whoever signs it,
 * because it hashes the parsed query as if it were the body.) */
static void test_sts_caller_identity_query(void **state)
{
	(void)state;
	expect_caller(good_ak, good_sk, NULL, "POST",
		      "zeta=1&alpha=b%20c&beta=2&alpha=a",
		      "Action=GetCallerIdentity&Version=2011-06-15",
		      ":user/dynfs-test<");
}

static void test_sts_wrong_secret_is_refused(void **state)
{
	struct conn c;
	struct http_response resp;
	struct aws_err err;
	int rc;

	(void)state;
	conn_open(&c, "sts", good_ak, "wrong-secret", NULL);
	http_response_init(&resp);
	rc = sts_call(&c, "POST", NULL,
		      "Action=GetCallerIdentity&Version=2011-06-15", &resp,
		      &err);
	assert_int_equal(rc, -EACCES);
	assert_int_equal(err.status, 403);
	assert_string_equal(err.type, "SignatureDoesNotMatch");
	assert_true(awserr_is_auth(&err));
	http_response_free(&resp);
	conn_close(&c);
}

static int group_setup(void **state)
{
	(void)state;
	endpoint = need_env("DYNFS_TEST_MOTO_ENDPOINT");
	table = need_env("DYNFS_TEST_MOTO_TABLE");
	good_ak = need_env("DYNFS_TEST_AK");
	good_sk = need_env("DYNFS_TEST_SK");
	sts_ak = need_env("DYNFS_TEST_STS_AK");
	sts_sk = need_env("DYNFS_TEST_STS_SK");
	sts_token = need_env("DYNFS_TEST_STS_TOKEN");
	unsetenv("AWS_ENDPOINT_URL");
	unsetenv("AWS_ENDPOINT_URL_DYNAMODB");
	unsetenv("AWS_ENDPOINT_URL_STS");
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list_tables_user_key),
		cmocka_unit_test(test_list_tables_assumed_role),
		cmocka_unit_test(test_wrong_secret_is_refused),
		cmocka_unit_test(test_wrong_session_secret_is_refused),
		cmocka_unit_test(test_wrong_session_token_is_refused),
		cmocka_unit_test(test_unknown_key_is_refused),
		cmocka_unit_test(test_put_get_utf8_item),
		cmocka_unit_test(test_sts_caller_identity_user),
		cmocka_unit_test(test_sts_caller_identity_assumed_role),
		cmocka_unit_test(test_sts_caller_identity_query),
		cmocka_unit_test(test_sts_wrong_secret_is_refused),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
