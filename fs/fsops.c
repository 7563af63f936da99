/* The FUSE operations.  The tree is
 *   /                    the mount
 *   /tables/             one directory per DynamoDB table
 *   /tables/T/K.json     an item of a table with only a partition key
 *   /tables/T/P/         a partition of a table with a sort key
 *   /tables/T/P/S.json   an item of that partition
 * plus scratch files (dot-names, names not ending in .json) in table and
 * partition directories.  docs/filesystem.md is the contract.
 *
 * The layer knows paths, names and FUSE; everything remote goes through
 * cache/.  An open item file has a private buffer (close-to-open, as NFS):
 * it is filled at open, and saved as one PutItem at flush, fsync or
 * release when it was written. */
#include "fs/dynfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "fs/apifs.h"
#include "fs/keyname.h"
#include "fs/log.h"
#include "fs/path.h"

/* fsync waits this long for DynamoDB before saying EIO (the write stays
 * queued); unmount as long for the queue to drain. */
#define DYNFS_SYNC_WAIT_MS 30000

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

enum node_kind {
	NODE_ROOT,
	NODE_TABLES,
	NODE_TABLE,
	NODE_PART,
	NODE_ITEM,
	NODE_SCRATCH,
	NODE_API, /* a handle of apifs (apis/, functions/), wrapped */
	NODE_CTL, /* .dynfs/stats: text made at open */
};

/* What a path is about to be used for: names that are no key are ENOENT
 * to a lookup and EINVAL to a create. */
enum node_use {
	USE_LOOKUP,
	USE_CREATE,
	USE_MKDIR,
};

struct node {
	enum node_kind kind;
	struct path p;
	struct cache_schema s;
	json_t *pvalue; /* the partition of NODE_PART and of what is in one */
	json_t *key;    /* NODE_ITEM */
};

struct dynfs_file {
	struct dynfs_file *next, *prev; /* fs->files, under fs->files_lock */
	/* Lock order: after fs->files_lock, before the buffer's own. */
	pthread_mutex_t lock;
	enum node_kind kind;  /* NODE_ITEM or NODE_SCRATCH */
	char *path;           /* where it is now; renames follow it */
	char *table;          /* NODE_ITEM */
	json_t *key;          /* NODE_ITEM */
	json_t *orig;         /* the item as opened: the type hint */
	struct cache_scratch *buf; /* the content */
	time_t mtime;         /* of the item as opened, or of the last write */
	uint64_t gen;         /* counts writes */
	uint64_t saved_gen;   /* gen of the last save; dirty when different */
	uint64_t failed_gen;  /* gen of the last failed save ... */
	int failed_rc;        /* ... and its error, returned again */
	int created;          /* this open made the file: empty is fine */
	int excl;             /* O_EXCL: the first save must create */
	int written;          /* write() was called */
	int writable;         /* opened for writing */
	int pending;          /* created here and not yet in DynamoDB */
	int detached;         /* unlinked or replaced: never saved */
	int registered;       /* in fs->files (under fs->files_lock) */
	unsigned refs;        /* under fs->files_lock: the opener's + */
	uint64_t api_fh;      /* NODE_API: apifs's own fi->fh */
	char *ctl_text;       /* NODE_CTL */
	size_t ctl_len;
	struct cache_hold *hold; /* NODE_ITEM: keeps the key's record */
	struct dirlist *dl;   /* a directory's listing (readdir) */
};

static struct dynfs *dynfs_get(void)
{
	return fuse_get_context()->private_data;
}

void dynfs_split_ttl(unsigned cache_ttl, double *kernel_s, unsigned *cache_ms)
{
	/* The kernel keeps entries and attributes for half of cache_ttl,
	 * the cache the rest, so a change made elsewhere shows within
	 * cache_ttl.  Half, not less: `ls -l` then `cat` of every file of a
	 * 10,000-item directory takes a few seconds, and each entry the
	 * kernel forgot meanwhile costs a lookup.  At most 2.5 s: what the
	 * kernel holds is never corrected behind its back (a conflict that
	 * puts another writer's text back), only waited out.  0 turns
	 * every cache off. */
	double k;

	if (cache_ttl > 1000000)
		cache_ttl = 1000000; /* keeps the ms in range */
	k = cache_ttl >= 5 ? 2.5 : cache_ttl / 2.0;

	*kernel_s = k;
	*cache_ms = (unsigned)(cache_ttl * 1000.0 - k * 1000.0);
}

/* Log a failed remote operation once, in the person's words. */
static int dynfs_fail(const char *what, const char *path, int rc,
		      const struct aws_err *err)
{
	char desc[700];

	if (rc != -ENOENT)
		log_msg(LOG_LVL_ERROR, "%s %s: %s", what, path ? path : "?",
			err && (err->type[0] || err->transport)
				? awserr_describe(err, desc, sizeof(desc))
				: strerror(-rc));
	return rc;
}

static void node_free(struct node *n)
{
	json_decref(n->pvalue);
	json_decref(n->key);
	n->pvalue = NULL;
	n->key = NULL;
}

/* ---- stat -------------------------------------------------------------- */

static void stat_dir(const struct dynfs *fs, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFDIR | (fs->opts.ro ? 0555 : 0755);
	st->st_nlink = 2;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_mtime = st->st_ctime = st->st_atime = fs->mount_time;
}

static void stat_file(const struct dynfs *fs, struct stat *st, size_t size,
		      time_t mtime)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFREG | (fs->opts.ro ? 0444 : 0644);
	st->st_nlink = 1;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_size = (off_t)size;
	st->st_blocks = (blkcnt_t)((size + 511) / 512);
	st->st_blksize = 4096;
	st->st_mtime = st->st_ctime = st->st_atime = mtime;
}

static void stat_scratch(const struct dynfs *fs, struct stat *st,
			 const struct cache_scratch_stat *ss)
{
	stat_file(fs, st, ss->size, 0);
	st->st_mode = S_IFREG | (ss->mode & (fs->opts.ro ? 07555 : 07777));
	st->st_atim = ss->atime;
	st->st_mtim = ss->mtime;
	st->st_ctim = ss->ctime;
}

/* ---- resolving paths ---------------------------------------------------- */

struct match {
	char type;
	int is_dir;
	const char *name;
	json_t *found;
};

static int match_entry(void *ctx, const json_t *value,
		       const struct cache_stat *st)
{
	struct match *m = ctx;

	(void)st;
	if (!path_matches(value, m->is_dir, m->type, m->name))
		return 0;
	m->found = json_deep_copy(value);
	return m->found ? 1 : -ENOMEM;
}

/* The value a name stands for.  A long-key name carries only a prefix and
 * a hash: the listing of its directory has the one value it names. */
static int name_value(struct dynfs *fs, struct node *n, const char *name,
		      int is_dir, char type, enum node_use use,
		      const json_t *list_pv, json_t **out,
		      struct aws_err *err)
{
	struct keyname_decoded d;
	struct match m = { type, is_dir, name, NULL };
	int rc;

	*out = NULL;
	rc = path_decode(name, is_dir, type, &d);
	if (rc) {
		keyname_decoded_free(&d);
		return use == USE_LOOKUP ? -ENOENT : rc;
	}
	if (!d.partial) {
		*out = d.value;
		return 0;
	}
	keyname_decoded_free(&d);
	rc = cache_list(fs->cache, n->p.table, list_pv, match_entry, &m, err);
	if (rc < 0)
		return rc;
	/* A new item cannot have such a name: its full key is unknown. */
	if (!m.found)
		return use == USE_LOOKUP ? -ENOENT : -EINVAL;
	*out = m.found;
	return 0;
}

static int scratch_exists(struct dynfs *fs, const char *path)
{
	struct cache_scratch_stat st;

	return cache_scratch_stat(fs->cache, path, &st) == 0;
}

static int node_resolve(struct dynfs *fs, const char *path, enum node_use use,
			struct node *n, struct aws_err *err)
{
	const struct cache_keyattr *ia;
	json_t *v = NULL;
	int rc, role;

	memset(n, 0, sizeof(*n));
	awserr_clear(err);
	if (!path)
		return -ENOENT;
	rc = path_parse(path, &n->p);
	if (rc)
		return rc;
	switch (n->p.kind) {
	case PATH_ROOT:
		n->kind = NODE_ROOT;
		return 0;
	case PATH_TABLES:
		n->kind = NODE_TABLES;
		return 0;
	case PATH_TABLE:
		n->kind = NODE_TABLE;
		return 0;
	default:
		break;
	}
	rc = cache_table_schema(fs->cache, n->p.table, &n->s, err);
	if (rc)
		return rc;
	role = path_role(&n->p, n->s.has_sk);
	if (role < 0)
		return role;
	if (n->p.kind == PATH_GRANDCHILD) {
		rc = name_value(fs, n, n->p.dir, 1, n->s.pk.type, USE_LOOKUP,
				NULL, &n->pvalue, err);
		if (rc)
			goto fail;
	}
	if (role == PATH_ROLE_PART) {
		if (use == USE_CREATE ||
		    (use == USE_LOOKUP && scratch_exists(fs, path))) {
			n->kind = NODE_SCRATCH;
			return 0;
		}
		rc = name_value(fs, n, n->p.name, 1, n->s.pk.type, use, NULL,
				&n->pvalue, err);
		if (rc)
			goto fail;
		n->kind = NODE_PART;
		return 0;
	}
	if (role == PATH_ROLE_SCRATCH) {
		if (use == USE_MKDIR) {
			rc = -EPERM;
			goto fail;
		}
		n->kind = NODE_SCRATCH;
		return 0;
	}
	if (use == USE_MKDIR) {
		rc = -EPERM;
		goto fail;
	}
	ia = n->s.has_sk ? &n->s.sk : &n->s.pk;
	rc = name_value(fs, n, n->p.name, 0, ia->type, use, n->pvalue, &v,
			err);
	if (rc)
		goto fail;
	n->key = n->s.has_sk ? path_key_new(&n->s, n->pvalue, v)
			     : path_key_new(&n->s, v, NULL);
	json_decref(v);
	if (!n->key) {
		rc = -ENOMEM;
		goto fail;
	}
	n->kind = NODE_ITEM;
	return 0;
fail:
	node_free(n);
	return rc;
}

/* ---- open files ---------------------------------------------------------- */

static void dirlist_end(struct dirlist *dl);

static void file_free(struct dynfs_file *f)
{
	if (!f)
		return;
	cache_scratch_put(f->buf);
	cache_item_unhold(f->hold);
	dirlist_end(f->dl);
	free(f->ctl_text);
	json_decref(f->key);
	json_decref(f->orig);
	free(f->table);
	free(f->path);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

static struct dynfs_file *file_new(enum node_kind kind, const char *path)
{
	struct dynfs_file *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	pthread_mutex_init(&f->lock, NULL);
	f->kind = kind;
	f->refs = 1;
	f->path = strdup(path);
	if (!f->path) {
		file_free(f);
		return NULL;
	}
	return f;
}

static void file_register(struct dynfs *fs, struct dynfs_file *f)
{
	pthread_mutex_lock(&fs->files_lock);
	f->next = fs->files;
	f->prev = NULL;
	if (fs->files)
		fs->files->prev = f;
	fs->files = f;
	f->registered = 1;
	pthread_mutex_unlock(&fs->files_lock);
}

static void file_unregister(struct dynfs *fs, struct dynfs_file *f)
{
	pthread_mutex_lock(&fs->files_lock);
	if (f->registered) {
		if (f->prev)
			f->prev->next = f->next;
		else
			fs->files = f->next;
		if (f->next)
			f->next->prev = f->prev;
		f->registered = 0;
	}
	pthread_mutex_unlock(&fs->files_lock);
}

/* Drop a reference taken under files_lock; the last one frees. */
static void file_put(struct dynfs *fs, struct dynfs_file *f)
{
	unsigned left;

	pthread_mutex_lock(&fs->files_lock);
	left = --f->refs;
	pthread_mutex_unlock(&fs->files_lock);
	if (!left)
		file_free(f);
}

static struct dynfs_file *file_of(struct fuse_file_info *fi)
{
	return fi ? (struct dynfs_file *)(uintptr_t)fi->fh : NULL;
}

static int file_dirty(const struct dynfs_file *f)
{
	return f->gen != f->saved_gen;
}

/* The size and mtime of the newest open file at path that holds what
 * DynamoDB does not have yet (written, or created and not saved). */
static int file_stat_open(struct dynfs *fs, const char *path, size_t *size,
			  time_t *mtime)
{
	struct cache_scratch_stat ss;
	struct dynfs_file *f;
	int found = 0;

	pthread_mutex_lock(&fs->files_lock);
	for (f = fs->files; f && !found; f = f->next) {
		pthread_mutex_lock(&f->lock);
		if (!f->detached && f->path && !strcmp(f->path, path) &&
		    (file_dirty(f) || f->pending)) {
			cache_scratch_fstat(f->buf, &ss);
			*size = ss.size;
			*mtime = f->mtime;
			found = 1;
		}
		pthread_mutex_unlock(&f->lock);
	}
	pthread_mutex_unlock(&fs->files_lock);
	return found;
}

/* 1 when an open file not yet in DynamoDB is in directory dir. */
/* Call cb for each file created in dir through this mount and not saved
 * yet, with fs->files_lock and the file's lock held; a non-zero return
 * stops the walk and is returned. */
static int files_pending_in(struct dynfs *fs, const char *dir,
			    int (*cb)(void *ctx, struct dynfs_file *f),
			    void *ctx)
{
	struct dynfs_file *f;
	size_t len = strlen(dir);
	int rc = 0;

	pthread_mutex_lock(&fs->files_lock);
	for (f = fs->files; f && !rc; f = f->next) {
		pthread_mutex_lock(&f->lock);
		if (!f->detached && f->pending && f->path &&
		    !strncmp(f->path, dir, len) && f->path[len] == '/' &&
		    !strchr(f->path + len + 1, '/'))
			rc = cb(ctx, f);
		pthread_mutex_unlock(&f->lock);
	}
	pthread_mutex_unlock(&fs->files_lock);
	return rc;
}

static int found_one(void *ctx, struct dynfs_file *f)
{
	(void)ctx;
	(void)f;
	return 1;
}

static int file_pending_in(struct dynfs *fs, const char *dir)
{
	return files_pending_in(fs, dir, found_one, NULL);
}

/* Save an item file that was written.  The error reaches close() and
 * fsync(); the log says which file and why.  A failed save is not tried
 * again for the same content, so one close makes one log line. */
static int file_save(struct dynfs *fs, struct dynfs_file *f, const char *op)
{
	struct aws_err err;
	struct dbuf text, why;
	char desc[700];
	char *path = NULL, *table = NULL;
	json_t *key = NULL, *orig = NULL;
	unsigned flags;
	uint64_t gen;
	int rc = 0;

	dbuf_init(&text, DBUF_CAP_BODY);
	dbuf_init(&why, DBUF_CAP_SMALL);
	awserr_clear(&err);
	pthread_mutex_lock(&f->lock);
	if (f->kind != NODE_ITEM || f->detached || !file_dirty(f)) {
		pthread_mutex_unlock(&f->lock);
		goto out;
	}
	gen = f->gen;
	if (gen == f->failed_gen) {
		rc = f->failed_rc;
		pthread_mutex_unlock(&f->lock);
		goto out;
	}
	rc = cache_scratch_text(f->buf, &text);
	path = strdup(f->path ? f->path : "?");
	table = strdup(f->table);
	key = json_incref(f->key);
	orig = json_incref(f->orig);
	flags = (f->created ? CACHE_SAVE_NEW : 0) |
		(f->excl ? CACHE_SAVE_EXCL : 0);
	pthread_mutex_unlock(&f->lock);
	if (!rc && (!path || !table))
		rc = -ENOMEM;
	if (!rc)
		rc = cache_item_save(fs->cache, table, key, dbuf_str(&text),
				     dbuf_len(&text), orig, flags, &why, &err);
	pthread_mutex_lock(&f->lock);
	if (!rc) {
		if (f->saved_gen < gen)
			f->saved_gen = gen;
		f->pending = 0;
		f->excl = 0;
	} else {
		f->failed_gen = gen;
		f->failed_rc = rc;
	}
	pthread_mutex_unlock(&f->lock);
	if (rc && !dbuf_len(&why))
		dbuf_adds(&why, err.type[0] || err.transport
					? awserr_describe(&err, desc, sizeof(desc))
					: strerror(-rc));
	if (rc)
		log_msg(LOG_LVL_ERROR, "%s %s: not saved: %s", op,
			path ? path : "?", dbuf_str(&why));
out:
	json_decref(key);
	json_decref(orig);
	free(path);
	free(table);
	dbuf_free(&text);
	dbuf_free(&why);
	return rc;
}

/* Before a rename or unlink of path: what open files wrote is saved
 * first, so it is not lost or sent under a name that is gone. */
static int files_save_at(struct dynfs *fs, const char *path, const char *op)
{
	struct dynfs_file *f, *want;
	int rc = 0, again = 1;

	while (again && !rc) {
		again = 0;
		want = NULL;
		pthread_mutex_lock(&fs->files_lock);
		for (f = fs->files; f && !want; f = f->next) {
			pthread_mutex_lock(&f->lock);
			if (f->kind == NODE_ITEM && !f->detached && f->path &&
			    !strcmp(f->path, path) && file_dirty(f) &&
			    f->gen != f->failed_gen)
				want = f;
			pthread_mutex_unlock(&f->lock);
		}
		/* A reference keeps it alive through a concurrent
		 * release while the save runs unlocked. */
		if (want)
			want->refs++;
		pthread_mutex_unlock(&fs->files_lock);
		if (want) {
			rc = file_save(fs, want, op);
			file_put(fs, want);
			again = 1;
		}
	}
	return rc;
}

/* After a rename: open files at from now are at to (with to's key), or
 * detached when to is not an item; those that were at to are replaced. */
static void files_renamed(struct dynfs *fs, const char *from, const char *to,
			  const struct node *dst)
{
	struct dynfs_file *f;

	pthread_mutex_lock(&fs->files_lock);
	for (f = fs->files; f; f = f->next) {
		pthread_mutex_lock(&f->lock);
		if (f->path && !strcmp(f->path, to)) {
			f->detached = 1;
		} else if (f->path && !strcmp(f->path, from)) {
			char *np = strdup(to);
			char *nt = dst->kind == NODE_ITEM ? strdup(dst->p.table)
							  : NULL;

			if (np && dst->kind == NODE_ITEM && nt) {
				free(f->path);
				free(f->table);
				json_decref(f->key);
				f->path = np;
				f->table = nt;
				f->key = json_incref(dst->key);
			} else {
				free(np);
				free(nt);
				f->detached = 1;
			}
		}
		pthread_mutex_unlock(&f->lock);
	}
	pthread_mutex_unlock(&fs->files_lock);
}

static void files_detach(struct dynfs *fs, const char *path)
{
	struct dynfs_file *f;

	pthread_mutex_lock(&fs->files_lock);
	for (f = fs->files; f; f = f->next) {
		pthread_mutex_lock(&f->lock);
		if (f->path && !strcmp(f->path, path))
			f->detached = 1;
		pthread_mutex_unlock(&f->lock);
	}
	pthread_mutex_unlock(&fs->files_lock);
}

/* ---- kernel cache invalidation ----------------------------------------------- */

/* Queue path for the invalidation thread. */
static void inval_push(struct dynfs *fs, const char *path)
{
	pthread_mutex_lock(&fs->inval_lock);
	if (fs->inval_started && !dbuf_add(&fs->inval, path, strlen(path) + 1))
		pthread_cond_signal(&fs->inval_cond);
	pthread_mutex_unlock(&fs->inval_lock);
}

static void *inval_main(void *arg)
{
	struct dynfs *fs = arg;
	const struct timespec pause = { 0, 20 * 1000 * 1000 };
	struct dbuf batch;
	size_t off;

	dbuf_init(&batch, DBUF_CAP_BODY);
	pthread_mutex_lock(&fs->inval_lock);
	while (!fs->inval_stop) {
		if (!dbuf_len(&fs->inval)) {
			pthread_cond_wait(&fs->inval_cond, &fs->inval_lock);
			continue;
		}
		dbuf_reset(&batch);
		if (dbuf_add(&batch, fs->inval.ptr, dbuf_len(&fs->inval)))
			dbuf_reset(&batch);
		dbuf_reset(&fs->inval);
		pthread_mutex_unlock(&fs->inval_lock);
		/* libfuse renames its own node after our rename returns:
		 * give it that moment before looking the path up. */
		nanosleep(&pause, NULL);
		for (off = 0; off < dbuf_len(&batch);
		     off += strlen(batch.ptr + off) + 1)
			fuse_invalidate_path(fs->fuse, batch.ptr + off);
		pthread_mutex_lock(&fs->inval_lock);
	}
	pthread_mutex_unlock(&fs->inval_lock);
	dbuf_free(&batch);
	return NULL;
}

static void inval_start(struct dynfs *fs)
{
	pthread_mutex_init(&fs->inval_lock, NULL);
	pthread_cond_init(&fs->inval_cond, NULL);
	dbuf_init(&fs->inval, DBUF_CAP_SMALL);
	fs->inval_stop = 0;
	fs->fuse = fuse_get_context()->fuse;
	/* Without the thread the kernel catches up after attr_timeout. */
	fs->inval_started = fs->fuse &&
			    !pthread_create(&fs->inval_thread, NULL, inval_main, fs);
}

static void inval_stop(struct dynfs *fs)
{
	int started;

	pthread_mutex_lock(&fs->inval_lock);
	started = fs->inval_started;
	fs->inval_started = 0;
	fs->inval_stop = 1;
	pthread_cond_signal(&fs->inval_cond);
	pthread_mutex_unlock(&fs->inval_lock);
	if (started)
		pthread_join(fs->inval_thread, NULL);
	dbuf_free(&fs->inval);
	pthread_cond_destroy(&fs->inval_cond);
	pthread_mutex_destroy(&fs->inval_lock);
}

/* ---- operations ----------------------------------------------------------- */

static void *dynfs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	struct dynfs *fs = dynfs_get();

	/* Every readdir is a READDIRPLUS, not only the first buffer of a
	 * directory (the kernel's "auto" mode): `find` then `cat` of every
	 * file would otherwise cost a LOOKUP per file, answered from the
	 * very listing readdir had. */
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	/* Entries and attributes stay in the kernel for the kernel's share
	 * of cache_ttl; readdir fills them (FUSE_FILL_DIR_PLUS). */
	cfg->entry_timeout = fs->kernel_ttl;
	cfg->attr_timeout = fs->kernel_ttl;
	cfg->negative_timeout = fs->kernel_ttl;
	cfg->use_ino = 0;
	cfg->direct_io = 0;
	cfg->kernel_cache = 0;
	cfg->auto_cache = 0;
	/* Open files carry their own identity, so they need no path, and
	 * an unlinked open file is simply detached instead of being
	 * renamed to .fuse_hidden (which would be a scratch rename). */
	cfg->nullpath_ok = 1;
	cfg->hard_remove = 1;
	inval_start(fs);
	return fs;
}

/* Unmount: anything written and not yet saved is saved now. */
static void dynfs_destroy(void *private_data)
{
	struct dynfs *fs = private_data;
	struct dynfs_file *f, *next;

	if (!fs)
		return;
	inval_stop(fs);
	pthread_mutex_lock(&fs->files_lock);
	f = fs->files;
	fs->files = NULL;
	pthread_mutex_unlock(&fs->files_lock);
	for (; f; f = next) {
		next = f->next;
		f->registered = 0;
		file_save(fs, f, "unmount");
		/* The kernel no longer holds the handle: the connection is
		 * gone, no release will come. */
		file_free(f);
	}
	cache_stop(fs->cache, DYNFS_SYNC_WAIT_MS);
}

static int dynfs_getattr(const char *path, struct stat *st,
			 struct fuse_file_info *fi)
{
	struct dynfs *fs = dynfs_get();
	struct dynfs_file *f = file_of(fi);
	struct cache_scratch_stat ss;
	struct cache_stat cs;
	struct aws_err err;
	struct node n;
	size_t size;
	time_t mtime;
	int rc;

	if (f && f->kind != NODE_ITEM && f->kind != NODE_SCRATCH)
		path = f->path; /* a directory */
	else if (f) {
		pthread_mutex_lock(&f->lock);
		cache_scratch_fstat(f->buf, &ss);
		if (f->kind == NODE_ITEM)
			stat_file(fs, st, ss.size, f->mtime);
		else
			stat_scratch(fs, st, &ss);
		pthread_mutex_unlock(&f->lock);
		return 0;
	}
	rc = node_resolve(fs, path, USE_LOOKUP, &n, &err);
	if (rc)
		return dynfs_fail("lookup", path, rc, &err);
	switch (n.kind) {
	case NODE_ROOT:
	case NODE_TABLES:
		stat_dir(fs, st);
		break;
	case NODE_TABLE:
		rc = cache_table_exists(fs->cache, n.p.table, &err);
		if (!rc)
			stat_dir(fs, st);
		break;
	case NODE_PART:
		rc = cache_part_stat(fs->cache, n.p.table, n.pvalue, &err);
		if (rc == -ENOENT &&
		    (cache_scratch_count(fs->cache, path) ||
		     file_pending_in(fs, path)))
			rc = 0;
		if (!rc)
			stat_dir(fs, st);
		break;
	case NODE_ITEM:
		if (file_stat_open(fs, path, &size, &mtime)) {
			stat_file(fs, st, size, mtime);
			break;
		}
		rc = cache_item_stat(fs->cache, n.p.table, n.key, &cs, &err);
		if (!rc)
			stat_file(fs, st, cs.size, cs.mtime);
		break;
	case NODE_SCRATCH:
		rc = cache_scratch_stat(fs->cache, path, &ss);
		if (!rc)
			stat_scratch(fs, st, &ss);
		break;
	case NODE_API:
	case NODE_CTL:
		rc = -ENOENT; /* node_resolve never gives one */
		break;
	}
	node_free(&n);
	return rc ? dynfs_fail("lookup", path, rc, &err) : 0;
}

/* A directory handle's entries, packed in its ents: each is a struct
 * dent, for DENT_STAT a struct stat, then the name and a NUL, 8-byte
 * aligned.  readdir at offset 0 (opendir, rewinddir) starts a listing
 * and hands its entries to the kernel one buffer at a time as they come,
 * each with the offset of the next, so libfuse never holds a whole
 * listing (a 100,000-item table is about 4 MB here, against 20 MB in
 * libfuse's own list). */
enum dent_kind {
	DENT_PLAIN, /* "." and ".." */
	DENT_DIR,
	DENT_FILE,
	DENT_STAT,
};

struct dent {
	int64_t mtime; /* DENT_FILE */
	uint32_t size; /* DENT_FILE (an item is at most 400 KB of text) */
	uint16_t len;  /* bytes of the whole record */
	uint8_t kind;
	uint8_t pad;
};

/* A cap far above any listing: the entries of a million items fit. */
#define DYNFS_DIR_CAP ((size_t)1 << 30)

/* A listing being made for a directory handle by a thread of its own,
 * so that readdir hands the kernel the first entries while Scan pages
 * are still coming, and `ls -l` stats them meanwhile.  Lock order: lock
 * is a leaf; the thread appends under it, readdir reads under it. */
struct dirlist {
	pthread_mutex_t lock;
	pthread_cond_t more;
	struct dbuf ents;   /* the packed entries so far */
	int done;           /* under lock: the listing ended ... */
	int rc;             /* ... with this */
	struct aws_err err;
	struct dynfs *fs;
	char *path;
	pthread_t tid;
	int started;        /* tid runs (joined by dirlist_end) */
	int stop;           /* under lock: the handle is closing */
};

struct dynfs_fill {
	struct dynfs *fs;
	struct dirlist *dl;   /* the entries go there, under its lock */
	char type;
	struct dbuf name;
};

static int dent_add(struct dbuf *ents, enum dent_kind kind, const char *name,
		    size_t size, time_t mtime, const struct stat *st)
{
	static const char zeros[8];
	size_t nlen = strlen(name), extra = kind == DENT_STAT ? sizeof(*st) : 0;
	size_t len = (sizeof(struct dent) + extra + nlen + 1 + 7) & ~(size_t)7;
	struct dent d;
	int rc;

	if (len > UINT16_MAX)
		return -ENAMETOOLONG;
	memset(&d, 0, sizeof(d));
	d.len = (uint16_t)len;
	d.kind = (uint8_t)kind;
	d.size = size > UINT32_MAX ? UINT32_MAX : (uint32_t)size;
	d.mtime = mtime;
	rc = dbuf_add(ents, &d, sizeof(d));
	if (!rc && extra)
		rc = dbuf_add(ents, st, extra);
	if (!rc)
		rc = dbuf_add(ents, name, nlen);
	if (!rc)
		rc = dbuf_add(ents, zeros, len - sizeof(d) - extra - nlen);
	return rc;
}

static int fill_add(struct dynfs_fill *f, enum dent_kind kind,
		    const char *name, size_t size, time_t mtime,
		    const struct stat *st)
{
	int rc;

	pthread_mutex_lock(&f->dl->lock);
	/* Nobody will read the rest: the Scan stops at its next page. */
	rc = f->dl->stop ? -ECANCELED
			 : dent_add(&f->dl->ents, kind, name, size, mtime, st);
	pthread_cond_broadcast(&f->dl->more);
	pthread_mutex_unlock(&f->dl->lock);
	return rc;
}

static int fill_name(void *ctx, const char *name)
{
	struct dynfs_fill *f = ctx;

	return fill_add(f, DENT_DIR, name, 0, 0, NULL);
}

static int fill_entry(void *ctx, const json_t *value,
		      const struct cache_stat *cs)
{
	struct dynfs_fill *f = ctx;

	dbuf_reset(&f->name);
	if (path_encode(value, cs->is_dir, f->type, &f->name)) {
		/* Not a key this table can have (another client wrote
		 * through a different schema?): nothing to show. */
		log_msg(LOG_LVL_DEBUG, "readdir: skipped a key that has no "
			"file name");
		return 0;
	}
	return fill_add(f, cs->is_dir ? DENT_DIR : DENT_FILE,
			dbuf_str(&f->name), cs->size, cs->mtime, NULL);
}

static int fill_scratch(void *ctx, const char *name,
			const struct cache_scratch_stat *ss)
{
	struct dynfs_fill *f = ctx;
	struct stat st;

	stat_scratch(f->fs, &st, ss);
	return fill_add(f, DENT_STAT, name, 0, 0, &st);
}

/* Files created through this mount and not saved yet (an open O_CREAT
 * that has not reached close) are listed too: a program that creates a
 * file expects ls to show it. */
static int fill_pending(void *ctx, struct dynfs_file *p)
{
	struct dynfs_fill *f = ctx;
	struct cache_scratch_stat ss;
	struct stat st;

	cache_scratch_fstat(p->buf, &ss);
	stat_file(f->fs, &st, ss.size, p->mtime);
	return fill_add(f, DENT_STAT, strrchr(p->path, '/') + 1, 0, 0, &st);
}

/* Directories keep their path in their handle: with nullpath_ok,
 * readdir gets none. */
static int dynfs_opendir(const char *path, struct fuse_file_info *fi)
{
	struct dynfs *fs = dynfs_get();
	struct dynfs_file *d;
	struct aws_err err;
	struct node n;
	int rc;

	rc = node_resolve(fs, path, USE_LOOKUP, &n, &err);
	if (rc)
		return dynfs_fail("opendir", path, rc, &err);
	if (n.kind == NODE_ITEM || n.kind == NODE_SCRATCH)
		rc = -ENOTDIR;
	d = rc ? NULL : file_new(n.kind, path);
	node_free(&n);
	if (rc)
		return rc;
	if (!d)
		return -ENOMEM;
	fi->fh = (uintptr_t)d;
	return 0;
}

static int dynfs_releasedir(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	file_free(file_of(fi));
	return 0;
}

/* The entries of the directory at path, into dl as they come. */
static int dir_fill(struct dynfs *fs, const char *path, struct dirlist *dl,
		    struct aws_err *err)
{
	struct dynfs_fill f;
	struct node n;
	int rc;

	memset(&f, 0, sizeof(f));
	f.fs = fs;
	f.dl = dl;
	dbuf_init(&f.name, DBUF_CAP_SMALL);
	rc = node_resolve(fs, path, USE_LOOKUP, &n, err);
	if (rc)
		goto out;
	rc = fill_add(&f, DENT_PLAIN, ".", 0, 0, NULL);
	if (!rc)
		rc = fill_add(&f, DENT_PLAIN, "..", 0, 0, NULL);
	switch (rc ? NODE_CTL : n.kind) {
	case NODE_ROOT:
		rc = fill_name(&f, "tables");
		if (!rc && fs->apifs)
			rc = fill_name(&f, "apis");
		if (!rc && fs->apifs)
			rc = fill_name(&f, "functions");
		break;
	case NODE_TABLES:
		rc = cache_tables(fs->cache, fill_name, &f, err);
		break;
	case NODE_TABLE:
		rc = cache_table_schema(fs->cache, n.p.table, &n.s, err);
		if (rc)
			break;
		f.type = n.s.pk.type;
		rc = cache_list(fs->cache, n.p.table, NULL, fill_entry, &f,
				err);
		break;
	case NODE_PART:
		f.type = n.s.sk.type;
		rc = cache_list(fs->cache, n.p.table, n.pvalue, fill_entry, &f,
				err);
		break;
	case NODE_CTL:
		break; /* rc from dent_add */
	default:
		rc = -ENOTDIR;
		break;
	}
	if (!rc && (n.kind == NODE_TABLE || n.kind == NODE_PART)) {
		files_pending_in(fs, path, fill_pending, &f);
		cache_scratch_list(fs->cache, path, fill_scratch, &f);
	}
	node_free(&n);
out:
	dbuf_free(&f.name);
	return rc;
}

static void *dirlist_main(void *arg)
{
	struct dirlist *dl = arg;
	struct aws_err err;
	int rc;

	awserr_clear(&err);
	rc = dir_fill(dl->fs, dl->path, dl, &err);
	pthread_mutex_lock(&dl->lock);
	dl->rc = rc;
	dl->err = err;
	dl->done = 1;
	pthread_cond_broadcast(&dl->more);
	pthread_mutex_unlock(&dl->lock);
	return NULL;
}

/* Stop the listing's thread (a handle closed early, as by `ls | head` or
 * find -quit, ends the Scan at its next page instead of reading the whole
 * table), wait for it and free it. */
static void dirlist_end(struct dirlist *dl)
{
	if (!dl)
		return;
	if (dl->started) {
		pthread_mutex_lock(&dl->lock);
		dl->stop = 1;
		pthread_mutex_unlock(&dl->lock);
		pthread_join(dl->tid, NULL);
	}
	pthread_cond_destroy(&dl->more);
	pthread_mutex_destroy(&dl->lock);
	dbuf_free(&dl->ents);
	free(dl->path);
	free(dl);
}

/* A listing of path, made by a new thread or, when none can be started,
 * here and now. */
static struct dirlist *dirlist_start(struct dynfs *fs, const char *path)
{
	struct dirlist *dl = calloc(1, sizeof(*dl));

	if (!dl)
		return NULL;
	pthread_mutex_init(&dl->lock, NULL);
	pthread_cond_init(&dl->more, NULL);
	dbuf_init(&dl->ents, DYNFS_DIR_CAP);
	awserr_clear(&dl->err);
	dl->fs = fs;
	dl->path = strdup(path);
	if (!dl->path) {
		dirlist_end(dl);
		return NULL;
	}
	if (!pthread_create(&dl->tid, NULL, dirlist_main, dl))
		dl->started = 1;
	else
		dirlist_main(dl);
	return dl;
}

/* Hand entries from pos on to filler: at least one (waiting for it)
 * unless the listing is over, then as many as are there and fit. */
static int dirlist_serve(struct dirlist *dl, struct dynfs *fs, void *buf,
			 fuse_fill_dir_t filler, size_t pos,
			 struct aws_err *err)
{
	struct stat st;
	int rc = 0, served = 0;

	pthread_mutex_lock(&dl->lock);
	for (;;) {
		const struct dent *e;
		const struct stat *stp = &st;
		const char *name;
		size_t len = dbuf_len(&dl->ents);

		while (!served && !dl->done &&
		       (pos + sizeof(*e) > len ||
			((const struct dent *)(dl->ents.ptr + pos))->len >
				len - pos)) {
			pthread_cond_wait(&dl->more, &dl->lock);
			len = dbuf_len(&dl->ents);
		}
		e = (const struct dent *)(dl->ents.ptr + pos);
		if (pos + sizeof(*e) > len || pos % 8 || e->len < sizeof(*e) ||
		    e->len > len - pos)
			break; /* nothing more now, or not an offset we gave */
		name = (const char *)(e + 1);
		switch (e->kind) {
		case DENT_PLAIN:
			stp = NULL;
			break;
		case DENT_DIR:
			stat_dir(fs, &st);
			break;
		case DENT_FILE:
			stat_file(fs, &st, e->size, e->mtime);
			break;
		default:
			stp = (const struct stat *)(e + 1);
			name = (const char *)(stp + 1);
			break;
		}
		if (filler(buf, name, stp, (off_t)(pos + e->len),
			   stp ? FUSE_FILL_DIR_PLUS : 0))
			break; /* the kernel's buffer is full */
		pos += e->len;
		served++;
	}
	/* A failed listing: what came before it was handed out, then the
	 * error. */
	if (!served && dl->done && dl->rc) {
		rc = dl->rc;
		*err = dl->err;
	}
	pthread_mutex_unlock(&dl->lock);
	return rc;
}

static int dynfs_readdir(const char *dpath, void *buf, fuse_fill_dir_t filler,
			 off_t off, struct fuse_file_info *fi,
			 enum fuse_readdir_flags flags)
{
	struct dynfs *fs = dynfs_get();
	struct dynfs_file *d = file_of(fi);
	const char *path = d ? d->path : dpath;
	struct dirlist *dl;
	struct aws_err err;
	int rc;

	(void)flags;
	awserr_clear(&err);
	if (off == 0 || !d || !d->dl) {
		/* A listing as of now: opendir, or rewinddir. */
		dl = dirlist_start(fs, path);
		if (!dl)
			return -ENOMEM;
		if (d) {
			dirlist_end(d->dl);
			d->dl = dl;
		}
	} else {
		dl = d->dl;
	}
	rc = dirlist_serve(dl, fs, buf, filler, off > 0 ? (size_t)off : 0,
			   &err);
	if (!d)
		dirlist_end(dl); /* no handle (never with opendir): no state */
	return rc ? dynfs_fail("list", path, rc, &err) : 0;
}

enum open_how {
	OPEN_EXISTING, /* open(): the item, or a file being created */
	OPEN_CREATE,   /* create() without O_EXCL: the item if it exists */
	OPEN_NEW,      /* create() with O_EXCL: must not exist */
};

/* Fill a new item file from the item (or not, for O_TRUNC). */
static int item_file_open(struct dynfs *fs, const char *path, struct node *n,
			  struct fuse_file_info *fi, enum open_how how,
			  struct dynfs_file **out, struct aws_err *err)
{
	struct dynfs_file *f = NULL;
	struct cache_stat cs;
	struct dbuf text;
	json_t *item = NULL;
	int rc, same = 0, trunc, writable;

	*out = NULL;
	dbuf_init(&text, DBUF_CAP_BODY);
	writable = (fi->flags & O_ACCMODE) != O_RDONLY;
	trunc = writable && (fi->flags & O_TRUNC);
	memset(&cs, 0, sizeof(cs));
	if (how == OPEN_NEW) {
		/* EEXIST from open() for what exists now; the save at close
		 * is conditional too, for a writer that comes in between.
		 * Nothing is created before the content is known, so a
		 * rejected save leaves no item behind. */
		rc = cache_item_stat(fs->cache, n->p.table, n->key, &cs, err);
		if (!rc)
			rc = -EEXIST;
		if (rc != -ENOENT)
			goto out;
	} else {
		/* Only a writer needs the typed item (the hint of its
		 * save); reading it costs a parse per open. */
		rc = cache_item_read(fs->cache, n->p.table, n->key, &text,
				     writable ? &item : NULL, &cs, &same,
				     err);
	}
	if (rc == -ENOENT && how == OPEN_EXISTING) {
		size_t size;
		time_t mtime;

		/* Created by another open and not saved yet: this one
		 * sees it empty, and saves only what it writes. */
		if (!file_stat_open(fs, path, &size, &mtime))
			goto out;
	}
	if (rc && rc != -ENOENT)
		goto out;
	f = file_new(NODE_ITEM, path);
	if (!f) {
		rc = -ENOMEM;
		goto out;
	}
	f->writable = writable;
	f->table = strdup(n->p.table);
	f->key = json_incref(n->key);
	f->orig = item;
	item = NULL;
	f->mtime = cs.mtime;
	if (rc == -ENOENT) {
		/* A new item: it reaches DynamoDB when the file is saved,
		 * even if nothing is written (touch). */
		f->created = 1;
		f->pending = 1;
		f->excl = how == OPEN_NEW;
		f->gen = how != OPEN_EXISTING;
		f->mtime = time(NULL);
		dbuf_reset(&text);
	} else if (trunc) {
		f->gen = 1;
		f->mtime = time(NULL);
		dbuf_reset(&text);
	}
	rc = f->table ? cache_scratch_make(dbuf_str(&text), dbuf_len(&text),
					   NULL, &f->buf)
		      : -ENOMEM;
	if (rc)
		goto out;
	/* While a writer has it open, the key's record (what this mount
	 * last read and wrote of it, which the save is conditional on)
	 * stays in memory. */
	if (writable)
		cache_item_hold(fs->cache, n->p.table, n->key, &f->hold);
	/* Keep the kernel's pages only when they hold this very text. */
	fi->keep_cache = same && !f->gen;
	fi->direct_io = 0;
	/* A reader's close has nothing to save: no FLUSH round trip
	 * (find | xargs cat closes every item it reads). */
	fi->noflush = !writable && !f->pending;
	*out = f;
	f = NULL;
out:
	file_free(f);
	json_decref(item);
	dbuf_free(&text);
	return rc;
}

static int dynfs_open(const char *path, struct fuse_file_info *fi)
{
	struct dynfs *fs = dynfs_get();
	struct dynfs_file *f = NULL;
	struct aws_err err;
	struct node n;
	unsigned sflags;
	int rc, writable = (fi->flags & O_ACCMODE) != O_RDONLY;

	if (fs->opts.ro && (writable || (fi->flags & O_TRUNC)))
		return -EROFS;
	rc = node_resolve(fs, path, USE_LOOKUP, &n, &err);
	if (rc)
		return dynfs_fail("open", path, rc, &err);
	switch (n.kind) {
	case NODE_ITEM:
		rc = item_file_open(fs, path, &n, fi, OPEN_EXISTING, &f,
				    &err);
		if (!rc)
			file_register(fs, f);
		break;
	case NODE_SCRATCH:
		f = file_new(NODE_SCRATCH, path);
		if (!f) {
			rc = -ENOMEM;
			break;
		}
		sflags = writable && (fi->flags & O_TRUNC)
				 ? CACHE_SCRATCH_TRUNC : 0;
		rc = cache_scratch_open(fs->cache, path, sflags, 0, &f->buf);
		break;
	default:
		rc = -EISDIR;
		break;
	}
	node_free(&n);
	if (rc) {
		file_free(f);
		return dynfs_fail("open", path, rc, &err);
	}
	fi->fh = (uintptr_t)f;
	return 0;
}

static int dynfs_create(const char *path, mode_t mode,
			struct fuse_file_info *fi)
{
	struct dynfs *fs = dynfs_get();
	struct dynfs_file *f = NULL;
	struct aws_err err;
	struct node n;
	unsigned sflags;
	int rc;

	if (fs->opts.ro)
		return -EROFS;
	rc = node_resolve(fs, path, USE_CREATE, &n, &err);
	if (rc == -EINVAL) {
		log_msg(LOG_LVL_ERROR, "create %s: the name is not a valid "
			"key of the table", path);
		return rc;
	}
	if (rc)
		return dynfs_fail("create", path, rc, &err);
	switch (n.kind) {
	case NODE_ITEM:
		if (fi->flags & O_EXCL) {
			rc = item_file_open(fs, path, &n, fi, OPEN_NEW, &f,
					    &err);
		} else {
			rc = item_file_open(fs, path, &n, fi, OPEN_CREATE, &f,
					    &err);
		}
		if (!rc)
			file_register(fs, f);
		break;
	case NODE_SCRATCH:
		f = file_new(NODE_SCRATCH, path);
		if (!f) {
			rc = -ENOMEM;
			break;
		}
		sflags = CACHE_SCRATCH_CREATE;
		if (fi->flags & O_EXCL)
			sflags |= CACHE_SCRATCH_EXCL;
		if (fi->flags & O_TRUNC)
			sflags |= CACHE_SCRATCH_TRUNC;
		rc = cache_scratch_open(fs->cache, path, sflags, mode, &f->buf);
		break;
	default:
		rc = -EISDIR;
		break;
	}
	node_free(&n);
	if (rc) {
		file_free(f);
		return rc == -EEXIST ? rc : dynfs_fail("create", path, rc, &err);
	}
	fi->fh = (uintptr_t)f;
	return 0;
}

static int dynfs_read(const char *path, char *buf, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	struct dynfs_file *f = file_of(fi);
	ssize_t n;

	(void)path;
	if (!f)
		return -EBADF;
	n = cache_scratch_read(f->buf, buf, size, off);
	return (int)n;
}

static int dynfs_write(const char *path, const char *buf, size_t size,
		       off_t off, struct fuse_file_info *fi)
{
	struct dynfs *fs = dynfs_get();
	struct dynfs_file *f = file_of(fi);
	ssize_t n;

	(void)path;
	if (!f)
		return -EBADF;
	if (fs->opts.ro)
		return -EROFS;
	if (size > INT_MAX)
		size = INT_MAX;
	pthread_mutex_lock(&f->lock);
	n = cache_scratch_write(f->buf, buf, size, off);
	if (n >= 0) {
		f->gen++;
		f->written = 1;
		f->mtime = time(NULL);
	}
	pthread_mutex_unlock(&f->lock);
	return (int)n;
}

static int dynfs_flush(const char *path, struct fuse_file_info *fi)
{
	struct dynfs_file *f = file_of(fi);
	int wait;

	(void)path;
	if (!f)
		return 0;
	/* A shell's `> file` closes a duplicate of the descriptor before
	 * anything is written: an existing item only truncated so far is
	 * saved at release, not at that first close.  A new file is saved
	 * at once (touch). */
	pthread_mutex_lock(&f->lock);
	wait = f->kind == NODE_ITEM && !f->written && !f->pending;
	pthread_mutex_unlock(&f->lock);
	return wait ? 0 : file_save(dynfs_get(), f, "close");
}

static int dynfs_fsync(const char *path, int datasync,
		       struct fuse_file_info *fi)
{
	struct dynfs *fs = dynfs_get();
	struct dynfs_file *f = file_of(fi);
	char *table = NULL;
	json_t *key = NULL;
	int rc;

	(void)path;
	(void)datasync;
	if (!f)
		return 0;
	rc = file_save(fs, f, "fsync");
	if (rc || f->kind != NODE_ITEM)
		return rc;
	/* Written back means in the journal; fsync means in DynamoDB. */
	pthread_mutex_lock(&f->lock);
	if (!f->detached && f->table) {
		table = strdup(f->table);
		key = json_incref(f->key);
	}
	pthread_mutex_unlock(&f->lock);
	if (table && key)
		rc = cache_item_sync(fs->cache, table, key, DYNFS_SYNC_WAIT_MS);
	if (rc)
		log_msg(LOG_LVL_ERROR, "fsync %s: %s", f->path ? f->path : "?",
			rc == -ESTALE ? "the item was changed elsewhere; your "
					"version is kept (see the log line "
					"before)"
				      : "the item is not in DynamoDB yet; it "
					"stays queued");
	free(table);
	json_decref(key);
	return rc;
}

static int dynfs_release(const char *path, struct fuse_file_info *fi)
{
	struct dynfs *fs = dynfs_get();
	struct dynfs_file *f = file_of(fi);

	(void)path;
	if (!f)
		return 0;
	/* flush came first; this catches a write after it (mmap). */
	file_save(fs, f, "close");
	file_unregister(fs, f);
	file_put(fs, f);
	return 0;
}

/* truncate(2) of an item by name: the text cut or zero-extended, saved. */
static int item_truncate(struct dynfs *fs, const char *path, struct node *n,
			 off_t size, struct aws_err *err)
{
	struct dynfs_file *f = NULL;
	struct fuse_file_info fi;
	int rc;

	memset(&fi, 0, sizeof(fi));
	fi.flags = O_RDWR;
	rc = item_file_open(fs, path, n, &fi, OPEN_EXISTING, &f, err);
	if (rc)
		return rc;
	rc = cache_scratch_truncate(f->buf, size);
	if (!rc) {
		f->gen++;
		rc = file_save(fs, f, "truncate");
	}
	file_free(f);
	return rc;
}

/* The newest open, writable item file at path: truncate by name applies
 * to it (an O_TRUNC open on kernels that send it separately). */
static int files_truncate_at(struct dynfs *fs, const char *path, off_t size,
			     int *done)
{
	struct dynfs_file *f;
	int rc = 0;

	*done = 0;
	pthread_mutex_lock(&fs->files_lock);
	for (f = fs->files; f && !*done; f = f->next) {
		pthread_mutex_lock(&f->lock);
		if (f->kind == NODE_ITEM && !f->detached && f->writable &&
		    f->path && !strcmp(f->path, path)) {
			rc = cache_scratch_truncate(f->buf, size);
			if (!rc) {
				f->gen++;
				f->mtime = time(NULL);
			}
			*done = 1;
		}
		pthread_mutex_unlock(&f->lock);
	}
	pthread_mutex_unlock(&fs->files_lock);
	return rc;
}

static int dynfs_truncate(const char *path, off_t size,
			  struct fuse_file_info *fi)
{
	struct dynfs *fs = dynfs_get();
	struct dynfs_file *f = file_of(fi);
	struct cache_scratch *s = NULL;
	struct aws_err err;
	struct node n;
	int rc, done;

	if (fs->opts.ro)
		return -EROFS;
	if (f) {
		pthread_mutex_lock(&f->lock);
		rc = cache_scratch_truncate(f->buf, size);
		if (!rc) {
			f->gen += f->kind == NODE_ITEM;
			f->mtime = time(NULL);
		}
		pthread_mutex_unlock(&f->lock);
		return rc;
	}
	rc = node_resolve(fs, path, USE_LOOKUP, &n, &err);
	if (rc)
		return dynfs_fail("truncate", path, rc, &err);
	switch (n.kind) {
	case NODE_ITEM:
		rc = files_truncate_at(fs, path, size, &done);
		if (!done)
			rc = item_truncate(fs, path, &n, size, &err);
		break;
	case NODE_SCRATCH:
		rc = cache_scratch_open(fs->cache, path, 0, 0, &s);
		if (!rc)
			rc = cache_scratch_truncate(s, size);
		cache_scratch_put(s);
		break;
	default:
		rc = -EISDIR;
		break;
	}
	node_free(&n);
	return rc;
}

static int dynfs_unlink(const char *path)
{
	struct dynfs *fs = dynfs_get();
	struct aws_err err;
	struct node n;
	int rc;

	if (fs->opts.ro)
		return -EROFS;
	rc = node_resolve(fs, path, USE_LOOKUP, &n, &err);
	if (rc)
		return dynfs_fail("rm", path, rc, &err);
	switch (n.kind) {
	case NODE_ITEM:
		rc = cache_item_delete(fs->cache, n.p.table, n.key, &err);
		if (rc == -ENOENT) {
			size_t size;
			time_t mtime;

			/* Only created here, never saved: nothing to
			 * delete remotely. */
			if (file_stat_open(fs, path, &size, &mtime))
				rc = 0;
		}
		if (!rc)
			files_detach(fs, path);
		break;
	case NODE_SCRATCH:
		rc = cache_scratch_unlink(fs->cache, path);
		break;
	default:
		rc = -EISDIR;
		break;
	}
	node_free(&n);
	return rc ? dynfs_fail("rm", path, rc, &err) : 0;
}

static int dynfs_rename(const char *from, const char *to, unsigned int flags)
{
	struct dynfs *fs = dynfs_get();
	struct aws_err err;
	struct node a, b;
	struct dbuf why;
	unsigned cflags = 0;
	int rc;

	if (fs->opts.ro)
		return -EROFS;
	if (flags & ~(unsigned)RENAME_NOREPLACE)
		return -EINVAL; /* RENAME_EXCHANGE, RENAME_WHITEOUT */
	if (flags & RENAME_NOREPLACE)
		cflags |= CACHE_SAVE_EXCL;
	dbuf_init(&why, DBUF_CAP_SMALL);
	rc = node_resolve(fs, from, USE_LOOKUP, &a, &err);
	if (rc)
		return dynfs_fail("mv", from, rc, &err);
	rc = node_resolve(fs, to, USE_CREATE, &b, &err);
	if (rc) {
		node_free(&a);
		if (rc != -EINVAL)
			return dynfs_fail("mv", to, rc, &err);
		log_msg(LOG_LVL_ERROR, "mv %s %s: the new name is not a valid "
			"key of the table", from, to);
		return rc;
	}
	if (a.kind != NODE_ITEM && a.kind != NODE_SCRATCH) {
		/* Directories do not move; mv then copies file by file. */
		rc = -EXDEV;
		goto out;
	}
	if (b.kind != NODE_ITEM && b.kind != NODE_SCRATCH) {
		rc = -EISDIR;
		goto out;
	}
	if (a.kind == NODE_ITEM) {
		rc = files_save_at(fs, from, "mv");
		if (rc)
			goto out;
	}
	if (a.kind == NODE_ITEM && b.kind == NODE_ITEM) {
		rc = cache_item_move(fs->cache, a.p.table, a.key, b.p.table,
				     b.key, cflags, &err);
	} else if (a.kind == NODE_ITEM) {
		if ((cflags & CACHE_SAVE_EXCL) && scratch_exists(fs, to))
			rc = -EEXIST;
		else
			rc = cache_item_to_scratch(fs->cache, a.p.table, a.key,
						   to, &err);
	} else if (b.kind == NODE_ITEM) {
		rc = cache_scratch_save(fs->cache, from, b.p.table, b.key,
					cflags, &why, &err);
		if (rc && dbuf_len(&why)) {
			log_msg(LOG_LVL_ERROR, "mv %s %s: not saved: %s", from,
				to, dbuf_str(&why));
			goto out;
		}
	} else {
		rc = cache_scratch_rename(fs->cache, from, to, cflags);
	}
	if (!rc) {
		files_renamed(fs, from, to, &b);
		/* The kernel moved the old inode, whose size is the old
		 * text's; the item's text (key rewritten, or rendered from
		 * what was saved) may differ. */
		if (b.kind == NODE_ITEM)
			inval_push(fs, to);
	} else if (rc != -EEXIST && rc != -EXDEV)
		dynfs_fail("mv", from, rc, &err);
out:
	node_free(&a);
	node_free(&b);
	dbuf_free(&why);
	return rc;
}

static int dynfs_mkdir(const char *path, mode_t mode)
{
	struct dynfs *fs = dynfs_get();
	struct aws_err err;
	struct node n;
	int rc;

	(void)mode;
	if (fs->opts.ro)
		return -EROFS;
	rc = node_resolve(fs, path, USE_MKDIR, &n, &err);
	if (rc == -EINVAL) {
		log_msg(LOG_LVL_ERROR, "mkdir %s: the name is not a valid "
			"partition key of the table", path);
		return rc;
	}
	if (rc)
		return rc == -EPERM ? rc : dynfs_fail("mkdir", path, rc, &err);
	if (n.kind == NODE_PART)
		rc = cache_part_make(fs->cache, n.p.table, n.pvalue, &err);
	else if (n.kind == NODE_ROOT || n.kind == NODE_TABLES ||
		 n.kind == NODE_TABLE)
		rc = -EEXIST;
	else
		rc = -EPERM; /* no directories besides partitions */
	node_free(&n);
	return rc && rc != -EEXIST && rc != -EPERM
		       ? dynfs_fail("mkdir", path, rc, &err) : rc;
}

static int dynfs_rmdir(const char *path)
{
	struct dynfs *fs = dynfs_get();
	struct aws_err err;
	struct node n;
	int rc;

	if (fs->opts.ro)
		return -EROFS;
	rc = node_resolve(fs, path, USE_LOOKUP, &n, &err);
	if (rc)
		return dynfs_fail("rmdir", path, rc, &err);
	if (n.kind == NODE_PART) {
		if (cache_scratch_count(fs->cache, path) ||
		    file_pending_in(fs, path))
			rc = -ENOTEMPTY;
		else
			rc = cache_part_remove(fs->cache, n.p.table, n.pvalue,
					       &err);
	} else if (n.kind == NODE_ITEM || n.kind == NODE_SCRATCH) {
		rc = -ENOTDIR;
	} else {
		rc = -EPERM; /* tables are not deleted through the mount */
	}
	node_free(&n);
	return rc && rc != -ENOTEMPTY && rc != -ENOTDIR && rc != -EPERM
		       ? dynfs_fail("rmdir", path, rc, &err) : rc;
}

/* A scratch file by fi or path, for chmod and utimens; NULL for the rest
 * (items and directories, whose mode and times are the mount's). */
static int scratch_of(struct dynfs *fs, const char *path,
		      struct fuse_file_info *fi, struct cache_scratch **out)
{
	struct dynfs_file *f = file_of(fi);
	struct aws_err err;
	struct node n;
	int rc;

	*out = NULL;
	if (f) {
		if (f->kind == NODE_SCRATCH)
			*out = f->buf;
		return 0;
	}
	rc = node_resolve(fs, path, USE_LOOKUP, &n, &err);
	if (rc)
		return dynfs_fail("lookup", path, rc, &err);
	if (n.kind == NODE_SCRATCH)
		rc = cache_scratch_open(fs->cache, path, 0, 0, out);
	node_free(&n);
	return rc;
}

static int dynfs_chmod(const char *path, mode_t mode,
		       struct fuse_file_info *fi)
{
	struct dynfs *fs = dynfs_get();
	struct cache_scratch *s;
	int rc;

	if (fs->opts.ro)
		return -EROFS;
	rc = scratch_of(fs, path, fi, &s);
	if (rc || !s)
		return rc; /* items: accepted, their mode is fixed */
	cache_scratch_set_mode(s, mode);
	if (!file_of(fi))
		cache_scratch_put(s);
	return 0;
}

static int dynfs_chown(const char *path, uid_t uid, gid_t gid,
		       struct fuse_file_info *fi)
{
	struct dynfs *fs = dynfs_get();

	(void)path;
	(void)fi;
	if (fs->opts.ro)
		return -EROFS;
	/* Everything belongs to the mounting user: giving it to them is
	 * fine (editors do), to anyone else is not possible. */
	if ((uid != (uid_t)-1 && uid != fs->uid) ||
	    (gid != (gid_t)-1 && gid != fs->gid))
		return -EPERM;
	return 0;
}

static int dynfs_utimens(const char *path, const struct timespec tv[2],
			 struct fuse_file_info *fi)
{
	struct dynfs *fs = dynfs_get();
	struct cache_scratch *s;
	int rc;

	if (fs->opts.ro)
		return -EROFS;
	rc = scratch_of(fs, path, fi, &s);
	if (rc || !s)
		return rc; /* items: their mtime follows their content */
	cache_scratch_set_times(s, tv);
	if (!file_of(fi))
		cache_scratch_put(s);
	return 0;
}

static int dynfs_statfs(const char *path, struct statvfs *st)
{
	(void)path;
	memset(st, 0, sizeof(*st));
	/* DynamoDB has no size limit worth showing; tools that check for
	 * free space before writing find plenty. */
	st->f_bsize = 4096;
	st->f_frsize = 4096;
	st->f_blocks = 1ULL << 32;
	st->f_bfree = 1ULL << 32;
	st->f_bavail = 1ULL << 32;
	st->f_files = 1ULL << 32;
	st->f_ffree = 1ULL << 32;
	st->f_favail = 1ULL << 32;
	st->f_namemax = KEYNAME_MAX_DIR;
	return 0;
}

/* ---- .dynfs/stats ----------------------------------------------------------
 *
 * A read-only file whose text is the counters at open: requests by
 * operation, retries, throttles, cache hits and misses, pending writes,
 * bytes.  One "name value" per line, for grep and awk. */

#define CTL_DIR "/.dynfs"
#define CTL_STATS "/.dynfs/stats"

static int ctl_path(const char *path)
{
	return path && (!strcmp(path, CTL_DIR) || !strcmp(path, CTL_STATS));
}

static int stats_op(void *ctx, const char *op, uint64_t n)
{
	return dbuf_addf(ctx, "requests_%s %llu\n", op, (unsigned long long)n);
}

static int stats_text(struct dynfs *fs, struct dbuf *out)
{
	struct svc_stats st;

	svc_get_stats(fs->ddb_svc, &st);
	dbuf_addf(out, "requests %llu\nretries %llu\nthrottles %llu\n"
		  "errors %llu\nbytes_out %llu\nbytes_in %llu\n",
		  (unsigned long long)st.requests,
		  (unsigned long long)st.retries,
		  (unsigned long long)st.throttles,
		  (unsigned long long)st.errors,
		  (unsigned long long)st.bytes_out,
		  (unsigned long long)st.bytes_in);
	svc_stats_ops(fs->ddb_svc, stats_op, out);
	cache_stats(fs->cache, out);
	return dbuf_len(out) ? 0 : -ENOMEM;
}

static int ctl_getattr(struct dynfs *fs, const char *path, struct stat *st)
{
	if (!strcmp(path, CTL_DIR)) {
		stat_dir(fs, st);
		return 0;
	}
	stat_file(fs, st, 0, time(NULL));
	st->st_mode = S_IFREG | 0444;
	return 0;
}

static int ctl_open(struct dynfs *fs, const char *path,
		    struct fuse_file_info *fi)
{
	struct dynfs_file *f;
	struct dbuf text;
	int rc;

	if (!strcmp(path, CTL_DIR))
		return -EISDIR;
	if ((fi->flags & O_ACCMODE) != O_RDONLY)
		return -EACCES;
	f = file_new(NODE_CTL, path);
	if (!f)
		return -ENOMEM;
	dbuf_init(&text, DBUF_CAP_BODY);
	rc = stats_text(fs, &text);
	f->ctl_text = rc ? NULL : dbuf_take(&text, &f->ctl_len);
	dbuf_free(&text);
	if (!f->ctl_text) {
		file_free(f);
		return -ENOMEM;
	}
	/* The size is known only once the text is made. */
	fi->direct_io = 1;
	fi->fh = (uintptr_t)f;
	return 0;
}

static int ctl_read(struct dynfs_file *f, char *buf, size_t size, off_t off)
{
	if (off < 0 || (size_t)off >= f->ctl_len)
		return 0;
	if (size > f->ctl_len - (size_t)off)
		size = f->ctl_len - (size_t)off;
	memcpy(buf, f->ctl_text + off, size);
	return (int)size;
}

/* ---- apis/ and functions/: handed to apifs --------------------------------
 *
 * Every operation first asks whether apifs owns the path or the handle.
 * An apifs handle is wrapped in a NODE_API file so that handles of both
 * kinds share fi->fh; apifs sees its own value there during its call. */

static struct apifs *api_path(struct dynfs *fs, const char *path)
{
	return fs->apifs && path && apifs_owns(path) ? fs->apifs : NULL;
}

static struct dynfs_file *api_file(struct fuse_file_info *fi)
{
	struct dynfs_file *f = file_of(fi);

	return f && f->kind == NODE_API ? f : NULL;
}

static void api_fi_in(const struct fuse_file_info *fi,
		      const struct dynfs_file *f, struct fuse_file_info *tmp)
{
	*tmp = *fi;
	tmp->fh = f->api_fh;
}

/* What apifs set (direct_io, nonseekable, its handle) goes back to the
 * kernel's fi, under the wrapper's handle. */
static void api_fi_out(struct fuse_file_info *fi, struct dynfs_file *f,
		       const struct fuse_file_info *tmp)
{
	f->api_fh = tmp->fh;
	*fi = *tmp;
	fi->fh = (uintptr_t)f;
}

static int top_getattr(const char *path, struct stat *st,
		       struct fuse_file_info *fi)
{
	struct dynfs *fs = dynfs_get();
	struct dynfs_file *f = api_file(fi);
	struct fuse_file_info tmp;

	if (f && f->api_fh) {
		api_fi_in(fi, f, &tmp);
		return apifs_getattr(fs->apifs, f->path, st, &tmp);
	}
	if (f)
		return apifs_getattr(fs->apifs, f->path, st, NULL);
	if (api_path(fs, path))
		return apifs_getattr(fs->apifs, path, st, NULL);
	if (file_of(fi) && file_of(fi)->kind == NODE_CTL)
		return ctl_getattr(fs, file_of(fi)->path, st);
	if (ctl_path(path))
		return ctl_getattr(fs, path, st);
	return dynfs_getattr(path, st, fi);
}

static int top_opendir(const char *path, struct fuse_file_info *fi)
{
	struct dynfs *fs = dynfs_get();
	struct dynfs_file *d;
	struct stat st;
	int rc;

	if (ctl_path(path)) {
		if (strcmp(path, CTL_DIR))
			return -ENOTDIR;
		d = file_new(NODE_CTL, path);
		if (!d)
			return -ENOMEM;
		fi->fh = (uintptr_t)d;
		return 0;
	}
	if (!api_path(fs, path))
		return dynfs_opendir(path, fi);
	rc = apifs_getattr(fs->apifs, path, &st, NULL);
	if (rc)
		return rc;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	d = file_new(NODE_API, path);
	if (!d)
		return -ENOMEM;
	fi->fh = (uintptr_t)d;
	return 0;
}

static int top_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
		       off_t off, struct fuse_file_info *fi,
		       enum fuse_readdir_flags flags)
{
	struct dynfs *fs = dynfs_get();
	struct dynfs_file *d = api_file(fi);

	if (d)
		return apifs_readdir(fs->apifs, d->path, buf, filler, off,
				     NULL, flags);
	if (api_path(fs, path))
		return apifs_readdir(fs->apifs, path, buf, filler, off, NULL,
				     flags);
	if ((file_of(fi) && file_of(fi)->kind == NODE_CTL) || ctl_path(path)) {
		filler(buf, ".", NULL, 0, 0);
		filler(buf, "..", NULL, 0, 0);
		filler(buf, "stats", NULL, 0, 0);
		return 0;
	}
	return dynfs_readdir(path, buf, filler, off, fi, flags);
}

static int top_releasedir(const char *path, struct fuse_file_info *fi)
{
	return dynfs_releasedir(path, fi); /* a NODE_API dir holds nothing */
}

/* open and create of an apifs file: call (apifs_open or apifs_create)
 * with a fresh fi, then wrap the handle. */
static int api_open(struct dynfs *fs, const char *path, mode_t mode,
		    int create, struct fuse_file_info *fi)
{
	struct fuse_file_info tmp = *fi;
	struct dynfs_file *f;
	int rc;

	f = file_new(NODE_API, path);
	if (!f)
		return -ENOMEM;
	tmp.fh = 0;
	rc = create ? apifs_create(fs->apifs, path, mode, &tmp)
		    : apifs_open(fs->apifs, path, &tmp);
	if (rc) {
		file_free(f);
		return rc;
	}
	api_fi_out(fi, f, &tmp);
	return 0;
}

static int top_open(const char *path, struct fuse_file_info *fi)
{
	struct dynfs *fs = dynfs_get();

	if (api_path(fs, path))
		return api_open(fs, path, 0, 0, fi);
	if (ctl_path(path))
		return ctl_open(fs, path, fi);
	return dynfs_open(path, fi);
}

static int top_create(const char *path, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct dynfs *fs = dynfs_get();

	if (api_path(fs, path))
		return api_open(fs, path, mode, 1, fi);
	if (ctl_path(path))
		return -EACCES;
	return dynfs_create(path, mode, fi);
}

static int top_read(const char *path, char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct dynfs_file *f = api_file(fi);
	struct fuse_file_info tmp;
	int rc;

	if (file_of(fi) && file_of(fi)->kind == NODE_CTL)
		return ctl_read(file_of(fi), buf, size, off);
	if (!f)
		return dynfs_read(path, buf, size, off, fi);
	api_fi_in(fi, f, &tmp);
	rc = apifs_read(dynfs_get()->apifs, f->path, buf, size, off, &tmp);
	api_fi_out(fi, f, &tmp);
	return rc;
}

static int top_write(const char *path, const char *buf, size_t size,
		     off_t off, struct fuse_file_info *fi)
{
	struct dynfs_file *f = api_file(fi);
	struct fuse_file_info tmp;
	int rc;

	if (file_of(fi) && file_of(fi)->kind == NODE_CTL)
		return -EBADF;
	if (!f)
		return dynfs_write(path, buf, size, off, fi);
	api_fi_in(fi, f, &tmp);
	rc = apifs_write(dynfs_get()->apifs, f->path, buf, size, off, &tmp);
	api_fi_out(fi, f, &tmp);
	return rc;
}

static int top_flush(const char *path, struct fuse_file_info *fi)
{
	struct dynfs_file *f = api_file(fi);
	struct fuse_file_info tmp;
	int rc;

	if (file_of(fi) && file_of(fi)->kind == NODE_CTL)
		return 0;
	if (!f)
		return dynfs_flush(path, fi);
	api_fi_in(fi, f, &tmp);
	rc = apifs_flush(dynfs_get()->apifs, f->path, &tmp);
	api_fi_out(fi, f, &tmp);
	return rc;
}

static int top_fsync(const char *path, int datasync,
		     struct fuse_file_info *fi)
{
	struct dynfs_file *f = api_file(fi);
	struct fuse_file_info tmp;
	int rc;

	if (file_of(fi) && file_of(fi)->kind == NODE_CTL)
		return 0;
	if (!f)
		return dynfs_fsync(path, datasync, fi);
	api_fi_in(fi, f, &tmp);
	rc = apifs_fsync(dynfs_get()->apifs, f->path, datasync, &tmp);
	api_fi_out(fi, f, &tmp);
	return rc;
}

static int top_release(const char *path, struct fuse_file_info *fi)
{
	struct dynfs_file *f = api_file(fi);
	struct fuse_file_info tmp;
	int rc;

	if (file_of(fi) && file_of(fi)->kind == NODE_CTL) {
		file_free(file_of(fi));
		return 0;
	}
	if (!f)
		return dynfs_release(path, fi);
	api_fi_in(fi, f, &tmp);
	rc = apifs_release(dynfs_get()->apifs, f->path, &tmp);
	file_free(f);
	return rc;
}

/* poll(2): apifs answers for every file, a socket with its state and
 * any other file (passed with fi NULL) as always ready. */
static int top_poll(const char *path, struct fuse_file_info *fi,
		    struct fuse_pollhandle *ph, unsigned *reventsp)
{
	struct dynfs_file *f = api_file(fi);
	struct fuse_file_info tmp;

	if (!f || !f->api_fh)
		return apifs_poll(dynfs_get()->apifs, path, NULL, ph,
				  reventsp);
	api_fi_in(fi, f, &tmp);
	return apifs_poll(dynfs_get()->apifs, f->path, &tmp, ph, reventsp);
}

static int top_truncate(const char *path, off_t size,
			struct fuse_file_info *fi)
{
	struct dynfs *fs = dynfs_get();
	struct dynfs_file *f = api_file(fi);
	struct fuse_file_info tmp;
	int rc;

	if (f) {
		api_fi_in(fi, f, &tmp);
		rc = apifs_truncate(fs->apifs, f->path, size, &tmp);
		api_fi_out(fi, f, &tmp);
		return rc;
	}
	if (api_path(fs, path))
		return apifs_truncate(fs->apifs, path, size, NULL);
	if (ctl_path(path) || (file_of(fi) && file_of(fi)->kind == NODE_CTL))
		return -EACCES;
	return dynfs_truncate(path, size, fi);
}

static int top_unlink(const char *path)
{
	if (ctl_path(path))
		return -EPERM;
	return api_path(dynfs_get(), path) ? -EPERM : dynfs_unlink(path);
}

static int top_rename(const char *from, const char *to, unsigned int flags)
{
	struct dynfs *fs = dynfs_get();

	if (api_path(fs, from) || api_path(fs, to) || ctl_path(from) ||
	    ctl_path(to))
		return -EPERM;
	return dynfs_rename(from, to, flags);
}

static int top_mkdir(const char *path, mode_t mode)
{
	return api_path(dynfs_get(), path) ? -EPERM : dynfs_mkdir(path, mode);
}

static int top_rmdir(const char *path)
{
	return api_path(dynfs_get(), path) ? -EPERM : dynfs_rmdir(path);
}

/* Modes and times of apifs files are fixed; changing them is accepted
 * so that `touch` and shells' redirections do not fail. */
static int top_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	if (api_file(fi) || api_path(dynfs_get(), path))
		return 0;
	return dynfs_chmod(path, mode, fi);
}

static int top_chown(const char *path, uid_t uid, gid_t gid,
		     struct fuse_file_info *fi)
{
	if (api_file(fi) || api_path(dynfs_get(), path))
		return 0;
	return dynfs_chown(path, uid, gid, fi);
}

static int top_utimens(const char *path, const struct timespec tv[2],
		       struct fuse_file_info *fi)
{
	if (api_file(fi) || api_path(dynfs_get(), path))
		return 0;
	return dynfs_utimens(path, tv, fi);
}

/* Extended attributes exist only on apifs files (user.*); tables' files
 * have none.  dynfs has no SELinux labels, POSIX ACLs or file
 * capabilities, and says so with EOPNOTSUPP rather than ENODATA: ls -l
 * asks for security.selinux and system.posix_acl_access of every file,
 * but stops asking for a whole device once it hears "not supported",
 * which saves two round trips per listed file. */
static int top_getxattr(const char *path, const char *name, char *value,
			size_t size)
{
	struct dynfs *fs = dynfs_get();

	if (!strncmp(name, "security.", 9) || !strncmp(name, "system.", 7))
		return -EOPNOTSUPP;
	if (api_path(fs, path))
		return apifs_getxattr(fs->apifs, path, name, value, size);
	return -ENODATA;
}

static int top_setxattr(const char *path, const char *name,
			const char *value, size_t size, int flags)
{
	struct dynfs *fs = dynfs_get();

	if (api_path(fs, path))
		return apifs_setxattr(fs->apifs, path, name, value, size,
				      flags);
	return -ENOTSUP;
}

static int top_listxattr(const char *path, char *list, size_t size)
{
	struct dynfs *fs = dynfs_get();

	if (api_path(fs, path))
		return apifs_listxattr(fs->apifs, path, list, size);
	return 0;
}

static int top_removexattr(const char *path, const char *name)
{
	struct dynfs *fs = dynfs_get();

	if (api_path(fs, path))
		return apifs_removexattr(fs->apifs, path, name);
	return -ENODATA;
}

const struct fuse_operations dynfs_ops = {
	.init = dynfs_init,
	.destroy = dynfs_destroy,
	.getattr = top_getattr,
	.opendir = top_opendir,
	.readdir = top_readdir,
	.releasedir = top_releasedir,
	.open = top_open,
	.create = top_create,
	.read = top_read,
	.write = top_write,
	.flush = top_flush,
	.fsync = top_fsync,
	.release = top_release,
	.poll = top_poll,
	.truncate = top_truncate,
	.unlink = top_unlink,
	.rename = top_rename,
	.mkdir = top_mkdir,
	.rmdir = top_rmdir,
	.chmod = top_chmod,
	.chown = top_chown,
	.utimens = top_utimens,
	.statfs = dynfs_statfs,
	.getxattr = top_getxattr,
	.setxattr = top_setxattr,
	.listxattr = top_listxattr,
	.removexattr = top_removexattr,
};
