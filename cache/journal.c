/* journal: the write-back queue's log on disk (see docs/journal.md).
 *
 * Locking: j->lock guards every field below it in struct journal.  Frames
 * are written with the lock held, so the file's end is always a frame
 * boundary we know; the slow part, the sync, runs without it, by one
 * leader at a time, while the appenders whose frames it covers wait on
 * j->cond.  A rewrite first shuts new appenders out (j->rewriting), waits
 * for the ones already written to be synced, then works on its own file
 * without the lock.  Replay and close must not race anything.
 *
 * The file grows in zero-filled chunks ahead of the records (j->alloc), so
 * that an append overwrites blocks that already exist and its fdatasync
 * only has data to write: no size or block-map update, which on ext4
 * costs about half as much again per sync.  A zero length ends the
 * records, so replay tells a zero tail from a torn one. */
#include "cache/journal.h"
#include "cache/journal_test.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#define JOURNAL_NAME "journal"
#define JOURNAL_NEW "journal.new"
#define JOURNAL_LOCK "lock"

#define HDR_LEN 8u
/* An item is at most 400 KB as DynamoDB counts it, but its JSON text can
 * be a good deal longer (base64 for binary, type wrappers, escapes), and a
 * record carries the item and its base image.  2 MiB leaves room for that
 * and still bounds what a corrupt length can make replay allocate. */
#define MAX_RECORD (2u * 1024 * 1024)

/* pread chunk for replay; small enough for any thread's stack. */
#define READ_CHUNK 16384u

/* The file grows by this much zeroed space at a time.  One chunk holds
 * about 2,000 records of a small item; filling it costs one larger sync
 * (the new blocks and the size) per chunk instead of a size update per
 * record. */
#define PREALLOC_CHUNK (1u << 20)

struct journal {
	char *dir;
	int dfd;   /* DIR, for *at() calls and directory syncs */
	int lockfd; /* DIR/lock, holding the flock */

	pthread_mutex_t lock;
	pthread_cond_t cond;
	int fd;           /* DIR/journal, written with pwrite at end */
	uint64_t end;     /* bytes written (always a frame boundary) */
	uint64_t alloc;   /* file size; [end, alloc) holds zeros */
	uint64_t synced;  /* bytes a finished sync covered */
	bool syncing;     /* a leader is in sync_fn */
	bool rewriting;   /* a rewrite is under way: appenders hold off */
	unsigned nwait;   /* appenders whose frame is written, not yet synced */
	/* Sticky: after a failed sync the kernel may have dropped the dirty
	 * pages and a later sync would wrongly succeed, and after a failed
	 * cut-back a partial frame may sit at the end; either way no append
	 * can be trusted until a rewrite makes a fresh, synced file. */
	int err;
	bool need_replay; /* the file held bytes at open, not yet replayed */
	bool appended;    /* replay is no longer allowed */
	journal_sync_fn sync_fn;
	uint64_t nsync;
};

/* ---- small helpers ---------------------------------------------------- */

static void put_le32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static uint32_t get_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint32_t payload_crc(const void *p, size_t len)
{
	uLong crc = crc32(0L, Z_NULL, 0);

	/* len <= MAX_RECORD, so it fits zlib's uInt. */
	return (uint32_t)crc32(crc, p, (uInt)len);
}

static int default_sync(int fd)
{
	return fdatasync(fd);
}

/* One call of the sync function: 0 or -errno (a hook that fails without
 * setting errno still fails). */
static int call_sync(journal_sync_fn fn, int fd)
{
	int rc = 0;

	errno = 0;
	if (fn(fd))
		rc = errno ? -errno : -EIO;
	return rc;
}

/* Sync fd outside any append, counting it like the appenders' syncs. */
static int file_sync(struct journal *j, journal_sync_fn fn, int fd)
{
	int rc = call_sync(fn, fd);

	pthread_mutex_lock(&j->lock);
	j->nsync++;
	pthread_mutex_unlock(&j->lock);
	return rc;
}

static int pwrite_all(int fd, const char *p, size_t len, uint64_t at)
{
	size_t off = 0;
	ssize_t n;
	int rc = 0;

	/* One pwrite(2) normally takes the whole frame; loop for the short
	 * writes a signal or a size limit can cause. */
	while (off < len) {
		n = pwrite(fd, p + off, len - off, (off_t)(at + off));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			goto out;
		}
		off += (size_t)n;
	}
out:
	return rc;
}

/* Write len zero bytes at off. */
static int zero_fill(int fd, uint64_t off, uint64_t len)
{
	static const char zeros[READ_CHUNK];
	size_t n;
	int rc = 0;

	while (len && !rc) {
		n = len < sizeof(zeros) ? (size_t)len : sizeof(zeros);
		rc = pwrite_all(fd, zeros, n, off);
		off += n;
		len -= n;
	}
	return rc;
}

/* ---- framing ---------------------------------------------------------- */

struct dump_ctx {
	struct dbuf *b;
	int rc;
};

static int dump_cb(const char *buf, size_t size, void *data)
{
	struct dump_ctx *d = data;

	d->rc = dbuf_add(d->b, buf, size);
	return d->rc ? -1 : 0;
}

/* Encode rec as one frame into f (reset first). */
static int frame_encode(struct dbuf *f, const json_t *rec, struct dbuf *why)
{
	static const unsigned char zero[HDR_LEN];
	struct dump_ctx d = { f, 0 };
	unsigned char hdr[HDR_LEN];
	size_t len;
	int rc;

	dbuf_reset(f);
	if (!json_is_object(rec)) {
		dbuf_addf_opt(why, "a journal record must be a JSON object");
		rc = -EINVAL;
		goto out;
	}
	rc = dbuf_add(f, zero, sizeof(zero));
	if (rc)
		goto out;
	if (json_dump_callback(rec, dump_cb, &d, JSON_COMPACT)) {
		if (d.rc == -E2BIG) {
			dbuf_addf_opt(why, "a journal record is larger than %u bytes",
				      MAX_RECORD);
			rc = -EFBIG;
		} else {
			/* jansson fails only on memory (or our buffer). */
			rc = d.rc ? d.rc : -ENOMEM;
		}
		goto out;
	}
	len = dbuf_len(f) - HDR_LEN;
	put_le32(hdr, (uint32_t)len);
	put_le32(hdr + 4, payload_crc(dbuf_str(f) + HDR_LEN, len));
	/* The header depends on the payload, so it is patched in place
	 * rather than copying up to MAX_RECORD bytes behind it. */
	memcpy(f->ptr, hdr, HDR_LEN);
out:
	return rc;
}

static void frame_init(struct dbuf *f)
{
	dbuf_init(f, HDR_LEN + MAX_RECORD);
}

/* ---- open / close ----------------------------------------------------- */

/* fsync the directory that holds path (a path with a parent part). */
static int sync_parent(const char *path, size_t parent_len)
{
	struct dbuf p;
	int fd = -1, rc;

	dbuf_init(&p, DBUF_CAP_SMALL);
	rc = parent_len ? dbuf_add(&p, path, parent_len) : dbuf_adds(&p, ".");
	if (rc)
		goto out;
	fd = open(dbuf_str(&p), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd)) {
		rc = -errno;
		goto out;
	}
out:
	if (fd >= 0)
		close(fd);
	dbuf_free(&p);
	return rc;
}

/* Length of the parent part of the first len bytes of path: 0 for none
 * ("."), 1 for "/". */
static size_t parent_len(const char *path, size_t len)
{
	while (len && path[len - 1] != '/')
		len--;
	while (len > 1 && path[len - 1] == '/')
		len--;
	return len;
}

/* mkdir -p with mode 0700; every directory we create gets its entry in
 * its parent synced, or a power cut could take DIR and the journal with
 * it. */
static int make_dirs(const char *dir, struct dbuf *why)
{
	struct dbuf p;
	size_t i, n = strlen(dir);
	int rc = 0;

	dbuf_init(&p, DBUF_CAP_SMALL);
	for (i = 1; i <= n; i++) {
		/* Each prefix that ends a component: before a '/' that
		 * does not follow another, and the whole path. */
		if (i < n && (dir[i] != '/' || dir[i - 1] == '/'))
			continue;
		if (i == n && dir[i - 1] == '/')
			break;
		dbuf_reset(&p);
		rc = dbuf_add(&p, dir, i);
		if (rc)
			goto out;
		if (mkdir(dbuf_str(&p), 0700)) {
			if (errno == EEXIST)
				continue;
			rc = -errno;
			dbuf_addf_opt(why, "cannot make the directory %s: %s",
				      dbuf_str(&p), strerror(errno));
			goto out;
		}
		rc = sync_parent(dir, parent_len(dir, i));
		if (rc) {
			dbuf_addf_opt(why, "cannot sync the parent of %s: %s",
				      dbuf_str(&p), strerror(-rc));
			goto out;
		}
	}
out:
	dbuf_free(&p);
	return rc;
}

/* Open DIR/name with mode 0600 (made so even if it existed with another
 * mode and is ours). */
static int open_private(int dfd, const char *name, int flags, const char *dir,
			struct dbuf *why)
{
	struct stat st;
	int fd, rc;

	fd = openat(dfd, name, flags | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		rc = -errno;
		dbuf_addf_opt(why, "cannot open %s/%s: %s", dir, name,
			      strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) == 0 && st.st_uid == geteuid() &&
	    (st.st_mode & 07777) != 0600 && fchmod(fd, 0600)) {
		rc = -errno;
		dbuf_addf_opt(why, "cannot make %s/%s private: %s", dir, name,
			      strerror(errno));
		close(fd);
		goto out;
	}
	rc = fd;
out:
	return rc;
}

int journal_open(struct journal **out, const char *dir, struct dbuf *why)
{
	struct journal *j = NULL;
	struct stat st;
	bool locks = false;
	int rc;

	*out = NULL;
	if (!dir || !*dir) {
		dbuf_addf_opt(why, "no journal directory given");
		rc = -EINVAL;
		goto out;
	}
	j = calloc(1, sizeof(*j));
	if (!j) {
		rc = -ENOMEM;
		goto out;
	}
	j->dfd = j->lockfd = j->fd = -1;
	j->sync_fn = default_sync;
	j->dir = strdup(dir);
	if (!j->dir) {
		rc = -ENOMEM;
		goto out;
	}
	rc = -pthread_mutex_init(&j->lock, NULL);
	if (rc)
		goto out;
	rc = -pthread_cond_init(&j->cond, NULL);
	if (rc) {
		pthread_mutex_destroy(&j->lock);
		goto out;
	}
	locks = true;

	rc = make_dirs(dir, why);
	if (rc)
		goto out;
	j->dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (j->dfd < 0 || fstat(j->dfd, &st)) {
		rc = -errno;
		dbuf_addf_opt(why, "cannot open the journal directory %s: %s",
			      dir, strerror(errno));
		goto out;
	}
	/* Queued writes are file contents: keep them from other users.  A
	 * directory someone else owns was set up on purpose; leave it. */
	if (st.st_uid == geteuid() && (st.st_mode & 07777) != 0700 &&
	    fchmod(j->dfd, 0700)) {
		rc = -errno;
		dbuf_addf_opt(why, "cannot make %s private (mode 0700): %s",
			      dir, strerror(errno));
		goto out;
	}

	rc = open_private(j->dfd, JOURNAL_LOCK, O_RDWR, dir, why);
	if (rc < 0)
		goto out;
	j->lockfd = rc;
	if (flock(j->lockfd, LOCK_EX | LOCK_NB)) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		if (rc == -EBUSY)
			dbuf_addf_opt(why, "%s is in use by another dynfs (%s/%s is locked); "
				      "unmount that one or give this mount another journal directory",
				      dir, dir, JOURNAL_LOCK);
		else
			dbuf_addf_opt(why, "cannot lock %s/%s: %s", dir,
				      JOURNAL_LOCK, strerror(-rc));
		goto out;
	}
	rc = open_private(j->dfd, JOURNAL_NAME, O_RDWR, dir, why);
	if (rc < 0)
		goto out;
	j->fd = rc;
	rc = 0;
	/* A rewrite cut short by a crash leaves this behind; the journal it
	 * was to replace is still whole. */
	if (unlinkat(j->dfd, JOURNAL_NEW, 0) && errno != ENOENT) {
		rc = -errno;
		dbuf_addf_opt(why, "cannot remove %s/%s: %s", dir, JOURNAL_NEW,
			      strerror(errno));
		goto out;
	}
	/* Make the lock and journal entries (if just made) durable. */
	if (fsync(j->dfd) || fstat(j->fd, &st)) {
		rc = -errno;
		dbuf_addf_opt(why, "cannot sync the journal directory %s: %s",
			      dir, strerror(errno));
		goto out;
	}
	j->end = j->synced = j->alloc = (uint64_t)st.st_size;
	j->need_replay = st.st_size > 0;
	*out = j;
	j = NULL;
out:
	if (j) {
		if (j->fd >= 0)
			close(j->fd);
		if (j->lockfd >= 0)
			close(j->lockfd);
		if (j->dfd >= 0)
			close(j->dfd);
		if (locks) {
			pthread_cond_destroy(&j->cond);
			pthread_mutex_destroy(&j->lock);
		}
		free(j->dir);
		free(j);
	}
	return rc;
}

void journal_close(struct journal *j)
{
	struct stat st;
	bool sync;

	if (!j)
		return;
	/* Lazy records (done-markers) are cheap to lose, but a clean unmount
	 * should not make the next mount re-send writes for nothing. */
	sync = !j->err && j->synced < j->end;
	/* The zero tail is for appends; a closed journal is just its
	 * records.  Only a tail we know: not before replay (the end is not
	 * known yet), and not when the file is not the size we left it
	 * (someone else wrote it: then cutting could lose their records). */
	if (!j->err && !j->need_replay && j->alloc > j->end &&
	    !fstat(j->fd, &st) && (uint64_t)st.st_size == j->alloc &&
	    !ftruncate(j->fd, (off_t)j->end))
		sync = true;
	if (sync)
		(void)j->sync_fn(j->fd);
	close(j->fd);
	/* Closing the last descriptor of DIR/lock drops the flock. */
	close(j->lockfd);
	close(j->dfd);
	pthread_cond_destroy(&j->cond);
	pthread_mutex_destroy(&j->lock);
	free(j->dir);
	free(j);
}

/* ---- replay ----------------------------------------------------------- */

/* Read len bytes at off a chunk at a time, handing each to fn, which
 * returns 0 to go on, 1 to stop early (the result is then 1), or -errno. */
static int pread_chunks(int fd, uint64_t off, uint64_t len,
			int (*fn)(void *ctx, const char *p, size_t n), void *ctx)
{
	char chunk[READ_CHUNK];
	size_t want;
	ssize_t n;
	int rc = 0;

	while (len) {
		want = len < sizeof(chunk) ? (size_t)len : sizeof(chunk);
		n = pread(fd, chunk, want, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			goto out;
		}
		if (n == 0) {
			/* The file shrank under us: someone else writes it. */
			rc = -EIO;
			goto out;
		}
		rc = fn(ctx, chunk, (size_t)n);
		if (rc)
			goto out;
		len -= (uint64_t)n;
		off += (uint64_t)n;
	}
out:
	return rc;
}

static int chunk_keep(void *ctx, const char *p, size_t n)
{
	return dbuf_add(ctx, p, n);
}

static int pread_all(int fd, struct dbuf *b, size_t len, uint64_t off)
{
	return pread_chunks(fd, off, len, chunk_keep, b);
}

static int chunk_nonzero(void *ctx, const char *p, size_t n)
{
	size_t i;

	(void)ctx;
	for (i = 0; i < n; i++)
		if (p[i])
			return 1;
	return 0;
}

/* 1 when the size - off bytes at off are all zero (the preallocated
 * space after the last record), 0 when not, or -errno. */
static int zero_tail(int fd, uint64_t off, uint64_t size)
{
	int rc = pread_chunks(fd, off, size - off, chunk_nonzero, NULL);

	return rc < 0 ? rc : !rc;
}

/* Read the frame at off (size bytes in the file).  0 with *rec set, 1 when
 * the frame is torn or corrupt, or -errno when reading failed. */
static int frame_read(int fd, uint64_t off, uint64_t size, struct dbuf *b,
		      json_t **rec, uint64_t *next)
{
	const unsigned char *h;
	uint32_t len, crc;
	int rc = 1;

	*rec = NULL;
	if (size - off < HDR_LEN)
		goto out;
	dbuf_reset(b);
	rc = pread_all(fd, b, HDR_LEN, off);
	if (rc)
		goto out;
	h = (const unsigned char *)dbuf_str(b);
	len = get_le32(h);
	crc = get_le32(h + 4);
	rc = 1;
	if (len == 0 || len > MAX_RECORD || len > size - off - HDR_LEN)
		goto out;
	dbuf_reset(b);
	rc = pread_all(fd, b, len, off + HDR_LEN);
	if (rc)
		goto out;
	rc = 1;
	if (payload_crc(dbuf_str(b), len) != crc)
		goto out;
	/* We only ever write objects; anything else is damage the CRC
	 * happened to miss. */
	*rec = json_loadb(dbuf_str(b), len, 0, NULL);
	if (!json_is_object(*rec)) {
		json_decref(*rec);
		*rec = NULL;
		goto out;
	}
	*next = off + HDR_LEN + len;
	rc = 0;
out:
	return rc;
}

int journal_replay(struct journal *j, journal_cb cb, void *ctx,
		   struct dbuf *why)
{
	struct dbuf b;
	struct stat st;
	uint64_t off = 0, size;
	json_t *rec;
	int rc;

	dbuf_init(&b, MAX_RECORD);
	pthread_mutex_lock(&j->lock);
	rc = j->appended ? -EINVAL : 0;
	pthread_mutex_unlock(&j->lock);
	if (rc) {
		dbuf_addf_opt(why, "journal_replay called after an append to the journal in %s",
			      j->dir);
		goto out;
	}
	if (fstat(j->fd, &st)) {
		rc = -errno;
		dbuf_addf_opt(why, "cannot stat %s/%s: %s", j->dir,
			      JOURNAL_NAME, strerror(errno));
		goto out;
	}
	size = (uint64_t)st.st_size;
	while (off < size) {
		rc = frame_read(j->fd, off, size, &b, &rec, &off);
		if (rc < 0) {
			dbuf_addf_opt(why, "cannot read %s/%s: %s", j->dir,
				      JOURNAL_NAME, strerror(-rc));
			goto out;
		}
		if (rc > 0)
			break;
		/* Not under j->lock: cb may well ask for journal_size. */
		rc = cb(ctx, rec);
		json_decref(rec);
		if (rc)
			goto out;
	}
	rc = off < size ? zero_tail(j->fd, off, size) : 1;
	if (rc < 0) {
		dbuf_addf_opt(why, "cannot read %s/%s: %s", j->dir,
			      JOURNAL_NAME, strerror(-rc));
		goto out;
	}
	if (rc) {
		/* Nothing after the records but the zeros written ahead of
		 * them (or nothing at all): the file ends cleanly, and the
		 * zeros are kept for the next appends. */
		rc = 0;
	} else {
		/* A torn frame is what a crash mid-append leaves, and that
		 * append never returned 0, so cutting it loses nothing that
		 * was promised.  A damaged frame further back (bad disk) makes
		 * the framing after it untrustworthy, so the rule is the
		 * same.  Either way the next append must not follow it. */
		if (ftruncate(j->fd, (off_t)off) || fsync(j->fd)) {
			rc = -errno;
			dbuf_addf_opt(why, "cannot cut the torn end of %s/%s: %s",
				      j->dir, JOURNAL_NAME, strerror(errno));
			goto out;
		}
		dbuf_addf_opt(why, "cut %llu bytes of torn or corrupt records at byte %llu of %s/%s",
			      (unsigned long long)(size - off),
			      (unsigned long long)off, j->dir, JOURNAL_NAME);
		size = off;
	}
	pthread_mutex_lock(&j->lock);
	j->end = j->synced = off;
	j->alloc = size;
	j->need_replay = false;
	pthread_mutex_unlock(&j->lock);
out:
	dbuf_free(&b);
	return rc;
}

/* ---- append ----------------------------------------------------------- */

/* With j->lock held: make [end, end + len) lie in zeroed space when the
 * file can grow by a chunk.  When it cannot (a full disk, a file size
 * limit), the frame is written past the end as a plain append. */
static void reserve(struct journal *j, size_t len)
{
	uint64_t want;
	struct stat st;

	if (j->end + len <= j->alloc)
		return;
	want = (j->end + len + PREALLOC_CHUNK - 1) / PREALLOC_CHUNK *
	       PREALLOC_CHUNK;
	if (!zero_fill(j->fd, j->alloc, want - j->alloc)) {
		j->alloc = want;
		return;
	}
	/* Part of the chunk may be there; it is zeros, and the file's size
	 * says how far they go. */
	if (!fstat(j->fd, &st) && (uint64_t)st.st_size > j->alloc)
		j->alloc = (uint64_t)st.st_size;
}

/* With j->lock held and no rewrite under way: write frame f at the end. */
static int append_locked(struct journal *j, const struct dbuf *f,
			 struct dbuf *why)
{
	size_t len = dbuf_len(f);
	int rc;

	if (j->err) {
		rc = j->err;
		dbuf_addf_opt(why, "the journal in %s failed earlier (%s) and waits for a rewrite",
			      j->dir, strerror(-rc));
		goto out;
	}
	if (j->need_replay) {
		/* The file may end in a torn frame; a record written after
		 * it would be cut off with it at the next replay. */
		rc = -EINVAL;
		dbuf_addf_opt(why, "the journal in %s must be replayed before appending",
			      j->dir);
		goto out;
	}
	j->appended = true;
	reserve(j, len);
	rc = pwrite_all(j->fd, dbuf_str(f), len, j->end);
	if (rc) {
		dbuf_addf_opt(why, "cannot write %s/%s: %s", j->dir,
			      JOURNAL_NAME, strerror(-rc));
		/* Part of the frame may be on disk, where the zeros that end
		 * the records should be; take it back, zeros and all (the
		 * next append makes new ones). */
		if (ftruncate(j->fd, (off_t)j->end))
			j->err = rc;
		else
			j->alloc = j->end;
		goto out;
	}
	j->end += len;
	if (j->end > j->alloc)
		j->alloc = j->end;
out:
	return rc;
}

static int append(struct journal *j, const json_t *rec, bool durable,
		  struct dbuf *why)
{
	struct dbuf f;
	uint64_t mine, target;
	journal_sync_fn fn;
	int rc, fd;

	frame_init(&f);
	/* Encode outside the lock: it is the only part that scales with
	 * the record. */
	rc = frame_encode(&f, rec, why);
	if (rc)
		goto out;

	pthread_mutex_lock(&j->lock);
	while (j->rewriting)
		pthread_cond_wait(&j->cond, &j->lock);
	rc = append_locked(j, &f, why);
	if (rc || !durable)
		goto unlock;

	/* Group commit: one leader syncs everything written so far while
	 * the others, whose frames that sync covers, wait for it. */
	mine = j->end;
	j->nwait++;
	while (!j->err && j->synced < mine) {
		if (j->syncing) {
			pthread_cond_wait(&j->cond, &j->lock);
			continue;
		}
		j->syncing = true;
		target = j->end;
		fd = j->fd;
		fn = j->sync_fn;
		pthread_mutex_unlock(&j->lock);
		rc = call_sync(fn, fd);
		pthread_mutex_lock(&j->lock);
		j->nsync++;
		j->syncing = false;
		if (rc)
			j->err = rc;
		else if (target > j->synced)
			j->synced = target;
		pthread_cond_broadcast(&j->cond);
	}
	rc = j->synced >= mine ? 0 : j->err;
	if (rc)
		dbuf_addf_opt(why, "cannot sync %s/%s: %s", j->dir,
			      JOURNAL_NAME, strerror(-rc));
	if (!--j->nwait)
		pthread_cond_broadcast(&j->cond);
unlock:
	pthread_mutex_unlock(&j->lock);
out:
	dbuf_free(&f);
	return rc;
}

int journal_append(struct journal *j, const json_t *rec, struct dbuf *why)
{
	return append(j, rec, true, why);
}

int journal_append_lazy(struct journal *j, const json_t *rec,
			struct dbuf *why)
{
	return append(j, rec, false, why);
}

/* ---- rewrite ---------------------------------------------------------- */

int journal_rewrite(struct journal *j, const json_t *live, struct dbuf *why)
{
	struct dbuf f;
	const json_t *rec;
	uint64_t size = 0;
	journal_sync_fn fn;
	size_t i;
	int rc, nfd = -1, old;
	bool excl = false, renamed = false;

	frame_init(&f);
	if (!json_is_array(live)) {
		dbuf_addf_opt(why, "journal_rewrite needs an array of records");
		rc = -EINVAL;
		goto out;
	}
	pthread_mutex_lock(&j->lock);
	while (j->rewriting)
		pthread_cond_wait(&j->cond, &j->lock);
	j->rewriting = true;
	excl = true;
	/* Appenders already written wait for a sync of the old file; let
	 * them have it before the file goes away. */
	while (j->nwait || j->syncing)
		pthread_cond_wait(&j->cond, &j->lock);
	fn = j->sync_fn;
	pthread_mutex_unlock(&j->lock);

	nfd = openat(j->dfd, JOURNAL_NEW,
		     O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (nfd < 0 || fchmod(nfd, 0600)) {
		rc = -errno;
		dbuf_addf_opt(why, "cannot make %s/%s: %s", j->dir, JOURNAL_NEW,
			      strerror(errno));
		goto out;
	}
	json_array_foreach(live, i, rec) {
		rc = frame_encode(&f, rec, why);
		if (rc)
			goto out;
		rc = pwrite_all(nfd, dbuf_str(&f), dbuf_len(&f), size);
		if (rc) {
			dbuf_addf_opt(why, "cannot write %s/%s: %s", j->dir,
				      JOURNAL_NEW, strerror(-rc));
			goto out;
		}
		size += dbuf_len(&f);
	}
	rc = file_sync(j, fn, nfd);
	if (rc) {
		dbuf_addf_opt(why, "cannot sync %s/%s: %s", j->dir, JOURNAL_NEW,
			      strerror(-rc));
		goto out;
	}
	if (renameat(j->dfd, JOURNAL_NEW, j->dfd, JOURNAL_NAME)) {
		rc = -errno;
		dbuf_addf_opt(why, "cannot rename %s/%s over %s: %s", j->dir,
			      JOURNAL_NEW, JOURNAL_NAME, strerror(errno));
		goto out;
	}
	renamed = true;
	rc = fsync(j->dfd) ? -errno : 0;
	if (rc)
		dbuf_addf_opt(why, "cannot sync the journal directory %s: %s",
			      j->dir, strerror(-rc));

	/* The old descriptor now names an unlinked file: switch even if
	 * the directory sync failed, but then keep appends out (j->err),
	 * since a crash could bring the old name back without them. */
	pthread_mutex_lock(&j->lock);
	old = j->fd;
	j->fd = nfd;
	nfd = -1;
	j->end = j->synced = j->alloc = size;
	j->err = rc;
	j->need_replay = false;
	pthread_mutex_unlock(&j->lock);
	close(old);
out:
	if (nfd >= 0) {
		close(nfd);
		if (!renamed)
			(void)unlinkat(j->dfd, JOURNAL_NEW, 0);
	}
	if (excl) {
		pthread_mutex_lock(&j->lock);
		j->rewriting = false;
		pthread_cond_broadcast(&j->cond);
		pthread_mutex_unlock(&j->lock);
	}
	dbuf_free(&f);
	return rc;
}

/* ---- the rest --------------------------------------------------------- */

uint64_t journal_size(struct journal *j)
{
	uint64_t n;

	pthread_mutex_lock(&j->lock);
	n = j->end;
	pthread_mutex_unlock(&j->lock);
	return n;
}

const char *journal_dir(const struct journal *j)
{
	return j->dir;
}

void journal_test_set_sync(struct journal *j, journal_sync_fn sync)
{
	pthread_mutex_lock(&j->lock);
	j->sync_fn = sync ? sync : default_sync;
	pthread_mutex_unlock(&j->lock);
}

uint64_t journal_test_syncs(struct journal *j)
{
	uint64_t n;

	pthread_mutex_lock(&j->lock);
	n = j->nsync;
	pthread_mutex_unlock(&j->lock);
	return n;
}
