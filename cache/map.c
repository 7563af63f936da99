#include "cache/map.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct cnode {
	struct cnode *next;
	unsigned long long hash;
	void *val;
	size_t len;
	char key[]; /* len bytes */
};

struct cmap {
	struct cnode **b;
	size_t nb;
	size_t count;
	cmap_free_fn free_val;
};

#define CMAP_MIN_BUCKETS 16

unsigned long long cmap_hash(const void *data, size_t len)
{
	const unsigned char *p = data;
	unsigned long long h = 1469598103934665603ULL;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

int cmap_new(struct cmap **out, cmap_free_fn free_val)
{
	struct cmap *m = calloc(1, sizeof(*m));

	*out = NULL;
	if (!m)
		return -ENOMEM;
	m->b = calloc(CMAP_MIN_BUCKETS, sizeof(*m->b));
	if (!m->b) {
		free(m);
		return -ENOMEM;
	}
	m->nb = CMAP_MIN_BUCKETS;
	m->free_val = free_val;
	*out = m;
	return 0;
}

void cmap_free(struct cmap *m)
{
	struct cnode *n, *next;
	size_t i;

	if (!m)
		return;
	for (i = 0; i < m->nb; i++) {
		for (n = m->b[i]; n; n = next) {
			next = n->next;
			if (m->free_val)
				m->free_val(n->val);
			free(n);
		}
	}
	free(m->b);
	free(m);
}

static struct cnode **cmap_slot(const struct cmap *m, const void *key,
				size_t len, unsigned long long h)
{
	struct cnode **pp = &m->b[h % m->nb];

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->hash == h && (*pp)->len == len &&
		    !memcmp((*pp)->key, key, len))
			break;
	return pp;
}

void *cmap_get(const struct cmap *m, const void *key, size_t len)
{
	struct cnode **pp = cmap_slot(m, key, len, cmap_hash(key, len));

	return *pp ? (*pp)->val : NULL;
}

/* Doubling keeps chains short; a failed allocation only makes them
 * longer, so it is not an error. */
static void cmap_grow(struct cmap *m)
{
	struct cnode **nb, *n, *next;
	size_t i, size = m->nb * 2;

	if (size < m->nb)
		return;
	nb = calloc(size, sizeof(*nb));
	if (!nb)
		return;
	for (i = 0; i < m->nb; i++) {
		for (n = m->b[i]; n; n = next) {
			next = n->next;
			n->next = nb[n->hash % size];
			nb[n->hash % size] = n;
		}
	}
	free(m->b);
	m->b = nb;
	m->nb = size;
}

int cmap_put(struct cmap *m, const void *key, size_t len, void *val)
{
	unsigned long long h = cmap_hash(key, len);
	struct cnode **pp = cmap_slot(m, key, len, h);
	struct cnode *n;

	if (*pp) {
		if (m->free_val && (*pp)->val != val)
			m->free_val((*pp)->val);
		(*pp)->val = val;
		return 0;
	}
	n = malloc(sizeof(*n) + len + 1);
	if (!n)
		return -ENOMEM;
	n->next = NULL;
	n->hash = h;
	n->val = val;
	n->len = len;
	memcpy(n->key, key, len);
	n->key[len] = '\0';
	*pp = n;
	if (++m->count > m->nb)
		cmap_grow(m);
	return 0;
}

void *cmap_take(struct cmap *m, const void *key, size_t len)
{
	struct cnode **pp = cmap_slot(m, key, len, cmap_hash(key, len));
	struct cnode *n = *pp;
	void *val;

	if (!n)
		return NULL;
	*pp = n->next;
	val = n->val;
	free(n);
	m->count--;
	return val;
}

size_t cmap_count(const struct cmap *m)
{
	return m->count;
}

int cmap_next(const struct cmap *m, struct cmap_iter *it, const void **key,
	      size_t *len, void **val)
{
	struct cnode *n = it->node;

	if (n)
		n = n->next;
	while (!n && it->bucket < m->nb)
		n = m->b[it->bucket++];
	it->node = n;
	if (!n)
		return 0;
	if (key)
		*key = n->key;
	if (len)
		*len = n->len;
	if (val)
		*val = n->val;
	return 1;
}
