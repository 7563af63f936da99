/* wsconn: one WebSocket client connection (libwebsockets), for the
 * WebSocket APIs of API Gateway.  Messages are whole: a send is one
 * message; received messages queue up and are read back as text, each
 * followed by a newline.  Thread-safe: one thread may block in
 * wsconn_recv while another sends. */
#ifndef DYNFS_WSCONN_H
#define DYNFS_WSCONN_H

#include <stddef.h>
#include <sys/types.h>

#include "backend/creds.h"
#include "backend/dbuf.h"

struct wsconn;

struct wsconn_opts {
	/* "wss://{api-id}.execute-api.{region}.amazonaws.com/{stage}" */
	const char *url;
	/* Presign the URL with SigV4 (service "execute-api") from creds,
	 * as $connect with AWS_IAM requires.  creds borrowed. */
	int presign;
	struct creds_chain *creds;
	const char *region;
	const char *connect_to;  /* "HOST:PORT", as exapi's; NULL: off */
	const char *ca_file;     /* NULL: the system's */
	long connect_timeout_ms; /* 0: 10000 */
};

/* Connects and completes the handshake before returning.  -EACCES when
 * the server refused with 401/403, -ENOENT on 404, -ETIMEDOUT, -EIO;
 * why (may be NULL) gets one sentence for the log. */
int wsconn_open(struct wsconn **out, const struct wsconn_opts *opts,
		struct dbuf *why);
/* Sends one text message; -EPIPE once the connection is closed. */
int wsconn_send(struct wsconn *c, const void *msg, size_t len);
/* Up to size bytes of the received messages, each followed by '\n'.
 * Blocks until a byte is there (unless nonblock: -EAGAIN); 0 once the
 * peer closed and everything was read. */
ssize_t wsconn_recv(struct wsconn *c, char *buf, size_t size, int nonblock);
/* Closes (a close frame, then the socket) and frees. */
void wsconn_close(struct wsconn *c);

#endif
