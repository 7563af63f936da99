#include "fs/path.h"

#include <errno.h>
#include <string.h>

/* Copy the component at *p (up to '/' or the end) into dst. */
static int take_component(const char **p, char *dst)
{
	const char *s = *p, *e = strchr(s, '/');
	size_t len = e ? (size_t)(e - s) : strlen(s);

	if (!len)
		return -ENOENT;
	if (len > PATH_NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(dst, s, len);
	dst[len] = '\0';
	*p = e ? e + 1 : s + len;
	return e ? 1 : 0; /* 1: more follows */
}

int path_parse(const char *path, struct path *out)
{
	const char *p = path;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!path || *p != '/')
		return -ENOENT;
	p++;
	if (!*p) {
		out->kind = PATH_ROOT;
		return 0;
	}
	if (strncmp(p, "tables", 6) || (p[6] && p[6] != '/'))
		return -ENOENT;
	p += 6;
	if (!*p || !p[1]) {
		out->kind = PATH_TABLES;
		return *p && p[1] ? -ENOENT : 0;
	}
	p++;
	rc = take_component(&p, out->table);
	if (rc <= 0) {
		out->kind = PATH_TABLE;
		return rc;
	}
	rc = take_component(&p, out->name);
	if (rc <= 0) {
		out->kind = PATH_CHILD;
		return rc;
	}
	memcpy(out->dir, out->name, sizeof(out->dir));
	rc = take_component(&p, out->name);
	if (rc < 0)
		return rc;
	if (rc > 0)
		return -ENOENT; /* nothing lives deeper */
	out->kind = PATH_GRANDCHILD;
	return 0;
}

int path_role(const struct path *p, int has_sk)
{
	if (p->kind == PATH_GRANDCHILD && !has_sk)
		return -ENOENT;
	if (p->kind != PATH_CHILD && p->kind != PATH_GRANDCHILD)
		return -EINVAL;
	if (p->kind == PATH_CHILD && has_sk)
		return p->name[0] == '.' ? PATH_ROLE_SCRATCH : PATH_ROLE_PART;
	return keyname_is_item(p->name) ? PATH_ROLE_ITEM : PATH_ROLE_SCRATCH;
}

enum keyname_type path_keytype(char type)
{
	return type == 'N' ? KEYNAME_N : type == 'B' ? KEYNAME_B : KEYNAME_S;
}

int path_decode(const char *name, int is_dir, char type,
		struct keyname_decoded *out)
{
	int rc;

	if (is_dir) {
		if (name[0] == '.')
			rc = -EINVAL;
		else
			rc = keyname_decode(path_keytype(type), name,
					    strlen(name), KEYNAME_MAX_DIR, out);
	} else {
		rc = keyname_decode_item(path_keytype(type), name, out);
	}
	if (rc == -ENAMETOOLONG)
		rc = -EINVAL;
	return rc;
}

int path_encode(const json_t *value, int is_dir, char type, struct dbuf *out)
{
	if (is_dir)
		return keyname_encode(path_keytype(type), value,
				      KEYNAME_MAX_DIR, out);
	return keyname_encode_item(path_keytype(type), value, out);
}

int path_matches(const json_t *value, int is_dir, char type,
		 const char *name)
{
	size_t len = strlen(name);

	if (!is_dir) {
		if (!keyname_is_item(name))
			return 0;
		len -= KEYNAME_ITEM_SUFFIX_LEN;
	}
	return keyname_matches(path_keytype(type), value,
			       is_dir ? KEYNAME_MAX_DIR : KEYNAME_MAX_STEM,
			       name, len) == 1;
}

json_t *path_key_new(const struct cache_schema *s, const json_t *pv,
		     const json_t *sv)
{
	json_t *k = json_object();

	if (!k || !pv || json_object_set(k, s->pk.name, (json_t *)pv) ||
	    (s->has_sk &&
	     (!sv || json_object_set(k, s->sk.name, (json_t *)sv)))) {
		json_decref(k);
		return NULL;
	}
	return k;
}
