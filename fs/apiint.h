/* apiint: what the parts of apifs share, private to fs/apifs.c (options,
 * FUSE operations, xattrs), fs/apitree.c (the cached listings and what a
 * path names) and fs/apisession.c (invocations, stored responses,
 * sockets).  docs/apis.md is the contract. */
#ifndef DYNFS_APIINT_H
#define DYNFS_APIINT_H

#include <pthread.h>
#include <sys/types.h>
#include <time.h>

#include "backend/apigw.h"
#include "backend/creds.h"
#include "backend/dbuf.h"
#include "backend/exapi.h"
#include "backend/lambda.h"
#include "backend/svc.h"
#include "fs/apifs.h"

#define APIFS_DEFAULT_TTL 30     /* apis_ttl: listings, seconds */
#define APIFS_DEFAULT_TIMEOUT 30 /* apis_timeout: one invocation, seconds */
#define APIFS_DEFAULT_KEEP 60    /* apis_keep: stored responses, seconds */

struct apifs_opts {
	unsigned ttl;
	unsigned timeout;
	unsigned keep;
	char *connect;     /* apis_connect=HOST:PORT */
	char *cafile;      /* apis_cafile=FILE */
	char *apigw_ep;    /* apigw_endpoint=URL */
	char *apigwv2_ep;  /* apigwv2_endpoint=URL */
	char *lambda_ep;   /* lambda_endpoint=URL */
	struct dbuf headers; /* apis_header=: "Name\0Value\0" pairs */
};

/* ---- apitree.c: listings and names ------------------------------------ */

struct apitree;

int apitree_new(struct apitree **out, struct apigw *gw, struct lambda *lam,
		unsigned ttl_s);
void apitree_free(struct apitree *t);

enum api_target_kind {
	TARGET_DIR,      /* a directory */
	TARGET_METHOD,   /* apis/A/S/.../METHOD[?query] */
	TARGET_FUNCTION, /* functions/F */
	TARGET_SOCKET,   /* apis/A/S/socket of a WebSocket API */
};

/* What a path names, copied out of the listings so that no lock is held
 * while it is used. */
struct api_target {
	enum api_target_kind kind;
	char *api_id;   /* METHOD, SOCKET */
	char *stage;    /* METHOD, SOCKET: the stage's real name */
	char *req_path; /* METHOD: "/orders/42", decoded */
	char *query;    /* METHOD: after '?', as given; NULL */
	char *method;   /* METHOD: "GET", ... */
	char *function; /* FUNCTION: the name (with ":qualifier") */
	char *file;     /* METHOD: the path without "?query" (header key) */
	int sign;       /* METHOD: AWS_IAM; SOCKET: $connect is AWS_IAM */
};

void api_target_free(struct api_target *t);

/* Resolve path (starting "/apis" or "/functions"): 0 with t filled,
 * -ENOENT, or the -errno of a failed listing (err says why). */
int apitree_resolve(struct apitree *t, const char *path,
		    struct api_target *out, struct aws_err *err);

typedef int (*apitree_fill_fn)(void *ctx, const char *name, int is_dir);

/* The names in directory path; fill is called under the tree's lock and
 * must not call back into apifs. */
int apitree_list(struct apitree *t, const char *path, apitree_fill_fn fill,
		 void *ctx, struct aws_err *err);

/* Append name escaped for a file name: '%', '/', '~', bytes below 0x20,
 * 0x7F and a leading '.' become %XX. */
int apiname_escape(struct dbuf *out, const char *name);

/* ---- apisession.c: open files ----------------------------------------- */

struct apisess;
struct apifile;

struct apisess_opts {
	unsigned keep_s;
	const char *region;
	const char *connect;
	const char *cafile;
	long timeout_ms;
	const struct dbuf *headers; /* mount headers: "Name\0Value\0" pairs */
};

/* ex, lam and creds are borrowed. */
int apisess_new(struct apisess **out, struct exapi *ex, struct lambda *lam,
		struct creds_chain *creds, const struct apisess_opts *o);
/* Waits for invocations still running (each is bounded by the timeout). */
void apisess_free(struct apisess *s);

/* path is the path at open; t is taken (and cleared) on success. */
int apisess_open(struct apisess *s, const char *path, struct api_target *t,
		 int flags, struct apifile **out);
ssize_t apisess_read(struct apisess *s, struct apifile *f, char *buf,
		     size_t size);
ssize_t apisess_write(struct apisess *s, struct apifile *f, const char *buf,
		      size_t size);
int apisess_truncate(struct apisess *s, struct apifile *f, off_t size);
int apisess_flush(struct apisess *s, struct apifile *f);
/* poll(2): *revents now; ph (may be NULL) is taken: a socket keeps it
 * and notifies it once a read would no longer block. */
int apisess_poll(struct apisess *s, struct apifile *f,
		 struct fuse_pollhandle *ph, unsigned *revents);
void apisess_release(struct apisess *s, struct apifile *f);

/* Response xattrs of the last response on file (the path at open, query
 * included) of the calling process or its parent (docs/apis.md):
 * "status", "headers" or "log".  Appends the value to out; -ENODATA. */
int apisess_meta(struct apisess *s, const char *file, const char *what,
		 struct dbuf *out);

/* Request headers set with setxattr on a METHOD file (keyed by the path
 * without the query), per mount. */
int apisess_header_set(struct apisess *s, const char *file, const char *name,
		       const char *value, size_t len);
int apisess_header_get(struct apisess *s, const char *file, const char *name,
		       struct dbuf *out);
int apisess_header_del(struct apisess *s, const char *file, const char *name);
/* Appends "user.dynfs.header.NAME\0" for each header of file. */
int apisess_header_names(struct apisess *s, const char *file,
			 struct dbuf *out);

#endif
