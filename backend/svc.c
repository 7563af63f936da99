#include "backend/svc.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <zlib.h>

#include "backend/sigv4.h"

/* Headers svc adds itself: host, x-amz-date, x-amz-security-token,
 * x-amz-content-sha256 and authorization. */
#define SVC_OWN_HEADERS 5
#define SVC_MAX_HEADERS 32

#define SVC_MAX_OPS 32

struct svc {
	char *endpoint;  /* as given, without a trailing '/' */
	char *origin;    /* scheme://host[:port] */
	char *host;      /* host[:port], the Host header */
	char *base_path; /* "" or "/base" */
	char *region;
	char *service;
	unsigned flags;
	struct retry_policy retry;
	struct retry_quota quota;
	struct http_client *http;
	struct creds_chain *creds;
	struct sigv4_signer *signer;
	svc_clock_fn clock;
	void *clock_ctx;
	svc_sleep_fn sleep;
	void *sleep_ctx;
	svc_log_fn log;
	void *log_ctx;
	struct svc_stats stats; /* updated with __atomic builtins */
	/* Requests by operation.  Lock order: a leaf. */
	pthread_mutex_t ops_lock;
	struct svc_op_count {
		char name[48];
		uint64_t n;
	} ops[SVC_MAX_OPS];
	size_t nops;
};

static time_t svc_default_clock(void *ctx)
{
	(void)ctx;
	return time(NULL);
}

static void svc_default_sleep(void *ctx, unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	(void)ctx;

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Split "scheme://host[:port][/base]" into its parts. */
static int svc_parse_endpoint(struct svc *s, const char *endpoint)
{
	const char *p, *slash;
	size_t n;

	p = strstr(endpoint, "://");
	if (!p || p == endpoint)
		return -EINVAL;
	p += 3;
	slash = strchr(p, '/');
	n = slash ? (size_t)(slash - p) : strlen(p);
	if (n == 0)
		return -EINVAL;
	s->endpoint = strdup(endpoint);
	if (!s->endpoint)
		return -ENOMEM;
	n = strlen(s->endpoint);
	while (n > 0 && s->endpoint[n - 1] == '/')
		s->endpoint[--n] = '\0';
	s->host = strndup(p, slash ? (size_t)(slash - p) : strlen(p));
	s->origin = strndup(endpoint, (size_t)(p - endpoint) + strlen(s->host ? s->host : ""));
	s->base_path = strdup(s->endpoint + strlen(s->origin ? s->origin : ""));
	if (!s->host || !s->origin || !s->base_path)
		return -ENOMEM;
	return 0;
}

int svc_new(struct svc **out, struct http_client *http,
	    struct creds_chain *creds, const struct svc_opts *opts)
{
	struct svc *s;
	int rc = -ENOMEM;

	*out = NULL;
	if (!opts->endpoint || !opts->region || !opts->service)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	retry_quota_init(&s->quota);
	pthread_mutex_init(&s->ops_lock, NULL);
	rc = svc_parse_endpoint(s, opts->endpoint);
	if (rc)
		goto out;
	rc = -ENOMEM;
	s->region = strdup(opts->region);
	s->service = strdup(opts->service);
	s->signer = sigv4_signer_new();
	if (!s->region || !s->service || !s->signer)
		goto out;
	s->flags = opts->flags;
	if (opts->retry)
		s->retry = *opts->retry;
	else
		retry_policy_default(&s->retry);
	s->http = http;
	s->creds = creds;
	s->clock = svc_default_clock;
	s->sleep = svc_default_sleep;
	*out = s;
	s = NULL;
	rc = 0;
out:
	svc_free(s);
	return rc;
}

void svc_free(struct svc *s)
{
	if (!s)
		return;
	sigv4_signer_free(s->signer);
	retry_quota_destroy(&s->quota);
	pthread_mutex_destroy(&s->ops_lock);
	free(s->endpoint);
	free(s->origin);
	free(s->host);
	free(s->base_path);
	free(s->region);
	free(s->service);
	free(s);
}

void svc_set_clock(struct svc *s, svc_clock_fn fn, void *ctx)
{
	s->clock = fn ? fn : svc_default_clock;
	s->clock_ctx = ctx;
}

void svc_set_sleep(struct svc *s, svc_sleep_fn fn, void *ctx)
{
	s->sleep = fn ? fn : svc_default_sleep;
	s->sleep_ctx = ctx;
}

void svc_set_log(struct svc *s, svc_log_fn fn, void *ctx)
{
	s->log = fn;
	s->log_ctx = ctx;
}

const char *svc_endpoint(const struct svc *s)
{
	return s->endpoint;
}

const char *svc_region(const struct svc *s)
{
	return s->region;
}

void svc_get_stats(struct svc *s, struct svc_stats *out)
{
	out->requests = __atomic_load_n(&s->stats.requests, __ATOMIC_RELAXED);
	out->retries = __atomic_load_n(&s->stats.retries, __ATOMIC_RELAXED);
	out->throttles = __atomic_load_n(&s->stats.throttles, __ATOMIC_RELAXED);
	out->errors = __atomic_load_n(&s->stats.errors, __ATOMIC_RELAXED);
	out->bytes_out = __atomic_load_n(&s->stats.bytes_out, __ATOMIC_RELAXED);
	out->bytes_in = __atomic_load_n(&s->stats.bytes_in, __ATOMIC_RELAXED);
}

static void stat_add(uint64_t *counter, uint64_t n)
{
	__atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

static void stat_op(struct svc *s, const char *what)
{
	size_t i;

	pthread_mutex_lock(&s->ops_lock);
	for (i = 0; i < s->nops && strcmp(s->ops[i].name, what); i++)
		;
	if (i == s->nops && i < SVC_MAX_OPS) {
		snprintf(s->ops[i].name, sizeof(s->ops[i].name), "%.47s", what);
		s->nops++;
	}
	if (i < s->nops)
		s->ops[i].n++;
	pthread_mutex_unlock(&s->ops_lock);
}

int svc_stats_ops(struct svc *s, svc_op_cb cb, void *ctx)
{
	struct svc_op_count copy[SVC_MAX_OPS];
	size_t i, n;
	int rc = 0;

	pthread_mutex_lock(&s->ops_lock);
	n = s->nops;
	memcpy(copy, s->ops, n * sizeof(copy[0]));
	pthread_mutex_unlock(&s->ops_lock);
	for (i = 0; i < n && !rc; i++)
		rc = cb(ctx, copy[i].name, copy[i].n);
	return rc;
}

/* The operation name for the log: x-amz-target's action, else the path. */
static void svc_describe_call(const struct svc_call *call, char *buf,
			      size_t size)
{
	size_t i;

	for (i = 0; i < call->nheaders; i++) {
		const char *v = call->headers[i].value;
		const char *dot;

		if (strcasecmp(call->headers[i].name, "x-amz-target"))
			continue;
		dot = strrchr(v, '.');
		snprintf(buf, size, "%s", dot ? dot + 1 : v);
		return;
	}
	snprintf(buf, size, "%s %s", call->method, call->path);
}

/* DynamoDB's x-amz-crc32 is the CRC32 of the body bytes as sent; a
 * mismatch means the body was damaged on the way and is worth a retry. */
static int svc_crc32_ok(const struct http_response *resp)
{
	const char *v;
	size_t len;
	char num[16];
	char *end;
	unsigned long want, got;

	v = http_response_header(resp, "x-amz-crc32", &len);
	if (!v)
		return 1;
	if (len == 0 || len >= sizeof(num))
		return 0;
	memcpy(num, v, len);
	num[len] = '\0';
	errno = 0;
	want = strtoul(num, &end, 10);
	if (errno || *end)
		return 0;
	got = crc32(0L, (const Bytef *)dbuf_str(&resp->body),
		    (uInt)dbuf_len(&resp->body));
	return want == got;
}

static void svc_copy_request_id(struct aws_err *e,
				const struct http_response *resp)
{
	const char *v;
	size_t len;

	v = http_response_header(resp, "x-amzn-RequestId", &len);
	if (!v)
		v = http_response_header(resp, "x-amz-request-id", &len);
	if (!v)
		return;
	if (len >= sizeof(e->request_id))
		len = sizeof(e->request_id) - 1;
	memcpy(e->request_id, v, len);
	e->request_id[len] = '\0';
}

/* Sign and send once.  Returns http_perform's result; a credentials
 * failure is reported in *err as a non-retryable error. */
static int svc_attempt(struct svc *s, const struct svc_call *call,
		       const char *url, const char *wire_path,
		       struct http_response *resp, struct aws_err *err,
		       int *creds_failed)
{
	struct http_header hdrs[SVC_MAX_HEADERS + SVC_OWN_HEADERS];
	struct sigv4_header sh[SVC_MAX_HEADERS + 1];
	struct sigv4_request sreq;
	struct sigv4_params sp;
	struct sigv4_out so;
	struct http_request hreq;
	struct creds cr;
	struct dbuf why;
	size_t n = 0, i;
	int rc;

	memset(&so, 0, sizeof(so));
	memset(&cr, 0, sizeof(cr));
	dbuf_init(&why, DBUF_CAP_SMALL);
	*creds_failed = 0;

	hdrs[n].name = "host";
	hdrs[n++].value = s->host;
	for (i = 0; i < call->nheaders; i++)
		hdrs[n++] = call->headers[i];

	if (!(s->flags & SVC_UNSIGNED)) {
		rc = creds_get(s->creds, &cr, &why);
		if (rc) {
			*creds_failed = 1;
			awserr_clear(err);
			snprintf(err->type, sizeof(err->type), "%s",
				 "NoCredentials");
			snprintf(err->message, sizeof(err->message), "%s",
				 dbuf_len(&why) ? dbuf_str(&why)
						: "no credentials");
			goto out;
		}
		for (i = 0; i < n; i++) {
			sh[i].name = hdrs[i].name;
			sh[i].value = hdrs[i].value;
		}
		memset(&sreq, 0, sizeof(sreq));
		sreq.method = call->method;
		sreq.path = wire_path;
		sreq.query = call->query;
		sreq.headers = sh;
		sreq.nheaders = n;
		sreq.body = call->body;
		sreq.body_len = call->body_len;
		memset(&sp, 0, sizeof(sp));
		sp.access_key = cr.access_key;
		sp.secret_key = cr.secret_key;
		sp.session_token = cr.session_token;
		sp.region = s->region;
		sp.service = s->service;
		sp.now = s->clock(s->clock_ctx);
		rc = sigv4_sign(s->signer, &sreq, &sp, &so);
		if (rc)
			goto out;
		hdrs[n].name = "x-amz-date";
		hdrs[n++].value = so.amz_date;
		if (cr.session_token && *cr.session_token) {
			hdrs[n].name = "x-amz-security-token";
			hdrs[n++].value = cr.session_token;
		}
		if (so.content_sha256[0]) {
			hdrs[n].name = "x-amz-content-sha256";
			hdrs[n++].value = so.content_sha256;
		}
		hdrs[n].name = "authorization";
		hdrs[n++].value = dbuf_str(&so.authorization);
	}

	memset(&hreq, 0, sizeof(hreq));
	hreq.method = call->method;
	hreq.url = url;
	hreq.headers = hdrs;
	hreq.nheaders = n;
	hreq.body = call->body;
	hreq.body_len = call->body_len;
	dbuf_reset(&why);
	rc = http_perform(s->http, &hreq, resp, &why);
	if (rc)
		awserr_from_transport(err, rc, dbuf_str(&why));
out:
	sigv4_out_free(&so);
	creds_clear(&cr);
	dbuf_free(&why);
	return rc;
}

int svc_call(struct svc *s, const struct svc_call *call,
	     struct http_response *resp, struct aws_err *err_out)
{
	struct aws_err local;
	struct aws_err *err = err_out ? err_out : &local;
	struct dbuf url, wire_path;
	struct timespec t0, t1;
	enum retry_class cls = RETRY_NEVER;
	unsigned cost = 0;
	int attempt, rc, creds_failed;
	char what[384];

	awserr_clear(err);
	dbuf_init(&url, DBUF_CAP_SMALL);
	dbuf_init(&wire_path, DBUF_CAP_SMALL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (call->nheaders > SVC_MAX_HEADERS) {
		rc = -E2BIG;
		goto out;
	}
	rc = dbuf_adds(&wire_path, s->base_path);
	if (!rc)
		rc = dbuf_adds(&wire_path, call->path && *call->path ? call->path : "/");
	if (!rc)
		rc = dbuf_addf(&url, "%s%s", s->origin, dbuf_str(&wire_path));
	if (!rc && call->query && *call->query)
		rc = dbuf_addf(&url, "?%s", call->query);
	if (rc)
		goto out;

	for (attempt = 1;; attempt++) {
		http_response_free(resp);
		http_response_init(resp);
		awserr_clear(err);
		err->attempts = attempt;
		stat_add(&s->stats.requests, 1);
		stat_add(&s->stats.bytes_out, call->body_len);
		rc = svc_attempt(s, call, dbuf_str(&url), dbuf_str(&wire_path),
				 resp, err, &creds_failed);
		if (creds_failed) {
			rc = -EACCES;
			goto out;
		}
		if (rc == -ENOMEM || rc == -EINVAL)
			goto out;
		if (rc == 0) {
			stat_add(&s->stats.bytes_in, dbuf_len(&resp->body));
			if (resp->status >= 200 && resp->status < 300) {
				if (!(s->flags & SVC_CHECK_CRC32) ||
				    svc_crc32_ok(resp)) {
					retry_quota_release(&s->quota, cost);
					goto out;
				}
				err->status = resp->status;
				snprintf(err->type, sizeof(err->type), "%s",
					 "CRC32CheckFailed");
				snprintf(err->message, sizeof(err->message),
					 "%s", "the response's x-amz-crc32 does not match its body");
			} else {
				awserr_from_response(err, resp->status,
					dbuf_str(&resp->body), dbuf_len(&resp->body),
					http_response_header(resp, "x-amzn-ErrorType", NULL));
			}
			svc_copy_request_id(err, resp);
		}
		err->attempts = attempt;
		cls = retry_classify(err->status, err->type[0] ? err->type : NULL,
				     err->transport);
		if (cls == RETRY_THROTTLE)
			stat_add(&s->stats.throttles, 1);
		if (cls == RETRY_NEVER || attempt >= s->retry.max_attempts)
			break;
		/* A request that may have run is repeated only when it is
		 * idempotent; throttles and refused connections never ran. */
		if (!call->idempotent && cls == RETRY_TRANSIENT &&
		    err->transport != -ECONNREFUSED)
			break;
		cost = retry_quota_acquire(&s->quota, err->transport == -ETIMEDOUT);
		if (!cost)
			break;
		stat_add(&s->stats.retries, 1);
		s->sleep(s->sleep_ctx, retry_delay_ms(&s->retry, cls, attempt));
	}
	stat_add(&s->stats.errors, 1);
	rc = awserr_to_errno(err);
out:
	if (rc && rc != -EACCES && !err->type[0] && !err->transport)
		snprintf(err->message, sizeof(err->message), "%s", strerror(-rc));
	svc_describe_call(call, what, sizeof(what));
	stat_op(s, what);
	if (s->log) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (call->resource) {
			size_t n = strlen(what);

			snprintf(what + n, sizeof(what) - n, " %s",
				 call->resource);
		}
		s->log(s->log_ctx, s->service, what, rc ? err->status : resp->status,
		       err->attempts,
		       (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
			       (double)(t1.tv_nsec - t0.tv_nsec) / 1e6,
		       rc ? err : NULL);
	}
	dbuf_free(&url);
	dbuf_free(&wire_path);
	return rc;
}
