/* test_sigv4: the signer against AWS's own test vectors, plus the cache,
 * presigning and error paths.
 *
 * Every case found under $DYNFS_SIGV4_VECTORS becomes its own cmocka test
 * named after its directory, so a failure names the case; each case checks
 * every expected file and prints every mismatch before failing.  A missing
 * or empty vector directory is a failure, never a skip: a signer that is
 * silently not tested is worse than none. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "backend/dbuf.h"
#include "backend/sigv4.h"

/* Vector files are a few KiB; this only bounds a broken file. */
#define FILE_CAP (1024u * 1024)

/* The fixed parameters of both suites (README.md beside the vectors). */
#define V_ACCESS "AKIDEXAMPLE"
#define V_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define V_REGION "us-east-1"
#define V_SERVICE "service"
#define V_TIME 1440938160 /* 2015-08-30T12:36:00Z */

enum suite { SUITE_V4, SUITE_LEGACY };

struct vcase {
	enum suite suite;
	char *dir;   /* the case directory */
	char *name;  /* its last path component */
	char *label; /* e.g. "legacy/normalize-path/get-space" */
};

static const char *vector_root;
static struct vcase *cases;
static size_t ncases, nv4, nlegacy;
static int discovery_error;

/* ---- files and request parsing ------------------------------------------ */

static int read_file(const char *path, struct dbuf *out)
{
	char chunk[4096];
	size_t n;
	FILE *f;
	int rc = 0;

	f = fopen(path, "rb");
	if (!f)
		return -errno;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		rc = dbuf_add(out, chunk, n);
		if (rc)
			goto out;
	}
	if (ferror(f))
		rc = -EIO;
out:
	fclose(f);
	return rc;
}

static int read_path(struct dbuf *out, const char *dir, const char *name,
		     const char *ext)
{
	struct dbuf path;
	int rc;

	dbuf_init(&path, 4096);
	rc = dbuf_addf(&path, "%s/%s%s", dir, name, ext);
	if (!rc)
		rc = read_file(dbuf_str(&path), out);
	dbuf_free(&path);
	return rc;
}

static bool file_exists(const char *dir, const char *name, const char *ext)
{
	struct dbuf path;
	struct stat st;
	bool ok;

	dbuf_init(&path, 4096);
	ok = !dbuf_addf(&path, "%s/%s%s", dir, name, ext) &&
	     stat(dbuf_str(&path), &st) == 0 && S_ISREG(st.st_mode);
	dbuf_free(&path);
	return ok;
}

/* A request file parsed in place: every string points into raw. */
struct parsed_req {
	struct dbuf raw;
	struct sigv4_header *h;
	struct sigv4_request req;
};

/* request.txt / .req: "METHOD TARGET HTTP/1.1", header lines (one starting
 * with white space continues the previous header: the line break stays in
 * the value, as on the wire), a blank line, then the body. */
static int parse_request(struct parsed_req *pr)
{
	char *p, *end, *eol, *line_end, *target, *ver, *q, *colon;
	char *value_nul = NULL;
	size_t max = 1, n = 0;

	p = pr->raw.ptr;
	if (!p)
		return -EINVAL;
	end = p + pr->raw.len;
	for (q = p; q < end; q++)
		max += *q == '\n';
	pr->h = calloc(max, sizeof(*pr->h));
	if (!pr->h)
		return -ENOMEM;

	eol = memchr(p, '\n', (size_t)(end - p));
	line_end = eol ? eol : end;
	*line_end = '\0';
	target = strchr(p, ' ');
	if (!target)
		return -EINVAL;
	*target++ = '\0';
	/* The path may hold spaces ("/example space/"): the version is the
	 * last " HTTP/" on the line. */
	ver = NULL;
	for (q = strstr(target, " HTTP/"); q; q = strstr(q + 1, " HTTP/"))
		ver = q;
	if (!ver)
		return -EINVAL;
	*ver = '\0';
	pr->req.method = p;
	q = strchr(target, '?');
	if (q) {
		*q = '\0';
		pr->req.query = q + 1;
	}
	pr->req.path = target;

	p = eol ? eol + 1 : end;
	while (p < end) {
		if (*p == '\n') {
			pr->req.body = p + 1;
			pr->req.body_len = (size_t)(end - p - 1);
			break;
		}
		eol = memchr(p, '\n', (size_t)(end - p));
		line_end = eol ? eol : end;
		if (*p == ' ' || *p == '\t') {
			if (!value_nul)
				return -EINVAL;
			/* Extend the previous value over this line. */
			*value_nul = '\n';
		} else {
			colon = memchr(p, ':', (size_t)(line_end - p));
			if (!colon)
				return -EINVAL;
			*colon = '\0';
			pr->h[n].name = p;
			pr->h[n].value = colon + 1;
			n++;
		}
		*line_end = '\0';
		value_nul = line_end;
		p = eol ? eol + 1 : end;
	}
	pr->req.headers = pr->h;
	pr->req.nheaders = n;
	return 0;
}

static int load_request(struct parsed_req *pr, const char *dir,
			const char *name, const char *ext)
{
	int rc;

	memset(pr, 0, sizeof(*pr));
	dbuf_init(&pr->raw, FILE_CAP);
	rc = read_path(&pr->raw, dir, name, ext);
	if (!rc)
		rc = parse_request(pr);
	return rc;
}

static void free_request(struct parsed_req *pr)
{
	dbuf_free(&pr->raw);
	free(pr->h);
}

/* ---- context.json -------------------------------------------------------- */

struct vctx {
	json_t *root;
	struct sigv4_params p;
	unsigned expires;
};

static bool json_flag(json_t *root, const char *key, bool dflt)
{
	json_t *v = json_object_get(root, key);

	return v ? json_is_true(v) : dflt;
}

static int load_context(struct vctx *c, const char *dir)
{
	struct dbuf path;
	json_t *cred, *v;
	struct tm tm;
	const char *ts;
	int rc = -EINVAL;

	memset(c, 0, sizeof(*c));
	dbuf_init(&path, 4096);
	if (dbuf_addf(&path, "%s/context.json", dir))
		goto out;
	c->root = json_load_file(dbuf_str(&path), 0, NULL);
	if (!c->root)
		goto out;
	cred = json_object_get(c->root, "credentials");
	c->p.access_key =
		json_string_value(json_object_get(cred, "access_key_id"));
	c->p.secret_key =
		json_string_value(json_object_get(cred, "secret_access_key"));
	c->p.session_token =
		json_string_value(json_object_get(cred, "token"));
	c->p.region = json_string_value(json_object_get(c->root, "region"));
	c->p.service = json_string_value(json_object_get(c->root, "service"));
	ts = json_string_value(json_object_get(c->root, "timestamp"));
	v = json_object_get(c->root, "expiration_in_seconds");
	if (!c->p.access_key || !c->p.secret_key || !c->p.region ||
	    !c->p.service || !ts || !json_is_integer(v))
		goto out;
	c->expires = (unsigned)json_integer_value(v);

	memset(&tm, 0, sizeof(tm));
	if (sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2dZ", &tm.tm_year, &tm.tm_mon,
		   &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
		goto out;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	c->p.now = timegm(&tm);

	if (!json_flag(c->root, "normalize", true))
		c->p.flags |= SIGV4_NO_NORMALIZE;
	if (json_flag(c->root, "sign_body", false))
		c->p.flags |= SIGV4_SIGN_BODY;
	if (json_flag(c->root, "omit_session_token", false))
		c->p.flags |= SIGV4_OMIT_TOKEN;
	rc = 0;
out:
	if (rc) {
		json_decref(c->root);
		c->root = NULL;
	}
	dbuf_free(&path);
	return rc;
}

static void free_context(struct vctx *c)
{
	json_decref(c->root);
	c->root = NULL;
}

/* ---- comparisons --------------------------------------------------------- */

/* Report a mismatch with both texts; the case fails at its end, so one run
 * shows everything that is wrong with it. */
static int check_text(const char *label, const char *what, const char *want,
		      const char *got)
{
	if (!strcmp(want, got))
		return 0;
	print_error("%s: %s differs\n--- expected\n%s\n--- got\n%s\n---\n",
		    label, what, want, got);
	return 1;
}

static int check_file(const char *label, const char *dir, const char *name,
		      const char *ext, const char *got)
{
	struct dbuf want, file;
	int bad, rc;

	dbuf_init(&want, FILE_CAP);
	dbuf_init(&file, 4096);
	rc = dbuf_addf(&file, "%s%s", name, ext);
	if (!rc)
		rc = read_path(&want, dir, name, ext);
	if (rc) {
		print_error("%s: cannot read %s: %s\n", label,
			    dbuf_str(&file), strerror(-rc));
		bad = 1;
	} else {
		bad = check_text(label, dbuf_str(&file), dbuf_str(&want), got);
	}
	dbuf_free(&want);
	dbuf_free(&file);
	return bad;
}

/* The value of header name (any case) in a signed-request file, into
 * val ("" when absent). */
static void find_header(const char *text, const char *name, struct dbuf *val)
{
	size_t n = strlen(name);
	const char *line = text, *eol;

	dbuf_reset(val);
	while (*line) {
		eol = strchr(line, '\n');
		if (!strncasecmp(line, name, n) && line[n] == ':') {
			line += n + 1;
			assert_int_equal(dbuf_add(val, line, eol ?
					 (size_t)(eol - line) : strlen(line)),
					 0);
			return;
		}
		if (!eol || eol[1] == '\n')
			return; /* the blank line: the body follows */
		line = eol + 1;
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int add_decoded(struct dbuf *b, const char *s, size_t n)
{
	size_t i;
	int rc = 0;

	for (i = 0; i < n && !rc; i++) {
		if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 &&
		    hexval(s[i + 2]) >= 0) {
			rc = dbuf_addc(b, (char)(hexval(s[i + 1]) << 4 |
						 hexval(s[i + 2])));
			i += 2;
		} else {
			rc = dbuf_addc(b, s[i]);
		}
	}
	return rc;
}

static int strp_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A query string as its decoded "key=value" pairs, sorted and joined with
 * '\n': the vectors list parameters in another order and encode some of
 * them differently, and neither is significant on the wire. */
static int normalize_query(const char *query, struct dbuf *out)
{
	struct dbuf all;
	char **v = NULL;
	size_t n = 0, max = 1, i;
	const char *p, *amp, *eq;
	int rc = 0;

	dbuf_init(&all, FILE_CAP);
	for (p = query; *p; p++)
		max += *p == '&';
	v = calloc(max, sizeof(*v));
	if (!v) {
		rc = -ENOMEM;
		goto out;
	}
	for (p = query; *p && !rc; p = *amp ? amp + 1 : amp) {
		amp = strchr(p, '&');
		if (!amp)
			amp = p + strlen(p);
		eq = memchr(p, '=', (size_t)(amp - p));
		dbuf_reset(&all);
		rc = add_decoded(&all, p, (size_t)((eq ? eq : amp) - p));
		if (!rc)
			rc = dbuf_addc(&all, '=');
		if (!rc && eq)
			rc = add_decoded(&all, eq + 1, (size_t)(amp - eq - 1));
		if (!rc) {
			v[n] = strdup(dbuf_str(&all));
			rc = v[n] ? 0 : -ENOMEM;
			n++;
		}
	}
	if (rc)
		goto out;
	qsort(v, n, sizeof(*v), strp_cmp);
	for (i = 0; i < n && !rc; i++)
		rc = dbuf_addf(out, "%s%s", i ? "\n" : "", v[i]);
out:
	for (i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
	dbuf_free(&all);
	return rc;
}

/* Compare our presigned query with the one in query-signed-request.txt. */
static int check_signed_query(const char *label, const char *dir,
			      const char *got)
{
	struct dbuf file, want_n, got_n;
	char *line, *q, *ver;
	int bad = 1;

	dbuf_init(&file, FILE_CAP);
	dbuf_init(&want_n, FILE_CAP);
	dbuf_init(&got_n, FILE_CAP);
	if (read_path(&file, dir, "query-signed-request", ".txt")) {
		print_error("%s: cannot read query-signed-request.txt\n",
			    label);
		goto out;
	}
	line = file.ptr;
	q = strchr(line, '\n');
	if (q)
		*q = '\0';
	q = strchr(line, '?');
	ver = strstr(line, " HTTP/");
	if (!q || !ver || ver < q) {
		print_error("%s: no query in query-signed-request.txt\n",
			    label);
		goto out;
	}
	*ver = '\0';
	if (normalize_query(q + 1, &want_n) || normalize_query(got, &got_n))
		goto out;
	bad = check_text(label, "signed query (decoded, sorted)",
			 dbuf_str(&want_n), dbuf_str(&got_n));
out:
	dbuf_free(&file);
	dbuf_free(&want_n);
	dbuf_free(&got_n);
	return bad;
}

/* ---- the vector cases ---------------------------------------------------- */

static void test_v4_case(void **state)
{
	const struct vcase *vc = *state;
	struct sigv4_signer *s;
	struct parsed_req pr;
	struct sigv4_out out;
	struct vctx ctx;
	struct dbuf file, want;
	int rc, bad = 0;

	dbuf_init(&file, FILE_CAP);
	dbuf_init(&want, FILE_CAP);
	memset(&out, 0, sizeof(out));
	memset(&pr, 0, sizeof(pr));
	s = sigv4_signer_new();
	assert_non_null(s);
	if (load_context(&ctx, vc->dir)) {
		print_error("%s: bad or missing context.json\n", vc->label);
		bad++;
		goto out;
	}
	rc = load_request(&pr, vc->dir, "request", ".txt");
	if (rc) {
		print_error("%s: bad request.txt: %s\n", vc->label,
			    strerror(-rc));
		bad++;
		goto out;
	}

	/* Header signing. */
	rc = sigv4_sign(s, &pr.req, &ctx.p, &out);
	if (rc) {
		print_error("%s: sigv4_sign: %s\n", vc->label, strerror(-rc));
		bad++;
	} else {
		bad += check_file(vc->label, vc->dir,
				  "header-canonical-request", ".txt",
				  dbuf_str(&out.canonical_request));
		bad += check_file(vc->label, vc->dir, "header-string-to-sign",
				  ".txt", dbuf_str(&out.string_to_sign));
		bad += check_file(vc->label, vc->dir, "header-signature",
				  ".txt", out.signature);
		bad += check_text(vc->label, "amz_date", "20150830T123600Z",
				  out.amz_date);
		if (read_path(&file, vc->dir, "header-signed-request",
			      ".txt")) {
			print_error("%s: cannot read header-signed-request\n",
				    vc->label);
			bad++;
		} else {
			find_header(dbuf_str(&file), "Authorization", &want);
			bad += check_text(vc->label, "Authorization",
					  dbuf_str(&want),
					  dbuf_str(&out.authorization));
			/* x-amz-content-sha256 is in the signed request
			 * exactly when we report one to add. */
			find_header(dbuf_str(&file), "x-amz-content-sha256",
				    &want);
			bad += check_text(vc->label, "content_sha256",
					  dbuf_str(&want),
					  out.content_sha256);
		}
	}
	sigv4_out_free(&out);

	/* Presigning. */
	rc = sigv4_presign(s, &pr.req, &ctx.p, ctx.expires, &out);
	if (rc) {
		print_error("%s: sigv4_presign: %s\n", vc->label,
			    strerror(-rc));
		bad++;
	} else {
		bad += check_file(vc->label, vc->dir,
				  "query-canonical-request", ".txt",
				  dbuf_str(&out.canonical_request));
		bad += check_file(vc->label, vc->dir, "query-string-to-sign",
				  ".txt", dbuf_str(&out.string_to_sign));
		bad += check_file(vc->label, vc->dir, "query-signature",
				  ".txt", out.signature);
		bad += check_signed_query(vc->label, vc->dir,
					  dbuf_str(&out.query));
		bad += check_text(vc->label, "presign authorization", "",
				  dbuf_str(&out.authorization));
	}
out:
	sigv4_out_free(&out);
	free_request(&pr);
	free_context(&ctx);
	dbuf_free(&file);
	dbuf_free(&want);
	sigv4_signer_free(s);
	if (bad)
		fail_msg("%s: %d check(s) failed", vc->label, bad);
}

/* The legacy suite has no context: its README fixes key, region, service
 * and time, the body is never signed and paths are always normalized.
 * Only the session token varies; it lives in the same-named v4 case (the
 * v4 suite is the successor of this one), so that is where it is read
 * from.  Legacy .req files already carry X-Amz-Date; the signer owns that
 * header and uses its own (equal) value. */
static void legacy_params(const struct vcase *vc, struct sigv4_params *p,
			  struct vctx *ctx)
{
	struct dbuf v4dir;

	memset(p, 0, sizeof(*p));
	p->access_key = V_ACCESS;
	p->secret_key = V_SECRET;
	p->region = V_REGION;
	p->service = V_SERVICE;
	p->now = V_TIME;
	memset(ctx, 0, sizeof(*ctx));
	dbuf_init(&v4dir, 4096);
	if (!dbuf_addf(&v4dir, "%s/v4/%s", vector_root, vc->name) &&
	    file_exists(dbuf_str(&v4dir), "context", ".json") &&
	    !load_context(ctx, dbuf_str(&v4dir))) {
		p->session_token = ctx->p.session_token;
		p->flags = ctx->p.flags & SIGV4_OMIT_TOKEN;
	}
	dbuf_free(&v4dir);
}

static void test_legacy_case(void **state)
{
	const struct vcase *vc = *state;
	struct sigv4_signer *s;
	struct sigv4_params p;
	struct parsed_req pr;
	struct sigv4_out out;
	struct vctx ctx;
	int rc, bad = 0;

	memset(&out, 0, sizeof(out));
	s = sigv4_signer_new();
	assert_non_null(s);
	legacy_params(vc, &p, &ctx);
	rc = load_request(&pr, vc->dir, vc->name, ".req");
	if (rc) {
		print_error("%s: bad %s.req: %s\n", vc->label, vc->name,
			    strerror(-rc));
		bad++;
		goto out;
	}
	rc = sigv4_sign(s, &pr.req, &p, &out);
	if (rc) {
		print_error("%s: sigv4_sign: %s\n", vc->label, strerror(-rc));
		bad++;
	} else {
		bad += check_file(vc->label, vc->dir, vc->name, ".creq",
				  dbuf_str(&out.canonical_request));
		bad += check_file(vc->label, vc->dir, vc->name, ".sts",
				  dbuf_str(&out.string_to_sign));
		/* .authz, not .sreq: get-vanilla-with-session-token.sreq
		 * carries get-vanilla's signature (README). */
		bad += check_file(vc->label, vc->dir, vc->name, ".authz",
				  dbuf_str(&out.authorization));
	}
	sigv4_out_free(&out);
out:
	free_request(&pr);
	free_context(&ctx);
	sigv4_signer_free(s);
	if (bad)
		fail_msg("%s: %d check(s) failed", vc->label, bad);
}

/* ---- discovery ----------------------------------------------------------- */

/* Growable arrays live in a dbuf too (its memory comes from realloc, so it
 * is aligned for any element type). */
static struct dbuf case_buf;

static int add_case(enum suite suite, const char *dir, const char *name,
		    const char *label)
{
	struct vcase c;
	int rc = -ENOMEM;

	c.suite = suite;
	c.dir = strdup(dir);
	c.name = strdup(name);
	c.label = strdup(label);
	if (c.dir && c.name && c.label)
		rc = dbuf_add(&case_buf, &c, sizeof(c));
	if (rc) {
		free(c.dir);
		free(c.name);
		free(c.label);
		return rc;
	}
	cases = (struct vcase *)(void *)case_buf.ptr;
	ncases++;
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The subdirectories of dir, sorted so the run order is stable. */
static int list_subdirs(const char *dir, char ***out, size_t *nout)
{
	struct dbuf path, names;
	struct dirent *de;
	struct stat st;
	char *name, **v;
	size_t n;
	DIR *d;
	int rc = 0;

	*out = NULL;
	*nout = 0;
	d = opendir(dir);
	if (!d)
		return -errno;
	dbuf_init(&path, 4096);
	dbuf_init(&names, FILE_CAP);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		dbuf_reset(&path);
		rc = dbuf_addf(&path, "%s/%s", dir, de->d_name);
		if (rc)
			break;
		if (stat(dbuf_str(&path), &st) || !S_ISDIR(st.st_mode))
			continue;
		name = strdup(de->d_name);
		rc = name ? dbuf_add(&names, &name, sizeof(name)) : -ENOMEM;
		if (rc) {
			free(name);
			break;
		}
	}
	closedir(d);
	dbuf_free(&path);
	n = dbuf_len(&names) / sizeof(char *);
	v = (char **)(void *)dbuf_take(&names, NULL);
	if (!v || rc) {
		while (v && n)
			free(v[--n]);
		free(v);
		return rc ? rc : -ENOMEM;
	}
	qsort(v, n, sizeof(*v), name_cmp);
	*out = v;
	*nout = n;
	return 0;
}

static void free_list(char **v, size_t n)
{
	while (n)
		free(v[--n]);
	free(v);
}

/* Every subdirectory of v4/ is a case: one missing a file fails rather
 * than vanishing from the run. */
static int discover_v4(void)
{
	struct dbuf dir, sub, label;
	char **v;
	size_t n, i;
	int rc;

	dbuf_init(&dir, 4096);
	dbuf_init(&sub, 4096);
	dbuf_init(&label, 4096);
	rc = dbuf_addf(&dir, "%s/v4", vector_root);
	if (!rc)
		rc = list_subdirs(dbuf_str(&dir), &v, &n);
	if (rc)
		goto out;
	for (i = 0; i < n && !rc; i++) {
		dbuf_reset(&sub);
		dbuf_reset(&label);
		rc = dbuf_addf(&sub, "%s/%s", dbuf_str(&dir), v[i]);
		if (!rc)
			rc = dbuf_addf(&label, "v4/%s", v[i]);
		if (!rc)
			rc = add_case(SUITE_V4, dbuf_str(&sub), v[i],
				      dbuf_str(&label));
		if (!rc)
			nv4++;
	}
	free_list(v, n);
out:
	dbuf_free(&dir);
	dbuf_free(&sub);
	dbuf_free(&label);
	return rc;
}

/* legacy/ nests groups of cases (normalize-path/, post-sts-token/): a
 * directory holding <its name>.req is a case, any other is searched. */
static int discover_legacy(const char *dir, const char *label, int depth)
{
	struct dbuf sub, sublabel;
	char **v;
	size_t n, i;
	int rc;

	if (depth > 4)
		return 0;
	rc = list_subdirs(dir, &v, &n);
	if (rc)
		return rc;
	dbuf_init(&sub, 4096);
	dbuf_init(&sublabel, 4096);
	for (i = 0; i < n && !rc; i++) {
		dbuf_reset(&sub);
		dbuf_reset(&sublabel);
		rc = dbuf_addf(&sub, "%s/%s", dir, v[i]);
		if (!rc)
			rc = dbuf_addf(&sublabel, "%s/%s", label, v[i]);
		if (rc)
			break;
		if (file_exists(dbuf_str(&sub), v[i], ".req")) {
			rc = add_case(SUITE_LEGACY, dbuf_str(&sub), v[i],
				      dbuf_str(&sublabel));
			if (!rc)
				nlegacy++;
		} else {
			rc = discover_legacy(dbuf_str(&sub),
					     dbuf_str(&sublabel), depth + 1);
		}
	}
	free_list(v, n);
	dbuf_free(&sub);
	dbuf_free(&sublabel);
	return rc;
}

static void discover(void)
{
	struct dbuf dir;
	int rc;

	vector_root = getenv("DYNFS_SIGV4_VECTORS");
	if (!vector_root || !*vector_root) {
		discovery_error = -ENOENT;
		return;
	}
	rc = discover_v4();
	if (!rc) {
		dbuf_init(&dir, 4096);
		rc = dbuf_addf(&dir, "%s/legacy", vector_root);
		if (!rc)
			rc = discover_legacy(dbuf_str(&dir), "legacy", 0);
		dbuf_free(&dir);
	}
	discovery_error = rc;
}

static void test_vectors_present(void **state)
{
	(void)state;
	if (!vector_root || !*vector_root)
		fail_msg("DYNFS_SIGV4_VECTORS is not set");
	if (discovery_error)
		fail_msg("reading vectors under %s: %s", vector_root,
			 strerror(-discovery_error));
	if (nv4 == 0)
		fail_msg("no v4 cases under %s/v4", vector_root);
	if (nlegacy == 0)
		fail_msg("no legacy cases under %s/legacy", vector_root);
	print_message("sigv4 vectors: %zu v4 + %zu legacy from %s\n", nv4,
		      nlegacy, vector_root);
}

/* ---- unit tests ---------------------------------------------------------- */

static const struct sigv4_header vanilla_headers[] = {
	{ "Host", "example.amazonaws.com" },
};

static void vanilla(struct sigv4_request *r, struct sigv4_params *p)
{
	memset(r, 0, sizeof(*r));
	r->method = "GET";
	r->path = "/";
	r->headers = vanilla_headers;
	r->nheaders = 1;
	memset(p, 0, sizeof(*p));
	p->access_key = V_ACCESS;
	p->secret_key = V_SECRET;
	p->region = V_REGION;
	p->service = V_SERVICE;
	p->now = V_TIME;
}

static void sign_ok(struct sigv4_signer *s, const struct sigv4_request *r,
		    const struct sigv4_params *p, char sig[65])
{
	struct sigv4_out out;

	assert_int_equal(sigv4_sign(s, r, p, &out), 0);
	memcpy(sig, out.signature, 65);
	sigv4_out_free(&out);
}

static void test_sha256_hex(void **state)
{
	char hex[65];

	(void)state;
	sigv4_sha256_hex("", 0, hex);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e46"
				 "49b934ca495991b7852b855");
	sigv4_sha256_hex("abc", 3, hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a39"
				 "6177a9cb410ff61f20015ad");
}

/* The same signer must give the same signature while the key is cached,
 * derive a new key when the day changes (and not hand back the old one),
 * and tell secrets apart even for the same day, region and service. */
static void test_key_cache(void **state)
{
	struct sigv4_signer *s, *fresh;
	struct sigv4_request r;
	struct sigv4_params p;
	struct sigv4_out out;
	char a[65], a2[65], b[65], b_fresh[65], c[65], c_fresh[65], d[65];

	(void)state;
	s = sigv4_signer_new();
	assert_non_null(s);
	vanilla(&r, &p);

	sign_ok(s, &r, &p, a);
	/* get-vanilla's signature from the v4 suite */
	assert_string_equal(a, "5fa00fa31553b73ebf1942676e86291e8372ff2a226"
			       "0956d9b8aae1d763fbf31");
	sign_ok(s, &r, &p, a2);
	assert_string_equal(a, a2);

	p.now = V_TIME + 86400; /* the next day */
	assert_int_equal(sigv4_sign(s, &r, &p, &out), 0);
	memcpy(b, out.signature, sizeof(b));
	assert_string_equal(out.amz_date, "20150831T123600Z");
	assert_non_null(strstr(dbuf_str(&out.authorization),
			       "Credential=AKIDEXAMPLE/20150831/us-east-1/"
			       "service/aws4_request"));
	sigv4_out_free(&out);
	assert_string_not_equal(a, b);
	fresh = sigv4_signer_new();
	assert_non_null(fresh);
	sign_ok(fresh, &r, &p, b_fresh);
	assert_string_equal(b, b_fresh);

	/* back to the first day: still cached, still right */
	p.now = V_TIME;
	sign_ok(s, &r, &p, a2);
	assert_string_equal(a, a2);

	/* rotated secret, same scope: must not reuse the cached key */
	p.secret_key = "a-rotated-secret-key-of-the-usual-length-";
	sign_ok(s, &r, &p, c);
	assert_string_not_equal(a, c);
	sign_ok(fresh, &r, &p, c_fresh);
	assert_string_equal(c, c_fresh);

	/* more scopes than slots, then the first again */
	p.secret_key = V_SECRET;
	for (int i = 0; i < 20; i++) {
		p.now = V_TIME + (time_t)i * 86400;
		sign_ok(s, &r, &p, d);
	}
	p.now = V_TIME;
	sign_ok(s, &r, &p, d);
	assert_string_equal(a, d);

	sigv4_signer_free(fresh);
	sigv4_signer_free(s);
}

/* An independent known answer: botocore's SigV4Auth for DynamoDB
 * ListTables with a session token, 2024-02-29T23:59:30Z. */
static void test_dynamodb_known_answer(void **state)
{
	static const struct sigv4_header h[] = {
		{ "host", "dynamodb.eu-west-1.amazonaws.com" },
		{ "Content-Type", "application/x-amz-json-1.0" },
		{ "X-Amz-Target", "DynamoDB_20120810.ListTables" },
		{ "User-Agent", "dynfs/0.1" }, /* never signed */
	};
	struct sigv4_signer *s;
	struct sigv4_request r;
	struct sigv4_params p;
	struct sigv4_out out;

	(void)state;
	s = sigv4_signer_new();
	assert_non_null(s);
	memset(&r, 0, sizeof(r));
	r.method = "POST";
	r.path = "/";
	r.headers = h;
	r.nheaders = 4;
	r.body = "{}";
	r.body_len = 2;
	memset(&p, 0, sizeof(p));
	p.access_key = V_ACCESS;
	p.secret_key = V_SECRET;
	p.session_token = "FQoGZXIvYXdzEXAMPLE/token+with==";
	p.region = "eu-west-1";
	p.service = "dynamodb";
	p.now = 1709251170;
	assert_int_equal(sigv4_sign(s, &r, &p, &out), 0);
	assert_string_equal(dbuf_str(&out.authorization),
			    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240229/"
			    "eu-west-1/dynamodb/aws4_request, SignedHeaders="
			    "content-type;host;x-amz-date;x-amz-security-token;"
			    "x-amz-target, Signature=bf38a60d174c933234892ce8e"
			    "6268ab68ebcf84093065029985c9773c13c2016");
	assert_string_equal(out.amz_date, "20240229T235930Z");
	assert_string_equal(out.content_sha256, "");
	sigv4_out_free(&out);

	/* SIGN_BODY adds the body hash header and signs it. */
	p.flags = SIGV4_SIGN_BODY;
	assert_int_equal(sigv4_sign(s, &r, &p, &out), 0);
	assert_string_equal(out.content_sha256,
			    "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e831"
			    "0c060f61caaff8a");
	assert_non_null(strstr(dbuf_str(&out.canonical_request),
			       "\nx-amz-content-sha256:44136fa355b3678a"));
	assert_non_null(strstr(dbuf_str(&out.authorization),
			       "host;x-amz-content-sha256;x-amz-date;"));
	sigv4_out_free(&out);
	sigv4_signer_free(s);
}

/* Presigning a WebSocket connect with a session token: known answer from
 * botocore's SigV4QueryAuth, then the same with the token left unsigned. */
static void test_presign_session_token(void **state)
{
	static const struct sigv4_header h[] = {
		{ "Host", "abc123.execute-api.eu-west-1.amazonaws.com" },
	};
	static const char token[] = "FQoGZXIvYXdzEXAMPLE/token+with==";
	static const char token_enc[] =
		"X-Amz-Security-Token=FQoGZXIvYXdzEXAMPLE%2Ftoken%2Bwith%3D%3D";
	struct sigv4_signer *s;
	struct sigv4_request r;
	struct sigv4_params p;
	struct sigv4_out out;
	const char *q, *sig;
	char signed_sig[65];

	(void)state;
	s = sigv4_signer_new();
	assert_non_null(s);
	memset(&r, 0, sizeof(r));
	r.method = "GET";
	r.path = "/prod";
	r.query = "client=dynfs";
	r.headers = h;
	r.nheaders = 1;
	memset(&p, 0, sizeof(p));
	p.access_key = V_ACCESS;
	p.secret_key = V_SECRET;
	p.session_token = token;
	p.region = "eu-west-1";
	p.service = "execute-api";
	p.now = 1709251170;

	assert_int_equal(sigv4_presign(s, &r, &p, 300, &out), 0);
	assert_string_equal(out.signature, "0da642178360924f65ef7d5476e9c3bd42"
					   "dc0580f48cb378ed2dcb5b3e4a1c27");
	q = dbuf_str(&out.query);
	assert_string_equal(q,
		"X-Amz-Algorithm=AWS4-HMAC-SHA256"
		"&X-Amz-Credential=AKIDEXAMPLE%2F20240229%2Feu-west-1%2F"
		"execute-api%2Faws4_request"
		"&X-Amz-Date=20240229T235930Z&X-Amz-Expires=300"
		"&X-Amz-Security-Token=FQoGZXIvYXdzEXAMPLE%2Ftoken%2Bwith%3D%3D"
		"&X-Amz-SignedHeaders=host&client=dynfs"
		"&X-Amz-Signature=0da642178360924f65ef7d5476e9c3bd42dc0580f48c"
		"b378ed2dcb5b3e4a1c27");
	/* the token is part of what was signed */
	assert_non_null(strstr(dbuf_str(&out.canonical_request), token_enc));
	assert_string_equal(dbuf_str(&out.authorization), "");
	memcpy(signed_sig, out.signature, sizeof(signed_sig));
	sigv4_out_free(&out);

	/* OMIT_TOKEN: the token rides in the URL but is not signed. */
	p.flags = SIGV4_OMIT_TOKEN;
	assert_int_equal(sigv4_presign(s, &r, &p, 300, &out), 0);
	assert_null(strstr(dbuf_str(&out.canonical_request), token_enc));
	q = dbuf_str(&out.query);
	assert_non_null(strstr(q, token_enc));
	sig = strstr(q, "&X-Amz-Signature=");
	assert_non_null(sig);
	assert_string_equal(sig + strlen("&X-Amz-Signature="), out.signature);
	assert_true(strstr(q, token_enc) < sig);
	assert_string_not_equal(out.signature, signed_sig);
	sigv4_out_free(&out);

	/* An empty token is no token. */
	p.flags = 0;
	p.session_token = "";
	assert_int_equal(sigv4_presign(s, &r, &p, 300, &out), 0);
	assert_null(strstr(dbuf_str(&out.query), "X-Amz-Security-Token"));
	sigv4_out_free(&out);
	sigv4_signer_free(s);
}

static void check_path(struct sigv4_signer *s, const char *path,
		       unsigned flags, const char *want)
{
	struct sigv4_request r;
	struct sigv4_params p;
	struct sigv4_out out;
	const char *cr, *nl;

	vanilla(&r, &p);
	r.path = path;
	p.flags = flags;
	assert_int_equal(sigv4_sign(s, &r, &p, &out), 0);
	cr = strchr(dbuf_str(&out.canonical_request), '\n') + 1;
	nl = strchr(cr, '\n');
	assert_non_null(nl);
	if (strlen(want) != (size_t)(nl - cr) ||
	    strncmp(cr, want, (size_t)(nl - cr)))
		fail_msg("path %s: want %s, got %.*s", path, want,
			 (int)(nl - cr), cr);
	sigv4_out_free(&out);
}

/* Paths beyond the vectors: encoded bytes on the wire (double-encoded
 * except for S3), and S3's untouched dots and slashes. */
static void test_paths(void **state)
{
	struct sigv4_signer *s = sigv4_signer_new();

	(void)state;
	assert_non_null(s);
	check_path(s, "/a%3Ab/c d", 0, "/a%253Ab/c%20d");
	check_path(s, "/2015-03-31/functions/arn%3Aaws%3Alambda/invocations", 0,
		   "/2015-03-31/functions/arn%253Aaws%253Alambda/invocations");
	check_path(s, "/a/./b/../../c/", 0, "/c/");
	check_path(s, "/a/..", 0, "/");
	check_path(s, "/a/.", 0, "/a");
	check_path(s, "", 0, "/");
	check_path(s, "/a%3ab//./c d%2F~", SIGV4_NO_NORMALIZE,
		   "/a%3Ab//./c%20d%2F~");
	check_path(s, "/%7e%41%zz", SIGV4_NO_NORMALIZE, "/~A%25zz");
	sigv4_signer_free(s);
}

static void test_query_and_headers(void **state)
{
	static const struct sigv4_header h[] = {
		{ "Host", "example.amazonaws.com" },
		{ "X-Amz-Date", "19990101T000000Z" }, /* ours wins */
		{ "My-Header", "  b  \t c " },
		{ "my-header", "a" },
		{ "Connection", "keep-alive" }, /* hop-by-hop: unsigned */
	};
	struct sigv4_signer *s = sigv4_signer_new();
	struct sigv4_request r;
	struct sigv4_params p;
	struct sigv4_out out;

	(void)state;
	assert_non_null(s);
	vanilla(&r, &p);
	r.headers = h;
	r.nheaders = 5;
	r.query = "b=2&a=x+y&&a=1&c&%7E=%2f";
	assert_int_equal(sigv4_sign(s, &r, &p, &out), 0);
	assert_string_equal(dbuf_str(&out.canonical_request),
			    "GET\n/\n"
			    "a=1&a=x%2By&b=2&c=&~=%2F\n"
			    "host:example.amazonaws.com\n"
			    "my-header:b c,a\n"
			    "x-amz-date:20150830T123600Z\n"
			    "\n"
			    "host;my-header;x-amz-date\n"
			    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca"
			    "495991b7852b855");
	sigv4_out_free(&out);

	/* A given payload hash is used as is. */
	r.query = NULL;
	r.nheaders = 1;
	r.payload_hash = "UNSIGNED-PAYLOAD";
	p.flags = SIGV4_SIGN_BODY;
	assert_int_equal(sigv4_sign(s, &r, &p, &out), 0);
	assert_string_equal(out.content_sha256, "UNSIGNED-PAYLOAD");
	assert_non_null(strstr(dbuf_str(&out.canonical_request),
			       "\nUNSIGNED-PAYLOAD"));
	sigv4_out_free(&out);
	sigv4_signer_free(s);
}

static void expect_einval(struct sigv4_signer *s,
			  const struct sigv4_request *r,
			  const struct sigv4_params *p, int presign,
			  unsigned expires)
{
	struct sigv4_out out;
	int rc;

	rc = presign ? sigv4_presign(s, r, p, expires, &out)
		     : sigv4_sign(s, r, p, &out);
	assert_int_equal(rc, -EINVAL);
	/* out is usable and empty after a failure */
	assert_string_equal(out.signature, "");
	assert_string_equal(dbuf_str(&out.authorization), "");
	sigv4_out_free(&out);
}

static void test_errors(void **state)
{
	static const struct sigv4_header no_host[] = {
		{ "X-Other", "1" },
	};
	static const struct sigv4_header bad_name[] = {
		{ "Host", "example.amazonaws.com" },
		{ "Bad Name", "1" },
	};
	static const struct sigv4_header two_hosts[] = {
		{ "Host", "a" },
		{ "host", "b" },
	};
	struct sigv4_signer *s = sigv4_signer_new();
	struct sigv4_request r;
	struct sigv4_params p;

	(void)state;
	assert_non_null(s);

	vanilla(&r, &p);
	r.headers = no_host;
	expect_einval(s, &r, &p, 0, 0);
	r.headers = bad_name;
	r.nheaders = 2;
	expect_einval(s, &r, &p, 0, 0);
	r.headers = two_hosts;
	expect_einval(s, &r, &p, 0, 0);

	vanilla(&r, &p);
	r.path = "no-slash";
	expect_einval(s, &r, &p, 0, 0);
	vanilla(&r, &p);
	r.method = "GET /";
	expect_einval(s, &r, &p, 0, 0);
	vanilla(&r, &p);
	p.secret_key = NULL;
	expect_einval(s, &r, &p, 0, 0);
	vanilla(&r, &p);
	p.region = "us/east";
	expect_einval(s, &r, &p, 0, 0);
	vanilla(&r, &p);
	r.body_len = 3;
	expect_einval(s, &r, &p, 0, 0);
	vanilla(&r, &p);
	r.payload_hash = "has space";
	expect_einval(s, &r, &p, 0, 0);
	vanilla(&r, &p);
	expect_einval(NULL, &r, &p, 0, 0);

	vanilla(&r, &p);
	expect_einval(s, &r, &p, 1, 0);
	expect_einval(s, &r, &p, 1, 604801);
	r.query = "X-Amz-Signature=abc";
	expect_einval(s, &r, &p, 1, 60);

	assert_int_equal(sigv4_sign(s, &r, &p, NULL), -EINVAL);
	sigv4_signer_free(NULL);
	sigv4_out_free(NULL);
	sigv4_signer_free(s);
}

/* Many threads on one signer, scopes changing under them: every result
 * must match a single-threaded signer. */
#define NTHREADS 8
#define NITER 300

struct thread_arg {
	struct sigv4_signer *s;
	char (*want)[65];
	int bad;
};

static const char *const services[] = {
	"dynamodb", "execute-api", "lambda", "apigateway", "sts",
};

static void thread_params(int i, struct sigv4_request *r,
			  struct sigv4_params *p)
{
	vanilla(r, p);
	p->service = services[i % 5];
	p->now = V_TIME + (time_t)(i % 7) * 86400;
}

static void *thread_main(void *v)
{
	struct thread_arg *a = v;
	struct sigv4_request r;
	struct sigv4_params p;
	struct sigv4_out out;
	int i;

	for (i = 0; i < NITER; i++) {
		thread_params(i, &r, &p);
		if (sigv4_sign(a->s, &r, &p, &out) ||
		    strcmp(out.signature, a->want[i % 35]))
			a->bad++;
		sigv4_out_free(&out);
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct thread_arg args[NTHREADS];
	pthread_t t[NTHREADS];
	char want[35][65];
	struct sigv4_signer *s;
	struct sigv4_request r;
	struct sigv4_params p;
	int i;

	(void)state;
	for (i = 0; i < 35; i++) {
		s = sigv4_signer_new();
		assert_non_null(s);
		thread_params(i, &r, &p);
		sign_ok(s, &r, &p, want[i]);
		sigv4_signer_free(s);
	}
	s = sigv4_signer_new();
	assert_non_null(s);
	for (i = 0; i < NTHREADS; i++) {
		args[i].s = s;
		args[i].want = want;
		args[i].bad = 0;
		assert_int_equal(pthread_create(&t[i], NULL, thread_main,
						&args[i]), 0);
	}
	for (i = 0; i < NTHREADS; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(args[i].bad, 0);
	}
	sigv4_signer_free(s);
}

/* ---- main ---------------------------------------------------------------- */

int main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_sha256_hex),
		cmocka_unit_test(test_key_cache),
		cmocka_unit_test(test_dynamodb_known_answer),
		cmocka_unit_test(test_presign_session_token),
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_query_and_headers),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_threads),
	};
	const size_t nfixed = sizeof(fixed) / sizeof(fixed[0]);
	struct CMUnitTest *tests;
	size_t i, n = 0;
	int failed;

	dbuf_init(&case_buf, FILE_CAP);
	discover();
	tests = calloc(1 + ncases + nfixed, sizeof(*tests));
	if (!tests) {
		fputs("test_sigv4: out of memory\n", stderr);
		return 1;
	}
	tests[n].name = "vectors_present";
	tests[n++].test_func = test_vectors_present;
	for (i = 0; i < ncases; i++) {
		tests[n].name = cases[i].label;
		tests[n].test_func = cases[i].suite == SUITE_V4 ?
				     test_v4_case : test_legacy_case;
		tests[n++].initial_state = &cases[i];
	}
	for (i = 0; i < nfixed; i++)
		tests[n++] = fixed[i];

	/* The group-runner behind cmocka_run_group_tests(), which only
	 * takes a fixed array; the count of failures is the exit status. */
	failed = _cmocka_run_group_tests("sigv4", tests, n, NULL, NULL);

	for (i = 0; i < ncases; i++) {
		free(cases[i].dir);
		free(cases[i].name);
		free(cases[i].label);
	}
	dbuf_free(&case_buf);
	free(tests);
	return failed ? 1 : 0;
}
