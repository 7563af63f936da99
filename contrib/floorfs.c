/* floorfs: the fastest FUSE filesystem we can write for the benchmark's
 * workloads, to measure what FUSE itself costs on a machine.
 *
 * It is not part of dynfs.  contrib/bench.sh mounts it next to dynfs and
 * runs the same commands on it, so the report can say how much of a
 * figure is FUSE's round trips and how much is dynfs.
 *
 * One flat directory of N files, "item-000000.json" ..., each ITEM_SIZE
 * bytes of text made up on the fly; nothing is fetched from anywhere.
 * Every trick that lowers the number of round trips is on:
 *   - READDIRPLUS for every readdir, so no LOOKUP follows a listing;
 *   - entries, attributes and negative entries kept by the kernel 60 s;
 *   - with -o prefill, every listed file's text is pushed into the page
 *     cache (FUSE_NOTIFY_STORE) and opens keep it, so a read costs no
 *     READ: a file costs OPEN and RELEASE only;
 *   - read-only opens send no FLUSH;
 *   - security.* and system.* xattrs are EOPNOTSUPP, which ls caches.
 * New files (cp into the mount) are accepted and their bytes dropped;
 * with -o journal=FILE every close of a file opened for writing appends
 * a small record to FILE and fdatasyncs it, as dynfs's write-back
 * journal must.
 *
 *   floorfs [-f] [-s] [-o items=N,item_size=BYTES,prefill,journal=FILE] MNT
 */
#define FUSE_USE_VERSION 35
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/dbuf.h"

#define FLOOR_TTL 60.0
#define FLOOR_NAME_MAX 64
#define FLOOR_FIRST_INO 2 /* 1 is the root */
#define FLOOR_BUCKETS (1u << 18)

struct floor_new {
	char name[FLOOR_NAME_MAX];
	off_t size;
	uint32_t next; /* index + 1 of the next in its bucket, 0: none */
};

struct floor {
	struct fuse_session *se;
	unsigned items;
	unsigned item_size;
	int prefill;
	int writeback;
	char *journal_path;
	int journal_fd;

	/* Protects news and journal writes.  The only lock. */
	pthread_mutex_t lock;
	/* Created files: struct floor_new [k] is ino FIRST + items + k. */
	struct dbuf news;
	/* Hash of their names: index + 1 of the newest, 0: none.  cp looks
	 * up every name twice before it creates it, so a list walk would
	 * make the floor quadratic. */
	uint32_t *buckets;
};

struct floor_dir {
	/* Entries [stored, sent) went out in the last reply and are pushed
	 * into the page cache at the next readdir of this handle, once the
	 * kernel has made their inodes. */
	unsigned stored, sent;
};

static const struct fuse_opt floor_opts[] = {
	{ "items=%u", offsetof(struct floor, items), 0 },
	{ "item_size=%u", offsetof(struct floor, item_size), 0 },
	{ "prefill", offsetof(struct floor, prefill), 1 },
	{ "writeback", offsetof(struct floor, writeback), 1 },
	{ "journal=%s", offsetof(struct floor, journal_path), 0 },
	FUSE_OPT_END
};

static struct floor *floor_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* Item i's text: a JSON object padded to item_size bytes. */
static size_t item_text(const struct floor *fl, unsigned i, char *buf,
			size_t cap)
{
	size_t n = fl->item_size < cap ? fl->item_size : cap;
	int head;

	head = snprintf(buf, cap, "{\"pk\": \"item-%06u\", \"pad\": \"", i);
	if (head < 0 || (size_t)head + 3 > n)
		return 0;
	memset(buf + head, 'x', n - head - 3);
	memcpy(buf + n - 3, "\"}\n", 3);
	return n;
}

static uint32_t name_hash(const char *name)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 16777619u;
	return h & (FLOOR_BUCKETS - 1);
}

static struct floor_new *new_at(struct floor *fl, size_t k)
{
	if (k >= dbuf_len(&fl->news) / sizeof(struct floor_new))
		return NULL;
	return (struct floor_new *)fl->news.ptr + k;
}

static void item_name(unsigned i, char *buf, size_t cap)
{
	snprintf(buf, cap, "item-%06u.json", i);
}

static void stat_of(const struct floor *fl, fuse_ino_t ino, off_t size,
		    struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = getuid();
	st->st_gid = getgid();
	if (ino == FUSE_ROOT_ID) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return;
	}
	st->st_mode = S_IFREG | 0644;
	st->st_nlink = 1;
	st->st_size = ino < FLOOR_FIRST_INO + fl->items ? fl->item_size
							 : size;
}

/* ino of NAME, its size in *size; 0 when there is none. */
static fuse_ino_t name_ino(struct floor *fl, const char *name, off_t *size)
{
	struct floor_new *nw;
	unsigned i;
	char end;
	size_t k;
	fuse_ino_t ino = 0;

	if (sscanf(name, "item-%6u.jso%c", &i, &end) == 2 && end == 'n' &&
	    strlen(name) == 16 && i < fl->items) {
		*size = fl->item_size;
		return FLOOR_FIRST_INO + i;
	}
	pthread_mutex_lock(&fl->lock);
	for (k = fl->buckets[name_hash(name)]; k && !ino; k = nw->next) {
		nw = new_at(fl, k - 1);
		if (!strcmp(nw->name, name)) {
			ino = FLOOR_FIRST_INO + fl->items + k - 1;
			*size = nw->size;
		}
	}
	pthread_mutex_unlock(&fl->lock);
	return ino;
}

static off_t ino_size(struct floor *fl, fuse_ino_t ino)
{
	struct floor_new *nw;
	off_t size = 0;

	if (ino < FLOOR_FIRST_INO + fl->items)
		return fl->item_size;
	pthread_mutex_lock(&fl->lock);
	nw = new_at(fl, ino - FLOOR_FIRST_INO - fl->items);
	if (nw)
		size = nw->size;
	pthread_mutex_unlock(&fl->lock);
	return size;
}

static void entry_of(struct floor *fl, fuse_ino_t ino, off_t size,
		     struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = ino;
	e->attr_timeout = FLOOR_TTL;
	e->entry_timeout = FLOOR_TTL;
	if (ino)
		stat_of(fl, ino, size, &e->attr);
}

static void floor_init(void *userdata, struct fuse_conn_info *conn)
{
	struct floor *fl = userdata;

	conn->want |= FUSE_CAP_READDIRPLUS;
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	if (fl->writeback)
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
}

static void floor_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct floor *fl = floor_of(req);
	struct fuse_entry_param e;
	off_t size = 0;

	if (parent != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	/* ino 0 is a negative entry the kernel keeps for FLOOR_TTL. */
	entry_of(fl, name_ino(fl, name, &size), size, &e);
	fuse_reply_entry(req, &e);
}

static void floor_getattr(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct floor *fl = floor_of(req);
	struct stat st;

	(void)fi;
	stat_of(fl, ino, ino_size(fl, ino), &st);
	fuse_reply_attr(req, &st, FLOOR_TTL);
}

/* With the writeback cache the kernel sends its times and sizes here. */
static void floor_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
			  int to_set, struct fuse_file_info *fi)
{
	struct floor *fl = floor_of(req);
	struct floor_new *nw;
	struct stat st;

	(void)fi;
	if ((to_set & FUSE_SET_ATTR_SIZE) &&
	    ino >= FLOOR_FIRST_INO + fl->items) {
		pthread_mutex_lock(&fl->lock);
		nw = new_at(fl, ino - FLOOR_FIRST_INO - fl->items);
		if (nw)
			nw->size = attr->st_size;
		pthread_mutex_unlock(&fl->lock);
	}
	stat_of(fl, ino, ino_size(fl, ino), &st);
	fuse_reply_attr(req, &st, FLOOR_TTL);
}

static void floor_opendir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct floor_dir *d;

	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fi->fh = (uintptr_t)d;
	fuse_reply_open(req, fi);
}

/* Push the texts of the entries the last reply listed. */
static void dir_store(struct floor *fl, struct floor_dir *d)
{
	char *text = malloc(fl->item_size + 1);
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(0);
	unsigned i;

	if (!text)
		return;
	for (i = d->stored; fl->prefill && i < d->sent; i++) {
		bv.buf[0].mem = text;
		bv.buf[0].size = item_text(fl, i, text, fl->item_size + 1);
		bv.idx = 0;
		bv.off = 0;
		fuse_lowlevel_notify_store(fl->se, FLOOR_FIRST_INO + i, 0, &bv,
					   0);
	}
	d->stored = d->sent;
	free(text);
}

/* Offsets: 0 is the start; entry i's next offset is i + 1.  Only the N
 * listed items are listed; created files are not (cp never lists). */
static void floor_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			      off_t off, struct fuse_file_info *fi)
{
	struct floor *fl = floor_of(req);
	struct floor_dir *d = (struct floor_dir *)(uintptr_t)fi->fh;
	struct fuse_entry_param e;
	char name[FLOOR_NAME_MAX];
	char *buf = malloc(size);
	size_t used = 0, n;
	unsigned i;

	(void)ino;
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	dir_store(fl, d);
	for (i = off; i < fl->items; i++) {
		item_name(i, name, sizeof(name));
		entry_of(fl, FLOOR_FIRST_INO + i, fl->item_size, &e);
		n = fuse_add_direntry_plus(req, buf + used, size - used, name,
					   &e, i + 1);
		if (n > size - used)
			break;
		used += n;
	}
	d->stored = off;
	d->sent = i;
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void floor_releasedir(fuse_req_t req, fuse_ino_t ino,
			     struct fuse_file_info *fi)
{
	(void)ino;
	free((void *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void floor_open(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	(void)ino;
	fi->keep_cache = 1;
	fi->noflush = (fi->flags & O_ACCMODE) == O_RDONLY;
	fuse_reply_open(req, fi);
}

static void floor_create(fuse_req_t req, fuse_ino_t parent,
			 const char *name, mode_t mode,
			 struct fuse_file_info *fi)
{
	struct floor *fl = floor_of(req);
	struct fuse_entry_param e;
	struct floor_new nw;
	fuse_ino_t ino = 0;
	uint32_t h = name_hash(name);
	size_t k;
	off_t size;

	(void)mode;
	if (parent != FUSE_ROOT_ID || strlen(name) >= FLOOR_NAME_MAX) {
		fuse_reply_err(req, EACCES);
		return;
	}
	if (name_ino(fl, name, &size)) {
		fuse_reply_err(req, EEXIST);
		return;
	}
	memset(&nw, 0, sizeof(nw));
	snprintf(nw.name, sizeof(nw.name), "%s", name);
	pthread_mutex_lock(&fl->lock);
	k = dbuf_len(&fl->news) / sizeof(nw);
	nw.next = fl->buckets[h];
	if (!dbuf_add(&fl->news, &nw, sizeof(nw))) {
		fl->buckets[h] = k + 1;
		ino = FLOOR_FIRST_INO + fl->items + k;
	}
	pthread_mutex_unlock(&fl->lock);
	if (!ino) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	entry_of(fl, ino, 0, &e);
	fi->keep_cache = 1;
	fuse_reply_create(req, &e, fi);
}

static void floor_read(fuse_req_t req, fuse_ino_t ino, size_t size,
		       off_t off, struct fuse_file_info *fi)
{
	struct floor *fl = floor_of(req);
	char *text;
	size_t n;

	(void)fi;
	if (ino >= FLOOR_FIRST_INO + fl->items) {
		fuse_reply_buf(req, NULL, 0); /* created: bytes dropped */
		return;
	}
	text = malloc(fl->item_size + 1);
	if (!text) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = item_text(fl, ino - FLOOR_FIRST_INO, text, fl->item_size + 1);
	if ((size_t)off >= n)
		n = off = 0;
	else
		n -= off;
	fuse_reply_buf(req, text + off, n < size ? n : size);
	free(text);
}

static void floor_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
			size_t size, off_t off, struct fuse_file_info *fi)
{
	struct floor *fl = floor_of(req);
	struct floor_new *nw;

	(void)buf;
	(void)fi;
	if (ino < FLOOR_FIRST_INO + fl->items) {
		fuse_reply_err(req, EROFS);
		return;
	}
	pthread_mutex_lock(&fl->lock);
	nw = new_at(fl, ino - FLOOR_FIRST_INO - fl->items);
	if (nw && off + (off_t)size > nw->size)
		nw->size = off + size;
	pthread_mutex_unlock(&fl->lock);
	fuse_reply_write(req, size);
}

static void floor_flush(fuse_req_t req, fuse_ino_t ino,
			struct fuse_file_info *fi)
{
	struct floor *fl = floor_of(req);
	char rec[96];
	int n, err = 0;

	(void)fi;
	if (fl->journal_fd >= 0) {
		n = snprintf(rec, sizeof(rec), "%lu\n", (unsigned long)ino);
		pthread_mutex_lock(&fl->lock);
		if (write(fl->journal_fd, rec, n) != n ||
		    fdatasync(fl->journal_fd))
			err = errno ? errno : EIO;
		pthread_mutex_unlock(&fl->lock);
	}
	fuse_reply_err(req, err);
}

static void floor_release(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void floor_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			   size_t size)
{
	(void)ino;
	(void)size;
	if (!strncmp(name, "security.", 9) || !strncmp(name, "system.", 7))
		fuse_reply_err(req, EOPNOTSUPP);
	else
		fuse_reply_err(req, ENODATA);
}

static const struct fuse_lowlevel_ops floor_ops = {
	.init = floor_init,
	.lookup = floor_lookup,
	.getattr = floor_getattr,
	.setattr = floor_setattr,
	.opendir = floor_opendir,
	.readdirplus = floor_readdirplus,
	.releasedir = floor_releasedir,
	.open = floor_open,
	.create = floor_create,
	.read = floor_read,
	.write = floor_write,
	.flush = floor_flush,
	.release = floor_release,
	.getxattr = floor_getxattr,
};

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts opts;
	struct floor fl = { .items = 10000, .item_size = 1200,
			    .journal_fd = -1 };
	struct fuse_loop_config *loop = NULL;
	int rc = 1;

	memset(&opts, 0, sizeof(opts));
	if (fuse_opt_parse(&args, &fl, floor_opts, NULL) ||
	    fuse_parse_cmdline(&args, &opts))
		goto out;
	if (opts.show_help || !opts.mountpoint) {
		fprintf(stderr, "usage: %s [-f] [-s] [-o items=N,item_size=B,"
				"prefill,journal=FILE] MOUNTPOINT\n",
			argv[0]);
		goto out;
	}
	if (fl.item_size < 40 || fl.items > 1000000) {
		fprintf(stderr, "floorfs: item_size >= 40, items <= 1000000\n");
		goto out;
	}
	pthread_mutex_init(&fl.lock, NULL);
	dbuf_init(&fl.news, 64u * 1024 * 1024);
	fl.buckets = calloc(FLOOR_BUCKETS, sizeof(*fl.buckets));
	if (!fl.buckets) {
		fprintf(stderr, "floorfs: out of memory\n");
		goto out;
	}
	if (fl.journal_path) {
		fl.journal_fd = open(fl.journal_path,
				     O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
				     0600);
		if (fl.journal_fd < 0) {
			perror(fl.journal_path);
			goto out;
		}
	}
	fl.se = fuse_session_new(&args, &floor_ops, sizeof(floor_ops), &fl);
	if (!fl.se)
		goto out;
	if (fuse_set_signal_handlers(fl.se))
		goto out_session;
	if (fuse_session_mount(fl.se, opts.mountpoint))
		goto out_signals;
	if (fuse_daemonize(opts.foreground))
		goto out_unmount;
	if (opts.singlethread) {
		rc = fuse_session_loop(fl.se) ? 1 : 0;
	} else {
		loop = fuse_loop_cfg_create();
		if (loop) {
			fuse_loop_cfg_set_clone_fd(loop, opts.clone_fd);
			fuse_loop_cfg_set_max_threads(loop, opts.max_threads);
			rc = fuse_session_loop_mt(fl.se, loop) ? 1 : 0;
			fuse_loop_cfg_destroy(loop);
		}
	}
out_unmount:
	fuse_session_unmount(fl.se);
out_signals:
	fuse_remove_signal_handlers(fl.se);
out_session:
	fuse_session_destroy(fl.se);
out:
	if (fl.journal_fd >= 0)
		close(fl.journal_fd);
	free(fl.journal_path);
	dbuf_free(&fl.news);
	free(fl.buckets);
	free(opts.mountpoint);
	fuse_opt_free_args(&args);
	return rc;
}
