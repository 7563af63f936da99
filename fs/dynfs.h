/* The mount's state, kept as FUSE private data (fuse_get_context()). */
#ifndef DYNFS_DYNFS_H
#define DYNFS_DYNFS_H

#define FUSE_USE_VERSION 31
#include <fuse.h>

#include "backend/awscfg.h"
#include "backend/creds.h"
#include "backend/ddb.h"
#include "backend/http.h"
#include "backend/svc.h"
#include "cache/cache.h"

struct dynfs_opts {
	char *region;
	char *profile;
	char *endpoint;
	unsigned cache_ttl;
};

struct dynfs {
	struct dynfs_opts opts;
	const char *region;    /* resolved; points into opts or cfg */
	char *ddb_endpoint;    /* resolved */
	struct awscfg *cfg;
	struct creds_chain *creds;
	struct http_client *http;
	struct svc *ddb_svc;
	struct ddb *ddb;
	struct cache *cache;
};

/* The FUSE operations (fsops.c). */
extern const struct fuse_operations dynfs_ops;

#endif
