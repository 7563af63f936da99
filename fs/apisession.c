/* apisession: open METHOD, function and socket files: invocations, the
 * responses kept for a later reader, and WebSocket connections
 * (docs/apis.md, "Invoking" is the contract).
 *
 * An exchange (struct xchg) is one request and its response.  A read
 * starts it in a detached worker thread that hands the body to read()
 * through a bounded buffer; a write-only descriptor runs it in flush()
 * and keeps the whole response in a record for the same process (or its
 * parent shell) to read next.  Records also answer the response xattrs. */
#include "fs/apiint.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/wsconn.h"
#include "fs/log.h"

/* Response bytes a worker may hold ahead of the reader. */
#define STREAM_AHEAD (1024u * 1024)
/* At most this many records; the oldest go first. */
#define RECS_MAX 4096
/* How often a waiting read looks for an interrupt (ms). */
#define WAIT_SLICE_MS 100
/* How long close waits for the end of a response its reader left, to
 * report an error status (ms). */
#define CLOSE_WAIT_MS 2000

/* How far up a reader's ancestors a writer is looked for: a shell, then
 * wrappers such as timeout or xargs, then the reader. */
#define ANCESTORS 4

/* A process: who did an exchange, or who asks for its response. */
struct who {
	pid_t pid;
	pid_t ppid;
	pid_t sid;
	pid_t anc[ANCESTORS]; /* parent, grandparent, ... in the session */
};

struct xchg {
	/* A leaf lock: everything below marked (L). */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int refs;                 /* (L) */
	struct apisess *s;
	/* The request; the worker's alone once it runs. */
	struct api_target t;
	char *file;               /* the path at open (the record key) */
	struct dbuf body;
	struct dbuf hdrs;         /* "Name\0Value\0" pairs */
	struct who w[2];          /* who ran it, who opened the file */
	int bounded;              /* stream through STREAM_AHEAD */
	/* The response. */
	int done;                 /* (L) */
	int aborted;              /* (L) the reader went away */
	int err;                  /* (L) 0 or -errno: the outcome for read */
	long status;              /* (L) */
	struct dbuf status_line;  /* (L) */
	struct dbuf headers;      /* (L) "name: value\n" lines */
	struct dbuf log_tail;     /* (L) functions: the log tail */
	int is_function;
	/* (L) received and not yet read: out[off..], then in */
	struct dbuf in, out;
	size_t off;
};

/* A kept response: the body of a write-only session for the next read
 * (once), and the status and headers for the xattrs. */
struct rec {
	struct rec *next;
	char *file;
	struct who w[2];
	double at;
	struct xchg *x;
	int body; /* 1: not yet taken */
};

struct fhdr {
	struct fhdr *next;
	char *file;
	char *name;
	char *value;
};

struct apisess {
	struct exapi *ex;
	struct lambda *lam;
	struct creds_chain *creds;
	unsigned keep_s;
	char *region;
	char *connect;
	char *cafile;
	long timeout_ms;
	struct dbuf mount_hdrs;
	/* The WebSocket connections' lws context, thread and TLS set-up. */
	struct wsconn_hub *hub;

	/* Lock order: a file's lock, then store_lock, then an xchg's lock. */
	pthread_mutex_t store_lock;
	struct rec *recs;
	unsigned nrecs;

	/* A leaf, after a file's lock. */
	pthread_mutex_t hdr_lock;
	struct fhdr *fhdrs;

	/* Live worker threads; apisess_free waits for none.  A leaf, also
	 * taken under an xchg's lock (a worker waiting for its reader looks
	 * at stopping). */
	pthread_mutex_t workers_lock;
	pthread_cond_t workers_cond;
	unsigned workers;
	int stopping;
};

struct apifile {
	/* The fields below; taken before store_lock, hdr_lock and an
	 * xchg's lock, never while waiting for a response. */
	pthread_mutex_t lock;
	struct api_target t;
	char *path;
	int acc;             /* O_RDONLY, O_WRONLY or O_RDWR */
	struct who opener;
	struct dbuf body;    /* written, not yet sent */
	int dirty;           /* something was written since the last send */
	struct xchg *x;      /* the exchange read() reads */
	int reported;        /* x's failure was told (by read or close) */
	struct wsconn *ws;   /* TARGET_SOCKET */
	/* poll(2) on a socket: the kernel's handle to wake, under ph_lock,
	 * a leaf (wsconn's thread takes it in socket_ready, holding no
	 * lock of its own). */
	pthread_mutex_t ph_lock;
	struct fuse_pollhandle *ph;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Parent and session of pid, from /proc/PID/stat; 0 when gone. */
static int proc_stat(pid_t pid, pid_t *ppid_out, pid_t *sid_out)
{
	char path[64], line[1024];
	const char *p;
	int ppid = 0, pgrp = 0, sid = 0, rc = -ESRCH;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return rc;
	if (fgets(line, sizeof(line), f)) {
		/* The command name may hold spaces and ')'; the fields
		 * follow the last ')'. */
		p = strrchr(line, ')');
		if (p && sscanf(p + 1, " %*c %d %d %d", &ppid, &pgrp,
				&sid) == 3) {
			*ppid_out = ppid;
			*sid_out = sid;
			rc = 0;
		}
	}
	fclose(f);
	return rc;
}

static void who_of(pid_t pid, struct who *w)
{
	pid_t cur, ppid, sid;
	int i;

	memset(w, 0, sizeof(*w));
	if (pid <= 0 || proc_stat(pid, &w->ppid, &w->sid))
		return;
	w->pid = pid;
	cur = w->ppid;
	for (i = 0; i < ANCESTORS && cur > 1; i++) {
		if (proc_stat(cur, &ppid, &sid) || sid != w->sid)
			break;
		w->anc[i] = cur;
		cur = ppid;
	}
}

static void who_caller(struct who *w)
{
	struct fuse_context *ctx = fuse_get_context();

	who_of(ctx ? ctx->pid : 0, w);
}

static int sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	return nanosleep(&ts, NULL);
}

/* ---- exchanges ---------------------------------------------------------- */

static struct xchg *xchg_new(struct apisess *s)
{
	struct xchg *x = calloc(1, sizeof(*x));

	if (!x)
		return NULL;
	pthread_mutex_init(&x->lock, NULL);
	pthread_cond_init(&x->cond, NULL);
	x->refs = 1;
	x->s = s;
	dbuf_init(&x->body, DBUF_CAP_BODY);
	dbuf_init(&x->hdrs, DBUF_CAP_SMALL);
	dbuf_init(&x->status_line, DBUF_CAP_SMALL);
	dbuf_init(&x->headers, DBUF_CAP_SMALL);
	dbuf_init(&x->log_tail, DBUF_CAP_SMALL);
	dbuf_init(&x->in, DBUF_CAP_BODY);
	dbuf_init(&x->out, DBUF_CAP_BODY);
	return x;
}

static void xchg_ref(struct xchg *x)
{
	pthread_mutex_lock(&x->lock);
	x->refs++;
	pthread_mutex_unlock(&x->lock);
}

static void xchg_unref(struct xchg *x)
{
	int last;

	if (!x)
		return;
	pthread_mutex_lock(&x->lock);
	last = --x->refs == 0;
	pthread_mutex_unlock(&x->lock);
	if (!last)
		return;
	api_target_free(&x->t);
	free(x->file);
	dbuf_free(&x->body);
	dbuf_free(&x->hdrs);
	dbuf_free(&x->status_line);
	dbuf_free(&x->headers);
	dbuf_free(&x->log_tail);
	dbuf_free(&x->in);
	dbuf_free(&x->out);
	pthread_cond_destroy(&x->cond);
	pthread_mutex_destroy(&x->lock);
	free(x);
}

/* The reader went away: stop the transfer, and drop what it will never
 * read (a record may keep x for its status a while). */
static void xchg_abort(struct xchg *x)
{
	pthread_mutex_lock(&x->lock);
	x->aborted = 1;
	dbuf_free(&x->in);
	dbuf_free(&x->out);
	x->off = 0;
	pthread_cond_broadcast(&x->cond);
	pthread_mutex_unlock(&x->lock);
}

static int stopping(struct apisess *s)
{
	int v;

	pthread_mutex_lock(&s->workers_lock);
	v = s->stopping;
	pthread_mutex_unlock(&s->workers_lock);
	return v;
}

static void deadline_in(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Response bytes from exapi.  A streaming exchange waits here while the
 * reader is STREAM_AHEAD behind; non-zero stops the transfer. */
static int xchg_data(void *ctx, const char *data, size_t len)
{
	struct xchg *x = ctx;
	struct timespec ts;
	int rc;

	pthread_mutex_lock(&x->lock);
	while (x->bounded && !x->aborted &&
	       dbuf_len(&x->in) + dbuf_len(&x->out) - x->off >= STREAM_AHEAD) {
		deadline_in(&ts, 1000);
		pthread_cond_timedwait(&x->cond, &x->lock, &ts);
		if (stopping(x->s))
			x->aborted = 1;
	}
	rc = x->aborted ? 1 : dbuf_add(&x->in, data, len);
	pthread_cond_broadcast(&x->cond);
	pthread_mutex_unlock(&x->lock);
	return rc;
}

/* 403 -> EACCES, 404 -> ENOENT, any other error status -> EIO. */
static int status_errno(long status)
{
	if (status == 403)
		return -EACCES;
	if (status == 404)
		return -ENOENT;
	if (status >= 400)
		return -EIO;
	return 0;
}

static const char *reason_of(long status)
{
	switch (status) {
	case 200: return "OK";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	default: return "";
	}
}

/* "a: b\r\n" lines as "a: b\n". */
static int add_header_lines(struct dbuf *out, const char *in)
{
	int rc = 0;

	for (; *in && !rc; in++)
		if (*in != '\r')
			rc = dbuf_addc(out, *in);
	return rc;
}

/* The -d log: status line and response headers, never a request header
 * (the Authorization of a signed call stays out). */
static void log_exchange(const struct xchg *x, double ms)
{
	struct dbuf h;
	const char *p;
	int rc = 0;

	if (!log_debug_enabled())
		return;
	if (x->is_function) {
		log_msg(LOG_LVL_DEBUG, "functions: invoke %s -> %s%s%s (%.0f ms)",
			x->t.function, dbuf_str(&x->status_line),
			x->err ? ", failed: " : "",
			x->err ? strerror(-x->err) : "", ms);
		return;
	}
	log_msg(LOG_LVL_DEBUG, "apis: %s %s -> %s%s%s (%.0f ms)",
		x->t.method, x->file,
		dbuf_len(&x->status_line) ? dbuf_str(&x->status_line)
					  : "no response",
		x->err ? ", " : "", x->err ? strerror(-x->err) : "", ms);
	dbuf_init(&h, DBUF_CAP_SMALL);
	for (p = dbuf_str(&x->headers); *p && !rc; p++) {
		if (*p != '\n')
			rc = dbuf_addc(&h, *p);
		else if (p[1])
			rc = dbuf_adds(&h, "; ");
	}
	if (dbuf_len(&h))
		log_msg(LOG_LVL_DEBUG, "apis: response headers: %s",
			dbuf_str(&h));
	dbuf_free(&h);
}

static void run_function(struct apisess *s, struct xchg *x)
{
	struct lambda_result r;
	struct aws_err err;
	char desc[700];
	int rc;

	lambda_result_init(&r);
	awserr_clear(&err);
	rc = lambda_invoke(s->lam, x->t.function, dbuf_str(&x->body),
			   dbuf_len(&x->body), &r, &err);
	pthread_mutex_lock(&x->lock);
	if (x->aborted) {
		x->err = -EINTR; /* nobody reads the payload */
	} else if (rc) {
		x->err = rc;
		x->status = err.status;
		log_msg(LOG_LVL_ERROR, "functions: invoke %s failed: %s",
			x->t.function, awserr_describe(&err, desc, sizeof(desc)));
	} else {
		x->status = r.status;
		x->err = r.function_error[0] ? -EIO : status_errno(r.status);
		if (r.function_error[0])
			dbuf_addf_opt(&x->headers, "x-amz-function-error: %s\n",
				      r.function_error);
		/* The payload is whole already: it becomes the buffer. */
		dbuf_free(&x->in);
		x->in = r.payload;
		dbuf_init(&r.payload, DBUF_CAP_BODY);
		dbuf_free(&x->log_tail);
		x->log_tail = r.log_tail;
		dbuf_init(&r.log_tail, DBUF_CAP_SMALL);
	}
	if (x->status)
		dbuf_addf_opt(&x->status_line, "HTTP/1.1 %ld %s", x->status,
			      reason_of(x->status));
	pthread_mutex_unlock(&x->lock);
	lambda_result_free(&r);
}

static void run_method(struct apisess *s, struct xchg *x)
{
	struct exapi_request req;
	struct exapi_response resp;
	struct http_header *hv = NULL;
	struct aws_err err;
	const char *p, *end;
	char desc[700];
	size_t n = 0;
	int rc;

	exapi_response_init(&resp);
	awserr_clear(&err);
	memset(&req, 0, sizeof(req));
	end = dbuf_str(&x->hdrs) + dbuf_len(&x->hdrs);
	for (p = dbuf_str(&x->hdrs); p < end; p += strlen(p) + 1)
		n++;
	if (n) {
		hv = calloc(n / 2, sizeof(*hv));
		if (!hv) {
			rc = -ENOMEM;
			goto out;
		}
		n = 0;
		for (p = dbuf_str(&x->hdrs); p < end; n++) {
			hv[n].name = p;
			p += strlen(p) + 1;
			hv[n].value = p;
			p += strlen(p) + 1;
		}
	}
	req.api_id = x->t.api_id;
	req.stage = x->t.stage;
	req.path = x->t.req_path;
	req.query = x->t.query;
	req.method = x->t.method;
	req.sign = x->t.sign;
	req.headers = hv;
	req.nheaders = n;
	req.body = dbuf_len(&x->body) ? dbuf_str(&x->body) : NULL;
	req.body_len = dbuf_len(&x->body);
	rc = exapi_invoke(s->ex, &req, xchg_data, x, &resp, &err);
out:
	pthread_mutex_lock(&x->lock);
	if (rc < 0) {
		x->err = rc;
		if (!x->aborted)
			log_msg(LOG_LVL_ERROR, "apis: %s %s failed: %s",
				x->t.method, x->file,
				awserr_describe(&err, desc, sizeof(desc)));
	} else if (rc > 0) {
		x->err = -EINTR; /* the reader went away */
	} else {
		x->err = status_errno(resp.status);
	}
	x->status = resp.status;
	dbuf_reset(&x->status_line);
	dbuf_reset(&x->headers);
	if (resp.status) {
		dbuf_addf_opt(&x->status_line, "%s",
			      dbuf_str(&resp.status_line));
		if (!dbuf_len(&x->status_line))
			dbuf_addf_opt(&x->status_line, "HTTP/1.1 %ld %s",
				      resp.status, reason_of(resp.status));
		(void)add_header_lines(&x->headers, dbuf_str(&resp.headers));
	}
	pthread_mutex_unlock(&x->lock);
	free(hv);
	exapi_response_free(&resp);
}

static void store_add(struct apisess *s, struct xchg *x, int body);

/* Runs the exchange to its end (on the caller's thread).  The record
 * for the xattrs goes in before done is set, so that whoever saw the
 * end of the response also sees its status. */
static void xchg_run(struct apisess *s, struct xchg *x, int record)
{
	double t0 = now_s();

	if (x->is_function)
		run_function(s, x);
	else
		run_method(s, x);
	/* The request is sent; only the response is kept. */
	dbuf_free(&x->body);
	log_exchange(x, (now_s() - t0) * 1000.0);
	if (record)
		store_add(s, x, 0);
	pthread_mutex_lock(&x->lock);
	x->done = 1;
	pthread_cond_broadcast(&x->cond);
	pthread_mutex_unlock(&x->lock);
}

static void *xchg_thread(void *arg)
{
	struct xchg *x = arg;
	struct apisess *s = x->s;

	xchg_run(s, x, 1);
	xchg_unref(x);
	pthread_mutex_lock(&s->workers_lock);
	s->workers--;
	pthread_cond_broadcast(&s->workers_cond);
	pthread_mutex_unlock(&s->workers_lock);
	return NULL;
}

static int copy_target(struct api_target *dst, const struct api_target *src)
{
	int rc = 0;

#define DUP(f) \
	do { \
		if (!rc && src->f && !(dst->f = strdup(src->f))) \
			rc = -ENOMEM; \
	} while (0)
	memset(dst, 0, sizeof(*dst));
	dst->kind = src->kind;
	dst->sign = src->sign;
	DUP(api_id);
	DUP(stage);
	DUP(req_path);
	DUP(query);
	DUP(method);
	DUP(function);
	DUP(file);
#undef DUP
	return rc;
}

/* Request headers of file: the mount's (apis_header=) and then the
 * file's own (setxattr), which win over a mount header of the same name. */
static int snapshot_headers(struct apisess *s, const char *file,
			    struct dbuf *out)
{
	const char *p, *end, *name;
	struct fhdr *h;
	int own, rc = 0;

	pthread_mutex_lock(&s->hdr_lock);
	end = dbuf_str(&s->mount_hdrs) + dbuf_len(&s->mount_hdrs);
	for (p = dbuf_str(&s->mount_hdrs); p < end && !rc;) {
		name = p;
		p += strlen(p) + 1;
		own = 0;
		for (h = s->fhdrs; h && !own; h = h->next)
			own = !strcmp(h->file, file) &&
			      !strcasecmp(h->name, name);
		if (!own) {
			rc = dbuf_add(out, name, strlen(name) + 1);
			if (!rc)
				rc = dbuf_add(out, p, strlen(p) + 1);
		}
		p += strlen(p) + 1;
	}
	for (h = s->fhdrs; h && !rc; h = h->next) {
		if (strcmp(h->file, file))
			continue;
		rc = dbuf_add(out, h->name, strlen(h->name) + 1);
		if (!rc)
			rc = dbuf_add(out, h->value, strlen(h->value) + 1);
	}
	pthread_mutex_unlock(&s->hdr_lock);
	return rc;
}

/* Under f->lock: a new exchange of what f wrote (taken from f->body).
 * by: the process that makes it run. */
static int xchg_prepare(struct apisess *s, struct apifile *f,
			const struct who *by, struct xchg **out)
{
	struct xchg *x;
	int rc;

	*out = NULL;
	x = xchg_new(s);
	if (!x)
		return -ENOMEM;
	rc = copy_target(&x->t, &f->t);
	x->is_function = f->t.kind == TARGET_FUNCTION;
	if (!rc) {
		x->file = strdup(f->path);
		if (!x->file)
			rc = -ENOMEM;
	}
	if (!rc && !x->is_function)
		rc = snapshot_headers(s, f->t.file ? f->t.file : f->path,
				      &x->hdrs);
	/* `cat functions/f` alone invokes with the payload {}. */
	if (!rc && x->is_function && !dbuf_len(&f->body))
		rc = dbuf_adds(&x->body, "{}");
	if (rc)
		goto out;
	if (dbuf_len(&f->body)) {
		dbuf_free(&x->body);
		x->body = f->body;
		dbuf_init(&f->body, DBUF_CAP_BODY);
	}
	f->dirty = 0;
	x->w[0] = *by;
	x->w[1] = f->opener;
	*out = x;
	x = NULL;
out:
	xchg_unref(x);
	return rc;
}

/* Under f->lock: start f's exchange on a worker thread. */
static int xchg_start(struct apisess *s, struct apifile *f,
		      const struct who *by)
{
	pthread_attr_t attr;
	pthread_t tid;
	struct xchg *x;
	int rc;

	rc = xchg_prepare(s, f, by, &x);
	if (rc)
		goto out;
	x->bounded = 1;
	x->refs = 2; /* f's and the worker's */
	pthread_mutex_lock(&s->workers_lock);
	s->workers++;
	pthread_mutex_unlock(&s->workers_lock);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = -pthread_create(&tid, &attr, xchg_thread, x);
	pthread_attr_destroy(&attr);
	if (rc) {
		pthread_mutex_lock(&s->workers_lock);
		s->workers--;
		pthread_mutex_unlock(&s->workers_lock);
		x->refs = 1;
		xchg_unref(x);
		goto out;
	}
	f->x = x;
	f->reported = 0;
out:
	return rc;
}

/* ---- records ------------------------------------------------------------ */

static void rec_free(struct rec *r)
{
	xchg_unref(r->x);
	free(r->file);
	free(r);
}

/* Whether reader r may see what w did: w is r or one of r's ancestors
 * (a shell's builtin wrote, its child or grandchild reads), w's parent
 * is r (a shell reads what its child wrote), or w and r are children of
 * one parent (`tee POST` then `cat POST`).  Always within one session,
 * so other terminals never match; two shells under one parent do not
 * match each other either, since a shell is neither the other's
 * ancestor nor its sibling child. */
static int who_matches(const struct who *w, const struct who *r)
{
	int i;

	if (!w->pid || !r->pid || w->sid != r->sid)
		return 0;
	if (r->pid == w->pid)
		return 1;
	for (i = 0; i < ANCESTORS; i++)
		if (r->anc[i] == w->pid)
			return 1;
	return w->ppid > 1 && (r->pid == w->ppid || r->ppid == w->ppid);
}

static int rec_matches(const struct rec *c, const char *file,
		       const struct who *r)
{
	return !strcmp(c->file, file) &&
	       (who_matches(&c->w[0], r) || who_matches(&c->w[1], r));
}

/* Under store_lock: drop records past apis_keep. */
static void store_expire(struct apisess *s)
{
	struct rec **pp = &s->recs, *r;
	double now = now_s();

	while ((r = *pp)) {
		if (now - r->at > s->keep_s) {
			*pp = r->next;
			s->nrecs--;
			rec_free(r);
		} else {
			pp = &r->next;
		}
	}
}

/* Keep x's response for the process that ran it.  body: its body too,
 * for one later read-open.  A newer record of the same process and file
 * replaces the older. */
static void store_add(struct apisess *s, struct xchg *x, int body)
{
	struct rec *r, **pp, *old;

	r = calloc(1, sizeof(*r));
	if (!r)
		return; /* the response is still read; only the xattrs miss */
	r->file = strdup(x->file);
	if (!r->file) {
		free(r);
		return;
	}
	r->w[0] = x->w[0];
	r->w[1] = x->w[1];
	r->at = now_s();
	r->body = body;
	xchg_ref(x);
	r->x = x;
	pthread_mutex_lock(&s->store_lock);
	store_expire(s);
	for (pp = &s->recs; (old = *pp);) {
		if (!strcmp(old->file, r->file) &&
		    old->w[0].pid == r->w[0].pid) {
			*pp = old->next;
			s->nrecs--;
			rec_free(old);
		} else {
			pp = &old->next;
		}
	}
	/* Newest first. */
	r->next = s->recs;
	s->recs = r;
	if (++s->nrecs > RECS_MAX) {
		for (pp = &s->recs; (*pp)->next; pp = &(*pp)->next)
			;
		rec_free(*pp);
		*pp = NULL;
		s->nrecs--;
	}
	pthread_mutex_unlock(&s->store_lock);
}

/* The newest body kept for reader r on file, taken (once). */
static struct xchg *store_take(struct apisess *s, const char *file,
			       const struct who *r)
{
	struct rec *c;
	struct xchg *x = NULL;

	pthread_mutex_lock(&s->store_lock);
	store_expire(s);
	for (c = s->recs; c; c = c->next) {
		if (c->body && rec_matches(c, file, r)) {
			c->body = 0;
			x = c->x;
			xchg_ref(x);
			break;
		}
	}
	pthread_mutex_unlock(&s->store_lock);
	return x;
}

int apisess_meta(struct apisess *s, const char *file, const char *what,
		 struct dbuf *out)
{
	struct who r;
	struct rec *c;
	struct xchg *x;
	int rc = -ENODATA;

	who_caller(&r);
	pthread_mutex_lock(&s->store_lock);
	store_expire(s);
	for (c = s->recs; c && !rec_matches(c, file, &r); c = c->next)
		;
	x = c ? c->x : NULL;
	if (x) {
		pthread_mutex_lock(&x->lock);
		if (!x->status)
			rc = -ENODATA; /* no response came */
		else if (!strcmp(what, "status"))
			rc = dbuf_add(out, dbuf_str(&x->status_line),
				      dbuf_len(&x->status_line));
		else if (!strcmp(what, "headers"))
			rc = dbuf_add(out, dbuf_str(&x->headers),
				      dbuf_len(&x->headers));
		else if (x->is_function)
			rc = dbuf_add(out, dbuf_str(&x->log_tail),
				      dbuf_len(&x->log_tail));
		pthread_mutex_unlock(&x->lock);
	}
	pthread_mutex_unlock(&s->store_lock);
	return rc;
}

/* ---- request headers ------------------------------------------------------ */

int apisess_header_set(struct apisess *s, const char *file, const char *name,
		       const char *value, size_t len)
{
	struct fhdr *h;
	char *v;
	size_t i;

	for (i = 0; i < len; i++)
		if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0')
			return -EINVAL;
	v = strndup(value, len);
	if (!v)
		return -ENOMEM;
	pthread_mutex_lock(&s->hdr_lock);
	for (h = s->fhdrs; h; h = h->next)
		if (!strcmp(h->file, file) && !strcasecmp(h->name, name))
			break;
	if (h) {
		free(h->value);
		h->value = v;
		v = NULL;
	} else if ((h = calloc(1, sizeof(*h)))) {
		h->file = strdup(file);
		h->name = strdup(name);
		h->value = v;
		if (h->file && h->name) {
			h->next = s->fhdrs;
			s->fhdrs = h;
			v = NULL;
			h = NULL;
		} else {
			free(h->file);
			free(h->name);
			free(h);
			h = NULL;
		}
	}
	pthread_mutex_unlock(&s->hdr_lock);
	if (v) {
		free(v);
		return -ENOMEM;
	}
	return 0;
}

int apisess_header_get(struct apisess *s, const char *file, const char *name,
		       struct dbuf *out)
{
	struct fhdr *h;
	int rc = -ENODATA;

	pthread_mutex_lock(&s->hdr_lock);
	for (h = s->fhdrs; h; h = h->next)
		if (!strcmp(h->file, file) && !strcasecmp(h->name, name)) {
			rc = dbuf_adds(out, h->value);
			break;
		}
	pthread_mutex_unlock(&s->hdr_lock);
	return rc;
}

int apisess_header_del(struct apisess *s, const char *file, const char *name)
{
	struct fhdr **pp, *h;
	int rc = -ENODATA;

	pthread_mutex_lock(&s->hdr_lock);
	for (pp = &s->fhdrs; (h = *pp); pp = &h->next)
		if (!strcmp(h->file, file) && !strcasecmp(h->name, name)) {
			*pp = h->next;
			free(h->file);
			free(h->name);
			free(h->value);
			free(h);
			rc = 0;
			break;
		}
	pthread_mutex_unlock(&s->hdr_lock);
	return rc;
}

int apisess_header_names(struct apisess *s, const char *file,
			 struct dbuf *out)
{
	struct fhdr *h;
	int rc = 0;

	pthread_mutex_lock(&s->hdr_lock);
	for (h = s->fhdrs; h && !rc; h = h->next)
		if (!strcmp(h->file, file))
			rc = dbuf_addf(out, "user.dynfs.header.%s%c", h->name,
				       '\0');
	pthread_mutex_unlock(&s->hdr_lock);
	return rc;
}

/* ---- the session --------------------------------------------------------- */

int apisess_new(struct apisess **out, struct exapi *ex, struct lambda *lam,
		struct creds_chain *creds, const struct apisess_opts *o)
{
	struct wsconn_hub_opts ho;
	struct apisess *s;
	int rc = -ENOMEM;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->ex = ex;
	s->lam = lam;
	s->creds = creds;
	s->keep_s = o->keep_s;
	s->timeout_ms = o->timeout_ms;
	dbuf_init(&s->mount_hdrs, DBUF_CAP_SMALL);
	pthread_mutex_init(&s->store_lock, NULL);
	pthread_mutex_init(&s->hdr_lock, NULL);
	pthread_mutex_init(&s->workers_lock, NULL);
	pthread_cond_init(&s->workers_cond, NULL);
	s->region = strdup(o->region);
	if (!s->region)
		goto out;
	if (o->connect && !(s->connect = strdup(o->connect)))
		goto out;
	if (o->cafile && !(s->cafile = strdup(o->cafile)))
		goto out;
	if (o->headers && dbuf_add(&s->mount_hdrs, dbuf_str(o->headers),
				   dbuf_len(o->headers)))
		goto out;
	/* Starts nothing: the first socket open does. */
	memset(&ho, 0, sizeof(ho));
	ho.ca_file = o->cafile;
	rc = wsconn_hub_new(&s->hub, &ho);
	if (rc)
		goto out;
	*out = s;
out:
	if (rc)
		apisess_free(s);
	return rc;
}

void apisess_free(struct apisess *s)
{
	struct rec *r, *rn;
	struct fhdr *h, *hn;

	if (!s)
		return;
	pthread_mutex_lock(&s->workers_lock);
	s->stopping = 1;
	while (s->workers)
		pthread_cond_wait(&s->workers_cond, &s->workers_lock);
	pthread_mutex_unlock(&s->workers_lock);
	for (r = s->recs; r; r = rn) {
		rn = r->next;
		rec_free(r);
	}
	for (h = s->fhdrs; h; h = hn) {
		hn = h->next;
		free(h->file);
		free(h->name);
		free(h->value);
		free(h);
	}
	/* Its thread ends with its last connection (none, once every file
	 * was released). */
	wsconn_hub_free(s->hub);
	dbuf_free(&s->mount_hdrs);
	free(s->region);
	free(s->connect);
	free(s->cafile);
	pthread_mutex_destroy(&s->store_lock);
	pthread_mutex_destroy(&s->hdr_lock);
	pthread_mutex_destroy(&s->workers_lock);
	pthread_cond_destroy(&s->workers_cond);
	free(s);
}

/* ---- sockets ------------------------------------------------------------ */

/* wsconn's on_ready, on its thread: something became readable, or the
 * connection ended.  The kernel's poll handle is told once and let go;
 * the next poll() leaves a new one. */
static void socket_ready(void *arg)
{
	struct apifile *f = arg;
	struct fuse_pollhandle *ph;

	pthread_mutex_lock(&f->ph_lock);
	ph = f->ph;
	f->ph = NULL;
	pthread_mutex_unlock(&f->ph_lock);
	if (ph) {
		fuse_notify_poll(ph);
		fuse_pollhandle_destroy(ph);
	}
}

static int socket_open(struct apisess *s, struct apifile *f)
{
	struct wsconn_opts o;
	struct dbuf url, why;
	int rc;

	dbuf_init(&url, DBUF_CAP_SMALL);
	dbuf_init(&why, DBUF_CAP_SMALL);
	rc = dbuf_addf(&url, "wss://%s.execute-api.%s.amazonaws.com",
		       f->t.api_id, s->region);
	if (!rc && strcmp(f->t.stage, "$default")) {
		rc = dbuf_addc(&url, '/');
		if (!rc)
			rc = http_pct_encode(&url, f->t.stage, 0);
	}
	if (rc)
		goto out;
	memset(&o, 0, sizeof(o));
	o.url = dbuf_str(&url);
	o.presign = f->t.sign;
	o.creds = s->creds;
	o.region = s->region;
	o.connect_to = s->connect;
	o.connect_timeout_ms = s->timeout_ms;
	o.on_ready = socket_ready;
	o.arg = f;
	rc = wsconn_open(s->hub, &f->ws, &o, &why);
	if (rc)
		log_msg(LOG_LVL_ERROR, "apis: connecting %s failed: %s",
			f->path, dbuf_len(&why) ? dbuf_str(&why)
						: strerror(-rc));
	else
		log_msg(LOG_LVL_DEBUG, "apis: %s connected%s", f->path,
			f->t.sign ? " (presigned)" : "");
out:
	dbuf_free(&url);
	dbuf_free(&why);
	return rc;
}

/* Blocks like a pipe; wsconn cannot be woken, so a waiting read polls
 * it, and gives up with EINTR once the reader is interrupted. */
static ssize_t socket_read(struct apifile *f, char *buf, size_t size)
{
	long delay = 2;
	ssize_t n;

	for (;;) {
		n = wsconn_recv(f->ws, buf, size, 1);
		if (n != -EAGAIN)
			return n;
		if (fuse_interrupted())
			return -EINTR;
		sleep_ms(delay);
		if (delay < 50)
			delay *= 2;
	}
}

/* One write() is one message, without one trailing newline (what read
 * adds back), so `echo MSG >&3` sends MSG. */
static ssize_t socket_write(struct apifile *f, const char *buf, size_t size)
{
	size_t len = size;
	int rc;

	if (len && buf[len - 1] == '\n')
		len--;
	rc = wsconn_send(f->ws, buf, len);
	return rc ? rc : (ssize_t)size;
}

/* ---- files --------------------------------------------------------------- */

static void file_free(struct apifile *f)
{
	if (!f)
		return;
	xchg_unref(f->x);
	/* After this, socket_ready is not called any more. */
	if (f->ws)
		wsconn_close(f->ws);
	if (f->ph)
		fuse_pollhandle_destroy(f->ph);
	api_target_free(&f->t);
	free(f->path);
	dbuf_free(&f->body);
	pthread_mutex_destroy(&f->ph_lock);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

int apisess_open(struct apisess *s, const char *path, struct api_target *t,
		 int flags, struct apifile **out)
{
	struct apifile *f;
	int rc = 0;

	*out = NULL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	pthread_mutex_init(&f->lock, NULL);
	pthread_mutex_init(&f->ph_lock, NULL);
	dbuf_init(&f->body, DBUF_CAP_BODY);
	f->t = *t;
	memset(t, 0, sizeof(*t));
	f->path = strdup(path);
	if (!f->path) {
		rc = -ENOMEM;
		goto out;
	}
	f->acc = flags & O_ACCMODE;
	who_caller(&f->opener);
	if (f->t.kind == TARGET_SOCKET)
		rc = socket_open(s, f);
	else if (f->acc == O_RDONLY)
		f->x = store_take(s, f->path, &f->opener);
out:
	if (rc) {
		*t = f->t; /* the caller still owns it on failure */
		memset(&f->t, 0, sizeof(f->t));
		file_free(f);
		return rc;
	}
	*out = f;
	return 0;
}

ssize_t apisess_read(struct apisess *s, struct apifile *f, char *buf,
		     size_t size)
{
	struct timespec ts;
	struct xchg *x;
	struct who by;
	ssize_t n = 0;
	int rc = 0;

	if (f->ws)
		return socket_read(f, buf, size);
	pthread_mutex_lock(&f->lock);
	if (!f->x) {
		who_caller(&by);
		rc = xchg_start(s, f, &by);
	}
	x = f->x;
	if (x)
		xchg_ref(x);
	pthread_mutex_unlock(&f->lock);
	if (rc)
		return rc;
	pthread_mutex_lock(&x->lock);
	for (;;) {
		if (x->off < dbuf_len(&x->out)) {
			n = (ssize_t)(dbuf_len(&x->out) - x->off);
			if ((size_t)n > size)
				n = (ssize_t)size;
			memcpy(buf, dbuf_str(&x->out) + x->off, (size_t)n);
			x->off += (size_t)n;
			if (x->off == dbuf_len(&x->out)) {
				dbuf_reset(&x->out);
				x->off = 0;
			}
			pthread_cond_broadcast(&x->cond);
			break;
		}
		if (dbuf_len(&x->in)) {
			struct dbuf tmp = x->out;

			x->out = x->in;
			x->in = tmp;
			x->off = 0;
			continue;
		}
		if (x->done) {
			/* The end: an error status or a function error is
			 * told here, after its body. */
			n = x->err;
			break;
		}
		deadline_in(&ts, WAIT_SLICE_MS);
		pthread_cond_timedwait(&x->cond, &x->lock, &ts);
		if (fuse_interrupted()) {
			n = -EINTR;
			break;
		}
	}
	pthread_mutex_unlock(&x->lock);
	xchg_unref(x);
	if (n < 0 && n != -EINTR) {
		pthread_mutex_lock(&f->lock);
		f->reported = 1;
		pthread_mutex_unlock(&f->lock);
	}
	return n;
}

ssize_t apisess_write(struct apisess *s, struct apifile *f, const char *buf,
		      size_t size)
{
	int rc;

	(void)s;
	if (f->ws)
		return socket_write(f, buf, size);
	pthread_mutex_lock(&f->lock);
	/* Writing after a response began starts the next request. */
	if (f->x) {
		xchg_abort(f->x);
		xchg_unref(f->x);
		f->x = NULL;
	}
	rc = dbuf_add(&f->body, buf, size);
	if (!rc)
		f->dirty = 1;
	pthread_mutex_unlock(&f->lock);
	if (rc == -E2BIG)
		return -EFBIG;
	return rc ? rc : (ssize_t)size;
}

int apisess_truncate(struct apisess *s, struct apifile *f, off_t size)
{
	(void)s;
	if (size != 0)
		return -EINVAL;
	if (f->ws)
		return 0;
	pthread_mutex_lock(&f->lock);
	dbuf_reset(&f->body);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

/* The outcome of x once it ended, waiting CLOSE_WAIT_MS at most; 0 when
 * it has not ended, or when a full buffer shows that the rest of a large
 * response is still to come (waiting would only hold the close). */
static int wait_end(struct xchg *x)
{
	struct timespec ts;
	int rc = 0, waited = 0;

	pthread_mutex_lock(&x->lock);
	while (!x->done && waited < CLOSE_WAIT_MS &&
	       dbuf_len(&x->in) + dbuf_len(&x->out) - x->off < STREAM_AHEAD &&
	       !fuse_interrupted()) {
		deadline_in(&ts, WAIT_SLICE_MS);
		pthread_cond_timedwait(&x->cond, &x->lock, &ts);
		waited += WAIT_SLICE_MS;
	}
	if (x->done)
		rc = x->err;
	pthread_mutex_unlock(&x->lock);
	return rc;
}

/* close(): what was written and not yet sent goes now, and the close
 * waits for the whole response.  A write-only descriptor keeps it for
 * the next read-open by this process or its parent; one opened for
 * reading too reads it next.  The outcome (EACCES, ENOENT, EIO) is
 * returned, as close() reports it. */
int apisess_flush(struct apisess *s, struct apifile *f)
{
	struct xchg *x = NULL;
	struct who by;
	int rc = 0;

	if (f->ws)
		return 0;
	pthread_mutex_lock(&f->lock);
	if (!f->dirty || f->acc == O_RDONLY) {
		/* A failure no read has told yet (the reader stopped
		 * before the end) is told by close. */
		if (f->x && !f->reported) {
			rc = wait_end(f->x);
			f->reported = rc != 0;
		}
		goto out;
	}
	who_caller(&by);
	rc = xchg_prepare(s, f, &by, &x);
	if (rc)
		goto out;
	xchg_run(s, x, 0);
	store_add(s, x, f->acc == O_WRONLY);
	pthread_mutex_lock(&x->lock);
	rc = x->err;
	pthread_mutex_unlock(&x->lock);
	f->reported = rc != 0;
	if (f->acc == O_RDWR) {
		f->x = x;
		x = NULL;
	}
out:
	pthread_mutex_unlock(&f->lock);
	xchg_unref(x);
	return rc;
}

/* A socket reports what wsconn says and keeps ph to wake the poller
 * when that changes; any other file is always ready, as a regular file
 * is.  The handle is kept before the state is looked at, so that a
 * message arriving in between still wakes it. */
int apisess_poll(struct apisess *s, struct apifile *f,
		 struct fuse_pollhandle *ph, unsigned *revents)
{
	struct fuse_pollhandle *drop = ph;

	(void)s;
	if (f->ws) {
		if (ph) {
			pthread_mutex_lock(&f->ph_lock);
			drop = f->ph;
			f->ph = ph;
			pthread_mutex_unlock(&f->ph_lock);
		}
		*revents = wsconn_events(f->ws);
	} else {
		*revents = POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM;
	}
	if (drop)
		fuse_pollhandle_destroy(drop);
	return 0;
}

void apisess_release(struct apisess *s, struct apifile *f)
{
	(void)s;
	if (f && f->x)
		xchg_abort(f->x);
	file_free(f);
}
