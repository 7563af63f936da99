/* wbc: the write-back queue.  A save, delete or move is written to the
 * journal (synced) and queued; close() returns then.  Workers send the
 * queue within the write-back delay: creates in BatchWriteItem requests of
 * 25, edits and deletes as conditional PutItem/DeleteItem, moves as one
 * TransactWriteItems, several requests in flight, fewer while DynamoDB
 * throttles.  docs/write-back.md is the contract.
 *
 * Every op is conditional on what the writer started from (its base), so
 * that a change made elsewhere is never silently overwritten.  Creates are
 * the exception that keeps cp fast: they are checked with BatchGetItem
 * just before their batch is sent, unless strict_create sends each as a
 * conditional PutItem.
 *
 * Locking: everything here is under c->lock (the cache's one lock), never
 * held across a request or a journal write. */
#include "cache/cache_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/ddbjson.h"
#include "backend/ddbnum.h"
#include "cache/journal.h"

#define WBC_BATCH 25
#define WBC_MAX_WORKERS 16
#define WBC_BACKOFF_MAX_MS 30000
#define WBC_REWRITE_BYTES (64u << 20)

enum wop_kind { WOP_PUT, WOP_DEL, WOP_MOVE };

enum wop_cond {
	COND_CREATE, /* base absent: checked with BatchGetItem, then batched */
	COND_IMAGE,  /* the item equals base */
	COND_EXISTS, /* base unknown: the item exists */
};

struct wop {
	struct wop *next, *prev;   /* the queue, oldest first; or NULL */
	enum wop_kind kind;
	enum wop_cond cond;
	char *table;
	json_t *key;
	struct dbuf id;
	json_t *item;     /* PUT, MOVE: the image to write */
	json_t *base;     /* COND_IMAGE: what the writer started from */
	json_t *accept;   /* images folded over: the item may already be one */
	char *table2;     /* MOVE: the destination */
	json_t *key2;
	struct dbuf id2;
	json_t *base2;    /* MOVE: destination's base, NULL: absent */
	struct cache_schema s, s2;
	json_t *seqs;     /* journal seqs this op stands for */
	uint64_t seq;     /* newest of them */
	uint64_t at_ms;   /* queued */
	uint64_t due_ms;  /* not before (backoff) */
	unsigned attempts;
	int inflight;
	int deps;                  /* earlier ops on its keys not done */
	struct wop *dependents[2]; /* later ops on its keys */
};

/* key id -> the newest op on that key */
struct wkey {
	struct wop *last;
};

struct wbc {
	struct cache *c;
	struct journal *j;
	char *dir;
	unsigned delay_ms;
	char *version_attr;
	int strict_create; /* creates go alone, as conditional PutItem */
	struct cmap *keys;  /* id -> struct wkey */
	struct wop *head, *tail;
	size_t queued, inflight, ops;
	uint64_t seq;
	int limit, max_workers, active;
	int urgent;         /* fsync or drain waiting: send now */
	/* Earliest time a sleeping worker wakes by itself (UINT64_MAX: none
	 * known), and how many sleep.  A new op wakes one worker only when
	 * it is due sooner, so a save costs no wake-up of the whole pool. */
	uint64_t wake_ms;
	int sleepers;
	int quit;           /* workers leave */
	int submitting;     /* journaled, not yet queued */
	json_t *done;       /* seqs of finished ops, for the journal */
	pthread_cond_t work, done_cond;
	pthread_t workers[WBC_MAX_WORKERS];
	int nworkers;
	uint64_t sent, batches, conflicts, failures, coalesced, throttled;
};

static void wop_free(struct wop *o)
{
	if (!o)
		return;
	free(o->table);
	free(o->table2);
	json_decref(o->key);
	json_decref(o->key2);
	json_decref(o->item);
	json_decref(o->base);
	json_decref(o->base2);
	json_decref(o->accept);
	json_decref(o->seqs);
	dbuf_free(&o->id);
	dbuf_free(&o->id2);
	free(o);
}

static void wkey_free(void *p)
{
	free(p);
}

/* ---- comparing items as DynamoDB does ----------------------------------- */

static int value_same(const json_t *a, const json_t *b);

static int set_same(const json_t *a, const json_t *b, int num)
{
	size_t i, j, n = json_array_size(a);
	const char *x, *y;
	int found;

	if (n != json_array_size(b))
		return 0;
	for (i = 0; i < n; i++) {
		x = json_string_value(json_array_get(a, i));
		found = 0;
		for (j = 0; x && j < n && !found; j++) {
			y = json_string_value(json_array_get(b, j));
			if (!y)
				return 0;
			found = num ? !ddbnum_cmp(x, strlen(x), y, strlen(y))
				    : !strcmp(x, y);
		}
		if (!found)
			return 0;
	}
	return 1;
}

static int map_same(const json_t *a, const json_t *b)
{
	const char *k;
	json_t *v;

	if (json_object_size(a) != json_object_size(b))
		return 0;
	json_object_foreach((json_t *)a, k, v)
		if (!value_same(v, json_object_get(b, k)))
			return 0;
	return 1;
}

/* Typed values: numbers compared by value, sets in any order. */
static int value_same(const json_t *a, const json_t *b)
{
	const char *t;
	json_t *va, *vb;
	size_t i;

	if (!json_is_object(a) || !json_is_object(b) ||
	    json_object_size(a) != 1 || json_object_size(b) != 1)
		return 0;
	t = json_object_iter_key(json_object_iter((json_t *)a));
	va = json_object_iter_value(json_object_iter((json_t *)a));
	vb = json_object_get(b, t);
	if (!vb)
		return 0;
	if (!strcmp(t, "N"))
		return json_is_string(va) && json_is_string(vb) &&
		       !ddbnum_cmp(json_string_value(va), json_string_length(va),
				   json_string_value(vb), json_string_length(vb));
	if (!strcmp(t, "SS") || !strcmp(t, "BS"))
		return set_same(va, vb, 0);
	if (!strcmp(t, "NS"))
		return set_same(va, vb, 1);
	if (!strcmp(t, "M"))
		return map_same(va, vb);
	if (!strcmp(t, "L")) {
		if (json_array_size(va) != json_array_size(vb))
			return 0;
		for (i = 0; i < json_array_size(va); i++)
			if (!value_same(json_array_get(va, i),
					json_array_get(vb, i)))
				return 0;
		return 1;
	}
	return json_equal(va, vb);
}

int cache_item_same(const json_t *a, const json_t *b)
{
	if (!a || !b)
		return !a && !b;
	return map_same(a, b);
}

/* ---- the journal's records --------------------------------------------- */

static const char *kind_name(enum wop_kind k)
{
	return k == WOP_PUT ? "put" : k == WOP_DEL ? "del" : "mv";
}

static json_t *record_of(const struct wop *o)
{
	json_t *r = json_pack("{s:I, s:s, s:i, s:s, s:O}", "s",
			      (json_int_t)o->seq, "o", kind_name(o->kind),
			      "c", (int)o->cond, "t", o->table, "k", o->key);

	if (!r)
		return NULL;
	if ((o->item && json_object_set(r, "i", o->item)) ||
	    (o->base && json_object_set(r, "b", o->base)) ||
	    (o->table2 && json_object_set_new(r, "t2",
					      json_string(o->table2))) ||
	    (o->key2 && json_object_set(r, "k2", o->key2)) ||
	    (o->base2 && json_object_set(r, "b2", o->base2))) {
		json_decref(r);
		return NULL;
	}
	return r;
}

/* ---- the queue (under c->lock) ----------------------------------------- */

static void queue_push(struct wbc *w, struct wop *o, int front)
{
	o->prev = o->next = NULL;
	if (front) {
		o->next = w->head;
		if (w->head)
			w->head->prev = o;
		else
			w->tail = o;
		w->head = o;
	} else {
		o->prev = w->tail;
		if (w->tail)
			w->tail->next = o;
		else
			w->head = o;
		w->tail = o;
	}
	w->queued++;
}

static void queue_unlink(struct wbc *w, struct wop *o)
{
	if (o->prev)
		o->prev->next = o->next;
	else
		w->head = o->next;
	if (o->next)
		o->next->prev = o->prev;
	else
		w->tail = o->prev;
	o->next = o->prev = NULL;
	w->queued--;
}

static int is_create(const struct wop *o)
{
	return o->kind == WOP_PUT && o->cond == COND_CREATE;
}

/* Sent in a checked BatchWriteItem with other creates of its table. */
static int batched(const struct wbc *w, const struct wop *o)
{
	return is_create(o) && !w->strict_create;
}

/* Work is due at due_ms (0: now).  Wake one sleeping worker if none would
 * look by then; it re-arms its timer from the queue.  With no sleeper,
 * every worker is yet to go through take(), and sees the work there. */
static void kick(struct wbc *w, uint64_t due_ms)
{
	if (due_ms >= w->wake_ms || !w->sleepers)
		return;
	w->wake_ms = due_ms;
	pthread_cond_signal(&w->work);
}

static struct wkey *wkey_get(struct wbc *w, const struct dbuf *id, int create)
{
	struct wkey *k = cmap_get(w->keys, id->ptr, dbuf_len(id));

	if (k || !create)
		return k;
	k = calloc(1, sizeof(*k));
	if (k && cmap_put(w->keys, id->ptr, dbuf_len(id), k)) {
		free(k);
		k = NULL;
	}
	return k;
}

static void pending_add(struct cache *c, const struct dbuf *id,
			const json_t *key, int delta)
{
	/* pending counts the ops not yet in DynamoDB */
	struct citem *r = cache_citem_get(c, id, key, 1);

	if (!r)
		return;
	if (delta < 0 && r->pending < (unsigned)-delta)
		r->pending = 0;
	else
		r->pending += delta;
	/* The last write reached DynamoDB: a listing that started while it
	 * was pending may have scanned past the key before it landed, so
	 * for that listing the record counts as written after its start
	 * (merged, never taken as deleted). */
	if (delta < 0 && !r->pending)
		r->seq = ++c->seq;
}

/* Link o behind the newest op on the key id; 0 or -ENOMEM. */
static int link_key(struct wbc *w, struct wop *o, const struct dbuf *id)
{
	struct wkey *k = wkey_get(w, id, 1);
	int i;

	if (!k)
		return -ENOMEM;
	if (k->last && k->last != o) {
		for (i = 0; i < 2; i++) {
			if (!k->last->dependents[i]) {
				k->last->dependents[i] = o;
				o->deps++;
				break;
			}
		}
	}
	k->last = o;
	return 0;
}

static void unlink_key(struct wbc *w, struct wop *o, const struct dbuf *id)
{
	struct wkey *k = cmap_get(w->keys, id->ptr, dbuf_len(id));

	if (k && k->last == o) {
		cmap_take(w->keys, id->ptr, dbuf_len(id));
		free(k);
	}
}

/* Fold a newer single-key op into the queued one on the same key. */
static int fold(struct wbc *w, struct wop *q, struct wop *o)
{
	if (q->item && !q->accept)
		q->accept = json_array();
	if (q->item && (!q->accept || json_array_append(q->accept, q->item)))
		return -ENOMEM;
	json_decref(q->item);
	q->item = json_incref(o->item);
	q->kind = o->kind;
	if (json_array_extend(q->seqs, o->seqs))
		return -ENOMEM;
	q->seq = o->seq;
	w->coalesced++;
	return 0;
}

/* Queue o (taken), after journaling.  A single-key op folds into a queued
 * op on its key that is not in flight. */
static int enqueue(struct wbc *w, struct wop *o)
{
	struct cache *c = w->c;
	struct wkey *k;
	int rc = 0;

	if (o->kind != WOP_MOVE) {
		k = wkey_get(w, &o->id, 0);
		if (k && k->last && !k->last->inflight &&
		    k->last->kind != WOP_MOVE && k->last->seq < o->seq) {
			rc = fold(w, k->last, o);
			wop_free(o);
			return rc;
		}
	}
	rc = link_key(w, o, &o->id);
	if (!rc && o->kind == WOP_MOVE)
		rc = link_key(w, o, &o->id2);
	if (rc) {
		wop_free(o);
		return rc;
	}
	pending_add(c, &o->id, o->key, 1);
	if (o->kind == WOP_MOVE)
		pending_add(c, &o->id2, o->key2, 1);
	o->at_ms = cache_now_ms();
	queue_push(w, o, 0);
	w->ops++;
	kick(w, w->queued >= WBC_BATCH ? 0 : o->at_ms + w->delay_ms);
	return 0;
}

/* ---- building ops ------------------------------------------------------- */

static struct wop *wop_new(enum wop_kind kind, const char *table,
			   const struct cache_schema *s, const json_t *key)
{
	struct wop *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	dbuf_init(&o->id, DBUF_CAP_SMALL);
	dbuf_init(&o->id2, DBUF_CAP_SMALL);
	o->kind = kind;
	o->s = *s;
	o->table = strdup(table);
	o->key = json_deep_copy(key);
	o->seqs = json_array();
	if (!o->table || !o->key || !o->seqs ||
	    cache_item_id(table, s, key, &o->id)) {
		wop_free(o);
		return NULL;
	}
	return o;
}

/* version_attr: the new image carries base's version + 1. */
static int version_bump(struct wbc *w, json_t *item, const json_t *base)
{
	const json_t *v;
	long long n = 0;
	char buf[32];

	if (!w->version_attr)
		return 0;
	v = base ? json_object_get(json_object_get(base, w->version_attr),
				   "N")
		 : NULL;
	if (v && json_is_string(v))
		n = strtoll(json_string_value(v), NULL, 10);
	snprintf(buf, sizeof(buf), "%lld", n + 1);
	return json_object_set_new(item, w->version_attr,
				   json_pack("{s:s}", "N", buf))
		       ? -ENOMEM : 0;
}

/* Journal o, then queue it.  The seq is taken under the lock and the
 * queue orders by it, so the journal and the queue agree whatever order
 * concurrent savers reach the disk in. */
static int submit(struct wbc *w, struct wop *o, struct dbuf *why)
{
	struct cache *c = w->c;
	json_t *rec;
	int rc;

	pthread_mutex_lock(&c->lock);
	o->seq = ++w->seq;
	w->submitting++;
	pthread_mutex_unlock(&c->lock);
	rc = json_array_append_new(o->seqs, json_integer((json_int_t)o->seq))
		     ? -ENOMEM : 0;
	rec = rc ? NULL : record_of(o);
	if (!rc && !rec)
		rc = -ENOMEM;
	if (!rc)
		rc = journal_append(w->j, rec, why);
	json_decref(rec);
	pthread_mutex_lock(&c->lock);
	w->submitting--;
	if (rc)
		wop_free(o);
	else
		rc = enqueue(w, o);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int wbc_put(struct cache *c, const char *table, const struct cache_schema *s,
	    const json_t *key, json_t *item, const json_t *base, int base_known,
	    struct dbuf *why)
{
	struct wbc *w = c->wbc;
	struct wop *o = wop_new(WOP_PUT, table, s, key);
	int rc;

	if (!o)
		return -ENOMEM;
	rc = version_bump(w, item, base);
	if (rc) {
		wop_free(o);
		return rc;
	}
	o->item = json_incref(item);
	o->cond = base ? COND_IMAGE : base_known ? COND_CREATE : COND_EXISTS;
	o->base = json_incref((json_t *)base);
	return submit(w, o, why);
}

int wbc_delete(struct cache *c, const char *table,
	       const struct cache_schema *s, const json_t *key,
	       const json_t *base, struct dbuf *why)
{
	struct wop *o = wop_new(WOP_DEL, table, s, key);

	if (!o)
		return -ENOMEM;
	o->cond = base ? COND_IMAGE : COND_EXISTS;
	o->base = json_incref((json_t *)base);
	return submit(c->wbc, o, why);
}

int wbc_move(struct cache *c, const char *src_table,
	     const struct cache_schema *ss, const json_t *src_key,
	     const json_t *src_base, const char *dst_table,
	     const struct cache_schema *ds, const json_t *dst_key,
	     json_t *moved, const json_t *dst_base, struct dbuf *why)
{
	struct wop *o = wop_new(WOP_MOVE, src_table, ss, src_key);

	if (!o)
		return -ENOMEM;
	o->s2 = *ds;
	o->cond = src_base ? COND_IMAGE : COND_EXISTS;
	o->base = json_incref((json_t *)src_base);
	o->item = json_incref(moved);
	o->table2 = strdup(dst_table);
	o->key2 = json_deep_copy(dst_key);
	o->base2 = json_incref((json_t *)dst_base);
	if (!o->table2 || !o->key2 ||
	    cache_item_id(dst_table, ds, dst_key, &o->id2)) {
		wop_free(o);
		return -ENOMEM;
	}
	return submit(c->wbc, o, why);
}

/* ---- sending ------------------------------------------------------------- */

static void logf_(struct cache *c, int error, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void logf_(struct cache *c, int error, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (!c->log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	c->log(c->log_ctx, error, line);
}

/* The condition "the item equals base": one equality per attribute (and
 * the key exists), within DynamoDB's 4 KB expression limit; an item with
 * more attributes than fit is checked on those that do. */
static int cond_image(const json_t *base,
		      const struct cache_schema *s, const char *vattr,
		      struct dbuf *expr, json_t **names, json_t **values)
{
	const char *k;
	json_t *v;
	char nm[24], vl[24];
	int i = 0;

	*names = json_object();
	*values = json_object();
	if (!*names || !*values)
		return -ENOMEM;
	if (json_object_set_new(*names, "#k", json_string(s->pk.name)) ||
	    dbuf_adds(expr, "attribute_exists(#k)"))
		return -ENOMEM;
	if (vattr) {
		v = json_object_get(base, vattr);
		if (json_object_set_new(*names, "#v", json_string(vattr)))
			return -ENOMEM;
		if (v)
			return dbuf_adds(expr, " AND #v = :v") ||
				       json_object_set(*values, ":v", v)
				       ? -ENOMEM : 0;
		return dbuf_adds(expr, " AND attribute_not_exists(#v)");
	}
	json_object_foreach((json_t *)base, k, v) {
		if (dbuf_len(expr) > 3900)
			break;
		snprintf(nm, sizeof(nm), "#a%d", i);
		snprintf(vl, sizeof(vl), ":a%d", i);
		i++;
		if (json_object_set_new(*names, nm, json_string(k)) ||
		    json_object_set(*values, vl, v) ||
		    dbuf_addf(expr, " AND %s = %s", nm, vl))
			return -ENOMEM;
	}
	return 0;
}

/* A condition for ops on o's source key, as a ddb_cond. */
static int cond_build(struct wbc *w, const json_t *base,
		      enum wop_cond cond, const struct cache_schema *s,
		      struct dbuf *expr, struct ddb_cond *out)
{
	int rc = 0;

	out->names = out->values = NULL;
	if (cond == COND_IMAGE) {
		rc = cond_image(base, s, w->version_attr, expr, &out->names,
				&out->values);
	} else if (cond == COND_EXISTS) {
		out->names = json_pack("{s:s}", "#k", s->pk.name);
		rc = out->names ? dbuf_adds(expr, "attribute_exists(#k)")
				: -ENOMEM;
	} else {
		out->names = json_pack("{s:s}", "#k", s->pk.name);
		rc = out->names ? dbuf_adds(expr, "attribute_not_exists(#k)")
				: -ENOMEM;
	}
	if (out->values && !json_object_size(out->values)) {
		json_decref(out->values);
		out->values = NULL;
	}
	out->expr = dbuf_str(expr);
	return rc;
}

static void cond_free(struct ddb_cond *cd)
{
	json_decref(cd->names);
	json_decref(cd->values);
}

/* The local text of a lost op, kept where the log says. */
static void keep_local(struct wbc *w, const struct wop *o, const char *what)
{
	struct cache *c = w->c;
	struct dbuf path, text;
	const json_t *img = o->item;
	int fd = -1;

	dbuf_init(&path, DBUF_CAP_SMALL);
	dbuf_init(&text, DBUF_CAP_BODY);
	if (!img) {
		char *k = json_dumps(o->key, JSON_COMPACT);

		logf_(c, 1, "%s: table %s: the delete of %s was not applied",
		      what, o->table, k ? k : "?");
		free(k);
		goto out;
	}
	if (ddbjson_render(img, c->fmt, &text) ||
	    dbuf_addf(&path, "%s/conflicts", w->dir))
		goto out;
	mkdir(dbuf_str(&path), 0700);
	if (dbuf_addf(&path, "/%s.%" PRIu64 ".%ld.json", o->table2 ? o->table2
				   : o->table, o->seq, (long)time(NULL)))
		goto out;
	fd = open(dbuf_str(&path), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		  0600);
	if (fd < 0 || write(fd, text.ptr, dbuf_len(&text)) < 0)
		goto out;
	fsync(fd);
	{
		char *k = json_dumps(o->key2 ? o->key2 : o->key, JSON_COMPACT);

		logf_(c, 1, "%s: table %s, key %s: your version is kept in %s",
		      what, o->table2 ? o->table2 : o->table, k ? k : "?",
		      dbuf_str(&path));
		free(k);
	}
out:
	if (fd >= 0)
		close(fd);
	dbuf_free(&path);
	dbuf_free(&text);
}

/* An op is over: its records learn the outcome, waiters wake. */
static void finish(struct wbc *w, struct wop *o, int rc)
{
	struct cache *c = w->c;
	struct citem *r;
	int i;

	pending_add(c, &o->id, o->key, -1);
	if (o->kind == WOP_MOVE)
		pending_add(c, &o->id2, o->key2, -1);
	if (rc) {
		r = cmap_get(c->items, o->id.ptr, dbuf_len(&o->id));
		if (o->kind == WOP_MOVE)
			r = cmap_get(c->items, o->id2.ptr, dbuf_len(&o->id2));
		if (r) {
			r->err = rc;
			r->err_told = 0;
			r->at_ms = 0; /* what DynamoDB has is read again */
			r->state = r->pending ? r->state : CI_UNKNOWN;
		}
		if (rc == -ESTALE)
			w->conflicts++;
		else
			w->failures++;
	} else {
		w->sent++;
	}
	for (i = 0; i < 2; i++)
		if (o->dependents[i])
			o->dependents[i]->deps--;
	if (w->done)
		json_array_extend(w->done, o->seqs);
	unlink_key(w, o, &o->id);
	if (o->kind == WOP_MOVE)
		unlink_key(w, o, &o->id2);
	w->inflight--;
	w->ops--;
	/* The worker that ran o goes back to take() next, and wakes
	 * another when there is more than it can take: no wake-up here. */
	pthread_cond_broadcast(&w->done_cond);
}

static int transient(int rc)
{
	return rc == -EAGAIN || rc == -ETIMEDOUT || rc == -ECONNREFUSED ||
	       rc == -ECONNRESET || rc == -EHOSTUNREACH || rc == -EIO ||
	       rc == -EPROTO || rc == -ENOMEM || rc == -EBUSY;
}

/* Back in the queue, at its old place (the front), after a pause. */
static void retry_later(struct wbc *w, struct wop *o, int throttled)
{
	unsigned ms = 100u << (o->attempts < 8 ? o->attempts : 8);

	o->attempts++;
	if (ms > WBC_BACKOFF_MAX_MS)
		ms = WBC_BACKOFF_MAX_MS;
	o->due_ms = cache_now_ms() + ms;
	o->inflight = 0;
	w->inflight--;
	if (throttled) {
		w->throttled++;
		w->limit = w->limit > 1 ? w->limit / 2 : 1;
	}
	queue_push(w, o, 1);
	kick(w, o->due_ms);
}

/* After a failed condition: what DynamoDB holds decides.  0: the op is
 * done (it had landed: a replay, or a lost response); 1: send again with
 * the new base; -ESTALE: a conflict. */
static int resolve(struct wbc *w, struct wop *o, struct aws_err *err)
{
	json_t *cur = NULL;
	size_t i;
	int rc;

	rc = ddb_get_item(w->c->ddb, o->table, o->key, 1, &cur, err);
	if (rc && rc != -ENOENT)
		return rc;
	if (o->kind == WOP_DEL) {
		rc = cur ? -ESTALE : 0;
		goto out;
	}
	if (cache_item_same(cur, o->item)) {
		rc = 0;
		goto out;
	}
	rc = -ESTALE;
	for (i = 0; cur && i < json_array_size(o->accept); i++) {
		if (cache_item_same(cur, json_array_get(o->accept, i))) {
			/* An earlier save of ours landed: build on it. */
			json_decref(o->base);
			o->base = json_incref(cur);
			o->cond = COND_IMAGE;
			rc = 1;
			break;
		}
	}
out:
	json_decref(cur);
	return rc;
}

static int send_single(struct wbc *w, struct wop *o, struct aws_err *err)
{
	struct ddb_cond cd;
	struct dbuf expr;
	json_t *txn = NULL;
	int rc = 0;

	dbuf_init(&expr, DBUF_CAP_SMALL);
	memset(&cd, 0, sizeof(cd));
	if (o->kind == WOP_DEL && o->cond == COND_CREATE)
		goto out; /* created and removed before it was ever sent */
	rc = cond_build(w, o->base, o->cond, &o->s, &expr, &cd);
	if (rc)
		goto out;
	if (o->kind == WOP_PUT) {
		rc = ddb_put_item(w->c->ddb, o->table, o->item, &cd, err);
	} else if (o->kind == WOP_DEL) {
		rc = ddb_delete_item(w->c->ddb, o->table, o->key, &cd, err);
	} else {
		json_t *put = json_pack("{s:{s:s, s:O}}", "Put", "TableName",
					o->table2, "Item", o->item);
		json_t *del = json_pack("{s:{s:s, s:O, s:s, s:O}}", "Delete",
					"TableName", o->table, "Key", o->key,
					"ConditionExpression", cd.expr,
					"ExpressionAttributeNames", cd.names);

		txn = json_array();
		if (del && cd.values)
			json_object_set(json_object_get(del, "Delete"),
					"ExpressionAttributeValues", cd.values);
		if (put && o->base2 == NULL) {
			json_t *p = json_object_get(put, "Put");

			json_object_set_new(p, "ConditionExpression",
				json_string("attribute_not_exists(#k)"));
			json_object_set_new(p, "ExpressionAttributeNames",
				json_pack("{s:s}", "#k", o->s2.pk.name));
		}
		if (!txn || !put || !del || json_array_append_new(txn, put) ||
		    json_array_append_new(txn, del)) {
			json_decref(put);
			json_decref(del);
			rc = -ENOMEM;
			goto out;
		}
		rc = ddb_transact_write(w->c->ddb, txn, NULL, err);
	}
out:
	json_decref(txn);
	cond_free(&cd);
	dbuf_free(&expr);
	return rc;
}

/* One op: send, and on a failed condition look at DynamoDB. */
static void run_single(struct wbc *w, struct wop *o)
{
	struct cache *c = w->c;
	struct aws_err err;
	int rc, tries = 0;

again:
	awserr_clear(&err);
	rc = send_single(w, o, &err);
	if (rc == -ESTALE || (rc == -ECANCELED && o->kind == WOP_MOVE)) {
		if (o->kind == WOP_MOVE) {
			json_t *d = NULL;

			/* Landed before (a replay)?  Then the source is
			 * gone and the destination is ours. */
			rc = ddb_get_item(c->ddb, o->table2, o->key2, 1, &d,
					  &err);
			rc = (!rc && cache_item_same(d, o->item)) ? 0 : -ESTALE;
			json_decref(d);
		} else {
			rc = resolve(w, o, &err);
			if (rc == 1 && ++tries < 3)
				goto again;
			if (rc == 1)
				rc = -ESTALE;
		}
	}
	pthread_mutex_lock(&c->lock);
	if (rc && transient(rc)) {
		retry_later(w, o, rc == -EAGAIN);
		pthread_mutex_unlock(&c->lock);
		return;
	}
	if (!rc && w->limit < w->max_workers)
		w->limit++;
	pthread_mutex_unlock(&c->lock);
	if (rc == -ESTALE)
		keep_local(w, o, "conflict: changed elsewhere since read");
	else if (rc) {
		char desc[700];

		logf_(c, 1, "write-back to table %s failed: %s", o->table,
		      awserr_describe(&err, desc, sizeof(desc)));
		keep_local(w, o, "write not applied");
	}
	pthread_mutex_lock(&c->lock);
	finish(w, o, rc ? (rc == -ESTALE ? -ESTALE : -EIO) : 0);
	pthread_mutex_unlock(&c->lock);
	wop_free(o);
}

struct found {
	struct cmap *seen; /* id -> item */
	const char *table;
	struct cache_schema s;
	struct dbuf id;
};

static int found_item(void *ctx, json_t *item)
{
	struct found *f = ctx;
	json_t *k = json_object();
	int rc = -ENOMEM;

	if (!k)
		return rc;
	json_object_set(k, f->s.pk.name, json_object_get(item, f->s.pk.name));
	if (f->s.has_sk)
		json_object_set(k, f->s.sk.name,
				json_object_get(item, f->s.sk.name));
	dbuf_reset(&f->id);
	if (!cache_item_id(f->table, &f->s, k, &f->id))
		rc = cmap_put(f->seen, f->id.ptr, dbuf_len(&f->id),
			      json_incref(item));
	json_decref(k);
	return rc;
}

static void json_val_free(void *p)
{
	json_decref(p);
}

/* Creates of one table: checked absent (or already ours) with
 * BatchGetItem, then sent with BatchWriteItem. */
static void run_batch(struct wbc *w, struct wop **ops, size_t n)
{
	struct cache *c = w->c;
	struct found f;
	struct aws_err err;
	json_t *keys = json_array(), *reqs = json_array(), *ri = NULL;
	int verdict[WBC_BATCH];
	size_t i;
	int rc = -ENOMEM;

	memset(&f, 0, sizeof(f));
	dbuf_init(&f.id, DBUF_CAP_SMALL);
	f.table = ops[0]->table;
	f.s = ops[0]->s;
	awserr_clear(&err);
	if (!keys || !reqs || cmap_new(&f.seen, json_val_free))
		goto out;
	for (i = 0; i < n; i++) {
		verdict[i] = 0;
		if (json_array_append(keys, ops[i]->key))
			goto out;
	}
	rc = ddb_batch_get(c->ddb, f.table, keys, 1, found_item, &f, &err);
	if (rc)
		goto out;
	for (i = 0; i < n; i++) {
		json_t *cur = cmap_get(f.seen, ops[i]->id.ptr,
				       dbuf_len(&ops[i]->id));

		if (cur) {
			/* There already: ours (a replay) or a conflict. */
			verdict[i] = cache_item_same(cur, ops[i]->item) ? 1
								    : -ESTALE;
			continue;
		}
		if (json_array_append_new(reqs, json_pack("{s:{s:O}}",
				"PutRequest", "Item", ops[i]->item)))
			goto out;
	}
	rc = 0;
	if (json_array_size(reqs)) {
		ri = json_pack("{s:O}", f.table, reqs);
		rc = ri ? ddb_batch_write(c->ddb, ri, &err) : -ENOMEM;
	}
out:
	pthread_mutex_lock(&c->lock);
	if (rc && transient(rc)) {
		for (i = n; i-- > 0;)
			retry_later(w, ops[i], rc == -EAGAIN);
		pthread_mutex_unlock(&c->lock);
		goto done;
	}
	w->batches++;
	if (!rc && w->limit < w->max_workers)
		w->limit++;
	pthread_mutex_unlock(&c->lock);
	for (i = 0; i < n; i++) {
		int orc = rc ? -EIO : verdict[i] < 0 ? -ESTALE : 0;

		if (orc == -ESTALE)
			keep_local(w, ops[i],
				   "conflict: created elsewhere meanwhile");
		else if (orc)
			keep_local(w, ops[i], "write not applied");
		pthread_mutex_lock(&c->lock);
		finish(w, ops[i], orc);
		pthread_mutex_unlock(&c->lock);
		wop_free(ops[i]);
	}
done:
	cmap_free(f.seen);
	dbuf_free(&f.id);
	json_decref(keys);
	json_decref(reqs);
	json_decref(ri);
}

/* all: send whatever can go (a full batch is waiting, fsync, unmount). */
static int due(const struct wbc *w, const struct wop *o, uint64_t now,
	       int all)
{
	if (o->deps || o->inflight || now < o->due_ms)
		return 0;
	return all || now - o->at_ms >= w->delay_ms;
}

/* Whether o can join the batch of creates in ops[0..n). */
static int joins(const struct wbc *w, const struct wop *const *ops, size_t n,
		 const struct wop *o, uint64_t now)
{
	return n < WBC_BATCH && batched(w, ops[0]) && batched(w, o) &&
	       !o->deps && now >= o->due_ms && !strcmp(o->table, ops[0]->table);
}

/* Take work: up to 25 creates of one table, or one other op.  Under
 * c->lock; 0 when nothing is due (*wait_ms: until something may be).
 * *more: due work is left that another worker could take.
 *
 * Once the oldest create of a table is due, the younger ones of that table
 * go in its batch too: the delay is there to fold saves of one file, and
 * sending a younger create a little early costs nothing, while sending
 * each as it comes due would cost a request apiece (a cp that stalls past
 * the delay left a trail of batches of one or two). */
static size_t take(struct wbc *w, struct wop **ops, uint64_t *wait_ms,
		   int *more)
{
	uint64_t now = cache_now_ms(), next = UINT64_MAX, t;
	struct wop *o, *nx;
	size_t n = 0;
	int all = w->urgent || w->queued >= WBC_BATCH, ok;

	*more = 0;
	for (o = w->head; o; o = nx) {
		nx = o->next;
		ok = due(w, o, now, all);
		if (n && !joins(w, (const struct wop *const *)ops, n, o, now)) {
			/* not for this batch: another worker takes it */
			if (ok)
				*more = 1;
			if (*more && (n == WBC_BATCH || !batched(w, ops[0])))
				break;
			continue;
		}
		if (!n && !ok) {
			if (!o->deps) {
				t = o->at_ms + w->delay_ms;
				if (o->due_ms > t)
					t = o->due_ms;
				if (t < next)
					next = t;
			}
			continue;
		}
		queue_unlink(w, o);
		o->inflight = 1;
		ops[n++] = o;
	}
	w->inflight += n;
	*wait_ms = next == UINT64_MAX ? 1000 : next > now ? next - now : 1;
	return n;
}

static void journal_flush_done(struct wbc *w)
{
	json_t *d, *rec;

	/* under c->lock */
	if (!w->done || !json_array_size(w->done))
		return;
	d = w->done;
	w->done = json_array();
	pthread_mutex_unlock(&w->c->lock);
	rec = json_pack("{s:o}", "d", d);
	if (rec)
		journal_append_lazy(w->j, rec, NULL);
	json_decref(rec);
	pthread_mutex_lock(&w->c->lock);
}

/* Once nothing is queued, in flight or being submitted, the journal
 * holds nothing live and starts over (kept small, so a replay is
 * short).  Under c->lock: no submit can slip in between. */
static void journal_trim(struct wbc *w, int force)
{
	json_t *none;

	if (w->ops || w->queued || w->submitting)
		return;
	if (!force && journal_size(w->j) < (1u << 20))
		return;
	none = json_array();
	if (none && !journal_rewrite(w->j, none, NULL) && w->done)
		json_array_clear(w->done);
	json_decref(none);
}

static void deadline(struct timespec *ts, uint64_t ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

static void *worker_main(void *arg)
{
	struct wbc *w = arg;
	struct cache *c = w->c;
	struct wop *ops[WBC_BATCH];
	uint64_t wait_ms = 100, until;
	struct timespec ts;
	size_t n;
	int more = 0;

	pthread_mutex_lock(&c->lock);
	while (!w->quit) {
		/* At the limit, the workers sending go on with the queue
		 * when they are done; the others wait to be woken. */
		n = w->active < w->limit ? take(w, ops, &wait_ms, &more) : 0;
		if (!n) {
			if (wait_ms > 1000 || w->active >= w->limit)
				wait_ms = 1000;
			until = cache_now_ms() + wait_ms;
			if (w->active < w->limit && until < w->wake_ms)
				w->wake_ms = until;
			deadline(&ts, wait_ms);
			w->sleepers++;
			pthread_cond_timedwait(&w->work, &c->lock, &ts);
			w->sleepers--;
			/* Whoever armed wake_ms may be this worker: forget
			 * it, so the next op wakes someone rather than
			 * nobody. */
			w->wake_ms = UINT64_MAX;
			continue;
		}
		/* A chain, not a herd: one more worker when there is more
		 * to send than this one took. */
		if (more && w->active + 1 < w->limit)
			pthread_cond_signal(&w->work);
		w->active++;
		pthread_mutex_unlock(&c->lock);
		if (batched(w, ops[0]))
			run_batch(w, ops, n);
		else
			run_single(w, ops[0]);
		pthread_mutex_lock(&c->lock);
		w->active--;
		journal_flush_done(w);
		journal_trim(w, 0);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* ---- waiting --------------------------------------------------------------- */

/* Whether the key has ops not yet done. */
static int key_busy(struct wbc *w, const struct dbuf *id)
{
	return cmap_get(w->keys, id->ptr, dbuf_len(id)) != NULL;
}

int wbc_sync(struct cache *c, const char *table, const struct cache_schema *s,
	     const json_t *key, unsigned timeout_ms)
{
	struct wbc *w = c->wbc;
	uint64_t end = cache_now_ms() + timeout_ms;
	struct timespec ts;
	struct citem *r;
	struct dbuf id;
	int rc = 0;

	dbuf_init(&id, DBUF_CAP_SMALL);
	if (cache_item_id(table, s, key, &id))
		return -ENOMEM;
	pthread_mutex_lock(&c->lock);
	w->urgent++;
	pthread_cond_broadcast(&w->work);
	while (key_busy(w, &id)) {
		uint64_t now = cache_now_ms();

		if (now >= end) {
			rc = -EIO; /* still queued, and kept */
			break;
		}
		deadline(&ts, end - now > 1000 ? 1000 : end - now);
		pthread_cond_timedwait(&w->done_cond, &c->lock, &ts);
	}
	w->urgent--;
	r = cmap_get(c->items, id.ptr, dbuf_len(&id));
	if (!rc && r && r->err) {
		rc = r->err;
		r->err = 0;
	}
	pthread_mutex_unlock(&c->lock);
	dbuf_free(&id);
	return rc;
}

int wbc_drain(struct cache *c, unsigned timeout_ms)
{
	struct wbc *w = c->wbc;
	uint64_t end = cache_now_ms() + timeout_ms;
	struct timespec ts;
	int rc = 0;

	if (!w)
		return 0;
	pthread_mutex_lock(&c->lock);
	w->urgent++;
	pthread_cond_broadcast(&w->work);
	while (w->ops || w->submitting) {
		uint64_t now = cache_now_ms();

		if (now >= end) {
			rc = -ETIMEDOUT;
			break;
		}
		deadline(&ts, end - now > 1000 ? 1000 : end - now);
		pthread_cond_timedwait(&w->done_cond, &c->lock, &ts);
	}
	w->urgent--;
	pthread_mutex_unlock(&c->lock);
	return rc;
}

void wbc_stats(struct cache *c, struct dbuf *out)
{
	struct wbc *w = c->wbc;

	if (!w) {
		dbuf_adds(out, "writeback off\n");
		return;
	}
	pthread_mutex_lock(&c->lock);
	dbuf_addf(out,
		  "pending_writes %zu\n"
		  "inflight_writes %zu\n"
		  "writes_sent %" PRIu64 "\n"
		  "write_batches %" PRIu64 "\n"
		  "writes_coalesced %" PRIu64 "\n"
		  "write_conflicts %" PRIu64 "\n"
		  "write_failures %" PRIu64 "\n"
		  "write_throttled %" PRIu64 "\n"
		  "write_concurrency %d\n"
		  "journal_bytes %" PRIu64 "\n",
		  w->ops, w->inflight, w->sent, w->batches, w->coalesced,
		  w->conflicts, w->failures, w->throttled, w->limit,
		  journal_size(w->j));
	pthread_mutex_unlock(&c->lock);
}

/* ---- start and stop -------------------------------------------------------- */

struct replay {
	struct wbc *w;
	json_t *recs;  /* records not marked done, by seq */
	json_t *done;  /* seq -> true */
};

static int replay_rec(void *ctx, json_t *rec)
{
	struct replay *rp = ctx;
	json_t *d = json_object_get(rec, "d"), *v;
	char buf[32];
	size_t i;

	if (d) {
		json_array_foreach(d, i, v) {
			snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
				 json_integer_value(v));
			json_object_set_new(rp->done, buf, json_true());
		}
		return 0;
	}
	return json_array_append(rp->recs, rec) ? -ENOMEM : 0;
}

static struct wop *wop_of_record(struct wbc *w, const json_t *rec,
				 struct aws_err *err, int *rc)
{
	const char *kind = NULL, *table = NULL, *table2 = NULL;
	json_t *key = NULL, *key2 = NULL, *item = NULL, *base = NULL,
	       *base2 = NULL;
	json_int_t seq = 0;
	int cond = 0;
	struct cache_schema s, s2;
	struct wop *o;

	*rc = -EINVAL;
	if (json_unpack((json_t *)rec, "{s:I, s:s, s:i, s:s, s:o, s?o, s?o, s?s, s?o, s?o}",
			"s", &seq, "o", &kind, "c", &cond, "t", &table, "k",
			&key, "i", &item, "b", &base, "t2", &table2, "k2",
			&key2, "b2", &base2))
		return NULL;
	*rc = cache_table_schema(w->c, table, &s, err);
	if (!*rc && table2)
		*rc = cache_table_schema(w->c, table2, &s2, err);
	if (*rc)
		return NULL;
	*rc = -ENOMEM;
	o = wop_new(!strcmp(kind, "put") ? WOP_PUT
		    : !strcmp(kind, "del") ? WOP_DEL : WOP_MOVE, table, &s,
		    key);
	if (!o)
		return NULL;
	o->cond = (enum wop_cond)cond;
	o->item = json_incref(item);
	o->base = json_incref(base);
	o->seq = (uint64_t)seq;
	json_array_append_new(o->seqs, json_integer(seq));
	if (table2) {
		o->s2 = s2;
		o->table2 = strdup(table2);
		o->key2 = json_deep_copy(key2);
		o->base2 = json_incref(base2);
		if (!o->table2 || !o->key2 ||
		    cache_item_id(table2, &s2, key2, &o->id2)) {
			wop_free(o);
			return NULL;
		}
	}
	*rc = 0;
	return o;
}

static int seq_cmp(const void *a, const void *b)
{
	json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a,
							  "s"));
	json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b,
							  "s"));

	return x < y ? -1 : x > y;
}

/* Replayed ops show in the cache as they would have before the crash:
 * the caller (items.c) is told each one. */
static int replay(struct wbc *w, wbc_replay_fn note, void *ctx,
		  size_t *count, struct dbuf *why)
{
	struct replay rp = { w, json_array(), json_object() };
	struct aws_err err;
	json_t **v = NULL;
	char buf[32];
	size_t i, n;
	int rc;

	*count = 0;
	if (!rp.recs || !rp.done) {
		rc = -ENOMEM;
		goto out;
	}
	rc = journal_replay(w->j, replay_rec, &rp, why);
	if (rc)
		goto out;
	n = json_array_size(rp.recs);
	v = calloc(n ? n : 1, sizeof(*v));
	if (!v) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++)
		v[i] = json_array_get(rp.recs, i);
	qsort(v, n, sizeof(*v), seq_cmp);
	for (i = 0; i < n; i++) {
		struct wop *o;
		json_int_t seq = json_integer_value(json_object_get(v[i], "s"));

		if ((uint64_t)seq > w->seq)
			w->seq = (uint64_t)seq;
		snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, seq);
		if (json_object_get(rp.done, buf))
			continue;
		awserr_clear(&err);
		o = wop_of_record(w, v[i], &err, &rc);
		if (!o) {
			char desc[700];

			logf_(w->c, 1, "journal: cannot replay a write to "
			      "table %s: %s",
			      json_string_value(json_object_get(v[i], "t")),
			      rc == -ENOMEM ? "out of memory"
					    : awserr_describe(&err, desc,
							      sizeof(desc)));
			continue;
		}
		if (note)
			note(ctx, o->table, &o->s, o->key,
			     o->kind == WOP_DEL ? NULL : o->item, o->table2,
			     &o->s2, o->key2);
		pthread_mutex_lock(&w->c->lock);
		rc = enqueue(w, o);
		pthread_mutex_unlock(&w->c->lock);
		if (rc)
			goto out;
		(*count)++;
	}
	rc = 0;
out:
	free(v);
	json_decref(rp.recs);
	json_decref(rp.done);
	return rc;
}

int wbc_start(struct cache *c, const struct wbc_opts *opts,
	      wbc_replay_fn note, void *ctx, size_t *replayed,
	      struct dbuf *why)
{
	struct wbc *w = calloc(1, sizeof(*w));
	int rc = -ENOMEM, i;

	*replayed = 0;
	if (!w)
		return rc;
	w->c = c;
	w->delay_ms = opts->delay_ms;
	w->max_workers = opts->workers > 0 && opts->workers <= WBC_MAX_WORKERS
				 ? opts->workers : 8;
	w->limit = w->max_workers;
	w->dir = strdup(opts->dir);
	w->version_attr = opts->version_attr ? strdup(opts->version_attr)
					     : NULL;
	w->strict_create = opts->strict_create;
	w->done = json_array();
	w->wake_ms = UINT64_MAX;
	pthread_cond_init(&w->work, NULL);
	pthread_cond_init(&w->done_cond, NULL);
	if (!w->dir || !w->done || (opts->version_attr && !w->version_attr) ||
	    cmap_new(&w->keys, wkey_free))
		goto fail;
	rc = journal_open(&w->j, w->dir, why);
	if (rc)
		goto fail;
	c->wbc = w;
	rc = replay(w, note, ctx, replayed, why);
	if (rc)
		goto fail;
	for (i = 0; i < w->max_workers; i++) {
		if (pthread_create(&w->workers[i], NULL, worker_main, w))
			break;
		w->nworkers++;
	}
	if (!w->nworkers) {
		rc = -EAGAIN;
		goto fail;
	}
	return 0;
fail:
	c->wbc = NULL;
	wbc_free(w);
	return rc;
}

/* Unmount: send what is queued (bounded), stop the workers, close the
 * journal.  What could not be sent stays in the journal for the next
 * mount. */
void wbc_stop(struct cache *c, unsigned timeout_ms)
{
	struct wbc *w = c->wbc;
	int i, rc;

	if (!w)
		return;
	rc = wbc_drain(c, timeout_ms);
	if (rc)
		logf_(c, 1, "unmount: %zu writes could not be sent; they stay "
		      "in %s/journal for the next mount", w->ops, w->dir);
	pthread_mutex_lock(&c->lock);
	w->quit = 1;
	pthread_cond_broadcast(&w->work);
	pthread_mutex_unlock(&c->lock);
	for (i = 0; i < w->nworkers; i++)
		pthread_join(w->workers[i], NULL);
	w->nworkers = 0;
	pthread_mutex_lock(&c->lock);
	journal_flush_done(w);
	if (!rc)
		journal_trim(w, 1);
	pthread_mutex_unlock(&c->lock);
	c->wbc = NULL;
	wbc_free(w);
}

void wbc_free(struct wbc *w)
{
	struct wop *o, *nx;

	if (!w)
		return;
	for (o = w->head; o; o = nx) {
		nx = o->next;
		wop_free(o);
	}
	journal_close(w->j);
	cmap_free(w->keys);
	json_decref(w->done);
	pthread_cond_destroy(&w->work);
	pthread_cond_destroy(&w->done_cond);
	free(w->dir);
	free(w->version_attr);
	free(w);
}
