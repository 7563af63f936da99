/* journal: the on-disk log of the write-back queue.  Each test gets its
 * own directory under /tmp and checks the file itself as well as what
 * replay hands back: framing round trips, torn and corrupt tails are cut,
 * concurrent appenders share syncs, the directory is private and locked,
 * and a rewrite replaces the file atomically. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <zlib.h>

#include "backend/dbuf.h"
#include "cache/journal.h"
#include "cache/journal_test.h"
#include "tests/testutil.h"

struct fx {
	char base[64];  /* /tmp/dynfs-journal-XXXXXX */
	char dir[128];  /* base/a/b/j: journal_open makes the parents */
	char file[160]; /* dir/journal */
	off_t left;     /* replay_image: the file's size after replay ... */
	uint64_t end;   /* ... and journal_size */
};

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	strcpy(fx->base, "/tmp/dynfs-journal-XXXXXX");
	if (!mkdtemp(fx->base)) {
		free(fx);
		return -1;
	}
	snprintf(fx->dir, sizeof(fx->dir), "%s/a/b/j", fx->base);
	snprintf(fx->file, sizeof(fx->file), "%s/journal", fx->dir);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	tu_rmtree(fx->base);
	free(fx);
	return 0;
}

/* ---- helpers ---------------------------------------------------------- */

/* Record n, with pad bytes of filler so sizes vary. */
static json_t *rec_new(int n, size_t pad)
{
	char *s = malloc(pad + 1);
	json_t *r;

	assert_non_null(s);
	for (size_t i = 0; i < pad; i++)
		s[i] = (char)('a' + (n + (int)i) % 26);
	s[pad] = '\0';
	r = json_pack("{s:i, s:s, s:[i, s]}", "n", n, "pad", s, "x", n * 7,
		      "q\"u\\o\nte");
	free(s);
	assert_non_null(r);
	return r;
}

static int collect(void *ctx, json_t *rec)
{
	return json_array_append(ctx, rec) ? -ENOMEM : 0;
}

static json_t *replay_all(struct journal *j, int *rc_out)
{
	json_t *got = json_array();
	struct dbuf why;
	int rc;

	assert_non_null(got);
	dbuf_init(&why, DBUF_CAP_SMALL);
	rc = journal_replay(j, collect, got, &why);
	if (rc_out)
		*rc_out = rc;
	else
		assert_int_equal(rc, 0);
	dbuf_free(&why);
	return got;
}

static struct journal *open_ok(const char *dir)
{
	struct journal *j = NULL;
	struct dbuf why;
	int rc;

	dbuf_init(&why, DBUF_CAP_SMALL);
	rc = journal_open(&j, dir, &why);
	if (rc)
		fail_msg("journal_open %s: %d %s", dir, rc, dbuf_str(&why));
	dbuf_free(&why);
	return j;
}

static void append_ok(struct journal *j, json_t *rec, int lazy)
{
	int rc = lazy ? journal_append_lazy(j, rec, NULL) :
			journal_append(j, rec, NULL);

	assert_int_equal(rc, 0);
	json_decref(rec);
}

/* The forked child pid exited by itself, with status 0. */
static void child_ok(pid_t pid)
{
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static off_t file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

/* The file holds size bytes of records, then only zeros: the space the
 * journal fills ahead of its appends. */
static void expect_records_then_zeros(const char *path, uint64_t size)
{
	off_t n = file_size(path);
	char buf[4096];
	uint64_t off = size;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_true((uint64_t)n >= size);
	while (off < (uint64_t)n) {
		ssize_t got = pread(fd, buf, sizeof(buf), (off_t)off);

		assert_true(got > 0);
		for (ssize_t i = 0; i < got; i++)
			if (buf[i])
				fail_msg("byte %llu after the records is %d",
					 (unsigned long long)off + (unsigned long long)i,
					 buf[i]);
		off += (uint64_t)got;
	}
	close(fd);
}

/* Reopen dir, replay and check the records are n(first..) in order. */
static void expect_ns(const char *dir, const int *ns, size_t count)
{
	struct journal *j = open_ok(dir);
	json_t *got = replay_all(j, NULL);

	assert_int_equal(json_array_size(got), count);
	for (size_t i = 0; i < count; i++)
		assert_int_equal(json_integer_value(json_object_get(
					 json_array_get(got, i), "n")), ns[i]);
	json_decref(got);
	journal_close(j);
}

static void write_file(const char *path, const void *p, size_t len)
{
	int fd = open(path, O_WRONLY | O_TRUNC);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, len), (ssize_t)len);
	close(fd);
}

static char *read_file_all(const char *path, size_t *len)
{
	off_t n = file_size(path);
	char *p = malloc((size_t)n + 1);
	int fd = open(path, O_RDONLY);

	assert_non_null(p);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, p, (size_t)n), (ssize_t)n);
	close(fd);
	*len = (size_t)n;
	return p;
}

/* The journal image of records 0-3 (small) then 4 (a 300-byte value):
 * *last is where record 4's frame starts, *total the image's length. */
static char *five_records_image(struct fx *fx, uint64_t *last,
				uint64_t *total)
{
	struct journal *j = open_ok(fx->dir);
	size_t len;
	char *img;

	for (int i = 0; i < 4; i++)
		append_ok(j, rec_new(i, 20), 0);
	*last = journal_size(j);
	append_ok(j, rec_new(4, 300), 0);
	*total = journal_size(j);
	journal_close(j);
	img = read_file_all(fx->file, &len);
	assert_int_equal(len, *total);
	return img;
}

/* ---- tests ------------------------------------------------------------ */

static void test_round_trip(void **state)
{
	struct fx *fx = *state;
	struct journal *j = open_ok(fx->dir);
	json_t *want = json_array(), *got;
	uint64_t size;
	uint32_t len, crc;
	unsigned char hdr[8];
	char *text;
	int fd, i;

	assert_string_equal(journal_dir(j), fx->dir);
	assert_int_equal(journal_size(j), 0);
	for (i = 0; i < 400; i++) {
		/* sizes from nothing to ~150 KB; most lazy to keep it quick */
		size_t pad = i % 50 == 7 ? 150000 : (size_t)(i * 37 % 3000);
		json_t *r = rec_new(i, pad);

		json_array_append(want, r);
		append_ok(j, r, i % 10 != 0);
	}
	size = journal_size(j);
	expect_records_then_zeros(fx->file, size);
	journal_close(j);
	/* a closed journal is its records and nothing else */
	assert_int_equal(file_size(fx->file), (off_t)size);

	j = open_ok(fx->dir);
	got = replay_all(j, NULL);
	assert_true(json_equal(got, want));
	assert_int_equal(journal_size(j), (uint64_t)file_size(fx->file));
	journal_close(j);

	/* The first frame is exactly: length, crc32, compact JSON. */
	fd = open(fx->file, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, hdr, 8), 8);
	len = hdr[0] | hdr[1] << 8 | hdr[2] << 16 | (uint32_t)hdr[3] << 24;
	crc = hdr[4] | hdr[5] << 8 | hdr[6] << 16 | (uint32_t)hdr[7] << 24;
	text = json_dumps(json_array_get(want, 0), JSON_COMPACT);
	assert_non_null(text);
	assert_int_equal(len, strlen(text));
	{
		char *buf = malloc(len);

		assert_non_null(buf);
		assert_int_equal(read(fd, buf, len), (ssize_t)len);
		assert_memory_equal(buf, text, len);
		assert_int_equal(crc, (uint32_t)crc32(0, (const unsigned char *)text, len));
		free(buf);
	}
	free(text);
	close(fd);
	json_decref(got);
	json_decref(want);
}

static void test_reopen_and_order_rules(void **state)
{
	struct fx *fx = *state;
	const int ns[] = { 0, 1, 2, 3, 4, 5 };
	struct journal *j = open_ok(fx->dir);
	struct dbuf why;
	json_t *r, *got;
	int rc;

	dbuf_init(&why, DBUF_CAP_SMALL);
	for (int i = 0; i < 3; i++)
		append_ok(j, rec_new(i, 10), 0);
	/* replay comes before appends */
	got = replay_all(j, &rc);
	assert_int_equal(rc, -EINVAL);
	json_decref(got);
	journal_close(j);

	/* a non-empty journal must be replayed before the next append */
	j = open_ok(fx->dir);
	r = rec_new(99, 1);
	assert_int_equal(journal_append(j, r, &why), -EINVAL);
	assert_non_null(strstr(dbuf_str(&why), "replayed"));
	json_decref(r);
	got = replay_all(j, NULL);
	assert_int_equal(json_array_size(got), 3);
	json_decref(got);
	for (int i = 3; i < 6; i++)
		append_ok(j, rec_new(i, 10), i == 5);
	journal_close(j);

	expect_ns(fx->dir, ns, 6);
	dbuf_free(&why);
}

static void test_torn_tail(void **state)
{
	struct fx *fx = *state;
	const int ns[] = { 0, 1, 2, 3, 4 };
	struct journal *j;
	uint64_t last, total;
	char *img = five_records_image(fx, &last, &total);

	/* Every cut inside the last frame, header included. */
	for (uint64_t cut = last; cut <= total; cut++) {
		struct dbuf why;
		json_t *got;

		write_file(fx->file, img, (size_t)cut);
		dbuf_init(&why, DBUF_CAP_SMALL);
		j = open_ok(fx->dir);
		got = json_array();
		assert_int_equal(journal_replay(j, collect, got, &why), 0);
		assert_int_equal(json_array_size(got), cut == total ? 5 : 4);
		if (cut > last && cut < total)
			assert_non_null(strstr(dbuf_str(&why), "torn"));
		assert_int_equal(journal_size(j), cut == total ? total : last);
		assert_int_equal(file_size(fx->file), cut == total ? total : last);
		json_decref(got);
		journal_close(j);
		dbuf_free(&why);
	}
	/* After a cut, appends go where the torn frame was. */
	write_file(fx->file, img, (size_t)total - 3);
	j = open_ok(fx->dir);
	json_decref(replay_all(j, NULL));
	append_ok(j, rec_new(4, 5), 0);
	journal_close(j);
	expect_ns(fx->dir, ns, 5);
	free(img);
}

static void test_corrupt_byte(void **state)
{
	struct fx *fx = *state;
	const int ns[] = { 0, 1, 7 };
	struct journal *j = open_ok(fx->dir);
	uint64_t third, fourth;
	size_t len;
	char *img;
	/* in the third frame: length byte, crc byte, payload byte */
	int where[3];

	for (int i = 0; i < 2; i++)
		append_ok(j, rec_new(i, 30), 0);
	third = journal_size(j);
	append_ok(j, rec_new(2, 30), 0);
	fourth = journal_size(j);
	for (int i = 3; i < 5; i++)
		append_ok(j, rec_new(i, 30), 0);
	journal_close(j);
	img = read_file_all(fx->file, &len);
	where[0] = (int)third + 1;
	where[1] = (int)third + 5;
	where[2] = (int)(third + fourth) / 2;

	for (int k = 0; k < 3; k++) {
		json_t *got;

		img[where[k]] ^= 0x10;
		write_file(fx->file, img, len);
		img[where[k]] ^= 0x10;
		j = open_ok(fx->dir);
		got = replay_all(j, NULL);
		assert_int_equal(json_array_size(got), 2);
		assert_int_equal(file_size(fx->file), (off_t)third);
		json_decref(got);
		journal_close(j);
	}
	/* a frame whose JSON is bad but whose crc matches is cut too */
	{
		unsigned char bad[8 + 3] = { 3, 0, 0, 0, 0, 0, 0, 0, '[', '1', ']' };
		uint32_t crc = (uint32_t)crc32(0, (const unsigned char *)"[1]", 3);
		int fd = open(fx->file, O_WRONLY | O_APPEND);

		bad[4] = (unsigned char)crc;
		bad[5] = (unsigned char)(crc >> 8);
		bad[6] = (unsigned char)(crc >> 16);
		bad[7] = (unsigned char)(crc >> 24);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, bad, sizeof(bad)), (ssize_t)sizeof(bad));
		close(fd);
	}
	j = open_ok(fx->dir);
	json_decref(replay_all(j, NULL));
	assert_int_equal(file_size(fx->file), (off_t)third);
	append_ok(j, rec_new(7, 3), 0);
	journal_close(j);
	expect_ns(fx->dir, ns, 3);
	free(img);
}

/* ---- the zeroed space ahead of the records ------------------------------ */

/* Appends land in zeros written ahead of them, so the file does not grow
 * with each record (a sync then has no size to write); a closed journal
 * is cut back to its records; a process killed without closing leaves
 * the zeros, which replay takes as a clean end and the next appends
 * fill. */
static void test_prealloc_zero_tail(void **state)
{
	struct fx *fx = *state;
	const int ns[] = { 0, 1, 2, 3, 4, 5 };
	struct journal *j = open_ok(fx->dir);
	uint64_t size, syncs;
	struct dbuf why;
	json_t *got;
	off_t grown;
	int rc;
	pid_t pid;

	append_ok(j, rec_new(0, 10), 0);
	grown = file_size(fx->file);
	assert_true((uint64_t)grown > journal_size(j));
	expect_records_then_zeros(fx->file, journal_size(j));
	syncs = journal_test_syncs(j);
	append_ok(j, rec_new(1, 10), 0);
	append_ok(j, rec_new(2, 10), 1);
	/* one sync per durable append, and the size stays */
	assert_int_equal(journal_test_syncs(j), syncs + 1);
	assert_int_equal(file_size(fx->file), grown);
	size = journal_size(j);
	expect_records_then_zeros(fx->file, size);
	journal_close(j);
	assert_int_equal(file_size(fx->file), (off_t)size);

	/* as kill -9 leaves it: appended, never closed */
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct journal *k = NULL;
		struct stat st;
		json_t *seen = json_array(), *r = rec_new(3, 10);
		int code = 0;

		if (!seen || !r || journal_open(&k, fx->dir, NULL))
			_exit(10);
		if (journal_replay(k, collect, seen, NULL) ||
		    json_array_size(seen) != 3)
			code = 11;
		else if (journal_append(k, r, NULL))
			code = 12;
		else if (stat(fx->file, &st) ||
			 (uint64_t)st.st_size <= journal_size(k))
			code = 13;
		/* k stays open, as kill -9 leaves it; what the child
		 * made itself is freed, or valgrind's leak check fails
		 * the child's exit. */
		json_decref(seen);
		json_decref(r);
		_exit(code);
	}
	child_ok(pid);
	grown = file_size(fx->file);

	j = open_ok(fx->dir);
	dbuf_init(&why, DBUF_CAP_SMALL);
	got = json_array();
	rc = journal_replay(j, collect, got, &why);
	assert_int_equal(rc, 0);
	assert_int_equal(json_array_size(got), 4);
	/* a clean end: nothing to report, nothing cut, the zeros kept */
	assert_int_equal(dbuf_len(&why), 0);
	assert_int_equal(file_size(fx->file), grown);
	size = journal_size(j);
	expect_records_then_zeros(fx->file, size);
	/* the next records go right after the last one, into the zeros */
	append_ok(j, rec_new(4, 10), 0);
	append_ok(j, rec_new(5, 10), 1);
	assert_int_equal(file_size(fx->file), grown);
	expect_records_then_zeros(fx->file, journal_size(j));
	journal_close(j);
	expect_ns(fx->dir, ns, 6);
	json_decref(got);
	dbuf_free(&why);
}

/* Replay j's file after writing len bytes of img and zeros zero bytes;
 * the records it hands back. */
static size_t replay_image(struct fx *fx, const char *img, size_t len,
			   size_t zeros, struct dbuf *why)
{
	char *buf = calloc(1, len + zeros + 1);
	struct journal *j;
	json_t *got = json_array();
	size_t n;

	assert_non_null(buf);
	memcpy(buf, img, len);
	write_file(fx->file, buf, len + zeros);
	free(buf);
	dbuf_reset(why);
	j = open_ok(fx->dir);
	assert_int_equal(journal_replay(j, collect, got, why), 0);
	n = json_array_size(got);
	json_decref(got);
	/* what replay left is what the tests look at, before close cuts
	 * a zero tail */
	fx->left = file_size(fx->file);
	fx->end = journal_size(j);
	journal_close(j);
	return n;
}

/* A crash in the middle of an append into the zeroed space leaves part of
 * a frame and then zeros: torn, and cut like a torn frame at the end of
 * the file.  Whole frames followed by zeros are a clean end. */
static void test_torn_into_zeros(void **state)
{
	struct fx *fx = *state;
	const int ns[] = { 0, 1, 2, 3, 4 };
	struct journal *j;
	uint64_t last, total;
	struct dbuf why;
	size_t n, gap;
	char *img = five_records_image(fx, &last, &total), *buf;

	dbuf_init(&why, DBUF_CAP_SMALL);

	for (uint64_t cut = last; cut <= total; cut++) {
		n = replay_image(fx, img, (size_t)cut, 8192, &why);
		if (cut == last || cut == total) {
			assert_int_equal(n, cut == total ? 5 : 4);
			assert_int_equal(dbuf_len(&why), 0);
			assert_int_equal(fx->end, cut);
			assert_int_equal(fx->left, (off_t)cut + 8192);
		} else {
			assert_int_equal(n, 4);
			assert_non_null(strstr(dbuf_str(&why), "torn"));
			assert_int_equal(fx->end, last);
			assert_int_equal(fx->left, (off_t)last);
		}
	}
	/* a frame beyond a run of zeros is not after the records: cut */
	gap = 16;
	buf = calloc(1, total + gap);
	assert_non_null(buf);
	memcpy(buf, img, last);
	memcpy(buf + last + gap, img + last, total - last);
	n = replay_image(fx, buf, total + gap, 0, &why);
	assert_int_equal(n, 4);
	assert_non_null(strstr(dbuf_str(&why), "torn"));
	assert_int_equal(fx->left, (off_t)last);
	free(buf);

	/* after a clean zero tail, appends follow the last record */
	n = replay_image(fx, img, (size_t)last, 4096, &why);
	assert_int_equal(n, 4);
	j = open_ok(fx->dir);
	json_decref(replay_all(j, NULL));
	append_ok(j, rec_new(4, 5), 0);
	journal_close(j);
	expect_ns(fx->dir, ns, 5);
	free(img);
	dbuf_free(&why);
}

/* ---- group commit ----------------------------------------------------- */

#define THREADS 8
#define PER_THREAD 200

/* A slower disk, so that appenders pile up behind each sync. */
static int slow_sync(int fd)
{
	usleep(300);
	return fdatasync(fd);
}

struct worker {
	struct journal *j;
	int t;
	int failures;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < PER_THREAD; i++) {
		json_t *r = json_pack("{s:i, s:i, s:i}", "n", w->t * PER_THREAD + i,
				      "t", w->t, "i", i);

		if (!r || journal_append(w->j, r, NULL))
			w->failures++;
		json_decref(r);
	}
	return NULL;
}

static void test_group_commit(void **state)
{
	struct fx *fx = *state;
	struct journal *j = open_ok(fx->dir);
	struct worker w[THREADS];
	pthread_t th[THREADS];
	int next[THREADS] = { 0 };
	uint64_t syncs;
	json_t *got;
	size_t i;

	journal_test_set_sync(j, slow_sync);
	for (int t = 0; t < THREADS; t++) {
		w[t] = (struct worker){ j, t, 0 };
		assert_int_equal(pthread_create(&th[t], NULL, worker_main, &w[t]), 0);
	}
	for (int t = 0; t < THREADS; t++) {
		pthread_join(th[t], NULL);
		assert_int_equal(w[t].failures, 0);
	}
	syncs = journal_test_syncs(j);
	print_message("group commit: %d appends, %llu syncs\n",
		      THREADS * PER_THREAD, (unsigned long long)syncs);
	assert_true(syncs > 0);
	assert_true(syncs < THREADS * PER_THREAD);
	journal_close(j);

	j = open_ok(fx->dir);
	got = replay_all(j, NULL);
	assert_int_equal(json_array_size(got), THREADS * PER_THREAD);
	for (i = 0; i < json_array_size(got); i++) {
		json_t *r = json_array_get(got, i);
		int t = (int)json_integer_value(json_object_get(r, "t"));

		assert_true(t >= 0 && t < THREADS);
		/* each thread's records in its own order */
		assert_int_equal(json_integer_value(json_object_get(r, "i")), next[t]);
		next[t]++;
	}
	json_decref(got);
	journal_close(j);
}

/* ---- failures --------------------------------------------------------- */

static int failing_sync(int fd)
{
	(void)fd;
	errno = EIO;
	return -1;
}

static void test_sync_failure_sticks_until_rewrite(void **state)
{
	struct fx *fx = *state;
	const int ns[] = { 0, 5 };
	struct journal *j = open_ok(fx->dir);
	json_t *r, *live;

	append_ok(j, rec_new(0, 1), 0);
	journal_test_set_sync(j, failing_sync);
	r = rec_new(1, 1);
	assert_int_equal(journal_append(j, r, NULL), -EIO);
	json_decref(r);
	/* even with a healthy disk again, the lost pages are not trusted */
	journal_test_set_sync(j, NULL);
	r = rec_new(2, 1);
	assert_int_equal(journal_append(j, r, NULL), -EIO);
	assert_int_equal(journal_append_lazy(j, r, NULL), -EIO);
	json_decref(r);
	live = json_pack("[{s:i}]", "n", 0);
	assert_int_equal(journal_rewrite(j, live, NULL), 0);
	json_decref(live);
	append_ok(j, rec_new(5, 1), 0);
	journal_close(j);
	expect_ns(fx->dir, ns, 2);
}

/* A write that fails halfway (here: past RLIMIT_FSIZE, in a child so the
 * limit stays there) leaves no partial frame for later appends to follow. */
static void test_failed_write_is_taken_back(void **state)
{
	struct fx *fx = *state;
	const int ns[] = { 0, 2 };
	struct journal *j = open_ok(fx->dir);
	pid_t pid;

	append_ok(j, rec_new(0, 10), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit rl;
		struct stat st;
		uint64_t before = journal_size(j);
		json_t *big = rec_new(1, 4000), *small = rec_new(2, 0);
		int code = 0;

		signal(SIGXFSZ, SIG_IGN);
		rl.rlim_cur = rl.rlim_max = before + 200;
		if (setrlimit(RLIMIT_FSIZE, &rl))
			code = 10;
		else if (journal_append(j, big, NULL) != -EFBIG)
			code = 11;
		else if (journal_size(j) != before || stat(fx->file, &st) ||
			 st.st_size != (off_t)before)
			code = 12;
		else if (journal_append(j, small, NULL))
			code = 13;
		json_decref(big);
		json_decref(small);
		journal_close(j);
		_exit(code);
	}
	child_ok(pid);
	journal_close(j);
	expect_ns(fx->dir, ns, 2);
}

static void test_huge_and_bad_records(void **state)
{
	struct fx *fx = *state;
	const int ns[] = { 0 };
	struct journal *j = open_ok(fx->dir);
	size_t n = 3u * 1024 * 1024;
	char *s = malloc(n + 1);
	struct dbuf why;
	json_t *r;

	assert_non_null(s);
	memset(s, 'x', n);
	s[n] = '\0';
	dbuf_init(&why, DBUF_CAP_SMALL);
	append_ok(j, rec_new(0, 1), 0);
	r = json_pack("{s:s}", "big", s);
	assert_non_null(r);
	assert_int_equal(journal_append(j, r, &why), -EFBIG);
	assert_non_null(strstr(dbuf_str(&why), "larger"));
	assert_int_equal(journal_append_lazy(j, r, NULL), -EFBIG);
	json_decref(r);
	r = json_pack("[i]", 1);
	assert_int_equal(journal_append(j, r, NULL), -EINVAL);
	json_decref(r);
	expect_records_then_zeros(fx->file, journal_size(j));
	journal_close(j);
	expect_ns(fx->dir, ns, 1);
	free(s);
	dbuf_free(&why);
}

/* ---- the directory ---------------------------------------------------- */

static void test_permissions(void **state)
{
	struct fx *fx = *state;
	struct journal *j;
	struct stat st;
	char path[200];
	mode_t old = umask(0);

	/* an existing directory of ours is made private */
	assert_int_equal(chmod(fx->base, 0755), 0);
	snprintf(path, sizeof(path), "%s/a", fx->base);
	assert_int_equal(mkdir(path, 0777), 0);
	snprintf(path, sizeof(path), "%s/a/b", fx->base);
	assert_int_equal(mkdir(path, 0755), 0);
	j = open_ok(fx->base);
	journal_close(j);
	assert_int_equal(stat(fx->base, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);

	j = open_ok(fx->dir);
	umask(old);
	assert_int_equal(stat(fx->dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(stat(fx->file, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	snprintf(path, sizeof(path), "%s/lock", fx->dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	journal_close(j);

	/* files that drifted are put back */
	assert_int_equal(chmod(fx->file, 0644), 0);
	assert_int_equal(chmod(fx->dir, 0755), 0);
	j = open_ok(fx->dir);
	assert_int_equal(stat(fx->dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(stat(fx->file, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	journal_close(j);

	/* not a directory */
	snprintf(path, sizeof(path), "%s/journal", fx->dir);
	{
		struct journal *j2 = NULL;

		assert_int_equal(journal_open(&j2, path, NULL), -ENOTDIR);
		assert_null(j2);
	}
}

static void test_second_open_is_busy(void **state)
{
	struct fx *fx = *state;
	struct journal *j = open_ok(fx->dir), *j2 = NULL;
	struct dbuf why;
	pid_t pid;

	dbuf_init(&why, DBUF_CAP_SMALL);
	assert_int_equal(journal_open(&j2, fx->dir, &why), -EBUSY);
	assert_null(j2);
	assert_non_null(strstr(dbuf_str(&why), "in use"));

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct journal *j3 = NULL;
		int rc = journal_open(&j3, fx->dir, NULL);

		/* Closing our copy of the parent's descriptors does not
		 * drop its flock (that goes with the last one). */
		journal_close(j);
		dbuf_free(&why);
		_exit(rc == -EBUSY && !j3 ? 0 : 1);
	}
	child_ok(pid);

	journal_close(j);
	j = open_ok(fx->dir);
	journal_close(j);
	dbuf_free(&why);
}

/* ---- rewrite ---------------------------------------------------------- */

static void test_rewrite(void **state)
{
	struct fx *fx = *state;
	const int keep[] = { 2, 5, 7 }, after[] = { 2, 5, 7, 20, 21 };
	struct journal *j = open_ok(fx->dir);
	json_t *live = json_array(), *bad;
	char path[200];
	uint64_t size;
	size_t len;
	char *img;

	for (int i = 0; i < 10; i++) {
		json_t *r = rec_new(i, (size_t)i * 10);

		if (i == 2 || i == 5 || i == 7)
			json_array_append(live, r);
		append_ok(j, r, i % 2);
	}
	assert_int_equal(journal_rewrite(j, live, NULL), 0);
	size = journal_size(j);
	assert_int_equal(size, (uint64_t)file_size(fx->file));
	snprintf(path, sizeof(path), "%s/journal.new", fx->dir);
	assert_int_equal(access(path, F_OK), -1);
	/* appends after a rewrite land in the new file */
	append_ok(j, rec_new(20, 1), 0);
	append_ok(j, rec_new(21, 1), 1);
	assert_true(journal_size(j) > size);
	journal_close(j);
	expect_ns(fx->dir, after, 5);

	/* a bad record in live fails the rewrite and keeps the old file */
	img = read_file_all(fx->file, &len);
	j = open_ok(fx->dir);
	json_decref(replay_all(j, NULL));
	bad = json_pack("[{s:i}, s]", "n", 1, "not an object");
	assert_int_equal(journal_rewrite(j, bad, NULL), -EINVAL);
	assert_int_equal(access(path, F_OK), -1);
	{
		size_t len2;
		char *img2 = read_file_all(fx->file, &len2);

		assert_int_equal(len2, len);
		assert_memory_equal(img2, img, len);
		free(img2);
	}
	json_decref(bad);
	/* the journal still takes appends after the failed rewrite */
	journal_close(j);
	expect_ns(fx->dir, after, 5);

	/* rewrite with the subset, then empty */
	j = open_ok(fx->dir);
	json_decref(replay_all(j, NULL));
	assert_int_equal(journal_rewrite(j, live, NULL), 0);
	journal_close(j);
	expect_ns(fx->dir, keep, 3);
	j = open_ok(fx->dir);
	json_decref(replay_all(j, NULL));
	bad = json_array();
	assert_int_equal(journal_rewrite(j, bad, NULL), 0);
	json_decref(bad);
	assert_int_equal(journal_size(j), 0);
	assert_int_equal(file_size(fx->file), 0);
	journal_close(j);
	expect_ns(fx->dir, keep, 0);
	json_decref(live);
	free(img);
}

/* A rewrite while appenders run: every append either made it into the new
 * file (after the rewrite) or was before it and left out on purpose; the
 * file must replay cleanly either way. */
struct rw_worker {
	struct journal *j;
	int t, failures;
};

static void *rw_worker_main(void *arg)
{
	struct rw_worker *w = arg;

	for (int i = 0; i < 50; i++) {
		json_t *r = json_pack("{s:i, s:i}", "t", w->t, "i", i);

		if (!r || journal_append(w->j, r, NULL))
			w->failures++;
		json_decref(r);
	}
	return NULL;
}

static void test_rewrite_with_appenders(void **state)
{
	struct fx *fx = *state;
	struct journal *j = open_ok(fx->dir);
	struct rw_worker w[4];
	pthread_t th[4];
	int last[4] = { -1, -1, -1, -1 };
	json_t *live = json_pack("[{s:i, s:i}]", "t", 9, "i", 0), *got;

	for (int t = 0; t < 4; t++) {
		w[t] = (struct rw_worker){ j, t, 0 };
		assert_int_equal(pthread_create(&th[t], NULL, rw_worker_main, &w[t]), 0);
	}
	for (int k = 0; k < 5; k++)
		assert_int_equal(journal_rewrite(j, live, NULL), 0);
	for (int t = 0; t < 4; t++) {
		pthread_join(th[t], NULL);
		assert_int_equal(w[t].failures, 0);
	}
	journal_close(j);
	j = open_ok(fx->dir);
	got = replay_all(j, NULL);
	assert_true(json_array_size(got) >= 1);
	assert_true(json_equal(json_array_get(got, 0), json_array_get(live, 0)));
	for (size_t i = 1; i < json_array_size(got); i++) {
		json_t *r = json_array_get(got, i);
		int t = (int)json_integer_value(json_object_get(r, "t"));
		int n = (int)json_integer_value(json_object_get(r, "i"));

		assert_true(t >= 0 && t < 4);
		assert_true(n > last[t]);
		last[t] = n;
	}
	/* the last record of each thread came after the last rewrite */
	for (int t = 0; t < 4; t++)
		assert_true(last[t] == -1 || last[t] == 49);
	json_decref(got);
	json_decref(live);
	journal_close(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_and_order_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prealloc_zero_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_into_zeros, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_failure_sticks_until_rewrite, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_write_is_taken_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_huge_and_bad_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_permissions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_open_is_busy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rewrite, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rewrite_with_appenders, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
