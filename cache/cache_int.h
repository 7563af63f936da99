/* The cache's insides, shared by cache.c (tables, schemas), items.c
 * (items, listings, partitions, writes) and scratch.c (scratch files).
 * Private to cache/. */
#ifndef DYNFS_CACHE_INT_H
#define DYNFS_CACHE_INT_H

#include <pthread.h>
#include <stdint.h>

#include "cache/cache.h"
#include "cache/map.h"

enum citem_state {
	CI_UNKNOWN, /* never read, or forgotten */
	CI_PRESENT,
	CI_ABSENT,
};

/* One item key ever seen.  Records live until cache_free, so that mtime
 * stays stable across refreshes and listings can point at them. */
struct citem {
	json_t *key;          /* typed key object, immutable */
	enum citem_state state;
	json_t *item;         /* CI_PRESENT: typed item, immutable */
	char *text;           /* CI_PRESENT: rendered text */
	size_t text_len;
	unsigned long long hash; /* of the last text seen, when have_hash */
	int have_hash;
	time_t mtime;
	uint64_t version;        /* bumps when the text changes */
	uint64_t read_version;   /* version the last cache_item_read gave */
	uint64_t at_ms;          /* when state was learned; 0: stale */
	uint64_t seq;            /* cache seq of the last local write */
	json_t *hint;            /* typed image kept after a write or delete */
};

/* A listed directory: a table's (no pvalue) or a partition's. */
struct cdir {
	json_t *pvalue;       /* partition value, or NULL for a table dir */
	uint64_t listed_ms;   /* when members were listed; 0: never */
	uint64_t listed_seq;
	/* Item dirs: id -> struct citem * (not owned).  The table dir of a
	 * table with a sort key: partition id -> json_t * value (owned). */
	struct cmap *members;
	int marker;           /* made by mkdir, not yet seen with items */
	int exists;           /* partition probe result ... */
	uint64_t exists_ms;   /* ... and when; 0: never */
};

struct ctable {
	struct cache_schema schema;
	uint64_t schema_ms; /* 0: never described */
};

struct cache {
	struct ddb *ddb;
	uint64_t ttl_ms;
	enum ddbjson_format fmt;
	time_t mount_time;
	int segments;

	/* Lock order: lock, then (never the other way) scratch_lock is not
	 * taken under it; both are leaves toward the rest of dynfs.  Never
	 * held across a request. */
	pthread_mutex_t lock;
	struct dbuf tables;   /* names, each followed by a NUL byte */
	uint64_t tables_ms;   /* 0: never listed */
	struct cmap *schemas; /* table -> struct ctable */
	struct cmap *items;   /* item id -> struct citem */
	struct cmap *dirs;    /* dir id -> struct cdir */
	uint64_t seq;         /* counts local writes */
	uint64_t version;     /* counts text versions */

	/* Scratch files.  Lock order: a leaf; never held with lock. */
	pthread_mutex_t scratch_lock;
	struct cmap *scratch; /* path -> struct cache_scratch */
};

uint64_t cache_now_ms(void);
int cache_fresh(const struct cache *c, uint64_t at_ms, uint64_t now_ms);

/* Canonical ids: equal keys give equal ids whatever the number text
 * ("1.50" and "1.5") or base64 padding. */
int cache_value_id(const json_t *value, struct dbuf *out);
int cache_item_id(const char *table, const struct cache_schema *s,
		  const json_t *key, struct dbuf *out);
int cache_dir_id(const char *table, const json_t *pvalue, struct dbuf *out);

void cache_citem_free(void *p);
void cache_cdir_free(void *p);
void cache_scratch_free_all(struct cache *c);
/* The item's hint (record item, else kept hint); new reference or NULL.
 * Takes lock. */
json_t *cache_hint_get(struct cache *c, const char *table,
		       const struct cache_schema *s, const json_t *key);
/* Name s path, replacing a scratch file there; takes the reference. */
int cache_scratch_install(struct cache *c, const char *path,
			  struct cache_scratch *s);
/* The scratch file's text and hint (new reference or NULL). */
int cache_scratch_snapshot(struct cache *c, const char *path,
			   struct dbuf *text, json_t **hint,
			   struct cache_scratch **ref);
/* Unlink path if it still names s. */
void cache_scratch_unlink_if(struct cache *c, const char *path,
			     struct cache_scratch *s);

#endif
