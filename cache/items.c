/* cache: items, directory listings, partitions, and every write.
 *
 * Each key the cache knows has a record (struct citem) that keeps the
 * item's rendered text, its typed image (compact JSON), a hash of the
 * text and an mtime that moves only when the hash does.  A directory
 * (struct cdir) remembers the members of its last listing with their
 * size and mtime; while that listing is fresh it answers stat and "no
 * such item" without a request, even for members whose records were
 * dropped.  Records and members are counted in cache_size and dropped
 * oldest first (docs/cache-memory.md).  Requests are made with no lock
 * held; their results are applied afterwards, except to records written
 * locally since the request started (seq), whose local state is newer. */
#include "cache/cache_int.h"
#include "cache/getq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_ITEM_MAX (400u * 1024) /* DynamoDB's item size limit */

/* Items a Scan or Query page asks for.  A page's parsed tree costs about
 * 6 KB an item in jansson and every segment holds one, so 1 MB pages
 * (DynamoDB's own limit, thousands of small items) would make a listing's
 * memory grow with the segments far beyond cache_size; pages of this many
 * items keep it to a few MB and still fill the segments' pipes. */
#define CACHE_PAGE_ITEMS 250

/* What malloc adds to each block, and a map node's fixed part: the
 * figures the memory count uses (docs/cache-memory.md). */
#define CACHE_MALLOC_OVERHEAD 16
#define CACHE_NODE_COST (48 + CACHE_MALLOC_OVERHEAD)

/* What one fetched item becomes before the lock is taken. */
struct rendered {
	json_t *item;
	char *text;
	size_t len;
	char *typed; /* the item as compact typed JSON */
	size_t typed_len;
	unsigned long long hash;
};

void cache_citem_free(void *p)
{
	struct citem *r = p;

	if (!r)
		return;
	json_decref(r->hint);
	json_decref(r->local);
	free(r->text);
	free(r->typed);
	free(r);
}

void cache_cdir_free(void *p)
{
	struct cdir *d = p;

	if (!d)
		return;
	json_decref(d->pvalue);
	cmap_free(d->members);
	free(d);
}

static void json_free_val(void *p)
{
	json_decref(p);
}

static void err_clear(struct aws_err *err)
{
	if (err)
		awserr_clear(err);
}

/* The reason replaces any earlier one: the log names one cause. */
#define why_set(why, ...)                             \
	do {                                          \
		if (why)                              \
			dbuf_reset(why);              \
		dbuf_addf_opt(why, __VA_ARGS__);      \
	} while (0)

static void rendered_free(struct rendered *rd)
{
	json_decref(rd->item);
	free(rd->text);
	free(rd->typed);
	memset(rd, 0, sizeof(*rd));
}

/* Render item (a new reference, taken) for the record. */
static int render_take(struct cache *c, json_t *item, struct rendered *rd)
{
	struct dbuf text;
	int rc;

	memset(rd, 0, sizeof(*rd));
	rd->item = item;
	dbuf_init(&text, DBUF_CAP_BODY);
	rc = ddbjson_render(item, c->fmt, &text);
	if (rc) {
		dbuf_free(&text);
		rendered_free(rd);
		return rc;
	}
	rd->hash = cmap_hash(dbuf_str(&text), dbuf_len(&text));
	rd->text = dbuf_take(&text, &rd->len);
	dbuf_free(&text);
	if (rd->text) {
		/* The buffer grew by doubling: the record keeps only the
		 * text, so that what it holds is what it counts. */
		char *fit = realloc(rd->text, rd->len + 1);

		if (fit)
			rd->text = fit;
	}
	/* The record keeps the typed image as text: a jansson tree costs
	 * ten times as much, and it is parsed again only when a file is
	 * opened or saved. */
	rd->typed = json_dumps(item, JSON_COMPACT);
	if (!rd->text || !rd->typed) {
		rendered_free(rd);
		return -ENOMEM;
	}
	rd->typed_len = strlen(rd->typed);
	return 0;
}

/* The typed image a record keeps; new reference, NULL when none. */
static json_t *citem_item(const struct citem *r)
{
	if (!r->typed)
		return NULL;
	return json_loadb(r->typed, r->typed_len, JSON_ALLOW_NUL, NULL);
}

/* The key object of an item ({pk, sk} picked out of it). */
static json_t *key_of(const struct cache_schema *s, const json_t *item)
{
	json_t *k = json_object(), *v;

	if (!k)
		return NULL;
	v = json_object_get(item, s->pk.name);
	if (!v || json_object_set(k, s->pk.name, v))
		goto fail;
	if (s->has_sk) {
		v = json_object_get(item, s->sk.name);
		if (!v || json_object_set(k, s->sk.name, v))
			goto fail;
	}
	return k;
fail:
	json_decref(k);
	return NULL;
}

/* ---- memory: every record and listing member within cache_size --------
 *
 * A record costs its struct, its id (twice: record and map node), its
 * texts and the jansson trees of a local write's images; a listing member
 * its struct, value and map node.  cache_trim drops clean records oldest
 * use first: a record with writes queued (the only copy DynamoDB does not
 * have yet), an open file or an error still to tell stays, and so does
 * one written after a listing in progress began (that listing must not
 * overwrite it).  When records alone cannot make room, whole listings go,
 * oldest first. */

/* About what jansson allocates for v: objects with their hash tables,
 * strings with their text. */
static size_t json_cost(const json_t *v)
{
	const json_t *e;
	const char *k;
	size_t n, i;

	if (!v)
		return 0;
	if (json_is_object(v)) {
		n = 256;
		json_object_foreach((json_t *)v, k, e)
			n += 80 + strlen(k) + json_cost(e);
		return n;
	}
	if (json_is_array(v)) {
		n = 64 + 8 * json_array_size(v);
		json_array_foreach(v, i, e)
			n += json_cost(e);
		return n;
	}
	if (json_is_string(v))
		return 64 + json_string_length(v);
	return 48;
}

static size_t citem_cost(const struct citem *r)
{
	size_t n = sizeof(*r) + r->id_len + CACHE_MALLOC_OVERHEAD +
		   CACHE_NODE_COST + r->id_len;

	if (r->text)
		n += r->text_len + CACHE_MALLOC_OVERHEAD;
	if (r->typed)
		n += r->typed_len + 1 + CACHE_MALLOC_OVERHEAD;
	return n + json_cost(r->local) + json_cost(r->hint);
}

static void lru_unlink(struct cache *c, struct citem *r)
{
	if (r->lru_prev)
		r->lru_prev->lru_next = r->lru_next;
	else if (c->lru_head == r)
		c->lru_head = r->lru_next;
	if (r->lru_next)
		r->lru_next->lru_prev = r->lru_prev;
	else if (c->lru_tail == r)
		c->lru_tail = r->lru_prev;
	r->lru_prev = r->lru_next = NULL;
}

static void lru_front(struct cache *c, struct citem *r)
{
	if (c->lru_head == r)
		return;
	lru_unlink(c, r);
	r->lru_next = c->lru_head;
	if (c->lru_head)
		c->lru_head->lru_prev = r;
	else
		c->lru_tail = r;
	c->lru_head = r;
}

/* After a change of what r holds: count it again, as just used. */
static void citem_recount(struct cache *c, struct citem *r)
{
	size_t cost = citem_cost(r);

	c->bytes = c->bytes - r->cost + cost;
	r->cost = cost;
	lru_front(c, r);
}

struct citem *cache_citem_get(struct cache *c, const struct dbuf *id,
			      const json_t *key, int create)
{
	struct citem *r = cmap_get(c->items, id->ptr, dbuf_len(id));
	size_t len = dbuf_len(id);

	(void)key;
	if (r || !create)
		return r;
	r = calloc(1, sizeof(*r) + len + 1);
	if (!r)
		return NULL;
	memcpy(r->id, id->ptr, len);
	r->id_len = len;
	if (cmap_put(c->items, r->id, len, r)) {
		free(r);
		return NULL;
	}
	citem_recount(c, r);
	return r;
}

/* The oldest sequence number a listing in progress started at: records
 * written after it stay until that listing is applied. */
struct lister;
static uint64_t listers_floor(const struct cache *c);

static int citem_pinned(const struct citem *r, uint64_t floor)
{
	return r->pending || r->holds || r->err || r->seq > floor;
}

static void members_uncount(struct cache *c, struct cdir *d);
static struct cmember *member_dup(const struct cmember *m);

/* Drop the oldest listing that no listing in progress is about to
 * replace; its members written here since it was made stay (the next
 * listing merges them).  0 when there was none to drop. */
static int listing_drop(struct cache *c)
{
	struct cmap_iter it = { 0, NULL };
	struct cdir *d, *old = NULL;
	struct cmap *kept;
	struct cmember *m;
	struct citem *r;
	const void *key;
	size_t klen;

	/* A kept listing (listed_ms set): one dropped before keeps only
	 * what must stay, and is not picked again. */
	while (cmap_next(c->dirs, &it, NULL, NULL, (void **)&d))
		if (d->listed_ms && d->bytes && !d->listing &&
		    (!old || d->listed_ms < old->listed_ms))
			old = d;
	if (!old || cmap_new(&kept, free))
		return 0;
	it.bucket = 0;
	it.node = NULL;
	while (cmap_next(old->members, &it, &key, &klen, (void **)&m)) {
		r = cmap_get(c->items, key, klen);
		if (!r || !(r->pending || r->seq > old->listed_seq))
			continue;
		m = member_dup(m);
		if (m && cmap_put(kept, key, klen, m))
			free(m);
	}
	members_uncount(c, old);
	cmap_free(old->members);
	old->members = kept;
	it.bucket = 0;
	it.node = NULL;
	while (cmap_next(kept, &it, NULL, &klen, (void **)&m)) {
		old->bytes += m->cost;
		c->bytes += m->cost;
	}
	old->listed_ms = 0;
	c->list_drops++;
	return 1;
}

void cache_trim(struct cache *c)
{
	uint64_t floor;
	struct citem *r, *prev;
	size_t steps;

	if (c->bytes <= c->max_bytes)
		return;
	floor = listers_floor(c);
	/* Each record is looked at once: a pinned one moves to the front,
	 * so a trim never walks the same pinned records again. */
	steps = cmap_count(c->items);
	for (r = c->lru_tail; r && steps && c->bytes > c->max_bytes;
	     r = prev, steps--) {
		prev = r->lru_prev;
		if (citem_pinned(r, floor)) {
			lru_front(c, r);
			continue;
		}
		lru_unlink(c, r);
		c->bytes -= r->cost;
		cmap_take(c->items, r->id, r->id_len);
		cache_citem_free(r);
		c->evictions++;
	}
	while (c->bytes > c->max_bytes && listing_drop(c))
		;
}

/* The text is what matters for mtime: a new hash is a change, seen now.
 * An item first seen unchanged since the mount keeps the mount time. */
static void citem_set_present(struct cache *c, struct citem *r,
			      struct rendered *rd, uint64_t at_ms, int local)
{
	time_t wall = time(NULL);

	if (!r->have_hash)
		r->mtime = local ? wall : c->mount_time;
	else if (r->hash != rd->hash)
		r->mtime = wall;
	if (!r->have_hash || r->hash != rd->hash)
		r->version = ++c->version;
	r->hash = rd->hash;
	r->have_hash = 1;
	free(r->text);
	free(r->typed);
	/* The texts move into the record. */
	r->text = rd->text;
	r->text_len = rd->len;
	r->typed = rd->typed;
	r->typed_len = rd->typed_len;
	rd->text = NULL;
	rd->len = 0;
	rd->typed = NULL;
	rd->typed_len = 0;
	r->state = CI_PRESENT;
	r->at_ms = at_ms;
	citem_recount(c, r);
}

static void hint_add(struct citem *r, const json_t *item);

static void citem_set_absent(struct cache *c, struct citem *r,
			     uint64_t at_ms)
{
	if (r->typed) {
		json_t *item = citem_item(r);

		if (item)
			hint_add(r, item);
		json_decref(item);
	}
	free(r->text);
	free(r->typed);
	r->text = NULL;
	r->typed = NULL;
	r->text_len = 0;
	r->typed_len = 0;
	r->state = CI_ABSENT;
	r->at_ms = at_ms;
	citem_recount(c, r);
}

static void citem_stat(const struct citem *r, struct cache_stat *st)
{
	memset(st, 0, sizeof(*st));
	st->size = r->text_len;
	st->mtime = r->mtime;
	st->version = r->version;
}

/* ---- listing members ----------------------------------------------------- */

/* A member named after value (a typed key value), with st. */
static struct cmember *member_new(const json_t *value,
				  const struct cache_stat *st,
				  size_t id_len)
{
	void *it = json_object_iter((json_t *)value);
	const char *type = it ? json_object_iter_key(it) : NULL;
	const json_t *v = it ? json_object_iter_value(it) : NULL;
	struct cmember *m;
	size_t len;

	if (!type || !json_is_string(v) || type[1] ||
	    !strchr("SNB", type[0]))
		return NULL;
	len = json_string_length(v);
	if (len > UINT32_MAX)
		return NULL;
	m = malloc(sizeof(*m) + len + 1);
	if (!m)
		return NULL;
	m->st = *st;
	m->st.is_dir = 0;
	m->type = type[0];
	m->vlen = (uint32_t)len;
	memcpy(m->v, json_string_value(v), len);
	m->v[len] = '\0';
	m->cost = sizeof(*m) + len + 1 + CACHE_MALLOC_OVERHEAD +
		  CACHE_NODE_COST + id_len;
	return m;
}

static struct cmember *member_dup(const struct cmember *m)
{
	struct cmember *n = malloc(sizeof(*m) + m->vlen + 1);

	if (n)
		memcpy(n, m, sizeof(*m) + m->vlen + 1);
	return n;
}

/* Put m (taken) in d under id, counted. */
static void member_put(struct cache *c, struct cdir *d, const void *id,
		       size_t len, struct cmember *m)
{
	struct cmember *old = cmap_get(d->members, id, len);

	if (old) {
		d->bytes -= old->cost;
		c->bytes -= old->cost;
	}
	if (cmap_put(d->members, id, len, m)) {
		/* only a new key can fail: nothing was replaced */
		free(m);
		return;
	}
	d->bytes += m->cost;
	c->bytes += m->cost;
}

static void member_remove(struct cache *c, struct cdir *d, const void *id,
			  size_t len)
{
	struct cmember *m = cmap_take(d->members, id, len);

	if (!m)
		return;
	d->bytes -= m->cost;
	c->bytes -= m->cost;
	free(m);
}

static void members_uncount(struct cache *c, struct cdir *d)
{
	c->bytes -= d->bytes;
	d->bytes = 0;
}

static struct cdir *cdir_get(struct cache *c, const char *table,
			     const json_t *pvalue, int partlist, int create)
{
	struct dbuf id;
	struct cdir *d = NULL;

	dbuf_init(&id, DBUF_CAP_SMALL);
	if (cache_dir_id(table, pvalue, &id))
		goto out;
	d = cmap_get(c->dirs, id.ptr, dbuf_len(&id));
	if (d || !create)
		goto out;
	d = calloc(1, sizeof(*d));
	if (!d)
		goto out;
	if (pvalue)
		d->pvalue = json_deep_copy(pvalue);
	if ((pvalue && !d->pvalue) ||
	    cmap_new(&d->members, partlist ? json_free_val : free) ||
	    cmap_put(c->dirs, id.ptr, dbuf_len(&id), d)) {
		cache_cdir_free(d);
		d = NULL;
	}
out:
	dbuf_free(&id);
	return d;
}

/* The directory an item is listed in. */
static struct cdir *cdir_of_item(struct cache *c, const char *table,
				 const struct cache_schema *s,
				 const json_t *key, int create)
{
	return cdir_get(c, table,
			s->has_sk ? json_object_get(key, s->pk.name) : NULL, 0,
			create);
}

/* The value an item's entry is named after. */
static const json_t *entry_value(const struct cache_schema *s,
				 const json_t *key)
{
	return json_object_get(key, s->has_sk ? s->sk.name : s->pk.name);
}

/* The member of d for the record r (under key) now says what r says. */
static void member_update(struct cache *c, struct cdir *d,
			  const struct cache_schema *s, const json_t *key,
			  const struct dbuf *id, const struct citem *r)
{
	struct cache_stat st;
	struct cmember *m;

	citem_stat(r, &st);
	m = member_new(entry_value(s, key), &st, dbuf_len(id));
	if (m)
		member_put(c, d, id->ptr, dbuf_len(id), m);
}

/* After a local write or delete: keep the listings of the item's
 * directories true without listing again. */
static void dirs_note(struct cache *c, const char *table,
		      const struct cache_schema *s, const json_t *key,
		      const struct dbuf *id, struct citem *r, int present)
{
	struct cdir *d = cdir_of_item(c, table, s, key, 0);
	struct cdir *td, *pd;
	const json_t *pv;
	struct dbuf pid;

	if (d) {
		if (present)
			member_update(c, d, s, key, id, r);
		else
			member_remove(c, d, id->ptr, dbuf_len(id));
	}
	if (!s->has_sk)
		return;
	pv = json_object_get(key, s->pk.name);
	pd = cdir_get(c, table, pv, 0, 1);
	if (pd && present) {
		pd->exists = 1;
		pd->exists_ms = cache_now_ms();
	} else if (pd) {
		/* A partition that may now be empty stays in view, as mkdir
		 * made it: a shell sitting in it, rm of every item, then cp.
		 * One known to hold more items needs no help. */
		pd->exists_ms = 0;
		if (!cache_fresh(c, pd->listed_ms, cache_now_ms()) ||
		    !cmap_count(pd->members))
			pd->marker = 1;
	}
	td = cdir_get(c, table, NULL, 1, 0);
	if (!td || !present)
		return;
	dbuf_init(&pid, DBUF_CAP_SMALL);
	if (!cache_value_id(pv, &pid) &&
	    !cmap_get(td->members, pid.ptr, dbuf_len(&pid))) {
		json_t *copy = json_deep_copy(pv);

		if (copy && cmap_put(td->members, pid.ptr, dbuf_len(&pid),
				     copy))
			json_decref(copy);
	}
	dbuf_free(&pid);
}

/* Type memory: the attributes of top over those of base, one level deep
 * (an attribute's whole value comes from one side).  New reference, or
 * NULL when both are NULL. */
static json_t *hint_merge(const json_t *base, const json_t *top)
{
	json_t *h;

	if (!base)
		return json_incref((json_t *)top);
	if (!top)
		return json_incref((json_t *)base);
	h = json_copy((json_t *)base);
	if (h && json_object_update(h, (json_t *)top)) {
		json_decref(h);
		h = NULL;
	}
	return h ? h : json_incref((json_t *)top);
}

/* Remember item's types on top of what the record remembered. */
static void hint_add(struct citem *r, const json_t *item)
{
	json_t *h = hint_merge(r->hint, item);

	json_decref(r->hint);
	r->hint = h;
}

json_t *cache_hint_get(struct cache *c, const char *table,
		       const struct cache_schema *s, const json_t *key)
{
	struct dbuf id;
	struct citem *r;
	json_t *h = NULL, *item;

	dbuf_init(&id, DBUF_CAP_SMALL);
	if (cache_item_id(table, s, key, &id))
		goto out;
	pthread_mutex_lock(&c->lock);
	r = cache_citem_get(c, &id, key, 0);
	if (r) {
		item = citem_item(r);
		h = hint_merge(r->hint, item);
		json_decref(item);
	}
	pthread_mutex_unlock(&c->lock);
out:
	dbuf_free(&id);
	return h;
}

/* ---- listings ---------------------------------------------------------- */

/* Entries on their way to a cache_list callback, packed into a dbuf so
 * that they are copied out under the lock and handed over without it:
 * each is a struct pent, the value's string and a NUL, 8-byte aligned. */
struct pent {
	struct cache_stat st;
	uint32_t vlen;
	char type;
};

static size_t pent_size(uint32_t vlen)
{
	return (sizeof(struct pent) + vlen + 1 + 7) & ~(size_t)7;
}

static int pents_add(struct dbuf *out, char type, const char *v,
		     uint32_t vlen, const struct cache_stat *st)
{
	static const char zeros[8];
	struct pent p;
	int rc;

	memset(&p, 0, sizeof(p));
	p.st = *st;
	p.vlen = vlen;
	p.type = type;
	rc = dbuf_add(out, &p, sizeof(p));
	if (!rc)
		rc = dbuf_add(out, v, vlen);
	if (!rc)
		rc = dbuf_add(out, zeros, pent_size(vlen) - sizeof(p) - vlen);
	return rc;
}

static int pents_add_member(struct dbuf *out, const struct cmember *m,
			    const struct cache_stat *st)
{
	return pents_add(out, m->type, m->v, m->vlen, st);
}

/* Hand the packed entries to cb (no lock held); *stop keeps cb's first
 * non-zero value, after which cb is not called again. */
static int pents_emit(struct dbuf *ents, cache_entry_cb cb, void *ctx,
		      int *stop)
{
	size_t off = 0;
	char type[2] = { 0, 0 };

	while (!*stop && off < dbuf_len(ents)) {
		const struct pent *p = (const struct pent *)(ents->ptr + off);
		json_t *v;

		type[0] = p->type;
		v = json_pack("{s:s%}", type, (const char *)(p + 1),
			      (size_t)p->vlen);
		if (!v)
			return -ENOMEM;
		*stop = cb(ctx, v, &p->st);
		json_decref(v);
		off += pent_size(p->vlen);
	}
	dbuf_reset(ents);
	return 0;
}

static json_t *names_k(const char *attr)
{
	return json_pack("{s:s}", "#k", attr);
}

/* Scan or Query that reads every item of a directory, page by page. */
static int fetch_items(struct cache *c, const char *table,
		       const struct cache_schema *s, const json_t *pvalue,
		       ddb_page_cb cb, void *ctx, struct aws_err *err)
{
	json_t *req;
	int rc;

	if (pvalue)
		req = json_pack("{s:s, s:s, s:o, s:{s:O}, s:b, s:i}",
				"TableName", table, "KeyConditionExpression",
				"#k = :v", "ExpressionAttributeNames",
				names_k(s->pk.name),
				"ExpressionAttributeValues", ":v", pvalue,
				"ConsistentRead", 1, "Limit",
				CACHE_PAGE_ITEMS);
	else
		req = json_pack("{s:s, s:b, s:i}", "TableName", table,
				"ConsistentRead", 1, "Limit",
				CACHE_PAGE_ITEMS);
	if (!req)
		return -ENOMEM;
	if (pvalue)
		rc = ddb_query(c->ddb, req, cb, ctx, err);
	else
		rc = ddb_scan(c->ddb, req, c->segments, cb, ctx, err);
	json_decref(req);
	return rc;
}

/* A listing in progress: each page is applied to the records and handed
 * to the caller as it arrives, so a table larger than the cache streams
 * through it.  The new members are kept (and counted) for the listing
 * to vouch for them, unless they alone would take half the cache: then
 * the listing is passed on but not kept. */
struct lister {
	struct lister *next; /* c->listers */
	struct cache *c;
	const char *table;
	const struct cache_schema *s;
	struct cmap *members; /* id -> struct cmember *, the new listing */
	size_t bytes;         /* counted for members */
	int overflow;         /* members given up */
	struct cmap *local;   /* ids of records written here that it saw */
	uint64_t seq0;
	cache_entry_cb cb;
	void *ctx;
	int stop;             /* cb's non-zero value */
	int any;              /* it saw an item */
	struct dbuf rdbuf, id, ents;
};

static uint64_t listers_floor(const struct cache *c)
{
	const struct lister *l;
	uint64_t floor = UINT64_MAX;

	for (l = c->listers; l; l = l->next)
		if (l->seq0 < floor)
			floor = l->seq0;
	return floor;
}

static void lister_overflow(struct lister *l)
{
	l->c->bytes -= l->bytes;
	l->bytes = 0;
	cmap_free(l->members);
	l->members = NULL;
	l->overflow = 1;
}

static int list_page(void *ctx, json_t *items)
{
	struct lister *l = ctx;
	struct cache *c = l->c;
	struct rendered *rds;
	struct cache_stat st;
	struct cmember *m;
	struct citem *r;
	uint64_t now;
	size_t i, n;
	int rc = 0;

	dbuf_reset(&l->rdbuf);
	/* Rendering is the costly part; it needs no lock. */
	for (i = 0; i < json_array_size(items) && !rc; i++) {
		struct rendered rd;

		rc = render_take(c, json_incref(json_array_get(items, i)), &rd);
		if (!rc)
			rc = dbuf_add(&l->rdbuf, &rd, sizeof(rd));
		if (rc && rd.item)
			rendered_free(&rd);
	}
	rds = (struct rendered *)l->rdbuf.ptr;
	n = dbuf_len(&l->rdbuf) / sizeof(struct rendered);
	now = cache_now_ms();
	pthread_mutex_lock(&c->lock);
	for (i = 0; !rc && i < n; i++) {
		json_t *key = key_of(l->s, rds[i].item);
		const json_t *v;

		dbuf_reset(&l->id);
		if (!key || cache_item_id(l->table, l->s, key, &l->id) ||
		    !(r = cache_citem_get(c, &l->id, key, 1))) {
			json_decref(key);
			continue;
		}
		l->any = 1;
		if (r->seq <= l->seq0 && !r->pending)
			citem_set_present(c, r, &rds[i], now, 0);
		else
			cmap_put(l->local, l->id.ptr, dbuf_len(&l->id), l);
		v = entry_value(l->s, key);
		if (r->state == CI_PRESENT) {
			citem_stat(r, &st);
			m = member_new(v, &st, dbuf_len(&l->id));
			if (m && !l->overflow) {
				rc = cmap_put(l->members, l->id.ptr,
					      dbuf_len(&l->id), m);
				if (rc) {
					free(m);
				} else {
					l->bytes += m->cost;
					c->bytes += m->cost;
				}
			}
			if (m)
				rc = pents_add_member(&l->ents, m, &st);
			if (m && l->overflow)
				free(m);
		}
		json_decref(key);
	}
	if (!l->overflow && l->bytes > c->max_bytes / 2)
		lister_overflow(l);
	cache_trim(c);
	pthread_mutex_unlock(&c->lock);
	for (i = 0; i < n; i++)
		rendered_free(&rds[i]);
	if (!rc)
		rc = pents_emit(&l->ents, l->cb, l->ctx, &l->stop);
	/* A callback's error (its reader is gone) ends the Scan: the
	 * listing is then not kept. */
	if (!rc && l->stop < 0)
		rc = l->stop;
	dbuf_reset(&l->ents);
	return rc;
}

/* A listing of an item directory, applied to the records, each entry
 * handed to cb. */
static int list_items(struct cache *c, const char *table,
		      const struct cache_schema *s, const json_t *pvalue,
		      cache_entry_cb cb, void *ctx, struct aws_err *err)
{
	struct lister l, **pp;
	struct cmap_iter it = { 0, NULL };
	struct cache_stat st;
	struct cmember *m;
	struct citem *r;
	struct cdir *d;
	const void *key;
	size_t klen;
	uint64_t now;
	int rc;

	memset(&l, 0, sizeof(l));
	l.c = c;
	l.table = table;
	l.s = s;
	l.cb = cb;
	l.ctx = ctx;
	dbuf_init(&l.rdbuf, DBUF_CAP_BODY * 4);
	dbuf_init(&l.id, DBUF_CAP_SMALL);
	dbuf_init(&l.ents, DBUF_CAP_BODY * 4);
	rc = cmap_new(&l.members, free);
	if (!rc)
		rc = cmap_new(&l.local, NULL);
	if (rc)
		goto out;
	pthread_mutex_lock(&c->lock);
	/* Made now, so that writes made while the listing runs are noted
	 * in it and merged below. */
	d = cdir_get(c, table, pvalue, 0, 1);
	if (!d) {
		pthread_mutex_unlock(&c->lock);
		rc = -ENOMEM;
		goto out;
	}
	d->listing++;
	l.seq0 = c->seq;
	l.next = c->listers;
	c->listers = &l;
	pthread_mutex_unlock(&c->lock);

	rc = fetch_items(c, table, s, pvalue, list_page, &l, err);

	now = cache_now_ms();
	pthread_mutex_lock(&c->lock);
	for (pp = &c->listers; *pp; pp = &(*pp)->next)
		if (*pp == &l) {
			*pp = l.next;
			break;
		}
	d->listing--;
	if (rc) {
		if (l.members)
			c->bytes -= l.bytes;
		cache_trim(c);
		pthread_mutex_unlock(&c->lock);
		goto out;
	}
	/* Members that are gone were deleted, unless written here since
	 * the listing started: those are merged in. */
	while (cmap_next(d->members, &it, &key, &klen, (void **)&m)) {
		r = cmap_get(c->items, key, klen);
		if (r && (r->seq > l.seq0 || r->pending)) {
			if (r->state != CI_PRESENT ||
			    cmap_get(l.local, key, klen) ||
			    (l.members && cmap_get(l.members, key, klen)))
				continue;
			citem_stat(r, &st);
			rc = pents_add_member(&l.ents, m, &st);
			if (!rc && l.members) {
				struct cmember *copy = member_dup(m);

				if (copy) {
					copy->st = st;
					if (cmap_put(l.members, key, klen,
						     copy)) {
						free(copy);
					} else {
						l.bytes += copy->cost;
						c->bytes += copy->cost;
					}
				}
			}
			l.any = 1;
			continue;
		}
		if (r && l.members && !cmap_get(l.members, key, klen))
			citem_set_absent(c, r, now);
	}
	/* Too large to keep (overflow): an empty listing, not fresh, not
	 * one to vouch with. */
	if (!l.members && cmap_new(&l.members, free)) {
		rc = -ENOMEM; /* the old listing stays */
		cache_trim(c);
		pthread_mutex_unlock(&c->lock);
		goto out;
	}
	members_uncount(c, d);
	cmap_free(d->members);
	d->members = l.members;
	d->bytes = l.bytes;
	l.members = NULL;
	d->listed_ms = l.overflow ? 0 : now;
	d->big = l.overflow;
	d->listed_seq = l.seq0;
	if (pvalue && l.any) {
		d->marker = 0;
		d->exists = 1;
		d->exists_ms = now;
	}
	cache_trim(c);
	pthread_mutex_unlock(&c->lock);
	if (!rc)
		rc = pents_emit(&l.ents, cb, ctx, &l.stop);
	if (!rc)
		rc = l.stop;
out:
	cmap_free(l.members);
	cmap_free(l.local);
	dbuf_free(&l.rdbuf);
	dbuf_free(&l.id);
	dbuf_free(&l.ents);
	return rc;
}

/* A fresh listing of an item directory handed to cb: 0, cb's first
 * non-zero value, or -errno; *missed set (cb not called) when there is
 * none and the directory must be listed.  Not a return value of 1: cb
 * stops a listing with 1 too. */
static int cached_items(struct cache *c, const char *table,
			const json_t *pvalue, cache_entry_cb cb, void *ctx,
			int *missed)
{
	struct cmap_iter it = { 0, NULL };
	struct cache_stat st;
	struct cmember *m;
	struct citem *r;
	struct cdir *d;
	struct dbuf ents;
	const void *key;
	size_t klen;
	int rc = 0, stop = 0;

	dbuf_init(&ents, DBUF_CAP_BODY * 4);
	pthread_mutex_lock(&c->lock);
	d = cdir_get(c, table, pvalue, 0, 0);
	*missed = !d || !cache_fresh(c, d->listed_ms, cache_now_ms());
	if (*missed) {
		pthread_mutex_unlock(&c->lock);
		goto out;
	}
	while (!rc && cmap_next(d->members, &it, &key, &klen, (void **)&m)) {
		/* The record, when it is still here, is newer. */
		r = cmap_get(c->items, key, klen);
		if (r && r->state != CI_PRESENT)
			continue;
		if (r)
			citem_stat(r, &st);
		else
			st = m->st;
		rc = pents_add_member(&ents, m, &st);
	}
	pthread_mutex_unlock(&c->lock);
	if (!rc)
		rc = pents_emit(&ents, cb, ctx, &stop);
	if (!rc)
		rc = stop;
out:
	dbuf_free(&ents);
	return rc;
}
struct centry {
	json_t *value; /* new reference */
	struct cache_stat st;
};

static void centries_free(struct dbuf *arr)
{
	struct centry *e = (struct centry *)arr->ptr;
	size_t i, n = dbuf_len(arr) / sizeof(*e);

	for (i = 0; i < n; i++)
		json_decref(e[i].value);
	dbuf_free(arr);
}

struct distinct {
	const char *attr;
	struct cmap *seen; /* id -> json value */
	struct dbuf id;
};

static int distinct_page(void *ctx, json_t *items)
{
	struct distinct *dc = ctx;
	json_t *item, *v, *copy;
	size_t i;
	int rc = 0;

	json_array_foreach(items, i, item) {
		v = json_object_get(item, dc->attr);
		dbuf_reset(&dc->id);
		if (!v || cache_value_id(v, &dc->id) ||
		    cmap_get(dc->seen, dc->id.ptr, dbuf_len(&dc->id)))
			continue;
		copy = json_deep_copy(v);
		if (!copy)
			return -ENOMEM;
		rc = cmap_put(dc->seen, dc->id.ptr, dbuf_len(&dc->id), copy);
		if (rc) {
			json_decref(copy);
			return rc;
		}
	}
	return 0;
}

/* The partitions of a table with a sort key: the distinct partition key
 * values of a Scan that projects only that attribute, and the local
 * partitions (mkdir, or emptied here). */
static int list_parts(struct cache *c, const char *table,
		      const struct cache_schema *s, struct dbuf *out,
		      struct aws_err *err)
{
	struct distinct dc;
	struct cmap_iter it = { 0, NULL };
	struct cdir *td = NULL, *pd;
	const void *key;
	size_t klen;
	json_t *req = NULL, *v;
	uint64_t now, seq0;
	struct centry e;
	int rc, fetch = 1;

	memset(&dc, 0, sizeof(dc));
	dc.attr = s->pk.name;
	dbuf_init(&dc.id, DBUF_CAP_SMALL);
	now = cache_now_ms();
	pthread_mutex_lock(&c->lock);
	seq0 = c->seq;
	td = cdir_get(c, table, NULL, 1, 0);
	if (td && cache_fresh(c, td->listed_ms, now))
		fetch = 0;
	pthread_mutex_unlock(&c->lock);

	if (fetch) {
		rc = cmap_new(&dc.seen, json_free_val);
		if (rc)
			goto out;
		/* Keys only: a page of them is cheap, still not 1 MB of
		 * them in every segment (CACHE_PAGE_ITEMS). */
		req = json_pack("{s:s, s:s, s:o, s:b, s:i}", "TableName",
				table, "ProjectionExpression", "#k",
				"ExpressionAttributeNames", names_k(s->pk.name),
				"ConsistentRead", 1, "Limit",
				CACHE_PAGE_ITEMS * 8);
		if (!req) {
			rc = -ENOMEM;
			goto out;
		}
		rc = ddb_scan(c->ddb, req, c->segments, distinct_page, &dc,
			      err);
		if (rc)
			goto out;
	}

	now = cache_now_ms();
	pthread_mutex_lock(&c->lock);
	td = cdir_get(c, table, NULL, 1, 1);
	if (!td) {
		pthread_mutex_unlock(&c->lock);
		rc = -ENOMEM;
		goto out;
	}
	if (fetch) {
		/* A partition written here while the Scan ran may be missing
		 * from it: keep the old members then, for one ttl. */
		if (c->seq != seq0) {
			while (cmap_next(td->members, &it, &key, &klen,
					 (void **)&v)) {
				json_t *copy;

				if (cmap_get(dc.seen, key, klen))
					continue;
				copy = json_incref(v);
				if (cmap_put(dc.seen, key, klen, copy))
					json_decref(copy);
			}
		}
		cmap_free(td->members);
		td->members = dc.seen;
		dc.seen = NULL;
		td->listed_ms = now;
		td->listed_seq = seq0;
	}
	rc = 0;
	it.bucket = 0;
	it.node = NULL;
	while (!rc && cmap_next(td->members, &it, &key, &klen, (void **)&v)) {
		memset(&e, 0, sizeof(e));
		e.value = json_incref(v);
		e.st.is_dir = 1;
		rc = dbuf_add(out, &e, sizeof(e));
		if (rc)
			json_decref(e.value);
	}
	/* Local partitions; one seen with items is no longer local. */
	it.bucket = 0;
	it.node = NULL;
	while (!rc && cmap_next(c->dirs, &it, &key, &klen, (void **)&pd)) {
		if (!pd->pvalue || !pd->marker || klen <= strlen(table) ||
		    memcmp(key, table, strlen(table) + 1))
			continue;
		dbuf_reset(&dc.id);
		if (cache_value_id(pd->pvalue, &dc.id))
			continue;
		if (cmap_get(td->members, dc.id.ptr, dbuf_len(&dc.id))) {
			if (fetch && td->listed_seq >= c->seq)
				pd->marker = 0;
			continue;
		}
		memset(&e, 0, sizeof(e));
		e.value = json_incref(pd->pvalue);
		e.st.is_dir = 1;
		rc = dbuf_add(out, &e, sizeof(e));
		if (rc)
			json_decref(e.value);
	}
	pthread_mutex_unlock(&c->lock);
out:
	json_decref(req);
	cmap_free(dc.seen);
	dbuf_free(&dc.id);
	return rc;
}

int cache_list(struct cache *c, const char *table, const json_t *pvalue,
	       cache_entry_cb cb, void *ctx, struct aws_err *err)
{
	struct cache_schema s;
	struct dbuf arr;
	struct centry *e;
	size_t i, n;
	int rc, missed = 0;

	err_clear(err);
	dbuf_init(&arr, DBUF_CAP_BODY * 4);
	rc = cache_table_schema(c, table, &s, err);
	if (rc)
		goto out;
	if (pvalue && !s.has_sk) {
		rc = -ENOTDIR;
		goto out;
	}
	if (!pvalue && s.has_sk) {
		rc = list_parts(c, table, &s, &arr, err);
		e = (struct centry *)arr.ptr;
		n = dbuf_len(&arr) / sizeof(*e);
		for (i = 0; !rc && i < n; i++)
			rc = cb(ctx, e[i].value, &e[i].st);
		goto out;
	}
	rc = cached_items(c, table, pvalue, cb, ctx, &missed);
	pthread_mutex_lock(&c->lock);
	if (missed)
		c->list_misses++;
	else
		c->list_hits++;
	pthread_mutex_unlock(&c->lock);
	if (missed)
		rc = list_items(c, table, &s, pvalue, cb, ctx, err);
out:
	centries_free(&arr);
	return rc;
}

/* ---- single items ------------------------------------------------------ */

struct answer {
	struct cache_stat *st;
	struct dbuf *text;
	json_t **item_out;
	int *same;
};

static int answer_from(struct cache *c, struct citem *r, struct answer *a)
{
	struct cache_stat st;
	int rc = 0;

	if (!r->text && (a->text || a->item_out))
		return -EIO; /* not held, and DynamoDB out of reach */
	lru_front(c, r);
	citem_stat(r, &st);
	if (a->st)
		*a->st = st;
	if (a->text)
		rc = dbuf_add(a->text, r->text, r->text_len);
	if (!rc && a->item_out) {
		*a->item_out = citem_item(r);
		if (!*a->item_out)
			rc = -ENOMEM;
	}
	if (!rc && a->same) {
		*a->same = r->read_version == r->version;
		r->read_version = r->version;
	}
	return rc;
}

/* A stat answered by a fresh listing's member (its record was dropped). */
static int answer_member(const struct cmember *m, struct answer *a)
{
	if (a->st)
		*a->st = m->st;
	return 0;
}

/* Lookups that miss in a directory without a fresh listing: after a few
 * within one cache_ttl, the directory is listed instead (under c->lock). */
#define CACHE_MISSES_BEFORE_LIST 4

static int list_instead(struct cache *c, struct cdir *d, uint64_t now)
{
	/* A listing that would not be kept answers nothing later. */
	if (d->big)
		return 0;
	if (!cache_fresh(c, d->miss_ms, now)) {
		d->miss_ms = now;
		d->misses = 0;
	}
	return ++d->misses > CACHE_MISSES_BEFORE_LIST;
}

/* Failures that mean "DynamoDB cannot be reached now". */
static int stale_ok(int rc)
{
	return rc == -ETIMEDOUT || rc == -ECONNREFUSED || rc == -ECONNRESET ||
	       rc == -EHOSTUNREACH || rc == -EAGAIN || rc == -EIO ||
	       rc == -EPROTO; /* an empty reply, as a reset proxy gives */
}

static int ignore_entry(void *ctx, const json_t *value,
			const struct cache_stat *st)
{
	(void)ctx;
	(void)value;
	(void)st;
	return 0;
}

static int item_lookup(struct cache *c, const char *table, const json_t *key,
		       struct answer *a, struct aws_err *err)
{
	struct cache_schema s;
	struct rendered rd;
	struct cmember *m;
	struct dbuf id;
	struct citem *r;
	struct cdir *d;
	json_t *item = NULL;
	uint64_t seq0, now;
	int rc, listed = 0, dfresh, need_text;

	err_clear(err);
	memset(&rd, 0, sizeof(rd));
	dbuf_init(&id, DBUF_CAP_SMALL);
	if (a->item_out)
		*a->item_out = NULL;
	need_text = a->text || a->item_out;
	rc = cache_table_schema(c, table, &s, err);
	if (rc)
		goto out;
	rc = cache_item_id(table, &s, key, &id);
	if (rc)
		goto out;
again:
	now = cache_now_ms();
	pthread_mutex_lock(&c->lock);
	r = cache_citem_get(c, &id, key, 0);
	if (r && r->err && a->text) {
		/* A write-back of this key was lost (a conflict): the next
		 * open says so.  Twice, as the kernel retries an open that
		 * got ESTALE once before telling the program. */
		rc = r->err;
		if (++r->err_told >= 2) {
			r->err = 0;
			r->err_told = 0;
		}
		pthread_mutex_unlock(&c->lock);
		goto out;
	}
	/* A fresh listing vouches for its members as of the listing, and
	 * says which names are not there. */
	d = cdir_of_item(c, table, &s, key, !listed);
	dfresh = d && cache_fresh(c, d->listed_ms, now);
	m = dfresh ? cmap_get(d->members, id.ptr, dbuf_len(&id)) : NULL;
	if (r && r->state != CI_UNKNOWN &&
	    (cache_fresh(c, r->at_ms, now) || r->pending || m) &&
	    (r->text || r->state == CI_ABSENT || !need_text)) {
		c->hits++;
		rc = r->state == CI_PRESENT ? answer_from(c, r, a) : -ENOENT;
		pthread_mutex_unlock(&c->lock);
		goto out;
	}
	if (!r && m && !need_text) {
		c->hits++;
		rc = answer_member(m, a);
		pthread_mutex_unlock(&c->lock);
		goto out;
	}
	if (dfresh && !m && !(r && r->pending)) {
		c->hits++;
		pthread_mutex_unlock(&c->lock);
		rc = -ENOENT;
		goto out;
	}
	if (d && !dfresh && !listed && list_instead(c, d, now)) {
		/* Many lookups in one directory (cp into it, cat of many
		 * files): one listing answers them all, absent names too. */
		pthread_mutex_unlock(&c->lock);
		rc = list_items(c, table, &s,
				s.has_sk ? json_object_get(key, s.pk.name)
					 : NULL, ignore_entry, NULL, err);
		/* A failed listing falls back to GetItem, which says what
		 * the failure means for this one key. */
		listed = 1;
		goto again;
	}
	seq0 = c->seq;
	c->misses++;
	pthread_mutex_unlock(&c->lock);

	rc = getq_get(c->getq, table, &s, key, &item, err);
	if (rc && rc != -ENOENT && stale_ok(rc)) {
		/* DynamoDB out of reach: what was read before still
		 * serves, as a disconnected NFS client would. */
		pthread_mutex_lock(&c->lock);
		r = cache_citem_get(c, &id, key, 0);
		d = cdir_of_item(c, table, &s, key, 0);
		m = d && d->listed_ms ? cmap_get(d->members, id.ptr,
						 dbuf_len(&id)) : NULL;
		if (r && r->state == CI_PRESENT)
			rc = answer_from(c, r, a);
		else if (r && r->state == CI_ABSENT)
			rc = -ENOENT;
		else if (m && !need_text)
			rc = answer_member(m, a);
		else if (d && d->listed_ms && !m)
			rc = -ENOENT; /* the last listing, however old */
		pthread_mutex_unlock(&c->lock);
		goto out;
	}
	if (rc && rc != -ENOENT)
		goto out;
	if (!rc) {
		rc = render_take(c, item, &rd);
		item = NULL;
		if (rc)
			goto out;
	}
	now = cache_now_ms();
	pthread_mutex_lock(&c->lock);
	r = cache_citem_get(c, &id, key, 1);
	if (r && r->seq <= seq0 && !r->pending) {
		if (rd.item)
			citem_set_present(c, r, &rd, now, 0);
		else
			citem_set_absent(c, r, now);
		/* A listing that holds the key shows what was just read. */
		d = cdir_of_item(c, table, &s, key, 0);
		if (d && r->state == CI_PRESENT &&
		    cmap_get(d->members, id.ptr, dbuf_len(&id)))
			member_update(c, d, &s, key, &id, r);
	}
	if (r && r->state == CI_PRESENT)
		rc = answer_from(c, r, a);
	else if (r && r->state == CI_ABSENT)
		rc = -ENOENT;
	else
		rc = rd.item ? -ENOMEM : -ENOENT;
	cache_trim(c);
	pthread_mutex_unlock(&c->lock);
out:
	rendered_free(&rd);
	json_decref(item);
	dbuf_free(&id);
	return rc;
}

int cache_item_stat(struct cache *c, const char *table, const json_t *key,
		    struct cache_stat *st, struct aws_err *err)
{
	struct answer a = { st, NULL, NULL, NULL };

	return item_lookup(c, table, key, &a, err);
}

int cache_item_read(struct cache *c, const char *table, const json_t *key,
		    struct dbuf *text, json_t **item_out, struct cache_stat *st,
		    int *same, struct aws_err *err)
{
	struct answer a = { st, text, item_out, same };

	return item_lookup(c, table, key, &a, err);
}

struct cache_hold {
	struct cache *c;
	struct citem *r;
};

void cache_item_hold(struct cache *c, const char *table, const json_t *key,
		     struct cache_hold **out)
{
	struct cache_schema s;
	struct cache_hold *h;
	struct dbuf id;

	*out = NULL;
	h = calloc(1, sizeof(*h));
	dbuf_init(&id, DBUF_CAP_SMALL);
	if (!h || cache_table_schema(c, table, &s, NULL) ||
	    cache_item_id(table, &s, key, &id))
		goto out;
	pthread_mutex_lock(&c->lock);
	h->r = cache_citem_get(c, &id, key, 1);
	if (h->r)
		h->r->holds++;
	pthread_mutex_unlock(&c->lock);
	if (h->r) {
		h->c = c;
		*out = h;
		h = NULL;
	}
out:
	free(h);
	dbuf_free(&id);
}

void cache_item_unhold(struct cache_hold *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->c->lock);
	/* held records are never dropped, so r is still the key's */
	if (h->r->holds)
		h->r->holds--;
	pthread_mutex_unlock(&h->c->lock);
	free(h);
}

/* ---- saving ------------------------------------------------------------ */

static int blank(const char *text, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!strchr(" \t\r\n", text[i]) || !text[i])
			return 0;
	return 1;
}

/* The one inner value of a typed value, and its type letter(s). */
static const json_t *typed(const json_t *v, const char **type)
{
	void *it = json_object_iter((json_t *)v);

	if (!json_is_object(v) || json_object_size(v) != 1 || !it) {
		*type = "";
		return NULL;
	}
	*type = json_object_iter_key(it);
	return json_object_iter_value(it);
}

/* Short text of a typed key value for a log sentence. */
static void value_words(const json_t *v, char *buf, size_t size)
{
	const char *type;
	const json_t *inner = typed(v, &type);
	char *s = inner ? json_dumps(inner, JSON_ENCODE_ANY) : NULL;

	snprintf(buf, size, "%s%s%s", s ? s : "?", type[0] ? " " : "", type);
	if (strlen(buf) > 60)
		strcpy(buf + 57, "...");
	free(s);
}

static int key_values_equal(char type, const json_t *a, const json_t *b)
{
	struct dbuf ia, ib;
	int eq;

	(void)type;
	dbuf_init(&ia, DBUF_CAP_SMALL);
	dbuf_init(&ib, DBUF_CAP_SMALL);
	eq = !cache_value_id(a, &ia) && !cache_value_id(b, &ib) &&
	     dbuf_len(&ia) == dbuf_len(&ib) &&
	     !memcmp(dbuf_str(&ia), dbuf_str(&ib), dbuf_len(&ia));
	dbuf_free(&ia);
	dbuf_free(&ib);
	return eq;
}

/* Key attributes: taken from the name when the text leaves them out, and
 * when present they must be the name's.  A binary key written as its
 * base64 string (plain JSON has no binary type) is the same key. */
static int fix_key_attr(const struct cache_keyattr *ka, const json_t *key,
			json_t *item, struct dbuf *why)
{
	const json_t *want = json_object_get(key, ka->name);
	const json_t *got = json_object_get(item, ka->name);
	char w[64], g[64];
	const char *type;
	const json_t *inner;

	if (!want)
		return -EINVAL;
	if (!got)
		return json_object_set(item, ka->name, (json_t *)want) ?
			-ENOMEM : 0;
	inner = typed(got, &type);
	if (type[0] == ka->type && !type[1] &&
	    key_values_equal(ka->type, got, want))
		goto same;
	if (ka->type == 'B' && !strcmp(type, "S") && json_is_string(inner)) {
		json_t *asb = json_pack("{s:O}", "B", (json_t *)inner);

		if (asb && key_values_equal('B', asb, want)) {
			json_decref(asb);
			goto same;
		}
		json_decref(asb);
	}
	value_words(got, g, sizeof(g));
	value_words(want, w, sizeof(w));
	why_set(why, "key attribute \"%s\" is %s in the file but the file "
		"name says %s", ka->name, g, w);
	return -EINVAL;
same:
	/* The name's own form, so the item lands exactly on its key. */
	return json_object_set(item, ka->name, (json_t *)want) ? -ENOMEM : 0;
}

static int fix_key(const struct cache_schema *s, const json_t *key,
		   json_t *item, struct dbuf *why)
{
	int rc = fix_key_attr(&s->pk, key, item, why);

	if (!rc && s->has_sk)
		rc = fix_key_attr(&s->sk, key, item, why);
	return rc;
}

/* A lower bound of DynamoDB's size of a value: names and values in bytes,
 * numbers at one byte per two digits. */
static size_t value_size(const json_t *v, int depth)
{
	const json_t *inner, *e;
	const char *type, *k;
	size_t n = 0, i, len;

	if (depth > DDBJSON_MAX_DEPTH)
		return 0;
	inner = typed(v, &type);
	if (!inner)
		return 0;
	if (!strcmp(type, "S"))
		return json_string_length(inner);
	if (!strcmp(type, "N"))
		return (json_string_length(inner) + 1) / 2;
	if (!strcmp(type, "B"))
		return json_string_length(inner) / 4 * 3;
	if (!strcmp(type, "BOOL") || !strcmp(type, "NULL"))
		return 1;
	if (!strcmp(type, "SS") || !strcmp(type, "NS") || !strcmp(type, "BS")) {
		json_array_foreach(inner, i, e) {
			len = json_string_length(e);
			n += type[0] == 'S' ? len :
			     type[0] == 'N' ? (len + 1) / 2 : len / 4 * 3;
		}
		return n;
	}
	if (!strcmp(type, "L")) {
		json_array_foreach(inner, i, e)
			n += 1 + value_size(e, depth + 1);
		return n;
	}
	if (!strcmp(type, "M")) {
		json_object_foreach((json_t *)inner, k, e)
			n += 1 + strlen(k) + value_size(e, depth + 1);
		return n;
	}
	return 0;
}

static size_t item_size(const json_t *item)
{
	const char *k;
	const json_t *v;
	size_t n = 0;

	json_object_foreach((json_t *)item, k, v)
		n += strlen(k) + value_size(v, 1);
	return n;
}

static json_t *cond_names(const char *attr)
{
	return json_pack("{s:s}", "#k", attr);
}

/* The records after a successful write of item under key (item is kept
 * as the new hint; the text is ours until DynamoDB's own is read). */
static void note_written(struct cache *c, const char *table,
			 const struct cache_schema *s, const json_t *key,
			 json_t *item)
{
	struct rendered rd;
	struct dbuf id;
	struct citem *r;

	dbuf_init(&id, DBUF_CAP_SMALL);
	memset(&rd, 0, sizeof(rd));
	if (render_take(c, json_incref(item), &rd))
		memset(&rd, 0, sizeof(rd));
	pthread_mutex_lock(&c->lock);
	if (cache_item_id(table, s, key, &id))
		goto out;
	r = cache_citem_get(c, &id, key, 1);
	if (!r)
		goto out;
	r->seq = ++c->seq;
	if (rd.item) {
		/* Stale at once (at_ms 0): the next stat reads DynamoDB's
		 * text, which may write a number differently. */
		citem_set_present(c, r, &rd, 0, 1);
	} else {
		citem_set_absent(c, r, 0);
		r->state = CI_UNKNOWN;
	}
	hint_add(r, item);
	json_decref(r->local);
	r->local = json_incref(item);
	/* The kernel's pages hold what the writer wrote, which may not be
	 * this text: the next open must not keep them. */
	r->read_version = 0;
	citem_recount(c, r);
	dirs_note(c, table, s, key, &id, r, r->state == CI_PRESENT);
	cache_trim(c);
out:
	pthread_mutex_unlock(&c->lock);
	rendered_free(&rd);
	dbuf_free(&id);
}

static void note_deleted(struct cache *c, const char *table,
			 const struct cache_schema *s, const json_t *key,
			 json_t *item)
{
	struct dbuf id;
	struct citem *r;

	dbuf_init(&id, DBUF_CAP_SMALL);
	pthread_mutex_lock(&c->lock);
	if (cache_item_id(table, s, key, &id))
		goto out;
	r = cache_citem_get(c, &id, key, 1);
	if (!r)
		goto out;
	r->seq = ++c->seq;
	citem_set_absent(c, r, cache_now_ms());
	if (item)
		hint_add(r, item);
	citem_recount(c, r);
	dirs_note(c, table, s, key, &id, r, 0);
	cache_trim(c);
out:
	pthread_mutex_unlock(&c->lock);
	dbuf_free(&id);
}

/* What a save is conditional on: the item as dynfs last read or wrote
 * it, unless the writer read an older image that a change from elsewhere
 * has replaced since (then the writer's, so the flush finds the
 * conflict).  New reference or NULL; *known: 0 when nothing is known. */
static json_t *save_base(struct cache *c, const char *table,
			 const struct cache_schema *s, const json_t *key,
			 const json_t *hint, unsigned flags, int *known)
{
	struct dbuf id;
	struct citem *r;
	json_t *base = NULL, *item = NULL;

	*known = 1;
	if (flags & CACHE_SAVE_EXCL)
		return NULL;
	dbuf_init(&id, DBUF_CAP_SMALL);
	pthread_mutex_lock(&c->lock);
	r = cache_item_id(table, s, key, &id) ? NULL : cache_citem_get(c, &id, key, 0);
	if (r && r->state == CI_PRESENT && r->typed &&
	    (item = citem_item(r)) != NULL) {
		base = item;
		if (hint && !cache_item_same(hint, base) &&
		    !(r->local && cache_item_same(base, r->local)))
			base = (json_t *)hint;
	} else if (r && r->state == CI_ABSENT) {
		base = (r->local || !hint) ? NULL : (json_t *)hint;
	} else if (r && r->state == CI_PRESENT) {
		base = (json_t *)hint; /* dropped from memory: must exist */
		*known = hint != NULL;
	} else {
		/* Never read: a file this writer created (lookup said no
		 * such item) is a create; anything else must exist. */
		struct cdir *d = cdir_of_item(c, table, s, key, 0);

		base = (json_t *)hint;
		*known = hint != NULL || (flags & CACHE_SAVE_NEW) ||
			 (d && cache_fresh(c, d->listed_ms, cache_now_ms()) &&
			  !cmap_get(d->members, id.ptr, dbuf_len(&id)));
	}
	json_incref(base);
	pthread_mutex_unlock(&c->lock);
	json_decref(item);
	dbuf_free(&id);
	return base;
}

static int item_put(struct cache *c, const char *table,
		    const struct cache_schema *s, const json_t *key,
		    json_t *item, const json_t *hint, unsigned flags,
		    struct aws_err *err)
{
	struct ddb_cond cond = { NULL, NULL, NULL };
	int rc;

	if (c->wbc) {
		int known;
		json_t *base = save_base(c, table, s, key, hint, flags, &known);

		rc = wbc_put(c, table, s, key, item, base, known, NULL);
		json_decref(base);
		if (!rc)
			note_written(c, table, s, key, item);
		return rc;
	}

	if (flags & CACHE_SAVE_EXCL) {
		cond.expr = "attribute_not_exists(#k)";
		cond.names = cond_names(s->pk.name);
		if (!cond.names)
			return -ENOMEM;
	}
	rc = ddb_put_item(c->ddb, table, item, &cond, err);
	json_decref(cond.names);
	if (rc == -ESTALE && (flags & CACHE_SAVE_EXCL))
		rc = -EEXIST;
	if (!rc)
		note_written(c, table, s, key, item);
	return rc;
}

/* Text to a typed item ready to put: parsed with the hint, key checked,
 * size checked. */
static int item_from_text(struct cache *c, const char *table,
			  const struct cache_schema *s, const json_t *key,
			  const char *text, size_t len, const json_t *hint,
			  unsigned flags, json_t **item_out, struct dbuf *why)
{
	json_t *h = NULL, *rec, *item = NULL;
	size_t size;
	int rc;

	*item_out = NULL;
	if (blank(text, len)) {
		if (!(flags & CACHE_SAVE_NEW)) {
			why_set(why, "the file is empty; use rm to delete "
				"the item");
			return -EINVAL;
		}
		item = json_deep_copy(key);
		if (!item)
			return -ENOMEM;
		*item_out = item;
		return 0;
	}
	/* The writer's own image wins; the key's memory fills in the
	 * attributes it lacks (a file re-created after a rename away). */
	rec = cache_hint_get(c, table, s, key);
	h = hint_merge(rec, hint);
	json_decref(rec);
	if (why)
		dbuf_reset(why);
	rc = ddbjson_parse(text, len, c->fmt, h, &item, why);
	json_decref(h);
	if (rc) {
		if (why && !dbuf_len(why))
			why_set(why, "%s", strerror(-rc));
		return rc;
	}
	rc = fix_key(s, key, item, why);
	if (rc)
		goto fail;
	size = item_size(item);
	if (size > CACHE_ITEM_MAX) {
		why_set(why, "the item is at least %zu bytes; DynamoDB's limit "
			"is 400 KB", size);
		rc = -EFBIG;
		goto fail;
	}
	*item_out = item;
	return 0;
fail:
	json_decref(item);
	return rc;
}

int cache_item_save(struct cache *c, const char *table, const json_t *key,
		    const char *text, size_t len, const json_t *hint,
		    unsigned flags, struct dbuf *why, struct aws_err *err)
{
	struct cache_schema s;
	json_t *item = NULL;
	int rc;

	err_clear(err);
	rc = cache_table_schema(c, table, &s, err);
	if (rc)
		return rc;
	rc = item_from_text(c, table, &s, key, text, len, hint, flags, &item,
			    why);
	if (!rc)
		rc = item_put(c, table, &s, key, item, hint, flags, err);
	json_decref(item);
	return rc;
}

static int item_delete(struct cache *c, const char *table,
		       const struct cache_schema *s, const json_t *key,
		       json_t *old, struct aws_err *err)
{
	struct ddb_cond cond = { "attribute_exists(#k)", NULL, NULL };
	int rc;

	if (c->wbc) {
		int known;
		json_t *base = old ? json_incref(old)
				   : save_base(c, table, s, key, NULL, 0,
					       &known);

		rc = wbc_delete(c, table, s, key, base, NULL);
		if (!rc)
			note_deleted(c, table, s, key, base);
		json_decref(base);
		return rc;
	}
	/* Deleting what is not there is no success for rm. */
	cond.names = cond_names(s->pk.name);
	if (!cond.names)
		return -ENOMEM;
	rc = ddb_delete_item(c->ddb, table, (json_t *)key, &cond, err);
	json_decref(cond.names);
	if (rc == -ESTALE)
		rc = -ENOENT;
	if (!rc) {
		json_t *h = old ? json_incref(old)
				: cache_hint_get(c, table, s, key);

		note_deleted(c, table, s, key, h);
		json_decref(h);
	}
	return rc;
}

int cache_item_delete(struct cache *c, const char *table, const json_t *key,
		      struct aws_err *err)
{
	struct cache_schema s;
	int rc;

	err_clear(err);
	rc = cache_table_schema(c, table, &s, err);
	if (!rc)
		rc = item_delete(c, table, &s, key, NULL, err);
	return rc;
}

/* The item as it is now: with write-back, as this mount shows it (its
 * queued writes included); without, as DynamoDB has it. */
static int current_item(struct cache *c, const char *table,
			const json_t *key, json_t **item, struct aws_err *err)
{
	struct answer a = { NULL, NULL, item, NULL };

	if (!c->wbc)
		return ddb_get_item(c->ddb, table, (json_t *)key, 1, item, err);
	return item_lookup(c, table, key, &a, err);
}

static int keyattr_same(const struct cache_keyattr *a,
			const struct cache_keyattr *b)
{
	return a->type == b->type && !strcmp(a->name, b->name);
}

int cache_item_move(struct cache *c, const char *src_table,
		    const json_t *src_key, const char *dst_table,
		    const json_t *dst_key, unsigned flags,
		    struct aws_err *err)
{
	struct cache_schema ss, ds;
	struct dbuf sid, did;
	json_t *item = NULL, *moved = NULL, *txn = NULL, *put, *del;
	int rc;

	err_clear(err);
	dbuf_init(&sid, DBUF_CAP_SMALL);
	dbuf_init(&did, DBUF_CAP_SMALL);
	rc = cache_table_schema(c, src_table, &ss, err);
	if (!rc)
		rc = cache_table_schema(c, dst_table, &ds, err);
	if (rc)
		goto out;
	if (!keyattr_same(&ss.pk, &ds.pk) || ss.has_sk != ds.has_sk ||
	    (ss.has_sk && !keyattr_same(&ss.sk, &ds.sk))) {
		rc = -EXDEV;
		goto out;
	}
	rc = cache_item_id(src_table, &ss, src_key, &sid);
	if (!rc)
		rc = cache_item_id(dst_table, &ds, dst_key, &did);
	if (rc)
		goto out;
	if (dbuf_len(&sid) == dbuf_len(&did) &&
	    !memcmp(sid.ptr, did.ptr, dbuf_len(&sid)))
		goto out; /* rename onto itself */
	rc = current_item(c, src_table, src_key, &item, err);
	if (rc)
		goto out;
	moved = json_deep_copy(item);
	if (!moved || json_object_set(moved, ds.pk.name,
				      json_object_get(dst_key, ds.pk.name)) ||
	    (ds.has_sk &&
	     json_object_set(moved, ds.sk.name,
			     json_object_get(dst_key, ds.sk.name)))) {
		rc = -ENOMEM;
		goto out;
	}
	if (c->wbc) {
		int known;
		json_t *dbase = save_base(c, dst_table, &ds, dst_key, NULL,
					  flags, &known);

		rc = wbc_move(c, src_table, &ss, src_key, item, dst_table, &ds,
			      dst_key, moved, dbase, NULL);
		json_decref(dbase);
		if (rc)
			goto out;
		note_deleted(c, src_table, &ss, src_key, item);
		note_written(c, dst_table, &ds, dst_key, moved);
		goto out;
	}
	txn = json_array();
	put = json_pack("{s:{s:s, s:O}}", "Put", "TableName", dst_table,
			"Item", moved);
	if (!txn || json_array_append_new(txn, put)) {
		rc = -ENOMEM;
		goto out;
	}
	if (flags & CACHE_SAVE_EXCL) {
		json_t *p = json_object_get(put, "Put");

		if (json_object_set_new(p, "ConditionExpression",
					json_string("attribute_not_exists(#k)")) ||
		    json_object_set_new(p, "ExpressionAttributeNames",
					cond_names(ds.pk.name))) {
			rc = -ENOMEM;
			goto out;
		}
	}
	del = json_pack("{s:{s:s, s:O, s:s, s:o}}", "Delete", "TableName",
			src_table, "Key", (json_t *)src_key,
			"ConditionExpression", "attribute_exists(#k)",
			"ExpressionAttributeNames", cond_names(ss.pk.name));
	if (json_array_append_new(txn, del)) {
		rc = -ENOMEM;
		goto out;
	}
	rc = ddb_transact_write(c->ddb, txn, NULL, err);
	if (rc == -ESTALE)
		rc = (flags & CACHE_SAVE_EXCL) ? -EEXIST : -ENOENT;
	if (rc)
		goto out;
	note_deleted(c, src_table, &ss, src_key, item);
	note_written(c, dst_table, &ds, dst_key, moved);
out:
	json_decref(txn);
	json_decref(moved);
	json_decref(item);
	dbuf_free(&sid);
	dbuf_free(&did);
	return rc;
}

/* ---- partitions --------------------------------------------------------- */

static int probe_page(void *ctx, json_t *items)
{
	*(int *)ctx = json_array_size(items) > 0;
	return 1; /* one page is the answer */
}

/* Whether the partition has an item: a Query of one key. */
static int part_probe(struct cache *c, const char *table,
		      const struct cache_schema *s, const json_t *pvalue,
		      int *has, struct aws_err *err)
{
	json_t *req;
	int rc;

	*has = 0;
	req = json_pack("{s:s, s:s, s:s, s:o, s:{s:O}, s:i, s:b}", "TableName",
			table, "KeyConditionExpression", "#k = :v",
			"ProjectionExpression", "#k",
			"ExpressionAttributeNames", names_k(s->pk.name),
			"ExpressionAttributeValues", ":v", (json_t *)pvalue,
			"Limit", 1, "ConsistentRead", 1);
	if (!req)
		return -ENOMEM;
	rc = ddb_query(c->ddb, req, probe_page, has, err);
	json_decref(req);
	return rc < 0 ? rc : 0;
}

/* What the cache knows without a request: 1 has items or is local, 0 is
 * empty and not local, -1 unknown. */
static int part_known(struct cache *c, const char *table,
		      const json_t *pvalue, int *local)
{
	uint64_t now = cache_now_ms();
	struct cdir *d, *td;
	struct dbuf pid;
	int known = -1;

	*local = 0;
	d = cdir_get(c, table, pvalue, 0, 0);
	if (d && d->marker) {
		*local = 1;
		return 1;
	}
	if (d && cache_fresh(c, d->listed_ms, now))
		return cmap_count(d->members) > 0;
	if (d && cache_fresh(c, d->exists_ms, now))
		return d->exists;
	td = cdir_get(c, table, NULL, 1, 0);
	if (td && cache_fresh(c, td->listed_ms, now)) {
		dbuf_init(&pid, DBUF_CAP_SMALL);
		if (!cache_value_id(pvalue, &pid))
			known = cmap_get(td->members, pid.ptr,
					 dbuf_len(&pid)) != NULL;
		dbuf_free(&pid);
	}
	return known;
}

int cache_part_stat(struct cache *c, const char *table, const json_t *pvalue,
		    struct aws_err *err)
{
	struct cache_schema s;
	struct cdir *d;
	int rc, known, local, has;

	err_clear(err);
	rc = cache_table_schema(c, table, &s, err);
	if (rc)
		return rc;
	if (!s.has_sk)
		return -ENOENT;
	pthread_mutex_lock(&c->lock);
	known = part_known(c, table, pvalue, &local);
	pthread_mutex_unlock(&c->lock);
	if (known >= 0)
		return known ? 0 : -ENOENT;
	rc = part_probe(c, table, &s, pvalue, &has, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&c->lock);
	d = cdir_get(c, table, pvalue, 0, 1);
	if (d) {
		d->exists = has;
		d->exists_ms = cache_now_ms();
		if (d->marker)
			has = 1;
	}
	pthread_mutex_unlock(&c->lock);
	return has ? 0 : -ENOENT;
}

int cache_part_make(struct cache *c, const char *table, const json_t *pvalue,
		    struct aws_err *err)
{
	struct cache_schema s;
	struct cdir *d;
	int rc;

	err_clear(err);
	rc = cache_table_schema(c, table, &s, err);
	if (rc)
		return rc;
	if (!s.has_sk)
		return -EPERM;
	rc = cache_part_stat(c, table, pvalue, err);
	if (rc == 0)
		return -EEXIST;
	if (rc != -ENOENT)
		return rc;
	pthread_mutex_lock(&c->lock);
	d = cdir_get(c, table, pvalue, 0, 1);
	if (d)
		d->marker = 1;
	pthread_mutex_unlock(&c->lock);
	return d ? 0 : -ENOMEM;
}

int cache_part_remove(struct cache *c, const char *table,
		      const json_t *pvalue, struct aws_err *err)
{
	struct cache_schema s;
	struct cdir *d, *td;
	struct dbuf pid;
	int rc, has = 0;

	err_clear(err);
	rc = cache_table_schema(c, table, &s, err);
	if (rc)
		return rc;
	if (!s.has_sk)
		return -ENOTDIR;
	/* Always asked: rmdir must not hide items written elsewhere. */
	rc = part_probe(c, table, &s, pvalue, &has, err);
	if (rc)
		return rc;
	if (has)
		return -ENOTEMPTY;
	dbuf_init(&pid, DBUF_CAP_SMALL);
	pthread_mutex_lock(&c->lock);
	d = cdir_get(c, table, pvalue, 0, 0);
	if (d) {
		d->marker = 0;
		d->exists = 0;
		d->exists_ms = cache_now_ms();
	}
	td = cdir_get(c, table, NULL, 1, 0);
	if (td && !cache_value_id(pvalue, &pid))
		json_decref(cmap_take(td->members, pid.ptr, dbuf_len(&pid)));
	pthread_mutex_unlock(&c->lock);
	dbuf_free(&pid);
	return 0;
}

/* ---- items and scratch files -------------------------------------------- */

int cache_scratch_save(struct cache *c, const char *path, const char *table,
		       const json_t *key, unsigned flags, struct dbuf *why,
		       struct aws_err *err)
{
	struct cache_schema s;
	struct cache_scratch *ref = NULL;
	struct dbuf text;
	json_t *shint = NULL, *h = NULL, *rec, *item = NULL;
	struct cache_stat st;
	int rc;

	err_clear(err);
	dbuf_init(&text, DBUF_CAP_BODY);
	rc = cache_table_schema(c, table, &s, err);
	if (rc)
		goto out;
	rc = cache_scratch_snapshot(c, path, &text, &shint, &ref);
	if (rc)
		goto out;
	/* The key's own memory first (sed -i read that file), then the
	 * types the scratch file came with. */
	rec = cache_hint_get(c, table, &s, key);
	h = hint_merge(shint, rec);
	json_decref(rec);
	if (blank(dbuf_str(&text), dbuf_len(&text))) {
		/* An empty file may make a new item, never empty one. */
		rc = cache_item_stat(c, table, key, &st, err);
		if (rc == -ENOENT)
			flags |= CACHE_SAVE_NEW;
		else if (rc)
			goto out;
	}
	rc = item_from_text(c, table, &s, key, dbuf_str(&text),
			    dbuf_len(&text), h, flags, &item, why);
	if (!rc)
		rc = item_put(c, table, &s, key, item, NULL, flags, err);
	if (!rc)
		cache_scratch_unlink_if(c, path, ref);
out:
	if (ref)
		cache_scratch_put(ref);
	json_decref(item);
	json_decref(h);
	json_decref(shint);
	dbuf_free(&text);
	return rc;
}

int cache_item_to_scratch(struct cache *c, const char *table,
			  const json_t *key, const char *path,
			  struct aws_err *err)
{
	struct cache_schema s;
	struct cache_scratch *sf = NULL;
	struct rendered rd;
	json_t *item = NULL;
	int rc;

	err_clear(err);
	memset(&rd, 0, sizeof(rd));
	rc = cache_table_schema(c, table, &s, err);
	if (rc)
		return rc;
	/* The text as it is now, not as last listed. */
	rc = current_item(c, table, key, &item, err);
	if (rc)
		return rc;
	rc = render_take(c, json_incref(item), &rd);
	if (!rc)
		rc = cache_scratch_make(rd.text, rd.len, item, &sf);
	if (rc)
		goto out;
	rc = item_delete(c, table, &s, key, item, err);
	if (rc)
		goto out;
	rc = cache_scratch_install(c, path, sf);
	sf = NULL;
out:
	if (sf)
		cache_scratch_put(sf);
	rendered_free(&rd);
	json_decref(item);
	return rc;
}

void cache_note_replayed(void *ctx, const char *table,
			 const struct cache_schema *s, const json_t *key,
			 const json_t *item, const char *dst_table,
			 const struct cache_schema *ds, const json_t *dst_key)
{
	struct cache *c = ctx;

	if (dst_table) {
		note_deleted(c, table, s, key, NULL);
		note_written(c, dst_table, ds, dst_key, (json_t *)item);
	} else if (item) {
		note_written(c, table, s, key, (json_t *)item);
	} else {
		note_deleted(c, table, s, key, NULL);
	}
}
