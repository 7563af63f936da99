/* exapi: URL building and encoding, signing (a known answer from
 * botocore), the retry rules and error mapping over a scripted transport;
 * then real streaming over curl against a tiny HTTP/1.1 server on
 * 127.0.0.1 in this process, reached through connect_to. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "backend/awscfg.h"
#include "backend/creds.h"
#include "backend/exapi.h"
#include "backend/http.h"
#include "tests/scripted.h"
#include "tests/testutil.h"

#define HOST "abc123defg.execute-api.us-east-1.amazonaws.com"

/* The fake network (tests/scripted.h); setup_env empties it. */
static struct script S;

/* What reached the data callback. */
struct sinkbuf {
	char data[8192];
	size_t len;
	int calls;
	int stop_with; /* non-zero: return it on the first call */
};

static int sink_cb(void *ctx, const char *data, size_t len)
{
	struct sinkbuf *b = ctx;

	b->calls++;
	if (b->stop_with)
		return b->stop_with;
	assert_true(b->len + len < sizeof(b->data));
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

struct fixture {
	struct awscfg *cfg;
	struct creds_chain *creds;
	struct exapi *ex;
};

static struct fixture *fixture_opts(const struct exapi_opts *o, int seam)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct dbuf why;

	assert_non_null(f);
	dbuf_init(&why, DBUF_CAP_SMALL);
	assert_int_equal(awscfg_load(&f->cfg, NULL, &why), 0);
	assert_int_equal(creds_chain_new(&f->creds, f->cfg), 0);
	assert_int_equal(exapi_new(&f->ex, f->creds, o), 0);
	exapi_set_clock(f->ex, script_clock, NULL);
	exapi_set_sleep(f->ex, script_sleep, &S);
	if (seam)
		http_client_set_transport(exapi_http(f->ex), script_transport,
					  &S);
	dbuf_free(&why);
	return f;
}

static struct fixture *fixture_new(void)
{
	struct exapi_opts o;

	memset(&o, 0, sizeof(o));
	o.region = "us-east-1";
	return fixture_opts(&o, 1);
}

static void fixture_free(struct fixture *f)
{
	exapi_free(f->ex);
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

static void req_init(struct exapi_request *r, const char *method,
		     const char *path)
{
	memset(r, 0, sizeof(*r));
	r->api_id = "abc123defg";
	r->stage = "prod";
	r->path = path;
	r->method = method;
}

static int invoke(struct fixture *f, const struct exapi_request *r,
		  struct sinkbuf *b, struct exapi_response *resp,
		  struct aws_err *err)
{
	return exapi_invoke(f->ex, r, b ? sink_cb : NULL, b, resp, err);
}

/* ---- over the transport ------------------------------------------------- */

static void test_url_and_encoding(void **state)
{
	struct fixture *f = fixture_new();
	struct exapi_request r;
	struct exapi_response resp;
	struct sinkbuf b;
	(void)state;

	memset(&b, 0, sizeof(b));
	exapi_response_init(&resp);
	S.steps[0] = (struct script_step){ 0, 200, "hello", "x-a: 1\r\n" };
	S.steps[1] = (struct script_step){ 0, 204, NULL, NULL };
	S.steps[2] = (struct script_step){ 0, 200, NULL, NULL };
	S.nsteps = 3;

	req_init(&r, "GET", "/orders/a b/\xc3\xbc%/x+y");
	r.query = "x=1&y=a%20b";
	assert_int_equal(invoke(f, &r, &b, &resp, NULL), 0);
	assert_string_equal(S.url, "https://" HOST
			    "/prod/orders/a%20b/%C3%BC%25/x%2By?x=1&y=a%20b");
	assert_non_null(strstr(S.headers, "host: " HOST "\n"));
	assert_int_equal(resp.status, 200);
	assert_string_equal(dbuf_str(&resp.status_line), "HTTP/1.1 200 OK");
	assert_string_equal(dbuf_str(&resp.headers), "x-a: 1\r\n");
	assert_string_equal(b.data, "hello");

	/* $default: no stage segment; a stage is one encoded segment. */
	req_init(&r, "GET", "/");
	r.stage = "$default";
	assert_int_equal(invoke(f, &r, &b, &resp, NULL), 0);
	assert_string_equal(S.url, "https://" HOST "/");
	assert_string_equal(dbuf_str(&resp.status_line),
			    "HTTP/1.1 204 No Content");
	req_init(&r, "GET", NULL);
	r.stage = "my stage/x";
	assert_int_equal(invoke(f, &r, &b, &resp, NULL), 0);
	assert_string_equal(S.url, "https://" HOST "/my%20stage%2Fx/");
	/* The whole-call timeout is what bounds each attempt. */
	assert_true(S.timeout_ms > 0 && S.timeout_ms <= 30000);
	exapi_response_free(&resp);
	fixture_free(f);
}

static void test_china_region(void **state)
{
	struct exapi_opts o;
	struct fixture *f;
	struct exapi_request r;
	struct exapi_response resp;
	(void)state;

	memset(&o, 0, sizeof(o));
	o.region = "cn-north-1";
	f = fixture_opts(&o, 1);
	exapi_response_init(&resp);
	S.steps[0] = (struct script_step){ 0, 200, NULL, NULL };
	S.nsteps = 1;
	req_init(&r, "GET", "/a");
	assert_int_equal(exapi_invoke(f->ex, &r, NULL, NULL, &resp, NULL), 0);
	assert_string_equal(S.url, "https://abc123defg.execute-api.cn-north-1."
			    "amazonaws.com.cn/prod/a");
	exapi_response_free(&resp);
	fixture_free(f);
}

static void test_rejects_bad_requests(void **state)
{
	struct fixture *f = fixture_new();
	struct exapi_opts o;
	struct exapi *e;
	struct exapi_request r;
	struct exapi_response resp;
	struct aws_err err;
	(void)state;

	exapi_response_init(&resp);
	S.nsteps = 0;
	req_init(&r, "GET", "/a");
	r.api_id = "evil.com/x";
	assert_int_equal(invoke(f, &r, NULL, &resp, &err), -EINVAL);
	req_init(&r, "GET", "relative");
	assert_int_equal(invoke(f, &r, NULL, &resp, &err), -EINVAL);
	req_init(&r, "GET", "/a");
	r.query = "a=1 HTTP/1.1\r\nX: y";
	assert_int_equal(invoke(f, &r, NULL, &resp, &err), -EINVAL);
	assert_int_equal(S.calls, 0);

	memset(&o, 0, sizeof(o));
	o.region = "us-east-1.evil";
	assert_int_equal(exapi_new(&e, f->creds, &o), -EINVAL);
	o.region = "us-east-1";
	o.scheme = "ftp";
	assert_int_equal(exapi_new(&e, f->creds, &o), -EINVAL);
	exapi_response_free(&resp);
	fixture_free(f);
}

/* The signatures were computed with botocore's SigV4Auth for the same
 * request and time (service execute-api): the path is encoded once on
 * the wire and once more in the canonical request. */
static void test_signs_like_botocore(void **state)
{
	static const struct http_header hdrs[] = {
		{ "content-type", "application/json" },
		{ "Authorization", "Bearer caller-token" },
		{ "Host", "attacker.example" },
	};
	struct fixture *f = fixture_new();
	struct exapi_request r;
	struct exapi_response resp;
	(void)state;

	exapi_response_init(&resp);
	S.steps[0] = (struct script_step){ 0, 200, "{}", NULL };
	S.nsteps = 1;
	req_init(&r, "POST", "/orders/a b/:42");
	r.query = "b=2&a=x%20y";
	r.sign = 1;
	r.headers = hdrs;
	r.nheaders = 3;
	r.body = "{\"n\":1}";
	r.body_len = 7;
	assert_int_equal(invoke(f, &r, NULL, &resp, NULL), 0);
	assert_string_equal(S.url, "https://" HOST
			    "/prod/orders/a%20b/%3A42?b=2&a=x%20y");
	assert_string_equal(S.body, "{\"n\":1}");
	assert_non_null(strstr(S.headers, "x-amz-date: 20150830T123600Z\n"));
	assert_non_null(strstr(S.headers,
		"authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/"
		"us-east-1/execute-api/aws4_request, SignedHeaders=content-type;"
		"host;x-amz-date, Signature=cf67b872ce0eb77d286ad1743d71cc7916fa"
		"475c1147813d8c0967fcca356b4e\n"));
	/* Ours replace the caller's Host and Authorization when signing. */
	assert_null(strstr(S.headers, "Bearer"));
	assert_null(strstr(S.headers, "attacker"));
	assert_null(strstr(S.headers, "x-amz-security-token"));
	exapi_response_free(&resp);
	fixture_free(f);
}

static void test_signs_session_token(void **state)
{
	static const struct http_header hdrs[] = {
		{ "content-type", "application/json" },
	};
	struct fixture *f;
	struct exapi_request r;
	struct exapi_response resp;
	(void)state;

	setenv("AWS_SESSION_TOKEN", "TOKEN/with+chars=", 1);
	f = fixture_new();
	exapi_response_init(&resp);
	S.steps[0] = (struct script_step){ 0, 200, "{}", NULL };
	S.nsteps = 1;
	req_init(&r, "POST", "/orders/a b/:42");
	r.query = "b=2&a=x%20y";
	r.sign = 1;
	r.headers = hdrs;
	r.nheaders = 1;
	r.body = "{\"n\":1}";
	r.body_len = 7;
	assert_int_equal(invoke(f, &r, NULL, &resp, NULL), 0);
	assert_non_null(strstr(S.headers,
			       "x-amz-security-token: TOKEN/with+chars=\n"));
	assert_non_null(strstr(S.headers,
		"SignedHeaders=content-type;host;x-amz-date;x-amz-security-token,"
		" Signature=b532fd3ccd82048f38de09535dfb8fdcb5a7290297782084128928"
		"538a432f32\n"));
	exapi_response_free(&resp);
	fixture_free(f);
}

static void test_unsigned_keeps_caller_auth(void **state)
{
	static const struct http_header hdrs[] = {
		{ "Authorization", "Bearer jwt" },
	};
	struct fixture *f = fixture_new();
	struct exapi_request r;
	struct exapi_response resp;
	(void)state;

	exapi_response_init(&resp);
	S.steps[0] = (struct script_step){ 0, 200, NULL, NULL };
	S.nsteps = 1;
	req_init(&r, "GET", "/a");
	r.headers = hdrs;
	r.nheaders = 1;
	assert_int_equal(invoke(f, &r, NULL, &resp, NULL), 0);
	assert_non_null(strstr(S.headers, "Authorization: Bearer jwt\n"));
	assert_null(strstr(S.headers, "x-amz-date"));
	assert_null(strstr(S.headers, "AWS4-HMAC-SHA256"));
	exapi_response_free(&resp);
	fixture_free(f);
}

static void test_no_credentials(void **state)
{
	struct fixture *f;
	struct exapi_request r;
	struct exapi_response resp;
	struct aws_err err;
	(void)state;

	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	f = fixture_new();
	exapi_response_init(&resp);
	S.nsteps = 0;
	req_init(&r, "GET", "/a");
	r.sign = 1;
	assert_int_equal(invoke(f, &r, NULL, &resp, &err), -EACCES);
	assert_string_equal(err.type, "NoCredentials");
	assert_int_equal(S.calls, 0);
	exapi_response_free(&resp);
	fixture_free(f);
}

static void test_get_retried_on_5xx(void **state)
{
	struct fixture *f = fixture_new();
	struct exapi_request r;
	struct exapi_response resp;
	struct sinkbuf b;
	struct aws_err err;
	(void)state;

	memset(&b, 0, sizeof(b));
	exapi_response_init(&resp);
	S.steps[0] = (struct script_step){ 0, 503, "busy", NULL };
	S.steps[1] = (struct script_step){ 0, 429, "slow", NULL };
	S.steps[2] = (struct script_step){ 0, 200, "done", NULL };
	S.nsteps = 3;
	req_init(&r, "GET", "/a");
	r.sign = 1;
	assert_int_equal(invoke(f, &r, &b, &resp, &err), 0);
	assert_int_equal(S.calls, 3);
	assert_int_equal(S.nsleeps, 2);
	/* Only the final answer reached the caller. */
	assert_string_equal(b.data, "done");
	assert_int_equal(resp.status, 200);
	assert_int_equal(err.attempts, 3);
	exapi_response_free(&resp);
	fixture_free(f);
}

static void test_last_5xx_is_the_answer(void **state)
{
	struct fixture *f = fixture_new();
	struct exapi_request r;
	struct exapi_response resp;
	struct sinkbuf b;
	(void)state;

	memset(&b, 0, sizeof(b));
	exapi_response_init(&resp);
	S.steps[0] = (struct script_step){ 0, 502, "one", NULL };
	S.steps[1] = (struct script_step){ 0, 502, "two", NULL };
	S.steps[2] = (struct script_step){ 0, 502, "three", NULL };
	S.nsteps = 3;
	req_init(&r, "DELETE", "/a");
	assert_int_equal(invoke(f, &r, &b, &resp, NULL), 0);
	assert_int_equal(S.calls, 3);
	assert_string_equal(b.data, "three");
	assert_int_equal(resp.status, 502);
	assert_string_equal(dbuf_str(&resp.status_line),
			    "HTTP/1.1 502 Bad Gateway");
	exapi_response_free(&resp);
	fixture_free(f);
}

static void test_post_never_retried(void **state)
{
	struct fixture *f = fixture_new();
	struct exapi_request r;
	struct exapi_response resp;
	struct sinkbuf b;
	struct aws_err err;
	(void)state;

	memset(&b, 0, sizeof(b));
	exapi_response_init(&resp);
	S.steps[0] = (struct script_step){ 0, 503, "busy", NULL };
	S.nsteps = 1;
	req_init(&r, "POST", "/a");
	assert_int_equal(invoke(f, &r, &b, &resp, &err), 0);
	assert_int_equal(S.calls, 1);
	assert_int_equal(resp.status, 503);
	assert_string_equal(b.data, "busy");

	script_reset(&S);
	S.steps[0] = (struct script_step){ -ECONNREFUSED, 0, NULL, NULL };
	S.nsteps = 1;
	req_init(&r, "PATCH", "/a");
	assert_int_equal(invoke(f, &r, &b, &resp, &err), -EIO);
	assert_int_equal(S.calls, 1);
	assert_int_equal(err.transport, -ECONNREFUSED);
	assert_int_equal(S.nsleeps, 0);
	exapi_response_free(&resp);
	fixture_free(f);
}

static void test_transport_retry_then_fail(void **state)
{
	struct fixture *f = fixture_new();
	struct exapi_request r;
	struct exapi_response resp;
	struct aws_err err;
	(void)state;

	exapi_response_init(&resp);
	S.steps[0] = (struct script_step){ -ECONNRESET, 0, NULL, NULL };
	S.steps[1] = (struct script_step){ 0, 200, "ok", NULL };
	S.nsteps = 2;
	req_init(&r, "PUT", "/a");
	r.body = "x";
	r.body_len = 1;
	assert_int_equal(invoke(f, &r, NULL, &resp, &err), 0);
	assert_int_equal(S.calls, 2);
	assert_string_equal(S.body, "x");

	script_reset(&S);
	S.steps[0] = (struct script_step){ -ETIMEDOUT, 0, NULL, NULL };
	S.steps[1] = (struct script_step){ -ECONNRESET, 0, NULL, NULL };
	S.steps[2] = (struct script_step){ -ECONNREFUSED, 0, NULL, NULL };
	S.nsteps = 3;
	req_init(&r, "HEAD", "/a");
	assert_int_equal(invoke(f, &r, NULL, &resp, &err), -EIO);
	assert_int_equal(S.calls, 3);
	assert_int_equal(err.transport, -ECONNREFUSED);
	assert_int_equal(err.status, 0);

	/* Not a transient failure: not repeated. */
	script_reset(&S);
	S.steps[0] = (struct script_step){ -EPROTO, 0, NULL, NULL };
	S.nsteps = 1;
	req_init(&r, "GET", "/a");
	assert_int_equal(invoke(f, &r, NULL, &resp, &err), -EIO);
	assert_int_equal(S.calls, 1);
	assert_int_equal(err.transport, -EPROTO);
	exapi_response_free(&resp);
	fixture_free(f);
}

static void test_4xx_is_an_answer(void **state)
{
	struct fixture *f = fixture_new();
	struct exapi_request r;
	struct exapi_response resp;
	struct sinkbuf b;
	(void)state;

	memset(&b, 0, sizeof(b));
	exapi_response_init(&resp);
	S.steps[0] = (struct script_step){ 0, 403,
		"{\"message\":\"Missing Authentication Token\"}",
		"x-amzn-ErrorType: MissingAuthenticationTokenException\r\n" };
	S.nsteps = 1;
	req_init(&r, "GET", "/nope");
	assert_int_equal(invoke(f, &r, &b, &resp, NULL), 0);
	assert_int_equal(S.calls, 1);
	assert_int_equal(resp.status, 403);
	assert_string_equal(dbuf_str(&resp.status_line),
			    "HTTP/1.1 403 Forbidden");
	assert_non_null(strstr(b.data, "Missing Authentication Token"));
	exapi_response_free(&resp);
	fixture_free(f);
}

static void test_callback_stops(void **state)
{
	struct fixture *f = fixture_new();
	struct exapi_request r;
	struct exapi_response resp;
	struct sinkbuf b;
	(void)state;

	memset(&b, 0, sizeof(b));
	b.stop_with = 7;
	exapi_response_init(&resp);
	S.steps[0] = (struct script_step){ 0, 200, "data", NULL };
	S.nsteps = 1;
	req_init(&r, "GET", "/a");
	assert_int_equal(invoke(f, &r, &b, &resp, NULL), 7);
	assert_int_equal(b.calls, 1);
	assert_int_equal(S.calls, 1);
	assert_int_equal(resp.status, 200);
	exapi_response_free(&resp);
	fixture_free(f);
}

/* ---- over the wire ------------------------------------------------------ */

enum act {
	A_STREAM,     /* 200, chunked, three chunks with pauses */
	A_CLOSE,      /* read the request, close without a word */
	A_HALF,       /* promise 100 bytes, send 10, close */
	A_503,        /* 503 with a body */
	A_NO_REASON,  /* "HTTP/1.1 200 \r\n", body "ok" */
	A_SILENT,     /* read the request, say nothing until stopped */
};

#define MAX_REQS 8

struct server {
	int lfd, port;
	enum act acts[MAX_REQS];
	int nacts;
	atomic_int requests;
	atomic_int stop;
	pthread_t thread;
	char heads[MAX_REQS][2048];
};

static int send_all(int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int wait_readable(struct server *s, int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int r;

	for (;;) {
		if (atomic_load(&s->stop))
			return -1;
		r = poll(&pfd, 1, 20);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

static void pause_ms(int ms)
{
	struct timespec ts = { 0, ms * 1000000L };

	nanosleep(&ts, NULL);
}

static void serve_one(struct server *s, int fd, int idx)
{
	char head[2048] = "";
	size_t len = 0;
	ssize_t n;
	enum act a = idx < s->nacts ? s->acts[idx] : A_CLOSE;
	const char *resp;

	/* The request head (no test sends a body here). */
	while (len + 1 < sizeof(head) && !strstr(head, "\r\n\r\n")) {
		if (wait_readable(s, fd))
			return;
		n = recv(fd, head + len, sizeof(head) - 1 - len, 0);
		if (n <= 0)
			return;
		len += (size_t)n;
		head[len] = '\0';
	}
	if (idx < MAX_REQS)
		snprintf(s->heads[idx], sizeof(s->heads[idx]), "%s", head);
	switch (a) {
	case A_STREAM:
		resp = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
		       "X-Test: 1\r\nConnection: close\r\n\r\n";
		send_all(fd, resp, strlen(resp));
		send_all(fd, "5\r\nfirst\r\n", 10);
		pause_ms(50);
		send_all(fd, "6\r\nsecond\r\n", 11);
		pause_ms(50);
		send_all(fd, "5\r\nthird\r\n0\r\n\r\n", 15);
		break;
	case A_CLOSE:
		break;
	case A_HALF:
		resp = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789";
		send_all(fd, resp, strlen(resp));
		pause_ms(20);
		break;
	case A_503:
		resp = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n"
		       "Connection: close\r\n\r\nbusy";
		send_all(fd, resp, strlen(resp));
		break;
	case A_NO_REASON:
		resp = "HTTP/1.1 200 \r\nContent-Length: 2\r\n"
		       "Connection: close\r\n\r\nok";
		send_all(fd, resp, strlen(resp));
		break;
	case A_SILENT:
		while (!atomic_load(&s->stop))
			pause_ms(10);
		break;
	}
}

static void *server_main(void *arg)
{
	struct server *s = arg;
	int fd, idx;

	while (!atomic_load(&s->stop)) {
		if (wait_readable(s, s->lfd))
			break;
		fd = accept(s->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		idx = atomic_fetch_add(&s->requests, 1);
		serve_one(s, fd, idx);
		close(fd);
	}
	return NULL;
}

static struct server *server_start(const enum act *acts, int nacts)
{
	struct server *s = calloc(1, sizeof(*s));
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int one = 1;

	assert_non_null(s);
	memcpy(s->acts, acts, sizeof(*acts) * (size_t)nacts);
	s->nacts = nacts;
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s->lfd >= 0);
	setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = 0; /* a free port */
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(s->lfd, 16), 0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&sa, &sl), 0);
	s->port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
	return s;
}

static void server_stop(struct server *s)
{
	atomic_store(&s->stop, 1);
	pthread_join(s->thread, NULL);
	close(s->lfd);
	free(s);
}

static struct fixture *wire_fixture(struct server *s, long timeout_ms)
{
	struct exapi_opts o;
	char ct[64];

	snprintf(ct, sizeof(ct), "127.0.0.1:%d", s->port);
	memset(&o, 0, sizeof(o));
	o.region = "us-east-1";
	o.connect_to = ct;
	o.scheme = "http";
	o.timeout_ms = timeout_ms;
	o.connect_timeout_ms = 2000;
	return fixture_opts(&o, 0);
}

static void test_wire_streams(void **state)
{
	enum act acts[] = { A_STREAM };
	struct server *s = server_start(acts, 1);
	struct fixture *f = wire_fixture(s, 0);
	struct exapi_request r;
	struct exapi_response resp;
	struct sinkbuf b;
	(void)state;

	memset(&b, 0, sizeof(b));
	exapi_response_init(&resp);
	req_init(&r, "GET", "/orders/42");
	r.query = "a=1";
	r.sign = 1;
	assert_int_equal(invoke(f, &r, &b, &resp, NULL), 0);
	assert_int_equal(resp.status, 200);
	assert_string_equal(dbuf_str(&resp.status_line), "HTTP/1.1 200 OK");
	assert_non_null(strstr(dbuf_str(&resp.headers), "X-Test: 1\r\n"));
	assert_string_equal(b.data, "firstsecondthird");
	/* The pauses split the body: it was handed on as it came. */
	assert_true(b.calls >= 2);
	/* The URL's host reached the server although we connected to
	 * 127.0.0.1, and so did the signature. */
	assert_true(strncmp(s->heads[0], "GET /prod/orders/42?a=1 HTTP/1.1\r\n",
			    34) == 0);
	assert_non_null(strcasestr(s->heads[0], "\r\nhost: " HOST "\r\n"));
	assert_non_null(strcasestr(s->heads[0], "\r\nauthorization: AWS4-HMAC-SHA256"));
	exapi_response_free(&resp);
	fixture_free(f);
	server_stop(s);
}

static void test_wire_retry_before_body(void **state)
{
	enum act acts[] = { A_CLOSE, A_503, A_NO_REASON };
	struct server *s = server_start(acts, 3);
	struct fixture *f = wire_fixture(s, 0);
	struct exapi_request r;
	struct exapi_response resp;
	struct sinkbuf b;
	struct aws_err err;
	(void)state;

	memset(&b, 0, sizeof(b));
	exapi_response_init(&resp);
	req_init(&r, "GET", "/a");
	assert_int_equal(invoke(f, &r, &b, &resp, &err), 0);
	assert_int_equal(atomic_load(&s->requests), 3);
	assert_int_equal(S.nsleeps, 2);
	assert_string_equal(b.data, "ok"); /* not "busy" */
	assert_string_equal(dbuf_str(&resp.status_line), "HTTP/1.1 200 OK");
	exapi_response_free(&resp);
	fixture_free(f);
	server_stop(s);
}

static void test_wire_no_retry_after_body(void **state)
{
	enum act acts[] = { A_HALF, A_STREAM };
	struct server *s = server_start(acts, 2);
	struct fixture *f = wire_fixture(s, 0);
	struct exapi_request r;
	struct exapi_response resp;
	struct sinkbuf b;
	struct aws_err err;
	(void)state;

	memset(&b, 0, sizeof(b));
	exapi_response_init(&resp);
	req_init(&r, "GET", "/a");
	assert_int_equal(invoke(f, &r, &b, &resp, &err), -EIO);
	assert_int_equal(err.transport, -ECONNRESET);
	assert_string_equal(b.data, "0123456789");
	assert_int_equal(atomic_load(&s->requests), 1);
	exapi_response_free(&resp);
	fixture_free(f);
	server_stop(s);
}

static void test_wire_timeout_bounds_the_call(void **state)
{
	enum act acts[] = { A_SILENT, A_SILENT, A_SILENT };
	struct server *s = server_start(acts, 3);
	struct fixture *f = wire_fixture(s, 300);
	struct exapi_request r;
	struct exapi_response resp;
	struct aws_err err;
	struct timespec t0, t1;
	double ms;
	(void)state;

	exapi_response_init(&resp);
	req_init(&r, "GET", "/a");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(exapi_invoke(f->ex, &r, NULL, NULL, &resp, &err), -EIO);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
	     (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	assert_int_equal(err.transport, -ETIMEDOUT);
	/* The whole call, retries included, within its timeout (plus
	 * scheduling slack). */
	assert_true(ms < 1500);
	exapi_response_free(&resp);
	fixture_free(f);
	server_stop(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_url_and_encoding, setup_env),
		cmocka_unit_test_setup(test_china_region, setup_env),
		cmocka_unit_test_setup(test_rejects_bad_requests, setup_env),
		cmocka_unit_test_setup(test_signs_like_botocore, setup_env),
		cmocka_unit_test_setup(test_signs_session_token, setup_env),
		cmocka_unit_test_setup(test_unsigned_keeps_caller_auth, setup_env),
		cmocka_unit_test_setup(test_no_credentials, setup_env),
		cmocka_unit_test_setup(test_get_retried_on_5xx, setup_env),
		cmocka_unit_test_setup(test_last_5xx_is_the_answer, setup_env),
		cmocka_unit_test_setup(test_post_never_retried, setup_env),
		cmocka_unit_test_setup(test_transport_retry_then_fail, setup_env),
		cmocka_unit_test_setup(test_4xx_is_an_answer, setup_env),
		cmocka_unit_test_setup(test_callback_stops, setup_env),
		cmocka_unit_test_setup(test_wire_streams, setup_env),
		cmocka_unit_test_setup(test_wire_retry_before_body, setup_env),
		cmocka_unit_test_setup(test_wire_no_retry_after_body, setup_env),
		cmocka_unit_test_setup(test_wire_timeout_bounds_the_call, setup_env),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
