/* map: a hash map from byte strings to pointers, private to cache/.
 * Not thread-safe: the caller's lock protects it. */
#ifndef DYNFS_CACHE_MAP_H
#define DYNFS_CACHE_MAP_H

#include <stddef.h>

struct cmap;

typedef void (*cmap_free_fn)(void *val);

/* free_val (may be NULL) releases values when the map is freed. */
int cmap_new(struct cmap **out, cmap_free_fn free_val);
void cmap_free(struct cmap *m);

void *cmap_get(const struct cmap *m, const void *key, size_t len);
/* Insert or replace; the old value (if any) is freed with free_val. */
int cmap_put(struct cmap *m, const void *key, size_t len, void *val);
/* Remove and return the value, not freed; NULL when absent. */
void *cmap_take(struct cmap *m, const void *key, size_t len);
size_t cmap_count(const struct cmap *m);

/* Iteration: start with it = 0 and call until it returns 0.  The map must
 * not change during a walk. */
struct cmap_iter {
	size_t bucket;
	void *node;
};
int cmap_next(const struct cmap *m, struct cmap_iter *it, const void **key,
	      size_t *len, void **val);

/* The FNV-1a hash the map uses, also used for content hashes. */
unsigned long long cmap_hash(const void *data, size_t len);

#endif
