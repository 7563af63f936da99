/* http: real transfers against a tiny HTTP/1.1 server on 127.0.0.1 that
 * runs in this process (one thread per connection, keep-alive). */
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

#include "backend/http.h"

enum mode {
	M_NORMAL,      /* 200 (or /status/NNN), echo of method, path, body */
	M_SILENT,      /* read the request, never answer */
	M_BIG_CL,      /* 4096-byte body with Content-Length */
	M_BIG_CHUNKED, /* 4096-byte body, chunked (size unknown up front) */
	M_CLOSE_MID,   /* promise 100 bytes, send 3, close */
	M_RESET,       /* read the request, then reset the connection */
	M_CONTINUE,    /* 100 Continue with a header, then the real answer */
};

#define MAX_CONNS 64
#define BIG_LEN 4096

struct server {
	int lfd;
	int port;
	_Atomic int mode;
	atomic_int accepts;
	atomic_int requests;
	atomic_int stop;
	pthread_t acceptor;
	pthread_mutex_t lock; /* guards the fields below */
	pthread_t conns[MAX_CONNS];
	int nconns;
	char last_head[16384];
	char last_body[16384];
	size_t last_body_len;
};

struct conn {
	struct server *srv;
	int fd;
};

static int send_all(int fd, const void *p, size_t len)
{
	const char *c = p;
	ssize_t n;

	while (len) {
		n = send(fd, c, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += n;
		len -= (size_t)n;
	}
	return 0;
}

/* recv with a short poll so a stop request is noticed.  0 on EOF. */
static ssize_t recv_some(struct server *s, int fd, char *buf, size_t size)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int r;

	for (;;) {
		if (atomic_load(&s->stop))
			return -1;
		r = poll(&pfd, 1, 50);
		if (r < 0 && errno != EINTR)
			return -1;
		if (r > 0)
			return recv(fd, buf, size, 0);
	}
}

static size_t head_content_length(const char *head)
{
	const char *p = head;

	while ((p = strchr(p, '\n'))) {
		p++;
		if (strncasecmp(p, "Content-Length:", 15) == 0)
			return (size_t)strtoul(p + 15, NULL, 10);
	}
	return 0;
}

static void respond_normal(int fd, const char *head, const char *body,
			   size_t body_len)
{
	char method[16] = "", path[256] = "", out[20000], hdr[512];
	int status = 200, n;

	sscanf(head, "%15s %255s", method, path);
	if (strncmp(path, "/status/", 8) == 0)
		status = atoi(path + 8);
	n = snprintf(out, sizeof(out), "%s %s", method, path);
	if (body_len && (size_t)n + 1 + body_len < sizeof(out)) {
		out[n++] = ':';
		memcpy(out + n, body, body_len);
		n += (int)body_len;
	}
	snprintf(hdr, sizeof(hdr),
		 "HTTP/1.1 %d Whatever\r\n"
		 "Content-Length: %d\r\n"
		 "X-Test:   hello world  \r\n"
		 "Content-Type: text/plain\r\n"
		 "X-Fold: a\r\n"
		 "  b\r\n"
		 "\r\n",
		 status, n);
	send_all(fd, hdr, strlen(hdr));
	if (strcmp(method, "HEAD") != 0)
		send_all(fd, out, (size_t)n);
}

static void respond_big(int fd, int chunked)
{
	char chunk[1024];
	char hdr[128];
	int i;

	memset(chunk, 'z', sizeof(chunk));
	if (!chunked) {
		snprintf(hdr, sizeof(hdr),
			 "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", BIG_LEN);
		send_all(fd, hdr, strlen(hdr));
		for (i = 0; i < BIG_LEN / 1024; i++)
			send_all(fd, chunk, sizeof(chunk));
		return;
	}
	snprintf(hdr, sizeof(hdr),
		 "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
	send_all(fd, hdr, strlen(hdr));
	for (i = 0; i < BIG_LEN / 1024; i++) {
		send_all(fd, "400\r\n", 5);
		send_all(fd, chunk, sizeof(chunk));
		send_all(fd, "\r\n", 2);
	}
	send_all(fd, "0\r\n\r\n", 5);
}

/* One connection: requests in a loop until EOF (keep-alive). */
static void *conn_main(void *arg)
{
	struct conn *cn = arg;
	struct server *s = cn->srv;
	int fd = cn->fd;
	char *buf;
	size_t len = 0, size = 2u << 20, need, head_len;
	char *end;
	ssize_t n;
	struct linger lg = { 1, 0 };
	static const char mid[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc";
	static const char cont[] =
		"HTTP/1.1 100 Continue\r\nX-Early: 1\r\n\r\n"
		"HTTP/1.1 404 Not Found\r\nX-Late: 2\r\nContent-Length: 2\r\n\r\nno";

	free(cn);
	buf = malloc(size + 1);
	if (!buf)
		goto out;
	for (;;) {
		/* the head */
		while (!(buf[len] = '\0', end = strstr(buf, "\r\n\r\n"))) {
			if (len == size)
				goto out;
			n = recv_some(s, fd, buf + len, size - len);
			if (n <= 0)
				goto out;
			len += (size_t)n;
		}
		head_len = (size_t)(end + 4 - buf);
		need = head_content_length(buf);
		if (need > size - head_len)
			goto out;
		while (len < head_len + need) {
			n = recv_some(s, fd, buf + len, size - len);
			if (n <= 0)
				goto out;
			len += (size_t)n;
		}
		pthread_mutex_lock(&s->lock);
		snprintf(s->last_head, sizeof(s->last_head), "%.*s",
			 (int)head_len, buf);
		s->last_body_len = need < sizeof(s->last_body) ? need : 0;
		memcpy(s->last_body, buf + head_len, s->last_body_len);
		pthread_mutex_unlock(&s->lock);
		atomic_fetch_add(&s->requests, 1);

		switch (atomic_load(&s->mode)) {
		case M_NORMAL:
			respond_normal(fd, buf, buf + head_len, need);
			break;
		case M_SILENT:
			while (!atomic_load(&s->stop))
				usleep(20000);
			goto out;
		case M_BIG_CL:
			respond_big(fd, 0);
			break;
		case M_BIG_CHUNKED:
			respond_big(fd, 1);
			break;
		case M_CLOSE_MID:
			send_all(fd, mid, sizeof(mid) - 1);
			goto out;
		case M_RESET:
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			goto out;
		case M_CONTINUE:
			send_all(fd, cont, sizeof(cont) - 1);
			break;
		}
		/* keep what came after this request */
		memmove(buf, buf + head_len + need, len - head_len - need);
		len -= head_len + need;
	}
out:
	free(buf);
	close(fd);
	return NULL;
}

static void *acceptor_main(void *arg)
{
	struct server *s = arg;
	struct pollfd pfd = { .fd = s->lfd, .events = POLLIN };
	struct conn *cn;
	int fd;

	while (!atomic_load(&s->stop)) {
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		fd = accept(s->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		atomic_fetch_add(&s->accepts, 1);
		cn = malloc(sizeof(*cn));
		pthread_mutex_lock(&s->lock);
		if (!cn || s->nconns == MAX_CONNS) {
			pthread_mutex_unlock(&s->lock);
			free(cn);
			close(fd);
			continue;
		}
		cn->srv = s;
		cn->fd = fd;
		if (pthread_create(&s->conns[s->nconns], NULL, conn_main, cn)) {
			free(cn);
			close(fd);
		} else {
			s->nconns++;
		}
		pthread_mutex_unlock(&s->lock);
	}
	return NULL;
}

static struct server *server_start(enum mode mode)
{
	struct server *s = calloc(1, sizeof(*s));
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	int one = 1;

	assert_non_null(s);
	pthread_mutex_init(&s->lock, NULL);
	atomic_store(&s->mode, mode);
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s->lfd >= 0);
	setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = 0;
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s->lfd, 16), 0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &alen), 0);
	s->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&s->acceptor, NULL, acceptor_main, s), 0);
	return s;
}

static void server_stop(struct server *s)
{
	int i;

	atomic_store(&s->stop, 1);
	pthread_join(s->acceptor, NULL);
	/* no new connections now: nconns is stable */
	for (i = 0; i < s->nconns; i++)
		pthread_join(s->conns[i], NULL);
	close(s->lfd);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static void last_head(struct server *s, char *out, size_t size)
{
	pthread_mutex_lock(&s->lock);
	snprintf(out, size, "%s", s->last_head);
	pthread_mutex_unlock(&s->lock);
}

static int head_has(const char *head, const char *line)
{
	return strcasestr(head, line) != NULL;
}

static struct http_client *client(const struct http_opts *o)
{
	struct http_client *c = NULL;

	assert_int_equal(http_client_new(&c, o), 0);
	assert_non_null(c);
	return c;
}

/* A request with its own URL buffer. */
struct rq {
	char url[256];
	struct http_request r;
};

static void rq_init(struct rq *q, const char *method, int port, const char *path)
{
	memset(q, 0, sizeof(*q));
	snprintf(q->url, sizeof(q->url), "http://127.0.0.1:%d%s", port, path);
	q->r.method = method;
	q->r.url = q->url;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void test_basic_and_reuse(void **state)
{
	struct server *s = server_start(M_NORMAL);
	struct http_client *c = client(NULL);
	struct http_response resp;
	struct http_header h[] = { { "X-Amz-Target", "DynamoDB_20120810.GetItem" } };
	struct rq q;
	struct dbuf why;
	const char *v;
	size_t len;
	(void)state;

	dbuf_init(&why, DBUF_CAP_SMALL);
	http_response_init(&resp);
	rq_init(&q, "GET", s->port, "/one");
	q.r.headers = h;
	q.r.nheaders = 1;
	assert_int_equal(http_perform(c, &q.r, &resp, &why), 0);
	assert_int_equal(resp.status, 200);
	assert_string_equal(dbuf_str(&resp.body), "GET /one");

	/* headers: status line dropped, any case, trimmed, folded */
	assert_null(strstr(dbuf_str(&resp.headers), "HTTP/1.1"));
	v = http_response_header(&resp, "x-test", &len);
	assert_non_null(v);
	assert_int_equal(len, 11);
	assert_memory_equal(v, "hello world", 11);
	v = http_response_header(&resp, "CONTENT-TYPE", &len);
	assert_non_null(v);
	assert_int_equal(len, 10);
	assert_memory_equal(v, "text/plain", 10);
	v = http_response_header(&resp, "X-Fold", &len);
	assert_non_null(v);
	assert_int_equal(len, 3);
	assert_memory_equal(v, "a b", 3);
	assert_null(http_response_header(&resp, "X-Tes", &len));
	assert_null(http_response_header(&resp, "X-Missing", NULL));

	/* the second request rides the same connection; the response is
	 * reset, not appended to */
	rq_init(&q, "POST", s->port, "/status/404");
	q.r.body = "payload";
	q.r.body_len = 7;
	assert_int_equal(http_perform(c, &q.r, &resp, &why), 0);
	assert_int_equal(resp.status, 404);
	assert_string_equal(dbuf_str(&resp.body), "POST /status/404:payload");
	assert_int_equal(atomic_load(&s->accepts), 1);
	assert_int_equal(atomic_load(&s->requests), 2);

	http_response_free(&resp);
	dbuf_free(&why);
	http_client_free(c);
	server_stop(s);
}

static void test_methods(void **state)
{
	static const char *const methods[] = {
		"GET", "PUT", "PATCH", "DELETE", "OPTIONS", "POST",
	};
	struct server *s = server_start(M_NORMAL);
	struct http_client *c = client(NULL);
	struct http_response resp;
	struct rq q;
	char head[16384], want[64];
	size_t i, len;
	(void)state;

	http_response_init(&resp);
	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		rq_init(&q, methods[i], s->port, "/m");
		assert_int_equal(http_perform(c, &q.r, &resp, NULL), 0);
		assert_int_equal(resp.status, 200);
		snprintf(want, sizeof(want), "%s /m", methods[i]);
		assert_string_equal(dbuf_str(&resp.body), want);
		last_head(s, head, sizeof(head));
		snprintf(want, sizeof(want), "%s /m HTTP/1.1\r\n", methods[i]);
		assert_true(strncmp(head, want, strlen(want)) == 0);
		/* a body-carrying method says so even when empty */
		if (!strcmp(methods[i], "PUT") || !strcmp(methods[i], "PATCH") ||
		    !strcmp(methods[i], "POST"))
			assert_true(head_has(head, "\r\nContent-Length: 0\r\n"));
		else
			assert_false(head_has(head, "\r\nContent-Length:"));
	}

	/* DELETE with a body */
	rq_init(&q, "DELETE", s->port, "/d");
	q.r.body = "xy";
	q.r.body_len = 2;
	assert_int_equal(http_perform(c, &q.r, &resp, NULL), 0);
	assert_string_equal(dbuf_str(&resp.body), "DELETE /d:xy");

	/* HEAD: headers, no body */
	rq_init(&q, "HEAD", s->port, "/h");
	assert_int_equal(http_perform(c, &q.r, &resp, NULL), 0);
	assert_int_equal(resp.status, 200);
	assert_int_equal(dbuf_len(&resp.body), 0);
	assert_non_null(http_response_header(&resp, "Content-Length", &len));
	assert_int_equal(atomic_load(&s->accepts), 1);

	/* a method we do not speak, a header that would split the request */
	rq_init(&q, "BREW", s->port, "/");
	assert_int_equal(http_perform(c, &q.r, &resp, NULL), -EINVAL);
	{
		struct http_header bad[] = { { "X-A", "1\r\nX-Injected: 1" } };

		rq_init(&q, "GET", s->port, "/");
		q.r.headers = bad;
		q.r.nheaders = 1;
		assert_int_equal(http_perform(c, &q.r, &resp, NULL), -EINVAL);
	}

	http_response_free(&resp);
	http_client_free(c);
	server_stop(s);
}

static void test_exact_headers(void **state)
{
	struct server *s = server_start(M_NORMAL);
	struct http_client *c = client(NULL);
	struct http_response resp;
	struct http_header h1[] = {
		{ "X-Amz-Target", "DynamoDB_20120810.PutItem" },
		{ "X-Empty", "" },
	};
	struct http_header h2[] = {
		{ "Content-Type", "application/x-amz-json-1.0" },
	};
	struct rq q;
	char head[16384], *big;
	(void)state;

	http_response_init(&resp);
	rq_init(&q, "POST", s->port, "/p");
	q.r.headers = h1;
	q.r.nheaders = 2;
	q.r.body = "{\"a\":1}";
	q.r.body_len = 7;
	assert_int_equal(http_perform(c, &q.r, &resp, NULL), 0);
	last_head(s, head, sizeof(head));
	assert_true(head_has(head, "\r\nX-Amz-Target: DynamoDB_20120810.PutItem\r\n"));
	assert_true(head_has(head, "\r\nX-Empty:"));
	assert_true(head_has(head, "\r\nContent-Length: 7\r\n"));
	/* nothing curl would add on its own */
	assert_false(head_has(head, "Content-Type"));
	assert_false(head_has(head, "Expect"));
	assert_false(head_has(head, "Accept"));
	assert_false(head_has(head, "User-Agent"));

	/* the caller's Content-Type goes out once, as given */
	q.r.headers = h2;
	q.r.nheaders = 1;
	assert_int_equal(http_perform(c, &q.r, &resp, NULL), 0);
	last_head(s, head, sizeof(head));
	assert_true(head_has(head, "\r\nContent-Type: application/x-amz-json-1.0\r\n"));
	assert_ptr_equal(strcasestr(strcasestr(head, "Content-Type") + 1, "Content-Type"), NULL);

	/* a body big enough for curl's 100-continue dance: none */
	big = malloc(1024 * 1024 + 10);
	assert_non_null(big);
	memset(big, 'b', 1024 * 1024 + 10);
	q.r.headers = NULL;
	q.r.nheaders = 0;
	q.r.body = big;
	q.r.body_len = 1024 * 1024 + 10;
	assert_int_equal(http_perform(c, &q.r, &resp, NULL), 0);
	last_head(s, head, sizeof(head));
	assert_false(head_has(head, "Expect"));
	assert_true(head_has(head, "\r\nContent-Length: 1048586\r\n"));
	free(big);

	http_response_free(&resp);
	http_client_free(c);
	server_stop(s);
}

static void test_continue_resets_headers(void **state)
{
	struct server *s = server_start(M_CONTINUE);
	struct http_client *c = client(NULL);
	struct http_response resp;
	struct rq q;
	size_t len;
	(void)state;

	http_response_init(&resp);
	rq_init(&q, "GET", s->port, "/");
	assert_int_equal(http_perform(c, &q.r, &resp, NULL), 0);
	assert_int_equal(resp.status, 404);
	assert_string_equal(dbuf_str(&resp.body), "no");
	assert_null(http_response_header(&resp, "X-Early", &len));
	assert_non_null(http_response_header(&resp, "X-Late", &len));
	assert_int_equal(len, 1);
	http_response_free(&resp);
	http_client_free(c);
	server_stop(s);
}

struct worker {
	struct http_client *c;
	int port;
	int id;
	int ok;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct http_response resp;
	struct rq q;
	char path[32], want[64];
	int i;

	http_response_init(&resp);
	for (i = 0; i < 25; i++) {
		snprintf(path, sizeof(path), "/t%d/%d", w->id, i);
		rq_init(&q, "GET", w->port, path);
		if (http_perform(w->c, &q.r, &resp, NULL) || resp.status != 200)
			break;
		snprintf(want, sizeof(want), "GET %s", path);
		if (strcmp(dbuf_str(&resp.body), want) != 0)
			break;
		w->ok++;
	}
	http_response_free(&resp);
	return NULL;
}

static void test_threads(void **state)
{
	struct server *s = server_start(M_NORMAL);
	struct http_client *c = client(NULL);
	struct worker w[2];
	pthread_t t[2];
	int i;
	(void)state;

	for (i = 0; i < 2; i++) {
		w[i].c = c;
		w[i].port = s->port;
		w[i].id = i;
		w[i].ok = 0;
		assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	}
	for (i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].ok, 25);
	}
	/* two pooled handles at most, each keeping its connection */
	assert_true(atomic_load(&s->accepts) <= 2);
	assert_int_equal(atomic_load(&s->requests), 50);
	http_client_free(c);
	server_stop(s);
}

static void test_refused(void **state)
{
	struct http_client *c = client(NULL);
	struct http_response resp;
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	struct dbuf why;
	struct rq q;
	int fd, port;
	(void)state;

	/* a port that was just free and now has no listener */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	port = ntohs(a.sin_port);
	close(fd);

	dbuf_init(&why, DBUF_CAP_SMALL);
	http_response_init(&resp);
	rq_init(&q, "GET", port, "/");
	assert_int_equal(http_perform(c, &q.r, &resp, &why), -ECONNREFUSED);
	assert_int_equal(resp.status, 0);
	assert_true(dbuf_len(&why) > 0);
	http_response_free(&resp);
	dbuf_free(&why);
	http_client_free(c);
}

static void test_timeout(void **state)
{
	struct server *s = server_start(M_SILENT);
	struct http_opts o = { .timeout_ms = 300 };
	struct http_client *c = client(&o);
	struct http_response resp;
	struct dbuf why;
	struct rq q;
	double t0, ms;
	(void)state;

	dbuf_init(&why, DBUF_CAP_SMALL);
	http_response_init(&resp);
	rq_init(&q, "GET", s->port, "/");
	t0 = now_ms();
	assert_int_equal(http_perform(c, &q.r, &resp, &why), -ETIMEDOUT);
	ms = now_ms() - t0;
	assert_true(ms >= 280);
	assert_true(ms < 5000);
	assert_true(dbuf_len(&why) > 0);
	http_response_free(&resp);
	dbuf_free(&why);
	http_client_free(c);
	server_stop(s);
}

static void test_body_cap(void **state)
{
	struct server *s = server_start(M_BIG_CL);
	struct http_opts small = { .max_body = 1000 };
	struct http_opts exact = { .max_body = BIG_LEN };
	struct http_client *c = client(&small);
	struct http_client *c2 = client(&exact);
	struct http_response resp;
	struct dbuf why;
	struct rq q;
	(void)state;

	dbuf_init(&why, DBUF_CAP_SMALL);
	http_response_init(&resp);
	rq_init(&q, "GET", s->port, "/");
	/* Content-Length says too much */
	assert_int_equal(http_perform(c, &q.r, &resp, &why), -E2BIG);
	/* chunked: found out while reading */
	atomic_store(&s->mode, M_BIG_CHUNKED);
	assert_int_equal(http_perform(c, &q.r, &resp, &why), -E2BIG);
	assert_true(dbuf_len(&resp.body) <= 1000);
	assert_non_null(strstr(dbuf_str(&why), "1000"));
	/* exactly at the cap is fine, either way */
	assert_int_equal(http_perform(c2, &q.r, &resp, NULL), 0);
	assert_int_equal(dbuf_len(&resp.body), BIG_LEN);
	atomic_store(&s->mode, M_BIG_CL);
	assert_int_equal(http_perform(c2, &q.r, &resp, NULL), 0);
	assert_int_equal(dbuf_len(&resp.body), BIG_LEN);

	http_response_free(&resp);
	dbuf_free(&why);
	http_client_free(c);
	http_client_free(c2);
	server_stop(s);
}

static void test_reset(void **state)
{
	struct server *s = server_start(M_CLOSE_MID);
	struct http_client *c = client(NULL);
	struct http_response resp;
	struct rq q;
	(void)state;

	http_response_init(&resp);
	rq_init(&q, "GET", s->port, "/");
	/* the body stops short */
	assert_int_equal(http_perform(c, &q.r, &resp, NULL), -ECONNRESET);
	/* no answer at all, the connection is reset */
	atomic_store(&s->mode, M_RESET);
	assert_int_equal(http_perform(c, &q.r, &resp, NULL), -ECONNRESET);
	/* and the client still works afterwards */
	atomic_store(&s->mode, M_NORMAL);
	assert_int_equal(http_perform(c, &q.r, &resp, NULL), 0);
	assert_int_equal(resp.status, 200);
	http_response_free(&resp);
	http_client_free(c);
	server_stop(s);
}

static void test_connect_to(void **state)
{
	struct server *s = server_start(M_NORMAL);
	struct http_opts o = { 0 };
	struct http_client *c;
	struct http_response resp;
	struct http_request r = { 0 };
	char target[64], head[16384];
	(void)state;

	snprintf(target, sizeof(target), "127.0.0.1:%d", s->port);
	o.connect_to = target;
	c = client(&o);
	target[0] = '\0'; /* the client keeps its own copy */
	http_response_init(&resp);
	r.method = "GET";
	r.url = "http://example.invalid:80/ct";
	assert_int_equal(http_perform(c, &r, &resp, NULL), 0);
	assert_int_equal(resp.status, 200);
	assert_string_equal(dbuf_str(&resp.body), "GET /ct");
	last_head(s, head, sizeof(head));
	assert_true(head_has(head, "\r\nHost: example.invalid\r\n"));
	http_response_free(&resp);
	http_client_free(c);
	server_stop(s);
}

struct fake {
	int calls;
	const char *url;
};

static int fake_transport(void *ctx, const struct http_request *req,
			  struct http_response *resp)
{
	struct fake *f = ctx;

	f->calls++;
	f->url = req->url;
	if (strcmp(req->method, "PUT") == 0)
		return -ECONNRESET;
	resp->status = 418;
	dbuf_adds(&resp->headers, "X-Fake: yes\r\n");
	dbuf_adds(&resp->body, "teapot");
	return 0;
}

static void test_transport(void **state)
{
	struct http_client *c = client(NULL);
	struct http_response resp;
	struct http_request r = { 0 };
	struct fake f = { 0 };
	size_t len;
	(void)state;

	http_client_set_transport(c, fake_transport, &f);
	http_response_init(&resp);
	r.method = "GET";
	r.url = "https://dynamodb.invalid/";
	assert_int_equal(http_perform(c, &r, &resp, NULL), 0);
	assert_int_equal(resp.status, 418);
	assert_string_equal(dbuf_str(&resp.body), "teapot");
	assert_non_null(http_response_header(&resp, "x-fake", &len));
	assert_int_equal(len, 3);
	r.method = "PUT";
	assert_int_equal(http_perform(c, &r, &resp, NULL), -ECONNRESET);
	assert_int_equal(f.calls, 2);
	assert_string_equal(f.url, "https://dynamodb.invalid/");
	http_response_free(&resp);
	http_client_free(c);
}

int main(void)
{
	static const char *const proxy_vars[] = {
		"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
		"all_proxy", "ALL_PROXY",
	};
	size_t i;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic_and_reuse),
		cmocka_unit_test(test_methods),
		cmocka_unit_test(test_exact_headers),
		cmocka_unit_test(test_continue_resets_headers),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_body_cap),
		cmocka_unit_test(test_reset),
		cmocka_unit_test(test_connect_to),
		cmocka_unit_test(test_transport),
	};

	/* libcurl honours these; the tests talk to 127.0.0.1 directly */
	for (i = 0; i < sizeof(proxy_vars) / sizeof(proxy_vars[0]); i++)
		unsetenv(proxy_vars[i]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
