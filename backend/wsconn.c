/* wsconn: WebSocket client connections on libwebsockets (lws).
 *
 * The connections of a hub share one lws_context and one service thread.
 * Once the context is made, that thread is the only one that calls lws
 * (but for lws_cancel_service(), which lws documents as safe from any
 * thread), up to the context's destruction.  The other threads change a
 * connection's state under its lock and wake the service thread, which
 * acts on the change in hub_work().  TLS uses our own SSL_CTX, handed
 * to lws and freed by us (docs/websocket.md says why). */
#include "backend/wsconn.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libwebsockets.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

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
/* ... and then this long for lws to let go of the connection, which it
 * does on the service thread's next turn. */
#define WSCONN_RELEASE_WAIT_MS 10000L
#define WSCONN_TEXT_CAP 16384u
/* Keep-alive defaults: a ping after 30 s without a pong; the connection
 * is dropped after 150 s without one (a dead peer, or a reader that let
 * more than WSCONN_RX_HIGH pile up for minutes: pongs are not read
 * while the socket is paused). */
#define WSCONN_PING_S 30u
#define WSCONN_HANGUP_S 150u
/* lws's own connect and handshake timeouts, a backstop: each connect
 * has its own deadline, which ends it first. */
#define WSCONN_LWS_TIMEOUT_S 120u
/* Connections per hub.  lws's fd table holds them, its wake-up pipe and
 * some room; sized for them, not for the process's fd limit. */
#define WSCONN_MAX_CONNS 100u
#define WSCONN_FD_LIMIT 128u

enum ws_state {
	WS_CONNECTING,
	WS_OPEN,
	WS_CLOSED,
};

enum hub_state {
	HUB_IDLE,    /* no context: before the first connection */
	HUB_RUNNING, /* the context and its thread */
	HUB_DEAD,    /* lws_service failed; the thread ended, not joined */
};

/* A message waiting for the service thread. */
struct txmsg {
	struct txmsg *next;
	uint64_t seq;
	unsigned char *buf; /* LWS_PRE bytes of room for lws, then the text */
	size_t len;         /* of the text */
};

struct wsconn_hub {
	/* Lock order: start_lock, then lock, then a connection's c->lock.
	 * The service thread holds none of them while it calls an lws
	 * function that may call back into ws_callback for a connection
	 * (a connect, the context's destruction); the lws calls it makes
	 * under them call back only for reasons ws_callback ignores. */
	pthread_mutex_t start_lock; /* one start at a time */
	pthread_mutex_t lock;
	bool start_lock_ok, lock_ok;

	char *ca_file;
	lws_retry_bo_t keepalive; /* read by lws for every connection */

	/* Under lock. */
	int refs; /* the owner's, and one per connection */
	enum hub_state state;
	bool stop;                /* the service thread leaves its loop */
	struct lws_context *ctx;  /* RUNNING; only the thread clears it */
	SSL_CTX *ssl_ctx;         /* outlives ctx; freed by us */
	pthread_t thread;
	bool thread_started;
	struct wsconn *conns;     /* registered connections */
	unsigned nconns;          /* of them, not orphans */

	/* The service thread's alone. */
	lws_sorted_usec_list_t sul_work;
};

struct wsconn {
	struct wsconn_hub *hub;
	struct wsconn *next; /* in hub->conns, under the hub's lock */
	bool registered;     /* in hub->conns */
	bool orphan;         /* lws never let go: freed with the context */

	pthread_mutex_t lock;
	pthread_cond_t cond; /* broadcast on every change below */
	bool lock_ok, cond_ok;

	void (*on_ready)(void *arg);
	void *arg;

	/* Everything from here on is under lock. */
	bool want_connect; /* the service thread should start the connect */
	bool wsi_live;     /* lws may still call back for this connection */
	bool kill;         /* the connection is to be dropped at once */
	bool notify;       /* on_ready is due once the lock is let go */
	struct lws *lwsi;  /* lws's object, from connect to WSI_DESTROY */

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

	/* Set before the connect; read by lws for the connection's life. */
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

/* Wakes the service thread from any thread; none of the hub's or a
 * connection's locks may be held.  A hub without a context (stopped or
 * dead) has nothing to wake. */
static void hub_wake(struct wsconn_hub *h)
{
	pthread_mutex_lock(&h->lock);
	if (h->ctx)
		lws_cancel_service(h->ctx);
	pthread_mutex_unlock(&h->lock);
}

/* --- the service thread's side (lws callbacks) --------------------------- */

/* Lets go of c->lock, then tells the owner if something became
 * readable.  The service thread's only way out of c->lock in a
 * callback, so that on_ready never runs under it. */
static void conn_unlock(struct wsconn *c)
{
	bool fire = c->notify && c->on_ready;

	c->notify = false;
	pthread_mutex_unlock(&c->lock);
	if (fire)
		c->on_ready(c->arg);
}

/* Under lock.  The connection is gone: wake everyone, nothing more will
 * be sent or received. */
static void conn_gone(struct wsconn *c)
{
	if (c->state == WS_OPEN && !c->peer_closed && !c->closing &&
	    !c->rx_err)
		c->rx_err = -ECONNRESET;
	c->state = WS_CLOSED;
	c->wsi = NULL;
	c->notify = true;
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
	c->notify = true;
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

/* Under c->lock: act on what other threads asked for.  None of these
 * calls calls back for the connection before it returns (a kill is
 * carried out on the next loop turn). */
static void conn_service(struct wsconn *c)
{
	if (!c->lwsi)
		return;
	if (c->kill) {
		/* Set again each time: lws clears a pending timeout when a
		 * connection changes state (the callbacks also refuse a
		 * connection to be killed). */
		lws_set_timeout(c->lwsi, PENDING_TIMEOUT_USER_OK,
				LWS_TO_KILL_ASYNC);
		return;
	}
	if (c->state != WS_OPEN || !c->wsi)
		return;
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

/* Starts c's connect.  No lock held: lws may call back for c from
 * inside lws_client_connect_via_info (c->wsi_live keeps c alive). */
static void connect_start(struct wsconn_hub *h, struct wsconn *c)
{
	struct lws_client_connect_info ci;
	struct lws *wsi;

	memset(&ci, 0, sizeof(ci));
	ci.context = h->ctx;
	ci.address = dbuf_str(&c->address);
	ci.port = c->port;
	ci.path = dbuf_str(&c->path);
	/* Host header, TLS SNI and the name the certificate must match,
	 * whatever address we connect to. */
	ci.host = dbuf_str(&c->host_hdr);
	ci.ietf_version_or_minus_one = -1;
	ci.local_protocol_name = "dynfs-ws";
	/* A redirect would carry the presigned query to another host. */
	ci.ssl_connection = LCCSCF_HTTP_NO_FOLLOW_REDIRECT;
	if (c->tls) {
		ci.ssl_connection |= LCCSCF_USE_SSL;
		/* WebSocket over HTTP/1.1, never an h2 stream. */
		ci.alpn = "http/1.1";
	}
	/* The callbacks find c here; lws takes the keep-alive policy from
	 * the connect, not from the context. */
	ci.opaque_user_data = c;
	ci.retry_and_idle_policy = &h->keepalive;
	wsi = lws_client_connect_via_info(&ci);

	pthread_mutex_lock(&c->lock);
	if (wsi && c->wsi_live) {
		c->lwsi = wsi;
	} else if (!wsi) {
		/* Failed inside the call, where lws says nothing through
		 * the callback; nothing of it is left. */
		if (c->state == WS_CONNECTING) {
			c->open_rc = -EIO;
			dbuf_reset(&c->open_why);
			dbuf_addf_opt(&c->open_why, "%s: WebSocket connect "
				      "failed to start", dbuf_str(&c->target));
			c->state = WS_CLOSED;
		}
		c->lwsi = NULL;
		c->wsi_live = false;
		pthread_cond_broadcast(&c->cond);
	}
	pthread_mutex_unlock(&c->lock);
}

/* The service thread's turn for the other threads' requests: connects
 * to start, sends, closes, pauses and kills.  Runs from lws's timer
 * list, outside lws's walk over the fds, so that a connect made here
 * does not change that walk under it. */
static void hub_work(lws_sorted_usec_list_t *sul)
{
	struct wsconn_hub *h = lws_container_of(sul, struct wsconn_hub,
						sul_work);
	struct wsconn *c, *todo;

	for (;;) {
		todo = NULL;
		pthread_mutex_lock(&h->lock);
		for (c = h->conns; c && !todo; c = c->next) {
			pthread_mutex_lock(&c->lock);
			if (c->want_connect) {
				c->want_connect = false;
				c->wsi_live = true;
				todo = c;
			} else {
				conn_service(c);
			}
			pthread_mutex_unlock(&c->lock);
		}
		pthread_mutex_unlock(&h->lock);
		if (!todo)
			break;
		connect_start(h, todo);
	}
}

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason,
		       void *user, void *in, size_t len)
{
	struct wsconn_hub *h;
	struct wsconn *c;
	int rc = 0;

	(void)user;
	if (!wsi)
		goto out;
	if (reason == LWS_CALLBACK_EVENT_WAIT_CANCELLED) {
		/* Another thread asked for something; wsi here is not a
		 * connection's.  Sent once per protocol and vhost: the
		 * timer is set again, not twice. */
		h = lws_context_user(lws_get_context(wsi));
		if (h)
			lws_sul_schedule(lws_get_context(wsi), 0, &h->sul_work,
					 hub_work, 1);
		goto out;
	}
	/* Only our connections carry c; context-wide events carry none. */
	c = lws_get_opaque_user_data(wsi);
	if (!c)
		goto out;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		pthread_mutex_lock(&c->lock);
		if (c->kill || c->state != WS_CONNECTING) {
			rc = -1; /* wsconn_open gave up on it */
		} else {
			c->state = WS_OPEN;
			c->wsi = wsi;
			if (c->tx_head || c->closing)
				lws_callback_on_writable(wsi);
			pthread_cond_broadcast(&c->cond);
		}
		conn_unlock(c);
		break;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		pthread_mutex_lock(&c->lock);
		if (c->state == WS_CONNECTING)
			conn_failed(c, wsi, in, len);
		else if (c->state == WS_OPEN)
			conn_gone(c);
		conn_unlock(c);
		break;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		pthread_mutex_lock(&c->lock);
		if (c->kill)
			rc = -1;
		else if (wsi == c->wsi)
			rc = on_receive(c, wsi, in, len);
		conn_unlock(c);
		break;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		pthread_mutex_lock(&c->lock);
		if (c->kill)
			rc = -1;
		else if (wsi == c->wsi)
			rc = on_writeable(c, wsi);
		conn_unlock(c);
		break;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		pthread_mutex_lock(&c->lock);
		c->peer_closed = true;
		conn_unlock(c);
		break;
	case LWS_CALLBACK_CLIENT_CLOSED:
		pthread_mutex_lock(&c->lock);
		if (c->state == WS_OPEN)
			conn_gone(c);
		conn_unlock(c);
		break;
	case LWS_CALLBACK_WSI_DESTROY:
		/* lws's last word on this connection: tell the owner what
		 * changed first, then let it free c. */
		pthread_mutex_lock(&c->lock);
		if (c->state == WS_CONNECTING)
			conn_failed(c, NULL, "closed during the handshake",
				    0);
		else if (c->state == WS_OPEN)
			conn_gone(c);
		conn_unlock(c);
		pthread_mutex_lock(&c->lock);
		c->lwsi = NULL;
		c->wsi = NULL;
		c->wsi_live = false;
		pthread_cond_broadcast(&c->cond);
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

static void conn_free(struct wsconn *c);

/* Serves until told to stop (or lws fails), then destroys the context
 * on this thread: lws's last callbacks run here, with no lock held. */
static void *service_main(void *arg)
{
	struct wsconn_hub *h = arg;
	struct wsconn **pp, *c;
	bool stop;

	for (;;) {
		pthread_mutex_lock(&h->lock);
		stop = h->stop;
		pthread_mutex_unlock(&h->lock);
		if (stop || lws_service(h->ctx, 0) < 0)
			break;
	}
	lws_context_destroy(h->ctx);

	/* What lws did not end, ends here: connects not started yet, and
	 * connections lws never let go of (their owner left them). */
	pthread_mutex_lock(&h->lock);
	h->ctx = NULL;
	if (!h->stop)
		h->state = HUB_DEAD;
	for (pp = &h->conns; (c = *pp);) {
		if (c->orphan) {
			*pp = c->next;
			conn_free(c);
			continue;
		}
		pthread_mutex_lock(&c->lock);
		c->want_connect = false;
		if (c->state == WS_CONNECTING) {
			c->open_rc = -EIO;
			dbuf_reset(&c->open_why);
			dbuf_addf_opt(&c->open_why, "%s: the WebSocket service "
				      "stopped", dbuf_str(&c->target));
			c->state = WS_CLOSED;
		} else if (c->state == WS_OPEN) {
			conn_gone(c);
		}
		c->notify = false; /* c may be freed once wsi_live is off */
		c->lwsi = NULL;
		c->wsi_live = false;
		pthread_cond_broadcast(&c->cond);
		pthread_mutex_unlock(&c->lock);
		pp = &c->next;
	}
	pthread_mutex_unlock(&h->lock);
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

/* --- the hub --------------------------------------------------------------- */

/* Our own client SSL_CTX, freed by us after the context: lws 4.1.6 loses
 * the SSL_CTX it makes itself when its context ends while another one
 * exists.  lws still sets peer verification, the host name to check,
 * SNI and ALPN on every connection. */
static int tls_ctx_new(SSL_CTX **out, const char *ca_file, struct dbuf *why)
{
	SSL_CTX *t;
	int rc = 0;

	*out = NULL;
	t = SSL_CTX_new(TLS_client_method());
	if (!t) {
		rc = -ENOMEM;
		dbuf_addf_opt(why, "could not set up TLS for WebSockets");
		goto out;
	}
	SSL_CTX_set_min_proto_version(t, TLS1_2_VERSION);
	SSL_CTX_set_options(t, SSL_OP_NO_COMPRESSION);
	/* An idle connection gives its TLS buffers back. */
	SSL_CTX_set_mode(t, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_verify(t, SSL_VERIFY_PEER, NULL);
	if (ca_file) {
		/* Like curl --cacert: this file and nothing else. */
		if (SSL_CTX_load_verify_file(t, ca_file) != 1) {
			rc = -EIO;
			dbuf_addf_opt(why, "cannot load the CA file %s for "
				      "WebSockets", ca_file);
		}
	} else if (SSL_CTX_set_default_verify_paths(t) != 1) {
		rc = -EIO;
		dbuf_addf_opt(why, "cannot load the system's CA certificates "
			      "for WebSockets");
	}
out:
	/* OpenSSL's error queue is per thread; leave nothing in it. */
	ERR_clear_error();
	if (rc)
		SSL_CTX_free(t);
	else
		*out = t;
	return rc;
}

/* Under start_lock: the context, the TLS set-up and the thread, unless
 * they run.  A dead thread is joined and everything made anew. */
static int hub_start(struct wsconn_hub *h, struct dbuf *why)
{
	struct lws_context_creation_info info;
	struct lws_context *ctx = NULL;
	SSL_CTX *ssl = NULL;
	enum hub_state st;
	int rc;

	pthread_mutex_lock(&h->lock);
	st = h->state;
	pthread_mutex_unlock(&h->lock);
	if (st == HUB_RUNNING)
		return 0;
	if (st == HUB_DEAD) {
		pthread_join(h->thread, NULL);
		pthread_mutex_lock(&h->lock);
		h->thread_started = false;
		SSL_CTX_free(h->ssl_ctx);
		h->ssl_ctx = NULL;
		h->state = HUB_IDLE;
		pthread_mutex_unlock(&h->lock);
	}

	rc = tls_ctx_new(&ssl, h->ca_file, why);
	if (rc)
		goto out;
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = ws_protocols;
	info.gid = -1;
	info.uid = -1;
	info.user = h;
	/* lws uses provided_client_ssl_ctx only with its TLS switched on. */
	info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.provided_client_ssl_ctx = ssl;
	/* A table for our connections and lws's wake-up pipe instead of
	 * one sized for the process's whole fd limit. */
	info.fd_limit_per_thread = WSCONN_FD_LIMIT;
	info.connect_timeout_secs = WSCONN_LWS_TIMEOUT_S;
	info.timeout_secs = WSCONN_LWS_TIMEOUT_S;
	/* The timer of the old context (if any) went with it. */
	memset(&h->sul_work, 0, sizeof(h->sul_work));
	ctx = lws_create_context(&info);
	if (!ctx) {
		rc = -EIO;
		dbuf_addf_opt(why, "could not set up libwebsockets");
		goto out;
	}
	pthread_mutex_lock(&h->lock);
	h->ctx = ctx;
	h->ssl_ctx = ssl;
	h->stop = false;
	rc = -pthread_create(&h->thread, NULL, service_main, h);
	if (rc) {
		h->ctx = NULL;
		h->ssl_ctx = NULL;
	} else {
		h->thread_started = true;
		h->state = HUB_RUNNING;
		ctx = NULL;
		ssl = NULL;
	}
	pthread_mutex_unlock(&h->lock);
	if (rc)
		dbuf_addf_opt(why, "could not start the WebSocket thread");
out:
	/* Never started: no thread ever saw it. */
	if (ctx)
		lws_context_destroy(ctx);
	SSL_CTX_free(ssl);
	return rc;
}

static void hub_destroy(struct wsconn_hub *h)
{
	bool join = false;

	if (h->lock_ok) {
		pthread_mutex_lock(&h->lock);
		h->stop = true;
		if (h->ctx)
			lws_cancel_service(h->ctx);
		join = h->thread_started;
		pthread_mutex_unlock(&h->lock);
	}
	/* The thread destroys the context and frees what lws held. */
	if (join)
		pthread_join(h->thread, NULL);
	SSL_CTX_free(h->ssl_ctx);
	free(h->ca_file);
	if (h->lock_ok)
		pthread_mutex_destroy(&h->lock);
	if (h->start_lock_ok)
		pthread_mutex_destroy(&h->start_lock);
	free(h);
}

static void hub_unref(struct wsconn_hub *h)
{
	bool last;

	pthread_mutex_lock(&h->lock);
	last = --h->refs == 0;
	pthread_mutex_unlock(&h->lock);
	if (last)
		hub_destroy(h);
}

int wsconn_hub_new(struct wsconn_hub **out, const struct wsconn_hub_opts *o)
{
	struct wsconn_hub *h;
	unsigned ping, hangup;
	int rc;

	*out = NULL;
	ping = o && o->ping_s ? o->ping_s : WSCONN_PING_S;
	hangup = o && o->hangup_s ? o->hangup_s : WSCONN_HANGUP_S;
	/* lws counts both in 16 bits and wants the hang-up later. */
	if (ping > UINT16_MAX - 1 || hangup > UINT16_MAX || hangup <= ping)
		return -EINVAL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->refs = 1;
	h->keepalive.secs_since_valid_ping = (uint16_t)ping;
	h->keepalive.secs_since_valid_hangup = (uint16_t)hangup;
	rc = -pthread_mutex_init(&h->start_lock, NULL);
	if (rc)
		goto out;
	h->start_lock_ok = true;
	rc = -pthread_mutex_init(&h->lock, NULL);
	if (rc)
		goto out;
	h->lock_ok = true;
	if (o && o->ca_file && *o->ca_file &&
	    !(h->ca_file = strdup(o->ca_file))) {
		rc = -ENOMEM;
		goto out;
	}
	pthread_once(&log_once, log_quiet);
out:
	if (rc)
		hub_destroy(h);
	else
		*out = h;
	return rc;
}

void wsconn_hub_free(struct wsconn_hub *h)
{
	if (h)
		hub_unref(h);
}

/* --- a connection ---------------------------------------------------------- */

static void conn_free(struct wsconn *c)
{
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

/* Takes c out of the hub and frees it, once lws let go of it: a connect
 * not started is called off, a live one killed and waited for. */
static void wsconn_free(struct wsconn *c)
{
	struct wsconn_hub *h;
	struct wsconn **pp;
	struct timespec deadline;
	bool live;

	if (!c)
		return;
	h = c->hub;
	if (!c->registered) {
		conn_free(c);
		return;
	}
	pthread_mutex_lock(&h->lock);
	pthread_mutex_lock(&c->lock);
	c->want_connect = false;
	live = c->wsi_live;
	c->kill = live;
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_unlock(&h->lock);
	if (live) {
		hub_wake(h);
		deadline_after(&deadline, WSCONN_RELEASE_WAIT_MS);
		pthread_mutex_lock(&c->lock);
		while (c->wsi_live &&
		       pthread_cond_timedwait(&c->cond, &c->lock, &deadline) !=
		       ETIMEDOUT)
			;
		live = c->wsi_live;
		pthread_mutex_unlock(&c->lock);
	}
	pthread_mutex_lock(&h->lock);
	h->nconns--;
	if (live) {
		/* lws still holds it: the service thread frees it after
		 * the context, when no callback can come any more. */
		c->orphan = true;
		pthread_mutex_lock(&c->lock);
		c->on_ready = NULL;
		pthread_mutex_unlock(&c->lock);
	} else {
		for (pp = &h->conns; *pp && *pp != c; pp = &(*pp)->next)
			;
		if (*pp)
			*pp = c->next;
	}
	pthread_mutex_unlock(&h->lock);
	if (!live)
		conn_free(c);
	hub_unref(h);
}

static int wsconn_new(struct wsconn_hub *h, struct wsconn **out)
{
	pthread_condattr_t ca;
	struct wsconn *c;
	int rc;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->hub = h;
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
		conn_free(c);
	else
		*out = c;
	return rc;
}

/* Starts the hub if need be and puts c in it, to be connected by the
 * service thread. */
static int conn_register(struct wsconn_hub *h, struct wsconn *c,
			 struct dbuf *why)
{
	int rc;

	pthread_mutex_lock(&h->start_lock);
	rc = hub_start(h, why);
	if (rc)
		goto out;
	pthread_mutex_lock(&h->lock);
	if (h->state != HUB_RUNNING) {
		rc = -EIO;
		dbuf_addf_opt(why, "%s: the WebSocket service stopped",
			      dbuf_str(&c->target));
	} else if (h->nconns >= WSCONN_MAX_CONNS) {
		rc = -EMFILE;
		dbuf_addf_opt(why, "%s: already %u WebSocket connections "
			      "open", dbuf_str(&c->target), h->nconns);
	} else {
		c->want_connect = true;
		c->registered = true;
		c->next = h->conns;
		h->conns = c;
		h->nconns++;
		h->refs++;
	}
	pthread_mutex_unlock(&h->lock);
out:
	pthread_mutex_unlock(&h->start_lock);
	if (!rc)
		hub_wake(h);
	return rc;
}

/* --- the API ----------------------------------------------------------------- */

int wsconn_open(struct wsconn_hub *h, struct wsconn **out,
		const struct wsconn_opts *opts, struct dbuf *why)
{
	struct wsconn *c = NULL;
	struct dbuf path, query;
	struct timespec deadline;
	long timeout_ms;
	int rc;

	dbuf_init(&path, WSCONN_TEXT_CAP);
	dbuf_init(&query, WSCONN_TEXT_CAP);
	if (!h || !out || !opts || !opts->url ||
	    opts->connect_timeout_ms < 0) {
		rc = -EINVAL;
		goto out;
	}
	*out = NULL;
	timeout_ms = opts->connect_timeout_ms ? opts->connect_timeout_ms :
		     WSCONN_DEFAULT_TIMEOUT_MS;
	if (timeout_ms > INT_MAX / 2)
		timeout_ms = INT_MAX / 2;

	rc = wsconn_new(h, &c);
	if (rc)
		goto out;
	c->on_ready = opts->on_ready;
	c->arg = opts->arg;
	rc = parse_target(c, opts, &path, &query, why);
	if (!rc)
		rc = build_path(c, opts, &path, &query, why);
	if (rc)
		goto out;
	deadline_after(&deadline, timeout_ms);
	rc = conn_register(h, c, why);
	if (rc)
		goto out;

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
	if (rc)
		c->on_ready = NULL; /* the caller never sees c */
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
	hub_wake(c->hub);

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
		hub_wake(c->hub);
	return rc;
}

unsigned wsconn_events(struct wsconn *c)
{
	unsigned ev = 0;

	if (!c)
		return POLLERR;
	pthread_mutex_lock(&c->lock);
	if (c->rx_off < dbuf_len(&c->rx_ready))
		ev |= POLLIN | POLLRDNORM;
	if (c->state == WS_CLOSED)
		ev |= POLLIN | POLLRDNORM | POLLHUP; /* recv says how it ended */
	else if (c->state == WS_OPEN && !c->closing)
		ev |= POLLOUT | POLLWRNORM;
	pthread_mutex_unlock(&c->lock);
	return ev;
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
		hub_wake(c->hub);
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
