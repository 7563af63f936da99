/* apifs: apis/ and functions/ (docs/apis.md).  This file holds the
 * options, the set-up and the FUSE operations; fs/apitree.c knows the
 * tree, fs/apisession.c the invocations. */
#include "fs/apifs.h"

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "fs/apiint.h"
#include "fs/log.h"

struct apifs {
	uid_t uid;
	gid_t gid;
	time_t mount_time;
	char *ep_v1;
	char *ep_v2;
	char *ep_lambda;
	struct svc *sv1;
	struct svc *sv2;
	struct svc *slambda;
	struct apigw *gw;
	struct lambda *lam;
	struct exapi *ex;
	struct apitree *tree;
	struct apisess *sess;
};

/* ---- options ----------------------------------------------------------- */

#define APIFS_OPT(t, p) { t, offsetof(struct apifs_opts, p), 1 }

enum { APIFS_KEY_HEADER };

static const struct fuse_opt apifs_opt_spec[] = {
	APIFS_OPT("apis_ttl=%u", ttl),
	APIFS_OPT("apis_timeout=%u", timeout),
	APIFS_OPT("apis_keep=%u", keep),
	APIFS_OPT("apis_connect=%s", connect),
	APIFS_OPT("apis_cafile=%s", cafile),
	APIFS_OPT("apigw_endpoint=%s", apigw_ep),
	APIFS_OPT("apigwv2_endpoint=%s", apigwv2_ep),
	APIFS_OPT("lambda_endpoint=%s", lambda_ep),
	FUSE_OPT_KEY("apis_header=", APIFS_KEY_HEADER),
	FUSE_OPT_END
};

/* An HTTP header name: RFC 9110's token characters. */
static int header_name_ok(const char *s, size_t len)
{
	size_t i;

	if (!len)
		return 0;
	for (i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') ||
		      strchr("!#$%&'*+-.^_`|~", s[i])))
			return 0;
	return 1;
}

/* apis_header=Name:Value, repeatable; a ',' in the value is written
 * "\," (libfuse's escape). */
static int apifs_opt_proc(void *data, const char *arg, int key,
			  struct fuse_args *outargs)
{
	struct apifs_opts *o = data;
	const char *h, *colon, *v;
	int rc;

	(void)outargs;
	if (key != APIFS_KEY_HEADER)
		return 1;
	h = arg + strlen("apis_header=");
	colon = strchr(h, ':');
	if (!colon || !header_name_ok(h, (size_t)(colon - h)) ||
	    strpbrk(colon, "\r\n")) {
		fprintf(stderr, "dynfs: bad -o %s: use apis_header=Name:Value\n",
			arg);
		return -1;
	}
	for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
		;
	rc = dbuf_add(&o->headers, h, (size_t)(colon - h));
	if (!rc)
		rc = dbuf_addc(&o->headers, '\0');
	if (!rc)
		rc = dbuf_add(&o->headers, v, strlen(v) + 1);
	return rc ? -1 : 0;
}

int apifs_opts_parse(struct fuse_args *args, struct apifs_opts **out)
{
	struct apifs_opts *o = calloc(1, sizeof(*o));
	int rc = -1;

	*out = o;
	if (!o)
		goto out;
	o->ttl = APIFS_DEFAULT_TTL;
	o->timeout = APIFS_DEFAULT_TIMEOUT;
	o->keep = APIFS_DEFAULT_KEEP;
	dbuf_init(&o->headers, DBUF_CAP_SMALL);
	if (fuse_opt_parse(args, o, apifs_opt_spec, apifs_opt_proc) == -1)
		goto out;
	if (o->timeout == 0) {
		fprintf(stderr, "dynfs: bad -o apis_timeout=0: "
			"use a number of seconds above 0\n");
		goto out;
	}
	rc = 0;
out:
	return rc;
}

void apifs_opts_free(struct apifs_opts *o)
{
	if (!o)
		return;
	free(o->connect);
	free(o->cafile);
	free(o->apigw_ep);
	free(o->apigwv2_ep);
	free(o->lambda_ep);
	dbuf_free(&o->headers);
	free(o);
}

void apifs_opts_help(void)
{
	printf("\napis/ and functions/ options (docs/apis.md):\n"
	       "    -o apis_ttl=SECONDS    keep API and function listings this long\n"
	       "                           (default %d)\n"
	       "    -o apis_timeout=SECONDS  bound of one invocation (default %d)\n"
	       "    -o apis_keep=SECONDS   keep a write-only session's response for\n"
	       "                           the next read this long (default %d)\n"
	       "    -o apis_header=NAME:VALUE  request header of every API call\n"
	       "                           (repeatable; write ',' as '\\,')\n"
	       "    -o apis_connect=HOST:PORT  send execute-api and WebSocket traffic\n"
	       "                           there (curl's --connect-to)\n"
	       "    -o apis_cafile=FILE    CA certificates for execute-api and WebSockets\n"
	       "    -o apigw_endpoint=URL  API Gateway (REST) endpoint (else\n"
	       "                           AWS_ENDPOINT_URL_API_GATEWAY, AWS_ENDPOINT_URL)\n"
	       "    -o apigwv2_endpoint=URL  API Gateway v2 endpoint (else\n"
	       "                           AWS_ENDPOINT_URL_APIGATEWAYV2, AWS_ENDPOINT_URL)\n"
	       "    -o lambda_endpoint=URL Lambda endpoint (else AWS_ENDPOINT_URL_LAMBDA,\n"
	       "                           AWS_ENDPOINT_URL)\n",
	       APIFS_DEFAULT_TTL, APIFS_DEFAULT_TIMEOUT, APIFS_DEFAULT_KEEP);
}

/* ---- set-up ------------------------------------------------------------ */

static int endpoint(const struct awscfg *cfg, const char *override,
		    const char *env_id, const char *host, const char *region,
		    char **out, struct dbuf *why)
{
	int rc = awscfg_endpoint(cfg, override, env_id, host, region, out);

	if (rc) {
		dbuf_addf_opt(why, "bad %s endpoint: %s", env_id,
			      strerror(-rc));
		return rc;
	}
	if (strncmp(*out, "http://", 7) && strncmp(*out, "https://", 8)) {
		dbuf_addf_opt(why, "bad %s endpoint '%s': it must start with "
			      "http:// or https://", env_id, *out);
		return -EINVAL;
	}
	return 0;
}

static int make_svc(struct svc **out, struct http_client *http,
		    struct creds_chain *creds, const char *ep,
		    const char *region, const char *service, struct dbuf *why)
{
	struct svc_opts so;
	int rc;

	memset(&so, 0, sizeof(so));
	so.endpoint = ep;
	so.region = region;
	so.service = service;
	rc = svc_new(out, http, creds, &so);
	if (rc) {
		dbuf_addf_opt(why, "bad %s endpoint '%s': %s", service, ep,
			      strerror(-rc));
		return rc;
	}
	svc_set_log(*out, log_request, NULL);
	return 0;
}

int apifs_new(struct apifs **out, const struct apifs_opts *o,
	      const struct awscfg *cfg, const char *region,
	      struct creds_chain *creds, struct http_client *http,
	      uid_t uid, gid_t gid, time_t mount_time, struct dbuf *why)
{
	struct exapi_opts eo;
	struct apisess_opts so;
	struct apifs *a;
	int rc;

	*out = NULL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->uid = uid;
	a->gid = gid;
	a->mount_time = mount_time;
	rc = endpoint(cfg, o->apigw_ep, "API_GATEWAY", "apigateway", region,
		      &a->ep_v1, why);
	if (!rc)
		rc = endpoint(cfg, o->apigwv2_ep, "APIGATEWAYV2", "apigateway",
			      region, &a->ep_v2, why);
	if (!rc)
		rc = endpoint(cfg, o->lambda_ep, "LAMBDA", "lambda", region,
			      &a->ep_lambda, why);
	if (!rc)
		rc = make_svc(&a->sv1, http, creds, a->ep_v1, region,
			      "apigateway", why);
	if (!rc)
		rc = make_svc(&a->sv2, http, creds, a->ep_v2, region,
			      "apigateway", why);
	if (!rc)
		rc = make_svc(&a->slambda, http, creds, a->ep_lambda, region,
			      "lambda", why);
	if (!rc)
		rc = apigw_new(&a->gw, a->sv1, a->sv2);
	if (!rc)
		rc = lambda_new(&a->lam, a->slambda);
	if (rc)
		goto out;
	memset(&eo, 0, sizeof(eo));
	eo.region = region;
	eo.connect_to = o->connect;
	eo.ca_file = o->cafile;
	eo.timeout_ms = (long)o->timeout * 1000;
	rc = exapi_new(&a->ex, creds, &eo);
	if (rc) {
		dbuf_addf_opt(why, "cannot set up execute-api calls (check "
			      "-o apis_connect= and -o apis_cafile=): %s",
			      strerror(-rc));
		goto out;
	}
	rc = apitree_new(&a->tree, a->gw, a->lam, o->ttl);
	if (rc)
		goto out;
	memset(&so, 0, sizeof(so));
	so.keep_s = o->keep;
	so.region = region;
	so.connect = o->connect;
	so.cafile = o->cafile;
	so.timeout_ms = (long)o->timeout * 1000;
	so.headers = &o->headers;
	rc = apisess_new(&a->sess, a->ex, a->lam, creds, &so);
	if (rc)
		goto out;
	log_msg(LOG_LVL_DEBUG, "apis: API Gateway %s and %s, Lambda %s%s%s",
		a->ep_v1, a->ep_v2, a->ep_lambda,
		o->connect ? ", execute-api traffic to " : "",
		o->connect ? o->connect : "");
	*out = a;
out:
	if (rc)
		apifs_free(a);
	return rc;
}

void apifs_free(struct apifs *a)
{
	if (!a)
		return;
	apisess_free(a->sess);
	apitree_free(a->tree);
	exapi_free(a->ex);
	lambda_free(a->lam);
	apigw_free(a->gw);
	svc_free(a->sv1);
	svc_free(a->sv2);
	svc_free(a->slambda);
	free(a->ep_v1);
	free(a->ep_v2);
	free(a->ep_lambda);
	free(a);
}

/* ---- the operations ----------------------------------------------------- */

static int under(const char *path, const char *top)
{
	size_t n = strlen(top);

	return !strncmp(path, top, n) && (path[n] == '\0' || path[n] == '/');
}

int apifs_owns(const char *path)
{
	return under(path, "/apis") || under(path, "/functions");
}

/* A failed listing is logged with the service's words; the caller gets
 * the errno. */
static int resolve(struct apifs *a, const char *path, struct api_target *t)
{
	struct aws_err err;
	char desc[700];
	int rc;

	awserr_clear(&err);
	rc = apitree_resolve(a->tree, path, t, &err);
	if (rc && rc != -ENOENT && (err.status || err.transport))
		log_msg(LOG_LVL_ERROR, "apis: listing for %s failed: %s", path,
			awserr_describe(&err, desc, sizeof(desc)));
	return rc;
}

static void fill_stat(const struct apifs *a, struct stat *st, int dir)
{
	memset(st, 0, sizeof(*st));
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_atime = st->st_mtime = st->st_ctime = a->mount_time;
	st->st_mode = dir ? (S_IFDIR | 0755) : (S_IFREG | 0644);
	st->st_nlink = dir ? 2 : 1;
	st->st_blksize = 4096;
}

int apifs_getattr(struct apifs *a, const char *path, struct stat *st,
		  struct fuse_file_info *fi)
{
	struct api_target t;
	int rc;

	if (fi && fi->fh) {
		fill_stat(a, st, 0);
		return 0;
	}
	rc = resolve(a, path, &t);
	if (rc)
		return rc;
	fill_stat(a, st, t.kind == TARGET_DIR);
	api_target_free(&t);
	return 0;
}

struct fill_ctx {
	void *buf;
	fuse_fill_dir_t filler;
};

static int fill_one(void *ctx, const char *name, int is_dir)
{
	struct fill_ctx *f = ctx;

	(void)is_dir;
	return f->filler(f->buf, name, NULL, 0, 0);
}

int apifs_readdir(struct apifs *a, const char *path, void *buf,
		  fuse_fill_dir_t filler, off_t off, struct fuse_file_info *fi,
		  enum fuse_readdir_flags flags)
{
	struct fill_ctx f = { buf, filler };
	struct aws_err err;
	char desc[700];
	int rc;

	(void)off;
	(void)fi;
	(void)flags;
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	awserr_clear(&err);
	rc = apitree_list(a->tree, path, fill_one, &f, &err);
	if (rc && rc != -ENOENT && (err.status || err.transport))
		log_msg(LOG_LVL_ERROR, "apis: listing %s failed: %s", path,
			awserr_describe(&err, desc, sizeof(desc)));
	return rc;
}

static int open_file(struct apifs *a, const char *path,
		     struct fuse_file_info *fi)
{
	struct api_target t;
	struct apifile *f;
	int rc;

	rc = resolve(a, path, &t);
	if (rc)
		return rc;
	if (t.kind == TARGET_DIR) {
		rc = -EISDIR;
		goto out;
	}
	rc = apisess_open(a->sess, path, &t, fi->flags, &f);
	if (rc)
		goto out;
	fi->fh = (uintptr_t)f;
	/* A stream: every read is new data, so no page cache and no lseek
	 * (bash's read builtin then reads byte by byte instead of seeking
	 * back over what it did not use; head -n says it cannot seek). */
	fi->direct_io = 1;
	fi->nonseekable = 1;
	fi->keep_cache = 0;
out:
	api_target_free(&t);
	return rc;
}

int apifs_open(struct apifs *a, const char *path, struct fuse_file_info *fi)
{
	return open_file(a, path, fi);
}

/* Nothing is made here: create() only opens a file that exists (a
 * METHOD name with a new query string, for one). */
int apifs_create(struct apifs *a, const char *path, mode_t mode,
		 struct fuse_file_info *fi)
{
	int rc;

	(void)mode;
	rc = open_file(a, path, fi);
	return rc == -ENOENT ? -EPERM : rc;
}

static struct apifile *file_of(const struct fuse_file_info *fi)
{
	return fi ? (struct apifile *)(uintptr_t)fi->fh : NULL;
}

int apifs_read(struct apifs *a, const char *path, char *buf, size_t size,
	       off_t off, struct fuse_file_info *fi)
{
	struct apifile *f = file_of(fi);

	(void)path;
	(void)off;
	if (!f)
		return -EBADF;
	return (int)apisess_read(a->sess, f, buf, size);
}

int apifs_write(struct apifs *a, const char *path, const char *buf,
		size_t size, off_t off, struct fuse_file_info *fi)
{
	struct apifile *f = file_of(fi);

	(void)path;
	(void)off;
	if (!f)
		return -EBADF;
	return (int)apisess_write(a->sess, f, buf, size);
}

/* O_TRUNC and `: > POST` truncate to 0, which is accepted. */
int apifs_truncate(struct apifs *a, const char *path, off_t size,
		   struct fuse_file_info *fi)
{
	struct apifile *f = file_of(fi);
	struct api_target t;
	int rc;

	if (f)
		return apisess_truncate(a->sess, f, size);
	rc = resolve(a, path, &t);
	if (rc)
		return rc;
	rc = t.kind == TARGET_DIR ? -EISDIR : size ? -EINVAL : 0;
	api_target_free(&t);
	return rc;
}

int apifs_flush(struct apifs *a, const char *path, struct fuse_file_info *fi)
{
	struct apifile *f = file_of(fi);

	(void)path;
	return f ? apisess_flush(a->sess, f) : 0;
}

int apifs_fsync(struct apifs *a, const char *path, int datasync,
		struct fuse_file_info *fi)
{
	(void)a;
	(void)path;
	(void)datasync;
	(void)fi;
	return 0;
}

/* Tables, items and .dynfs/ files (fi NULL), and apifs files that are
 * not sockets, are always ready; a socket is readable once a message
 * came (or the connection ended), and ph is notified then. */
int apifs_poll(struct apifs *a, const char *path, struct fuse_file_info *fi,
	       struct fuse_pollhandle *ph, unsigned *reventsp)
{
	struct apifile *f = file_of(fi);

	(void)path;
	if (a && f)
		return apisess_poll(a->sess, f, ph, reventsp);
	if (ph)
		fuse_pollhandle_destroy(ph);
	*reventsp = POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM;
	return 0;
}

int apifs_release(struct apifs *a, const char *path,
		  struct fuse_file_info *fi)
{
	(void)path;
	apisess_release(a->sess, file_of(fi));
	return 0;
}

/* ---- extended attributes ------------------------------------------------ */

#define XA_PREFIX "user.dynfs."
#define XA_HEADER "user.dynfs.header."

/* Request headers may hold tokens (a JWT route's Authorization): only
 * the user who mounted (and root) sees or changes them, even with
 * -o allow_other. */
static int header_access(const struct apifs *a)
{
	struct fuse_context *ctx = fuse_get_context();

	if (!ctx || ctx->uid == 0 || ctx->uid == a->uid)
		return 0;
	return -EACCES;
}

static int xattr_out(const struct dbuf *v, char *value, size_t size)
{
	if (dbuf_len(v) > INT32_MAX)
		return -E2BIG;
	if (size == 0)
		return (int)dbuf_len(v);
	if (size < dbuf_len(v))
		return -ERANGE;
	memcpy(value, dbuf_str(v), dbuf_len(v));
	return (int)dbuf_len(v);
}

int apifs_getxattr(struct apifs *a, const char *path, const char *name,
		   char *value, size_t size)
{
	struct api_target t;
	struct dbuf v;
	int rc;

	/* Other names (security.* and system.* never get here): none,
	 * answered without a listing. */
	if (strncmp(name, XA_PREFIX, strlen(XA_PREFIX)))
		return -ENODATA;
	rc = resolve(a, path, &t);
	if (rc)
		return rc;
	dbuf_init(&v, DBUF_CAP_BODY);
	rc = -ENODATA;
	if (t.kind == TARGET_METHOD &&
	    !strncmp(name, XA_HEADER, strlen(XA_HEADER)))
		rc = header_access(a) ? header_access(a)
				      : apisess_header_get(a->sess, t.file,
							   name + strlen(XA_HEADER),
							   &v);
	else if (t.kind == TARGET_METHOD || t.kind == TARGET_FUNCTION)
		rc = apisess_meta(a->sess, path, name + strlen(XA_PREFIX), &v);
	if (!rc)
		rc = xattr_out(&v, value, size);
	dbuf_free(&v);
	api_target_free(&t);
	return rc;
}

/* Request headers, per mount and METHOD file (any query string). */
int apifs_setxattr(struct apifs *a, const char *path, const char *name,
		   const char *value, size_t size, int flags)
{
	struct api_target t;
	const char *h;
	struct dbuf cur;
	int rc, exists;

	if (strncmp(name, XA_PREFIX, strlen(XA_PREFIX)))
		return -ENOTSUP;
	rc = resolve(a, path, &t);
	if (rc)
		return rc;
	h = name + strlen(XA_HEADER);
	if (t.kind != TARGET_METHOD ||
	    strncmp(name, XA_HEADER, strlen(XA_HEADER))) {
		rc = -EPERM;
		goto out;
	}
	if (!header_name_ok(h, strlen(h))) {
		rc = -EINVAL;
		goto out;
	}
	rc = header_access(a);
	if (rc)
		goto out;
	dbuf_init(&cur, DBUF_CAP_SMALL);
	exists = apisess_header_get(a->sess, t.file, h, &cur) == 0;
	dbuf_free(&cur);
	if ((flags & XATTR_CREATE) && exists)
		rc = -EEXIST;
	else if ((flags & XATTR_REPLACE) && !exists)
		rc = -ENODATA;
	else
		rc = apisess_header_set(a->sess, t.file, h, value, size);
out:
	api_target_free(&t);
	return rc;
}

int apifs_listxattr(struct apifs *a, const char *path, char *list,
		    size_t size)
{
	static const char *const meta[] = { "status", "headers", "log" };
	struct api_target t;
	struct dbuf v, scratch;
	size_t i;
	int rc;

	rc = resolve(a, path, &t);
	if (rc)
		return rc;
	dbuf_init(&v, DBUF_CAP_SMALL);
	dbuf_init(&scratch, DBUF_CAP_BODY);
	if (t.kind == TARGET_METHOD && !header_access(a))
		rc = apisess_header_names(a->sess, t.file, &v);
	for (i = 0; i < 3 && !rc && (t.kind == TARGET_METHOD ||
				     t.kind == TARGET_FUNCTION); i++) {
		dbuf_reset(&scratch);
		if (!apisess_meta(a->sess, path, meta[i], &scratch))
			rc = dbuf_addf(&v, XA_PREFIX "%s%c", meta[i], '\0');
	}
	if (!rc)
		rc = xattr_out(&v, list, size);
	dbuf_free(&v);
	dbuf_free(&scratch);
	api_target_free(&t);
	return rc;
}

int apifs_removexattr(struct apifs *a, const char *path, const char *name)
{
	struct api_target t;
	int rc;

	if (strncmp(name, XA_HEADER, strlen(XA_HEADER)))
		return strncmp(name, XA_PREFIX, strlen(XA_PREFIX)) ? -ENODATA
								   : -EPERM;
	rc = resolve(a, path, &t);
	if (rc)
		return rc;
	rc = t.kind != TARGET_METHOD ? -ENODATA : header_access(a);
	if (!rc)
		rc = apisess_header_del(a->sess, t.file,
					name + strlen(XA_HEADER));
	api_target_free(&t);
	return rc;
}
