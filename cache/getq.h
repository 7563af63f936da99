/* getq: reads of single items.  A read goes out alone as GetItem when
 * nothing else of its table is being read; reads that come while one is
 * in flight wait and go together in one BatchGetItem (xargs -P, parallel
 * greps, a table too big to keep listed).  Every read is consistent. */
#ifndef DYNFS_CACHE_GETQ_H
#define DYNFS_CACHE_GETQ_H

#include "backend/awserr.h"

#include <jansson.h>

struct ddb;
struct cache_schema;
struct getq;

int getq_new(struct getq **out, struct ddb *ddb);
/* No read may be in progress. */
void getq_free(struct getq *q);
/* The item of key (*item_out, a new reference), or -ENOENT, or -errno
 * with err filled. */
int getq_get(struct getq *q, const char *table, const struct cache_schema *s,
	     const json_t *key, json_t **item_out, struct aws_err *err);

#endif
