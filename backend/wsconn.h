/* wsconn: WebSocket client connections (libwebsockets), for the
 * WebSocket APIs of API Gateway.  Messages are whole: a send is one
 * message; received messages queue up and are read back as text, each
 * followed by a newline.  Thread-safe: one thread may block in
 * wsconn_recv while another sends.
 *
 * The connections of a hub (one per mount) share one lws context, its
 * service thread and one TLS set-up; the hub starts them with its first
 * connection.  docs/websocket.md is the contract. */
#ifndef DYNFS_WSCONN_H
#define DYNFS_WSCONN_H

#include <stddef.h>
#include <sys/types.h>

#include "backend/creds.h"
#include "backend/dbuf.h"

struct wsconn_hub;
struct wsconn;

struct wsconn_hub_opts {
	const char *ca_file; /* the only CAs trusted; NULL: the system's */
	/* Keep-alive: a ping after ping_s seconds without a pong (0: 30),
	 * and the connection dropped after hangup_s (0: 150; more than
	 * ping_s). */
	unsigned ping_s;
	unsigned hangup_s;
};

/* o may be NULL (the defaults); -EINVAL when hangup_s is not above
 * ping_s.  Nothing starts before the first wsconn_open. */
int wsconn_hub_new(struct wsconn_hub **out, const struct wsconn_hub_opts *o);
/* The hub ends once its last connection is closed too. */
void wsconn_hub_free(struct wsconn_hub *h);

struct wsconn_opts {
	/* "wss://{api-id}.execute-api.{region}.amazonaws.com/{stage}" */
	const char *url;
	/* Presign the URL with SigV4 (service "execute-api") from creds,
	 * as $connect with AWS_IAM requires.  creds borrowed. */
	int presign;
	struct creds_chain *creds;
	const char *region;
	const char *connect_to;  /* "HOST:PORT", as exapi's; NULL: off */
	long connect_timeout_ms; /* 0: 10000 */
	/* Called on the hub's thread, with no wsconn lock held, when
	 * wsconn_events may have changed (a message became readable, the
	 * connection ended); never once wsconn_close has returned.  NULL:
	 * not told. */
	void (*on_ready)(void *arg);
	void *arg;
};

/* Connects on hub h and completes the handshake before returning.
 * -EACCES when the server refused with 401/403, -ENOENT on 404,
 * -ETIMEDOUT, -EMFILE (too many connections), -EIO; why (may be NULL)
 * gets one sentence for the log. */
int wsconn_open(struct wsconn_hub *h, struct wsconn **out,
		const struct wsconn_opts *opts, struct dbuf *why);
/* Sends one text message; -EPIPE once the connection is closed. */
int wsconn_send(struct wsconn *c, const void *msg, size_t len);
/* Up to size bytes of the received messages, each followed by '\n'.
 * Blocks until a byte is there (unless nonblock: -EAGAIN); 0 once the
 * peer closed and everything was read. */
ssize_t wsconn_recv(struct wsconn *c, char *buf, size_t size, int nonblock);
/* poll(2) bits: POLLIN when wsconn_recv would not block, POLLOUT while
 * sends are taken, POLLHUP once the connection has ended. */
unsigned wsconn_events(struct wsconn *c);
/* Closes (a close frame, then the socket) and frees. */
void wsconn_close(struct wsconn *c);

#endif
