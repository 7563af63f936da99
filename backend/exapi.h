/* exapi: calls to deployed API Gateway APIs (execute-api): the invoke URL
 * https://{api-id}.execute-api.{region}.amazonaws.com/{stage}/{path},
 * signed with SigV4 (service "execute-api") when asked, unsigned
 * otherwise.  Responses stream to a callback.  It knows nothing of files. */
#ifndef DYNFS_EXAPI_H
#define DYNFS_EXAPI_H

#include <stddef.h>
#include <time.h>

#include "backend/awserr.h"
#include "backend/creds.h"
#include "backend/dbuf.h"
#include "backend/http.h"

struct exapi;

struct exapi_opts {
	const char *region;
	/* "HOST:PORT": connect there, keeping the URL's host in the Host
	 * header, the TLS name and the signature (curl's --connect-to).
	 * NULL: the real address. */
	const char *connect_to;
	const char *ca_file;     /* NULL: the system's CAs */
	long connect_timeout_ms; /* 0: 5000 */
	long timeout_ms;         /* whole call; 0: 30000 */
	/* NULL: "https".  "http" only for a plain local server reached
	 * through connect_to (tests). */
	const char *scheme;
};

/* creds borrowed, must outlive the exapi. */
int exapi_new(struct exapi **out, struct creds_chain *creds,
	      const struct exapi_opts *opts);
void exapi_free(struct exapi *e);

/* Tests: the signing time, the backoff sleeps, and the exapi's own http
 * client (for http_client_set_transport). */
typedef time_t (*exapi_clock_fn)(void *ctx);
typedef void (*exapi_sleep_fn)(void *ctx, unsigned ms);
void exapi_set_clock(struct exapi *e, exapi_clock_fn fn, void *ctx);
void exapi_set_sleep(struct exapi *e, exapi_sleep_fn fn, void *ctx);
struct http_client *exapi_http(struct exapi *e);

struct exapi_request {
	const char *api_id;
	const char *stage;  /* "$default": no stage part in the URL */
	const char *path;   /* "/orders/42", not yet encoded; "/" */
	const char *query;  /* what followed '?', sent as given; NULL */
	const char *method; /* "GET", "POST", ... */
	int sign;           /* the route's authorization is AWS_IAM */
	const struct http_header *headers; /* extra request headers */
	size_t nheaders;
	const void *body;
	size_t body_len;
};

/* Response data as it arrives.  Non-zero stops the transfer. */
typedef int (*exapi_data_cb)(void *ctx, const char *data, size_t len);

struct exapi_response {
	long status;
	struct dbuf status_line; /* "HTTP/1.1 403 Forbidden" */
	struct dbuf headers;     /* "name: value\r\n" lines */
};

void exapi_response_init(struct exapi_response *r);
void exapi_response_free(struct exapi_response *r);

/* 0 once a response arrived, whatever its status (the body went to cb);
 * -errno on a transport failure or timeout, err filled.  Only GET, HEAD,
 * OPTIONS, PUT and DELETE are retried, and only before any body byte
 * reached cb. */
int exapi_invoke(struct exapi *e, const struct exapi_request *req,
		 exapi_data_cb cb, void *ctx, struct exapi_response *resp,
		 struct aws_err *err);

#endif
