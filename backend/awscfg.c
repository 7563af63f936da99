/* awscfg: AWS configuration as the CLI and SDKs resolve it.
 *
 * Only the active profile's keys are kept: one list from the config file
 * and one from the credentials file.  The environment is read at call
 * time (awscfg_region, awscfg_endpoint) so that it is never stale.
 *
 * The INI dialect follows botocore (Python's configparser):
 *  - config file: [default] and [profile NAME] name profiles ([profile
 *    default] too); a bare [NAME] for another name is not a profile there
 *    (botocore ignores it), but the "not found" message points it out;
 *  - credentials file: [NAME], taken literally;
 *  - "key = value" or "key: value", whitespace trimmed, keys folded to
 *    lower case as configparser does, values kept verbatim (no inline
 *    comments, no quote stripping);
 *  - whole-line comments start with '#' or ';';
 *  - a line indented deeper than the key line above it continues that
 *    key: after "s3 =" it is a nested sub-section, and the key is dropped
 *    (it is not a string); after a key with a value it is ignored;
 *  - when a profile's section appears more than once, the last one wins
 *    whole, as the later dict entry does in botocore;
 *  - an empty environment variable counts as unset.
 */
#include "backend/awscfg.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

/* Anything larger is not a config file; refuse rather than slurp it. */
#define AWSCFG_FILE_CAP (1024u * 1024)

struct kv {
	struct kv *next;
	char *key;
	char *value; /* may be a secret: wiped on free */
};

struct awscfg {
	char *profile;
	int from_option;
	char *config_path;	/* NULL when no home directory is known */
	char *credentials_path;
	struct kv *config;	/* the active profile's keys, config file */
	struct kv *credentials;	/* ... and credentials file */
};

enum file_kind { FILE_CONFIG, FILE_CREDENTIALS };

static const char *env_nonempty(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

static int is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static void trim(const char **s, size_t *n)
{
	while (*n && is_ws(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n && is_ws((*s)[*n - 1]))
		(*n)--;
}

static void kv_free_one(struct kv *e)
{
	free(e->key);
	if (e->value) {
		OPENSSL_cleanse(e->value, strlen(e->value));
		free(e->value);
	}
	free(e);
}

static void kv_free_all(struct kv **list)
{
	struct kv *e, *next;

	for (e = *list; e; e = next) {
		next = e->next;
		kv_free_one(e);
	}
	*list = NULL;
}

static const char *kv_get(const struct kv *list, const char *key)
{
	for (; list; list = list->next)
		if (strcmp(list->key, key) == 0)
			return list->value;
	return NULL;
}

static void kv_remove(struct kv **list, struct kv *victim)
{
	struct kv **pp;

	for (pp = list; *pp; pp = &(*pp)->next) {
		if (*pp == victim) {
			*pp = victim->next;
			kv_free_one(victim);
			return;
		}
	}
}

/* Set key (folded to lower case) to value; *set_out is the entry. */
static int kv_set(struct kv **list, const char *k, size_t klen,
		  const char *v, size_t vlen, struct kv **set_out)
{
	struct kv *e;
	char *key = NULL, *value = NULL;
	size_t i;
	int rc = -ENOMEM;

	key = strndup(k, klen);
	value = strndup(v, vlen);
	if (!key || !value)
		goto out;
	for (i = 0; i < klen; i++)
		if (key[i] >= 'A' && key[i] <= 'Z')
			key[i] = (char)(key[i] - 'A' + 'a');
	for (e = *list; e; e = e->next) {
		if (strcmp(e->key, key) == 0) {
			OPENSSL_cleanse(e->value, strlen(e->value));
			free(e->value);
			e->value = value;
			value = NULL;
			*set_out = e;
			rc = 0;
			goto out;
		}
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		goto out;
	e->key = key;
	e->value = value;
	key = NULL;
	value = NULL;
	e->next = *list;
	*list = e;
	*set_out = e;
	rc = 0;
out:
	free(key);
	if (value) {
		OPENSSL_cleanse(value, vlen);
		free(value);
	}
	return rc;
}

/* Which profile a config-file section header names; 0 when none.
 * "default", "profile NAME" and "profile \"NAME\"" are profiles. */
static int config_section_profile(const char *s, size_t n, const char **pn,
				  size_t *pl)
{
	size_t i;

	if (n == 7 && memcmp(s, "default", 7) == 0) {
		*pn = s;
		*pl = n;
		return 1;
	}
	if (n < 8 || memcmp(s, "profile", 7) != 0 || !is_ws(s[7]))
		return 0;
	s += 8;
	n -= 8;
	trim(&s, &n);
	if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
		s++;
		n -= 2;
	} else {
		/* botocore splits the header shell-style and wants exactly
		 * two words; more is not a profile. */
		for (i = 0; i < n; i++)
			if (is_ws(s[i]))
				return 0;
	}
	if (!n)
		return 0;
	*pn = s;
	*pl = n;
	return 1;
}

struct parse_state {
	enum file_kind kind;
	const char *target;
	struct kv **map;
	int in_target;
	int found;	/* a section for target was seen */
	int bare_found;	/* config: [target] without "profile " */
	/* The last key line of the current section, for indented lines. */
	int have_key;
	size_t key_indent;
	int key_empty;
	struct kv *key_entry; /* its entry when in the target section */
};

static int parse_line(struct parse_state *st, const char *line, size_t n)
{
	const char *s = line, *name, *pn = NULL, *rbr, *k, *v;
	size_t indent = 0, nl, pl = 0, kl, vl, i;
	struct kv *e;
	int is_target;

	while (indent < n && (line[indent] == ' ' || line[indent] == '\t'))
		indent++;
	trim(&s, &n);
	if (!n || s[0] == '#' || s[0] == ';')
		return 0;

	if (st->have_key && indent > st->key_indent) {
		/* Continuation.  Under an empty value it is a nested
		 * sub-section (botocore makes the key a dict): drop the key
		 * so nobody mistakes it for a string. */
		if (st->key_empty && st->key_entry) {
			kv_remove(st->map, st->key_entry);
			st->key_entry = NULL;
		}
		return 0;
	}

	if (s[0] == '[') {
		rbr = NULL;
		for (i = n; i > 1; i--) {
			if (s[i - 1] == ']') {
				rbr = s + i - 1;
				break;
			}
		}
		st->have_key = 0;
		st->key_entry = NULL;
		st->in_target = 0;
		if (!rbr)
			return 0; /* malformed header: nothing belongs to it */
		name = s + 1;
		nl = (size_t)(rbr - name);
		trim(&name, &nl);
		if (st->kind == FILE_CONFIG) {
			is_target = config_section_profile(name, nl, &pn, &pl) &&
				    pl == strlen(st->target) &&
				    memcmp(pn, st->target, pl) == 0;
			if (!is_target && nl == strlen(st->target) &&
			    memcmp(name, st->target, nl) == 0)
				st->bare_found = 1;
		} else {
			is_target = nl == strlen(st->target) &&
				    memcmp(name, st->target, nl) == 0;
		}
		if (is_target) {
			/* A later section for the same profile replaces the
			 * earlier one, as in botocore's profile map. */
			kv_free_all(st->map);
			st->in_target = 1;
			st->found = 1;
		}
		return 0;
	}

	for (i = 0; i < n; i++)
		if (s[i] == '=' || s[i] == ':')
			break;
	if (i == n || i == 0)
		return 0; /* no delimiter or no key: configparser rejects it */
	k = s;
	kl = i;
	v = s + i + 1;
	vl = n - i - 1;
	trim(&k, &kl);
	trim(&v, &vl);
	if (!kl)
		return 0;
	st->have_key = 1;
	st->key_indent = indent;
	st->key_empty = vl == 0;
	st->key_entry = NULL;
	if (!st->in_target)
		return 0;
	if (kv_set(st->map, k, kl, v, vl, &e))
		return -ENOMEM;
	st->key_entry = e;
	return 0;
}

/* Read a whole file into b; -ENOENT when it does not exist. */
static int read_file(const char *path, struct dbuf *b)
{
	char chunk[4096];
	struct stat sb;
	ssize_t r;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOTDIR ? -ENOENT : -errno;
	if (fstat(fd, &sb) != 0) {
		rc = -errno;
		goto out;
	}
	if (S_ISDIR(sb.st_mode)) {
		rc = -EISDIR;
		goto out;
	}
	for (;;) {
		r = read(fd, chunk, sizeof(chunk));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			goto out;
		}
		if (r == 0)
			break;
		rc = dbuf_add(b, chunk, (size_t)r);
		if (rc)
			goto out;
	}
out:
	OPENSSL_cleanse(chunk, sizeof(chunk));
	close(fd);
	return rc;
}

/* Read the keys of profile target in the file at path (of kind) into
 * *map; st is left with what the parse found. */
static int parse_file(const char *path, enum file_kind kind,
		      const char *target, struct kv **map,
		      struct parse_state *st, struct dbuf *why)
{
	struct dbuf b;
	const char *p, *end, *nl;
	int rc;

	memset(st, 0, sizeof(*st));
	st->kind = kind;
	st->target = target;
	st->map = map;
	dbuf_init(&b, AWSCFG_FILE_CAP);
	if (!path) {
		rc = 0;
		goto out;
	}
	rc = read_file(path, &b);
	if (rc == -ENOENT) {
		rc = 0; /* a missing file is an empty one */
		goto out;
	}
	if (rc == -E2BIG) {
		dbuf_addf_opt(why, "%s is larger than %u KiB; is it really an AWS %s file?",
			      path, AWSCFG_FILE_CAP / 1024,
			      st->kind == FILE_CONFIG ? "config" :
							"credentials");
		goto out;
	}
	if (rc) {
		dbuf_addf_opt(why, "cannot read %s: %s", path, strerror(-rc));
		goto out;
	}
	p = dbuf_str(&b);
	end = p + dbuf_len(&b);
	/* A UTF-8 byte-order mark from a Windows editor is not a key. */
	if (end - p >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
		p += 3;
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		rc = parse_line(st, p, (size_t)(nl - p));
		if (rc)
			goto out;
		p = nl + 1;
	}
out:
	/* The credentials file holds secret keys. */
	dbuf_free_secret(&b);
	return rc;
}

static char *home_dir(void)
{
	struct passwd pw, *res = NULL;
	const char *h = env_nonempty("HOME");
	char *buf, *dir = NULL;
	size_t len = 16384;

	if (h)
		return strdup(h);
	buf = malloc(len);
	if (!buf)
		return NULL;
	if (getpwuid_r(geteuid(), &pw, buf, len, &res) == 0 && res &&
	    res->pw_dir && *res->pw_dir)
		dir = strdup(res->pw_dir);
	free(buf);
	return dir;
}

/* The file named by env (with a leading ~ expanded, as botocore does),
 * else ~/.aws/<name>.  *out stays NULL when there is no home to use. */
static int resolve_path(char **out, const char *env, const char *name)
{
	const char *v = env_nonempty(env);
	char *home = NULL;
	struct dbuf b;
	int rc = 0;

	*out = NULL;
	dbuf_init(&b, 64 * 1024);
	if (v && !(v[0] == '~' && (v[1] == '\0' || v[1] == '/'))) {
		*out = strdup(v);
		rc = *out ? 0 : -ENOMEM;
		goto out;
	}
	home = home_dir();
	if (!home)
		goto out; /* no home: treat as no file */
	if (v)
		rc = dbuf_addf(&b, "%s%s", home, v + 1);
	else
		rc = dbuf_addf(&b, "%s/.aws/%s", home, name);
	if (rc)
		goto out;
	*out = dbuf_take(&b, NULL);
	if (!*out)
		rc = -ENOMEM;
out:
	free(home);
	dbuf_free(&b);
	return rc;
}

static const char *show_path(const char *path, const char *fallback)
{
	return path ? path : fallback;
}

int awscfg_load(struct awscfg **out, const char *profile, struct dbuf *why)
{
	struct awscfg *cfg;
	struct parse_state st;
	const char *name;
	int rc = -ENOMEM, explicit_profile = 0, found, bare;

	*out = NULL;
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		goto out;

	if (profile && *profile) {
		name = profile;
		cfg->from_option = 1;
		explicit_profile = 1;
	} else if ((name = env_nonempty("AWS_PROFILE"))) {
		explicit_profile = 1;
	} else {
		name = "default";
	}
	cfg->profile = strdup(name);
	if (!cfg->profile)
		goto out;
	rc = resolve_path(&cfg->config_path, "AWS_CONFIG_FILE", "config");
	if (rc)
		goto out;
	rc = resolve_path(&cfg->credentials_path,
			  "AWS_SHARED_CREDENTIALS_FILE", "credentials");
	if (rc)
		goto out;

	rc = parse_file(cfg->config_path, FILE_CONFIG, cfg->profile,
			&cfg->config, &st, why);
	if (rc)
		goto out;
	found = st.found;
	bare = st.bare_found;

	rc = parse_file(cfg->credentials_path, FILE_CREDENTIALS, cfg->profile,
			&cfg->credentials, &st, why);
	if (rc)
		goto out;
	found |= st.found;

	if (explicit_profile && !found) {
		dbuf_addf_opt(why, "profile '%s' not found in %s or %s",
			      cfg->profile,
			      show_path(cfg->config_path, "~/.aws/config"),
			      show_path(cfg->credentials_path,
					"~/.aws/credentials"));
		/* The commonest slip: credentials-file syntax in config. */
		if (bare)
			dbuf_addf_opt(why, " (the config file has [%s]; there it must be [profile %s])",
				      cfg->profile, cfg->profile);
		rc = -ENOENT;
		goto out;
	}
out:
	if (rc)
		awscfg_free(cfg);
	else
		*out = cfg;
	return rc;
}

void awscfg_free(struct awscfg *cfg)
{
	if (!cfg)
		return;
	kv_free_all(&cfg->config);
	kv_free_all(&cfg->credentials);
	free(cfg->profile);
	free(cfg->config_path);
	free(cfg->credentials_path);
	free(cfg);
}

const char *awscfg_profile(const struct awscfg *cfg)
{
	return cfg->profile;
}

int awscfg_profile_from_option(const struct awscfg *cfg)
{
	return cfg->from_option;
}

const char *awscfg_credentials_get(const struct awscfg *cfg, const char *key)
{
	return kv_get(cfg->credentials, key);
}

const char *awscfg_config_get(const struct awscfg *cfg, const char *key)
{
	return kv_get(cfg->config, key);
}

const char *awscfg_config_path(const struct awscfg *cfg)
{
	return cfg->config_path;
}

const char *awscfg_credentials_path(const struct awscfg *cfg)
{
	return cfg->credentials_path;
}

const char *awscfg_region(const struct awscfg *cfg, const char *override)
{
	const char *r;

	if (override && *override)
		return override;
	if ((r = env_nonempty("AWS_REGION")))
		return r;
	if ((r = env_nonempty("AWS_DEFAULT_REGION")))
		return r;
	if (!cfg)
		return NULL;
	r = kv_get(cfg->config, "region");
	if (r && *r)
		return r;
	r = kv_get(cfg->credentials, "region");
	if (r && *r)
		return r;
	return NULL;
}

/* Region and host prefix become part of a host name: only DNS label
 * characters, so a stray "/" or "@" cannot redirect the request. */
static int dns_safe(const char *s)
{
	if (!s || !*s)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		      *s == '-' || *s == '.'))
			return 0;
	return 1;
}

int awscfg_endpoint(const struct awscfg *cfg, const char *override,
		    const char *env_id, const char *host_prefix,
		    const char *region, char **url_out)
{
	struct dbuf b;
	const char *v = NULL, *ignore;
	char name[128];
	size_t n;
	int rc;

	(void)cfg; /* endpoint_url in the config file is not supported yet */
	*url_out = NULL;
	dbuf_init(&b, 8192);
	if (override && *override) {
		v = override;
	} else {
		/* The SDKs' switch to ignore configured endpoints. */
		ignore = env_nonempty("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
		if (!ignore || strcasecmp(ignore, "true") != 0) {
			if (env_id && *env_id &&
			    (size_t)snprintf(name, sizeof(name),
					     "AWS_ENDPOINT_URL_%s", env_id) <
				    sizeof(name))
				v = env_nonempty(name);
			if (!v)
				v = env_nonempty("AWS_ENDPOINT_URL");
		}
	}
	if (v) {
		n = strlen(v);
		while (n && v[n - 1] == '/')
			n--;
		rc = dbuf_add(&b, v, n);
	} else {
		if (!dns_safe(region) || !dns_safe(host_prefix)) {
			rc = -EINVAL;
			goto out;
		}
		/* The China partition has its own DNS suffix. */
		rc = dbuf_addf(&b, "https://%s.%s.amazonaws.com%s", host_prefix,
			       region,
			       strncmp(region, "cn-", 3) == 0 ? ".cn" : "");
	}
	if (rc)
		goto out;
	*url_out = dbuf_take(&b, NULL);
	if (!*url_out)
		rc = -ENOMEM;
out:
	dbuf_free(&b);
	return rc;
}
