/* cache: scratch files, the local files of table and partition directories
 * that never reach DynamoDB (swap files, backups, temporary files).  They
 * are named by their full path in one map; an open file holds a reference,
 * so an unlinked or renamed scratch file stays readable through it. */
#include "cache/cache_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Bigger than any item's text can be, small enough to bound memory. */
#define SCRATCH_CAP DBUF_CAP_BODY

struct cache_scratch {
	/* Lock order: after c->scratch_lock; a leaf. */
	pthread_mutex_t lock;
	unsigned refs;
	struct dbuf data;
	mode_t mode;
	struct timespec atime, mtime, ctime;
	json_t *hint; /* the typed item it was renamed from, or NULL */
};

static void now_ts(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
}

static struct cache_scratch *scratch_new(mode_t mode)
{
	struct cache_scratch *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	pthread_mutex_init(&s->lock, NULL);
	s->refs = 1;
	dbuf_init(&s->data, SCRATCH_CAP);
	s->mode = mode & 07777;
	now_ts(&s->mtime);
	s->atime = s->ctime = s->mtime;
	return s;
}

static struct cache_scratch *scratch_get(struct cache_scratch *s)
{
	pthread_mutex_lock(&s->lock);
	s->refs++;
	pthread_mutex_unlock(&s->lock);
	return s;
}

void cache_scratch_put(struct cache_scratch *s)
{
	unsigned left;

	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	left = --s->refs;
	pthread_mutex_unlock(&s->lock);
	if (left)
		return;
	pthread_mutex_destroy(&s->lock);
	dbuf_free(&s->data);
	json_decref(s->hint);
	free(s);
}

void cache_scratch_free_all(struct cache *c)
{
	struct cmap_iter it = { 0, NULL };
	struct cache_scratch *s;

	if (!c->scratch)
		return;
	while (cmap_next(c->scratch, &it, NULL, NULL, (void **)&s))
		cache_scratch_put(s);
}

int cache_scratch_make(const char *text, size_t len, const json_t *hint,
		       struct cache_scratch **out)
{
	struct cache_scratch *s = scratch_new(0644);
	int rc;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	rc = dbuf_add(&s->data, text, len);
	if (rc) {
		cache_scratch_put(s);
		return rc;
	}
	s->hint = json_incref((json_t *)hint);
	*out = s;
	return 0;
}

int cache_scratch_install(struct cache *c, const char *path,
			  struct cache_scratch *s)
{
	struct cache_scratch *old;
	int rc;

	pthread_mutex_lock(&c->scratch_lock);
	old = cmap_take(c->scratch, path, strlen(path));
	rc = cmap_put(c->scratch, path, strlen(path), s);
	pthread_mutex_unlock(&c->scratch_lock);
	cache_scratch_put(old);
	if (rc)
		cache_scratch_put(s);
	return rc;
}

int cache_scratch_open(struct cache *c, const char *path, unsigned flags,
		       mode_t mode, struct cache_scratch **out)
{
	struct cache_scratch *s;
	int rc = 0;

	*out = NULL;
	pthread_mutex_lock(&c->scratch_lock);
	s = cmap_get(c->scratch, path, strlen(path));
	if (s) {
		if ((flags & CACHE_SCRATCH_CREATE) &&
		    (flags & CACHE_SCRATCH_EXCL)) {
			rc = -EEXIST;
			goto out;
		}
		if (flags & CACHE_SCRATCH_TRUNC) {
			pthread_mutex_lock(&s->lock);
			dbuf_reset(&s->data);
			now_ts(&s->mtime);
			s->ctime = s->mtime;
			pthread_mutex_unlock(&s->lock);
		}
		*out = scratch_get(s);
		goto out;
	}
	if (!(flags & CACHE_SCRATCH_CREATE)) {
		rc = -ENOENT;
		goto out;
	}
	s = scratch_new(mode);
	if (!s) {
		rc = -ENOMEM;
		goto out;
	}
	rc = cmap_put(c->scratch, path, strlen(path), s);
	if (rc) {
		cache_scratch_put(s);
		goto out;
	}
	*out = scratch_get(s);
out:
	pthread_mutex_unlock(&c->scratch_lock);
	return rc;
}

void cache_scratch_fstat(struct cache_scratch *s,
			 struct cache_scratch_stat *st)
{
	pthread_mutex_lock(&s->lock);
	st->size = dbuf_len(&s->data);
	st->mode = s->mode;
	st->atime = s->atime;
	st->mtime = s->mtime;
	st->ctime = s->ctime;
	pthread_mutex_unlock(&s->lock);
}

int cache_scratch_stat(struct cache *c, const char *path,
		       struct cache_scratch_stat *st)
{
	struct cache_scratch *s;
	int rc = 0;

	pthread_mutex_lock(&c->scratch_lock);
	s = cmap_get(c->scratch, path, strlen(path));
	if (s)
		cache_scratch_fstat(s, st);
	else
		rc = -ENOENT;
	pthread_mutex_unlock(&c->scratch_lock);
	return rc;
}

ssize_t cache_scratch_read(struct cache_scratch *s, char *buf, size_t size,
			   off_t off)
{
	size_t len, n = 0;

	if (off < 0)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	len = dbuf_len(&s->data);
	if ((uint64_t)off < len) {
		n = len - (size_t)off;
		if (n > size)
			n = size;
		memcpy(buf, s->data.ptr + off, n);
	}
	now_ts(&s->atime);
	pthread_mutex_unlock(&s->lock);
	return (ssize_t)n;
}

/* Write at off, filling a hole with zeros. */
static int buf_write(struct dbuf *b, const char *data, size_t size, off_t off)
{
	static const char zeros[4096];
	size_t len = dbuf_len(b), o, inside;
	int rc = 0;

	if (off < 0)
		return -EINVAL;
	o = (size_t)off;
	if (o > b->cap || size > b->cap - o)
		return -EFBIG;
	while (!rc && dbuf_len(b) < o) {
		size_t gap = o - dbuf_len(b);

		rc = dbuf_add(b, zeros, gap < sizeof(zeros) ? gap : sizeof(zeros));
	}
	if (rc)
		goto out;
	len = dbuf_len(b);
	inside = len > o ? len - o : 0;
	if (inside > size)
		inside = size;
	if (inside)
		memcpy(b->ptr + o, data, inside);
	if (size > inside)
		rc = dbuf_add(b, data + inside, size - inside);
out:
	if (rc == -E2BIG)
		rc = -EFBIG;
	return rc;
}

ssize_t cache_scratch_write(struct cache_scratch *s, const char *buf,
			    size_t size, off_t off)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = buf_write(&s->data, buf, size, off);
	if (!rc) {
		now_ts(&s->mtime);
		s->ctime = s->mtime;
	}
	pthread_mutex_unlock(&s->lock);
	return rc ? rc : (ssize_t)size;
}

int cache_scratch_truncate(struct cache_scratch *s, off_t size)
{
	int rc = 0;

	if (size < 0)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	if ((uint64_t)size <= dbuf_len(&s->data))
		dbuf_truncate(&s->data, (size_t)size);
	else
		rc = buf_write(&s->data, "", 0, size);
	if (!rc) {
		now_ts(&s->mtime);
		s->ctime = s->mtime;
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

void cache_scratch_set_mode(struct cache_scratch *s, mode_t mode)
{
	pthread_mutex_lock(&s->lock);
	s->mode = mode & 07777;
	now_ts(&s->ctime);
	pthread_mutex_unlock(&s->lock);
}

static void set_one_time(struct timespec *dst, const struct timespec *ts,
			 const struct timespec *now)
{
	if (!ts || ts->tv_nsec == UTIME_NOW)
		*dst = *now;
	else if (ts->tv_nsec != UTIME_OMIT)
		*dst = *ts;
}

void cache_scratch_set_times(struct cache_scratch *s,
			     const struct timespec ts[2])
{
	struct timespec now;

	now_ts(&now);
	pthread_mutex_lock(&s->lock);
	set_one_time(&s->atime, ts ? &ts[0] : NULL, &now);
	set_one_time(&s->mtime, ts ? &ts[1] : NULL, &now);
	s->ctime = now;
	pthread_mutex_unlock(&s->lock);
}

int cache_scratch_unlink(struct cache *c, const char *path)
{
	struct cache_scratch *s;

	pthread_mutex_lock(&c->scratch_lock);
	s = cmap_take(c->scratch, path, strlen(path));
	pthread_mutex_unlock(&c->scratch_lock);
	if (!s)
		return -ENOENT;
	cache_scratch_put(s);
	return 0;
}

void cache_scratch_unlink_if(struct cache *c, const char *path,
			     struct cache_scratch *s)
{
	struct cache_scratch *cur;

	pthread_mutex_lock(&c->scratch_lock);
	cur = cmap_get(c->scratch, path, strlen(path));
	if (cur == s)
		cmap_take(c->scratch, path, strlen(path));
	pthread_mutex_unlock(&c->scratch_lock);
	if (cur == s)
		cache_scratch_put(s);
}

int cache_scratch_rename(struct cache *c, const char *from, const char *to,
			 unsigned flags)
{
	struct cache_scratch *s, *old = NULL;
	int rc = 0;

	if (!strcmp(from, to))
		return 0;
	pthread_mutex_lock(&c->scratch_lock);
	s = cmap_get(c->scratch, from, strlen(from));
	if (!s) {
		rc = -ENOENT;
		goto out;
	}
	if (cmap_get(c->scratch, to, strlen(to))) {
		if (flags & CACHE_SAVE_EXCL) {
			rc = -EEXIST;
			goto out;
		}
		old = cmap_take(c->scratch, to, strlen(to));
	}
	rc = cmap_put(c->scratch, to, strlen(to), s);
	if (rc) {
		/* Out of memory: put the replaced file back if we can. */
		if (old && !cmap_put(c->scratch, to, strlen(to), old))
			old = NULL;
		goto out;
	}
	cmap_take(c->scratch, from, strlen(from));
	pthread_mutex_lock(&s->lock);
	now_ts(&s->ctime);
	pthread_mutex_unlock(&s->lock);
out:
	pthread_mutex_unlock(&c->scratch_lock);
	cache_scratch_put(old);
	return rc;
}

/* 1 when path is directly inside dir. */
static int in_dir(const char *path, size_t plen, const char *dir, size_t dlen,
		  const char **name)
{
	if (plen <= dlen + 1 || memcmp(path, dir, dlen) || path[dlen] != '/' ||
	    memchr(path + dlen + 1, '/', plen - dlen - 1))
		return 0;
	*name = path + dlen + 1;
	return 1;
}

struct listed {
	struct cache_scratch_stat st;
	size_t name_off;
};

int cache_scratch_list(struct cache *c, const char *dir, cache_scratch_cb cb,
		       void *ctx)
{
	struct cmap_iter it = { 0, NULL };
	struct cache_scratch *s;
	struct dbuf names, arr;
	struct listed l, *ls;
	const char *path, *name;
	size_t plen, dlen = strlen(dir), i, n;
	int rc = 0;

	dbuf_init(&names, DBUF_CAP_BODY);
	dbuf_init(&arr, DBUF_CAP_BODY);
	pthread_mutex_lock(&c->scratch_lock);
	while (!rc && cmap_next(c->scratch, &it, (const void **)&path, &plen,
				(void **)&s)) {
		if (!in_dir(path, plen, dir, dlen, &name))
			continue;
		cache_scratch_fstat(s, &l.st);
		l.name_off = dbuf_len(&names);
		rc = dbuf_add(&names, name, strlen(name) + 1);
		if (!rc)
			rc = dbuf_add(&arr, &l, sizeof(l));
	}
	pthread_mutex_unlock(&c->scratch_lock);
	ls = (struct listed *)arr.ptr;
	n = dbuf_len(&arr) / sizeof(*ls);
	for (i = 0; !rc && i < n; i++)
		rc = cb(ctx, names.ptr + ls[i].name_off, &ls[i].st);
	dbuf_free(&names);
	dbuf_free(&arr);
	return rc;
}

size_t cache_scratch_count(struct cache *c, const char *dir)
{
	struct cmap_iter it = { 0, NULL };
	const char *path, *name;
	size_t plen, n = 0, dlen = strlen(dir);

	pthread_mutex_lock(&c->scratch_lock);
	while (cmap_next(c->scratch, &it, (const void **)&path, &plen, NULL))
		n += in_dir(path, plen, dir, dlen, &name);
	pthread_mutex_unlock(&c->scratch_lock);
	return n;
}

int cache_scratch_text(struct cache_scratch *s, struct dbuf *out)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = dbuf_add(out, dbuf_str(&s->data), dbuf_len(&s->data));
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int cache_scratch_snapshot(struct cache *c, const char *path,
			   struct dbuf *text, json_t **hint,
			   struct cache_scratch **ref)
{
	struct cache_scratch *s;
	int rc = 0;

	*hint = NULL;
	*ref = NULL;
	pthread_mutex_lock(&c->scratch_lock);
	s = cmap_get(c->scratch, path, strlen(path));
	if (!s) {
		rc = -ENOENT;
		goto out;
	}
	pthread_mutex_lock(&s->lock);
	rc = dbuf_add(text, dbuf_str(&s->data), dbuf_len(&s->data));
	*hint = json_incref(s->hint);
	s->refs++;
	pthread_mutex_unlock(&s->lock);
	*ref = s;
out:
	pthread_mutex_unlock(&c->scratch_lock);
	return rc;
}
