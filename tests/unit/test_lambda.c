/* lambda against a scripted transport: ListFunctions pagination and
 * Invoke's request, headers, function errors, log tail and the rule that
 * an invocation is never sent twice.  The real http client, svc and
 * awserr run underneath. */
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
#include "backend/http.h"
#include "backend/lambda.h"
#include "backend/svc.h"
#include "tests/scripted.h"
#include "tests/testutil.h"

#define ENDPOINT "https://lambda.us-east-1.amazonaws.com"

/* The fake network (tests/scripted.h); setup_env empties it. */
static struct script S;

struct fixture {
	struct awscfg *cfg;
	struct creds_chain *creds;
	struct http_client *http;
	struct svc *svc;
	struct lambda *l;
};

static struct fixture *fixture_new(void)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct http_opts ho;
	struct svc_opts so;
	struct dbuf why;

	assert_non_null(f);
	dbuf_init(&why, DBUF_CAP_SMALL);
	assert_int_equal(awscfg_load(&f->cfg, NULL, &why), 0);
	assert_int_equal(creds_chain_new(&f->creds, f->cfg), 0);
	memset(&ho, 0, sizeof(ho));
	assert_int_equal(http_client_new(&f->http, &ho), 0);
	http_client_set_transport(f->http, script_transport, &S);
	memset(&so, 0, sizeof(so));
	so.endpoint = ENDPOINT;
	so.region = "us-east-1";
	so.service = "lambda";
	assert_int_equal(svc_new(&f->svc, f->http, f->creds, &so), 0);
	svc_set_clock(f->svc, script_clock, NULL);
	svc_set_sleep(f->svc, script_sleep, &S);
	assert_int_equal(lambda_new(&f->l, f->svc), 0);
	dbuf_free(&why);
	return f;
}

static void fixture_free(struct fixture *f)
{
	lambda_free(f->l);
	svc_free(f->svc);
	http_client_free(f->http);
	creds_chain_free(f->creds);
	awscfg_free(f->cfg);
	free(f);
}

static int setup_env(void **state)
{
	(void)state;
	script_reset(&S);
	tu_example_creds_env();
	return 0;
}

struct names {
	char all[512];
	int n;
	int stop_at; /* 1-based; 0: never */
};

static int collect(void *ctx, const char *name)
{
	struct names *ns = ctx;
	size_t l = strlen(ns->all);

	snprintf(ns->all + l, sizeof(ns->all) - l, "%s%s", l ? "," : "", name);
	ns->n++;
	return ns->n == ns->stop_at ? 42 : 0;
}

static void test_list_follows_markers(void **state)
{
	struct fixture *f = fixture_new();
	struct names ns;
	(void)state;

	memset(&ns, 0, sizeof(ns));
	S.steps[0] = (struct script_step){ 0, 200,
		"{\"Functions\":[{\"FunctionName\":\"a\",\"Runtime\":\"python3.12\"},"
		"{\"FunctionName\":\"b\"}],\"NextMarker\":\"tok/+= x\"}", NULL };
	S.steps[1] = (struct script_step){ 0, 200,
		"{\"Functions\":[],\"NextMarker\":\"t2\"}", NULL };
	S.steps[2] = (struct script_step){ 0, 200,
		"{\"Functions\":[{\"FunctionName\":\"c\"}],\"NextMarker\":null}",
		NULL };
	S.nsteps = 3;
	assert_int_equal(lambda_list_functions(f->l, collect, &ns, NULL), 0);
	assert_string_equal(ns.all, "a,b,c");
	assert_int_equal(S.calls, 3);
	assert_string_equal(S.urls[0], ENDPOINT "/2015-03-31/functions/?MaxItems=50");
	assert_string_equal(S.urls[1], ENDPOINT
			    "/2015-03-31/functions/?MaxItems=50&Marker=tok%2F%2B%3D%20x");
	assert_string_equal(S.urls[2], ENDPOINT
			    "/2015-03-31/functions/?MaxItems=50&Marker=t2");
	assert_string_equal(S.method, "GET");
	assert_non_null(strstr(S.headers, "/us-east-1/lambda/aws4_request"));
	fixture_free(f);
}

static void test_list_stops_and_fails(void **state)
{
	struct fixture *f = fixture_new();
	struct names ns;
	struct aws_err err;
	(void)state;

	memset(&ns, 0, sizeof(ns));
	ns.stop_at = 1;
	S.steps[0] = (struct script_step){ 0, 200,
		"{\"Functions\":[{\"FunctionName\":\"a\"},{\"FunctionName\":\"b\"}],"
		"\"NextMarker\":\"m\"}", NULL };
	S.nsteps = 1;
	assert_int_equal(lambda_list_functions(f->l, collect, &ns, NULL), 42);
	assert_string_equal(ns.all, "a");
	assert_int_equal(S.calls, 1);

	/* A marker that does not move must not loop. */
	script_reset(&S);
	memset(&ns, 0, sizeof(ns));
	S.steps[0] = (struct script_step){ 0, 200,
		"{\"Functions\":[],\"NextMarker\":\"m\"}", NULL };
	S.steps[1] = (struct script_step){ 0, 200,
		"{\"Functions\":[],\"NextMarker\":\"m\"}", NULL };
	S.nsteps = 2;
	assert_int_equal(lambda_list_functions(f->l, collect, &ns, &err), -EIO);
	assert_int_equal(S.calls, 2);

	script_reset(&S);
	S.steps[0] = (struct script_step){ 0, 200, "<html>", NULL };
	S.nsteps = 1;
	assert_int_equal(lambda_list_functions(f->l, collect, &ns, &err), -EIO);
	assert_string_equal(err.type, "SerializationException");

	script_reset(&S);
	S.steps[0] = (struct script_step){ 0, 403,
		"{\"Message\":\"User is not authorized\"}",
		"x-amzn-ErrorType: AccessDeniedException:http://internal.amazon.com/\r\n" };
	S.nsteps = 1;
	assert_int_equal(lambda_list_functions(f->l, collect, &ns, &err), -EACCES);
	assert_string_equal(err.type, "AccessDeniedException");
	assert_string_equal(err.message, "User is not authorized");
	fixture_free(f);
}

static void test_invoke_ok_with_log_tail(void **state)
{
	struct fixture *f = fixture_new();
	struct lambda_result res;
	struct aws_err err;
	(void)state;

	lambda_result_init(&res);
	/* "START RequestId: 1\nEND\n" */
	S.steps[0] = (struct script_step){ 0, 200, "{\"ok\":true}",
		"X-Amz-Executed-Version: $LATEST\r\n"
		"X-Amz-Log-Result: U1RBUlQgUmVxdWVzdElkOiAxCkVORAo=\r\n" };
	S.nsteps = 1;
	assert_int_equal(lambda_invoke(f->l,
		"arn:aws:lambda:us-east-1:123456789012:function:my-fn",
		"{\"x\":1}", 7, &res, &err), 0);
	assert_string_equal(S.urls[0], ENDPOINT "/2015-03-31/functions/"
		"arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Amy-fn"
		"/invocations");
	assert_string_equal(S.method, "POST");
	assert_string_equal(S.body, "{\"x\":1}");
	assert_non_null(strstr(S.headers, "x-amz-invocation-type: RequestResponse\n"));
	assert_non_null(strstr(S.headers, "x-amz-log-type: Tail\n"));
	assert_non_null(strstr(S.headers, "authorization: AWS4-HMAC-SHA256"));
	assert_int_equal(res.status, 200);
	assert_string_equal(res.function_error, "");
	assert_string_equal(dbuf_str(&res.payload), "{\"ok\":true}");
	assert_string_equal(dbuf_str(&res.log_tail), "START RequestId: 1\nEND\n");
	lambda_result_free(&res);
	fixture_free(f);
}

static void test_invoke_function_error(void **state)
{
	struct fixture *f = fixture_new();
	struct lambda_result res;
	struct aws_err err;
	(void)state;

	lambda_result_init(&res);
	S.steps[0] = (struct script_step){ 0, 200,
		"{\"errorMessage\":\"boom\",\"errorType\":\"Exception\"}",
		"X-Amz-Function-Error: Unhandled\r\n"
		"X-Amz-Log-Result: not base64!\r\n" };
	S.nsteps = 1;
	assert_int_equal(lambda_invoke(f->l, "fn", NULL, 0, &res, &err), 0);
	assert_string_equal(S.body, "");
	assert_string_equal(res.function_error, "Unhandled");
	assert_string_equal(dbuf_str(&res.payload),
			    "{\"errorMessage\":\"boom\",\"errorType\":\"Exception\"}");
	/* A tail that does not decode is dropped, the result kept. */
	assert_int_equal(dbuf_len(&res.log_tail), 0);
	lambda_result_free(&res);
	fixture_free(f);
}

static void test_invoke_failures(void **state)
{
	struct fixture *f = fixture_new();
	struct lambda_result res;
	struct aws_err err;
	(void)state;

	lambda_result_init(&res);
	S.steps[0] = (struct script_step){ 0, 404,
		"{\"Type\":\"User\",\"Message\":\"Function not found: x\"}",
		"x-amzn-ErrorType: ResourceNotFoundException\r\n" };
	S.nsteps = 1;
	assert_int_equal(lambda_invoke(f->l, "x", "{}", 2, &res, &err), -ENOENT);
	assert_int_equal(res.status, 404);
	assert_string_equal(err.type, "ResourceNotFoundException");

	/* The function may have run: a 5xx or a reset is not repeated. */
	script_reset(&S);
	S.steps[0] = (struct script_step){ 0, 502, "{\"Message\":\"bad\"}",
		"x-amzn-ErrorType: ServiceException\r\n" };
	S.nsteps = 1;
	assert_int_equal(lambda_invoke(f->l, "x", "{}", 2, &res, &err), -EIO);
	assert_int_equal(S.calls, 1);
	script_reset(&S);
	S.steps[0] = (struct script_step){ -ECONNRESET, 0, NULL, NULL };
	S.nsteps = 1;
	assert_int_equal(lambda_invoke(f->l, "x", "{}", 2, &res, &err), -EIO);
	assert_int_equal(S.calls, 1);
	assert_int_equal(err.transport, -ECONNRESET);

	/* A throttle means it did not run: svc may try again. */
	script_reset(&S);
	S.steps[0] = (struct script_step){ 0, 429, "{\"message\":\"Rate exceeded\"}",
		"x-amzn-ErrorType: TooManyRequestsException\r\n" };
	S.steps[1] = (struct script_step){ 0, 200, "null", NULL };
	S.nsteps = 2;
	assert_int_equal(lambda_invoke(f->l, "x", "{}", 2, &res, &err), 0);
	assert_int_equal(S.calls, 2);
	assert_string_equal(dbuf_str(&res.payload), "null");

	assert_int_equal(lambda_invoke(f->l, "", "{}", 2, &res, &err), -EINVAL);
	lambda_result_free(&res);
	fixture_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_list_follows_markers, setup_env),
		cmocka_unit_test_setup(test_list_stops_and_fails, setup_env),
		cmocka_unit_test_setup(test_invoke_ok_with_log_tail, setup_env),
		cmocka_unit_test_setup(test_invoke_function_error, setup_env),
		cmocka_unit_test_setup(test_invoke_failures, setup_env),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
