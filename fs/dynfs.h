/* The mount's state, kept as FUSE private data (fuse_get_context()). */
#ifndef DYNFS_DYNFS_H
#define DYNFS_DYNFS_H

#define FUSE_USE_VERSION 31
#include <fuse.h>

#include <pthread.h>
#include <sys/types.h>
#include <time.h>

#include "backend/awscfg.h"
#include "backend/creds.h"
#include "backend/ddb.h"
#include "backend/dbuf.h"
#include "backend/ddbjson.h"
#include "backend/http.h"
#include "backend/svc.h"
#include "cache/cache.h"
#include "fs/apifs.h"

struct dynfs_opts {
	char *region;
	char *profile;
	char *endpoint;
	char *json;         /* "plain" (default) or "dynamodb" */
	unsigned cache_ttl; /* seconds */
	int ro;             /* -o ro, also passed on to libfuse */
	char *cache_dir;    /* the write-back journal's directory */
	unsigned writeback_delay; /* ms */
	int scan_segments;
	unsigned cache_size;      /* MB */
	char *version_attr;
	int strict_create;
};

struct dynfs_file;

struct dynfs {
	struct dynfs_opts opts;
	const char *region;    /* resolved; points into opts or cfg */
	char *ddb_endpoint;    /* resolved */
	char *cache_dir;       /* resolved */
	enum ddbjson_format fmt;
	uid_t uid;             /* owner shown for every file */
	gid_t gid;
	time_t mount_time;
	double kernel_ttl;     /* entry and attribute timeout of the kernel */
	struct awscfg *cfg;
	struct creds_chain *creds;
	struct http_client *http;
	struct svc *ddb_svc;
	struct ddb *ddb;
	struct cache *cache;
	struct apifs_opts *apifs_opts;
	struct apifs *apifs;   /* apis/ and functions/ */

	/* Open item files, for stat of a file being written and for saving
	 * what is left at unmount.  Lock order: files_lock, then a file's
	 * own lock; never held across a cache call. */
	pthread_mutex_t files_lock;
	struct dynfs_file *files;

	/* Paths whose kernel attributes and pages went stale behind the
	 * kernel's back (an item renamed onto a name shows a text of
	 * another size): a thread tells the kernel, outside the operation
	 * that caused it, as libfuse requires.  Lock order: a leaf. */
	struct fuse *fuse;
	pthread_mutex_t inval_lock;
	pthread_cond_t inval_cond;
	struct dbuf inval;      /* paths, each followed by a NUL byte */
	int inval_stop;
	int inval_started;
	pthread_t inval_thread;
};

/* The FUSE operations (fsops.c). */
extern const struct fuse_operations dynfs_ops;

/* How long the kernel and the cache each trust what they saw, so that
 * together they stay within cache_ttl (fsops.c). */
void dynfs_split_ttl(unsigned cache_ttl, double *kernel_s, unsigned *cache_ms);

#endif
