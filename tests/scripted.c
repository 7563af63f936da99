#include "tests/scripted.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

void script_reset(struct script *s)
{
	memset(s, 0, sizeof(*s));
}

static void record(struct script *s, const struct http_request *req)
{
	size_t i, off = 0;

	if (s->calls < SCRIPT_MAX)
		snprintf(s->urls[s->calls], sizeof(s->urls[0]), "%s", req->url);
	s->calls++;
	snprintf(s->url, sizeof(s->url), "%s", req->url);
	snprintf(s->method, sizeof(s->method), "%s", req->method);
	snprintf(s->body, sizeof(s->body), "%.*s", (int)req->body_len,
		 req->body_len ? (const char *)req->body : "");
	s->timeout_ms = req->timeout_ms;
	s->headers[0] = '\0';
	/* snprintf returns what it would have written: stop once full. */
	for (i = 0; i < req->nheaders && off < sizeof(s->headers); i++)
		off += (size_t)snprintf(s->headers + off, sizeof(s->headers) - off,
					"%s: %s\n", req->headers[i].name,
					req->headers[i].value);
	if (s->each_has && !strstr(s->headers, s->each_has))
		s->lacking++;
}

static int respond(struct http_response *resp, long status, const char *body,
		   const char *headers)
{
	resp->status = status;
	if (body)
		assert_int_equal(dbuf_adds(&resp->body, body), 0);
	if (headers)
		assert_int_equal(dbuf_adds(&resp->headers, headers), 0);
	return 0;
}

int script_transport(void *ctx, const struct http_request *req,
		     struct http_response *resp)
{
	struct script *s = ctx;
	const struct script_answer *a;
	const struct script_step *st;
	size_t i;

	assert_non_null(s);
	if (!s->answers)
		assert_true(s->calls < s->nsteps);
	record(s, req);
	if (s->answers) {
		for (i = 0; i < s->nanswers; i++) {
			a = &s->answers[i];
			if (!strcmp(a->url, req->url))
				return respond(resp, a->status, a->body,
					       a->headers);
		}
		return respond(resp, 404, "{\"message\":\"test: no answer\"}",
			       "x-amzn-ErrorType: NotFoundException\r\n");
	}
	st = &s->steps[s->calls - 1];
	if (st->transport)
		return st->transport;
	return respond(resp, st->status, st->body, st->headers);
}

time_t script_clock(void *ctx)
{
	(void)ctx;
	return 1440938160;
}

void script_sleep(void *ctx, unsigned ms)
{
	struct script *s = ctx;

	assert_non_null(s);
	if (s->nsleeps < SCRIPT_MAX)
		s->sleeps[s->nsleeps++] = ms;
}
