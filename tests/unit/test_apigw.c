/* apigw against a fake transport that answers by URL: every listing
 * followed through its pages (v1 position, v2 nextToken), both v1 shapes
 * ("item" and HAL's "_embedded"), route keys, the GetMethod fallback, and
 * the errors.  The real http client, svc and awserr run underneath. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend/apigw.h"
#include "backend/awscfg.h"
#include "backend/creds.h"
#include "backend/http.h"
#include "backend/svc.h"
#include "tests/scripted.h"
#include "tests/testutil.h"

#define EP "https://apigateway.us-east-1.amazonaws.com"
#define MAX_ROUTES 16

/* The fake network (tests/scripted.h); fixture_new fills it. */
static struct script S;

struct fixture {
	struct awscfg *cfg;
	struct creds_chain *creds;
	struct http_client *http;
	struct svc *v1, *v2;
	struct apigw *a;
};

static struct fixture *fixture_new(const struct script_answer *answers,
				   size_t n)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct http_opts ho;
	struct svc_opts so;
	struct dbuf why;

	assert_non_null(f);
	script_reset(&S);
	S.answers = answers;
	S.nanswers = n;
	/* v1 and v2 alike sign as apigateway: only the Authorization value
	 * holds the scope followed by the signed headers. */
	S.each_has = "/us-east-1/apigateway/aws4_request, SignedHeaders=";
	dbuf_init(&why, DBUF_CAP_SMALL);
	assert_int_equal(awscfg_load(&f->cfg, NULL, &why), 0);
	assert_int_equal(creds_chain_new(&f->creds, f->cfg), 0);
	memset(&ho, 0, sizeof(ho));
	assert_int_equal(http_client_new(&f->http, &ho), 0);
	http_client_set_transport(f->http, script_transport, &S);
	memset(&so, 0, sizeof(so));
	so.endpoint = EP;
	so.region = "us-east-1";
	so.service = "apigateway";
	assert_int_equal(svc_new(&f->v1, f->http, f->creds, &so), 0);
	assert_int_equal(svc_new(&f->v2, f->http, f->creds, &so), 0);
	svc_set_sleep(f->v1, script_sleep, &S);
	svc_set_sleep(f->v2, script_sleep, &S);
	assert_int_equal(apigw_new(&f->a, f->v1, f->v2), 0);
	dbuf_free(&why);
	return f;
}

static void fixture_free(struct fixture *f)
{
	apigw_free(f->a);
	svc_free(f->v1);
	svc_free(f->v2);
	http_client_free(f->http);
	creds_chain_free(f->creds);
	awscfg_free(f->cfg);
	free(f);
}

static int setup_env(void **state)
{
	(void)state;
	tu_example_creds_env();
	return 0;
}

/* Whatever a callback saw, as text. */
struct seen {
	char text[2048];
	int n;
	int stop_at;
};

static void seen_add(struct seen *s, const char *line)
{
	size_t l = strlen(s->text);

	snprintf(s->text + l, sizeof(s->text) - l, "%s\n", line);
}

static int on_api(void *ctx, const struct apigw_api *api)
{
	static const char *const kinds[] = { "REST", "HTTP", "WEBSOCKET" };
	struct seen *s = ctx;
	char line[256];

	snprintf(line, sizeof(line), "%s %s %s", kinds[api->kind], api->id,
		 api->name);
	seen_add(s, line);
	return ++s->n == s->stop_at ? 9 : 0;
}

static int on_route(void *ctx, const struct apigw_route *r)
{
	struct seen *s = ctx;
	char line[256];

	snprintf(line, sizeof(line), "%s %s %s", r->method ? r->method : "-",
		 r->path, r->auth);
	seen_add(s, line);
	return ++s->n == s->stop_at ? 9 : 0;
}

static int on_stage(void *ctx, const char *stage)
{
	struct seen *s = ctx;

	seen_add(s, stage);
	return ++s->n == s->stop_at ? 9 : 0;
}

static const struct script_answer apis[] = {
	{ EP "/restapis?limit=500", 200,
	  "{\"item\":[{\"id\":\"r1\",\"name\":\"orders\",\"createdDate\":1},"
	  "{\"id\":\"r2\",\"name\":\"two words\"}],\"position\":\"p/2 +\"}", NULL },
	/* HAL: a lone embedded item is an object, not an array */
	{ EP "/restapis?limit=500&position=p%2F2%20%2B", 200,
	  "{\"_links\":{},\"_embedded\":{\"item\":{\"id\":\"r3\",\"name\":\"hal\"}}}",
	  NULL },
	{ EP "/v2/apis?maxResults=500", 200,
	  "{\"items\":[{\"apiId\":\"h1\",\"name\":\"web\",\"protocolType\":\"HTTP\"},"
	  "{\"apiId\":\"x1\",\"name\":\"odd\",\"protocolType\":\"GRPC\"},"
	  "{\"apiId\":\"w1\",\"name\":\"chat\",\"protocolType\":\"WEBSOCKET\"}],"
	  "\"nextToken\":\"n==\"}", NULL },
	{ EP "/v2/apis?maxResults=500&nextToken=n%3D%3D", 200,
	  "{\"items\":[{\"apiId\":\"h2\",\"protocolType\":\"HTTP\"}]}", NULL },
};

static void test_list_apis_all_pages(void **state)
{
	struct fixture *f = fixture_new(apis, sizeof(apis) / sizeof(apis[0]));
	struct seen s;
	(void)state;

	memset(&s, 0, sizeof(s));
	assert_int_equal(apigw_list_apis(f->a, on_api, &s, NULL), 0);
	assert_string_equal(s.text,
			    "REST r1 orders\n"
			    "REST r2 two words\n"
			    "REST r3 hal\n"
			    "HTTP h1 web\n"
			    "WEBSOCKET w1 chat\n"
			    "HTTP h2 \n");
	assert_int_equal(S.calls, 4);
	assert_int_equal(S.lacking, 0);

	/* A non-zero callback value stops the walk and comes back. */
	memset(&s, 0, sizeof(s));
	s.stop_at = 2;
	S.calls = 0;
	assert_int_equal(apigw_list_apis(f->a, on_api, &s, NULL), 9);
	assert_int_equal(S.calls, 1);
	fixture_free(f);
}

static const struct script_answer rest_routes[] = {
	{ EP "/restapis/r1/resources?embed=methods&limit=500", 200,
	  "{\"item\":["
	  "{\"id\":\"root\",\"path\":\"/\"},"
	  "{\"id\":\"o\",\"path\":\"/orders\",\"resourceMethods\":{"
	  "\"GET\":{\"httpMethod\":\"GET\",\"authorizationType\":\"AWS_IAM\"},"
	  "\"POST\":{\"httpMethod\":\"POST\",\"authorizationType\":\"NONE\"}}}],"
	  "\"position\":\"pos1\"}", NULL },
	{ EP "/restapis/r1/resources?embed=methods&limit=500&position=pos1", 200,
	  "{\"_embedded\":{\"item\":["
	  "{\"id\":\"oid\",\"path\":\"/orders/{id}\",\"_embedded\":{"
	  "\"resource:methods\":[{\"httpMethod\":\"DELETE\","
	  "\"authorizationType\":\"COGNITO_USER_POOLS\"}]}},"
	  "{\"id\":\"px\",\"path\":\"/{proxy+}\",\"resourceMethods\":{\"ANY\":{}}}"
	  "]}}", NULL },
	/* the listing left ANY's authorization out: GetMethod */
	{ EP "/restapis/r1/resources/px/methods/ANY", 200,
	  "{\"httpMethod\":\"ANY\",\"authorizationType\":\"CUSTOM\"}", NULL },
};

static void test_rest_routes(void **state)
{
	struct fixture *f = fixture_new(rest_routes, sizeof(rest_routes) /
						     sizeof(rest_routes[0]));
	struct seen s;
	(void)state;

	memset(&s, 0, sizeof(s));
	assert_int_equal(apigw_list_routes(f->a, APIGW_REST, "r1", on_route,
					   &s, NULL), 0);
	assert_string_equal(s.text,
			    "GET /orders AWS_IAM\n"
			    "POST /orders NONE\n"
			    "DELETE /orders/{id} COGNITO_USER_POOLS\n"
			    "ANY /{proxy+} CUSTOM\n");
	assert_int_equal(S.calls, 3);
	fixture_free(f);
}

static const struct script_answer http_routes[] = {
	{ EP "/v2/apis/h1/routes?maxResults=500", 200,
	  "{\"items\":[{\"routeKey\":\"GET /orders/{id}\",\"routeId\":\"a\","
	  "\"authorizationType\":\"JWT\"},"
	  "{\"routeKey\":\"$default\",\"authorizationType\":\"NONE\"}],"
	  "\"nextToken\":\"t1\"}", NULL },
	{ EP "/v2/apis/h1/routes?maxResults=500&nextToken=t1", 200,
	  "{\"items\":[{\"routeKey\":\"ANY /{proxy+}\"},"
	  "{\"routeKey\":\"POST /items/{id}\",\"authorizationType\":\"AWS_IAM\"}]}",
	  NULL },
	{ EP "/v2/apis/w1/routes?maxResults=500", 200,
	  "{\"items\":[{\"routeKey\":\"$connect\",\"authorizationType\":\"AWS_IAM\"},"
	  "{\"routeKey\":\"$default\",\"authorizationType\":\"NONE\"},"
	  "{\"routeKey\":\"send message\",\"authorizationType\":\"NONE\"}]}", NULL },
};

static void test_v2_routes(void **state)
{
	struct fixture *f = fixture_new(http_routes, sizeof(http_routes) /
						     sizeof(http_routes[0]));
	struct seen s;
	(void)state;

	memset(&s, 0, sizeof(s));
	assert_int_equal(apigw_list_routes(f->a, APIGW_HTTP, "h1", on_route,
					   &s, NULL), 0);
	assert_string_equal(s.text,
			    "GET /orders/{id} JWT\n"
			    "- $default NONE\n"
			    "ANY /{proxy+} NONE\n"
			    "POST /items/{id} AWS_IAM\n");
	/* WebSocket route keys are names, even with a space. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(apigw_list_routes(f->a, APIGW_WEBSOCKET, "w1",
					   on_route, &s, NULL), 0);
	assert_string_equal(s.text,
			    "- $connect AWS_IAM\n"
			    "- $default NONE\n"
			    "- send message NONE\n");
	fixture_free(f);
}

static const struct script_answer stages[] = {
	{ EP "/restapis/r1/stages", 200,
	  "{\"item\":[{\"stageName\":\"prod\",\"deploymentId\":\"d\"},"
	  "{\"stageName\":\"dev\"}]}", NULL },
	{ EP "/restapis/a%2Fb/stages", 200, "{\"item\":[]}", NULL },
	{ EP "/v2/apis/h1/stages?maxResults=500", 200,
	  "{\"items\":[{\"stageName\":\"$default\"}],\"nextToken\":\"s\"}", NULL },
	{ EP "/v2/apis/h1/stages?maxResults=500&nextToken=s", 200,
	  "{\"items\":[{\"stageName\":\"beta\"}]}", NULL },
};

static void test_stages(void **state)
{
	struct fixture *f = fixture_new(stages, sizeof(stages) / sizeof(stages[0]));
	struct seen s;
	(void)state;

	memset(&s, 0, sizeof(s));
	assert_int_equal(apigw_list_stages(f->a, APIGW_REST, "r1", on_stage,
					   &s, NULL), 0);
	assert_string_equal(s.text, "prod\ndev\n");
	memset(&s, 0, sizeof(s));
	assert_int_equal(apigw_list_stages(f->a, APIGW_HTTP, "h1", on_stage,
					   &s, NULL), 0);
	assert_string_equal(s.text, "$default\nbeta\n");
	/* An id is one path segment, whatever it holds. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(apigw_list_stages(f->a, APIGW_REST, "a/b", on_stage,
					   &s, NULL), 0);
	assert_string_equal(s.text, "");
	fixture_free(f);
}

static const struct script_answer broken[] = {
	{ EP "/v2/apis/loop/routes?maxResults=500", 200,
	  "{\"items\":[],\"nextToken\":\"same\"}", NULL },
	{ EP "/v2/apis/loop/routes?maxResults=500&nextToken=same", 200,
	  "{\"items\":[],\"nextToken\":\"same\"}", NULL },
	{ EP "/restapis/html/stages", 200, "<html>oops</html>", NULL },
	{ EP "/restapis/deny/stages", 403,
	  "{\"message\":\"User: x is not authorized to perform: apigateway:GET\"}",
	  "x-amzn-ErrorType: AccessDeniedException\r\n" },
	{ EP "/restapis/slow/stages", 429,
	  "{\"message\":\"Too Many Requests\"}",
	  "x-amzn-ErrorType: TooManyRequestsException\r\n" },
};

static void test_errors(void **state)
{
	struct fixture *f = fixture_new(broken, sizeof(broken) / sizeof(broken[0]));
	struct aws_err err;
	struct seen s;
	(void)state;

	memset(&s, 0, sizeof(s));
	/* No such API: the fake answers NotFoundException. */
	assert_int_equal(apigw_list_routes(f->a, APIGW_REST, "nope", on_route,
					   &s, &err), -ENOENT);
	assert_int_equal(err.status, 404);
	assert_string_equal(err.type, "NotFoundException");
	/* A token that repeats ends the walk. */
	assert_int_equal(apigw_list_routes(f->a, APIGW_HTTP, "loop", on_route,
					   &s, &err), -EIO);
	assert_int_equal(apigw_list_stages(f->a, APIGW_REST, "html", on_stage,
					   &s, &err), -EIO);
	assert_string_equal(err.type, "SerializationException");
	assert_int_equal(apigw_list_stages(f->a, APIGW_REST, "deny", on_stage,
					   &s, &err), -EACCES);
	S.calls = 0;
	assert_int_equal(apigw_list_stages(f->a, APIGW_REST, "slow", on_stage,
					   &s, &err), -EAGAIN);
	assert_int_equal(S.calls, 3); /* svc's throttle retries */
	assert_int_equal(apigw_list_stages(f->a, APIGW_REST, "", on_stage,
					   &s, &err), -EINVAL);
	assert_int_equal(s.n, 0);
	fixture_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_list_apis_all_pages, setup_env),
		cmocka_unit_test_setup(test_rest_routes, setup_env),
		cmocka_unit_test_setup(test_v2_routes, setup_env),
		cmocka_unit_test_setup(test_stages, setup_env),
		cmocka_unit_test_setup(test_errors, setup_env),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
