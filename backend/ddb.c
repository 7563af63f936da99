/* ddb: the DynamoDB client over the JSON 1.0 protocol.
 *
 * Every operation is one POST of a JSON document to "/" with the
 * operation named in x-amz-target; svc signs, sends, retries and checks
 * x-amz-crc32.  What is DynamoDB-specific lives here: pagination,
 * parallel scans, the Unprocessed* loops of the batch operations and the
 * meaning of a cancelled transaction.  See docs/dynamodb-client.md. */
#include "backend/ddb.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "backend/dbuf.h"
#include "backend/retry.h"

#define DDB_TARGET_PREFIX "DynamoDB_20120810."
#define DDB_CONTENT_TYPE "application/x-amz-json-1.0"

/* DynamoDB's own request limits. */
#define DDB_BATCH_GET_MAX 100
#define DDB_BATCH_WRITE_MAX 25
#define DDB_LIST_TABLES_MAX 100

/* Resends of Unprocessed* without progress before giving up with
 * -EAGAIN.  The count restarts whenever a response shrinks the backlog,
 * so a busy but advancing table is never abandoned, and the total stays
 * bounded because every reset needs at least one item done. */
#define DDB_BATCH_ATTEMPTS 8

/* One thread per segment: beyond this a caller surely made a mistake. */
#define DDB_MAX_SEGMENTS 1024

/* ddb_wait_table polls at 100 ms, doubling to 2 s: DynamoDB Local is
 * ACTIVE at once, AWS takes seconds, and DescribeTable is cheap. */
#define DDB_WAIT_FIRST_MS 100u
#define DDB_WAIT_MAX_MS 2000u

struct ddb {
	struct svc *svc;
	/* Only the delay formula is used (RETRY_THROTTLE): unprocessed items
	 * are DynamoDB's way of throttling a batch. */
	struct retry_policy policy;
	svc_sleep_fn sleep;
	void *sleep_ctx;
};

static void ddb_nanosleep(void *ctx, unsigned ms)
{
	struct timespec ts;

	(void)ctx;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	/* A signal must not cut a backoff short: resume with what is left. */
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

int ddb_new(struct ddb **out, struct svc *svc)
{
	struct ddb *d;

	*out = NULL;
	if (!svc)
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->svc = svc;
	retry_policy_default(&d->policy);
	d->sleep = ddb_nanosleep;
	*out = d;
	return 0;
}

void ddb_free(struct ddb *d)
{
	free(d);
}

void ddb_set_sleep(struct ddb *d, svc_sleep_fn fn, void *ctx)
{
	d->sleep = fn ? fn : ddb_nanosleep;
	d->sleep_ctx = fn ? ctx : NULL;
}

static void ddb_sleep(struct ddb *d, unsigned ms)
{
	d->sleep(d->sleep_ctx, ms);
}

/* Fill e for a failure found here rather than reported by the service. */
static void ddb_local_err(struct aws_err *e, const char *type,
			  const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void ddb_local_err(struct aws_err *e, const char *type,
			  const char *fmt, ...)
{
	va_list ap;

	snprintf(e->type, sizeof(e->type), "%s", type);
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
}

/* ---- serialization ---------------------------------------------------- */

struct dump_ctx {
	struct dbuf *buf;
	int rc;
};

static int dump_cb(const char *buffer, size_t size, void *data)
{
	struct dump_ctx *dc = data;

	dc->rc = dbuf_add(dc->buf, buffer, size);
	return dc->rc ? -1 : 0;
}

/* Compact JSON into buf.  The dbuf's cap bounds the request size, and
 * dumping through a callback tells a full buffer (-E2BIG), no memory
 * (-ENOMEM) and a value jansson cannot encode (-EINVAL) apart. */
static int ddb_dump(json_t *j, struct dbuf *buf)
{
	struct dump_ctx dc = { buf, 0 };

	if (json_dump_callback(j, dump_cb, &dc, JSON_COMPACT) == 0)
		return 0;
	return dc.rc ? dc.rc : -EINVAL;
}

/* ---- errors ----------------------------------------------------------- */

/* Append to a fixed message, truncating quietly. */
static void msg_add(char *msg, size_t size, size_t *pos, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void msg_add(char *msg, size_t size, size_t *pos, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*pos >= size - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(msg + *pos, size - *pos, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	*pos += (size_t)n < size - *pos ? (size_t)n : size - *pos - 1;
}

/* One cancellation reason seen; returns 1 when it is not "None". */
static int cancel_reason(char *msg, size_t size, size_t *pos, size_t idx,
			 const char *code, const char *text, int *only_cond)
{
	if (!code || !*code || !strcmp(code, "None"))
		return 0;
	if (strcmp(code, "ConditionalCheckFailed"))
		*only_cond = 0;
	msg_add(msg, size, pos, "; item %zu %s", idx, code);
	if (text && *text)
		msg_add(msg, size, pos, ": %s", text);
	return 1;
}

/* A TransactionCanceledException: -ESTALE when every reason that is not
 * "None" is a failed condition (the caller lost a race, like a failed
 * conditional put), else -ECANCELED.  err->message becomes a summary
 * listing only the items that failed, so it stays short for 100 items.
 * The reasons come from the body's CancellationReasons; when the body is
 * missing they are read from the service's message, which lists them as
 * "... reasons [ConditionalCheckFailed, None]". */
static int ddb_cancelled(const struct http_response *resp, struct aws_err *e)
{
	char orig[sizeof(e->message)];
	char msg[sizeof(e->message)];
	json_t *body = NULL, *reasons, *r;
	size_t pos = 0, idx, total = 0;
	int failed = 0, only_cond = 1;
	const char *lb, *rb, *p;

	snprintf(orig, sizeof(orig), "%s", e->message);
	msg[0] = '\0';
	if (resp && dbuf_len(&resp->body))
		body = json_loadb(resp->body.ptr, dbuf_len(&resp->body),
				  JSON_ALLOW_NUL, NULL);
	reasons = json_object_get(body, "CancellationReasons");
	if (json_is_array(reasons)) {
		json_array_foreach(reasons, idx, r) {
			failed += cancel_reason(
				msg, sizeof(msg), &pos, idx,
				json_string_value(json_object_get(r, "Code")),
				json_string_value(json_object_get(r, "Message")),
				&only_cond);
		}
		total = json_array_size(reasons);
	} else if ((lb = strrchr(orig, '[')) && (rb = strchr(lb, ']'))) {
		/* "[A, B, None]": split on commas, trimming blanks. */
		for (p = lb + 1, idx = 0; p < rb; idx++) {
			char code[64];
			const char *end = memchr(p, ',', (size_t)(rb - p));
			size_t n;

			if (!end)
				end = rb;
			while (p < end && *p == ' ')
				p++;
			n = (size_t)(end - p);
			while (n && p[n - 1] == ' ')
				n--;
			if (n >= sizeof(code))
				n = sizeof(code) - 1;
			memcpy(code, p, n);
			code[n] = '\0';
			failed += cancel_reason(msg, sizeof(msg), &pos, idx,
						code, NULL, &only_cond);
			p = end + 1;
		}
		total = idx;
	}
	json_decref(body);
	if (!failed) {
		/* Nothing to summarize: keep the service's words. */
		snprintf(e->message, sizeof(e->message), "%s",
			 orig[0] ? orig : "Transaction cancelled");
		return -ECANCELED;
	}
	pos = 0;
	e->message[0] = '\0';
	msg_add(e->message, sizeof(e->message), &pos,
		"Transaction cancelled (%zu item%s)", total,
		total == 1 ? "" : "s");
	msg_add(e->message, sizeof(e->message), &pos, "%s", msg);
	return only_cond ? -ESTALE : -ECANCELED;
}

/* awserr is the one mapping from an error to an errno; the only thing
 * it cannot know is what a cancelled transaction's reasons mean, which
 * needs the body (ddb_cancelled).  svc leaves the last response in resp
 * on failure. */
static int ddb_map_error(int rc, const struct http_response *resp,
			 struct aws_err *e)
{
	if (!strcmp(e->type, "TransactionCanceledException"))
		return ddb_cancelled(resp, e);
	return rc;
}

/* ---- one call --------------------------------------------------------- */

/* POST one operation.  e is never NULL here: the public functions keep a
 * local aws_err so the mapping above can read it even when their caller
 * passed NULL.  *out (if out) gets the response object. */
static int ddb_exec(struct ddb *d, const char *op, json_t *req, json_t **out,
		    struct aws_err *e)
{
	char target[96];
	struct http_header hdr[2];
	struct http_response resp;
	struct svc_call call;
	struct dbuf body;
	json_error_t jerr;
	json_t *j = NULL;
	int rc, n;

	if (out)
		*out = NULL;
	http_response_init(&resp);
	dbuf_init(&body, DBUF_CAP_BODY);
	n = snprintf(target, sizeof(target), DDB_TARGET_PREFIX "%s", op);
	if (n < 0 || (size_t)n >= sizeof(target)) {
		ddb_local_err(e, "InvalidOperation", "operation name too long");
		rc = -EINVAL;
		goto out;
	}
	rc = ddb_dump(req, &body);
	if (rc) {
		ddb_local_err(e, "SerializationException",
			      "cannot encode the %s request: %s", op,
			      strerror(-rc));
		goto out;
	}
	hdr[0].name = "content-type";
	hdr[0].value = DDB_CONTENT_TYPE;
	hdr[1].name = "x-amz-target";
	hdr[1].value = target;
	memset(&call, 0, sizeof(call));
	call.method = "POST";
	call.path = "/";
	call.headers = hdr;
	call.nheaders = 2;
	call.body = dbuf_str(&body);
	call.body_len = dbuf_len(&body);
	/* AWS SDKs retry every DynamoDB operation: writes are either
	 * idempotent by key or carry a ClientRequestToken. */
	call.idempotent = 1;
	call.resource = json_string_value(json_object_get(req, "TableName"));
	if (!call.resource && json_object_get(req, "RequestItems"))
		call.resource = json_object_iter_key(
			json_object_iter(json_object_get(req, "RequestItems")));
	rc = svc_call(d->svc, &call, &resp, e);
	if (rc) {
		rc = ddb_map_error(rc, &resp, e);
		goto out;
	}
	/* No JSON_DECODE_INT_AS_REAL: numbers in items are strings anyway,
	 * and counts stay integers.  JSON_ALLOW_NUL: another writer may have
	 * stored "\u0000" in a string, and one such item must not make a
	 * whole page unreadable. */
	if (dbuf_len(&resp.body) == 0)
		j = json_object();
	else
		j = json_loadb(resp.body.ptr, dbuf_len(&resp.body),
			       JSON_ALLOW_NUL, &jerr);
	if (!j && dbuf_len(&resp.body) == 0) {
		rc = -ENOMEM;
		goto out;
	}
	if (!j || !json_is_object(j)) {
		e->status = resp.status;
		ddb_local_err(e, "SerializationException",
			      "%s: malformed response: %s", op,
			      j ? "not a JSON object" : jerr.text);
		rc = -EIO;
		goto out;
	}
	if (out) {
		*out = j;
		j = NULL;
	}
out:
	json_decref(j);
	dbuf_free(&body);
	http_response_free(&resp);
	return rc;
}

/* Copy the local error out for the caller on failure. */
static int ddb_done(int rc, const struct aws_err *local, struct aws_err *err)
{
	if (rc && err)
		*err = *local;
	return rc;
}

/* json_object_set_new that reports failure as -ENOMEM (it also frees v). */
static int set_new(json_t *obj, const char *key, json_t *v)
{
	return json_object_set_new(obj, key, v) ? -ENOMEM : 0;
}

/* ---- tables ----------------------------------------------------------- */

int ddb_list_tables(struct ddb *d, int limit, ddb_name_cb cb, void *ctx,
		    struct aws_err *err)
{
	struct aws_err e;
	json_t *req = NULL, *resp = NULL, *names, *name, *last;
	size_t i;
	int rc;

	awserr_clear(&e);
	if (!cb) {
		ddb_local_err(&e, "ValidationException", "no callback");
		rc = -EINVAL;
		goto out;
	}
	req = json_object();
	if (!req) {
		rc = -ENOMEM;
		goto out;
	}
	if (limit > DDB_LIST_TABLES_MAX)
		limit = DDB_LIST_TABLES_MAX;
	if (limit > 0) {
		rc = set_new(req, "Limit", json_integer(limit));
		if (rc)
			goto out;
	}
	for (;;) {
		rc = ddb_exec(d, "ListTables", req, &resp, &e);
		if (rc)
			goto out;
		names = json_object_get(resp, "TableNames");
		if (names && !json_is_array(names)) {
			ddb_local_err(&e, "SerializationException",
				      "ListTables: TableNames is not a list");
			rc = -EIO;
			goto out;
		}
		json_array_foreach(names, i, name) {
			if (!json_is_string(name))
				continue;
			rc = cb(ctx, json_string_value(name));
			if (rc)
				goto out;
		}
		last = json_object_get(resp, "LastEvaluatedTableName");
		/* With a Limit only the first page is wanted. */
		if (limit > 0 || !json_is_string(last))
			break;
		rc = json_object_set(req, "ExclusiveStartTableName", last)
			     ? -ENOMEM : 0;
		if (rc)
			goto out;
		json_decref(resp);
		resp = NULL;
	}
out:
	json_decref(resp);
	json_decref(req);
	return ddb_done(rc, &e, err);
}

/* An operation whose request is {"TableName": table} and whose result is
 * the object under key (NULL: none wanted). */
static int ddb_table_op(struct ddb *d, const char *op, const char *table,
			const char *key, json_t **obj_out, struct aws_err *e)
{
	json_t *req = NULL, *resp = NULL, *obj;
	int rc;

	if (obj_out)
		*obj_out = NULL;
	if (!table) {
		ddb_local_err(e, "ValidationException", "no table name");
		rc = -EINVAL;
		goto out;
	}
	req = json_pack("{s:s}", "TableName", table);
	if (!req) {
		rc = -ENOMEM;
		goto out;
	}
	rc = ddb_exec(d, op, req, &resp, e);
	if (rc || !key)
		goto out;
	obj = json_object_get(resp, key);
	if (!json_is_object(obj)) {
		ddb_local_err(e, "SerializationException", "%s: no %s", op,
			      key);
		rc = -EIO;
		goto out;
	}
	if (obj_out)
		*obj_out = json_incref(obj);
out:
	json_decref(resp);
	json_decref(req);
	return rc;
}

int ddb_describe_table(struct ddb *d, const char *table, json_t **table_out,
		       struct aws_err *err)
{
	struct aws_err e;
	int rc;

	awserr_clear(&e);
	rc = ddb_table_op(d, "DescribeTable", table, "Table", table_out, &e);
	return ddb_done(rc, &e, err);
}

int ddb_create_table(struct ddb *d, json_t *request, json_t **table_out,
		     struct aws_err *err)
{
	struct aws_err e;
	json_t *resp = NULL, *desc;
	int rc;

	awserr_clear(&e);
	if (table_out)
		*table_out = NULL;
	if (!json_is_object(request)) {
		ddb_local_err(&e, "ValidationException", "no request");
		rc = -EINVAL;
		goto out;
	}
	rc = ddb_exec(d, "CreateTable", request, &resp, &e);
	if (rc || !table_out)
		goto out;
	desc = json_object_get(resp, "TableDescription");
	if (!json_is_object(desc)) {
		ddb_local_err(&e, "SerializationException",
			      "CreateTable: no TableDescription");
		rc = -EIO;
		goto out;
	}
	*table_out = json_incref(desc);
out:
	json_decref(resp);
	return ddb_done(rc, &e, err);
}

int ddb_delete_table(struct ddb *d, const char *table, struct aws_err *err)
{
	struct aws_err e;
	int rc;

	awserr_clear(&e);
	rc = ddb_table_op(d, "DeleteTable", table, NULL, NULL, &e);
	return ddb_done(rc, &e, err);
}

static unsigned long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000u +
	       (unsigned long long)ts.tv_nsec / 1000000u;
}

int ddb_wait_table(struct ddb *d, const char *table, int want_gone,
		   unsigned timeout_ms, struct aws_err *err)
{
	unsigned long long start = mono_ms(), slept = 0, spent;
	unsigned delay = DDB_WAIT_FIRST_MS;
	struct aws_err e;
	json_t *t = NULL;
	const char *status;
	int rc;

	awserr_clear(&e);
	for (;;) {
		json_decref(t);
		t = NULL;
		awserr_clear(&e);
		rc = ddb_table_op(d, "DescribeTable", table, "Table", &t, &e);
		if (rc == -ENOENT && want_gone) {
			rc = 0;
			break;
		}
		/* Like the SDKs' TableExists waiter, a table not found yet
		 * is waited for: a CreateTable may not be visible at once. */
		if (rc && rc != -ENOENT)
			break;
		if (!rc) {
			status = json_string_value(
				json_object_get(t, "TableStatus"));
			if (!want_gone && status && !strcmp(status, "ACTIVE"))
				break;
			/* A table being deleted will never become ACTIVE. */
			if (!want_gone && status &&
			    !strcmp(status, "DELETING")) {
				ddb_local_err(&e, "ResourceNotFoundException",
					      "table %s is being deleted",
					      table);
				rc = -ENOENT;
				break;
			}
		}
		/* Time is the larger of the clock and the sum of the sleeps,
		 * so an injected sleep that does not sleep still ends. */
		spent = mono_ms() - start;
		if (slept > spent)
			spent = slept;
		if (spent >= timeout_ms) {
			ddb_local_err(&e, "Timeout",
				      "table %s not %s after %u ms", table,
				      want_gone ? "gone" : "ACTIVE",
				      timeout_ms);
			rc = -ETIMEDOUT;
			break;
		}
		if (delay > timeout_ms - spent)
			delay = (unsigned)(timeout_ms - spent);
		ddb_sleep(d, delay);
		slept += delay;
		delay = delay * 2 > DDB_WAIT_MAX_MS ? DDB_WAIT_MAX_MS : delay * 2;
	}
	json_decref(t);
	return ddb_done(rc, &e, err);
}

/* ---- items ------------------------------------------------------------ */

/* Add a condition's expression, names and values to req.  Empty name or
 * value maps are left out: DynamoDB rejects them. */
static int add_cond(json_t *req, const struct ddb_cond *cond)
{
	int rc;

	if (!cond || !cond->expr)
		return 0;
	rc = set_new(req, "ConditionExpression", json_string(cond->expr));
	if (!rc && json_object_size(cond->names))
		rc = json_object_set(req, "ExpressionAttributeNames",
				     cond->names) ? -ENOMEM : 0;
	if (!rc && json_object_size(cond->values))
		rc = json_object_set(req, "ExpressionAttributeValues",
				     cond->values) ? -ENOMEM : 0;
	return rc;
}

int ddb_get_item(struct ddb *d, const char *table, json_t *key,
		 int consistent, json_t **item_out, struct aws_err *err)
{
	struct aws_err e;
	json_t *req = NULL, *resp = NULL, *item;
	int rc;

	awserr_clear(&e);
	if (item_out)
		*item_out = NULL;
	if (!table || !json_is_object(key)) {
		ddb_local_err(&e, "ValidationException", "no table or key");
		rc = -EINVAL;
		goto out;
	}
	req = json_pack("{s:s, s:O, s:b}", "TableName", table, "Key", key,
			"ConsistentRead", consistent ? 1 : 0);
	if (!req) {
		rc = -ENOMEM;
		goto out;
	}
	rc = ddb_exec(d, "GetItem", req, &resp, &e);
	if (rc)
		goto out;
	item = json_object_get(resp, "Item");
	if (!json_is_object(item)) {
		ddb_local_err(&e, "ResourceNotFoundException",
			      "no such item in %s", table);
		rc = -ENOENT;
		goto out;
	}
	if (item_out)
		*item_out = json_incref(item);
out:
	json_decref(resp);
	json_decref(req);
	return ddb_done(rc, &e, err);
}

/* PutItem and DeleteItem: {"TableName", field: value, condition...}. */
static int ddb_write_item(struct ddb *d, const char *op, const char *table,
			  const char *field, json_t *value,
			  const struct ddb_cond *cond, struct aws_err *err)
{
	struct aws_err e;
	json_t *req = NULL;
	int rc;

	awserr_clear(&e);
	if (!table || !json_is_object(value)) {
		ddb_local_err(&e, "ValidationException", "no table or %s",
			      field);
		rc = -EINVAL;
		goto out;
	}
	req = json_pack("{s:s, s:O}", "TableName", table, field, value);
	if (!req) {
		rc = -ENOMEM;
		goto out;
	}
	rc = add_cond(req, cond);
	if (rc)
		goto out;
	rc = ddb_exec(d, op, req, NULL, &e);
out:
	json_decref(req);
	return ddb_done(rc, &e, err);
}

int ddb_put_item(struct ddb *d, const char *table, json_t *item,
		 const struct ddb_cond *cond, struct aws_err *err)
{
	return ddb_write_item(d, "PutItem", table, "Item", item, cond, err);
}

int ddb_delete_item(struct ddb *d, const char *table, json_t *key,
		    const struct ddb_cond *cond, struct aws_err *err)
{
	return ddb_write_item(d, "DeleteItem", table, "Key", key, cond, err);
}

int ddb_update_item(struct ddb *d, json_t *request, json_t **attrs_out,
		    struct aws_err *err)
{
	struct aws_err e;
	json_t *resp = NULL, *attrs;
	int rc;

	awserr_clear(&e);
	if (attrs_out)
		*attrs_out = NULL;
	if (!json_is_object(request)) {
		ddb_local_err(&e, "ValidationException", "no request");
		rc = -EINVAL;
		goto out;
	}
	rc = ddb_exec(d, "UpdateItem", request, &resp, &e);
	if (rc)
		goto out;
	attrs = json_object_get(resp, "Attributes");
	if (attrs_out && json_is_object(attrs))
		*attrs_out = json_incref(attrs);
out:
	json_decref(resp);
	return ddb_done(rc, &e, err);
}

/* ---- Query and Scan --------------------------------------------------- */

struct scan_shared;
static int scan_stopped(struct scan_shared *sh);

/* Follow LastEvaluatedKey from request (left untouched: a shallow copy
 * carries ExclusiveStartKey).  sh, for a segment of a parallel scan, is
 * asked before each page whether another segment failed, so all end
 * early; such a stop is not an error of this segment (returns 0). */
static int ddb_paginate(struct ddb *d, const char *op, json_t *request,
			ddb_page_cb cb, void *ctx, struct scan_shared *sh,
			struct aws_err *e)
{
	json_t *req, *resp = NULL, *items, *lek, *empty = NULL;
	int rc = 0;

	req = json_copy(request);
	if (!req) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		if (sh && scan_stopped(sh))
			break;
		rc = ddb_exec(d, op, req, &resp, e);
		if (rc)
			break;
		items = json_object_get(resp, "Items");
		if (!items) {
			/* Select=COUNT pages carry no Items. */
			if (!empty)
				empty = json_array();
			items = empty;
			if (!items) {
				rc = -ENOMEM;
				break;
			}
		}
		if (!json_is_array(items)) {
			ddb_local_err(e, "SerializationException",
				      "%s: Items is not a list", op);
			rc = -EIO;
			break;
		}
		rc = cb(ctx, items);
		if (rc)
			break;
		lek = json_object_get(resp, "LastEvaluatedKey");
		if (!json_object_size(lek))
			break;
		if (json_object_set(req, "ExclusiveStartKey", lek)) {
			rc = -ENOMEM;
			break;
		}
		json_decref(resp);
		resp = NULL;
	}
out:
	json_decref(resp);
	json_decref(empty);
	json_decref(req);
	return rc;
}

int ddb_query(struct ddb *d, json_t *request, ddb_page_cb cb, void *ctx,
	      struct aws_err *err)
{
	struct aws_err e;
	int rc;

	awserr_clear(&e);
	if (!json_is_object(request) || !cb) {
		ddb_local_err(&e, "ValidationException", "no request");
		rc = -EINVAL;
	} else {
		rc = ddb_paginate(d, "Query", request, cb, ctx, NULL, &e);
	}
	return ddb_done(rc, &e, err);
}

/* A parallel scan.  Lock order: scan_shared.lock is the only lock of
 * the scan and is outermost.  It is held around the caller's cb (so cb
 * may call into ddb/svc, whose locks then nest inside it, but must not
 * wait for another segment), while the first failure is recorded, and
 * to read the stop flag between pages; it is never held across a
 * request of our own, so segments only contend for it briefly. */
struct scan_shared {
	struct ddb *d;
	ddb_page_cb cb;
	void *ctx;
	pthread_mutex_t lock;
	int stop;           /* under lock: set by the first failure */
	int rc;             /* under lock: the first failure */
	struct aws_err err; /* under lock: its error */
};

struct scan_seg {
	struct scan_shared *sh;
	json_t *req;
	pthread_t tid;
	int started;
};

static void scan_fail(struct scan_shared *sh, int rc,
		      const struct aws_err *e)
{
	pthread_mutex_lock(&sh->lock);
	if (!sh->rc) {
		sh->rc = rc;
		if (e)
			sh->err = *e;
	}
	sh->stop = 1;
	pthread_mutex_unlock(&sh->lock);
}

static int scan_stopped(struct scan_shared *sh)
{
	int stop;

	pthread_mutex_lock(&sh->lock);
	stop = sh->stop;
	pthread_mutex_unlock(&sh->lock);
	return stop;
}

static int scan_seg_cb(void *ctx, json_t *items)
{
	struct scan_seg *seg = ctx;
	struct scan_shared *sh = seg->sh;
	int rc = 0;

	pthread_mutex_lock(&sh->lock);
	/* Once something failed, no more pages reach the caller. */
	if (!sh->stop)
		rc = sh->cb(sh->ctx, items);
	if (rc && !sh->rc) {
		sh->rc = rc;
		sh->stop = 1;
	}
	pthread_mutex_unlock(&sh->lock);
	/* Any non-zero ends this segment; the value is already recorded. */
	return rc ? 1 : 0;
}

static void *scan_seg_main(void *arg)
{
	struct scan_seg *seg = arg;
	struct scan_shared *sh = seg->sh;
	struct aws_err e;
	int rc;

	awserr_clear(&e);
	rc = ddb_paginate(sh->d, "Scan", seg->req, scan_seg_cb, seg, sh, &e);
	/* rc 1 is a stop asked by a callback, recorded in scan_seg_cb. */
	if (rc && rc != 1)
		scan_fail(sh, rc, &e);
	return NULL;
}

static int ddb_scan_parallel(struct ddb *d, json_t *request, int segments,
			     ddb_page_cb cb, void *ctx, struct aws_err *e)
{
	struct scan_shared sh;
	struct scan_seg *segs;
	int i, rc, locked = 0;

	memset(&sh, 0, sizeof(sh));
	segs = calloc((size_t)segments, sizeof(*segs));
	if (!segs) {
		rc = -ENOMEM;
		goto out;
	}
	sh.d = d;
	sh.cb = cb;
	sh.ctx = ctx;
	awserr_clear(&sh.err);
	rc = pthread_mutex_init(&sh.lock, NULL);
	if (rc) {
		rc = -rc;
		goto out;
	}
	locked = 1;
	/* Each segment gets a deep copy: jansson values are not safe to
	 * share between threads, not even for reading while refcounted. */
	for (i = 0; i < segments; i++) {
		segs[i].sh = &sh;
		segs[i].req = json_deep_copy(request);
		if (!segs[i].req ||
		    set_new(segs[i].req, "Segment", json_integer(i)) ||
		    set_new(segs[i].req, "TotalSegments",
			    json_integer(segments))) {
			rc = -ENOMEM;
			goto out;
		}
	}
	for (i = 0; i < segments; i++) {
		rc = pthread_create(&segs[i].tid, NULL, scan_seg_main,
				    &segs[i]);
		if (rc) {
			/* Stop the segments already running, then wait. */
			ddb_local_err(e, "ThreadError",
				      "cannot start scan segment %d: %s", i,
				      strerror(rc));
			scan_fail(&sh, -rc, e);
			rc = 0;
			break;
		}
		segs[i].started = 1;
	}
	for (i = 0; i < segments; i++)
		if (segs[i].started)
			pthread_join(segs[i].tid, NULL);
	rc = sh.rc;
	if (rc)
		*e = sh.err;
out:
	for (i = 0; segs && i < segments; i++)
		json_decref(segs[i].req);
	free(segs);
	if (locked)
		pthread_mutex_destroy(&sh.lock);
	return rc;
}

int ddb_scan(struct ddb *d, json_t *request, int segments, ddb_page_cb cb,
	     void *ctx, struct aws_err *err)
{
	struct aws_err e;
	int rc;

	awserr_clear(&e);
	if (!json_is_object(request) || !cb || segments > DDB_MAX_SEGMENTS) {
		ddb_local_err(&e, "ValidationException",
			      "bad scan request or segment count");
		rc = -EINVAL;
	} else if (segments > 1) {
		rc = ddb_scan_parallel(d, request, segments, cb, ctx, &e);
	} else {
		rc = ddb_paginate(d, "Scan", request, cb, ctx, NULL, &e);
	}
	return ddb_done(rc, &e, err);
}

/* ---- batches ---------------------------------------------------------- */

/* How many requests a RequestItems / Unprocessed* map holds: per table
 * either an array (BatchWriteItem) or {"Keys": [...]} (BatchGetItem). */
static size_t batch_count(json_t *map)
{
	const char *table;
	json_t *v;
	size_t n = 0;

	json_object_foreach(map, table, v) {
		if (json_is_array(v))
			n += json_array_size(v);
		else
			n += json_array_size(json_object_get(v, "Keys"));
	}
	return n;
}

typedef int (*batch_resp_fn)(void *ctx, json_t *resp);

/* Send request_items, then resend what comes back under unproc_field
 * with backoff until nothing is left.  on_resp (may be NULL) sees every
 * response; non-zero from it stops the loop with that value. */
static int ddb_batch_run(struct ddb *d, const char *op, json_t *request_items,
			 const char *unproc_field, batch_resp_fn on_resp,
			 void *ctx, struct aws_err *e)
{
	json_t *req, *resp = NULL, *un;
	size_t sent, left;
	int rc, retry = 0;

	req = json_pack("{s:O}", "RequestItems", request_items);
	if (!req) {
		rc = -ENOMEM;
		goto out;
	}
	sent = batch_count(request_items);
	for (;;) {
		rc = ddb_exec(d, op, req, &resp, e);
		if (rc)
			break;
		if (on_resp) {
			rc = on_resp(ctx, resp);
			if (rc)
				break;
		}
		un = json_object_get(resp, unproc_field);
		left = batch_count(un);
		if (!left)
			break;
		if (left < sent)
			retry = 0;
		if (++retry >= DDB_BATCH_ATTEMPTS) {
			ddb_local_err(e, unproc_field,
				      "%s: %zu request%s still unprocessed "
				      "after %d attempts",
				      op, left, left == 1 ? "" : "s", retry);
			rc = -EAGAIN;
			break;
		}
		ddb_sleep(d, retry_delay_ms(&d->policy, RETRY_THROTTLE, retry));
		if (json_object_set(req, "RequestItems", un)) {
			rc = -ENOMEM;
			break;
		}
		sent = left;
		json_decref(resp);
		resp = NULL;
	}
out:
	json_decref(resp);
	json_decref(req);
	return rc;
}

struct batch_get_ctx {
	ddb_item_cb cb;
	void *ctx;
};

static int batch_get_resp(void *ctx, json_t *resp)
{
	struct batch_get_ctx *bg = ctx;
	json_t *items, *item;
	const char *table;
	size_t i;
	int rc;

	json_object_foreach(json_object_get(resp, "Responses"), table, items) {
		json_array_foreach(items, i, item) {
			rc = bg->cb(bg->ctx, item);
			if (rc)
				return rc;
		}
	}
	return 0;
}

int ddb_batch_get(struct ddb *d, const char *table, json_t *keys,
		  int consistent, ddb_item_cb cb, void *ctx,
		  struct aws_err *err)
{
	struct batch_get_ctx bg = { cb, ctx };
	struct aws_err e;
	json_t *items = NULL, *chunk;
	size_t i, n;
	int rc = 0;

	awserr_clear(&e);
	if (!table || !json_is_array(keys) || !cb) {
		ddb_local_err(&e, "ValidationException", "no table or keys");
		rc = -EINVAL;
		goto out;
	}
	n = json_array_size(keys);
	for (i = 0; i < n; i += DDB_BATCH_GET_MAX) {
		size_t j, end = i + DDB_BATCH_GET_MAX < n ? i + DDB_BATCH_GET_MAX
							  : n;

		chunk = json_array();
		items = json_pack("{s:{s:o, s:b}}", table, "Keys", chunk,
				  "ConsistentRead", consistent ? 1 : 0);
		if (!items) {
			rc = -ENOMEM;
			goto out;
		}
		for (j = i; j < end; j++) {
			if (json_array_append(chunk,
					      json_array_get(keys, j))) {
				rc = -ENOMEM;
				goto out;
			}
		}
		rc = ddb_batch_run(d, "BatchGetItem", items, "UnprocessedKeys",
				   batch_get_resp, &bg, &e);
		if (rc)
			goto out;
		json_decref(items);
		items = NULL;
	}
out:
	json_decref(items);
	return ddb_done(rc, &e, err);
}

int ddb_batch_write(struct ddb *d, json_t *request_items,
		    struct aws_err *err)
{
	struct aws_err e;
	json_t *chunk = NULL, *list, *arr, *r;
	const char *table;
	size_t i, count = 0;
	int rc = 0;

	awserr_clear(&e);
	if (!json_is_object(request_items)) {
		ddb_local_err(&e, "ValidationException", "no request items");
		rc = -EINVAL;
		goto out;
	}
	json_object_foreach(request_items, table, list) {
		if (!json_is_array(list)) {
			ddb_local_err(&e, "ValidationException",
				      "requests for %s are not a list", table);
			rc = -EINVAL;
			goto out;
		}
	}
	/* Fill chunks of 25 across tables, in order. */
	json_object_foreach(request_items, table, list) {
		json_array_foreach(list, i, r) {
			if (!chunk && !(chunk = json_object())) {
				rc = -ENOMEM;
				goto out;
			}
			arr = json_object_get(chunk, table);
			if (!arr) {
				arr = json_array();
				if (set_new(chunk, table, arr)) {
					rc = -ENOMEM;
					goto out;
				}
			}
			if (json_array_append(arr, r)) {
				rc = -ENOMEM;
				goto out;
			}
			if (++count == DDB_BATCH_WRITE_MAX) {
				rc = ddb_batch_run(d, "BatchWriteItem", chunk,
						   "UnprocessedItems", NULL,
						   NULL, &e);
				if (rc)
					goto out;
				json_decref(chunk);
				chunk = NULL;
				count = 0;
			}
		}
	}
	if (count)
		rc = ddb_batch_run(d, "BatchWriteItem", chunk,
				   "UnprocessedItems", NULL, NULL, &e);
out:
	json_decref(chunk);
	return ddb_done(rc, &e, err);
}

/* ---- transactions ----------------------------------------------------- */

/* A version-4 UUID as the SDKs send when the caller gives no token, so
 * that svc's retries of a TransactWriteItems cannot apply it twice. */
static int make_token(char out[37])
{
	unsigned char r[16];
	size_t got = 0;
	ssize_t n;
	int i, pos = 0;

	while (got < sizeof(r)) {
		n = getrandom(r + got, sizeof(r) - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)n;
	}
	r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
	r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[pos++] = '-';
		snprintf(out + pos, 3, "%02x", r[i]);
		pos += 2;
	}
	out[pos] = '\0';
	return 0;
}

int ddb_transact_write(struct ddb *d, json_t *transact_items,
		       const char *client_token, struct aws_err *err)
{
	char token[37];
	struct aws_err e;
	json_t *req = NULL;
	int rc;

	awserr_clear(&e);
	if (!json_is_array(transact_items)) {
		ddb_local_err(&e, "ValidationException", "no TransactItems");
		rc = -EINVAL;
		goto out;
	}
	if (!client_token) {
		rc = make_token(token);
		if (rc) {
			ddb_local_err(&e, "ClientError",
				      "no random token: %s", strerror(-rc));
			goto out;
		}
		client_token = token;
	}
	req = json_pack("{s:O, s:s}", "TransactItems", transact_items,
			"ClientRequestToken", client_token);
	if (!req) {
		rc = -ENOMEM;
		goto out;
	}
	rc = ddb_exec(d, "TransactWriteItems", req, NULL, &e);
out:
	json_decref(req);
	return ddb_done(rc, &e, err);
}

int ddb_transact_get(struct ddb *d, json_t *transact_items,
		     json_t **responses_out, struct aws_err *err)
{
	struct aws_err e;
	json_t *req = NULL, *resp = NULL, *r;
	int rc;

	awserr_clear(&e);
	if (responses_out)
		*responses_out = NULL;
	if (!json_is_array(transact_items)) {
		ddb_local_err(&e, "ValidationException", "no TransactItems");
		rc = -EINVAL;
		goto out;
	}
	req = json_pack("{s:O}", "TransactItems", transact_items);
	if (!req) {
		rc = -ENOMEM;
		goto out;
	}
	rc = ddb_exec(d, "TransactGetItems", req, &resp, &e);
	if (rc)
		goto out;
	r = json_object_get(resp, "Responses");
	if (!json_is_array(r)) {
		ddb_local_err(&e, "SerializationException",
			      "TransactGetItems: no Responses");
		rc = -EIO;
		goto out;
	}
	if (responses_out)
		*responses_out = json_incref(r);
out:
	json_decref(resp);
	json_decref(req);
	return ddb_done(rc, &e, err);
}

int ddb_call(struct ddb *d, const char *operation, json_t *request,
	     json_t **response_out, struct aws_err *err)
{
	struct aws_err e;
	int rc;

	awserr_clear(&e);
	if (!operation || !json_is_object(request)) {
		ddb_local_err(&e, "ValidationException", "no operation");
		rc = -EINVAL;
		if (response_out)
			*response_out = NULL;
	} else {
		rc = ddb_exec(d, operation, request, response_out, &e);
	}
	return ddb_done(rc, &e, err);
}
