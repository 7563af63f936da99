/* cache: what fs/ asks of the back end.  It sits between the FUSE layer
 * and the service clients, so fs/ never talks to DynamoDB directly.
 *
 * It keeps, for cache_ttl: the table list, each table's key schema, the
 * listings of table and partition directories and every item seen in one,
 * so that the stat and read that follow an `ls` cost no request.  Every
 * write goes through here (save, create, delete, move, and the scratch
 * renames), which is the seam where the write-back queue and its journal
 * will sit.
 *
 * Items and keys are DynamoDB typed JSON (jansson values, borrowed unless
 * the name says otherwise).  Every call returns 0 or -errno; err (may be
 * NULL) is filled when a request failed.  Thread-safe: requests are made
 * without holding any cache lock. */
#ifndef DYNFS_CACHE_H
#define DYNFS_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <jansson.h>

#include "backend/awserr.h"
#include "backend/dbuf.h"
#include "backend/ddb.h"
#include "backend/ddbjson.h"

struct cache;

struct cache_opts {
	unsigned ttl_ms;          /* how long what was read is trusted */
	enum ddbjson_format fmt;  /* how item files show items */
	time_t mount_time;        /* mtime of items unchanged since; 0: now */
	int scan_segments;        /* parallel Scan segments; 0: 4 */
	size_t cache_size_mb;     /* memory for records and listings; 0: 256 */
	/* Write-back (cache_start): the journal's directory, NULL: every
	 * write is sent before close returns (write-through). */
	const char *cache_dir;
	unsigned writeback_delay_ms; /* a write is sent within this */
	int writeback_workers;       /* requests in flight; 0: 8 */
	const char *version_attr;    /* conditions on it, else the image */
	/* Creates go one per request as a conditional PutItem instead of
	 * checked and batched (docs/write-back.md, "Creates"). */
	int strict_create;
};

/* Lines for the person (conflicts, lost writes); error: 1 for errors. */
typedef void (*cache_log_fn)(void *ctx, int error, const char *line);

/* ddb is borrowed and must outlive the cache. */
int cache_new(struct cache **out, struct ddb *ddb,
	      const struct cache_opts *opts);
void cache_free(struct cache *c);
void cache_set_log(struct cache *c, cache_log_fn fn, void *ctx);

/* Write-back on (when cache_dir was given): opens the journal, queues
 * what a previous mount left in it (shown at once in listings and
 * reads), starts sending, and waits up to wait_ms for it to land.
 * *replayed: how many writes the journal held.  -EBUSY when another
 * mount uses the directory. */
int cache_start(struct cache *c, unsigned wait_ms, size_t *replayed,
		struct dbuf *why);
/* Unmount: sends what is queued, waiting up to wait_ms; what is left
 * stays in the journal for the next mount. */
void cache_stop(struct cache *c, unsigned wait_ms);
/* fsync: waits (up to wait_ms) until the item's queued writes are in
 * DynamoDB.  -ESTALE when one met a change made elsewhere, -EIO when one
 * failed or is still queued. */
int cache_item_sync(struct cache *c, const char *table, const json_t *key,
		    unsigned wait_ms);
/* Counters, one "name value" per line, for .dynfs/stats. */
void cache_stats(struct cache *c, struct dbuf *out);

/* ---- tables ---------------------------------------------------------- */

/* Calls cb for each table name, from a snapshot no older than ttl.
 * A non-zero value from cb stops the walk and is returned. */
int cache_tables(struct cache *c, ddb_name_cb cb, void *ctx,
		 struct aws_err *err);
/* 0 when the table exists, -ENOENT when not. */
int cache_table_exists(struct cache *c, const char *table,
		       struct aws_err *err);

/* A key attribute: its name and scalar type 'S', 'N' or 'B'. */
struct cache_keyattr {
	char name[256];
	char type;
};

struct cache_schema {
	struct cache_keyattr pk;
	struct cache_keyattr sk; /* when has_sk */
	int has_sk;
};

/* The table's key schema (DescribeTable, cached). */
int cache_table_schema(struct cache *c, const char *table,
		       struct cache_schema *out, struct aws_err *err);

/* ---- listings -------------------------------------------------------- */

struct cache_stat {
	int is_dir;
	size_t size;      /* bytes of the item's text */
	time_t mtime;     /* stable while the text does not change */
	uint64_t version; /* changes whenever the text changes */
};

/* value: the typed value the entry is named after ({"S": "a"}). */
typedef int (*cache_entry_cb)(void *ctx, const json_t *value,
			      const struct cache_stat *st);

/* List a directory.  pvalue NULL: the table's directory, which holds the
 * items of a table without sort key (value: the partition key) or the
 * partitions of a table with one (value: the partition key, is_dir), the
 * partitions made by cache_part_make included.  pvalue set: the items of
 * that partition (value: the sort key).  Entries come from a listing no
 * older than ttl; a new listing reaches cb page by page as Scan or Query
 * return them (no cache lock held), so a table larger than the cache
 * streams through it.  A non-zero value from cb ends the calls to cb and
 * is returned; after a positive one the listing itself still completes
 * (and is kept), after a negative one (-errno: the reader is gone) it
 * ends at its next page and is not kept. */
int cache_list(struct cache *c, const char *table, const json_t *pvalue,
	       cache_entry_cb cb, void *ctx, struct aws_err *err);

/* ---- items ----------------------------------------------------------- */

/* key: the item's full typed key ({"pk": {"S": "a"}, "sk": {...}}).
 * -ENOENT when there is no such item. */
int cache_item_stat(struct cache *c, const char *table, const json_t *key,
		    struct cache_stat *st, struct aws_err *err);

/* An open item file keeps its key's record in memory (never dropped to
 * stay within cache_size) until cache_item_unhold.  *out NULL on failure
 * (nothing is held then; the file works all the same). */
struct cache_hold;
void cache_item_hold(struct cache *c, const char *table, const json_t *key,
		     struct cache_hold **out);
void cache_item_unhold(struct cache_hold *h);

/* The item's text appended to text.  *item_out (may be NULL): a new
 * reference to the typed item, the type hint for a later save.  *same
 * (may be NULL): 1 when this is the text the previous read of the key
 * handed out, so the kernel's page cache of the file may be kept. */
int cache_item_read(struct cache *c, const char *table, const json_t *key,
		    struct dbuf *text, json_t **item_out, struct cache_stat *st,
		    int *same, struct aws_err *err);

enum {
	/* The item must not exist yet (O_EXCL, RENAME_NOREPLACE): -EEXIST. */
	CACHE_SAVE_EXCL = 1 << 0,
	/* The writer created the file: empty text makes a key-only item.
	 * Without it, empty text is -EINVAL, so that truncating a file
	 * never deletes an item by accident. */
	CACHE_SAVE_NEW = 1 << 1,
};

/* Replace the item with text (the file's content).  hint (may be NULL):
 * the item as the writer read it; without one, the item as last read or
 * renamed away keeps its types.  Key attributes missing from the text are
 * taken from key; present, they must equal it.  On -EINVAL (bad JSON,
 * not an object, key mismatch, empty) and -EFBIG (over 400 KB) why gets
 * one sentence for the log, and nothing is sent. */
int cache_item_save(struct cache *c, const char *table, const json_t *key,
		    const char *text, size_t len, const json_t *hint,
		    unsigned flags, struct dbuf *why, struct aws_err *err);
int cache_item_delete(struct cache *c, const char *table, const json_t *key,
		      struct aws_err *err);
/* rename(2) of an item: one TransactWriteItems with a Put of the item
 * under dst_key (key attributes rewritten) and a Delete of src_key; an
 * existing destination is replaced unless CACHE_SAVE_EXCL.  -EXDEV when
 * the two tables' key schemas differ (names or types). */
int cache_item_move(struct cache *c, const char *src_table,
		    const json_t *src_key, const char *dst_table,
		    const json_t *dst_key, unsigned flags,
		    struct aws_err *err);

/* ---- partitions (tables with a sort key) ------------------------------ */

/* 0 when the partition has items or was made locally, else -ENOENT. */
int cache_part_stat(struct cache *c, const char *table, const json_t *pvalue,
		    struct aws_err *err);
/* mkdir: a local, empty partition directory until it gets items or until
 * unmount.  -EEXIST when it exists. */
int cache_part_make(struct cache *c, const char *table, const json_t *pvalue,
		    struct aws_err *err);
/* rmdir: -ENOTEMPTY while the partition has items. */
int cache_part_remove(struct cache *c, const char *table,
		      const json_t *pvalue, struct aws_err *err);

/* ---- scratch files ---------------------------------------------------- */

/* Local files that never reach DynamoDB (editor swap files, backups, temp
 * files), named by their full path, gone at unmount.  An open scratch file
 * is a counted reference, so it outlives an unlink or a rename. */
struct cache_scratch;

struct cache_scratch_stat {
	size_t size;
	mode_t mode; /* permission bits */
	struct timespec atime, mtime, ctime;
};

enum {
	CACHE_SCRATCH_CREATE = 1 << 0, /* O_CREAT */
	CACHE_SCRATCH_EXCL = 1 << 1,   /* O_EXCL */
	CACHE_SCRATCH_TRUNC = 1 << 2,  /* O_TRUNC */
};

/* A new unnamed scratch file holding text, with hint (may be NULL): the
 * buffer of an open item file.  *out: a new reference. */
int cache_scratch_make(const char *text, size_t len, const json_t *hint,
		       struct cache_scratch **out);
/* Its content appended to out. */
int cache_scratch_text(struct cache_scratch *s, struct dbuf *out);
/* *out: a new reference (cache_scratch_put releases it). */
int cache_scratch_open(struct cache *c, const char *path, unsigned flags,
		       mode_t mode, struct cache_scratch **out);
void cache_scratch_put(struct cache_scratch *s);
int cache_scratch_stat(struct cache *c, const char *path,
		       struct cache_scratch_stat *st);
void cache_scratch_fstat(struct cache_scratch *s,
			 struct cache_scratch_stat *st);
/* Bytes read or written, or -errno. */
ssize_t cache_scratch_read(struct cache_scratch *s, char *buf, size_t size,
			   off_t off);
ssize_t cache_scratch_write(struct cache_scratch *s, const char *buf,
			    size_t size, off_t off);
int cache_scratch_truncate(struct cache_scratch *s, off_t size);
void cache_scratch_set_mode(struct cache_scratch *s, mode_t mode);
/* ts as for utimensat (UTIME_NOW, UTIME_OMIT); NULL: both now. */
void cache_scratch_set_times(struct cache_scratch *s,
			     const struct timespec ts[2]);
int cache_scratch_unlink(struct cache *c, const char *path);
/* Replaces a scratch file at to; -EEXIST with CACHE_SAVE_EXCL. */
int cache_scratch_rename(struct cache *c, const char *from, const char *to,
			 unsigned flags);

typedef int (*cache_scratch_cb)(void *ctx, const char *name,
				const struct cache_scratch_stat *st);
/* The scratch files directly in dir ("/tables/t" or "/tables/t/p"). */
int cache_scratch_list(struct cache *c, const char *dir, cache_scratch_cb cb,
		       void *ctx);
/* How many scratch files dir holds. */
size_t cache_scratch_count(struct cache *c, const char *dir);

/* rename scratch -> item: save the scratch file's text as the item (as
 * cache_item_save, the hint being the key's item as last read, else the
 * one the scratch file carries).  On success the scratch file is gone; on
 * failure it is kept and why says what was wrong. */
int cache_scratch_save(struct cache *c, const char *path, const char *table,
		       const json_t *key, unsigned flags, struct dbuf *why,
		       struct aws_err *err);
/* rename item -> scratch: the item's text moves to a scratch file at path
 * (replacing one there) and the item is deleted.  Its typed image stays
 * as the type hint of both the scratch file and the key. */
int cache_item_to_scratch(struct cache *c, const char *table,
			  const json_t *key, const char *path,
			  struct aws_err *err);

#endif
