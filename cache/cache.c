/* cache: life cycle, the table list, key schemas and canonical ids. */
#include "cache/cache_int.h"
#include "cache/getq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend/dbuf.h"
#include "backend/ddbnum.h"

uint64_t cache_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	/* +1 so that 0 can mean "never" even right after boot. */
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 + 1;
}

int cache_fresh(const struct cache *c, uint64_t at_ms, uint64_t now_ms)
{
	return at_ms && now_ms >= at_ms && now_ms - at_ms < c->ttl_ms;
}

static void ctable_free(void *p)
{
	free(p);
}

int cache_new(struct cache **out, struct ddb *ddb,
	      const struct cache_opts *opts)
{
	struct cache *c = calloc(1, sizeof(*c));
	int rc;

	*out = NULL;
	if (!c)
		return -ENOMEM;
	c->ddb = ddb;
	c->ttl_ms = opts->ttl_ms;
	c->fmt = opts->fmt;
	c->mount_time = opts->mount_time ? opts->mount_time : time(NULL);
	c->segments = opts->scan_segments > 0 ? opts->scan_segments : 4;
	c->max_bytes = (opts->cache_size_mb ? opts->cache_size_mb : 256)
		       << 20;
	c->wopts.delay_ms = opts->writeback_delay_ms;
	c->wopts.workers = opts->writeback_workers;
	c->wopts.dir = opts->cache_dir ? strdup(opts->cache_dir) : NULL;
	c->wopts.version_attr = opts->version_attr
					? strdup(opts->version_attr) : NULL;
	c->wopts.strict_create = opts->strict_create;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->scratch_lock, NULL);
	dbuf_init(&c->tables, DBUF_CAP_BODY);
	rc = getq_new(&c->getq, ddb);
	if (!rc)
		rc = cmap_new(&c->schemas, ctable_free);
	if (!rc)
		rc = cmap_new(&c->items, cache_citem_free);
	if (!rc)
		rc = cmap_new(&c->dirs, cache_cdir_free);
	if (!rc)
		rc = cmap_new(&c->scratch, NULL);
	if (!rc && ((opts->cache_dir && !c->wopts.dir) ||
		    (opts->version_attr && !c->wopts.version_attr)))
		rc = -ENOMEM;
	if (rc) {
		cache_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void cache_free(struct cache *c)
{
	if (!c)
		return;
	wbc_stop(c, 0);
	free((char *)c->wopts.dir);
	free((char *)c->wopts.version_attr);
	cache_scratch_free_all(c);
	cmap_free(c->scratch);
	/* Directories point at item records: free them first. */
	cmap_free(c->dirs);
	cmap_free(c->items);
	cmap_free(c->schemas);
	getq_free(c->getq);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->scratch_lock);
	dbuf_free(&c->tables);
	free(c);
}

/* ---- tables ---------------------------------------------------------- */

void cache_set_log(struct cache *c, cache_log_fn fn, void *ctx)
{
	c->log = fn;
	c->log_ctx = ctx;
}

int cache_start(struct cache *c, unsigned wait_ms, size_t *replayed,
		struct dbuf *why)
{
	int rc;

	*replayed = 0;
	if (!c->wopts.dir)
		return 0;
	rc = wbc_start(c, &c->wopts, cache_note_replayed, c, replayed, why);
	if (!rc && *replayed)
		wbc_drain(c, wait_ms);
	return rc;
}

void cache_stop(struct cache *c, unsigned wait_ms)
{
	wbc_stop(c, wait_ms);
}

int cache_item_sync(struct cache *c, const char *table, const json_t *key,
		    unsigned wait_ms)
{
	struct cache_schema s;
	int rc;

	if (!c->wbc)
		return 0;
	rc = cache_table_schema(c, table, &s, NULL);
	return rc ? rc : wbc_sync(c, table, &s, key, wait_ms);
}

void cache_stats(struct cache *c, struct dbuf *out)
{
	uint64_t hits, misses, lhits, lmisses, evictions, drops;
	size_t items, bytes;

	pthread_mutex_lock(&c->lock);
	hits = c->hits;
	misses = c->misses;
	lhits = c->list_hits;
	lmisses = c->list_misses;
	items = cmap_count(c->items);
	bytes = c->bytes;
	evictions = c->evictions;
	drops = c->list_drops;
	pthread_mutex_unlock(&c->lock);
	dbuf_addf(out, "cache_hits %llu\ncache_misses %llu\n"
		  "listing_hits %llu\nlisting_misses %llu\n"
		  "cached_keys %zu\ncached_bytes %zu\ncache_max_bytes %zu\n"
		  "evictions %llu\nlistings_dropped %llu\n",
		  (unsigned long long)hits,
		  (unsigned long long)misses, (unsigned long long)lhits,
		  (unsigned long long)lmisses, items, bytes, c->max_bytes,
		  (unsigned long long)evictions, (unsigned long long)drops);
	wbc_stats(c, out);
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
	uint64_t now = cache_now_ms();
	int rc = 0;

	pthread_mutex_lock(&c->lock);
	if (cache_fresh(c, c->tables_ms, now))
		rc = dbuf_add(out, dbuf_str(&c->tables), dbuf_len(&c->tables));
	else
		rc = 1;
	pthread_mutex_unlock(&c->lock);
	if (rc <= 0)
		return rc;

	dbuf_reset(out);
	rc = ddb_list_tables(c->ddb, 0, cache_collect_name, out, err);
	if (rc && rc != -EACCES) {
		/* DynamoDB out of reach: the last list, however old, keeps
		 * the tables' paths working for cached reads and queued
		 * writes. */
		pthread_mutex_lock(&c->lock);
		if (c->tables_ms) {
			dbuf_reset(out);
			rc = dbuf_add(out, dbuf_str(&c->tables),
				      dbuf_len(&c->tables));
			if (!rc && err)
				awserr_clear(err);
		}
		pthread_mutex_unlock(&c->lock);
		return rc;
	}
	if (rc)
		return rc;
	pthread_mutex_lock(&c->lock);
	dbuf_reset(&c->tables);
	rc = dbuf_add(&c->tables, dbuf_str(out), dbuf_len(out));
	c->tables_ms = rc ? 0 : now;
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

/* ---- schemas --------------------------------------------------------- */

static char attr_type(const json_t *defs, const char *name)
{
	const json_t *d;
	const char *t;
	size_t i;

	json_array_foreach(defs, i, d) {
		if (strcmp(json_string_value(json_object_get(d, "AttributeName"))
				   ?: "", name))
			continue;
		t = json_string_value(json_object_get(d, "AttributeType"));
		if (t && (!strcmp(t, "S") || !strcmp(t, "N") || !strcmp(t, "B")))
			return t[0];
	}
	return 0;
}

/* Key schema out of a DescribeTable "Table". */
static int schema_from_table(const json_t *t, struct cache_schema *s)
{
	const json_t *ks = json_object_get(t, "KeySchema");
	const json_t *defs = json_object_get(t, "AttributeDefinitions");
	const json_t *k;
	struct cache_keyattr *a;
	const char *name, *type;
	size_t i;

	memset(s, 0, sizeof(*s));
	json_array_foreach(ks, i, k) {
		name = json_string_value(json_object_get(k, "AttributeName"));
		type = json_string_value(json_object_get(k, "KeyType"));
		if (!name || !type || strlen(name) >= sizeof(s->pk.name))
			return -EIO;
		if (!strcmp(type, "HASH")) {
			a = &s->pk;
		} else if (!strcmp(type, "RANGE")) {
			a = &s->sk;
			s->has_sk = 1;
		} else {
			return -EIO;
		}
		strcpy(a->name, name);
		a->type = attr_type(defs, name);
		if (!a->type)
			return -EIO;
	}
	return s->pk.name[0] ? 0 : -EIO;
}

int cache_table_schema(struct cache *c, const char *table,
		       struct cache_schema *out, struct aws_err *err)
{
	uint64_t now = cache_now_ms();
	struct ctable *t;
	json_t *desc = NULL;
	int rc = 1;

	pthread_mutex_lock(&c->lock);
	t = cmap_get(c->schemas, table, strlen(table));
	/* A key schema only changes when the table is deleted and made
	 * again, so it is trusted as long as a listing. */
	if (t && cache_fresh(c, t->schema_ms, now)) {
		*out = t->schema;
		rc = 0;
	}
	pthread_mutex_unlock(&c->lock);
	if (rc <= 0)
		return rc;

	rc = ddb_describe_table(c->ddb, table, &desc, err);
	if (rc && rc != -ENOENT && rc != -EACCES) {
		/* DynamoDB out of reach: a key schema known before still
		 * holds (it changes only with a new table), so queued
		 * writes and cached reads go on. */
		pthread_mutex_lock(&c->lock);
		t = cmap_get(c->schemas, table, strlen(table));
		if (t && t->schema_ms) {
			*out = t->schema;
			rc = 0;
		}
		pthread_mutex_unlock(&c->lock);
		if (!rc && err)
			awserr_clear(err);
	}
	if (rc || !desc)
		goto out;
	rc = schema_from_table(desc, out);
	if (rc) {
		if (err) {
			awserr_clear(err);
			snprintf(err->type, sizeof(err->type),
				 "SerializationException");
			snprintf(err->message, sizeof(err->message),
				 "DescribeTable %s: no usable key schema",
				 table);
		}
		goto out;
	}
	pthread_mutex_lock(&c->lock);
	t = cmap_get(c->schemas, table, strlen(table));
	if (!t) {
		t = calloc(1, sizeof(*t));
		if (t && cmap_put(c->schemas, table, strlen(table), t)) {
			free(t);
			t = NULL;
		}
	}
	if (t) {
		t->schema = *out;
		t->schema_ms = now;
	}
	pthread_mutex_unlock(&c->lock);
out:
	json_decref(desc);
	return rc;
}

/* ---- canonical ids ---------------------------------------------------- */

/* Numbers in DynamoDB's normalized text: "1.50", "1.5" and "15E-1" are
 * one key to DynamoDB and one id here. */
static int number_id(const char *s, size_t len, struct dbuf *out)
{
	int rc = dbuf_adds(out, "N:");

	return rc ? rc : ddbnum_normalize(s, len, out);
}

int cache_value_id(const json_t *value, struct dbuf *out)
{
	const char *type, *s;
	const json_t *v;
	size_t len, i;
	int rc;

	if (!json_is_object(value) || json_object_size(value) != 1)
		return -EINVAL;
	type = json_object_iter_key(json_object_iter((json_t *)value));
	v = json_object_iter_value(json_object_iter((json_t *)value));
	if (!json_is_string(v))
		return -EINVAL;
	s = json_string_value(v);
	len = json_string_length(v);
	if (!strcmp(type, "S")) {
		rc = dbuf_adds(out, "S:");
		return rc ? rc : dbuf_add(out, s, len);
	}
	if (!strcmp(type, "N"))
		return number_id(s, len, out);
	if (!strcmp(type, "B")) {
		/* base64 and base64url, padded or not, are one id */
		rc = dbuf_adds(out, "B:");
		for (i = 0; !rc && i < len && s[i] != '='; i++)
			rc = dbuf_addc(out, s[i] == '-' ? '+' :
					    s[i] == '_' ? '/' : s[i]);
		return rc;
	}
	return -EINVAL;
}

int cache_item_id(const char *table, const struct cache_schema *s,
		  const json_t *key, struct dbuf *out)
{
	int rc;

	rc = dbuf_add(out, table, strlen(table) + 1);
	if (!rc)
		rc = cache_value_id(json_object_get(key, s->pk.name), out);
	if (!rc && s->has_sk) {
		rc = dbuf_addc(out, '\0');
		if (!rc)
			rc = cache_value_id(json_object_get(key, s->sk.name),
					    out);
	}
	return rc;
}

int cache_dir_id(const char *table, const json_t *pvalue, struct dbuf *out)
{
	int rc = dbuf_add(out, table, strlen(table) + 1);

	if (!rc && pvalue)
		rc = cache_value_id(pvalue, out);
	return rc;
}
