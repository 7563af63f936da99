/* exapi: calls to deployed API Gateway APIs (see exapi.h and
 * docs/apis-backend.md).
 *
 * Not built on svc: the response streams to the caller instead of being
 * held whole, any status is an answer rather than an error, and only some
 * methods may be repeated.  What it shares with svc is the signer, the
 * credential chain, the retry delays and the errno mapping of awserr. */
#include "backend/exapi.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "backend/retry.h"
#include "backend/sigv4.h"

#define EXAPI_CONNECT_MS 5000L
#define EXAPI_TIMEOUT_MS 30000L
/* The body of a 5xx or 429 that may be retried is held back this far
 * before anything reaches the caller; a longer one is passed on and the
 * request is not repeated. */
#define EXAPI_HOLD_CAP (64u * 1024)
/* Headers exapi adds itself: host, x-amz-date, x-amz-security-token,
 * authorization. */
#define EXAPI_OWN_HEADERS 4

struct exapi {
	struct creds_chain *creds;
	struct http_client *http;
	struct sigv4_signer *signer;
	char *region;
	const char *scheme; /* static: "https" or "http" */
	const char *domain; /* static: "amazonaws.com" or ".com.cn" */
	long timeout_ms;
	struct retry_policy retry;
	exapi_clock_fn clock;
	void *clock_ctx;
	exapi_sleep_fn sleep;
	void *sleep_ctx;
};

/* One attempt's relay between http's sink and the caller's callback. */
struct relay {
	exapi_data_cb cb;
	void *ctx;
	const struct http_response *hr;
	int may_retry; /* a retryable status's body may be held back */
	int decided;   /* the first body byte has been seen */
	int holding;
	struct dbuf held;
	size_t delivered; /* bytes that reached cb */
	int cb_rc;        /* non-zero: cb stopped the transfer */
};

static time_t default_clock(void *ctx)
{
	(void)ctx;
	return time(NULL);
}

static void default_sleep(void *ctx, unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	(void)ctx;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* A region is a DNS label run: it becomes part of the host name. */
static int region_ok(const char *r)
{
	const char *p;

	if (!r || !*r)
		return 0;
	for (p = r; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		      *p == '-'))
			return 0;
	return 1;
}

/* API ids are ten letters and digits; nothing else may reach the host. */
static int api_id_ok(const char *id)
{
	const char *p;

	if (!id || !*id || strlen(id) > 63)
		return 0;
	for (p = id; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9')))
			return 0;
	return 1;
}

int exapi_new(struct exapi **out, struct creds_chain *creds,
	      const struct exapi_opts *opts)
{
	struct exapi *e = NULL;
	struct http_opts ho;
	int rc;

	*out = NULL;
	if (!opts || !region_ok(opts->region) ||
	    (opts->scheme && strcmp(opts->scheme, "https") &&
	     strcmp(opts->scheme, "http")))
		return -EINVAL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->creds = creds;
	e->scheme = opts->scheme && !strcmp(opts->scheme, "http") ? "http"
								  : "https";
	e->domain = strncmp(opts->region, "cn-", 3) == 0 ? "amazonaws.com.cn"
							 : "amazonaws.com";
	e->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms
					     : EXAPI_TIMEOUT_MS;
	retry_policy_default(&e->retry);
	e->clock = default_clock;
	e->sleep = default_sleep;
	e->region = strdup(opts->region);
	e->signer = sigv4_signer_new();
	if (!e->region || !e->signer) {
		rc = -ENOMEM;
		goto out;
	}
	memset(&ho, 0, sizeof(ho));
	ho.connect_timeout_ms = opts->connect_timeout_ms > 0
		? opts->connect_timeout_ms : EXAPI_CONNECT_MS;
	ho.timeout_ms = e->timeout_ms;
	ho.connect_to = opts->connect_to;
	ho.ca_file = opts->ca_file;
	rc = http_client_new(&e->http, &ho);
	if (rc)
		goto out;
	*out = e;
	e = NULL;
out:
	exapi_free(e);
	return rc;
}

void exapi_free(struct exapi *e)
{
	if (!e)
		return;
	http_client_free(e->http);
	sigv4_signer_free(e->signer);
	free(e->region);
	free(e);
}

void exapi_set_clock(struct exapi *e, exapi_clock_fn fn, void *ctx)
{
	e->clock = fn ? fn : default_clock;
	e->clock_ctx = fn ? ctx : NULL;
}

void exapi_set_sleep(struct exapi *e, exapi_sleep_fn fn, void *ctx)
{
	e->sleep = fn ? fn : default_sleep;
	e->sleep_ctx = fn ? ctx : NULL;
}

struct http_client *exapi_http(struct exapi *e)
{
	return e->http;
}

void exapi_response_init(struct exapi_response *r)
{
	r->status = 0;
	dbuf_init(&r->status_line, DBUF_CAP_SMALL);
	dbuf_init(&r->headers, DBUF_CAP_SMALL);
}

void exapi_response_free(struct exapi_response *r)
{
	r->status = 0;
	dbuf_free(&r->status_line);
	dbuf_free(&r->headers);
}

/* Requests that may be sent again: the safe and idempotent methods. */
static int method_repeatable(const char *m)
{
	static const char *const ok[] = { "GET", "HEAD", "OPTIONS", "PUT",
					  "DELETE" };
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strcmp(m, ok[i]) == 0)
			return 1;
	return 0;
}

static int status_retryable(long status)
{
	return status == 429 || (status >= 500 && status <= 599);
}

static int relay_pass(struct relay *r, const char *data, size_t len)
{
	int rc;

	r->delivered += len;
	if (!r->cb)
		return 0;
	rc = r->cb(r->ctx, data, len);
	if (rc)
		r->cb_rc = rc;
	return rc;
}

/* Hand what was held back to the caller (the attempt is final). */
static int relay_flush(struct relay *r)
{
	int rc = 0;

	if (r->holding && dbuf_len(&r->held))
		rc = relay_pass(r, dbuf_str(&r->held), dbuf_len(&r->held));
	r->holding = 0;
	dbuf_reset(&r->held);
	return rc;
}

static int relay_data(void *ctx, const char *data, size_t len)
{
	struct relay *r = ctx;

	if (!r->decided) {
		r->decided = 1;
		r->holding = r->may_retry && status_retryable(r->hr->status);
	}
	if (r->holding) {
		if (dbuf_add(&r->held, data, len) == 0)
			return 0;
		/* Too long to hold: this answer is the one. */
		if (relay_flush(r))
			return r->cb_rc;
	}
	return relay_pass(r, data, len);
}

/* The wire path: "/" + stage (unless $default) + the path, each segment
 * percent-encoded and the '/'s kept. */
static int build_path(struct dbuf *out, const struct exapi_request *req)
{
	const char *path = req->path && *req->path ? req->path : "/";
	int rc = 0;

	if (*path != '/')
		return -EINVAL;
	if (req->stage && *req->stage && strcmp(req->stage, "$default")) {
		rc = dbuf_addc(out, '/');
		if (!rc)
			rc = http_pct_encode(out, req->stage, 0);
	}
	if (!rc)
		rc = http_pct_encode(out, path, 1);
	return rc;
}

/* Headers exapi owns are not taken from the caller: the Host always, and
 * when signing, everything the signature sets. */
static int caller_header_dropped(const char *name, int sign)
{
	static const char *const signed_own[] = {
		"authorization", "x-amz-date", "x-amz-security-token",
		"x-amz-content-sha256",
	};
	size_t i;

	if (!name || strcasecmp(name, "host") == 0)
		return 1;
	if (!sign)
		return 0;
	for (i = 0; i < sizeof(signed_own) / sizeof(signed_own[0]); i++)
		if (strcasecmp(name, signed_own[i]) == 0)
			return 1;
	return 0;
}

/* Add x-amz-date, the token and authorization for this attempt to
 * hdrs[*n...].  so and cr hold the values and stay alive until sent. */
static int sign_request(struct exapi *e, const struct exapi_request *req,
			const char *wire_path, struct http_header *hdrs,
			size_t *n, struct sigv4_out *so, struct creds *cr,
			struct aws_err *err)
{
	struct sigv4_header *sh = NULL;
	struct sigv4_request sreq;
	struct sigv4_params sp;
	struct dbuf why;
	size_t i;
	int rc;

	dbuf_init(&why, DBUF_CAP_SMALL);
	rc = creds_get(e->creds, cr, &why);
	if (rc) {
		awserr_clear(err);
		snprintf(err->type, sizeof(err->type), "%s", "NoCredentials");
		snprintf(err->message, sizeof(err->message), "%s",
			 dbuf_len(&why) ? dbuf_str(&why) : "no credentials");
		rc = -EACCES;
		goto out;
	}
	sh = calloc(*n, sizeof(*sh));
	if (!sh) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < *n; i++) {
		sh[i].name = hdrs[i].name;
		sh[i].value = hdrs[i].value;
	}
	memset(&sreq, 0, sizeof(sreq));
	sreq.method = req->method;
	sreq.path = wire_path;
	sreq.query = req->query && *req->query ? req->query : NULL;
	sreq.headers = sh;
	sreq.nheaders = *n;
	sreq.body = req->body;
	sreq.body_len = req->body_len;
	memset(&sp, 0, sizeof(sp));
	sp.access_key = cr->access_key;
	sp.secret_key = cr->secret_key;
	sp.session_token = cr->session_token;
	sp.region = e->region;
	sp.service = "execute-api";
	sp.now = e->clock(e->clock_ctx);
	rc = sigv4_sign(e->signer, &sreq, &sp, so);
	if (rc)
		goto out;
	hdrs[*n].name = "x-amz-date";
	hdrs[(*n)++].value = so->amz_date;
	if (cr->session_token && *cr->session_token) {
		hdrs[*n].name = "x-amz-security-token";
		hdrs[(*n)++].value = cr->session_token;
	}
	hdrs[*n].name = "authorization";
	hdrs[(*n)++].value = dbuf_str(&so->authorization);
out:
	free(sh);
	dbuf_free(&why);
	return rc;
}

int exapi_invoke(struct exapi *e, const struct exapi_request *req,
		 exapi_data_cb cb, void *ctx, struct exapi_response *resp,
		 struct aws_err *err_out)
{
	struct aws_err local;
	struct aws_err *err = err_out ? err_out : &local;
	struct http_header *hdrs = NULL;
	struct http_request hreq;
	struct http_response hr;
	struct http_sink sink;
	struct sigv4_out so;
	struct creds cr;
	struct relay r;
	struct dbuf url, host, path, why;
	size_t n0 = 0, n, i;
	long deadline, left;
	enum retry_class cls;
	unsigned delay;
	int attempt, rc, repeatable, retry;

	awserr_clear(err);
	memset(&so, 0, sizeof(so));
	memset(&cr, 0, sizeof(cr));
	memset(&r, 0, sizeof(r));
	dbuf_init(&r.held, EXAPI_HOLD_CAP);
	http_response_init(&hr);
	dbuf_init(&url, DBUF_CAP_SMALL);
	dbuf_init(&host, DBUF_CAP_SMALL);
	dbuf_init(&path, DBUF_CAP_SMALL);
	dbuf_init(&why, DBUF_CAP_SMALL);
	deadline = mono_ms() + e->timeout_ms;
	resp->status = 0;
	dbuf_reset(&resp->status_line);
	dbuf_reset(&resp->headers);

	if (!req || !api_id_ok(req->api_id) || !req->method ||
	    (req->query && strpbrk(req->query, " \t\r\n#")) ||
	    (req->nheaders && !req->headers) ||
	    (req->body_len && !req->body)) {
		rc = -EINVAL;
		goto fail_local;
	}
	repeatable = method_repeatable(req->method);
	rc = build_path(&path, req);
	if (!rc)
		rc = dbuf_addf(&host, "%s.execute-api.%s.%s", req->api_id,
			       e->region, e->domain);
	if (!rc)
		rc = dbuf_addf(&url, "%s://%s%s", e->scheme, dbuf_str(&host),
			       dbuf_str(&path));
	if (!rc && req->query && *req->query)
		rc = dbuf_addf(&url, "?%s", req->query);
	if (rc)
		goto fail_local;

	hdrs = calloc(req->nheaders + EXAPI_OWN_HEADERS, sizeof(*hdrs));
	if (!hdrs) {
		rc = -ENOMEM;
		goto fail_local;
	}
	/* With connect_to, the URL's host still names the API: it is what
	 * the Host header, the TLS name and the signature carry. */
	hdrs[n0].name = "host";
	hdrs[n0++].value = dbuf_str(&host);
	for (i = 0; i < req->nheaders; i++)
		if (!caller_header_dropped(req->headers[i].name, req->sign))
			hdrs[n0++] = req->headers[i];

	for (attempt = 1;; attempt++) {
		err->attempts = attempt;
		n = n0;
		sigv4_out_free(&so);
		creds_clear(&cr);
		if (req->sign) {
			rc = sign_request(e, req, dbuf_str(&path), hdrs, &n,
					  &so, &cr, err);
			if (rc == -EACCES)
				goto out; /* err says NoCredentials */
			if (rc)
				goto fail_local;
		}
		left = deadline - mono_ms();
		if (left <= 0) {
			awserr_from_transport(err, -ETIMEDOUT,
					      "no time left for another attempt");
			rc = awserr_to_errno(err);
			goto out;
		}
		memset(&hreq, 0, sizeof(hreq));
		hreq.method = req->method;
		hreq.url = dbuf_str(&url);
		hreq.headers = hdrs;
		hreq.nheaders = n;
		hreq.body = req->body;
		hreq.body_len = req->body_len;
		hreq.timeout_ms = left;

		r.cb = cb;
		r.ctx = ctx;
		r.hr = &hr;
		r.may_retry = repeatable && attempt < e->retry.max_attempts;
		r.decided = 0;
		r.holding = 0;
		r.delivered = 0;
		r.cb_rc = 0;
		dbuf_reset(&r.held);
		sink.data = relay_data;
		sink.ctx = &r;
		sink.status_line = &resp->status_line;
		rc = http_perform_stream(e->http, &hreq, &sink, &hr, &why);
		if (r.cb_rc) {
			rc = r.cb_rc;
			goto answered;
		}
		/* Retry only what never reached the caller. */
		retry = r.may_retry && r.delivered == 0;
		if (rc) {
			awserr_from_transport(err, rc, dbuf_str(&why));
			cls = retry_classify(0, NULL, rc);
		} else {
			cls = retry_classify(hr.status, NULL, 0);
			if (!status_retryable(hr.status))
				cls = RETRY_NEVER;
		}
		delay = cls == RETRY_NEVER ? 0
					   : retry_delay_ms(&e->retry, cls, attempt);
		if (!retry || cls == RETRY_NEVER ||
		    mono_ms() + (long)delay >= deadline) {
			if (rc) {
				rc = awserr_to_errno(err);
				goto out;
			}
			rc = relay_flush(&r);
			goto answered;
		}
		e->sleep(e->sleep_ctx, delay);
	}

answered:
	/* A response arrived (rc is 0, or cb's value when it stopped). */
	resp->status = hr.status;
	err->status = hr.status;
	if (dbuf_add(&resp->headers, dbuf_str(&hr.headers),
		     dbuf_len(&hr.headers)) && !rc)
		rc = -ENOMEM;
	goto out;
fail_local:
	awserr_from_transport(err, rc, strerror(-rc));
	rc = awserr_to_errno(err);
out:
	free(hdrs);
	sigv4_out_free(&so);
	creds_clear(&cr);
	dbuf_free(&r.held);
	http_response_free(&hr);
	dbuf_free(&url);
	dbuf_free(&host);
	dbuf_free(&path);
	dbuf_free(&why);
	return rc;
}
