#include "cache/cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "backend/dbuf.h"

struct cache {
	struct ddb *ddb;
	unsigned ttl_s;
	/* Lock order: leaf.  Never held across a request. */
	pthread_mutex_t lock;
	struct dbuf tables; /* names, each followed by a NUL byte */
	time_t tables_at;   /* 0: never listed */
};

int cache_new(struct cache **out, struct ddb *ddb,
	      const struct cache_opts *opts)
{
	struct cache *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (!c)
		return -ENOMEM;
	c->ddb = ddb;
	c->ttl_s = opts->ttl_s;
	pthread_mutex_init(&c->lock, NULL);
	dbuf_init(&c->tables, DBUF_CAP_BODY);
	*out = c;
	return 0;
}

void cache_free(struct cache *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->lock);
	dbuf_free(&c->tables);
	free(c);
}

static int cache_collect_name(void *ctx, const char *name)
{
	struct dbuf *names = ctx;

	/* dbuf_add of strlen + 1 keeps the NUL as the separator. */
	return dbuf_add(names, name, strlen(name) + 1);
}

/* A copy of the table list no older than the ttl. */
static int cache_tables_snapshot(struct cache *c, struct dbuf *out,
				 struct aws_err *err)
{
	time_t now = time(NULL);
	int rc = 0;

	pthread_mutex_lock(&c->lock);
	if (c->tables_at && now - c->tables_at < (time_t)c->ttl_s)
		rc = dbuf_add(out, c->tables.ptr ? c->tables.ptr : "",
			      dbuf_len(&c->tables));
	else
		rc = 1;
	pthread_mutex_unlock(&c->lock);
	if (rc <= 0)
		return rc;

	dbuf_reset(out);
	rc = ddb_list_tables(c->ddb, 0, cache_collect_name, out, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&c->lock);
	dbuf_reset(&c->tables);
	rc = dbuf_add(&c->tables, out->ptr ? out->ptr : "", dbuf_len(out));
	c->tables_at = rc ? 0 : now;
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int cache_tables(struct cache *c, ddb_name_cb cb, void *ctx,
		 struct aws_err *err)
{
	struct dbuf names;
	size_t off;
	int rc;

	dbuf_init(&names, DBUF_CAP_BODY);
	rc = cache_tables_snapshot(c, &names, err);
	for (off = 0; !rc && off < dbuf_len(&names);
	     off += strlen(names.ptr + off) + 1)
		rc = cb(ctx, names.ptr + off);
	dbuf_free(&names);
	return rc;
}

static int cache_match_name(void *ctx, const char *name)
{
	return strcmp(ctx, name) == 0;
}

int cache_table_exists(struct cache *c, const char *table,
		       struct aws_err *err)
{
	int rc = cache_tables(c, cache_match_name, (void *)table, err);

	if (rc < 0)
		return rc;
	return rc ? 0 : -ENOENT;
}
