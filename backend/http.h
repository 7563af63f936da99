/* http: one HTTP exchange over libcurl, with connections kept alive and
 * shared across threads.  It knows nothing of AWS: signing, retries and
 * error bodies belong to svc. */
#ifndef DYNFS_HTTP_H
#define DYNFS_HTTP_H

#include <stddef.h>

#include "backend/dbuf.h"

struct http_header {
	const char *name;
	const char *value;
};

struct http_request {
	const char *method;
	const char *url;
	const struct http_header *headers;
	size_t nheaders;
	const void *body;
	size_t body_len;
	/* > 0: this request's whole-request timeout instead of the
	 * client's (a caller bounding several attempts); 0: the client's. */
	long timeout_ms;
};

struct http_response {
	long status;
	struct dbuf headers; /* "name: value\r\n" lines, status line dropped */
	struct dbuf body;
};

struct http_opts {
	long connect_timeout_ms; /* 0: 5000 */
	long timeout_ms;         /* whole request; 0: 60000 */
	size_t max_body;         /* 0: DBUF_CAP_BODY */
	/* "HOST:PORT": connect there whatever the URL says, keeping the Host
	 * header and TLS name (curl's --connect-to).  NULL: off. */
	const char *connect_to;
	const char *ca_file; /* NULL: the system's */
};

/* A transport replaces the network in unit tests.  It fills resp (whose
 * dbufs are initialized) and returns 0, or a transport -errno. */
typedef int (*http_transport_fn)(void *ctx, const struct http_request *req,
				 struct http_response *resp);

struct http_client;

int http_client_new(struct http_client **out, const struct http_opts *opts);
void http_client_free(struct http_client *c);
void http_client_set_transport(struct http_client *c, http_transport_fn fn,
			       void *ctx);

void http_response_init(struct http_response *r);
void http_response_free(struct http_response *r);
/* The value of the first header named name (any case), or NULL. */
const char *http_response_header(const struct http_response *r,
				 const char *name, size_t *len);

/* One attempt; thread-safe.  0 once a status line arrived (any status), or
 * a transport error: -ETIMEDOUT, -ECONNREFUSED, -ECONNRESET,
 * -EHOSTUNREACH (name or route), -EPROTO (TLS or protocol), -E2BIG (body
 * over max_body), -ENOMEM.  *why (may be NULL) gets curl's words. */
int http_perform(struct http_client *c, const struct http_request *req,
		 struct http_response *resp, struct dbuf *why);

/* Streaming: the body goes to data as it arrives instead of into
 * resp->body (which stays empty, and no max_body applies: the consumer
 * bounds it).  resp->status and resp->headers are complete before the
 * first call to data. */
typedef int (*http_data_fn)(void *ctx, const char *data, size_t len);

struct http_sink {
	http_data_fn data; /* non-zero stops the transfer */
	void *ctx;
	/* NULL, or gets the final response's status line without CRLF,
	 * with the standard reason phrase added when the server sent none
	 * (HTTP/2): "HTTP/1.1 403 Forbidden". */
	struct dbuf *status_line;
};

/* As http_perform, but streaming.  A non-zero value from sink->data is
 * returned as is.  With a transport (tests), the transport's body is
 * handed to sink->data in one piece and the status line is made up from
 * the status. */
int http_perform_stream(struct http_client *c, const struct http_request *req,
			const struct http_sink *sink,
			struct http_response *resp, struct dbuf *why);

/* Append s percent-encoded: every byte but A-Z a-z 0-9 - . _ ~ (and '/'
 * when keep_slash) becomes %XX.  0, -E2BIG or -ENOMEM from out. */
int http_pct_encode(struct dbuf *out, const char *s, int keep_slash);

#endif
