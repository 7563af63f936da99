/* scripted: a network that answers what a test wrote down beforehand, for
 * the cmocka programs that drive a service client (svc, lambda, apigw,
 * exapi) through the real http client.  It keeps what the requests carried,
 * so a test asserts on both sides of an exchange without a server; the
 * clock and sleep below make signatures and backoff schedules exact.
 * Failures end the running test through cmocka's assertions. */
#ifndef DYNFS_SCRIPTED_H
#define DYNFS_SCRIPTED_H

#include <stddef.h>
#include <time.h>

#include "backend/http.h"

/* Steps a script plays, request URLs and sleeps it keeps: no test needs
 * more, and fixed arrays let a test keep a script in a static. */
#define SCRIPT_MAX 8

/* One answer, played in turn: a transport error, or a response. */
struct script_step {
	int transport;       /* non-zero: this -errno, and no response */
	long status;
	const char *body;    /* NULL: empty */
	const char *headers; /* "name: value\r\n" lines; NULL: none */
};

/* One answer for one URL, for a client that walks pages and may ask in
 * any order or more than once (apigw): a sequence would test the order. */
struct script_answer {
	const char *url; /* exact */
	long status;
	const char *body;
	const char *headers;
};

/* The transport's and the sleep's ctx: one a fixture (or a static).  All
 * zero (script_reset) is an empty script, so a test sets only what it
 * uses. */
struct script {
	/* Played in order, one a request; a request past nsteps fails the
	 * test, which checks that nothing was sent twice. */
	struct script_step steps[SCRIPT_MAX];
	int nsteps;
	/* Non-NULL: answer from here by URL instead of playing steps; a URL
	 * not listed gets 404 NotFoundException, as a missing API would. */
	const struct script_answer *answers;
	size_t nanswers;
	/* NULL, or text every request's headers must hold (a signing scope,
	 * say): the record below is the last request's only, so those
	 * without it are counted in lacking. */
	const char *each_has;
	int lacking;

	/* What the requests carried. */
	int calls;
	char urls[SCRIPT_MAX][512]; /* the first SCRIPT_MAX, for page walks */
	char url[512];              /* the rest is the last request's */
	char method[16];
	char headers[4096]; /* "name: value\n" lines */
	char body[1024];
	long timeout_ms;
	/* What script_sleep was asked for, the first SCRIPT_MAX times. */
	unsigned sleeps[SCRIPT_MAX];
	int nsleeps;
};

void script_reset(struct script *s);
/* An http_transport_fn; ctx is a struct script. */
int script_transport(void *ctx, const struct http_request *req,
		     struct http_response *resp);
/* 20150830T123600Z, the time of the AWS SigV4 test suite, at which the
 * tests' botocore signatures were computed; ctx is unused. */
time_t script_clock(void *ctx);
/* Records the delay instead of sleeping, so retries cost no time and the
 * backoff can be checked; ctx is a struct script. */
void script_sleep(void *ctx, unsigned ms);

#endif
