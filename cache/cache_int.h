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

/* One item key: what is known of it.  Every record is in the LRU list and
 * counted in cache_size; a record that is clean (no queued write, no
 * open file, no error to tell) is dropped whole, oldest use first, when
 * the cache is over its size (docs/cache-memory.md). */
struct citem {
	struct citem *lru_prev, *lru_next; /* c->lru_head .. c->lru_tail */
	size_t cost;             /* bytes counted for the record */
	enum citem_state state;
	char *text;              /* CI_PRESENT: rendered text */
	size_t text_len;
	char *typed;             /* CI_PRESENT: the typed item, compact JSON */
	size_t typed_len;
	unsigned long long hash; /* of the last text seen, when have_hash */
	int have_hash;
	time_t mtime;
	uint64_t version;        /* bumps when the text changes */
	uint64_t read_version;   /* version the last cache_item_read gave */
	uint64_t at_ms;          /* when state was learned; 0: stale */
	uint64_t seq;            /* cache seq of the last local write, or of
				  * when the last of them reached DynamoDB */
	unsigned pending;        /* write-back ops not yet in DynamoDB */
	unsigned holds;          /* open files of the key (cache_item_hold) */
	json_t *local;           /* the image last written here */
	int err;                 /* a lost write's error, told once */
	int err_told;            /* times it was returned */
	json_t *hint;            /* typed image kept after a write or delete */
	size_t id_len;
	char id[];               /* its key in c->items */
};

/* A member of an item directory's listing: enough for readdir and stat
 * when the item's record has been dropped. */
struct cmember {
	struct cache_stat st;
	size_t cost;   /* bytes counted for it */
	uint32_t vlen; /* bytes of v */
	char type;     /* of the value the entry is named after: S, N, B */
	char v[];      /* that value's string, NUL-terminated */
};

/* A listed directory: a table's (no pvalue) or a partition's. */
struct cdir {
	json_t *pvalue;       /* partition value, or NULL for a table dir */
	uint64_t listed_ms;   /* when members were listed; 0: never */
	uint64_t listed_seq;
	/* Item dirs: item id -> struct cmember * (owned).  The table dir of
	 * a table with a sort key: partition id -> json_t * value (owned). */
	struct cmap *members;
	size_t bytes;         /* counted for item dir members */
	unsigned listing;     /* listings of it in progress */
	int big;              /* its last listing was too large to keep */
	int marker;           /* made by mkdir, not yet seen with items */
	int exists;           /* partition probe result ... */
	uint64_t exists_ms;   /* ... and when; 0: never */
	unsigned misses;      /* lookups that missed since miss_ms */
	uint64_t miss_ms;
};

struct wbc_opts {
	const char *dir;          /* the journal's and conflicts' directory */
	unsigned delay_ms;        /* a write is sent within this */
	int workers;              /* requests in flight at most */
	const char *version_attr; /* NULL: conditions on the whole image */
	int strict_create;        /* creates: conditional PutItem, unbatched */
};

struct lister; /* items.c: a listing in progress */

struct ctable {
	struct cache_schema schema;
	uint64_t schema_ms; /* 0: never described */
};

struct cache {
	struct ddb *ddb;
	struct getq *getq; /* reads of single items */
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
	uint64_t seq;         /* counts local writes and their landings */
	uint64_t version;     /* counts text versions */

	struct wbc *wbc;      /* write-back queue; NULL: write-through */
	struct wbc_opts wopts;
	uint64_t hits, misses, list_hits, list_misses;
	/* Every record, most recently used first (under lock); bytes counts
	 * records and listing members against max_bytes. */
	struct citem *lru_head, *lru_tail;
	size_t bytes, max_bytes;
	uint64_t evictions, list_drops;
	struct lister *listers; /* listings in progress */
	cache_log_fn log;
	void *log_ctx;

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
/* The record of a key (under lock); made when create, else NULL.  key is
 * not kept (the id names the key).  A record stays valid while c->lock is
 * held and no cache_trim runs; one with pending, holds or err set stays
 * until those are cleared. */
struct citem *cache_citem_get(struct cache *c, const struct dbuf *id,
			      const json_t *key, int create);
/* Drop clean records (then listings) until the cache is within its size
 * (under lock, where no record pointer is kept across it). */
void cache_trim(struct cache *c);
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

/* Items equal as DynamoDB compares them (numbers by value, sets in any
 * order); two NULLs are equal. */
int cache_item_same(const json_t *a, const json_t *b);
/* wbc_replay_fn of items.c: the records show a replayed write. */
void cache_note_replayed(void *ctx, const char *table,
			 const struct cache_schema *s, const json_t *key,
			 const json_t *item, const char *dst_table,
			 const struct cache_schema *ds, const json_t *dst_key);

/* ---- the write-back queue (wbc.c) ---- */


/* Told each replayed op before it is queued (item NULL: a delete; dst
 * set: a move), so the records show it. */
typedef void (*wbc_replay_fn)(void *ctx, const char *table,
			      const struct cache_schema *s, const json_t *key,
			      const json_t *item, const char *dst_table,
			      const struct cache_schema *ds,
			      const json_t *dst_key);

int wbc_start(struct cache *c, const struct wbc_opts *opts,
	      wbc_replay_fn note, void *ctx, size_t *replayed,
	      struct dbuf *why);
void wbc_stop(struct cache *c, unsigned timeout_ms);
void wbc_free(struct wbc *w);
/* base: the item the writer started from; NULL with base_known: a
 * create; NULL without: unknown (the item must exist). */
int wbc_put(struct cache *c, const char *table, const struct cache_schema *s,
	    const json_t *key, json_t *item, const json_t *base, int base_known,
	    struct dbuf *why);
int wbc_delete(struct cache *c, const char *table,
	       const struct cache_schema *s, const json_t *key,
	       const json_t *base, struct dbuf *why);
int wbc_move(struct cache *c, const char *src_table,
	     const struct cache_schema *ss, const json_t *src_key,
	     const json_t *src_base, const char *dst_table,
	     const struct cache_schema *ds, const json_t *dst_key,
	     json_t *moved, const json_t *dst_base, struct dbuf *why);
int wbc_sync(struct cache *c, const char *table, const struct cache_schema *s,
	     const json_t *key, unsigned timeout_ms);
int wbc_drain(struct cache *c, unsigned timeout_ms);
void wbc_stats(struct cache *c, struct dbuf *out);

#endif
