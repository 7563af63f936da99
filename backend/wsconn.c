/* wsconn: one WebSocket client connection on libwebsockets (lws).
 *
 * Each connection has its own lws_context and a service thread that is
 * the only one to touch lws objects; the other threads talk to it through
 * the state below, under c->lock, and wake it with lws_cancel_service(),
 * the one lws call documented as safe from any thread.  See
 * docs/websocket.md for why one context per connection. */
#include "backend/wsconn.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libwebsockets.h>

#include "backend/sigv4.h"

#define WSCONN_DEFAULT_TIMEOUT_MS 10000L
/* The presigned URL is used at once; a few minutes absorb clock skew. */
#define WSCONN_PRESIGN_EXPIRES 300u
/* API Gateway's own limit is 128 KiB a message; this one only stops a
 * broken peer from growing one message without end. */
#define WSCONN_MSG_MAX (4u << 20)
/* Above this many unread bytes the socket is no longer read, so a reader
 * that falls behind holds the server back instead of our memory. */
#define WSCONN_RX_HIGH (4u << 20)
/* One message may arrive in full after the high mark was passed, and lws
 * may hand over the rest of a socket read before the pause bites. */
#define WSCONN_RX_CAP (WSCONN_RX_HIGH + WSCONN_MSG_MAX + (1u << 20))
/* A drained receive buffer bigger than this goes back to malloc. */
#define WSCONN_RX_KEEP (64u * 1024)
/* A send waits this long for its turn on the socket. */
#define WSCONN_SEND_TIMEOUT_MS 30000L
/* wsconn_close waits this long for the peer to answer the close frame. */
#define WSCONN_CLOSE_WAIT_MS 2000L
#define WSCONN_TEXT_CAP 16384u

enum ws_state {
	WS_CONNECTING,
	WS_OPEN,
	WS_CLOSED,
};

/* A message waiting for the service thread. */
struct txmsg {
	struct txmsg *next;
	uint64_t seq;
	unsigned char *buf; /* LWS_PRE bytes of room for lws, then the text */
	size_t len;         /* of the text */
};

struct wsconn {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* broadcast on every change below */
	bool lock_ok, cond_ok;

	struct lws_context *ctx;
	pthread_t thread;
	bool thread_started;
	bool stop; /* the service thread leaves its loop */

	/* Everything from here on is under lock. */
	enum ws_state state;
	struct lws *wsi; /* the open connection; NULL before and after */
	int open_rc;     /* why the handshake failed */
	struct dbuf open_why;

	bool closing;     /* wsconn_close wants a close frame sent */
	bool peer_closed; /* the peer's close frame arrived */
	int rx_err;       /* what recv says after the data, instead of EOF */

	struct txmsg *tx_head, *tx_tail;
	uint64_t tx_seq;  /* last one queued */
	uint64_t tx_done; /* last one written */

	struct dbuf rx_ready; /* whole messages, each followed by '\n' */
	size_t rx_off;        /* what recv already returned of rx_ready */
	struct dbuf rx_part;  /* the message still arriving */
	bool rx_pause;        /* the service thread should turn reads off */
	bool rx_paused;       /* socket reads are off */
	bool rx_resume;       /* the service thread should turn them on */

	/* Read by lws during the connect; kept for the connection's life. */
	bool tls;
	int port;
	struct dbuf address;  /* where to connect */
	struct dbuf host_hdr; /* Host header, TLS name: the URL's */
	struct dbuf path;     /* path?query as sent; may hold a token */
	struct dbuf target;   /* scheme://host/path, for messages */
};

static pthread_once_t log_once = PTHREAD_ONCE_INIT;

/* lws logs to stderr by default, and at its info level it would print
 * request lines that carry a presigned query; nothing of it is kept. */
static void log_drop(int level, const char *line)
{
	(void)level;
	(void)line;
}

static void log_quiet(void)
{
	lws_set_log_level(0, log_drop);
}

static void deadline_after(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static void txmsg_free(struct txmsg *m)
{
	if (!m)
		return;
	free(m->buf);
	free(m);
}

static void tx_drop_all(struct wsconn *c)
{
	struct txmsg *m, *next;

	for (m = c->tx_head; m; m = next) {
		next = m->next;
		txmsg_free(m);
	}
	c->tx_head = c->tx_tail = NULL;
}

/* --- the service thread's side (lws callbacks) --------------------------- */

/* Under lock.  The connection is gone: wake everyone, nothing more will
 * be sent or received. */
static void conn_gone(struct wsconn *c)
{
	if (c->state == WS_OPEN && !c->peer_closed && !c->closing &&
	    !c->rx_err)
		c->rx_err = -ECONNRESET;
	c->state = WS_CLOSED;
	c->wsi = NULL;
	tx_drop_all(c);
	dbuf_free(&c->rx_part);
	pthread_cond_broadcast(&c->cond);
}

/* Under lock.  Keep lws's words only as printable ASCII: they end up in a
 * log line. */
static void add_clean(struct dbuf *b, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len && i < 200 && s[i]; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (dbuf_addc(b, ch >= 0x20 && ch < 0x7f ? (char)ch : ' '))
			return;
	}
}

/* Under lock: the connect or the handshake failed. */
static void conn_failed(struct wsconn *c, struct lws *wsi, const char *in,
			size_t len)
{
	unsigned status = wsi ? lws_http_client_http_response(wsi) : 0;
	const char *text = in ? in : "";
	size_t tlen = in ? strnlen(in, len ? len : 200) : 0;

	/* lws 4.1 names a 401 but does not always keep the status. */
	if (!status && strstr(text, "unauthorized"))
		status = 401;
	dbuf_reset(&c->open_why);
	if (status == 401 || status == 403) {
		c->open_rc = -EACCES;
		dbuf_addf_opt(&c->open_why, "%s: the server refused the "
			      "WebSocket connection with HTTP %u (check the "
			      "credentials and the route's authorization)",
			      dbuf_str(&c->target), status);
	} else if (status == 404) {
		c->open_rc = -ENOENT;
		dbuf_addf_opt(&c->open_why, "%s: no such WebSocket API or "
			      "stage (HTTP 404)", dbuf_str(&c->target));
	} else if (status) {
		c->open_rc = -EIO;
		dbuf_addf_opt(&c->open_why, "%s: the server answered the "
			      "WebSocket upgrade with HTTP %u",
			      dbuf_str(&c->target), status);
	} else {
		c->open_rc = strstr(text, "timed out") || strstr(text, "timeout")
			     ? -ETIMEDOUT : -EIO;
		dbuf_addf_opt(&c->open_why, "%s: WebSocket connect failed: ",
			      dbuf_str(&c->target));
		if (tlen)
			add_clean(&c->open_why, text, tlen);
		else
			dbuf_addf_opt(&c->open_why, "no reason given");
	}
	c->state = WS_CLOSED;
	c->wsi = NULL;
	pthread_cond_broadcast(&c->cond);
}

/* Under lock: a piece of a received message.  0, or -1 to have lws close
 * the connection. */
static int on_receive(struct wsconn *c, struct lws *wsi, const void *in,
		      size_t len)
{
	int rc = 0;

	if (c->state != WS_OPEN)
		goto out;
	if (len > WSCONN_MSG_MAX - dbuf_len(&c->rx_part)) {
		/* Too big to ever hand over whole: end the connection the
		 * way RFC 6455 says, and tell the reader after the data. */
		rc = -EMSGSIZE;
		goto out;
	}
	rc = dbuf_add(&c->rx_part, in, len);
	if (rc || !lws_is_final_fragment(wsi))
		goto out;
	rc = dbuf_add(&c->rx_ready, dbuf_str(&c->rx_part),
		      dbuf_len(&c->rx_part));
	if (!rc)
		rc = dbuf_addc(&c->rx_ready, '\n');
	if (rc)
		goto out;
	dbuf_reset(&c->rx_part);
	if (!c->rx_paused && !c->rx_pause &&
	    dbuf_len(&c->rx_ready) > WSCONN_RX_HIGH) {
		/* Paused from the next loop turn, not from here: lws 4.1
		 * spins at full CPU when a TLS connection is paused with
		 * decrypted data left in the current read. */
		c->rx_pause = true;
		lws_cancel_service(lws_get_context(wsi));
	}
	pthread_cond_broadcast(&c->cond);
out:
	if (rc) {
		/* Too big, out of memory, or lws read on past the pause:
		 * the stream can no longer be handed over whole. */
		c->rx_err = rc == -E2BIG ? -ENOBUFS : rc;
		lws_close_reason(wsi, rc == -EMSGSIZE ?
				 LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE :
				 LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
				 NULL, 0);
		rc = -1;
	}
	return rc;
}

/* Under lock: the socket takes data; one message per call, as lws wants
 * one write per writable callback.  0, or -1 to have lws close. */
static int on_writeable(struct wsconn *c, struct lws *wsi)
{
	struct txmsg *m;
	int rc = 0;

	if (c->closing) {
		lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
		rc = -1;
		goto out;
	}
	m = c->tx_head;
	if (!m)
		goto out;
	c->tx_head = m->next;
	if (!c->tx_head)
		c->tx_tail = NULL;
	if (lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT) < 0)
		rc = -1;
	c->tx_done = m->seq;
	txmsg_free(m);
	pthread_cond_broadcast(&c->cond);
	if (!rc && c->tx_head)
		lws_callback_on_writable(wsi);
out:
	return rc;
}

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason,
		       void *user, void *in, size_t len)
{
	struct wsconn *c;
	int rc = 0;

	(void)user;
	/* Context-wide events come before the context is ours, or with no
	 * wsi; nothing of ours to do for them. */
	c = wsi ? lws_context_user(lws_get_context(wsi)) : NULL;
	if (!c)
		goto out;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		pthread_mutex_lock(&c->lock);
		c->state = WS_OPEN;
		c->wsi = wsi;
		if (c->tx_head || c->closing)
			lws_callback_on_writable(wsi);
		pthread_cond_broadcast(&c->cond);
		pthread_mutex_unlock(&c->lock);
		break;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		pthread_mutex_lock(&c->lock);
		if (c->state == WS_CONNECTING)
			conn_failed(c, wsi, in, len);
		else if (wsi == c->wsi)
			conn_gone(c);
		pthread_mutex_unlock(&c->lock);
		break;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		pthread_mutex_lock(&c->lock);
		if (wsi == c->wsi)
			rc = on_receive(c, wsi, in, len);
		pthread_mutex_unlock(&c->lock);
		break;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		pthread_mutex_lock(&c->lock);
		if (wsi == c->wsi)
			rc = on_writeable(c, wsi);
		pthread_mutex_unlock(&c->lock);
		break;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		pthread_mutex_lock(&c->lock);
		if (wsi == c->wsi)
			c->peer_closed = true;
		pthread_mutex_unlock(&c->lock);
		break;
	case LWS_CALLBACK_CLIENT_CLOSED:
	case LWS_CALLBACK_WSI_DESTROY:
		pthread_mutex_lock(&c->lock);
		if (wsi == c->wsi)
			conn_gone(c);
		pthread_mutex_unlock(&c->lock);
		break;
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		/* Another thread queued a message, wants to close, or read
		 * enough to resume; wsi here is not the connection's. */
		pthread_mutex_lock(&c->lock);
		if (c->wsi) {
			if (c->tx_head || c->closing)
				lws_callback_on_writable(c->wsi);
			if (c->rx_pause) {
				c->rx_pause = false;
				c->rx_paused = true;
				lws_rx_flow_control(c->wsi, 0);
			}
			if (c->rx_resume) {
				c->rx_resume = false;
				c->rx_paused = false;
				lws_rx_flow_control(c->wsi, 1);
			}
		}
		pthread_mutex_unlock(&c->lock);
		break;
	default:
		break;
	}
out:
	return rc;
}

static const struct lws_protocols ws_protocols[] = {
	{ "dynfs-ws", ws_callback, 0, 16384, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

static void *service_main(void *arg)
{
	struct wsconn *c = arg;
	bool stop;

	for (;;) {
		pthread_mutex_lock(&c->lock);
		stop = c->stop;
		pthread_mutex_unlock(&c->lock);
		if (stop || lws_service(c->ctx, 0) < 0)
			break;
	}
	pthread_mutex_lock(&c->lock);
	if (c->state != WS_CLOSED)
		conn_gone(c);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* --- set-up ---------------------------------------------------------------- */

/* "[v6]:port" or "host:port" into host (brackets dropped) and port. */
static int split_host_port(const char *s, size_t len, struct dbuf *host,
			   int *port, bool need_port)
{
	const char *h = s, *colon = NULL, *p;
	char digits[8], *end;
	size_t hlen, dlen;
	long v;
	int rc = -EINVAL;

	if (len && s[0] == '[') {
		const char *rb = memchr(s, ']', len);

		if (!rb || rb == s + 1)
			goto out;
		h = s + 1;
		hlen = (size_t)(rb - h);
		if (rb + 1 < s + len) {
			if (rb[1] != ':')
				goto out;
			colon = rb + 1;
		}
	} else {
		colon = memchr(s, ':', len);
		hlen = colon ? (size_t)(colon - s) : len;
		/* An IPv6 address must come in brackets. */
		if (colon && memchr(colon + 1, ':', len - hlen - 1))
			goto out;
	}
	if (!hlen)
		goto out;
	for (p = h; p < h + hlen; p++)
		if ((unsigned char)*p <= ' ' || *p == '@' || *p == '/' ||
		    (unsigned char)*p >= 0x7f)
			goto out;
	if (colon) {
		dlen = (size_t)(s + len - colon - 1);
		if (!dlen || dlen >= sizeof(digits))
			goto out;
		memcpy(digits, colon + 1, dlen);
		digits[dlen] = '\0';
		if (digits[0] < '0' || digits[0] > '9')
			goto out;
		errno = 0;
		v = strtol(digits, &end, 10);
		if (errno || *end || v < 1 || v > 65535)
			goto out;
		*port = (int)v;
	} else if (need_port) {
		goto out;
	}
	rc = dbuf_add(host, h, hlen);
out:
	return rc;
}

/* Fills tls, port, address, host_hdr, target, and (unsigned) path and
 * query for the signer. */
static int parse_target(struct wsconn *c, const struct wsconn_opts *o,
			struct dbuf *path, struct dbuf *query, struct dbuf *why)
{
	const char *url = o->url, *auth, *rest, *q, *end;
	struct dbuf host;
	size_t alen;
	int def_port, rc;

	dbuf_init(&host, WSCONN_TEXT_CAP);
	if (!strncasecmp(url, "wss://", 6)) {
		c->tls = true;
		def_port = 443;
		auth = url + 6;
	} else if (!strncasecmp(url, "ws://", 5)) {
		c->tls = false;
		def_port = 80;
		auth = url + 5;
	} else {
		rc = -EINVAL;
		dbuf_addf_opt(why, "a WebSocket URL starts with wss:// or ws://");
		goto out;
	}
	alen = strcspn(auth, "/?#");
	c->port = def_port;
	rc = split_host_port(auth, alen, &host, &c->port, false);
	if (rc) {
		dbuf_addf_opt(why, "the WebSocket URL has no valid host[:port]");
		goto out;
	}
	rest = auth + alen;
	/* The fragment is never sent. */
	end = rest + strcspn(rest, "#");
	q = memchr(rest, '?', (size_t)(end - rest));
	if (q == rest || rest == end)
		rc = dbuf_addc(path, '/');
	else
		rc = dbuf_add(path, rest, (size_t)((q ? q : end) - rest));
	if (!rc && q && q + 1 < end)
		rc = dbuf_add(query, q + 1, (size_t)(end - q - 1));
	if (!rc && (strpbrk(dbuf_str(path), " \t\r\n") ||
		    strpbrk(dbuf_str(query), " \t\r\n")))
		rc = -EINVAL;
	if (rc) {
		dbuf_addf_opt(why, "the WebSocket URL's path is not usable");
		goto out;
	}

	/* The Host header names the port only when it is not the default,
	 * as browsers and the AWS SDKs do; the signature covers it as sent. */
	if (memchr(dbuf_str(&host), ':', dbuf_len(&host)))
		rc = dbuf_addf(&c->host_hdr, "[%s]", dbuf_str(&host));
	else
		rc = dbuf_adds(&c->host_hdr, dbuf_str(&host));
	if (!rc && c->port != def_port)
		rc = dbuf_addf(&c->host_hdr, ":%d", c->port);
	if (!rc)
		rc = dbuf_addf(&c->target, "%s://%s%s", c->tls ? "wss" : "ws",
			       dbuf_str(&c->host_hdr), dbuf_str(path));
	if (rc)
		goto out;

	if (o->connect_to && *o->connect_to) {
		rc = split_host_port(o->connect_to, strlen(o->connect_to),
				     &c->address, &c->port, true);
		if (rc) {
			dbuf_addf_opt(why, "connect_to must be HOST:PORT");
			goto out;
		}
	} else {
		rc = dbuf_adds(&c->address, dbuf_str(&host));
	}
out:
	dbuf_free(&host);
	return rc;
}

/* Builds c->path: the path and query, presigned when asked. */
static int build_path(struct wsconn *c, const struct wsconn_opts *o,
		      const struct dbuf *path, const struct dbuf *query,
		      struct dbuf *why)
{
	struct sigv4_signer *signer = NULL;
	struct sigv4_header h;
	struct sigv4_request req;
	struct sigv4_params p;
	struct sigv4_out sig;
	struct creds cr;
	bool sig_used = false;
	int rc;

	memset(&cr, 0, sizeof(cr));
	if (!o->presign) {
		rc = dbuf_adds(&c->path, dbuf_str(path));
		if (!rc && dbuf_len(query))
			rc = dbuf_addf(&c->path, "?%s", dbuf_str(query));
		goto out;
	}
	if (!o->creds || !o->region || !*o->region) {
		rc = -EINVAL;
		dbuf_addf_opt(why, "presigning a WebSocket URL needs "
			      "credentials and a region");
		goto out;
	}
	rc = creds_get(o->creds, &cr, why);
	if (rc)
		goto out;
	signer = sigv4_signer_new();
	if (!signer) {
		rc = -ENOMEM;
		goto out;
	}
	h.name = "host";
	h.value = dbuf_str(&c->host_hdr);
	memset(&req, 0, sizeof(req));
	req.method = "GET";
	req.path = dbuf_str(path);
	req.query = dbuf_len(query) ? dbuf_str(query) : NULL;
	req.headers = &h;
	req.nheaders = 1;
	memset(&p, 0, sizeof(p));
	p.access_key = cr.access_key;
	p.secret_key = cr.secret_key;
	p.session_token = cr.session_token;
	p.region = o->region;
	p.service = "execute-api";
	p.now = time(NULL);
	sig_used = true;
	rc = sigv4_presign(signer, &req, &p, WSCONN_PRESIGN_EXPIRES, &sig);
	if (rc) {
		dbuf_addf_opt(why, "%s: could not presign the WebSocket URL",
			      dbuf_str(&c->target));
		goto out;
	}
	rc = dbuf_addf(&c->path, "%s?%s", dbuf_str(path),
		       dbuf_str(&sig.query));
out:
	if (sig_used)
		sigv4_out_free(&sig);
	sigv4_signer_free(signer);
	creds_clear(&cr);
	return rc;
}

static int ctx_create(struct wsconn *c, const struct wsconn_opts *o,
		      long timeout_ms, struct dbuf *why)
{
	struct lws_context_creation_info info;
	unsigned secs = (unsigned)((timeout_ms + 999) / 1000);
	int rc = 0;

	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = ws_protocols;
	info.gid = -1;
	info.uid = -1;
	info.user = c;
	/* A handful of fds (the connection, lws's wake-up pipe) instead of
	 * tables sized for the process's whole fd limit. */
	info.fd_limit_per_thread = 16;
	/* Our own deadline ends the connect; lws's one second later is
	 * only a backstop. */
	info.connect_timeout_secs = secs + 1;
	info.timeout_secs = secs + 1;
	if (c->tls) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		if (o->ca_file && *o->ca_file) {
			/* Like curl --cacert: this file and nothing else. */
			info.client_ssl_ca_filepath = o->ca_file;
			info.options |= LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS;
		}
	}
	c->ctx = lws_create_context(&info);
	if (!c->ctx) {
		rc = -EIO;
		dbuf_addf_opt(why, "%s: could not set up libwebsockets%s",
			      dbuf_str(&c->target),
			      o->ca_file ? " (is the CA file readable?)" : "");
	}
	return rc;
}

static int connect_start(struct wsconn *c, struct dbuf *why)
{
	struct lws_client_connect_info ci;
	int rc = 0;

	memset(&ci, 0, sizeof(ci));
	ci.context = c->ctx;
	ci.address = dbuf_str(&c->address);
	ci.port = c->port;
	ci.path = dbuf_str(&c->path);
	/* Host header, TLS SNI and the name the certificate must match,
	 * whatever address we connect to. */
	ci.host = dbuf_str(&c->host_hdr);
	ci.ietf_version_or_minus_one = -1;
	ci.local_protocol_name = ws_protocols[0].name;
	/* A redirect would carry the presigned query to another host. */
	ci.ssl_connection = LCCSCF_HTTP_NO_FOLLOW_REDIRECT;
	if (c->tls) {
		ci.ssl_connection |= LCCSCF_USE_SSL;
		/* WebSocket over HTTP/1.1, never an h2 stream. */
		ci.alpn = "http/1.1";
	}
	if (lws_client_connect_via_info(&ci))
		goto out;
	/* lws may have said why through the callback already. */
	pthread_mutex_lock(&c->lock);
	if (c->state == WS_CONNECTING || !c->open_rc) {
		c->open_rc = -EIO;
		dbuf_reset(&c->open_why);
		dbuf_addf_opt(&c->open_why, "%s: WebSocket connect failed "
			      "to start", dbuf_str(&c->target));
	}
	c->state = WS_CLOSED;
	rc = c->open_rc;
	dbuf_addf_opt(why, "%s", dbuf_str(&c->open_why));
	pthread_mutex_unlock(&c->lock);
out:
	return rc;
}

static void service_stop(struct wsconn *c)
{
	if (!c->thread_started)
		return;
	pthread_mutex_lock(&c->lock);
	c->stop = true;
	pthread_mutex_unlock(&c->lock);
	lws_cancel_service(c->ctx);
	pthread_join(c->thread, NULL);
	c->thread_started = false;
}

/* Tears down in the order the threads need: the service thread first,
 * then lws (whose last callbacks run here and take the lock). */
static void wsconn_free(struct wsconn *c)
{
	if (!c)
		return;
	if (c->ctx) {
		service_stop(c);
		lws_context_destroy(c->ctx);
		c->ctx = NULL;
	}
	tx_drop_all(c);
	dbuf_free(&c->rx_ready);
	dbuf_free(&c->rx_part);
	dbuf_free(&c->open_why);
	dbuf_free(&c->address);
	dbuf_free(&c->host_hdr);
	dbuf_free_secret(&c->path);
	dbuf_free(&c->target);
	if (c->cond_ok)
		pthread_cond_destroy(&c->cond);
	if (c->lock_ok)
		pthread_mutex_destroy(&c->lock);
	free(c);
}

static int wsconn_new(struct wsconn **out)
{
	pthread_condattr_t ca;
	struct wsconn *c;
	int rc;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c) {
		rc = -ENOMEM;
		goto out;
	}
	dbuf_init(&c->open_why, DBUF_CAP_SMALL);
	dbuf_init(&c->rx_ready, WSCONN_RX_CAP);
	dbuf_init(&c->rx_part, WSCONN_MSG_MAX);
	dbuf_init(&c->address, WSCONN_TEXT_CAP);
	dbuf_init(&c->host_hdr, WSCONN_TEXT_CAP);
	dbuf_init(&c->path, WSCONN_TEXT_CAP);
	dbuf_init(&c->target, WSCONN_TEXT_CAP);
	c->state = WS_CONNECTING;
	rc = -pthread_mutex_init(&c->lock, NULL);
	if (rc)
		goto out;
	c->lock_ok = true;
	rc = -pthread_condattr_init(&ca);
	if (rc)
		goto out;
	rc = -pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (!rc)
		rc = -pthread_cond_init(&c->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (rc)
		goto out;
	c->cond_ok = true;
out:
	if (rc)
		wsconn_free(c);
	else
		*out = c;
	return rc;
}

/* --- the API ----------------------------------------------------------------- */

int wsconn_open(struct wsconn **out, const struct wsconn_opts *opts,
		struct dbuf *why)
{
	struct wsconn *c = NULL;
	struct dbuf path, query;
	struct timespec deadline;
	long timeout_ms;
	int rc;

	dbuf_init(&path, WSCONN_TEXT_CAP);
	dbuf_init(&query, WSCONN_TEXT_CAP);
	if (!out || !opts || !opts->url || opts->connect_timeout_ms < 0) {
		rc = -EINVAL;
		goto out;
	}
	*out = NULL;
	timeout_ms = opts->connect_timeout_ms ? opts->connect_timeout_ms :
		     WSCONN_DEFAULT_TIMEOUT_MS;
	if (timeout_ms > INT_MAX / 2)
		timeout_ms = INT_MAX / 2;
	pthread_once(&log_once, log_quiet);

	rc = wsconn_new(&c);
	if (rc)
		goto out;
	rc = parse_target(c, opts, &path, &query, why);
	if (!rc)
		rc = build_path(c, opts, &path, &query, why);
	if (rc)
		goto out;
	deadline_after(&deadline, timeout_ms);
	rc = ctx_create(c, opts, timeout_ms, why);
	if (!rc)
		rc = connect_start(c, why);
	if (rc)
		goto out;
	rc = -pthread_create(&c->thread, NULL, service_main, c);
	if (rc) {
		dbuf_addf_opt(why, "could not start the WebSocket thread");
		goto out;
	}
	c->thread_started = true;

	pthread_mutex_lock(&c->lock);
	while (c->state == WS_CONNECTING &&
	       pthread_cond_timedwait(&c->cond, &c->lock, &deadline) !=
	       ETIMEDOUT)
		;
	if (c->state == WS_OPEN) {
		rc = 0;
	} else if (c->state == WS_CONNECTING) {
		rc = -ETIMEDOUT;
		dbuf_addf_opt(why, "%s: no WebSocket connection within %ld ms",
			      dbuf_str(&c->target), timeout_ms);
	} else {
		rc = c->open_rc ? c->open_rc : -EIO;
		if (dbuf_len(&c->open_why))
			dbuf_addf_opt(why, "%s", dbuf_str(&c->open_why));
		else
			dbuf_addf_opt(why, "%s: the WebSocket connection "
				      "closed during the handshake",
				      dbuf_str(&c->target));
	}
	pthread_mutex_unlock(&c->lock);
out:
	dbuf_free_secret(&path);
	dbuf_free_secret(&query);
	if (rc)
		wsconn_free(c);
	else
		*out = c;
	return rc;
}

int wsconn_send(struct wsconn *c, const void *msg, size_t len)
{
	static const unsigned char pre[LWS_PRE];
	struct txmsg *m = NULL;
	struct timespec deadline;
	struct dbuf b;
	uint64_t seq;
	int rc;

	dbuf_init(&b, LWS_PRE + WSCONN_MSG_MAX);
	if (!c || (!msg && len)) {
		rc = -EINVAL;
		goto out;
	}
	if (len > WSCONN_MSG_MAX) {
		rc = -EMSGSIZE;
		goto out;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		rc = -ENOMEM;
		goto out;
	}
	rc = dbuf_add(&b, pre, sizeof(pre));
	if (!rc)
		rc = dbuf_add(&b, msg, len);
	if (rc)
		goto out;
	m->len = len;
	m->buf = (unsigned char *)dbuf_take(&b, NULL);

	pthread_mutex_lock(&c->lock);
	if (c->state != WS_OPEN || c->closing) {
		pthread_mutex_unlock(&c->lock);
		rc = -EPIPE;
		goto out;
	}
	seq = m->seq = ++c->tx_seq;
	if (c->tx_tail)
		c->tx_tail->next = m;
	else
		c->tx_head = m;
	c->tx_tail = m;
	m = NULL; /* the queue's now */
	pthread_mutex_unlock(&c->lock);
	lws_cancel_service(c->ctx);

	/* Wait for the write, so that a send that returned 0 is on its way
	 * and a slow peer slows the sender instead of growing a queue. */
	deadline_after(&deadline, WSCONN_SEND_TIMEOUT_MS);
	pthread_mutex_lock(&c->lock);
	while (c->tx_done < seq && c->state == WS_OPEN &&
	       pthread_cond_timedwait(&c->cond, &c->lock, &deadline) !=
	       ETIMEDOUT)
		;
	if (c->tx_done >= seq) {
		rc = 0;
	} else if (c->state != WS_OPEN) {
		rc = -EPIPE; /* conn_gone dropped the queue */
	} else {
		struct txmsg **pp, *prev = NULL;

		/* Still queued (written ones leave the queue under the
		 * lock): take it back so it is never sent late. */
		for (pp = &c->tx_head; *pp; prev = *pp, pp = &(*pp)->next) {
			if ((*pp)->seq == seq) {
				m = *pp;
				*pp = m->next;
				if (c->tx_tail == m)
					c->tx_tail = prev;
				break;
			}
		}
		rc = -ETIMEDOUT;
	}
	pthread_mutex_unlock(&c->lock);
out:
	txmsg_free(m);
	dbuf_free(&b);
	return rc;
}

ssize_t wsconn_recv(struct wsconn *c, char *buf, size_t size, int nonblock)
{
	bool wake = false, locked = false;
	ssize_t rc = 0;
	size_t n;

	if (!c || (!buf && size)) {
		rc = -EINVAL;
		goto out;
	}
	if (!size)
		goto out;
	if (size > SSIZE_MAX)
		size = SSIZE_MAX;
	pthread_mutex_lock(&c->lock);
	locked = true;
	while (c->rx_off == dbuf_len(&c->rx_ready)) {
		if (c->state == WS_CLOSED) {
			rc = c->rx_err;
			goto out;
		}
		if (nonblock) {
			rc = -EAGAIN;
			goto out;
		}
		pthread_cond_wait(&c->cond, &c->lock);
	}
	n = dbuf_len(&c->rx_ready) - c->rx_off;
	if (n > size)
		n = size;
	memcpy(buf, dbuf_str(&c->rx_ready) + c->rx_off, n);
	c->rx_off += n;
	if (c->rx_off == dbuf_len(&c->rx_ready)) {
		if (dbuf_len(&c->rx_ready) > WSCONN_RX_KEEP)
			dbuf_free(&c->rx_ready);
		else
			dbuf_reset(&c->rx_ready);
		c->rx_off = 0;
		c->rx_pause = false;
		if (c->rx_paused && !c->rx_resume && c->state == WS_OPEN) {
			c->rx_resume = true;
			wake = true;
		}
	}
	rc = (ssize_t)n;
out:
	if (locked)
		pthread_mutex_unlock(&c->lock);
	if (wake)
		lws_cancel_service(c->ctx);
	return rc;
}

void wsconn_close(struct wsconn *c)
{
	struct timespec deadline;
	bool wait;

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	wait = c->state == WS_OPEN && !c->closing;
	c->closing = true;
	pthread_mutex_unlock(&c->lock);
	if (wait) {
		/* A close frame, and a short wait for the peer's answer so
		 * the server sees a clean close rather than a reset. */
		lws_cancel_service(c->ctx);
		deadline_after(&deadline, WSCONN_CLOSE_WAIT_MS);
		pthread_mutex_lock(&c->lock);
		while (c->state == WS_OPEN &&
		       pthread_cond_timedwait(&c->cond, &c->lock, &deadline) !=
		       ETIMEDOUT)
			;
		pthread_mutex_unlock(&c->lock);
	}
	wsconn_free(c);
}
