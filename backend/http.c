/* http: one HTTP exchange over libcurl (see http.h and docs/http.md).
 *
 * Connection reuse.  A transfer runs on a pooled CURL easy handle; a
 * handle keeps its own connection cache, so the next transfer that picks
 * it up finds the connection still open (keep-alive).  The idle pool is
 * LIFO so the warmest handle goes first.  The handles share the DNS cache
 * and the TLS session cache through one CURLSH.  The connection cache is
 * deliberately NOT shared (CURL_LOCK_DATA_CONNECT): libcurl 7.88 documents
 * that sharing connections between concurrent threads is unsupported. */
#define _GNU_SOURCE
#include "backend/http.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#define HTTP_DEF_CONNECT_MS 5000L
#define HTTP_DEF_TIMEOUT_MS 60000L
/* Idle handles (and so idle connections) kept; more concurrent transfers
 * than this still work, their handles are just closed afterwards. */
#define HTTP_POOL_MAX 32
/* TCP keepalive: find a dead peer on an idle pooled connection. */
#define HTTP_KEEPIDLE_S 30L
#define HTTP_KEEPINTVL_S 15L

struct http_handle {
	CURL *curl;
	struct http_handle *next;
	char errbuf[CURL_ERROR_SIZE];
};

struct http_client {
	long connect_timeout_ms;
	long timeout_ms;
	size_t max_body;
	char *ca_file;
	struct curl_slist *connect_to; /* read-only once built */

	CURLSH *share;
	/* One mutex per curl_lock_data kind, as libcurl asks.  Lock order:
	 * these are taken only by libcurl, from inside curl calls, and are
	 * innermost; pool_lock is never held across a curl call, so the two
	 * kinds never nest in our code. */
	pthread_mutex_t share_lock[CURL_LOCK_DATA_LAST];

	/* Leaf lock: guards idle and nidle only, held for a few pointer
	 * moves; nothing else is taken while it is held. */
	pthread_mutex_t pool_lock;
	struct http_handle *idle;
	size_t nidle;

	/* Set once before use (tests); read without a lock. */
	http_transport_fn transport;
	void *transport_ctx;
};

/* What the callbacks of one transfer write into. */
struct transfer {
	struct http_response *resp;
	size_t max_body;
	int err; /* why a callback stopped the transfer */
	int in_headers; /* ... and whether it was the header callback */
	/* Streaming only (NULL otherwise). */
	const struct http_sink *sink;
	long code;   /* status of the latest status line */
	int sink_rc; /* what sink->data returned when it stopped us */
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock_cb(CURL *handle, curl_lock_data data,
			  curl_lock_access access, void *ud)
{
	struct http_client *c = ud;

	(void)handle;
	(void)access;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&c->share_lock[data]);
}

static void share_unlock_cb(CURL *handle, curl_lock_data data, void *ud)
{
	struct http_client *c = ud;

	(void)handle;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&c->share_lock[data]);
}

void http_response_init(struct http_response *r)
{
	r->status = 0;
	dbuf_init(&r->headers, DBUF_CAP_SMALL);
	dbuf_init(&r->body, DBUF_CAP_BODY);
}

void http_response_free(struct http_response *r)
{
	r->status = 0;
	dbuf_free(&r->headers);
	dbuf_free(&r->body);
}

const char *http_response_header(const struct http_response *r,
				 const char *name, size_t *len)
{
	const char *p = dbuf_str(&r->headers);
	const char *end = p + dbuf_len(&r->headers);
	const char *eol, *line_end, *colon, *v, *ve;
	size_t nlen = strlen(name);

	while (p < end) {
		eol = memchr(p, '\n', (size_t)(end - p));
		line_end = eol ? eol : end;
		colon = memchr(p, ':', (size_t)(line_end - p));
		if (colon && (size_t)(colon - p) == nlen &&
		    strncasecmp(p, name, nlen) == 0) {
			v = colon + 1;
			ve = line_end;
			if (ve > v && ve[-1] == '\r')
				ve--;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			if (len)
				*len = (size_t)(ve - v);
			return v;
		}
		p = eol ? eol + 1 : end;
	}
	if (len)
		*len = 0;
	return NULL;
}

static void handle_free(struct http_handle *h)
{
	if (!h)
		return;
	if (h->curl)
		curl_easy_cleanup(h->curl);
	free(h);
}

int http_client_new(struct http_client **out, const struct http_opts *opts)
{
	struct http_client *c = NULL;
	struct curl_slist *l;
	struct dbuf ct;
	int rc = 0, i, nlocks = 0, pool_lock_ok = 0;

	*out = NULL;
	dbuf_init(&ct, DBUF_CAP_SMALL);
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK) {
		rc = -ENOMEM;
		goto out;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		rc = -ENOMEM;
		goto out;
	}
	c->connect_timeout_ms = opts && opts->connect_timeout_ms > 0
		? opts->connect_timeout_ms : HTTP_DEF_CONNECT_MS;
	c->timeout_ms = opts && opts->timeout_ms > 0
		? opts->timeout_ms : HTTP_DEF_TIMEOUT_MS;
	c->max_body = opts && opts->max_body ? opts->max_body : DBUF_CAP_BODY;
	if (opts && opts->ca_file) {
		c->ca_file = strdup(opts->ca_file);
		if (!c->ca_file) {
			rc = -ENOMEM;
			goto out;
		}
	}
	if (opts && opts->connect_to && *opts->connect_to) {
		/* "::HOST:PORT": any URL host and port goes to HOST:PORT. */
		if (strpbrk(opts->connect_to, "\r\n")) {
			rc = -EINVAL;
			goto out;
		}
		rc = dbuf_addf(&ct, "::%s", opts->connect_to);
		if (rc)
			goto out;
		l = curl_slist_append(NULL, dbuf_str(&ct));
		if (!l) {
			rc = -ENOMEM;
			goto out;
		}
		c->connect_to = l;
	}

	for (i = 0; i < CURL_LOCK_DATA_LAST; i++, nlocks++)
		if (pthread_mutex_init(&c->share_lock[i], NULL)) {
			rc = -ENOMEM;
			goto out;
		}
	if (pthread_mutex_init(&c->pool_lock, NULL)) {
		rc = -ENOMEM;
		goto out;
	}
	pool_lock_ok = 1;

	c->share = curl_share_init();
	if (!c->share) {
		rc = -ENOMEM;
		goto out;
	}
	if (curl_share_setopt(c->share, CURLSHOPT_USERDATA, c) ||
	    curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock_cb) ||
	    curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock_cb) ||
	    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) ||
	    curl_share_setopt(c->share, CURLSHOPT_SHARE,
			      CURL_LOCK_DATA_SSL_SESSION)) {
		rc = -ENOMEM;
		goto out;
	}
	*out = c;
	c = NULL;
out:
	if (c) {
		if (c->share)
			curl_share_cleanup(c->share);
		if (pool_lock_ok)
			pthread_mutex_destroy(&c->pool_lock);
		for (i = 0; i < nlocks; i++)
			pthread_mutex_destroy(&c->share_lock[i]);
		curl_slist_free_all(c->connect_to);
		free(c->ca_file);
		free(c);
	}
	dbuf_free(&ct);
	return rc;
}

void http_client_free(struct http_client *c)
{
	struct http_handle *h;
	int i;

	if (!c)
		return;
	/* Handles first: each one detaches from the share on cleanup. */
	while ((h = c->idle)) {
		c->idle = h->next;
		handle_free(h);
	}
	curl_share_cleanup(c->share);
	pthread_mutex_destroy(&c->pool_lock);
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&c->share_lock[i]);
	curl_slist_free_all(c->connect_to);
	free(c->ca_file);
	free(c);
}

void http_client_set_transport(struct http_client *c, http_transport_fn fn,
			       void *ctx)
{
	c->transport = fn;
	c->transport_ctx = ctx;
}

static int handle_get(struct http_client *c, struct http_handle **out)
{
	struct http_handle *h;

	pthread_mutex_lock(&c->pool_lock);
	h = c->idle;
	if (h) {
		c->idle = h->next;
		c->nidle--;
	}
	pthread_mutex_unlock(&c->pool_lock);
	if (!h) {
		h = calloc(1, sizeof(*h));
		if (!h)
			return -ENOMEM;
		h->curl = curl_easy_init();
		if (!h->curl ||
		    curl_easy_setopt(h->curl, CURLOPT_SHARE, c->share) != CURLE_OK) {
			handle_free(h);
			return -ENOMEM;
		}
	}
	h->next = NULL;
	*out = h;
	return 0;
}

static void handle_put(struct http_client *c, struct http_handle *h)
{
	int keep = 0;

	pthread_mutex_lock(&c->pool_lock);
	if (c->nidle < HTTP_POOL_MAX) {
		h->next = c->idle;
		c->idle = h;
		c->nidle++;
		keep = 1;
	}
	pthread_mutex_unlock(&c->pool_lock);
	if (!keep)
		handle_free(h);
}

/* The status code of a status line "HTTP/x[.y] NNN [reason]", or 0. */
static long status_of(const char *p, size_t l)
{
	const char *sp = memchr(p, ' ', l);
	long code = 0;
	size_t i;

	if (!sp)
		return 0;
	i = (size_t)(sp - p) + 1;
	while (i < l && p[i] == ' ')
		i++;
	for (; i < l && p[i] >= '0' && p[i] <= '9' && code < 1000; i++)
		code = code * 10 + (p[i] - '0');
	return code;
}

/* Header lines of the final response as "name: value\r\n".  A status line
 * starts a new response (after a 100 Continue or a 1xx), so the lines
 * gathered so far are dropped. */
static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
	struct transfer *t = ud;
	struct dbuf *h = &t->resp->headers;
	size_t len = size * nmemb, l = len;
	const char *p = data;
	int rc;

	while (l && (p[l - 1] == '\r' || p[l - 1] == '\n'))
		l--;
	if (l >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		dbuf_reset(h);
		t->code = status_of(p, l);
		if (t->sink && t->sink->status_line) {
			dbuf_reset(t->sink->status_line);
			rc = dbuf_add(t->sink->status_line, p, l);
			if (rc) {
				t->err = rc;
				t->in_headers = 1;
				return 0;
			}
		}
		return len;
	}
	if (l == 0) {
		/* The end of a header block: a stream consumer may look at
		 * the status before the first body byte.  1xx blocks are
		 * followed by the real one. */
		if (t->code >= 200)
			t->resp->status = t->code;
		return len;
	}
	if ((p[0] == ' ' || p[0] == '\t') && dbuf_len(h) >= 2) {
		/* obs-fold: continue the previous line's value */
		while (l && (*p == ' ' || *p == '\t')) {
			p++;
			l--;
		}
		dbuf_truncate(h, dbuf_len(h) - 2);
		rc = dbuf_addc(h, ' ');
	} else {
		rc = 0;
	}
	if (!rc)
		rc = dbuf_add(h, p, l);
	if (!rc)
		rc = dbuf_add(h, "\r\n", 2);
	if (rc) {
		t->err = rc;
		t->in_headers = 1;
		return 0; /* makes curl stop with CURLE_WRITE_ERROR */
	}
	return len;
}

static size_t on_body_stream(char *data, size_t size, size_t nmemb, void *ud)
{
	struct transfer *t = ud;
	size_t len = size * nmemb;
	int rc;

	if (!len)
		return 0;
	rc = t->sink->data(t->sink->ctx, data, len);
	if (rc) {
		t->sink_rc = rc;
		t->err = -ECANCELED;
		return 0;
	}
	return len;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	struct transfer *t = ud;
	struct dbuf *b = &t->resp->body;
	size_t len = size * nmemb;
	int rc;

	if (len > t->max_body || dbuf_len(b) > t->max_body - len) {
		t->err = -E2BIG;
		return 0;
	}
	rc = dbuf_add(b, data, len);
	if (rc) {
		t->err = rc;
		return 0;
	}
	return len;
}

/* The header list sent: exactly the caller's, plus empty entries that
 * stop curl from adding Expect: 100-continue, a form Content-Type on a
 * POST body, or Accept: (none of which would be signed). */
static int build_headers(const struct http_request *req,
			 struct curl_slist **out)
{
	struct curl_slist *list = NULL, *l;
	struct dbuf line;
	int has_ct = 0, has_expect = 0, has_accept = 0, rc = 0;
	size_t i;
	const char *name, *value;

	dbuf_init(&line, DBUF_CAP_SMALL);
	for (i = 0; i < req->nheaders; i++) {
		name = req->headers[i].name;
		value = req->headers[i].value ? req->headers[i].value : "";
		/* No header splitting or smuggling through a name or value. */
		if (!name || !*name || strpbrk(name, ":;\r\n \t") ||
		    strpbrk(value, "\r\n")) {
			rc = -EINVAL;
			goto out;
		}
		if (strcasecmp(name, "Content-Type") == 0)
			has_ct = 1;
		else if (strcasecmp(name, "Expect") == 0)
			has_expect = 1;
		else if (strcasecmp(name, "Accept") == 0)
			has_accept = 1;
		dbuf_reset(&line);
		/* curl drops "Name:" but sends "Name;" as an empty header. */
		if (*value)
			rc = dbuf_addf(&line, "%s: %s", name, value);
		else
			rc = dbuf_addf(&line, "%s;", name);
		if (rc)
			goto out;
		l = curl_slist_append(list, dbuf_str(&line));
		if (!l) {
			rc = -ENOMEM;
			goto out;
		}
		list = l;
	}
	if (!has_ct) {
		l = curl_slist_append(list, "Content-Type:");
		if (!l) {
			rc = -ENOMEM;
			goto out;
		}
		list = l;
	}
	if (!has_expect) {
		l = curl_slist_append(list, "Expect:");
		if (!l) {
			rc = -ENOMEM;
			goto out;
		}
		list = l;
	}
	if (!has_accept) {
		l = curl_slist_append(list, "Accept:");
		if (!l) {
			rc = -ENOMEM;
			goto out;
		}
		list = l;
	}
	*out = list;
	list = NULL;
out:
	curl_slist_free_all(list);
	dbuf_free(&line);
	return rc;
}

static int curl_to_errno(CURLcode cc, CURL *curl)
{
	long os_err = 0;

	switch (cc) {
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		/* curl says "couldn't connect" for a refusal, an unreachable
		 * network and a connect that timed out alike. */
		curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &os_err);
		if (os_err == ENETUNREACH || os_err == EHOSTUNREACH)
			return -EHOSTUNREACH;
		if (os_err == ETIMEDOUT)
			return -ETIMEDOUT;
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE: /* the peer closed before the body ended */
	case CURLE_SEND_FAIL_REWIND:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return -ECONNRESET;
	case CURLE_FILESIZE_EXCEEDED:
		return -E2BIG;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_BAD_FUNCTION_ARGUMENT:
		return -EINVAL;
	default:
		/* TLS failures (CURLE_SSL_*, CURLE_PEER_FAILED_VERIFICATION),
		 * a weird server reply, and anything else. */
		return -EPROTO;
	}
}

static const char *const http_methods[] = {
	"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS",
};

static int method_ok(const char *m)
{
	size_t i;

	if (!m)
		return 0;
	for (i = 0; i < sizeof(http_methods) / sizeof(http_methods[0]); i++)
		if (strcmp(http_methods[i], m) == 0)
			return 1;
	return 0;
}

/* Every option of a transfer, set afresh after curl_easy_reset (which
 * keeps the live connections and the share). */
static CURLcode setup(struct http_client *c, struct http_handle *h,
		      const struct http_request *req, struct curl_slist *hdrs,
		      struct transfer *t)
{
	CURL *e = h->curl;
	CURLcode cc;
	int with_body;

#define SET(opt, val)                                     \
	do {                                              \
		cc = curl_easy_setopt(e, opt, val);       \
		if (cc != CURLE_OK)                       \
			return cc;                        \
	} while (0)

	h->errbuf[0] = '\0';
	SET(CURLOPT_ERRORBUFFER, h->errbuf);
	SET(CURLOPT_URL, req->url);
	SET(CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
	SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
	SET(CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms
						    : c->timeout_ms);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	if (c->ca_file)
		SET(CURLOPT_CAINFO, c->ca_file);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_TCP_KEEPIDLE, HTTP_KEEPIDLE_S);
	SET(CURLOPT_TCP_KEEPINTVL, HTTP_KEEPINTVL_S);
	if (c->connect_to)
		SET(CURLOPT_CONNECT_TO, c->connect_to);
	SET(CURLOPT_HTTPHEADER, hdrs);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, t);
	SET(CURLOPT_WRITEFUNCTION, t->sink ? on_body_stream : on_body);
	SET(CURLOPT_WRITEDATA, t);
	/* Refuse early when Content-Length already says too much.  A stream
	 * has no cap here: its consumer decides. */
	if (!t->sink)
		SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)t->max_body);

	if (strcmp(req->method, "HEAD") == 0) {
		SET(CURLOPT_NOBODY, 1L);
		return CURLE_OK;
	}
	/* POST, PUT and PATCH always carry a body (Content-Length: 0 when
	 * empty); the others only when given one. */
	with_body = req->body_len > 0 || strcmp(req->method, "POST") == 0 ||
		    strcmp(req->method, "PUT") == 0 ||
		    strcmp(req->method, "PATCH") == 0;
	if (with_body) {
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		SET(CURLOPT_POSTFIELDS, req->body_len ? req->body : "");
	} else {
		SET(CURLOPT_HTTPGET, 1L);
	}
	if (strcmp(req->method, "GET") != 0 || with_body)
		SET(CURLOPT_CUSTOMREQUEST, req->method);
	return CURLE_OK;
#undef SET
}

static void set_why(struct dbuf *why, const char *s)
{
	if (!why)
		return;
	dbuf_reset(why);
	(void)dbuf_adds(why, s); /* words for a log line: best effort */
}

static const struct {
	int code;
	const char *reason;
} reasons[] = {
	{ 100, "Continue" }, { 101, "Switching Protocols" },
	{ 200, "OK" }, { 201, "Created" }, { 202, "Accepted" },
	{ 203, "Non-Authoritative Information" }, { 204, "No Content" },
	{ 205, "Reset Content" }, { 206, "Partial Content" },
	{ 300, "Multiple Choices" }, { 301, "Moved Permanently" },
	{ 302, "Found" }, { 303, "See Other" }, { 304, "Not Modified" },
	{ 307, "Temporary Redirect" }, { 308, "Permanent Redirect" },
	{ 400, "Bad Request" }, { 401, "Unauthorized" },
	{ 402, "Payment Required" }, { 403, "Forbidden" },
	{ 404, "Not Found" }, { 405, "Method Not Allowed" },
	{ 406, "Not Acceptable" }, { 408, "Request Timeout" },
	{ 409, "Conflict" }, { 410, "Gone" }, { 411, "Length Required" },
	{ 412, "Precondition Failed" }, { 413, "Content Too Large" },
	{ 414, "URI Too Long" }, { 415, "Unsupported Media Type" },
	{ 416, "Range Not Satisfiable" }, { 417, "Expectation Failed" },
	{ 422, "Unprocessable Content" }, { 425, "Too Early" },
	{ 426, "Upgrade Required" }, { 428, "Precondition Required" },
	{ 429, "Too Many Requests" },
	{ 431, "Request Header Fields Too Large" },
	{ 500, "Internal Server Error" }, { 501, "Not Implemented" },
	{ 502, "Bad Gateway" }, { 503, "Service Unavailable" },
	{ 504, "Gateway Timeout" }, { 505, "HTTP Version Not Supported" },
};

static const char *reason_of(long code)
{
	size_t i;

	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].code == code)
			return reasons[i].reason;
	return "";
}

/* A status line without a reason phrase (HTTP/2 sends none) gets the
 * standard one, so the caller always shows "HTTP/2 404 Not Found". */
static int status_line_finish(struct dbuf *sl, long status)
{
	const char *p = dbuf_str(sl), *sp;
	const char *reason = reason_of(status);
	size_t n = dbuf_len(sl);

	if (n == 0)
		return dbuf_addf(sl, "HTTP/1.1 %ld%s%s", status,
				 *reason ? " " : "", reason);
	/* Reason present: "HTTP/1.1 200 X".  Absent: "HTTP/2 200" or
	 * "HTTP/2 200 ". */
	sp = memchr(p, ' ', n);
	if (sp)
		sp = memchr(sp + 1, ' ', n - (size_t)(sp + 1 - p));
	if (sp && (size_t)(sp + 1 - p) < n)
		return 0;
	if (!*reason)
		return 0;
	if (!sp)
		return dbuf_addf(sl, " %s", reason);
	return dbuf_adds(sl, reason);
}

static int perform(struct http_client *c, const struct http_request *req,
		   const struct http_sink *sink, struct http_response *resp,
		   struct dbuf *why)
{
	struct http_handle *h = NULL;
	struct curl_slist *hdrs = NULL;
	struct transfer t;
	CURLcode cc;
	long status = 0;
	char msg[96];
	int rc;

	resp->status = 0;
	dbuf_reset(&resp->headers);
	dbuf_reset(&resp->body);
	if (why)
		dbuf_reset(why);
	if (sink && sink->status_line)
		dbuf_reset(sink->status_line);

	if (c->transport) {
		rc = c->transport(c->transport_ctx, req, resp);
		if (rc) {
			set_why(why, "transport failed");
			goto out;
		}
		if (!sink)
			goto out;
		if (sink->status_line)
			rc = status_line_finish(sink->status_line, resp->status);
		if (!rc && dbuf_len(&resp->body))
			rc = sink->data(sink->ctx, dbuf_str(&resp->body),
					dbuf_len(&resp->body));
		dbuf_reset(&resp->body);
		goto out;
	}
	if (!req->url || !method_ok(req->method) ||
	    (req->body_len && !req->body)) {
		set_why(why, "bad request");
		rc = -EINVAL;
		goto out;
	}
	rc = build_headers(req, &hdrs);
	if (rc) {
		set_why(why, rc == -EINVAL ? "bad header" : "out of memory");
		goto out;
	}
	rc = handle_get(c, &h);
	if (rc) {
		set_why(why, "out of memory");
		goto out;
	}
	curl_easy_reset(h->curl);
	memset(&t, 0, sizeof(t));
	t.resp = resp;
	t.max_body = c->max_body;
	t.sink = sink;
	cc = setup(c, h, req, hdrs, &t);
	if (cc == CURLE_OK)
		cc = curl_easy_perform(h->curl);
	if (cc == CURLE_OK) {
		curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
		resp->status = status;
		rc = 0;
		if (sink && sink->status_line)
			rc = status_line_finish(sink->status_line, status);
		goto out;
	}
	if (t.sink_rc) {
		/* The consumer stopped it: its own value, no transport words. */
		rc = t.sink_rc;
		set_why(why, "stopped by the consumer");
		goto out;
	}
	if (t.err) {
		/* One of our callbacks stopped it. */
		rc = t.err;
	} else {
		rc = curl_to_errno(cc, h->curl);
	}
	if (rc == -E2BIG) {
		snprintf(msg, sizeof(msg), "response %s over %zu bytes",
			 t.in_headers ? "headers" : "body",
			 t.in_headers ? (size_t)resp->headers.cap : t.max_body);
		set_why(why, msg);
	} else {
		set_why(why, h->errbuf[0] ? h->errbuf : curl_easy_strerror(cc));
	}
out:
	/* Detach the caller's header list before it is freed. */
	if (h) {
		curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
		curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, (char *)NULL);
		handle_put(c, h);
	}
	curl_slist_free_all(hdrs);
	return rc;
}

int http_perform(struct http_client *c, const struct http_request *req,
		 struct http_response *resp, struct dbuf *why)
{
	return perform(c, req, NULL, resp, why);
}

int http_perform_stream(struct http_client *c, const struct http_request *req,
			const struct http_sink *sink,
			struct http_response *resp, struct dbuf *why)
{
	if (!sink || !sink->data)
		return -EINVAL;
	return perform(c, req, sink, resp, why);
}

int http_pct_encode(struct dbuf *out, const char *s, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;
	char esc[3];
	size_t run;
	int rc = 0;

	for (p = (const unsigned char *)s; *p && !rc;) {
		/* Copy runs of safe bytes at once. */
		for (run = 0; p[run] && ((p[run] >= 'A' && p[run] <= 'Z') ||
					 (p[run] >= 'a' && p[run] <= 'z') ||
					 (p[run] >= '0' && p[run] <= '9') ||
					 p[run] == '-' || p[run] == '.' ||
					 p[run] == '_' || p[run] == '~' ||
					 (keep_slash && p[run] == '/'));
		     run++)
			;
		if (run) {
			rc = dbuf_add(out, p, run);
			p += run;
			continue;
		}
		esc[0] = '%';
		esc[1] = hex[*p >> 4];
		esc[2] = hex[*p & 15];
		rc = dbuf_add(out, esc, 3);
		p++;
	}
	return rc;
}
