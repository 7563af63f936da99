/* Reads of single items, batched when they come at once.
 *
 * A table's reads are in flight at most GETQ_INFLIGHT at a time.  A read
 * that finds none in flight goes alone (GetItem: no added latency for a
 * lone reader).  Otherwise it queues; when a slot frees, the oldest
 * queued read of the table leads: it takes every queued read of the
 * table (up to BatchGetItem's 100 keys) and sends them together.  So
 * concurrent readers share requests (8 readers of 400 items: about 180
 * instead of 400), and while DynamoDB throttles, fewer requests wait. */
#include "cache/getq.h"

#include "backend/ddb.h"
#include "backend/dbuf.h"
#include "cache/cache.h"
#include "cache/cache_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define GETQ_INFLIGHT 2
#define GETQ_BATCH_MAX 100

struct getq_wait {
	const char *table;
	const json_t *key;
	struct dbuf id; /* cache_item_id of the key */
	json_t *item;
	int queued; /* still in the queue, not yet in a batch */
	int rc, done;
	struct aws_err err;
	struct getq_wait *next;
};

struct getq_table {
	char *name;
	int inflight;
	struct getq_table *next;
};

struct getq {
	struct ddb *ddb;
	/* Lock order: a leaf (taken with no other dynfs lock held, never
	 * held across a request). */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct getq_wait *queue; /* oldest first */
	struct getq_table *tables;
};

int getq_new(struct getq **out, struct ddb *ddb)
{
	struct getq *q = calloc(1, sizeof(*q));

	*out = NULL;
	if (!q)
		return -ENOMEM;
	q->ddb = ddb;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	*out = q;
	return 0;
}

void getq_free(struct getq *q)
{
	struct getq_table *t, *next;

	if (!q)
		return;
	for (t = q->tables; t; t = next) {
		next = t->next;
		free(t->name);
		free(t);
	}
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->cond);
	free(q);
}

/* The table's slot count (under lock); NULL when out of memory. */
static struct getq_table *table_of(struct getq *q, const char *name)
{
	struct getq_table *t;

	for (t = q->tables; t; t = t->next)
		if (!strcmp(t->name, name))
			return t;
	t = calloc(1, sizeof(*t));
	if (!t || !(t->name = strdup(name))) {
		free(t);
		return NULL;
	}
	t->next = q->tables;
	q->tables = t;
	return t;
}

/* Is w the oldest queued read of its table (under lock)? */
static int oldest_of_table(const struct getq *q, const struct getq_wait *w)
{
	const struct getq_wait *x;

	for (x = q->queue; x != w; x = x->next)
		if (!strcmp(x->table, w->table))
			return 0;
	return 1;
}

/* Take up to GETQ_BATCH_MAX queued reads of w's table, w first, off the
 * queue (under lock), linked through next. */
static struct getq_wait *take_batch(struct getq *q, struct getq_wait *w)
{
	struct getq_wait **pp = &q->queue, *head = NULL, **tail = &head;
	int n = 0;

	while (*pp && n < GETQ_BATCH_MAX) {
		struct getq_wait *x = *pp;

		if (strcmp(x->table, w->table)) {
			pp = &x->next;
			continue;
		}
		*pp = x->next;
		x->next = NULL;
		x->queued = 0;
		*tail = x;
		tail = &x->next;
		n++;
	}
	return head;
}

static int same_id(const struct dbuf *a, const struct dbuf *b)
{
	return dbuf_len(a) == dbuf_len(b) &&
	       !memcmp(dbuf_str(a), dbuf_str(b), dbuf_len(a));
}

struct batch_ctx {
	const struct cache_schema *s;
	struct getq_wait *batch;
	struct dbuf id;
};

/* Hand a found item to every read of its key. */
static int batch_found(void *ctx, json_t *item)
{
	struct batch_ctx *b = ctx;
	struct getq_wait *w;
	int rc;

	dbuf_reset(&b->id);
	rc = cache_item_id(b->batch->table, b->s, item, &b->id);
	if (rc)
		return rc;
	for (w = b->batch; w; w = w->next)
		if (!w->item && same_id(&w->id, &b->id))
			w->item = json_incref(item);
	return 0;
}

/* One BatchGetItem for the reads in batch (no lock held).  Two reads of
 * one key send it once: DynamoDB refuses a batch that repeats a key. */
static void batch_send(struct getq *q, const struct cache_schema *s,
		       struct getq_wait *batch)
{
	struct batch_ctx b = { s, batch, { 0 } };
	struct getq_wait *w, *x;
	struct aws_err err;
	json_t *keys = json_array();
	int rc = keys ? 0 : -ENOMEM;

	awserr_clear(&err);
	dbuf_init(&b.id, DBUF_CAP_SMALL);
	for (w = batch; w && !rc; w = w->next) {
		for (x = batch; x != w; x = x->next)
			if (same_id(&x->id, &w->id))
				break;
		if (x == w && json_array_append(keys, (json_t *)w->key))
			rc = -ENOMEM;
	}
	if (!rc)
		rc = ddb_batch_get(q->ddb, batch->table, keys, 1, batch_found,
				   &b, &err);
	for (w = batch; w; w = w->next) {
		if (rc) {
			json_decref(w->item);
			w->item = NULL;
			w->rc = rc;
			w->err = err;
		} else {
			w->rc = w->item ? 0 : -ENOENT;
		}
	}
	dbuf_free(&b.id);
	json_decref(keys);
}

int getq_get(struct getq *q, const char *table, const struct cache_schema *s,
	     const json_t *key, json_t **item_out, struct aws_err *err)
{
	struct getq_wait w, *batch, *x;
	struct getq_table *t;
	int rc;

	*item_out = NULL;
	memset(&w, 0, sizeof(w));
	w.table = table;
	w.key = key;
	dbuf_init(&w.id, DBUF_CAP_SMALL);
	rc = cache_item_id(table, s, key, &w.id);
	if (rc)
		goto out;
	pthread_mutex_lock(&q->lock);
	t = table_of(q, table);
	if (!t) {
		pthread_mutex_unlock(&q->lock);
		rc = -ENOMEM;
		goto out;
	}
	if (!t->inflight) {
		t->inflight++;
		pthread_mutex_unlock(&q->lock);
		rc = ddb_get_item(q->ddb, table, (json_t *)key, 1, item_out,
				  err);
		pthread_mutex_lock(&q->lock);
		t->inflight--;
		pthread_cond_broadcast(&q->cond);
		pthread_mutex_unlock(&q->lock);
		goto out;
	}
	/* Queue at the tail: the oldest leads. */
	for (x = q->queue; x && x->next; x = x->next)
		;
	if (x)
		x->next = &w;
	else
		q->queue = &w;
	w.queued = 1;
	while (!w.done) {
		if (w.queued && t->inflight < GETQ_INFLIGHT &&
		    oldest_of_table(q, &w)) {
			batch = take_batch(q, &w);
			t->inflight++;
			pthread_mutex_unlock(&q->lock);
			batch_send(q, s, batch);
			pthread_mutex_lock(&q->lock);
			t->inflight--;
			for (x = batch; x; x = x->next)
				x->done = 1;
			pthread_cond_broadcast(&q->cond);
			continue;
		}
		pthread_cond_wait(&q->cond, &q->lock);
	}
	pthread_mutex_unlock(&q->lock);
	rc = w.rc;
	*item_out = w.item;
	if (rc && err)
		*err = w.err;
out:
	dbuf_free(&w.id);
	return rc;
}
