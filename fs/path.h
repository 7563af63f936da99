/* path: what a path of the mount names, without FUSE or requests.
 *
 *   /                   the root
 *   /tables             the tables
 *   /tables/T           a table
 *   /tables/T/N         a child: an item or scratch file of a table without
 *                       sort key, or a partition or scratch file of one with
 *   /tables/T/P/N       a grandchild: an item or scratch file of partition P
 *
 * and how names become key values and back (fs/keyname does the codec). */
#ifndef DYNFS_PATH_H
#define DYNFS_PATH_H

#include <jansson.h>

#include "backend/dbuf.h"
#include "cache/cache.h"
#include "fs/keyname.h"

enum path_kind {
	PATH_ROOT,
	PATH_TABLES,
	PATH_TABLE,
	PATH_CHILD,
	PATH_GRANDCHILD,
};

#define PATH_NAME_MAX 255

struct path {
	enum path_kind kind;
	char table[PATH_NAME_MAX + 1];
	char dir[PATH_NAME_MAX + 1];  /* PATH_GRANDCHILD: the partition */
	char name[PATH_NAME_MAX + 1]; /* PATH_CHILD, PATH_GRANDCHILD */
};

/* -ENOENT for a path outside the tree above (apis/ and functions/ are
 * reserved), -ENAMETOOLONG for a component over 255 bytes. */
int path_parse(const char *path, struct path *out);

enum path_role {
	PATH_ROLE_ITEM,    /* NAME.json: an item */
	PATH_ROLE_SCRATCH, /* a dot-name, or any name not ending in .json */
	PATH_ROLE_PART,    /* a table's child when the table has a sort key */
};

/* The role of a child or grandchild's name in a table with (has_sk) or
 * without a sort key; -ENOENT for a grandchild of a table without one.
 * In a table with a sort key every non-dot child is PATH_ROLE_PART: a
 * scratch file of that name is looked for first by the caller, and a file
 * created there is always a scratch file. */
int path_role(const struct path *p, int has_sk);

/* The codec type of a key attribute type letter ('S', 'N', 'B'). */
enum keyname_type path_keytype(char type);

/* Decode an item name (NAME.json) or a partition directory name into a
 * value of the given type.  0 (out->partial tells a long-key name), or
 * -EINVAL when the name is no valid key. */
int path_decode(const char *name, int is_dir, char type,
		struct keyname_decoded *out);

/* The name an entry of a listing shows: NAME.json for an item,
 * NAME for a partition directory. */
int path_encode(const json_t *value, int is_dir, char type, struct dbuf *out);

/* 1 when value is the one whose (long-key) name is name. */
int path_matches(const json_t *value, int is_dir, char type,
		 const char *name);

/* The typed key object {pk: pv} or {pk: pv, sk: sv}; new reference. */
json_t *path_key_new(const struct cache_schema *s, const json_t *pv,
		     const json_t *sv);

#endif
