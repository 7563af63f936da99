/* ddb: the DynamoDB client, JSON 1.0 protocol, on svc.
 *
 * Items, keys and expression values are jansson values in DynamoDB's typed
 * JSON ({"pk": {"S": "a"}, "n": {"N": "12.50"}}).  Numbers are strings in
 * that form and no function here ever parses them, so every digit of a
 * 38-digit number survives.  json_t arguments are borrowed; *_out values
 * are new references the caller must json_decref().  Every call returns 0
 * or -errno and, when err is not NULL, fills it on failure. */
#ifndef DYNFS_DDB_H
#define DYNFS_DDB_H

#include <jansson.h>

#include "backend/awserr.h"
#include "backend/svc.h"

struct ddb;

/* svc is borrowed (service "dynamodb", flag SVC_CHECK_CRC32). */
int ddb_new(struct ddb **out, struct svc *svc);
void ddb_free(struct ddb *d);
/* ddb's own waits (the Unprocessed* backoff of the batch calls and
 * ddb_wait_table's polling) sleep through fn; NULL restores nanosleep.
 * svc_set_sleep covers only svc's retries, so tests set both. */
void ddb_set_sleep(struct ddb *d, svc_sleep_fn fn, void *ctx);

/* A condition for writes: expr NULL means unconditional.  names and values
 * are ExpressionAttributeNames / ExpressionAttributeValues, or NULL. */
struct ddb_cond {
	const char *expr;
	json_t *names;
	json_t *values;
};

/* Per-name callback; return non-zero to stop (that value is returned). */
typedef int (*ddb_name_cb)(void *ctx, const char *name);
/* Per-page callback with the page's Items array (borrowed). */
typedef int (*ddb_page_cb)(void *ctx, json_t *items);
/* Per-item callback (borrowed item). */
typedef int (*ddb_item_cb)(void *ctx, json_t *item);

/* All tables, following LastEvaluatedTableName.  limit 0: no Limit sent;
 * with limit > 0, only the first page is read (the pre-mount check). */
int ddb_list_tables(struct ddb *d, int limit, ddb_name_cb cb, void *ctx,
		    struct aws_err *err);
/* *table_out is the response's "Table" object. */
int ddb_describe_table(struct ddb *d, const char *table, json_t **table_out,
		       struct aws_err *err);
/* request is a full CreateTable request; *table_out the TableDescription
 * (table_out may be NULL). */
int ddb_create_table(struct ddb *d, json_t *request, json_t **table_out,
		     struct aws_err *err);
int ddb_delete_table(struct ddb *d, const char *table, struct aws_err *err);
/* Poll DescribeTable until TableStatus is ACTIVE (or the table is gone
 * when want_gone); bounded by timeout_ms. */
int ddb_wait_table(struct ddb *d, const char *table, int want_gone,
		   unsigned timeout_ms, struct aws_err *err);

/* -ENOENT when there is no such item. */
int ddb_get_item(struct ddb *d, const char *table, json_t *key,
		 int consistent, json_t **item_out, struct aws_err *err);
/* A failed condition is -ESTALE with err->type
 * "ConditionalCheckFailedException". */
int ddb_put_item(struct ddb *d, const char *table, json_t *item,
		 const struct ddb_cond *cond, struct aws_err *err);
int ddb_delete_item(struct ddb *d, const char *table, json_t *key,
		    const struct ddb_cond *cond, struct aws_err *err);
/* request is a full UpdateItem request; *attrs_out its Attributes (may be
 * NULL, and is NULL when none were returned). */
int ddb_update_item(struct ddb *d, json_t *request, json_t **attrs_out,
		    struct aws_err *err);

/* request is a full Query or Scan request (TableName, expressions,
 * Limit...).  Pages are followed through LastEvaluatedKey until the end
 * or until cb returns non-zero. */
int ddb_query(struct ddb *d, json_t *request, ddb_page_cb cb, void *ctx,
	      struct aws_err *err);
/* segments > 1 runs a parallel scan, one thread per segment; calls to cb
 * are serialized (never two at once) but pages of different segments
 * interleave.  The first error stops every segment. */
int ddb_scan(struct ddb *d, json_t *request, int segments, ddb_page_cb cb,
	     void *ctx, struct aws_err *err);

/* keys: array of key objects of one table, any length (sent 100 at a
 * time); UnprocessedKeys are retried with backoff.  cb gets each item
 * found, in no particular order; keys without an item are skipped. */
int ddb_batch_get(struct ddb *d, const char *table, json_t *keys,
		  int consistent, ddb_item_cb cb, void *ctx,
		  struct aws_err *err);
/* request_items: {"Table": [{"PutRequest": {...}} | {"DeleteRequest":
 * {...}}, ...], ...}, any length (sent 25 at a time); UnprocessedItems are
 * retried with backoff until done or the attempts run out (-EAGAIN). */
int ddb_batch_write(struct ddb *d, json_t *request_items,
		    struct aws_err *err);
/* transact_items: the TransactItems array.  client_token may be NULL.
 * A cancelled transaction is -ECANCELED, with the reasons in err->message;
 * one whose only reason is a failed condition is -ESTALE. */
int ddb_transact_write(struct ddb *d, json_t *transact_items,
		       const char *client_token, struct aws_err *err);
/* *responses_out: the Responses array, one {"Item"?} per request. */
int ddb_transact_get(struct ddb *d, json_t *transact_items,
		     json_t **responses_out, struct aws_err *err);

/* The raw JSON 1.0 call, for operations not wrapped above. */
int ddb_call(struct ddb *d, const char *operation, json_t *request,
	     json_t **response_out, struct aws_err *err);

#endif
