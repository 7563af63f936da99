/* wsconn against a real WebSocket server: tests/lib/ws-echo.mjs (the `ws`
 * package, TLS with a throwaway CA, presigned URLs checked by the AWS
 * SDK's signer), started by run-with-ws-echo.sh.  Most tests share one
 * hub that trusts the test CA, as the connections of a mount do.
 *
 * Environment (from the wrapper): DYNFS_TEST_WS_PORT (wss),
 * DYNFS_TEST_WS_HTTP_PORT (ws), DYNFS_TEST_WS_CA, DYNFS_TEST_WS_CLOSED_PORT,
 * DYNFS_TEST_WS_REGION, DYNFS_TEST_WS_AK/SK, DYNFS_TEST_WS_STS_AK/SK/TOKEN. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "backend/awscfg.h"
#include "backend/creds.h"
#include "backend/dbuf.h"
#include "backend/http.h"
#include "backend/wsconn.h"

#define API_HOST "abc123defg.execute-api.us-east-1.amazonaws.com"

static const char *wss_port, *ws_port, *ca_file, *closed_port, *region;
/* The hub of most tests (the test CA), made by the group set-up. */
static struct wsconn_hub *hub;

static const char *need_env(const char *name)
{
	const char *v = getenv(name);

	if (v == NULL || *v == '\0') {
		fprintf(stderr, "test_wsconn: %s is not set; run me through "
			"tests/integration/run-with-ws-echo.sh\n", name);
		exit(1);
	}
	return v;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static long cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void url_for(char *buf, size_t size, int tls, const char *path)
{
	snprintf(buf, size, "%s://localhost:%s%s", tls ? "wss" : "ws",
		 tls ? wss_port : ws_port, path);
}

/* Opens url on hub h (its CA); returns the rc, *why kept for asserts. */
static int try_open_on(struct wsconn_hub *h, struct wsconn **c,
		       const char *url, struct dbuf *why)
{
	struct wsconn_opts o;

	memset(&o, 0, sizeof(o));
	o.url = url;
	o.connect_timeout_ms = 5000;
	return wsconn_open(h, c, &o, why);
}

/* Opens url with the test CA; returns the rc, *why kept for asserts. */
static int try_open(struct wsconn **c, const char *url, struct dbuf *why)
{
	return try_open_on(hub, c, url, why);
}

/* Opens url on hub h, or fails the test. */
static struct wsconn *open_on_ok(struct wsconn_hub *h, const char *url)
{
	struct wsconn *c = NULL;
	struct dbuf why;
	int rc;

	dbuf_init(&why, DBUF_CAP_SMALL);
	rc = try_open_on(h, &c, url, &why);
	if (rc != 0)
		fail_msg("wsconn_open(%s): %d: %s", url, rc, dbuf_str(&why));
	dbuf_free(&why);
	assert_non_null(c);
	return c;
}

static struct wsconn *open_ok(const char *path, int tls)
{
	char url[256];

	url_for(url, sizeof(url), tls, path);
	return open_on_ok(hub, url);
}

static void send_str(struct wsconn *c, const char *s)
{
	assert_int_equal(wsconn_send(c, s, strlen(s)), 0);
}

/* Reads until want bytes arrived (blocking) and compares them. */
static void expect(struct wsconn *c, const char *want)
{
	size_t n = strlen(want), got = 0;
	char *buf = malloc(n + 1);

	assert_non_null(buf);
	while (got < n) {
		ssize_t r = wsconn_recv(c, buf + got, n - got, 0);

		if (r <= 0)
			fail_msg("wsconn_recv: %zd after %zu of %zu bytes", r,
				 got, n);
		got += (size_t)r;
	}
	buf[n] = '\0';
	assert_string_equal(buf, want);
	free(buf);
}

/* --- credentials ----------------------------------------------------- */

struct keys {
	struct awscfg *cfg;
	struct creds_chain *chain;
};

/* The environment provider is the only source here: the wrapper points
 * the config files at empty ones and sets no profile. */
static void keys_open(struct keys *k, const char *ak, const char *sk,
		      const char *token)
{
	struct dbuf why;

	memset(k, 0, sizeof(*k));
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_DEFAULT_PROFILE");
	unsetenv("AWS_SECURITY_TOKEN");
	setenv("AWS_ACCESS_KEY_ID", ak, 1);
	setenv("AWS_SECRET_ACCESS_KEY", sk, 1);
	if (token)
		setenv("AWS_SESSION_TOKEN", token, 1);
	else
		unsetenv("AWS_SESSION_TOKEN");
	dbuf_init(&why, DBUF_CAP_SMALL);
	if (awscfg_load(&k->cfg, NULL, &why) != 0)
		fail_msg("awscfg_load: %s", dbuf_str(&why));
	if (creds_chain_new(&k->chain, k->cfg) != 0)
		fail_msg("creds_chain_new failed");
	dbuf_free(&why);
}

static void keys_close(struct keys *k)
{
	creds_chain_free(k->chain);
	awscfg_free(k->cfg);
	memset(k, 0, sizeof(*k));
}

static int open_signed(struct wsconn **c, struct keys *k, const char *url,
		       const char *connect_to, struct dbuf *why)
{
	struct wsconn_opts o;

	memset(&o, 0, sizeof(o));
	o.url = url;
	o.presign = 1;
	o.creds = k->chain;
	o.region = region;
	o.connect_to = connect_to;
	o.connect_timeout_ms = 5000;
	return wsconn_open(hub, c, &o, why);
}

/* --- tests --------------------------------------------------------------- */

static void test_round_trip_wss(void **state)
{
	struct wsconn *c = open_ok("/echo", 1);

	(void)state;
	send_str(c, "hello");
	expect(c, "hello\n");
	send_str(c, "");
	expect(c, "\n");
	wsconn_close(c);
}

static void test_round_trip_ws(void **state)
{
	struct wsconn *c = open_ok("/echo?a=1", 0);

	(void)state;
	send_str(c, "plain");
	expect(c, "plain\n");
	send_str(c, "whoami");
	expect(c, "{\"host\":\"localhost:");
	wsconn_close(c);
}

static void test_multiple_messages(void **state)
{
	struct wsconn *c = open_ok("/echo", 1);

	(void)state;
	send_str(c, "repeat 5 m");
	expect(c, "m-1\nm-2\nm-3\nm-4\nm-5\n");
	send_str(c, "one");
	send_str(c, "two");
	expect(c, "one\ntwo\n");
	wsconn_close(c);
}

static void test_partial_reads(void **state)
{
	struct wsconn *c = open_ok("/echo", 1);
	char buf[8];
	ssize_t r;

	(void)state;
	assert_int_equal(wsconn_recv(c, buf, sizeof(buf), 1), -EAGAIN);
	send_str(c, "abcdefghij");
	r = wsconn_recv(c, buf, 3, 0);
	assert_int_equal(r, 3);
	assert_memory_equal(buf, "abc", 3);
	r = wsconn_recv(c, buf, 3, 1);
	assert_int_equal(r, 3);
	assert_memory_equal(buf, "def", 3);
	r = wsconn_recv(c, buf, sizeof(buf), 0);
	assert_int_equal(r, 5);
	assert_memory_equal(buf, "ghij\n", 5);
	assert_int_equal(wsconn_recv(c, buf, sizeof(buf), 1), -EAGAIN);
	assert_int_equal(wsconn_recv(c, buf, 0, 0), 0);
	wsconn_close(c);
}

struct reader {
	struct wsconn *c;
	char buf[64];
	ssize_t r;
	long waited_ms;
};

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	long t0 = now_ms();

	rd->r = wsconn_recv(rd->c, rd->buf, sizeof(rd->buf) - 1, 0);
	rd->waited_ms = now_ms() - t0;
	return NULL;
}

/* One thread blocks in recv while the other sends; the message that
 * comes back wakes it. */
static void test_blocking_read_woken(void **state)
{
	struct wsconn *c = open_ok("/echo", 1);
	struct reader rd;
	pthread_t t;
	long t0;
	char buf[32];
	ssize_t r;

	(void)state;
	memset(&rd, 0, sizeof(rd));
	rd.c = c;
	assert_int_equal(pthread_create(&t, NULL, reader_main, &rd), 0);
	usleep(300 * 1000);
	send_str(c, "wake up");
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(rd.r, 8);
	assert_memory_equal(rd.buf, "wake up\n", 8);
	assert_true(rd.waited_ms >= 250);

	/* The server sends later on its own: recv waits for it. */
	send_str(c, "later 400 late");
	t0 = now_ms();
	r = wsconn_recv(c, buf, sizeof(buf), 0);
	assert_int_equal(r, 5);
	assert_memory_equal(buf, "late\n", 5);
	assert_true(now_ms() - t0 >= 300);
	wsconn_close(c);
}

static void test_eof_after_server_close(void **state)
{
	struct wsconn *c = open_ok("/echo", 1);
	char buf[16];

	(void)state;
	send_str(c, "repeat 2 z");
	send_str(c, "close");
	expect(c, "z-1\nz-2\n");
	assert_int_equal(wsconn_recv(c, buf, sizeof(buf), 0), 0);
	assert_int_equal(wsconn_recv(c, buf, sizeof(buf), 1), 0);
	/* Closed: a send has nowhere to go. */
	assert_int_equal(wsconn_send(c, "x", 1), -EPIPE);
	wsconn_close(c);
}

/* A server that closes at once while we send: every send either went
 * out before the close or says -EPIPE; none hangs. */
static void test_send_after_close(void **state)
{
	struct wsconn *c = open_ok("/echo", 0);
	char buf[16];
	int i, rc;

	(void)state;
	send_str(c, "close");
	while (wsconn_recv(c, buf, sizeof(buf), 0) > 0)
		;
	for (i = 0; i < 3; i++) {
		rc = wsconn_send(c, "after", 5);
		assert_int_equal(rc, -EPIPE);
	}
	wsconn_close(c);
}

/* wsconn_close sends a close frame (1000) and the server sees it. */
static void test_close_frame(void **state)
{
	struct wsconn *c = open_ok("/echo", 1);
	char buf[64];
	ssize_t r = 0;
	int i;

	(void)state;
	send_str(c, "before close");
	expect(c, "before close\n");
	wsconn_close(c);

	c = open_ok("/echo", 1);
	/* The server's close event may trail our close by a moment. */
	for (i = 0; i < 20; i++) {
		send_str(c, "lastclose");
		r = wsconn_recv(c, buf, sizeof(buf) - 1, 0);
		assert_true(r > 0);
		buf[r] = '\0';
		if (!strcmp(buf, "1000\n"))
			break;
		usleep(100 * 1000);
	}
	assert_string_equal(buf, "1000\n");
	wsconn_close(c);
}

/* A connection lost without a close frame: the data that came first,
 * then -ECONNRESET instead of a clean EOF. */
static void test_dropped_connection(void **state)
{
	struct wsconn *c = open_ok("/echo", 1);
	char buf[16];

	(void)state;
	send_str(c, "repeat 2 d");
	send_str(c, "drop");
	expect(c, "d-1\nd-2\n");
	assert_int_equal(wsconn_recv(c, buf, sizeof(buf), 0), -ECONNRESET);
	assert_int_equal(wsconn_send(c, "x", 1), -EPIPE);
	wsconn_close(c);
}

/* lws is told to expect a handful of fds; the process may hold many
 * more, so the connection's own fd numbers are high. */
static void test_high_fds(void **state)
{
	int fds[300], n = 0;
	struct wsconn *c;

	(void)state;
	while (n < 300 && (fds[n] = dup(2)) >= 0)
		n++;
	c = open_ok("/echo", 1);
	send_str(c, "high");
	expect(c, "high\n");
	wsconn_close(c);
	while (n > 0)
		close(fds[--n]);
}

/* lws initializes OpenSSL with its context; libcurl's TLS in the same
 * process must not notice, before, between and after. */
static void https_get_426(struct http_client *h, const char *url)
{
	struct http_request req;
	struct http_response resp;
	struct dbuf why;
	int rc;

	memset(&req, 0, sizeof(req));
	req.method = "GET";
	req.url = url;
	http_response_init(&resp);
	dbuf_init(&why, DBUF_CAP_SMALL);
	rc = http_perform(h, &req, &resp, &why);
	if (rc)
		fail_msg("http_perform: %d: %s", rc, dbuf_str(&why));
	/* ws-echo's answer to a plain request. */
	assert_int_equal(resp.status, 426);
	http_response_free(&resp);
	dbuf_free(&why);
}

static void test_libcurl_alongside(void **state)
{
	struct http_opts ho;
	struct http_client *h = NULL;
	struct wsconn *a, *b;
	char url[256];

	(void)state;
	memset(&ho, 0, sizeof(ho));
	ho.ca_file = ca_file;
	assert_int_equal(http_client_new(&h, &ho), 0);
	snprintf(url, sizeof(url), "https://localhost:%s/plain", wss_port);
	https_get_426(h, url);
	/* Two TLS connections at once, one closed while the other is
	 * open (what leaked with a context per connection). */
	a = open_ok("/echo", 1);
	b = open_ok("/echo", 1);
	https_get_426(h, url);
	wsconn_close(a);
	send_str(b, "still");
	expect(b, "still\n");
	wsconn_close(b);
	https_get_426(h, url);
	http_client_free(h);
}

static void test_big_messages(void **state)
{
	struct wsconn *c = open_ok("/echo", 1);
	size_t n = 300 * 1000, got = 0;
	char *msg = malloc(n + 1), *back = malloc(n + 1);

	(void)state;
	assert_non_null(msg);
	assert_non_null(back);
	for (size_t i = 0; i < n; i++)
		msg[i] = (char)('a' + i % 26);
	assert_int_equal(wsconn_send(c, msg, n), 0);
	while (got < n + 1) {
		ssize_t r = wsconn_recv(c, back + got, n + 1 - got, 0);

		assert_true(r > 0);
		got += (size_t)r;
	}
	assert_memory_equal(back, msg, n);
	assert_int_equal(back[n], '\n');
	assert_int_equal(wsconn_send(c, msg, 5u << 20), -EMSGSIZE);
	free(msg);
	free(back);
	wsconn_close(c);
}

/* 12 MiB arrive while nobody reads: the socket is paused above the
 * high mark and resumed as the reader catches up; nothing is lost. */
static void flow_control(int tls)
{
	struct wsconn *c = open_ok("/echo", tls);
	const size_t count = 48, size = 256 * 1024;
	size_t line = 0, col = 0, total = 0;
	char *buf = malloc(65536), head[16];
	long cpu0, spent;
	int hlen = 0;

	assert_non_null(buf);
	send_str(c, "flood 48 262144");
	/* Once paused the service thread sleeps: it must not spin (lws 4.1
	 * does when paused mid-read on TLS).  The first second lets the
	 * data up to the pause arrive, even under valgrind. */
	usleep(1000 * 1000);
	cpu0 = cpu_ms();
	usleep(1000 * 1000);
	spent = cpu_ms() - cpu0;
	if (spent > 500) {
		free(buf);
		wsconn_close(c);
		fail_msg("%ld ms of CPU in 1000 ms of a paused connection",
			 spent);
	}
	hlen = snprintf(head, sizeof(head), "%zu:", line + 1);
	while (line < count) {
		ssize_t r = wsconn_recv(c, buf, 65536, 0);

		assert_true(r > 0);
		total += (size_t)r;
		for (ssize_t i = 0; i < r; i++, col++) {
			char ch = buf[i];

			if (col == size) {
				assert_int_equal(ch, '\n');
				line++;
				col = (size_t)-1;
				hlen = snprintf(head, sizeof(head), "%zu:",
						line + 1);
			} else if (col < (size_t)hlen) {
				assert_int_equal(ch, head[col]);
			} else {
				assert_int_equal(ch, 'y');
			}
		}
	}
	assert_int_equal(total, count * (size + 1));
	send_str(c, "still there");
	expect(c, "still there\n");
	free(buf);
	wsconn_close(c);
}

static void test_flow_control_ws(void **state)
{
	(void)state;
	flow_control(0);
}

static void test_flow_control_wss(void **state)
{
	(void)state;
	flow_control(1);
}

static void test_presigned(void **state)
{
	struct keys k;
	struct wsconn *c = NULL;
	struct dbuf why;
	char url[256];
	int rc;

	(void)state;
	dbuf_init(&why, DBUF_CAP_SMALL);
	url_for(url, sizeof(url), 1, "/iam/dev?client=t1");

	keys_open(&k, need_env("DYNFS_TEST_WS_AK"),
		  need_env("DYNFS_TEST_WS_SK"), NULL);
	rc = open_signed(&c, &k, url, NULL, &why);
	if (rc)
		fail_msg("presigned open: %d: %s", rc, dbuf_str(&why));
	send_str(c, "signed");
	expect(c, "signed\n");
	wsconn_close(c);
	keys_close(&k);

	/* With a session token, which must ride along in the query. */
	keys_open(&k, need_env("DYNFS_TEST_WS_STS_AK"),
		  need_env("DYNFS_TEST_WS_STS_SK"),
		  need_env("DYNFS_TEST_WS_STS_TOKEN"));
	c = NULL;
	rc = open_signed(&c, &k, url, NULL, &why);
	if (rc)
		fail_msg("presigned open with a token: %d: %s", rc,
			 dbuf_str(&why));
	send_str(c, "whoami");
	expect(c, "{\"host\":\"localhost:");
	wsconn_close(c);
	keys_close(&k);
	dbuf_free(&why);
}

static void test_presigned_wrong_secret(void **state)
{
	struct keys k;
	struct wsconn *c = NULL;
	struct dbuf why;
	char url[256];
	const char *sk = "not-the-right-secret-key-000000000000000";
	int rc;

	(void)state;
	dbuf_init(&why, DBUF_CAP_SMALL);
	url_for(url, sizeof(url), 1, "/iam/dev");
	keys_open(&k, need_env("DYNFS_TEST_WS_AK"), sk, NULL);
	rc = open_signed(&c, &k, url, NULL, &why);
	assert_int_equal(rc, -EACCES);
	assert_null(c);
	assert_non_null(strstr(dbuf_str(&why), "403"));
	/* Never a secret in the message. */
	assert_null(strstr(dbuf_str(&why), sk));
	assert_null(strstr(dbuf_str(&why), "X-Amz-"));
	keys_close(&k);

	/* Unsigned where signing is required. */
	dbuf_reset(&why);
	assert_int_equal(try_open(&c, url, &why), -EACCES);
	dbuf_free(&why);
}

static void test_http_refusals(void **state)
{
	struct wsconn *c = NULL;
	struct dbuf why;
	char url[256];

	(void)state;
	dbuf_init(&why, DBUF_CAP_SMALL);
	url_for(url, sizeof(url), 1, "/status/404");
	assert_int_equal(try_open(&c, url, &why), -ENOENT);
	assert_non_null(strstr(dbuf_str(&why), "404"));
	dbuf_reset(&why);
	url_for(url, sizeof(url), 1, "/status/401");
	assert_int_equal(try_open(&c, url, &why), -EACCES);
	dbuf_reset(&why);
	url_for(url, sizeof(url), 0, "/status/500");
	assert_int_equal(try_open(&c, url, &why), -EIO);
	assert_non_null(strstr(dbuf_str(&why), "500"));
	assert_null(c);
	dbuf_free(&why);
}

/* The real API host name in the URL, the Host header, the TLS name and
 * the signature; only the TCP connection goes to 127.0.0.1. */
static void test_connect_to(void **state)
{
	struct keys k;
	struct wsconn *c = NULL;
	struct dbuf why;
	char ct[64];
	int rc;

	(void)state;
	dbuf_init(&why, DBUF_CAP_SMALL);
	snprintf(ct, sizeof(ct), "127.0.0.1:%s", wss_port);
	keys_open(&k, need_env("DYNFS_TEST_WS_AK"),
		  need_env("DYNFS_TEST_WS_SK"), NULL);
	rc = open_signed(&c, &k, "wss://" API_HOST "/iam-prod", ct, &why);
	if (rc)
		fail_msg("connect_to open: %d: %s", rc, dbuf_str(&why));
	send_str(c, "whoami");
	expect(c, "{\"host\":\"" API_HOST "\",\"url\":\"/iam-prod?");
	wsconn_close(c);
	keys_close(&k);

	/* A name the certificate does not hold is refused. */
	c = NULL;
	dbuf_reset(&why);
	{
		struct wsconn_opts o;
		struct wsconn_hub *sys = NULL;

		memset(&o, 0, sizeof(o));
		o.url = "wss://api.example.com/prod";
		o.connect_to = ct;
		o.connect_timeout_ms = 5000;
		assert_int_equal(wsconn_open(hub, &c, &o, &why), -EIO);
		assert_null(c);

		/* So is our CA when only the system's are trusted. */
		dbuf_reset(&why);
		assert_int_equal(wsconn_hub_new(&sys, NULL), 0);
		o.url = "wss://" API_HOST "/prod";
		assert_int_equal(wsconn_open(sys, &c, &o, &why), -EIO);
		assert_null(c);
		wsconn_hub_free(sys);
	}
	dbuf_free(&why);
}

static void test_refused_and_timeout(void **state)
{
	struct wsconn_opts o;
	struct wsconn *c = NULL;
	struct dbuf why;
	char url[256];
	long t0;
	int rc;

	(void)state;
	dbuf_init(&why, DBUF_CAP_SMALL);
	snprintf(url, sizeof(url), "ws://127.0.0.1:%s/x", closed_port);
	memset(&o, 0, sizeof(o));
	o.url = url;
	o.connect_timeout_ms = 3000;
	t0 = now_ms();
	rc = wsconn_open(hub, &c, &o, &why);
	assert_true(rc == -EIO || rc == -ETIMEDOUT);
	assert_true(now_ms() - t0 < 3500);
	assert_true(dbuf_len(&why) > 0);
	assert_null(c);

	/* TCP and TLS fine, but no HTTP answer: the deadline holds. */
	dbuf_reset(&why);
	url_for(url, sizeof(url), 1, "/hang");
	o.connect_timeout_ms = 700;
	t0 = now_ms();
	rc = wsconn_open(hub, &c, &o, &why);
	assert_int_equal(rc, -ETIMEDOUT);
	assert_true(now_ms() - t0 >= 600);
	assert_true(now_ms() - t0 < 2500);
	assert_null(c);

	dbuf_reset(&why);
	o.url = "http://localhost/x";
	assert_int_equal(wsconn_open(hub, &c, &o, &why), -EINVAL);
	o.url = "wss://host:99999/x";
	assert_int_equal(wsconn_open(hub, &c, &o, &why), -EINVAL);
	o.url = "wss://localhost/x";
	o.connect_to = "127.0.0.1";
	assert_int_equal(wsconn_open(hub, &c, &o, &why), -EINVAL);
	dbuf_free(&why);

	/* The connect given up on at its deadline does not linger: the
	 * hub still connects at once. */
	c = open_ok("/echo", 1);
	send_str(c, "after");
	expect(c, "after\n");
	wsconn_close(c);
}

/* Several threads send at once on one connection; each message comes
 * back whole. */
struct sender {
	struct wsconn *c;
	int id;
	int fails;
};

static void *sender_main(void *arg)
{
	struct sender *s = arg;
	char msg[32];

	for (int i = 0; i < 50; i++) {
		snprintf(msg, sizeof(msg), "s%d-%d", s->id, i);
		if (wsconn_send(s->c, msg, strlen(msg)) != 0)
			s->fails++;
	}
	return NULL;
}

static void test_concurrent_senders(void **state)
{
	struct wsconn *c = open_ok("/echo", 1);
	struct sender s[4];
	pthread_t t[4];
	int seen[4] = { 0 }, lines = 0;
	char buf[4096], cur[64];
	size_t clen = 0;

	(void)state;
	for (int i = 0; i < 4; i++) {
		s[i].c = c;
		s[i].id = i;
		s[i].fails = 0;
		assert_int_equal(pthread_create(&t[i], NULL, sender_main,
						&s[i]), 0);
	}
	while (lines < 200) {
		ssize_t r = wsconn_recv(c, buf, sizeof(buf), 0);

		assert_true(r > 0);
		for (ssize_t i = 0; i < r; i++) {
			int id, n;

			if (buf[i] != '\n') {
				assert_true(clen < sizeof(cur) - 1);
				cur[clen++] = buf[i];
				continue;
			}
			cur[clen] = '\0';
			clen = 0;
			assert_int_equal(sscanf(cur, "s%d-%d", &id, &n), 2);
			assert_true(id >= 0 && id < 4);
			/* Per sender, order is kept. */
			assert_int_equal(n, seen[id]);
			seen[id]++;
			lines++;
		}
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(s[i].fails, 0);
	}
	wsconn_close(c);
}

/* Eight connections on the hub at once, ws and wss; closing some leaves
 * the others working. */
static void test_many_connections(void **state)
{
	struct wsconn *c[8];
	char msg[32];
	int i;

	(void)state;
	for (i = 0; i < 8; i++)
		c[i] = open_ok("/echo", i % 2);
	for (i = 0; i < 8; i++) {
		snprintf(msg, sizeof(msg), "conn %d", i);
		send_str(c[i], msg);
	}
	for (i = 0; i < 8; i++) {
		snprintf(msg, sizeof(msg), "conn %d\n", i);
		expect(c[i], msg);
	}
	for (i = 0; i < 8; i += 2)
		wsconn_close(c[i]);
	for (i = 1; i < 8; i += 2) {
		send_str(c[i], "left");
		expect(c[i], "left\n");
		wsconn_close(c[i]);
	}
}

/* A second hub (a second mount, in effect) with its own context and
 * TLS set-up comes and goes while the first one's connection stays. */
static void test_second_hub(void **state)
{
	struct wsconn_hub_opts ho;
	struct wsconn_hub *h2 = NULL;
	struct wsconn *a, *b = NULL;
	struct dbuf why;
	char url[256];

	(void)state;
	a = open_ok("/echo", 1);
	memset(&ho, 0, sizeof(ho));
	ho.ca_file = ca_file;
	assert_int_equal(wsconn_hub_new(&h2, &ho), 0);
	url_for(url, sizeof(url), 1, "/echo");
	b = open_on_ok(h2, url);
	/* The hub is let go first; it ends with its connection. */
	wsconn_hub_free(h2);
	send_str(b, "two");
	expect(b, "two\n");
	wsconn_close(b);
	send_str(a, "one");
	expect(a, "one\n");
	wsconn_close(a);

	/* A CA file that cannot be read fails the connect, not the hub. */
	ho.ca_file = "/nonexistent/ca.pem";
	assert_int_equal(wsconn_hub_new(&h2, &ho), 0);
	dbuf_init(&why, DBUF_CAP_SMALL);
	b = NULL;
	assert_int_equal(try_open_on(h2, &b, url, &why), -EIO);
	assert_non_null(strstr(dbuf_str(&why), "CA file"));
	assert_null(b);
	wsconn_hub_free(h2);
	dbuf_free(&why);
	ho.ping_s = 5;
	ho.hangup_s = 5;
	assert_int_equal(wsconn_hub_new(&h2, &ho), -EINVAL);
}

/* on_ready, as poll(2) uses it: how often it was called. */
struct ready {
	pthread_mutex_t lock;
	int count;
};

static void on_ready(void *arg)
{
	struct ready *r = arg;

	pthread_mutex_lock(&r->lock);
	r->count++;
	pthread_mutex_unlock(&r->lock);
}

static int ready_count(struct ready *r)
{
	int n;

	pthread_mutex_lock(&r->lock);
	n = r->count;
	pthread_mutex_unlock(&r->lock);
	return n;
}

/* Waits up to ms for on_ready to have been called more than n times. */
static int ready_after(struct ready *r, int n, long ms)
{
	long t0 = now_ms();

	while (ready_count(r) <= n && now_ms() - t0 < ms)
		usleep(10 * 1000);
	return ready_count(r) > n;
}

static void test_events_and_on_ready(void **state)
{
	struct ready r = { PTHREAD_MUTEX_INITIALIZER, 0 };
	struct wsconn_opts o;
	struct wsconn *c = NULL;
	struct dbuf why;
	char url[256], buf[32];
	int n;

	(void)state;
	url_for(url, sizeof(url), 1, "/echo");
	memset(&o, 0, sizeof(o));
	o.url = url;
	o.connect_timeout_ms = 5000;
	o.on_ready = on_ready;
	o.arg = &r;
	dbuf_init(&why, DBUF_CAP_SMALL);
	if (wsconn_open(hub, &c, &o, &why))
		fail_msg("open: %s", dbuf_str(&why));
	dbuf_free(&why);
	assert_int_equal(wsconn_events(c), POLLOUT | POLLWRNORM);

	/* A message that comes later: on_ready tells of it, and only then
	 * is it readable. */
	n = ready_count(&r);
	send_str(c, "later 300 hi");
	usleep(100 * 1000);
	assert_int_equal(wsconn_events(c) & POLLIN, 0);
	assert_true(ready_after(&r, n, 5000));
	assert_int_equal(wsconn_events(c),
			 POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM);
	expect(c, "hi\n");
	assert_int_equal(wsconn_events(c) & POLLIN, 0);

	/* The end is readable too (recv returns 0), and hung up. */
	n = ready_count(&r);
	send_str(c, "close");
	assert_true(ready_after(&r, n, 5000));
	assert_int_equal(wsconn_events(c), POLLIN | POLLRDNORM | POLLHUP);
	assert_int_equal(wsconn_recv(c, buf, sizeof(buf), 1), 0);
	wsconn_close(c);
}

/* Keep-alive: with a ping every second and a hang-up after two without
 * a pong, a connection idle for 2.5 s lives on only because the pongs
 * come (test_keepalive_hangup shows the hang-up). */
static void test_keepalive(void **state)
{
	struct wsconn_hub_opts ho;
	struct wsconn_hub *h = NULL;
	struct wsconn *c;
	char url[256];

	(void)state;
	memset(&ho, 0, sizeof(ho));
	ho.ca_file = ca_file;
	ho.ping_s = 1;
	ho.hangup_s = 2;
	assert_int_equal(wsconn_hub_new(&h, &ho), 0);
	url_for(url, sizeof(url), 1, "/echo");
	c = open_on_ok(h, url);
	usleep(2500 * 1000);
	send_str(c, "alive");
	expect(c, "alive\n");
	wsconn_close(c);
	wsconn_hub_free(h);
}

/* A peer that completes the upgrade and then stays silent, pongs
 * included. */
struct mute_peer {
	int lfd;
	int port;
	pthread_t thread;
};

static void *mute_main(void *arg)
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	struct mute_peer *m = arg;
	char req[4096], key[128], resp[256];
	unsigned char sha[SHA_DIGEST_LENGTH], acc[64];
	size_t got = 0;
	const char *k;
	ssize_t r;
	int fd;

	fd = accept(m->lfd, NULL, NULL);
	if (fd < 0)
		return NULL;
	while (got < sizeof(req) - 1) {
		r = read(fd, req + got, sizeof(req) - 1 - got);
		if (r <= 0)
			goto out;
		got += (size_t)r;
		req[got] = '\0';
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	k = strstr(req, "Sec-WebSocket-Key:"); /* as lws spells it */
	if (!k || sscanf(k + 18, " %100[^\r\n ]", key) != 1)
		goto out;
	strncat(key, guid, sizeof(key) - strlen(key) - 1);
	SHA1((const unsigned char *)key, strlen(key), sha);
	EVP_EncodeBlock(acc, sha, SHA_DIGEST_LENGTH);
	snprintf(resp, sizeof(resp), "HTTP/1.1 101 Switching Protocols\r\n"
		 "Upgrade: websocket\r\nConnection: Upgrade\r\n"
		 "Sec-WebSocket-Accept: %s\r\n\r\n", (const char *)acc);
	if (write(fd, resp, strlen(resp)) < 0)
		goto out;
	/* Read (the pings) and never answer, until the client hangs up. */
	while (read(fd, req, sizeof(req)) > 0)
		;
out:
	close(fd);
	return NULL;
}

static void test_keepalive_hangup(void **state)
{
	struct mute_peer m;
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	struct wsconn_hub_opts ho;
	struct wsconn_hub *h = NULL;
	struct wsconn *c;
	char url[64], buf[16];
	long t0;
	ssize_t r;

	(void)state;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	m.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(m.lfd >= 0);
	assert_int_equal(bind(m.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(m.lfd, 1), 0);
	assert_int_equal(getsockname(m.lfd, (struct sockaddr *)&sa, &sl), 0);
	m.port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&m.thread, NULL, mute_main, &m), 0);

	memset(&ho, 0, sizeof(ho));
	ho.ping_s = 1;
	ho.hangup_s = 2;
	assert_int_equal(wsconn_hub_new(&h, &ho), 0);
	snprintf(url, sizeof(url), "ws://127.0.0.1:%d/mute", m.port);
	c = open_on_ok(h, url);
	t0 = now_ms();
	r = wsconn_recv(c, buf, sizeof(buf), 0);
	assert_int_equal(r, -ECONNRESET);
	assert_true(now_ms() - t0 >= 1500);
	assert_true(now_ms() - t0 < 6000);
	wsconn_close(c);
	wsconn_hub_free(h);
	assert_int_equal(pthread_join(m.thread, NULL), 0);
	close(m.lfd);
}

static int hub_setup(void **state)
{
	struct wsconn_hub_opts ho;

	(void)state;
	memset(&ho, 0, sizeof(ho));
	ho.ca_file = ca_file;
	return wsconn_hub_new(&hub, &ho);
}

static int hub_teardown(void **state)
{
	(void)state;
	wsconn_hub_free(hub);
	hub = NULL;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_wss),
		cmocka_unit_test(test_round_trip_ws),
		cmocka_unit_test(test_multiple_messages),
		cmocka_unit_test(test_partial_reads),
		cmocka_unit_test(test_blocking_read_woken),
		cmocka_unit_test(test_eof_after_server_close),
		cmocka_unit_test(test_send_after_close),
		cmocka_unit_test(test_close_frame),
		cmocka_unit_test(test_dropped_connection),
		cmocka_unit_test(test_high_fds),
		cmocka_unit_test(test_libcurl_alongside),
		cmocka_unit_test(test_big_messages),
		cmocka_unit_test(test_flow_control_ws),
		cmocka_unit_test(test_flow_control_wss),
		cmocka_unit_test(test_concurrent_senders),
		cmocka_unit_test(test_presigned),
		cmocka_unit_test(test_presigned_wrong_secret),
		cmocka_unit_test(test_http_refusals),
		cmocka_unit_test(test_connect_to),
		cmocka_unit_test(test_refused_and_timeout),
		cmocka_unit_test(test_many_connections),
		cmocka_unit_test(test_second_hub),
		cmocka_unit_test(test_events_and_on_ready),
		cmocka_unit_test(test_keepalive),
		cmocka_unit_test(test_keepalive_hangup),
	};

	wss_port = need_env("DYNFS_TEST_WS_PORT");
	ws_port = need_env("DYNFS_TEST_WS_HTTP_PORT");
	ca_file = need_env("DYNFS_TEST_WS_CA");
	closed_port = need_env("DYNFS_TEST_WS_CLOSED_PORT");
	region = need_env("DYNFS_TEST_WS_REGION");
	return cmocka_run_group_tests_name("wsconn", tests, hub_setup,
					   hub_teardown);
}
