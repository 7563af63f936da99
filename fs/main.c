/* dynfs: mount an AWS account's DynamoDB tables as a filesystem.
 *
 * main() parses options, resolves region, credentials and endpoint, and
 * makes one ListTables call before anything is mounted, so that every
 * mistake is one line on stderr and exit status 1 rather than a mount
 * that fails later. */
#include "fs/dynfs.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fuse_log.h>
#include <fuse_lowlevel.h>

#include "fs/log.h"

#define DYNFS_DEFAULT_CACHE_TTL 5
#define DYNFS_DEFAULT_WRITEBACK_DELAY 500 /* ms */
#define DYNFS_DEFAULT_SCAN_SEGMENTS 4
#define DYNFS_DEFAULT_CACHE_SIZE 256 /* MB */
/* How long start-up waits for a replayed journal, and unmount for the
 * queue, before leaving the rest to the next mount. */
#define DYNFS_REPLAY_WAIT_MS 30000

#define DYNFS_OPT(t, p) { t, offsetof(struct dynfs_opts, p), 1 }

enum { DYNFS_KEY_RO };

/* dynfs's own -o options; the rest go to libfuse, which rejects unknown
 * ones in fuse_new(), still before anything is mounted.  "ro" is read
 * here and also left for libfuse, which mounts read-only. */
static const struct fuse_opt dynfs_opt_spec[] = {
	DYNFS_OPT("region=%s", region),
	DYNFS_OPT("profile=%s", profile),
	DYNFS_OPT("endpoint=%s", endpoint),
	DYNFS_OPT("cache_ttl=%u", cache_ttl),
	DYNFS_OPT("json=%s", json),
	DYNFS_OPT("cache_dir=%s", cache_dir),
	DYNFS_OPT("writeback_delay=%u", writeback_delay),
	DYNFS_OPT("scan_segments=%d", scan_segments),
	DYNFS_OPT("cache_size=%u", cache_size),
	DYNFS_OPT("version_attr=%s", version_attr),
	DYNFS_OPT("strict_create", strict_create),
	FUSE_OPT_KEY("ro", DYNFS_KEY_RO),
	FUSE_OPT_END
};

static int dynfs_opt_proc(void *data, const char *arg, int key,
			  struct fuse_args *outargs)
{
	struct dynfs_opts *opts = data;

	(void)arg;
	(void)outargs;
	if (key == DYNFS_KEY_RO)
		opts->ro = 1;
	return 1; /* keep it for libfuse */
}

static void usage(const char *prog)
{
	printf("usage: %s [options] MOUNTPOINT\n\n"
	       "Mounts the DynamoDB tables of an AWS account as directories.\n\n"
	       "dynfs options:\n"
	       "    -o region=NAME         AWS region (else AWS_REGION, AWS_DEFAULT_REGION,\n"
	       "                           the profile's region)\n"
	       "    -o profile=NAME        profile of ~/.aws/config and ~/.aws/credentials\n"
	       "                           (else AWS_PROFILE, then \"default\")\n"
	       "    -o endpoint=URL        DynamoDB endpoint (else AWS_ENDPOINT_URL_DYNAMODB,\n"
	       "                           AWS_ENDPOINT_URL, https://dynamodb.REGION.amazonaws.com)\n"
	       "    -o cache_ttl=SECONDS   changes made elsewhere show within this time\n"
	       "                           (default %d; 0: no caching)\n"
	       "    -o json=plain|dynamodb item files as plain JSON (default) or as\n"
	       "                           DynamoDB's typed JSON\n"
	       "    -o ro                  read-only\n"
	       "    -o cache_dir=DIR       write-back journal and kept conflicts (default\n"
	       "                           $XDG_CACHE_HOME/dynfs/REGION-HASH, HASH of the endpoint)\n"
	       "    -o writeback_delay=MS  a closed file is sent within this (default %d)\n"
	       "    -o scan_segments=N     parallel Scan segments of a listing (default %d)\n"
	       "    -o cache_size=MB       memory for cached items and listings (default %d)\n"
	       "    -o version_attr=NAME   saves are conditional on this number attribute,\n"
	       "                           which each save increments (default: on the\n"
	       "                           whole item as last read)\n"
	       "    -o strict_create       a new file's item is sent alone, as a PutItem\n"
	       "                           conditional on its absence, not batched\n",
	       prog, DYNFS_DEFAULT_CACHE_TTL, DYNFS_DEFAULT_WRITEBACK_DELAY,
	       DYNFS_DEFAULT_SCAN_SEGMENTS, DYNFS_DEFAULT_CACHE_SIZE);
	apifs_opts_help();
	printf("\n");
}

/* Service words can hold newlines; the user gets exactly one line. */
static void one_line(char *s)
{
	for (; *s; s++)
		if (*s == '\n' || *s == '\r' || *s == '\t')
			*s = ' ';
}

static void die_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void die_line(const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	one_line(line);
	fprintf(stderr, "dynfs: %s\n", line);
}

/* libfuse's own messages (an unknown option, a busy mountpoint) get the
 * same "dynfs: " prefix, so every line names who is speaking.  libfuse
 * writes some lines in pieces, so pieces are gathered up to the newline. */
static pthread_mutex_t fuse_log_lock = PTHREAD_MUTEX_INITIALIZER; /* leaf */
static char fuse_log_buf[1024];

static void fuse_log_line(enum fuse_log_level level, const char *fmt,
			  va_list ap) __attribute__((format(printf, 2, 0)));

static void fuse_log_line(enum fuse_log_level level, const char *fmt,
			  va_list ap)
{
	size_t n;
	char *line = fuse_log_buf;

	(void)level;
	pthread_mutex_lock(&fuse_log_lock);
	n = strlen(line);
	vsnprintf(line + n, sizeof(fuse_log_buf) - n, fmt, ap);
	n = strlen(line);
	if (n == 0 || (line[n - 1] != '\n' && n < sizeof(fuse_log_buf) - 1))
		goto out;
	while (n && line[n - 1] == '\n')
		line[--n] = '\0';
	one_line(line);
	if (!strncmp(line, "fuse: unknown option", 20))
		fprintf(stderr, "dynfs: %s; see dynfs --help\n", line + 6);
	else
		log_msg(LOG_LVL_ERROR, "%s", line);
	line[0] = '\0';
out:
	pthread_mutex_unlock(&fuse_log_lock);
}

static int count_table(void *ctx, const char *name)
{
	(void)name;
	(*(unsigned *)ctx)++;
	return 0;
}

/* The one message for a failed first call: what failed, what to do. */
/* Where the rejected keys came from, in the words of the AWS docs. */
static const char *creds_origin(const char *source)
{
	if (!source)
		return "the provider chain";
	if (!strcmp(source, "env"))
		return "the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN)";
	if (!strcmp(source, "profile"))
		return "the shared credentials or config file";
	if (!strcmp(source, "process"))
		return "credential_process";
	return source;
}

static void explain_first_call(const struct dynfs *fs,
			       const struct aws_err *err, const char *source)
{
	char desc[700];

	if (awserr_is_auth(err) || err->status == 401 || err->status == 403)
		die_line("the endpoint rejected the credentials (%ld %s): %s; "
			 "check the access key, secret key and session token "
			 "that came from %s (profile '%s')", err->status,
			 err->type[0] ? err->type : "error",
			 err->message[0] ? err->message : "no message",
			 creds_origin(source),
			 awscfg_profile(fs->cfg));
	else if (err->transport)
		die_line("cannot reach %s (%s); check -o endpoint=, "
			 "AWS_ENDPOINT_URL_DYNAMODB and the network",
			 fs->ddb_endpoint, awserr_describe(err, desc, sizeof(desc)));
	else
		die_line("ListTables at %s failed (%s)", fs->ddb_endpoint,
			 awserr_describe(err, desc, sizeof(desc)));
}

static void cache_log(void *ctx, int error, const char *line)
{
	(void)ctx;
	log_msg(error ? LOG_LVL_ERROR : LOG_LVL_INFO, "%s", line);
}

/* -o cache_dir=, else one directory per endpoint and region under
 * $XDG_CACHE_HOME/dynfs, so a remount of the same account finds its
 * journal. */
static int cache_dir_resolve(struct dynfs *fs)
{
	const char *base = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	struct dbuf d;
	unsigned long h = 5381;
	const char *p;
	int rc;

	if (fs->opts.cache_dir) {
		fs->cache_dir = strdup(fs->opts.cache_dir);
		return fs->cache_dir ? 0 : -ENOMEM;
	}
	dbuf_init(&d, DBUF_CAP_SMALL);
	for (p = fs->ddb_endpoint; *p; p++)
		h = h * 33 + (unsigned char)*p;
	if (base && *base == '/')
		rc = dbuf_addf(&d, "%s/dynfs", base);
	else if (home && *home == '/')
		rc = dbuf_addf(&d, "%s/.cache/dynfs", home);
	else
		rc = -ENOENT;
	if (!rc)
		rc = dbuf_addf(&d, "/%s-%08lx", fs->region, h & 0xffffffffUL);
	if (rc) {
		die_line("no cache directory: set HOME, XDG_CACHE_HOME or "
			 "-o cache_dir=DIR");
		dbuf_free(&d);
		return rc;
	}
	fs->cache_dir = dbuf_take(&d, NULL);
	dbuf_free(&d);
	return fs->cache_dir ? 0 : -ENOMEM;
}

/* Everything up to and including the first ListTables.  0 or -errno, with
 * the one line already printed. */
static int dynfs_connect(struct dynfs *fs)
{
	struct http_opts hopts;
	struct svc_opts sopts;
	struct cache_opts copts;
	struct creds cr;
	struct aws_err err;
	struct dbuf why;
	unsigned ntables = 0;
	size_t replayed = 0;
	int rc;

	memset(&cr, 0, sizeof(cr));
	dbuf_init(&why, DBUF_CAP_SMALL);
	rc = awscfg_load(&fs->cfg, fs->opts.profile, &why);
	if (rc) {
		die_line("%s", dbuf_len(&why) ? dbuf_str(&why) : strerror(-rc));
		goto out;
	}
	fs->region = awscfg_region(fs->cfg, fs->opts.region);
	if (!fs->region || !*fs->region) {
		die_line("no region: set AWS_REGION or -o region=NAME");
		rc = -EINVAL;
		goto out;
	}
	rc = awscfg_endpoint(fs->cfg, fs->opts.endpoint, "DYNAMODB", "dynamodb",
			     fs->region, &fs->ddb_endpoint);
	if (rc) {
		die_line("bad DynamoDB endpoint: %s", strerror(-rc));
		goto out;
	}
	if (strncmp(fs->ddb_endpoint, "http://", 7) &&
	    strncmp(fs->ddb_endpoint, "https://", 8)) {
		die_line("bad DynamoDB endpoint '%s': it must start with "
			 "http:// or https://", fs->ddb_endpoint);
		rc = -EINVAL;
		goto out;
	}
	rc = creds_chain_new(&fs->creds, fs->cfg);
	if (rc) {
		die_line("cannot set up credentials: %s", strerror(-rc));
		goto out;
	}
	dbuf_reset(&why);
	rc = creds_get(fs->creds, &cr, &why);
	if (rc) {
		die_line("%s", dbuf_len(&why) ? dbuf_str(&why) : strerror(-rc));
		goto out;
	}
	log_msg(LOG_LVL_DEBUG, "region %s, endpoint %s, credentials from %s",
		fs->region, fs->ddb_endpoint, cr.source ? cr.source : "?");

	memset(&hopts, 0, sizeof(hopts));
	rc = http_client_new(&fs->http, &hopts);
	if (rc) {
		die_line("cannot start HTTP: %s", strerror(-rc));
		goto out;
	}
	memset(&sopts, 0, sizeof(sopts));
	sopts.endpoint = fs->ddb_endpoint;
	sopts.region = fs->region;
	sopts.service = "dynamodb";
	sopts.flags = SVC_CHECK_CRC32;
	rc = svc_new(&fs->ddb_svc, fs->http, fs->creds, &sopts);
	if (rc) {
		die_line("bad DynamoDB endpoint '%s': %s", fs->ddb_endpoint,
			 strerror(-rc));
		goto out;
	}
	svc_set_log(fs->ddb_svc, log_request, NULL);
	rc = ddb_new(&fs->ddb, fs->ddb_svc);
	if (rc) {
		die_line("%s", strerror(-rc));
		goto out;
	}
	rc = ddb_list_tables(fs->ddb, 1, count_table, &ntables, &err);
	if (rc) {
		explain_first_call(fs, &err, cr.source);
		goto out;
	}
	memset(&copts, 0, sizeof(copts));
	dynfs_split_ttl(fs->opts.cache_ttl, &fs->kernel_ttl, &copts.ttl_ms);
	copts.fmt = fs->fmt;
	copts.mount_time = fs->mount_time;
	copts.scan_segments = fs->opts.scan_segments;
	copts.cache_size_mb = fs->opts.cache_size;
	copts.writeback_delay_ms = fs->opts.writeback_delay;
	copts.version_attr = fs->opts.version_attr;
	copts.strict_create = fs->opts.strict_create;
	rc = cache_dir_resolve(fs);
	if (rc)
		goto out;
	copts.cache_dir = fs->cache_dir;
	rc = cache_new(&fs->cache, fs->ddb, &copts);
	if (rc) {
		die_line("%s", strerror(-rc));
		goto out;
	}
	cache_set_log(fs->cache, cache_log, NULL);
	dbuf_reset(&why);
	rc = cache_start(fs->cache, DYNFS_REPLAY_WAIT_MS, &replayed, &why);
	if (rc) {
		die_line("write-back journal in %s: %s", fs->cache_dir,
			 dbuf_len(&why) ? dbuf_str(&why) : strerror(-rc));
		goto out;
	}
	if (replayed)
		log_msg(LOG_LVL_INFO, "replayed %zu writes left in %s/journal "
			"by an earlier mount", replayed, fs->cache_dir);
	dbuf_reset(&why);
	rc = apifs_new(&fs->apifs, fs->apifs_opts, fs->cfg, fs->region,
		       fs->creds, fs->http, fs->uid, fs->gid, fs->mount_time,
		       &why);
	if (rc)
		die_line("%s", dbuf_len(&why) ? dbuf_str(&why) : strerror(-rc));
out:
	creds_clear(&cr);
	dbuf_free(&why);
	return rc;
}

static void dynfs_teardown(struct dynfs *fs)
{
	apifs_free(fs->apifs);
	apifs_opts_free(fs->apifs_opts);
	cache_free(fs->cache);
	ddb_free(fs->ddb);
	svc_free(fs->ddb_svc);
	http_client_free(fs->http);
	creds_chain_free(fs->creds);
	awscfg_free(fs->cfg);
	free(fs->ddb_endpoint);
	free(fs->cache_dir);
	free(fs->opts.cache_dir);
	free(fs->opts.version_attr);
	free(fs->opts.region);
	free(fs->opts.profile);
	free(fs->opts.endpoint);
	free(fs->opts.json);
	pthread_mutex_destroy(&fs->files_lock);
}

/* -o json=: the format of item files. */
static int dynfs_check_opts(struct dynfs *fs)
{
	const char *j = fs->opts.json;

	if (!j || !strcmp(j, "plain")) {
		fs->fmt = DDBJSON_PLAIN;
	} else if (!strcmp(j, "dynamodb")) {
		fs->fmt = DDBJSON_TYPED;
	} else {
		die_line("bad -o json=%s: use json=plain or json=dynamodb", j);
		return -EINVAL;
	}
	if (fs->opts.writeback_delay > 60000) {
		die_line("bad -o writeback_delay=%u: at most 60000 ms",
			 fs->opts.writeback_delay);
		return -EINVAL;
	}
	if (fs->opts.scan_segments < 1 || fs->opts.scan_segments > 64) {
		die_line("bad -o scan_segments=%d: from 1 to 64",
			 fs->opts.scan_segments);
		return -EINVAL;
	}
	if (fs->opts.cache_size < 1) {
		die_line("bad -o cache_size=%u: at least 1 (MB)",
			 fs->opts.cache_size);
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts cmd;
	struct dynfs fs;
	struct fuse *fuse = NULL;
	int mounted = 0, handlers = 0;
	int ret = 1;

	/* glibc gives threads arenas of their own, up to 8 per core: FUSE
	 * workers, Scan segments, write-back workers.  Memory freed into
	 * one arena serves only allocations from it, so a listing's churn
	 * spread over many arenas leaves RSS well above what the cache
	 * counts; two arenas keep it close (docs/cache-memory.md).  dynfs
	 * waits on the network far more than on malloc's locks. */
	mallopt(M_ARENA_MAX, 2);
	memset(&fs, 0, sizeof(fs));
	memset(&cmd, 0, sizeof(cmd));
	pthread_mutex_init(&fs.files_lock, NULL);
	fs.uid = getuid();
	fs.gid = getgid();
	fs.mount_time = time(NULL);
	fuse_set_log_func(fuse_log_line);
	fs.opts.cache_ttl = DYNFS_DEFAULT_CACHE_TTL;
	fs.opts.writeback_delay = DYNFS_DEFAULT_WRITEBACK_DELAY;
	fs.opts.scan_segments = DYNFS_DEFAULT_SCAN_SEGMENTS;
	fs.opts.cache_size = DYNFS_DEFAULT_CACHE_SIZE;
	if (apifs_opts_parse(&args, &fs.apifs_opts) == -1)
		goto out;
	if (fuse_opt_parse(&args, &fs.opts, dynfs_opt_spec,
			   dynfs_opt_proc) == -1)
		goto out;
	if (fuse_parse_cmdline(&args, &cmd) != 0)
		goto out;
	if (cmd.show_version) {
		printf("dynfs %s\n", DYNFS_VERSION);
		printf("FUSE library version %s\n", fuse_pkgversion());
		ret = 0;
		goto out;
	}
	if (cmd.show_help) {
		usage(argv[0]);
		printf("FUSE options:\n");
		fuse_cmdline_help();
		fuse_lib_help(&args);
		ret = 0;
		goto out;
	}
	if (!cmd.mountpoint) {
		die_line("no mountpoint: usage: %s [options] MOUNTPOINT "
			 "(see --help)", argv[0]);
		goto out;
	}
	log_setup(cmd.debug, 0);
	if (dynfs_check_opts(&fs))
		goto out;

	/* fuse_new() checks the remaining options, so an unknown one fails
	 * here, before any request or mount. */
	fuse = fuse_new(&args, &dynfs_ops, sizeof(dynfs_ops), &fs);
	if (!fuse)
		goto out;
	if (dynfs_connect(&fs))
		goto out;
	if (fuse_mount(fuse, cmd.mountpoint) != 0)
		goto out;
	mounted = 1;
	if (fuse_daemonize(cmd.foreground) != 0)
		goto out;
	if (!cmd.foreground)
		log_setup(cmd.debug, 1);
	if (fuse_set_signal_handlers(fuse_get_session(fuse)) != 0)
		goto out;
	handlers = 1;
	if (cmd.singlethread)
		ret = fuse_loop(fuse);
	else
		ret = fuse_loop_mt(fuse, cmd.clone_fd);
	ret = ret ? 1 : 0;
out:
	if (handlers)
		fuse_remove_signal_handlers(fuse_get_session(fuse));
	if (mounted)
		fuse_unmount(fuse);
	if (fuse)
		fuse_destroy(fuse);
	dynfs_teardown(&fs);
	free(cmd.mountpoint);
	fuse_opt_free_args(&args);
	return ret;
}
