/* cache: what fs/ asks of the back end.  It sits between the FUSE layer
 * and the service clients, so fs/ never talks to DynamoDB directly.  The
 * table list is cached for cache_ttl seconds; item and listing caches and
 * the write-back queue join here later. */
#ifndef DYNFS_CACHE_H
#define DYNFS_CACHE_H

#include <time.h>

#include "backend/awserr.h"
#include "backend/ddb.h"

struct cache;

struct cache_opts {
	unsigned ttl_s; /* how long a listing is trusted */
};

/* ddb is borrowed and must outlive the cache. */
int cache_new(struct cache **out, struct ddb *ddb,
	      const struct cache_opts *opts);
void cache_free(struct cache *c);

/* Calls cb for each table name, from a snapshot no older than ttl.
 * 0 or -errno (err filled when a request failed). */
int cache_tables(struct cache *c, ddb_name_cb cb, void *ctx,
		 struct aws_err *err);
/* 0 when the table exists, -ENOENT when not. */
int cache_table_exists(struct cache *c, const char *table,
		       struct aws_err *err);

#endif
