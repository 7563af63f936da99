/* svc: signing, retries, error mapping and CRC checks, with the network
 * replaced by a scripted transport and time and sleep injected. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <zlib.h>

#include "backend/awscfg.h"
#include "backend/creds.h"
#include "backend/http.h"
#include "backend/svc.h"
#include "tests/scripted.h"
#include "tests/testutil.h"

/* The fake network (tests/scripted.h); setup_env empties it. */
static struct script S;

static uint32_t max_rand(void *ctx)
{
	(void)ctx;
	return UINT32_MAX;
}

struct fixture {
	struct awscfg *cfg;
	struct creds_chain *creds;
	struct http_client *http;
	struct svc *svc;
};

static struct fixture *fixture_new(const char *endpoint, unsigned flags)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct http_opts ho;
	struct svc_opts so;
	struct retry_policy rp;
	struct dbuf why;

	assert_non_null(f);
	dbuf_init(&why, DBUF_CAP_SMALL);
	assert_int_equal(awscfg_load(&f->cfg, NULL, &why), 0);
	assert_int_equal(creds_chain_new(&f->creds, f->cfg), 0);
	memset(&ho, 0, sizeof(ho));
	assert_int_equal(http_client_new(&f->http, &ho), 0);
	http_client_set_transport(f->http, script_transport, &S);
	retry_policy_default(&rp);
	rp.rand = max_rand;
	memset(&so, 0, sizeof(so));
	so.endpoint = endpoint;
	so.region = "us-east-1";
	so.service = "dynamodb";
	so.flags = flags;
	so.retry = &rp;
	assert_int_equal(svc_new(&f->svc, f->http, f->creds, &so), 0);
	svc_set_clock(f->svc, script_clock, NULL);
	svc_set_sleep(f->svc, script_sleep, &S);
	dbuf_free(&why);
	return f;
}

static void fixture_free(struct fixture *f)
{
	svc_free(f->svc);
	http_client_free(f->http);
	creds_chain_free(f->creds);
	awscfg_free(f->cfg);
	free(f);
}

static const struct http_header list_tables_headers[] = {
	{ "content-type", "application/x-amz-json-1.0" },
	{ "x-amz-target", "DynamoDB_20120810.ListTables" },
};

static int call_list_tables(struct fixture *f, int idempotent,
			    struct aws_err *err)
{
	struct http_response resp;
	struct svc_call call;
	int rc;

	memset(&call, 0, sizeof(call));
	call.method = "POST";
	call.path = "/";
	call.headers = list_tables_headers;
	call.nheaders = 2;
	call.body = "{\"Limit\":1}";
	call.body_len = strlen(call.body);
	call.idempotent = idempotent;
	http_response_init(&resp);
	rc = svc_call(f->svc, &call, &resp, err);
	http_response_free(&resp);
	return rc;
}

static int setup_env(void **state)
{
	(void)state;
	script_reset(&S);
	tu_example_creds_env();
	return 0;
}

/* The expected signatures were computed with botocore's SigV4Auth for the
 * same request and time: an independent signer, not ours. */
static void test_signs_like_botocore(void **state)
{
	struct fixture *f;
	(void)state;

	f = fixture_new("http://127.0.0.1:8000", 0);
	S.steps[0] = (struct script_step){ 0, 200, "{\"TableNames\":[]}", NULL };
	S.nsteps = 1;
	assert_int_equal(call_list_tables(f, 1, NULL), 0);
	assert_string_equal(S.url, "http://127.0.0.1:8000/");
	assert_string_equal(S.method, "POST");
	assert_non_null(strstr(S.headers, "host: 127.0.0.1:8000\n"));
	assert_non_null(strstr(S.headers, "x-amz-date: 20150830T123600Z\n"));
	assert_non_null(strstr(S.headers,
		"authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/"
		"us-east-1/dynamodb/aws4_request, SignedHeaders=content-type;"
		"host;x-amz-date;x-amz-target, Signature=c86469036c580a50f7862e2b"
		"f1bfa898681e28c03914a5d756f4b05b8aa22a61\n"));
	assert_null(strstr(S.headers, "x-amz-security-token"));
	fixture_free(f);
}

static void test_signs_session_token(void **state)
{
	struct fixture *f;
	(void)state;

	setenv("AWS_SESSION_TOKEN", "TOKEN/with+chars=", 1);
	f = fixture_new("http://127.0.0.1:8000/", 0);
	S.steps[0] = (struct script_step){ 0, 200, "{}", NULL };
	S.nsteps = 1;
	assert_int_equal(call_list_tables(f, 1, NULL), 0);
	assert_non_null(strstr(S.headers,
		"x-amz-security-token: TOKEN/with+chars=\n"));
	assert_non_null(strstr(S.headers,
		"SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;"
		"x-amz-target, Signature=9b5f6d6dcedc74aacfee0d4179079ebde33c5619"
		"ac2d0e5a54b94a491aa0fc1f\n"));
	fixture_free(f);
}

static void test_base_path_and_query(void **state)
{
	struct fixture *f;
	struct http_response resp;
	struct svc_call call;
	(void)state;

	f = fixture_new("https://api.example.test/prod/", 0);
	S.steps[0] = (struct script_step){ 0, 200, "ok", NULL };
	S.nsteps = 1;
	memset(&call, 0, sizeof(call));
	call.method = "GET";
	call.path = "/orders/42";
	call.query = "b=2&a=1";
	call.idempotent = 1;
	http_response_init(&resp);
	assert_int_equal(svc_call(f->svc, &call, &resp, NULL), 0);
	assert_string_equal(dbuf_str(&resp.body), "ok");
	assert_string_equal(S.url, "https://api.example.test/prod/orders/42?b=2&a=1");
	assert_non_null(strstr(S.headers, "host: api.example.test\n"));
	http_response_free(&resp);
	fixture_free(f);
}

static void test_retries_5xx_then_succeeds(void **state)
{
	struct fixture *f;
	struct aws_err err;
	struct svc_stats st;
	(void)state;

	f = fixture_new("http://127.0.0.1:8000", 0);
	S.steps[0] = (struct script_step){ 0, 500,
		"{\"__type\":\"InternalServerError\"}", NULL };
	S.steps[1] = (struct script_step){ 0, 200, "{}", NULL };
	S.nsteps = 2;
	assert_int_equal(call_list_tables(f, 1, &err), 0);
	assert_int_equal(S.calls, 2);
	assert_int_equal(S.nsleeps, 1);
	svc_get_stats(f->svc, &st);
	assert_int_equal(st.requests, 2);
	assert_int_equal(st.retries, 1);
	assert_int_equal(st.errors, 0);
	fixture_free(f);
}

static void test_throttling_backs_off_then_eagain(void **state)
{
	struct retry_policy rp;
	struct fixture *f;
	struct aws_err err;
	struct svc_stats st;
	int i;
	(void)state;

	retry_policy_default(&rp);
	rp.rand = max_rand;
	f = fixture_new("http://127.0.0.1:8000", 0);
	for (i = 0; i < rp.max_attempts; i++)
		S.steps[i] = (struct script_step){ 0, 400,
			"{\"__type\":\"com.amazonaws.dynamodb.v20120810#"
			"ProvisionedThroughputExceededException\","
			"\"message\":\"slow down\"}", NULL };
	S.nsteps = rp.max_attempts;
	assert_int_equal(call_list_tables(f, 1, &err), -EAGAIN);
	assert_int_equal(S.calls, rp.max_attempts);
	assert_int_equal(err.attempts, rp.max_attempts);
	assert_string_equal(err.type, "ProvisionedThroughputExceededException");
	assert_string_equal(err.message, "slow down");
	/* With rand at its maximum every delay is the full exponential cap. */
	assert_int_equal(S.nsleeps, rp.max_attempts - 1);
	for (i = 0; i < S.nsleeps; i++)
		assert_int_equal(S.sleeps[i],
				 retry_delay_ms(&rp, RETRY_THROTTLE, i + 1));
	assert_true(S.sleeps[0] > 0);
	svc_get_stats(f->svc, &st);
	assert_int_equal(st.throttles, (uint64_t)rp.max_attempts);
	assert_int_equal(st.errors, 1);
	fixture_free(f);
}

static void test_validation_is_not_retried(void **state)
{
	struct fixture *f;
	struct aws_err err;
	(void)state;

	f = fixture_new("http://127.0.0.1:8000", 0);
	S.steps[0] = (struct script_step){ 0, 400,
		"{\"__type\":\"com.amazon.coral.validate#ValidationException\","
		"\"message\":\"One or more parameter values were invalid\"}",
		"x-amzn-RequestId: REQ123\r\n" };
	S.nsteps = 1;
	assert_int_equal(call_list_tables(f, 1, &err), -EINVAL);
	assert_int_equal(S.calls, 1);
	assert_int_equal(S.nsleeps, 0);
	assert_int_equal(err.status, 400);
	assert_string_equal(err.type, "ValidationException");
	assert_string_equal(err.request_id, "REQ123");
	fixture_free(f);
}

static void test_non_idempotent_not_retried_on_5xx(void **state)
{
	struct fixture *f;
	struct aws_err err;
	(void)state;

	f = fixture_new("http://127.0.0.1:8000", 0);
	S.steps[0] = (struct script_step){ 0, 502, "bad gateway", NULL };
	S.nsteps = 1;
	assert_int_equal(call_list_tables(f, 0, &err), -EIO);
	assert_int_equal(S.calls, 1);

	/* A throttle means the request did not run: safe to repeat. */
	script_reset(&S);
	S.steps[0] = (struct script_step){ 0, 429,
		"{\"__type\":\"TooManyRequestsException\"}", NULL };
	S.steps[1] = (struct script_step){ 0, 200, "{}", NULL };
	S.nsteps = 2;
	assert_int_equal(call_list_tables(f, 0, &err), 0);
	assert_int_equal(S.calls, 2);
	fixture_free(f);
}

static void test_transport_errors(void **state)
{
	struct retry_policy rp;
	struct fixture *f;
	struct aws_err err;
	int i;
	(void)state;

	retry_policy_default(&rp);
	f = fixture_new("http://127.0.0.1:8000", 0);
	for (i = 0; i < rp.max_attempts; i++)
		S.steps[i] = (struct script_step){ -ECONNREFUSED, 0, NULL, NULL };
	S.nsteps = rp.max_attempts;
	assert_int_equal(call_list_tables(f, 1, &err), -EIO);
	assert_int_equal(S.calls, rp.max_attempts);
	assert_int_equal(err.transport, -ECONNREFUSED);
	assert_int_equal(err.status, 0);
	fixture_free(f);
}

static void test_crc32_checked(void **state)
{
	static const char body[] = "{\"TableNames\":[\"a\"]}";
	char good[64];
	struct retry_policy rp;
	struct fixture *f;
	struct aws_err err;
	int i;
	(void)state;

	snprintf(good, sizeof(good), "x-amz-crc32: %lu\r\n",
		 crc32(0L, (const Bytef *)body, (uInt)strlen(body)));
	f = fixture_new("http://127.0.0.1:8000", SVC_CHECK_CRC32);
	S.steps[0] = (struct script_step){ 0, 200, body, good };
	S.nsteps = 1;
	assert_int_equal(call_list_tables(f, 1, &err), 0);

	script_reset(&S);
	retry_policy_default(&rp);
	for (i = 0; i < rp.max_attempts; i++)
		S.steps[i] = (struct script_step){ 0, 200, body,
			"x-amz-crc32: 12345\r\n" };
	S.nsteps = rp.max_attempts;
	assert_int_equal(call_list_tables(f, 1, &err), -EIO);
	assert_int_equal(S.calls, rp.max_attempts);
	assert_string_equal(err.type, "CRC32CheckFailed");
	fixture_free(f);
}

static void test_no_credentials(void **state)
{
	struct fixture *f;
	struct aws_err err;
	(void)state;

	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	f = fixture_new("http://127.0.0.1:8000", 0);
	S.nsteps = 0;
	assert_int_equal(call_list_tables(f, 1, &err), -EACCES);
	assert_int_equal(S.calls, 0);
	assert_string_equal(err.type, "NoCredentials");
	assert_true(strlen(err.message) > 0);
	fixture_free(f);
}

static void test_unsigned_service(void **state)
{
	struct fixture *f;
	(void)state;

	f = fixture_new("http://127.0.0.1:8000", SVC_UNSIGNED);
	S.steps[0] = (struct script_step){ 0, 200, "{}", NULL };
	S.nsteps = 1;
	assert_int_equal(call_list_tables(f, 1, NULL), 0);
	assert_null(strstr(S.headers, "authorization"));
	assert_null(strstr(S.headers, "x-amz-date"));
	fixture_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_signs_like_botocore, setup_env),
		cmocka_unit_test_setup(test_signs_session_token, setup_env),
		cmocka_unit_test_setup(test_base_path_and_query, setup_env),
		cmocka_unit_test_setup(test_retries_5xx_then_succeeds, setup_env),
		cmocka_unit_test_setup(test_throttling_backs_off_then_eagain, setup_env),
		cmocka_unit_test_setup(test_validation_is_not_retried, setup_env),
		cmocka_unit_test_setup(test_non_idempotent_not_retried_on_5xx, setup_env),
		cmocka_unit_test_setup(test_transport_errors, setup_env),
		cmocka_unit_test_setup(test_crc32_checked, setup_env),
		cmocka_unit_test_setup(test_no_credentials, setup_env),
		cmocka_unit_test_setup(test_unsigned_service, setup_env),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
