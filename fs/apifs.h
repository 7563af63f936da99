/* apifs: the mount's apis/ and functions/ subtrees, files that invoke
 * API Gateway routes and Lambda functions (docs/apis.md is the contract).
 * fsops.c hands every path under /apis and /functions to the functions
 * below, which have the FUSE operations' meaning and return values.
 * Nothing here touches the network before the subtree is used. */
#ifndef DYNFS_APIFS_H
#define DYNFS_APIFS_H

#define FUSE_USE_VERSION 31
#include <fuse.h>

#include "backend/awscfg.h"
#include "backend/creds.h"
#include "backend/dbuf.h"
#include "backend/http.h"

struct apifs;

/* Its own -o options (apis_connect=, apis_cafile=, endpoints...), taken
 * out of args with its own fuse_opt table.  -1 on a parse error (libfuse
 * printed why). */
struct apifs_opts;
int apifs_opts_parse(struct fuse_args *args, struct apifs_opts **out);
void apifs_opts_free(struct apifs_opts *o);
/* Lines for --help. */
void apifs_opts_help(void);

/* Resolves endpoints (AWS_ENDPOINT_URL_API_GATEWAY, ..._APIGATEWAYV2,
 * ..._LAMBDA, AWS_ENDPOINT_URL, then the options); no request.  cfg,
 * creds, http borrowed.  On failure why gets one sentence. */
int apifs_new(struct apifs **out, const struct apifs_opts *o,
	      const struct awscfg *cfg, const char *region,
	      struct creds_chain *creds, struct http_client *http,
	      uid_t uid, gid_t gid, time_t mount_time, struct dbuf *why);
void apifs_free(struct apifs *a);

/* 1 for "/apis", "/functions" and the paths below them. */
int apifs_owns(const char *path);

int apifs_getattr(struct apifs *a, const char *path, struct stat *st,
		  struct fuse_file_info *fi);
int apifs_readdir(struct apifs *a, const char *path, void *buf,
		  fuse_fill_dir_t filler, off_t off, struct fuse_file_info *fi,
		  enum fuse_readdir_flags flags);
int apifs_open(struct apifs *a, const char *path, struct fuse_file_info *fi);
int apifs_create(struct apifs *a, const char *path, mode_t mode,
		 struct fuse_file_info *fi);
int apifs_read(struct apifs *a, const char *path, char *buf, size_t size,
	       off_t off, struct fuse_file_info *fi);
int apifs_write(struct apifs *a, const char *path, const char *buf,
		size_t size, off_t off, struct fuse_file_info *fi);
int apifs_truncate(struct apifs *a, const char *path, off_t size,
		   struct fuse_file_info *fi);
int apifs_flush(struct apifs *a, const char *path, struct fuse_file_info *fi);
int apifs_fsync(struct apifs *a, const char *path, int datasync,
		struct fuse_file_info *fi);
int apifs_release(struct apifs *a, const char *path,
		  struct fuse_file_info *fi);
/* poll(2) for every file of the mount: fi is apifs's file, or NULL for
 * one that is not (always ready, as a regular file).  ph (may be NULL)
 * is taken. */
int apifs_poll(struct apifs *a, const char *path, struct fuse_file_info *fi,
	       struct fuse_pollhandle *ph, unsigned *reventsp);
int apifs_getxattr(struct apifs *a, const char *path, const char *name,
		   char *value, size_t size);
int apifs_setxattr(struct apifs *a, const char *path, const char *name,
		   const char *value, size_t size, int flags);
int apifs_listxattr(struct apifs *a, const char *path, char *list,
		    size_t size);
int apifs_removexattr(struct apifs *a, const char *path, const char *name);
/* utimens, chmod and the like on apifs paths: accepted, no effect. */

#endif
