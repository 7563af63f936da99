/* The FUSE operations.  The tree is
 *   /              the mount
 *   /tables/       one directory per DynamoDB table
 *   /tables/NAME/  the table (items come with the filesystem issue)
 * The layer knows paths and FUSE; everything remote goes through cache/. */
#include "fs/dynfs.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/log.h"

static struct dynfs *dynfs_get(void)
{
	return fuse_get_context()->private_data;
}

/* Log a failed remote operation once, in the person's words. */
static int dynfs_fail(const char *what, const char *path, int rc,
		      const struct aws_err *err)
{
	char desc[700];

	if (rc != -ENOENT)
		log_msg(LOG_LVL_ERROR, "%s %s: %s", what, path,
			err && (err->type[0] || err->transport)
				? awserr_describe(err, desc, sizeof(desc))
				: strerror(-rc));
	return rc;
}

static void dynfs_dir_stat(struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFDIR | 0755;
	st->st_nlink = 2;
	st->st_uid = fuse_get_context()->uid;
	st->st_gid = fuse_get_context()->gid;
}

/* "tables/NAME" → NAME; NULL when path is not a table directory. */
static const char *dynfs_table_of(const char *path)
{
	const char *t;

	if (strncmp(path, "/tables/", 8))
		return NULL;
	t = path + 8;
	if (!*t || strchr(t, '/'))
		return NULL;
	return t;
}

static void *dynfs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	(void)conn;
	/* Attributes and entries are cached by the kernel for cache_ttl;
	 * listings above already trust a snapshot that long. */
	cfg->entry_timeout = 1.0;
	cfg->attr_timeout = 1.0;
	cfg->negative_timeout = 0;
	cfg->use_ino = 0;
	return dynfs_get();
}

static int dynfs_getattr(const char *path, struct stat *st,
			 struct fuse_file_info *fi)
{
	struct dynfs *fs = dynfs_get();
	struct aws_err err;
	const char *table;
	int rc;

	(void)fi;
	if (!strcmp(path, "/") || !strcmp(path, "/tables")) {
		dynfs_dir_stat(st);
		return 0;
	}
	table = dynfs_table_of(path);
	if (!table)
		return -ENOENT;
	rc = cache_table_exists(fs->cache, table, &err);
	if (rc)
		return dynfs_fail("lookup", path, rc, &err);
	dynfs_dir_stat(st);
	return 0;
}

struct dynfs_fill {
	void *buf;
	fuse_fill_dir_t filler;
};

static int dynfs_fill_name(void *ctx, const char *name)
{
	struct dynfs_fill *f = ctx;
	struct stat st;

	dynfs_dir_stat(&st);
	return f->filler(f->buf, name, &st, 0, 0) ? -ENOBUFS : 0;
}

static int dynfs_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
			 off_t off, struct fuse_file_info *fi,
			 enum fuse_readdir_flags flags)
{
	struct dynfs *fs = dynfs_get();
	struct dynfs_fill f = { buf, filler };
	struct aws_err err;
	int rc;

	(void)off;
	(void)fi;
	(void)flags;
	if (!strcmp(path, "/")) {
		filler(buf, ".", NULL, 0, 0);
		filler(buf, "..", NULL, 0, 0);
		filler(buf, "tables", NULL, 0, 0);
		return 0;
	}
	if (!strcmp(path, "/tables")) {
		filler(buf, ".", NULL, 0, 0);
		filler(buf, "..", NULL, 0, 0);
		rc = cache_tables(fs->cache, dynfs_fill_name, &f, &err);
		return rc ? dynfs_fail("list", path, rc, &err) : 0;
	}
	if (dynfs_table_of(path)) {
		rc = cache_table_exists(fs->cache, dynfs_table_of(path), &err);
		if (rc)
			return dynfs_fail("list", path, rc, &err);
		filler(buf, ".", NULL, 0, 0);
		filler(buf, "..", NULL, 0, 0);
		return 0;
	}
	return -ENOENT;
}

const struct fuse_operations dynfs_ops = {
	.init = dynfs_init,
	.getattr = dynfs_getattr,
	.readdir = dynfs_readdir,
};
