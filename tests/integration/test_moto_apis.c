/* apigw and lambda against moto, where run-with-moto-apis.sh made a REST
 * API (resources /orders, /orders/{id}, /{proxy+}; methods with AWS_IAM,
 * NONE and ANY; stages prod and dev), 30 filler REST APIs, an HTTP API
 * ($default, ANY /items/{id}, GET /orders/{id}; stages $default, beta), a
 * WebSocket API ($connect, $default, sendmessage) and two functions.
 *
 * moto answers every listing in one page whatever limit, position,
 * nextToken or Marker say.  So each listing is read twice: straight from
 * moto, and through a forwarding transport that cuts moto's real answer
 * into small pages with tokens, which is how our page loops meet every
 * kind of document moto writes.  Invoke is not run: moto needs docker
 * for it. */
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

#include "backend/apigw.h"
#include "backend/awscfg.h"
#include "backend/creds.h"
#include "backend/dbuf.h"
#include "backend/http.h"
#include "backend/lambda.h"
#include "backend/svc.h"

static const char *endpoint, *function;
static int nrest;

/* ---- the re-paging transport ------------------------------------------- */

struct pager {
	struct http_client *real;
	size_t page;
	int requests;
	int paged; /* answers cut short with a token */
};

static const char *const token_params[] = { "position", "nextToken", "Marker" };
static const char *const size_params[] = { "limit", "maxResults", "MaxItems" };

static int param_is(const char *p, size_t len, const char *const *names,
		    size_t n)
{
	size_t i, l;

	for (i = 0; i < n; i++) {
		l = strlen(names[i]);
		if (len > l && strncmp(p, names[i], l) == 0 && p[l] == '=')
			return 1;
	}
	return 0;
}

static int repage(void *ctx, const struct http_request *req,
		  struct http_response *resp)
{
	static const char *const keys[][2] = {
		{ "item", "position" },
		{ "items", "nextToken" },
		{ "Functions", "NextMarker" },
	};
	struct pager *pg = ctx;
	struct http_request fwd = *req;
	struct dbuf url;
	const char *q, *p, *amp;
	size_t off = 0, i, n, len;
	int sized = 0, rc;
	json_t *root = NULL, *arr, *slice;
	char *text, tok[32];

	pg->requests++;
	dbuf_init(&url, DBUF_CAP_SMALL);
	q = strchr(req->url, '?');
	assert_int_equal(dbuf_add(&url, req->url, q ? (size_t)(q - req->url)
						    : strlen(req->url)), 0);
	/* Drop the token (moto would ignore it) and remember where to cut. */
	for (p = q ? q + 1 : NULL, n = 0; p && *p; p = amp ? amp + 1 : NULL) {
		amp = strchr(p, '&');
		len = amp ? (size_t)(amp - p) : strlen(p);
		if (param_is(p, len, token_params, 3)) {
			off = strtoul(strchr(p, '=') + 1, NULL, 10);
		} else {
			if (param_is(p, len, size_params, 3))
				sized = 1;
			assert_int_equal(dbuf_addc(&url, n++ ? '&' : '?'), 0);
			assert_int_equal(dbuf_add(&url, p, len), 0);
		}
		if (!amp)
			break;
	}
	fwd.url = dbuf_str(&url);
	rc = http_perform(pg->real, &fwd, resp, NULL);
	if (rc || resp->status != 200 || !sized)
		goto out;
	root = json_loadb(resp->body.ptr, dbuf_len(&resp->body), 0, NULL);
	for (i = 0; i < 3; i++) {
		arr = json_object_get(root, keys[i][0]);
		if (!json_is_array(arr))
			continue;
		slice = json_array();
		assert_non_null(slice);
		for (n = off; n < off + pg->page && n < json_array_size(arr); n++)
			json_array_append(slice, json_array_get(arr, n));
		json_object_del(root, keys[i][1]);
		if (off + pg->page < json_array_size(arr)) {
			snprintf(tok, sizeof(tok), "%zu", off + pg->page);
			json_object_set_new(root, keys[i][1], json_string(tok));
			pg->paged++;
		}
		json_object_set_new(root, keys[i][0], slice);
		text = json_dumps(root, JSON_COMPACT);
		assert_non_null(text);
		dbuf_reset(&resp->body);
		assert_int_equal(dbuf_adds(&resp->body, text), 0);
		free(text);
		break;
	}
out:
	json_decref(root);
	dbuf_free(&url);
	return rc;
}

/* ---- connections -------------------------------------------------------- */

struct conn {
	struct awscfg *cfg;
	struct creds_chain *chain;
	struct http_client *http, *real;
	struct svc *v1, *v2, *lsvc;
	struct apigw *gw;
	struct lambda *lam;
	struct pager pager;
};

static void conn_open(struct conn *c, size_t page)
{
	struct dbuf why;
	struct http_opts ho;
	struct svc_opts so;

	memset(c, 0, sizeof(*c));
	dbuf_init(&why, DBUF_CAP_SMALL);
	if (awscfg_load(&c->cfg, NULL, &why) != 0)
		fail_msg("awscfg_load: %s", dbuf_str(&why));
	dbuf_free(&why);
	assert_int_equal(creds_chain_new(&c->chain, c->cfg), 0);
	memset(&ho, 0, sizeof(ho));
	ho.timeout_ms = 30000;
	assert_int_equal(http_client_new(&c->http, &ho), 0);
	if (page) {
		assert_int_equal(http_client_new(&c->real, &ho), 0);
		c->pager.real = c->real;
		c->pager.page = page;
		http_client_set_transport(c->http, repage, &c->pager);
	}
	memset(&so, 0, sizeof(so));
	so.endpoint = endpoint;
	so.region = "us-east-1";
	so.service = "apigateway";
	assert_int_equal(svc_new(&c->v1, c->http, c->chain, &so), 0);
	assert_int_equal(svc_new(&c->v2, c->http, c->chain, &so), 0);
	so.service = "lambda";
	assert_int_equal(svc_new(&c->lsvc, c->http, c->chain, &so), 0);
	assert_int_equal(apigw_new(&c->gw, c->v1, c->v2), 0);
	assert_int_equal(lambda_new(&c->lam, c->lsvc), 0);
}

static void conn_close(struct conn *c)
{
	lambda_free(c->lam);
	apigw_free(c->gw);
	svc_free(c->v1);
	svc_free(c->v2);
	svc_free(c->lsvc);
	http_client_free(c->http);
	http_client_free(c->real);
	creds_chain_free(c->chain);
	awscfg_free(c->cfg);
}

/* ---- collecting --------------------------------------------------------- */

#define MAX_LINES 64

struct lines {
	char *v[MAX_LINES];
	int n;
};

static void lines_add(struct lines *l, const char *s)
{
	assert_true(l->n < MAX_LINES);
	l->v[l->n] = strdup(s);
	assert_non_null(l->v[l->n]);
	l->n++;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The lines sorted and joined with '|' (moto's order is not ours to
 * assert), then freed. */
static char *lines_join(struct lines *l)
{
	struct dbuf b;
	int i;

	dbuf_init(&b, DBUF_CAP_SMALL);
	qsort(l->v, (size_t)l->n, sizeof(l->v[0]), cmp_str);
	for (i = 0; i < l->n; i++) {
		assert_int_equal(dbuf_addf(&b, "%s%s", i ? "|" : "", l->v[i]), 0);
		free(l->v[i]);
	}
	l->n = 0;
	return dbuf_take(&b, NULL);
}

static void assert_lines(struct lines *l, const char *want)
{
	char *got = lines_join(l);

	if (strcmp(got, want)) {
		fprintf(stderr, "got:  %s\nwant: %s\n", got, want);
		free(got);
		fail();
	}
	free(got);
}

struct found {
	int rest, http, ws;
	char orders[64], http_id[64], ws_id[64];
};

static int on_api(void *ctx, const struct apigw_api *api)
{
	struct found *f = ctx;

	switch (api->kind) {
	case APIGW_REST:
		f->rest++;
		if (!strcmp(api->name, "dynfs-orders"))
			snprintf(f->orders, sizeof(f->orders), "%s", api->id);
		break;
	case APIGW_HTTP:
		f->http++;
		if (!strcmp(api->name, "dynfs-http"))
			snprintf(f->http_id, sizeof(f->http_id), "%s", api->id);
		break;
	case APIGW_WEBSOCKET:
		f->ws++;
		if (!strcmp(api->name, "dynfs-ws"))
			snprintf(f->ws_id, sizeof(f->ws_id), "%s", api->id);
		break;
	}
	return 0;
}

static int on_route(void *ctx, const struct apigw_route *r)
{
	char line[256];

	snprintf(line, sizeof(line), "%s %s %s", r->method ? r->method : "-",
		 r->path, r->auth);
	lines_add(ctx, line);
	return 0;
}

static int on_name(void *ctx, const char *name)
{
	lines_add(ctx, name);
	return 0;
}

/* Everything the setup made, read through c. */
static void check_all(struct conn *c)
{
	struct found f;
	struct lines l;
	struct aws_err err;
	char want[128];

	memset(&f, 0, sizeof(f));
	memset(&l, 0, sizeof(l));
	if (apigw_list_apis(c->gw, on_api, &f, &err))
		fail_msg("list_apis: %s %s", err.type, err.message);
	assert_int_equal(f.rest, nrest);
	assert_int_equal(f.http, 1);
	assert_int_equal(f.ws, 1);
	assert_true(f.orders[0] && f.http_id[0] && f.ws_id[0]);

	if (apigw_list_routes(c->gw, APIGW_REST, f.orders, on_route, &l, &err))
		fail_msg("list_routes REST: %s %s", err.type, err.message);
	assert_lines(&l, "ANY /{proxy+} NONE|DELETE /orders/{id} NONE|"
			 "GET /orders AWS_IAM|GET /orders/{id} AWS_IAM|"
			 "POST /orders NONE");
	assert_int_equal(apigw_list_stages(c->gw, APIGW_REST, f.orders,
					   on_name, &l, &err), 0);
	assert_lines(&l, "dev|prod");

	assert_int_equal(apigw_list_routes(c->gw, APIGW_HTTP, f.http_id,
					   on_route, &l, &err), 0);
	assert_lines(&l, "- $default NONE|ANY /items/{id} AWS_IAM|"
			 "GET /orders/{id} NONE");
	assert_int_equal(apigw_list_stages(c->gw, APIGW_HTTP, f.http_id,
					   on_name, &l, &err), 0);
	assert_lines(&l, "$default|beta");

	assert_int_equal(apigw_list_routes(c->gw, APIGW_WEBSOCKET, f.ws_id,
					   on_route, &l, &err), 0);
	assert_lines(&l, "- $connect AWS_IAM|- $default NONE|- sendmessage NONE");
	assert_int_equal(apigw_list_stages(c->gw, APIGW_WEBSOCKET, f.ws_id,
					   on_name, &l, &err), 0);
	assert_lines(&l, "prod");

	if (lambda_list_functions(c->lam, on_name, &l, &err))
		fail_msg("list_functions: %s %s", err.type, err.message);
	snprintf(want, sizeof(want), "%s|%s-2", function, function);
	assert_lines(&l, want);
}

static void test_listings(void **state)
{
	struct conn c;
	(void)state;

	conn_open(&c, 0);
	check_all(&c);
	conn_close(&c);
}

static void test_listings_in_small_pages(void **state)
{
	struct conn c;
	(void)state;

	/* Pages of one entry: every listing of n entries is n pages, so
	 * n - 1 answers carry a token.  REST APIs 31, resources 4 (the root
	 * too), HTTP routes 3, WebSocket routes 3, v2 APIs 2, HTTP stages 2,
	 * WebSocket stages 1, functions 2.  v1 GetStages has no pages. */
	conn_open(&c, 1);
	check_all(&c);
	assert_int_equal(c.pager.paged,
			 (nrest - 1) + 3 + 2 + 2 + 1 + 1 + 0 + 1);
	conn_close(&c);
}

static void test_missing_api(void **state)
{
	struct conn c;
	struct lines l;
	struct aws_err err;
	(void)state;

	memset(&l, 0, sizeof(l));
	conn_open(&c, 0);
	assert_int_equal(apigw_list_routes(c.gw, APIGW_REST, "nosuchapi0",
					   on_route, &l, &err), -ENOENT);
	assert_int_equal(err.status, 404);
	assert_int_equal(apigw_list_stages(c.gw, APIGW_HTTP, "nosuchapi0",
					   on_name, &l, &err), -ENOENT);
	assert_int_equal(l.n, 0);
	conn_close(&c);
}

static const char *need_env(const char *name)
{
	const char *v = getenv(name);

	if (!v || !*v) {
		fprintf(stderr, "test_moto_apis: %s is not set; run me through "
			"tests/integration/run-with-moto-apis.sh\n", name);
		exit(1);
	}
	return v;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_listings),
		cmocka_unit_test(test_listings_in_small_pages),
		cmocka_unit_test(test_missing_api),
	};

	endpoint = need_env("DYNFS_TEST_MOTO_ENDPOINT");
	function = need_env("DYNFS_TEST_FUNCTION");
	nrest = atoi(need_env("DYNFS_TEST_REST_APIS"));
	need_env("AWS_ACCESS_KEY_ID");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
