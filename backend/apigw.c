/* apigw: API Gateway's management APIs, read-only (see apigw.h and
 * docs/apis-backend.md).
 *
 * v1 (REST APIs) answers in a HAL-like shape: a page is {"item": [...],
 * "position": "..."} or, with Accept: application/hal+json, the items
 * under "_embedded"; both are read.  v2 (HTTP and WebSocket APIs) pages
 * are {"items": [...], "nextToken": "..."}.  Every listing is followed to
 * its last page; a token that repeats ends the walk with -EIO rather than
 * looping. */
#include "backend/apigw.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "backend/dbuf.h"
#include "backend/http.h"

/* The largest page each API allows. */
#define APIGW_V1_LIMIT 500
#define APIGW_V2_LIMIT 500

struct apigw {
	struct svc *v1;
	struct svc *v2;
};

int apigw_new(struct apigw **out, struct svc *v1, struct svc *v2)
{
	struct apigw *a;

	*out = NULL;
	if (!v1 && !v2)
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->v1 = v1;
	a->v2 = v2;
	*out = a;
	return 0;
}

void apigw_free(struct apigw *a)
{
	free(a);
}

static void local_err(struct aws_err *e, const char *what)
{
	snprintf(e->type, sizeof(e->type), "%s", "SerializationException");
	snprintf(e->message, sizeof(e->message),
		 "%s: the response is not the expected JSON", what);
}

/* GET path?query and parse the body as a JSON object into *out. */
static int get_json(struct svc *s, const char *path, const char *query,
		    json_t **out, struct aws_err *err)
{
	struct http_response resp;
	struct svc_call call;
	json_t *j;
	int rc;

	*out = NULL;
	http_response_init(&resp);
	memset(&call, 0, sizeof(call));
	call.method = "GET";
	call.path = path;
	call.query = query;
	call.idempotent = 1;
	rc = svc_call(s, &call, &resp, err);
	if (rc)
		goto out;
	j = json_loadb(resp.body.ptr, dbuf_len(&resp.body), 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		local_err(err, path);
		rc = -EIO;
		goto out;
	}
	*out = j;
out:
	http_response_free(&resp);
	return rc;
}

/* One page's items: key ("item" or "items") at the top, or under
 * "_embedded".  HAL puts a single item there as an object rather than an
 * array, so a lone object is returned as such; the caller walks it with
 * page_item().  NULL: none. */
static json_t *page_items(json_t *page, const char *key)
{
	json_t *v = json_object_get(page, key);

	if (!v)
		v = json_object_get(json_object_get(page, "_embedded"), key);
	if (json_is_array(v) || json_is_object(v))
		return v;
	return NULL;
}

static size_t page_count(json_t *items)
{
	if (json_is_array(items))
		return json_array_size(items);
	return items ? 1 : 0;
}

static json_t *page_item(json_t *items, size_t i)
{
	if (json_is_array(items))
		return json_array_get(items, i);
	return i == 0 ? items : NULL;
}

static const char *str_of(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The next page's token, copied into *tok; *tok NULL at the end.  -EIO
 * when it equals the token that fetched this page. */
static int next_token(json_t *page, const char *key, char **tok,
		      const char *what, struct aws_err *err)
{
	const char *v = str_of(page, key);
	char *copy;

	if (!v || !*v) {
		free(*tok);
		*tok = NULL;
		return 0;
	}
	if (*tok && strcmp(*tok, v) == 0) {
		snprintf(err->type, sizeof(err->type), "%s",
			 "SerializationException");
		snprintf(err->message, sizeof(err->message),
			 "%s: the page token repeats", what);
		return -EIO;
	}
	copy = strdup(v);
	if (!copy)
		return -ENOMEM;
	free(*tok);
	*tok = copy;
	return 0;
}

/* "limit=500&position=..." (v1) or "maxResults=500&nextToken=..." (v2). */
static int page_query(struct dbuf *q, const char *fixed, const char *size_key,
		      int size, const char *tok_key, const char *tok)
{
	int rc;

	dbuf_reset(q);
	rc = dbuf_addf(q, "%s%s%s=%d", fixed ? fixed : "", fixed ? "&" : "",
		       size_key, size);
	if (!rc && tok) {
		rc = dbuf_addf(q, "&%s=", tok_key);
		if (!rc)
			rc = http_pct_encode(q, tok, 0);
	}
	return rc;
}

/* prefix + the encoded id + suffix. */
static int id_path(struct dbuf *p, const char *prefix, const char *id,
		   const char *suffix)
{
	int rc;

	dbuf_reset(p);
	if (!id || !*id)
		return -EINVAL;
	rc = dbuf_adds(p, prefix);
	if (!rc)
		rc = http_pct_encode(p, id, 0);
	if (!rc)
		rc = dbuf_adds(p, suffix);
	return rc;
}

/* Calls fn for every item of every page of path.  v1: limit/position,
 * "item"; v2: maxResults/nextToken, "items". */
typedef int (*item_fn)(void *ctx, json_t *item);

static int walk(struct svc *s, int v2, const char *path, const char *fixed,
		item_fn fn, void *ctx, struct aws_err *err)
{
	const char *items_key = v2 ? "items" : "item";
	const char *tok_key = v2 ? "nextToken" : "position";
	struct dbuf q;
	json_t *page = NULL, *items;
	char *tok = NULL;
	size_t i, n;
	int rc;

	dbuf_init(&q, DBUF_CAP_SMALL);
	do {
		rc = page_query(&q, fixed, v2 ? "maxResults" : "limit",
				v2 ? APIGW_V2_LIMIT : APIGW_V1_LIMIT, tok_key,
				tok);
		if (rc)
			goto out;
		json_decref(page);
		rc = get_json(s, path, dbuf_str(&q), &page, err);
		if (rc)
			goto out;
		items = page_items(page, items_key);
		n = page_count(items);
		for (i = 0; i < n; i++) {
			rc = fn(ctx, page_item(items, i));
			if (rc)
				goto out;
		}
		rc = next_token(page, tok_key, &tok, path, err);
		if (rc)
			goto out;
	} while (tok);
out:
	json_decref(page);
	free(tok);
	dbuf_free(&q);
	return rc;
}

/* ---- APIs --------------------------------------------------------------- */

struct api_walk {
	apigw_api_cb cb;
	void *ctx;
	int v2;
};

static int api_item(void *ctx, json_t *item)
{
	struct api_walk *w = ctx;
	struct apigw_api api;
	const char *proto;

	memset(&api, 0, sizeof(api));
	api.id = str_of(item, w->v2 ? "apiId" : "id");
	api.name = str_of(item, "name");
	if (!api.id)
		return 0;
	if (!api.name)
		api.name = "";
	if (!w->v2) {
		api.kind = APIGW_REST;
	} else {
		proto = str_of(item, "protocolType");
		if (proto && strcmp(proto, "HTTP") == 0)
			api.kind = APIGW_HTTP;
		else if (proto && strcmp(proto, "WEBSOCKET") == 0)
			api.kind = APIGW_WEBSOCKET;
		else
			return 0; /* a kind we do not know: not shown */
	}
	return w->cb(w->ctx, &api);
}

int apigw_list_apis(struct apigw *a, apigw_api_cb cb, void *ctx,
		    struct aws_err *err_out)
{
	struct aws_err local;
	struct aws_err *err = err_out ? err_out : &local;
	struct api_walk w = { cb, ctx, 0 };
	int rc = 0;

	awserr_clear(err);
	if (a->v1) {
		rc = walk(a->v1, 0, "/restapis", NULL, api_item, &w, err);
		if (rc)
			goto out;
	}
	if (a->v2) {
		w.v2 = 1;
		rc = walk(a->v2, 1, "/v2/apis", NULL, api_item, &w, err);
	}
out:
	return rc;
}

/* ---- stages ------------------------------------------------------------- */

struct stage_walk {
	apigw_stage_cb cb;
	void *ctx;
};

static int stage_item(void *ctx, json_t *item)
{
	struct stage_walk *w = ctx;
	const char *name = str_of(item, "stageName");

	return name && *name ? w->cb(w->ctx, name) : 0;
}

int apigw_list_stages(struct apigw *a, enum apigw_kind kind,
		      const char *api_id, apigw_stage_cb cb, void *ctx,
		      struct aws_err *err_out)
{
	struct aws_err local;
	struct aws_err *err = err_out ? err_out : &local;
	struct stage_walk w = { cb, ctx };
	struct dbuf path;
	json_t *page = NULL, *items;
	size_t i, n;
	int v2 = kind != APIGW_REST;
	int rc;

	awserr_clear(err);
	dbuf_init(&path, DBUF_CAP_SMALL);
	if (!(v2 ? a->v2 : a->v1)) {
		rc = -EINVAL;
		goto out;
	}
	rc = id_path(&path, v2 ? "/v2/apis/" : "/restapis/", api_id, "/stages");
	if (rc)
		goto out;
	if (v2) {
		rc = walk(a->v2, 1, dbuf_str(&path), NULL, stage_item, &w, err);
		goto out;
	}
	/* v1 GetStages has no pages: one answer holds them all. */
	rc = get_json(a->v1, dbuf_str(&path), NULL, &page, err);
	if (rc)
		goto out;
	items = page_items(page, "item");
	n = page_count(items);
	for (i = 0; i < n; i++) {
		rc = stage_item(&w, page_item(items, i));
		if (rc)
			goto out;
	}
out:
	json_decref(page);
	dbuf_free(&path);
	return rc;
}

/* ---- routes ------------------------------------------------------------- */

struct route_walk {
	struct apigw *a;
	const char *api_id;
	enum apigw_kind kind;
	apigw_route_cb cb;
	void *ctx;
	struct aws_err *err;
	struct dbuf tmp; /* scratch for paths */
};

/* GetMethod for a method whose authorizationType the resource listing
 * left out (a listing without embed=methods has only "GET": {}). */
static int method_auth(struct route_walk *w, const char *resource_id,
		       const char *method, json_t **out)
{
	int rc;

	rc = id_path(&w->tmp, "/restapis/", w->api_id, "/resources/");
	if (!rc)
		rc = http_pct_encode(&w->tmp, resource_id, 0);
	if (!rc)
		rc = dbuf_adds(&w->tmp, "/methods/");
	if (!rc)
		rc = http_pct_encode(&w->tmp, method, 0);
	if (rc)
		return rc;
	return get_json(w->a->v1, dbuf_str(&w->tmp), NULL, out, w->err);
}

static int rest_method(struct route_walk *w, json_t *resource,
		       const char *path, const char *method, json_t *m)
{
	struct apigw_route r;
	json_t *got = NULL;
	const char *rid;
	int rc = 0;

	r.method = method;
	r.path = path;
	r.auth = str_of(m, "authorizationType");
	if (!r.auth) {
		rid = str_of(resource, "id");
		if (!rid) {
			local_err(w->err, "GetResources");
			rc = -EIO;
			goto out;
		}
		rc = method_auth(w, rid, method, &got);
		if (rc)
			goto out;
		r.auth = str_of(got, "authorizationType");
		if (!r.auth)
			r.auth = "NONE";
	}
	rc = w->cb(w->ctx, &r);
out:
	json_decref(got);
	return rc;
}

static int resource_item(void *ctx, json_t *item)
{
	struct route_walk *w = ctx;
	const char *path = str_of(item, "path");
	const char *key, *name;
	json_t *methods, *m;
	size_t i, n;
	int rc = 0;

	if (!path)
		goto out;
	methods = json_object_get(item, "resourceMethods");
	if (json_is_object(methods)) {
		json_object_foreach(methods, key, m) {
			rc = rest_method(w, item, path, key, m);
			if (rc)
				goto out;
		}
		goto out;
	}
	/* HAL: the embedded method resources carry their own httpMethod. */
	methods = page_items(item, "resource:methods");
	n = page_count(methods);
	for (i = 0; i < n && !rc; i++) {
		m = page_item(methods, i);
		name = str_of(m, "httpMethod");
		if (name)
			rc = rest_method(w, item, path, name, m);
	}
out:
	return rc;
}

/* "GET /orders/{id}" -> GET and /orders/{id}; "$default" and any key
 * without a space: no method, the key as the path. */
static int route_item(void *ctx, json_t *item)
{
	struct route_walk *w = ctx;
	struct apigw_route r;
	const char *key = str_of(item, "routeKey");
	const char *sp;
	int rc;

	if (!key || !*key)
		return 0;
	r.auth = str_of(item, "authorizationType");
	if (!r.auth)
		r.auth = "NONE"; /* the v2 default */
	sp = w->kind == APIGW_HTTP ? strchr(key, ' ') : NULL;
	if (!sp) {
		r.method = NULL;
		r.path = key;
		return w->cb(w->ctx, &r);
	}
	dbuf_reset(&w->tmp);
	rc = dbuf_add(&w->tmp, key, (size_t)(sp - key));
	if (rc)
		return rc;
	r.method = dbuf_str(&w->tmp);
	while (*sp == ' ')
		sp++;
	r.path = sp;
	return w->cb(w->ctx, &r);
}

int apigw_list_routes(struct apigw *a, enum apigw_kind kind,
		      const char *api_id, apigw_route_cb cb, void *ctx,
		      struct aws_err *err_out)
{
	struct aws_err local;
	struct aws_err *err = err_out ? err_out : &local;
	struct route_walk w;
	struct dbuf path;
	int v2 = kind != APIGW_REST;
	int rc;

	awserr_clear(err);
	dbuf_init(&path, DBUF_CAP_SMALL);
	memset(&w, 0, sizeof(w));
	w.a = a;
	w.api_id = api_id;
	w.kind = kind;
	w.cb = cb;
	w.ctx = ctx;
	w.err = err;
	dbuf_init(&w.tmp, DBUF_CAP_SMALL);
	if (!(v2 ? a->v2 : a->v1)) {
		rc = -EINVAL;
		goto out;
	}
	rc = id_path(&path, v2 ? "/v2/apis/" : "/restapis/", api_id,
		     v2 ? "/routes" : "/resources");
	if (rc)
		goto out;
	if (v2)
		rc = walk(a->v2, 1, dbuf_str(&path), NULL, route_item, &w, err);
	else
		rc = walk(a->v1, 0, dbuf_str(&path), "embed=methods",
			  resource_item, &w, err);
out:
	dbuf_free(&w.tmp);
	dbuf_free(&path);
	return rc;
}
