/* lambda: ListFunctions and synchronous Invoke over Lambda's REST-JSON
 * API (2015-03-31).  svc signs, sends, retries and maps errors; what is
 * Lambda-specific here is the Marker pagination and the headers of an
 * invocation.  See docs/apis-backend.md. */
#include "backend/lambda.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "backend/b64.h"
#include "backend/http.h"

#define LAMBDA_API "/2015-03-31/functions"
/* ListFunctions' largest page. */
#define LAMBDA_PAGE_MAX 50
/* Lambda's synchronous payload limit is 6 MB; the log tail is 4 KB
 * before base64.  The caps only bound a broken peer. */
#define LAMBDA_PAYLOAD_CAP (8u * 1024 * 1024)
#define LAMBDA_LOG_CAP (64u * 1024)

struct lambda {
	struct svc *svc;
};

int lambda_new(struct lambda **out, struct svc *svc)
{
	struct lambda *l;

	*out = NULL;
	if (!svc)
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->svc = svc;
	*out = l;
	return 0;
}

void lambda_free(struct lambda *l)
{
	free(l);
}

/* A failure found here rather than reported by the service. */
static void lambda_local_err(struct aws_err *e, const char *type,
			     const char *msg)
{
	snprintf(e->type, sizeof(e->type), "%s", type);
	snprintf(e->message, sizeof(e->message), "%s", msg);
}

int lambda_list_functions(struct lambda *l, lambda_name_cb cb, void *ctx,
			  struct aws_err *err_out)
{
	struct aws_err local;
	struct aws_err *err = err_out ? err_out : &local;
	struct http_response resp;
	struct svc_call call;
	struct dbuf query;
	json_t *root = NULL, *fns, *fn, *name, *next;
	char *marker = NULL;
	size_t i;
	int rc = 0;

	awserr_clear(err);
	http_response_init(&resp);
	dbuf_init(&query, DBUF_CAP_SMALL);
	for (;;) {
		dbuf_reset(&query);
		rc = dbuf_addf(&query, "MaxItems=%d", LAMBDA_PAGE_MAX);
		if (!rc && marker) {
			rc = dbuf_adds(&query, "&Marker=");
			if (!rc)
				rc = http_pct_encode(&query, marker, 0);
		}
		if (rc)
			goto out;
		memset(&call, 0, sizeof(call));
		call.method = "GET";
		/* The trailing '/' is part of the operation's path. */
		call.path = LAMBDA_API "/";
		call.query = dbuf_str(&query);
		call.idempotent = 1;
		rc = svc_call(l->svc, &call, &resp, err);
		if (rc)
			goto out;
		json_decref(root);
		root = json_loadb(resp.body.ptr, dbuf_len(&resp.body), 0, NULL);
		fns = json_object_get(root, "Functions");
		if (!json_is_object(root) ||
		    (fns && !json_is_null(fns) && !json_is_array(fns))) {
			lambda_local_err(err, "SerializationException",
					 "ListFunctions: the response is not the expected JSON");
			rc = -EIO;
			goto out;
		}
		json_array_foreach(fns, i, fn) {
			name = json_object_get(fn, "FunctionName");
			if (!json_is_string(name))
				continue;
			rc = cb(ctx, json_string_value(name));
			if (rc)
				goto out;
		}
		next = json_object_get(root, "NextMarker");
		if (!json_is_string(next) || !*json_string_value(next))
			break;
		/* A marker that does not move would loop for ever. */
		if (marker && strcmp(marker, json_string_value(next)) == 0) {
			lambda_local_err(err, "SerializationException",
					 "ListFunctions: NextMarker repeats");
			rc = -EIO;
			goto out;
		}
		free(marker);
		marker = strdup(json_string_value(next));
		if (!marker) {
			rc = -ENOMEM;
			goto out;
		}
	}
out:
	json_decref(root);
	free(marker);
	dbuf_free(&query);
	http_response_free(&resp);
	return rc;
}

void lambda_result_init(struct lambda_result *r)
{
	r->status = 0;
	r->function_error[0] = '\0';
	dbuf_init(&r->payload, LAMBDA_PAYLOAD_CAP);
	dbuf_init(&r->log_tail, LAMBDA_LOG_CAP);
}

void lambda_result_free(struct lambda_result *r)
{
	r->status = 0;
	r->function_error[0] = '\0';
	dbuf_free(&r->payload);
	dbuf_free(&r->log_tail);
}

static const struct http_header invoke_headers[] = {
	{ "content-type", "application/json" },
	{ "x-amz-invocation-type", "RequestResponse" },
	{ "x-amz-log-type", "Tail" },
};

int lambda_invoke(struct lambda *l, const char *function,
		  const void *payload, size_t len, struct lambda_result *res,
		  struct aws_err *err_out)
{
	struct aws_err local;
	struct aws_err *err = err_out ? err_out : &local;
	struct http_response resp;
	struct svc_call call;
	struct dbuf path;
	const char *v;
	size_t vlen;
	int rc;

	awserr_clear(err);
	http_response_init(&resp);
	dbuf_init(&path, DBUF_CAP_SMALL);
	res->status = 0;
	res->function_error[0] = '\0';
	dbuf_reset(&res->payload);
	dbuf_reset(&res->log_tail);
	if (!function || !*function || (len && !payload)) {
		lambda_local_err(err, "InvalidParameterValueException",
				 "Invoke: no function name or no payload");
		rc = -EINVAL;
		goto out;
	}
	/* A name, a partial ARN or a full ARN (with ':'), one segment. */
	rc = dbuf_adds(&path, LAMBDA_API "/");
	if (!rc)
		rc = http_pct_encode(&path, function, 0);
	if (!rc)
		rc = dbuf_adds(&path, "/invocations");
	if (rc)
		goto out;
	memset(&call, 0, sizeof(call));
	call.method = "POST";
	call.path = dbuf_str(&path);
	call.headers = invoke_headers;
	call.nheaders = sizeof(invoke_headers) / sizeof(invoke_headers[0]);
	call.body = len ? payload : "";
	call.body_len = len;
	/* The function may have run: never send it twice. */
	call.idempotent = 0;
	rc = svc_call(l->svc, &call, &resp, err);
	res->status = rc ? err->status : resp.status;
	if (rc)
		goto out;

	v = http_response_header(&resp, "X-Amz-Function-Error", &vlen);
	if (v) {
		if (vlen >= sizeof(res->function_error))
			vlen = sizeof(res->function_error) - 1;
		memcpy(res->function_error, v, vlen);
		res->function_error[vlen] = '\0';
	}
	rc = dbuf_add(&res->payload, dbuf_str(&resp.body), dbuf_len(&resp.body));
	if (rc)
		goto out;
	v = http_response_header(&resp, "X-Amz-Log-Result", &vlen);
	if (v && vlen) {
		/* A tail that does not decode is dropped, not a failure:
		 * the invocation itself happened and must not be retried. */
		if (b64_decode(v, vlen, B64_STD, 0, &res->log_tail))
			dbuf_reset(&res->log_tail);
	}
out:
	dbuf_free(&path);
	http_response_free(&resp);
	return rc;
}
