/* apitree: the cached listings of apis/ and functions/ and what a path
 * under them names (docs/apis.md, "The tree" and "Names").
 *
 * Listings are fetched on first use and again once older than apis_ttl.
 * A fetch runs without the tree's lock, under refresh_lock (so one fetch
 * at a time), and its result replaces the old one under the lock; readers
 * copy what they need out under the lock and never keep pointers. */
#include "fs/apiint.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs/log.h"

enum { M_GET, M_POST, M_PUT, M_PATCH, M_DELETE, M_HEAD, M_OPTIONS, M_ANY,
       M_N };

static const char *const method_names[M_N] = {
	"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY",
};

enum seg_kind { SEG_LIT, SEG_PARAM, SEG_GREEDY };

/* One path segment of an API's routes, with the methods defined there. */
struct rnode {
	char *seg;           /* as the API defines it: "orders", "{id}" */
	enum seg_kind kind;
	char *auth[M_N];     /* authorization type per method; NULL: none */
	struct rnode *kids;
	struct rnode *next;
};

struct stage {
	char *name;
	char *disp; /* the file name */
	struct stage *next;
};

/* Stages and routes of one API. */
struct detail {
	double at;
	struct stage *stages;
	struct rnode root;       /* the resource "/" */
	int has_default;         /* HTTP API with a $default route */
	char *default_auth;
	char *connect_auth;      /* WebSocket: the $connect route's */
};

struct api {
	char *id;
	char *name;
	char *disp; /* the file name: escaped name, "~id" when shared */
	enum apigw_kind kind;
	struct detail *d; /* NULL until first needed */
	struct api *next;
};

struct fn {
	char *name;
	char *disp;
	struct fn *next;
};

struct apitree {
	struct apigw *gw;
	struct lambda *lam;
	double ttl;
	/* Lock order: refresh_lock, then lock.  refresh_lock is held across
	 * a fetch, so structures replaced only under it (the API list and
	 * each API's detail) stay put for whoever holds it. */
	pthread_mutex_t refresh_lock;
	pthread_mutex_t lock;
	struct api *apis;
	double apis_at;
	int apis_ok;
	struct fn *fns;
	double fns_at;
	int fns_ok;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fresh(const struct apitree *t, double at, int ok)
{
	return ok && now_s() - at < t->ttl;
}

/* fresh() of a list's time and flag, read under t->lock. */
static int fresh_locked(struct apitree *t, const double *at, const int *ok)
{
	int r;

	pthread_mutex_lock(&t->lock);
	r = fresh(t, *at, *ok);
	pthread_mutex_unlock(&t->lock);
	return r;
}

int apiname_escape(struct dbuf *out, const char *name)
{
	const unsigned char *p = (const unsigned char *)name;
	int rc = 0;

	for (; *p && !rc; p++) {
		if (*p == '%' || *p == '/' || *p == '~' || *p < 0x20 ||
		    *p == 0x7f || (p == (const unsigned char *)name && *p == '.'))
			rc = dbuf_addf(out, "%%%02X", *p);
		else
			rc = dbuf_addc(out, (char)*p);
	}
	return rc;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* %XX decodes; a '%' not followed by two hex digits stays as it is. */
static char *name_decode(const char *s)
{
	struct dbuf b;
	int rc = 0;

	dbuf_init(&b, DBUF_CAP_SMALL);
	for (; *s && !rc; s++) {
		if (s[0] == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
			rc = dbuf_addc(&b, (char)(hexval(s[1]) * 16 +
						   hexval(s[2])));
			s += 2;
		} else {
			rc = dbuf_addc(&b, *s);
		}
	}
	if (rc) {
		dbuf_free(&b);
		return NULL;
	}
	return dbuf_take(&b, NULL);
}

static char *escaped(const char *name)
{
	struct dbuf b;

	dbuf_init(&b, DBUF_CAP_SMALL);
	if (apiname_escape(&b, name)) {
		dbuf_free(&b);
		return NULL;
	}
	return dbuf_take(&b, NULL);
}

static int method_index(const char *m, size_t len)
{
	int i;

	for (i = 0; i < M_N; i++)
		if (strlen(method_names[i]) == len &&
		    !strncmp(method_names[i], m, len))
			return i;
	return -1;
}

/* ---- freeing ------------------------------------------------------------ */

static void rnode_free_kids(struct rnode *n)
{
	struct rnode *k, *next;
	int i;

	for (k = n->kids; k; k = next) {
		next = k->next;
		rnode_free_kids(k);
		free(k->seg);
		for (i = 0; i < M_N; i++)
			free(k->auth[i]);
		free(k);
	}
	n->kids = NULL;
}

static void detail_free(struct detail *d)
{
	struct stage *s, *next;
	int i;

	if (!d)
		return;
	for (s = d->stages; s; s = next) {
		next = s->next;
		free(s->name);
		free(s->disp);
		free(s);
	}
	rnode_free_kids(&d->root);
	for (i = 0; i < M_N; i++)
		free(d->root.auth[i]);
	free(d->default_auth);
	free(d->connect_auth);
	free(d);
}

static void apis_free(struct api *a)
{
	struct api *next;

	for (; a; a = next) {
		next = a->next;
		free(a->id);
		free(a->name);
		free(a->disp);
		detail_free(a->d);
		free(a);
	}
}

static void fns_free(struct fn *f)
{
	struct fn *next;

	for (; f; f = next) {
		next = f->next;
		free(f->name);
		free(f->disp);
		free(f);
	}
}

void api_target_free(struct api_target *t)
{
	free(t->api_id);
	free(t->stage);
	free(t->req_path);
	free(t->query);
	free(t->method);
	free(t->function);
	free(t->file);
	memset(t, 0, sizeof(*t));
}

int apitree_new(struct apitree **out, struct apigw *gw, struct lambda *lam,
		unsigned ttl_s)
{
	struct apitree *t = calloc(1, sizeof(*t));

	*out = NULL;
	if (!t)
		return -ENOMEM;
	t->gw = gw;
	t->lam = lam;
	t->ttl = ttl_s;
	pthread_mutex_init(&t->refresh_lock, NULL);
	pthread_mutex_init(&t->lock, NULL);
	*out = t;
	return 0;
}

void apitree_free(struct apitree *t)
{
	if (!t)
		return;
	apis_free(t->apis);
	fns_free(t->fns);
	pthread_mutex_destroy(&t->refresh_lock);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

/* ---- fetching ----------------------------------------------------------- */

struct api_walk {
	struct api *head;
	struct api **tail;
};

static int api_cb(void *ctx, const struct apigw_api *in)
{
	struct api_walk *w = ctx;
	struct api *a;

	if (!in->id || !*in->id)
		return 0;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->id = strdup(in->id);
	a->name = strdup(in->name && *in->name ? in->name : in->id);
	a->kind = in->kind;
	*w->tail = a;
	w->tail = &a->next;
	return a->id && a->name ? 0 : -ENOMEM;
}

/* Display names: the escaped name, and "<name>~<id>" for every API whose
 * name another API shares. */
static int name_apis(struct api *list)
{
	struct api *a, *b;
	struct dbuf d;
	int shared, rc = 0;

	dbuf_init(&d, DBUF_CAP_SMALL);
	for (a = list; a && !rc; a = a->next) {
		shared = 0;
		for (b = list; b && !shared; b = b->next)
			shared = b != a && !strcmp(a->name, b->name);
		dbuf_reset(&d);
		rc = apiname_escape(&d, a->name);
		if (!rc && shared)
			rc = dbuf_addc(&d, '~');
		if (!rc && shared)
			rc = apiname_escape(&d, a->id);
		if (!rc) {
			a->disp = strdup(dbuf_str(&d));
			if (!a->disp)
				rc = -ENOMEM;
		}
	}
	dbuf_free(&d);
	return rc;
}

static int ensure_apis(struct apitree *t, struct aws_err *err)
{
	struct api_walk w = { NULL, NULL };
	struct api *old = NULL, *a, *o;
	int ok, rc = 0;

	ok = fresh_locked(t, &t->apis_at, &t->apis_ok);
	if (ok)
		return 0;
	pthread_mutex_lock(&t->refresh_lock);
	ok = fresh_locked(t, &t->apis_at, &t->apis_ok);
	if (ok)
		goto out;
	w.tail = &w.head;
	rc = apigw_list_apis(t->gw, api_cb, &w, err);
	if (!rc)
		rc = name_apis(w.head);
	if (rc)
		goto out;
	pthread_mutex_lock(&t->lock);
	/* An API that is still there keeps its stages and routes until
	 * their own time is up. */
	for (a = w.head; a; a = a->next)
		for (o = t->apis; o; o = o->next)
			if (!a->d && o->d && !strcmp(a->id, o->id) &&
			    a->kind == o->kind) {
				a->d = o->d;
				o->d = NULL;
			}
	old = t->apis;
	t->apis = w.head;
	w.head = NULL;
	t->apis_at = now_s();
	t->apis_ok = 1;
	pthread_mutex_unlock(&t->lock);
out:
	pthread_mutex_unlock(&t->refresh_lock);
	apis_free(old);
	apis_free(w.head);
	return rc;
}

struct fn_walk {
	struct fn *head;
	struct fn **tail;
};

static int fn_cb(void *ctx, const char *name)
{
	struct fn_walk *w = ctx;
	struct fn *f;

	if (!name || !*name)
		return 0;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	*w->tail = f;
	w->tail = &f->next;
	f->name = strdup(name);
	f->disp = escaped(name);
	return f->name && f->disp ? 0 : -ENOMEM;
}

static int ensure_fns(struct apitree *t, struct aws_err *err)
{
	struct fn_walk w = { NULL, NULL };
	struct fn *old = NULL;
	int ok, rc = 0;

	ok = fresh_locked(t, &t->fns_at, &t->fns_ok);
	if (ok)
		return 0;
	pthread_mutex_lock(&t->refresh_lock);
	ok = fresh_locked(t, &t->fns_at, &t->fns_ok);
	if (ok)
		goto out;
	w.tail = &w.head;
	rc = lambda_list_functions(t->lam, fn_cb, &w, err);
	if (rc)
		goto out;
	pthread_mutex_lock(&t->lock);
	old = t->fns;
	t->fns = w.head;
	w.head = NULL;
	t->fns_at = now_s();
	t->fns_ok = 1;
	pthread_mutex_unlock(&t->lock);
out:
	pthread_mutex_unlock(&t->refresh_lock);
	fns_free(old);
	fns_free(w.head);
	return rc;
}

static int stage_cb(void *ctx, const char *name)
{
	struct detail *d = ctx;
	struct stage *s, **tail;

	if (!name || !*name)
		return 0;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	for (tail = &d->stages; *tail; tail = &(*tail)->next)
		;
	*tail = s;
	s->name = strdup(name);
	s->disp = escaped(name);
	return s->name && s->disp ? 0 : -ENOMEM;
}

static enum seg_kind seg_kind_of(const char *seg, size_t len)
{
	if (len >= 2 && seg[0] == '{' && seg[len - 1] == '}')
		return len >= 3 && seg[len - 2] == '+' ? SEG_GREEDY : SEG_PARAM;
	return SEG_LIT;
}

static struct rnode *rnode_kid(struct rnode *n, const char *seg, size_t len)
{
	struct rnode *k, **tail;

	for (tail = &n->kids; *tail; tail = &(*tail)->next) {
		k = *tail;
		if (strlen(k->seg) == len && !memcmp(k->seg, seg, len))
			return k;
	}
	k = calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	k->seg = strndup(seg, len);
	if (!k->seg) {
		free(k);
		return NULL;
	}
	k->kind = seg_kind_of(seg, len);
	*tail = k;
	return k;
}

static int set_auth(char **slot, const char *auth)
{
	char *s = strdup(auth && *auth ? auth : "NONE");

	if (!s)
		return -ENOMEM;
	free(*slot);
	*slot = s;
	return 0;
}

struct route_walk {
	struct detail *d;
	enum apigw_kind kind;
};

static int route_cb(void *ctx, const struct apigw_route *r)
{
	struct route_walk *w = ctx;
	struct detail *d = w->d;
	struct rnode *n = &d->root;
	const char *p, *e;
	int m;

	if (!r->path)
		return 0;
	if (w->kind == APIGW_WEBSOCKET) {
		if (!strcmp(r->path, "$connect"))
			return set_auth(&d->connect_auth, r->auth);
		return 0;
	}
	if (w->kind == APIGW_HTTP && !strcmp(r->path, "$default")) {
		d->has_default = 1;
		return set_auth(&d->default_auth, r->auth);
	}
	for (p = r->path; *p; p = e) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		e = strchr(p, '/');
		if (!e)
			e = p + strlen(p);
		n = rnode_kid(n, p, (size_t)(e - p));
		if (!n)
			return -ENOMEM;
	}
	if (!r->method)
		return 0; /* a REST resource without methods of its own */
	m = method_index(r->method, strlen(r->method));
	if (m < 0)
		return 0;
	return set_auth(&n->auth[m], r->auth);
}

/* Under refresh_lock: a's stages and routes, fetched when stale. */
static int ensure_detail(struct apitree *t, struct api *a,
			 struct aws_err *err)
{
	struct route_walk w;
	struct detail *d, *old = NULL;
	int ok, rc;

	pthread_mutex_lock(&t->lock);
	ok = a->d && fresh(t, a->d->at, 1);
	pthread_mutex_unlock(&t->lock);
	if (ok)
		return 0;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	rc = apigw_list_stages(t->gw, a->kind, a->id, stage_cb, d, err);
	if (rc)
		goto out;
	w.d = d;
	w.kind = a->kind;
	rc = apigw_list_routes(t->gw, a->kind, a->id, route_cb, &w, err);
	if (rc)
		goto out;
	d->at = now_s();
	pthread_mutex_lock(&t->lock);
	old = a->d;
	a->d = d;
	d = NULL;
	pthread_mutex_unlock(&t->lock);
out:
	detail_free(old);
	detail_free(d);
	return rc;
}

/* ---- paths -------------------------------------------------------------- */

#define MAX_COMPS 128

struct comps {
	char *buf;           /* the path, split in place */
	const char *v[MAX_COMPS];
	char *dec[MAX_COMPS]; /* %XX-decoded, for route segments */
	size_t n;
};

static void comps_free(struct comps *c)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		free(c->dec[i]);
	free(c->buf);
	memset(c, 0, sizeof(*c));
}

static int comps_split(struct comps *c, const char *path)
{
	char *p, *save = NULL;

	memset(c, 0, sizeof(*c));
	c->buf = strdup(path);
	if (!c->buf)
		return -ENOMEM;
	for (p = strtok_r(c->buf, "/", &save); p;
	     p = strtok_r(NULL, "/", &save)) {
		if (c->n == MAX_COMPS)
			return -ENAMETOOLONG;
		c->dec[c->n] = name_decode(p);
		if (!c->dec[c->n])
			return -ENOMEM;
		c->v[c->n++] = p;
	}
	return 0;
}

/* Under t->lock. */
static struct api *find_api(struct apitree *t, const char *disp)
{
	struct api *a;

	for (a = t->apis; a; a = a->next)
		if (!strcmp(a->disp, disp))
			return a;
	return NULL;
}

static struct stage *find_stage(struct detail *d, const char *disp)
{
	struct stage *s;

	for (s = d->stages; s; s = s->next)
		if (!strcmp(s->disp, disp))
			return s;
	return NULL;
}

static const char *method_auth(const struct rnode *n, int m)
{
	return n->auth[m] ? n->auth[m] : n->auth[M_ANY];
}

/* The authorization of the route that serves method m on path dec[i..n)
 * below node: literal segments first, then {param}, then {proxy+}, as
 * API Gateway prefers the most specific route. */
static const char *match_method(const struct rnode *node, char *const *dec,
				size_t i, size_t n, int m)
{
	const struct rnode *k;
	const char *auth;
	int pass;

	if (i == n)
		return method_auth(node, m);
	for (pass = SEG_LIT; pass <= SEG_GREEDY; pass++) {
		for (k = node->kids; k; k = k->next) {
			if ((int)k->kind != pass)
				continue;
			if (pass == SEG_LIT && strcmp(k->seg, dec[i]))
				continue;
			if (pass == SEG_GREEDY)
				auth = method_auth(k, m);
			else
				auth = match_method(k, dec, i + 1, n, m);
			if (auth)
				return auth;
		}
	}
	return NULL;
}

typedef int (*node_fn)(void *ctx, const struct rnode *n, int greedy);

/* Every node whose directory dec[i..n) below node is, each once per way
 * of matching; greedy: inside a {proxy+} (its methods, no children). */
static int walk_dirs(const struct rnode *node, char *const *dec, size_t i,
		     size_t n, node_fn fn, void *ctx)
{
	const struct rnode *k;
	int rc;

	if (i == n)
		return fn(ctx, node, 0);
	for (k = node->kids; k; k = k->next) {
		if (k->kind == SEG_LIT && strcmp(k->seg, dec[i]))
			continue;
		if (k->kind == SEG_GREEDY)
			rc = fn(ctx, k, 1);
		else
			rc = walk_dirs(k, dec, i + 1, n, fn, ctx);
		if (rc)
			return rc;
	}
	return 0;
}

static int found_node(void *ctx, const struct rnode *n, int greedy)
{
	(void)n;
	(void)greedy;
	*(int *)ctx = 1;
	return 1;
}

struct lit_find {
	const char *seg;
	int found;
};

static int find_lit_kid(void *ctx, const struct rnode *n, int greedy)
{
	struct lit_find *l = ctx;
	const struct rnode *k;

	if (greedy)
		return 0;
	for (k = n->kids; k; k = k->next)
		if (k->kind == SEG_LIT && !strcmp(k->seg, l->seg))
			l->found = 1;
	return l->found;
}

static int dup_to(char **dst, const char *s)
{
	*dst = strdup(s);
	return *dst ? 0 : -ENOMEM;
}

/* The request path "/a/b" of dec[from..to). */
static int join_path(char **out, char *const *dec, size_t from, size_t to)
{
	struct dbuf b;
	size_t i;
	int rc = 0;

	dbuf_init(&b, DBUF_CAP_SMALL);
	for (i = from; i < to && !rc; i++) {
		rc = dbuf_addc(&b, '/');
		if (!rc)
			rc = dbuf_adds(&b, dec[i]);
	}
	if (!rc && from >= to)
		rc = dbuf_addc(&b, '/');
	if (rc) {
		dbuf_free(&b);
		return rc;
	}
	*out = dbuf_take(&b, NULL);
	return *out ? 0 : -ENOMEM;
}

/* Under t->lock: what comps[3..] of an API's stage names. */
static int resolve_route(const struct api *a, const struct stage *s,
			 struct comps *c, const char *path,
			 struct api_target *out)
{
	const struct detail *d = a->d;
	const char *last = c->v[c->n - 1];
	const char *q = strchr(last, '?');
	const char *auth = NULL;
	struct lit_find lf;
	int m, is_dir = 0, rc;

	if (a->kind == APIGW_WEBSOCKET) {
		if (c->n != 4 || strcmp(last, "socket"))
			return -ENOENT;
		out->kind = TARGET_SOCKET;
		out->sign = d->connect_auth &&
			    !strcmp(d->connect_auth, "AWS_IAM");
		rc = dup_to(&out->api_id, a->id);
		if (!rc)
			rc = dup_to(&out->stage, s->name);
		return rc;
	}
	m = method_index(last, q ? (size_t)(q - last) : strlen(last));
	if (m >= 0 && m != M_ANY) {
		/* A literal segment of that name is a directory. */
		lf.seg = c->dec[c->n - 1];
		lf.found = 0;
		walk_dirs(&d->root, c->dec, 3, c->n - 1, find_lit_kid, &lf);
		if (!lf.found) {
			auth = match_method(&d->root, c->dec, 3, c->n - 1, m);
			if (!auth && d->has_default)
				auth = d->default_auth ? d->default_auth
						       : "NONE";
		}
	}
	if (auth) {
		out->kind = TARGET_METHOD;
		out->sign = !strcmp(auth, "AWS_IAM");
		rc = dup_to(&out->api_id, a->id);
		if (!rc)
			rc = dup_to(&out->stage, s->name);
		if (!rc)
			rc = dup_to(&out->method, method_names[m]);
		if (!rc)
			rc = join_path(&out->req_path, c->dec, 3, c->n - 1);
		if (!rc && q && q[1])
			rc = dup_to(&out->query, q + 1);
		if (!rc) {
			out->file = q ? strndup(path, strlen(path) - strlen(q))
				      : strdup(path);
			if (!out->file)
				rc = -ENOMEM;
		}
		return rc;
	}
	walk_dirs(&d->root, c->dec, 3, c->n, found_node, &is_dir);
	if (!is_dir && !d->has_default)
		return -ENOENT;
	out->kind = TARGET_DIR;
	return 0;
}

/* Finds the API named c->v[1] and makes sure its detail is fresh; then
 * returns with t->lock held and *ap set (0), or unlocked (-errno). */
static int lock_api(struct apitree *t, struct comps *c, struct api **ap,
		    int need_detail, struct aws_err *err)
{
	struct api *a;
	int rc, ok;

	rc = ensure_apis(t, err);
	if (rc)
		goto out;
	pthread_mutex_lock(&t->lock);
	a = find_api(t, c->v[1]);
	ok = !need_detail || (a && a->d && fresh(t, a->d->at, 1));
	pthread_mutex_unlock(&t->lock);
	/* Only a stale detail waits for refresh_lock (and another fetch). */
	if (!ok) {
		pthread_mutex_lock(&t->refresh_lock);
		pthread_mutex_lock(&t->lock);
		a = find_api(t, c->v[1]);
		pthread_mutex_unlock(&t->lock);
		rc = a ? ensure_detail(t, a, err) : -ENOENT;
		pthread_mutex_unlock(&t->refresh_lock);
		if (rc)
			goto out;
	}
	pthread_mutex_lock(&t->lock);
	a = find_api(t, c->v[1]);
	if (!a || (need_detail && !a->d)) {
		pthread_mutex_unlock(&t->lock);
		rc = -ENOENT;
		goto out;
	}
	*ap = a; /* t->lock stays held */
out:
	return rc;
}

static int resolve_function(struct apitree *t, const char *name,
			    struct api_target *out, struct aws_err *err)
{
	const char *colon = strchr(name, ':');
	struct fn *f;
	size_t len;
	int rc;

	rc = ensure_fns(t, err);
	if (rc)
		return rc;
	rc = -ENOENT;
	pthread_mutex_lock(&t->lock);
	for (f = t->fns; f; f = f->next) {
		if (!strcmp(f->disp, name)) {
			rc = dup_to(&out->function, f->name);
			break;
		}
		/* NAME:QUALIFIER (a version or alias) */
		len = strlen(f->disp);
		if (colon && (size_t)(colon - name) == len &&
		    !strncmp(f->disp, name, len) && colon[1]) {
			out->function = malloc(strlen(f->name) +
					       strlen(colon) + 1);
			if (!out->function) {
				rc = -ENOMEM;
				break;
			}
			strcpy(out->function, f->name);
			strcat(out->function, colon);
			rc = 0;
			break;
		}
	}
	pthread_mutex_unlock(&t->lock);
	if (!rc)
		out->kind = TARGET_FUNCTION;
	return rc;
}

int apitree_resolve(struct apitree *t, const char *path,
		    struct api_target *out, struct aws_err *err)
{
	struct comps c;
	struct api *a;
	struct stage *s;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = comps_split(&c, path);
	if (rc)
		goto out;
	rc = -ENOENT;
	if (c.n == 0)
		goto out;
	if (!strcmp(c.v[0], "functions")) {
		if (c.n == 1) {
			out->kind = TARGET_DIR;
			rc = 0;
		} else if (c.n == 2) {
			rc = resolve_function(t, c.v[1], out, err);
		}
		goto out;
	}
	if (strcmp(c.v[0], "apis"))
		goto out;
	if (c.n == 1) {
		out->kind = TARGET_DIR;
		rc = 0;
		goto out;
	}
	rc = lock_api(t, &c, &a, c.n > 2, err);
	if (rc)
		goto out;
	if (c.n == 2) {
		out->kind = TARGET_DIR;
	} else {
		s = find_stage(a->d, c.v[2]);
		if (!s)
			rc = -ENOENT;
		else if (c.n == 3)
			out->kind = TARGET_DIR;
		else
			rc = resolve_route(a, s, &c, path, out);
	}
	pthread_mutex_unlock(&t->lock);
out:
	comps_free(&c);
	if (rc)
		api_target_free(out);
	return rc;
}

/* ---- listings ----------------------------------------------------------- */

struct lister {
	apitree_fill_fn fill;
	void *ctx;
	struct dbuf seen; /* names given, each followed by NUL */
	int has_default;
	int rc;
};

static int give(struct lister *l, const char *name, int is_dir)
{
	const char *p = dbuf_str(&l->seen);
	const char *end = p + dbuf_len(&l->seen);
	int rc;

	for (; p < end; p += strlen(p) + 1)
		if (!strcmp(p, name))
			return 0;
	rc = dbuf_add(&l->seen, name, strlen(name) + 1);
	if (rc)
		return rc;
	return l->fill(l->ctx, name, is_dir) ? 1 : 0;
}

static int list_node(void *ctx, const struct rnode *n, int greedy)
{
	struct lister *l = ctx;
	const struct rnode *k;
	struct dbuf name;
	int m, rc = 0;

	dbuf_init(&name, DBUF_CAP_SMALL);
	for (k = n->kids; k && !rc && !greedy; k = k->next) {
		dbuf_reset(&name);
		rc = apiname_escape(&name, k->seg);
		if (!rc)
			rc = give(l, dbuf_str(&name), 1);
	}
	for (m = 0; m < M_ANY && !rc; m++)
		if (l->has_default || method_auth(n, m))
			rc = give(l, method_names[m], 0);
	dbuf_free(&name);
	l->rc = rc;
	return rc;
}

int apitree_list(struct apitree *t, const char *path, apitree_fill_fn fill,
		 void *ctx, struct aws_err *err)
{
	struct lister l;
	struct comps c;
	struct api *a;
	struct stage *s;
	struct fn *f;
	int m, rc;

	memset(&l, 0, sizeof(l));
	l.fill = fill;
	l.ctx = ctx;
	dbuf_init(&l.seen, DBUF_CAP_BODY);
	rc = comps_split(&c, path);
	if (rc)
		goto out;
	rc = -ENOENT;
	if (c.n == 0)
		goto out;
	if (!strcmp(c.v[0], "functions")) {
		if (c.n != 1) {
			rc = -ENOTDIR;
			goto out;
		}
		rc = ensure_fns(t, err);
		if (rc)
			goto out;
		pthread_mutex_lock(&t->lock);
		for (f = t->fns; f && !rc; f = f->next)
			rc = give(&l, f->disp, 0);
		pthread_mutex_unlock(&t->lock);
		goto out;
	}
	if (strcmp(c.v[0], "apis"))
		goto out;
	if (c.n == 1) {
		rc = ensure_apis(t, err);
		if (rc)
			goto out;
		pthread_mutex_lock(&t->lock);
		for (a = t->apis; a && !rc; a = a->next)
			rc = give(&l, a->disp, 1);
		pthread_mutex_unlock(&t->lock);
		goto out;
	}
	rc = lock_api(t, &c, &a, 1, err);
	if (rc)
		goto out;
	if (c.n == 2) {
		for (s = a->d->stages; s && !rc; s = s->next)
			rc = give(&l, s->disp, 1);
	} else if (!find_stage(a->d, c.v[2])) {
		rc = -ENOENT;
	} else if (a->kind == APIGW_WEBSOCKET) {
		rc = c.n == 3 ? give(&l, "socket", 0) : -ENOENT;
	} else {
		l.has_default = a->d->has_default;
		walk_dirs(&a->d->root, c.dec, 3, c.n, list_node, &l);
		rc = l.rc;
		/* $default takes any path and method. */
		for (m = 0; m < M_ANY && !rc && l.has_default; m++)
			rc = give(&l, method_names[m], 0);
		if (!rc && !dbuf_len(&l.seen)) {
			int is_dir = 0;

			walk_dirs(&a->d->root, c.dec, 3, c.n, found_node,
				  &is_dir);
			if (!is_dir)
				rc = -ENOENT;
		}
	}
	pthread_mutex_unlock(&t->lock);
out:
	comps_free(&c);
	dbuf_free(&l.seen);
	return rc > 0 ? 0 : rc; /* > 0: the kernel's buffer is full */
}
