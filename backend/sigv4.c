/* sigv4: AWS Signature Version 4 on libcrypto.
 *
 * The signer builds the canonical request, the string to sign and the
 * signature exactly as AWS's test suites pin them down (see docs/sigv4.md).
 * Everything is a pure function of the request and the parameters; the only
 * state is a small cache of derived signing keys, so that the four-HMAC
 * key derivation runs once a day per region and service instead of on every
 * request. */
#include "backend/sigv4.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
#define SIGV4_TERMINATOR "aws4_request"

/* SHA-256 output, and so the size of every key in the HMAC chain. */
#define SIGV4_KEY_LEN 32

/* AWS secret keys are 40 characters.  The "AWS4"+secret seed lives in a
 * fixed stack array so that no copy of the secret is left behind by a
 * reallocation; anything longer than this is not a real secret key. */
#define SIGV4_MAX_SECRET 256

/* Region and service names longer than this are still signed, just not
 * cached (real ones are at most ~25 characters). */
#define SIGV4_SCOPE_PART_MAX 64

/* A handful of (day, region, service) keys: dynfs talks to a few services
 * in one region, and around midnight UTC two days are live at once. */
#define SIGV4_CACHE_SLOTS 8

/* The range AWS accepts for X-Amz-Expires: one second to seven days. */
#define SIGV4_MAX_EXPIRES 604800u

/* Every text the signer builds is small (headers, a URL); the cap only
 * guards against a runaway caller. */
#define SIGV4_TEXT_CAP DBUF_CAP_SMALL

struct sigv4_key_slot {
	bool used;
	unsigned long last_use;
	char date[9];
	char region[SIGV4_SCOPE_PART_MAX + 1];
	char service[SIGV4_SCOPE_PART_MAX + 1];
	/* Which secret the key was derived from: credentials rotate while
	 * the signer lives on, and a key derived from an old secret must not
	 * be reused.  A tagged hash, so it is never itself a usable key. */
	unsigned char secret_fp[SIGV4_KEY_LEN];
	unsigned char key[SIGV4_KEY_LEN];
};

struct sigv4_signer {
	/* Lock order: leaf lock.  It guards only the slots below and is held
	 * just to copy a key in or out: no allocation, no crypto, no logging
	 * and no other lock is taken under it, so it may be taken while any
	 * other dynfs lock is held. */
	pthread_mutex_t lock;
	unsigned long tick;
	struct sigv4_key_slot slot[SIGV4_CACHE_SLOTS];
};

/* Headers that proxies, libcurl or the HTTP layer may add, drop or rewrite
 * in transit (hop-by-hop headers, user agent, tracing), so signing them
 * would only produce spurious signature mismatches.  authorization is the
 * output of signing and can never be an input. */
static const char *const unsignable_headers[] = {
	"authorization", "connection", "expect", "keep-alive",
	"proxy-authorization", "te", "trailer", "transfer-encoding",
	"upgrade", "user-agent", "x-amzn-trace-id",
};

/* ---- small helpers ---------------------------------------------------- */

static bool is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

static bool is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
	       c == '\v' || c == '\f';
}

/* RFC 9110 token characters: what a header name or method may hold. */
static bool is_tchar(unsigned char c)
{
	if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_token(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return false;
	for (i = 0; i < n; i++)
		if (!is_tchar((unsigned char)s[i]))
			return false;
	return true;
}

static unsigned char ascii_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 'a' - 'A') : c;
}

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void to_hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Scope parts go between '/' in the credential and must not break it. */
static bool valid_scope_part(const char *s)
{
	size_t i;

	if (!s || !*s)
		return false;
	for (i = 0; s[i]; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= ' ' || c >= 0x7f || c == '/' || c == ',' || c == '=')
			return false;
	}
	return true;
}

static int add_pct(struct dbuf *b, unsigned char c)
{
	static const char digits[] = "0123456789ABCDEF";
	char enc[3] = { '%', digits[c >> 4], digits[c & 15] };

	return dbuf_add(b, enc, sizeof(enc));
}

/* Percent-encode every byte outside the unreserved set (upper-case hex),
 * keeping '/' when asked.  Input '%' is encoded too: that is what makes the
 * non-S3 path encoding "double". */
static int uri_encode(struct dbuf *b, const char *s, size_t n, bool keep_slash)
{
	size_t i;
	int rc = 0;

	for (i = 0; i < n && !rc; i++) {
		unsigned char c = (unsigned char)s[i];

		if (is_unreserved(c) || (keep_slash && c == '/'))
			rc = dbuf_addc(b, (char)c);
		else
			rc = add_pct(b, c);
	}
	return rc;
}

/* Decode %XX escapes and encode the result once, in one pass: the
 * canonical form of text that is already percent-encoded on the wire
 * (query keys and values, S3 paths).  A raw '/' is kept when asked but an
 * encoded one stays %2F, so decoding never changes the path structure.  A
 * '%' not followed by two hex digits is taken literally. */
static int uri_requote(struct dbuf *b, const char *s, size_t n,
		       bool keep_slash)
{
	size_t i;
	int rc = 0;

	for (i = 0; i < n && !rc; i++) {
		unsigned char c = (unsigned char)s[i];
		bool decoded = false;

		if (c == '%' && i + 2 < n) {
			int hi = hex_value((unsigned char)s[i + 1]);
			int lo = hex_value((unsigned char)s[i + 2]);

			if (hi >= 0 && lo >= 0) {
				c = (unsigned char)(hi << 4 | lo);
				decoded = true;
				i += 2;
			}
		}
		if (is_unreserved(c) || (keep_slash && !decoded && c == '/'))
			rc = dbuf_addc(b, (char)c);
		else
			rc = add_pct(b, c);
	}
	return rc;
}

/* ---- crypto ------------------------------------------------------------ */

static int sha256(const void *data, size_t len, unsigned char md[SIGV4_KEY_LEN])
{
	unsigned int mdlen = 0;

	if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) ||
	    mdlen != SIGV4_KEY_LEN)
		return -EIO;
	return 0;
}

void sigv4_sha256_hex(const void *data, size_t len, char hex[65])
{
	unsigned char md[SIGV4_KEY_LEN];

	/* The interface cannot report failure; an empty string can never
	 * match a real hash, so a failure shows up as a bad signature rather
	 * than as a plausible wrong value. */
	if (sha256(data ? data : "", data ? len : 0, md)) {
		hex[0] = '\0';
		return;
	}
	to_hex(md, sizeof(md), hex);
}

static int hmac_sha256(const void *key, size_t key_len, const void *data,
		       size_t len, unsigned char out[SIGV4_KEY_LEN])
{
	unsigned int outlen = 0;

	if (!HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &outlen) ||
	    outlen != SIGV4_KEY_LEN)
		return -EIO;
	return 0;
}

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service),
 * "aws4_request").  Intermediate keys alternate between two buffers so no
 * call writes over its own key. */
static int derive_key(const char *secret, const char *date, const char *region,
		      const char *service, unsigned char key[SIGV4_KEY_LEN])
{
	unsigned char seed[4 + SIGV4_MAX_SECRET];
	unsigned char k1[SIGV4_KEY_LEN], k2[SIGV4_KEY_LEN];
	size_t slen = strlen(secret);
	int rc;

	if (slen > SIGV4_MAX_SECRET)
		return -EINVAL;
	memcpy(seed, "AWS4", 4);
	memcpy(seed + 4, secret, slen);
	rc = hmac_sha256(seed, 4 + slen, date, strlen(date), k1);
	if (rc)
		goto out;
	rc = hmac_sha256(k1, sizeof(k1), region, strlen(region), k2);
	if (rc)
		goto out;
	rc = hmac_sha256(k2, sizeof(k2), service, strlen(service), k1);
	if (rc)
		goto out;
	rc = hmac_sha256(k1, sizeof(k1), SIGV4_TERMINATOR,
			 strlen(SIGV4_TERMINATOR), key);
out:
	OPENSSL_cleanse(seed, sizeof(seed));
	OPENSSL_cleanse(k1, sizeof(k1));
	OPENSSL_cleanse(k2, sizeof(k2));
	return rc;
}

/* Identifies a secret without being usable as one: SHA-256 over a tag and
 * the secret.  (A bare SHA-256 of "AWS4"+secret would be an equivalent HMAC
 * key for long secrets, hence the tag.) */
static int secret_fingerprint(const char *secret,
			      unsigned char fp[SIGV4_KEY_LEN])
{
	static const char tag[] = "dynfs sigv4 key cache v1";
	EVP_MD_CTX *ctx;
	unsigned int len = 0;
	int rc = -EIO;

	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return -ENOMEM;
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
	    EVP_DigestUpdate(ctx, tag, sizeof(tag)) &&
	    EVP_DigestUpdate(ctx, secret, strlen(secret)) &&
	    EVP_DigestFinal_ex(ctx, fp, &len) && len == SIGV4_KEY_LEN)
		rc = 0;
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* ---- the signing-key cache -------------------------------------------- */

struct sigv4_signer *sigv4_signer_new(void)
{
	struct sigv4_signer *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	if (pthread_mutex_init(&s->lock, NULL)) {
		free(s);
		return NULL;
	}
	return s;
}

void sigv4_signer_free(struct sigv4_signer *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}

static bool slot_matches(const struct sigv4_key_slot *sl, const char *date,
			 const char *region, const char *service,
			 const unsigned char fp[SIGV4_KEY_LEN])
{
	return sl->used && !strcmp(sl->date, date) &&
	       !strcmp(sl->region, region) && !strcmp(sl->service, service) &&
	       !CRYPTO_memcmp(sl->secret_fp, fp, SIGV4_KEY_LEN);
}

/* The signing key for date/region/service, from the cache or derived and
 * stored.  The derivation runs outside the lock; two threads missing at
 * once both derive the same key, which is harmless. */
static int signing_key(struct sigv4_signer *s, const struct sigv4_params *p,
		       const char *date, unsigned char key[SIGV4_KEY_LEN])
{
	unsigned char fp[SIGV4_KEY_LEN];
	struct sigv4_key_slot *victim;
	bool cacheable;
	size_t i;
	int rc;

	cacheable = strlen(p->region) <= SIGV4_SCOPE_PART_MAX &&
		    strlen(p->service) <= SIGV4_SCOPE_PART_MAX;
	if (!cacheable)
		return derive_key(p->secret_key, date, p->region, p->service,
				  key);

	rc = secret_fingerprint(p->secret_key, fp);
	if (rc)
		goto out;

	if (pthread_mutex_lock(&s->lock) == 0) {
		for (i = 0; i < SIGV4_CACHE_SLOTS; i++) {
			struct sigv4_key_slot *sl = &s->slot[i];

			if (slot_matches(sl, date, p->region, p->service,
					 fp)) {
				memcpy(key, sl->key, SIGV4_KEY_LEN);
				sl->last_use = ++s->tick;
				pthread_mutex_unlock(&s->lock);
				goto out;
			}
		}
		pthread_mutex_unlock(&s->lock);
	}

	rc = derive_key(p->secret_key, date, p->region, p->service, key);
	if (rc)
		goto out;

	if (pthread_mutex_lock(&s->lock) == 0) {
		/* Replace the least recently used slot (an unused one has
		 * last_use 0 and so goes first). */
		victim = &s->slot[0];
		for (i = 0; i < SIGV4_CACHE_SLOTS; i++) {
			struct sigv4_key_slot *sl = &s->slot[i];

			if (slot_matches(sl, date, p->region, p->service,
					 fp)) {
				victim = sl;
				break;
			}
			if (sl->last_use < victim->last_use)
				victim = sl;
		}
		victim->used = true;
		victim->last_use = ++s->tick;
		memcpy(victim->date, date, sizeof(victim->date));
		strcpy(victim->region, p->region);
		strcpy(victim->service, p->service);
		memcpy(victim->secret_fp, fp, SIGV4_KEY_LEN);
		memcpy(victim->key, key, SIGV4_KEY_LEN);
		pthread_mutex_unlock(&s->lock);
	}
out:
	OPENSSL_cleanse(fp, sizeof(fp));
	return rc;
}

/* ---- canonical path --------------------------------------------------- */

/* Drop empty and "." segments and resolve ".." on the path as sent, the
 * way AWS's SDKs do: a trailing '/' survives only if some segment does. */
static int normalize_path(struct dbuf *b, const char *path)
{
	const char *p = path, *seg;
	size_t n, len = strlen(path);
	int rc = 0;

	while (*p && !rc) {
		while (*p == '/')
			p++;
		seg = p;
		while (*p && *p != '/')
			p++;
		n = (size_t)(p - seg);
		if (n == 0 || (n == 1 && seg[0] == '.'))
			continue;
		if (n == 2 && seg[0] == '.' && seg[1] == '.') {
			const char *last = strrchr(dbuf_str(b), '/');

			dbuf_truncate(b, last ? (size_t)(last - dbuf_str(b))
					      : 0);
			continue;
		}
		rc = dbuf_addc(b, '/');
		if (!rc)
			rc = dbuf_add(b, seg, n);
	}
	if (rc)
		return rc;
	if (dbuf_len(b) == 0)
		return dbuf_addc(b, '/');
	if (path[len - 1] == '/')
		return dbuf_addc(b, '/');
	return 0;
}

static int canonical_path(struct dbuf *b, const char *path, unsigned flags)
{
	struct dbuf norm;
	int rc;

	if (!path || !*path)
		return dbuf_addc(b, '/');
	if (path[0] != '/')
		return -EINVAL;
	/* S3: the object key is the path, dots and double slashes included;
	 * the wire form is already encoded once, so only its encoding is
	 * made canonical. */
	if (flags & SIGV4_NO_NORMALIZE)
		return uri_requote(b, path, strlen(path), true);

	dbuf_init(&norm, SIGV4_TEXT_CAP);
	rc = normalize_path(&norm, path);
	if (!rc)
		rc = uri_encode(b, dbuf_str(&norm), dbuf_len(&norm), true);
	dbuf_free(&norm);
	return rc;
}

/* ---- canonical query -------------------------------------------------- */

struct qparam {
	size_t koff, klen, voff, vlen;
	const char *k, *v;
};

/* Canonical (encoded) parameters: text in one buffer, offsets until the
 * buffer stops growing, then pointers for sorting. */
struct qlist {
	struct dbuf text;
	struct qparam *p;
	size_t n, max;
};

static int qlist_add(struct qlist *q, const char *k, size_t klen,
		     const char *v, size_t vlen, bool requote)
{
	struct qparam *e;
	int rc;

	if (q->n >= q->max)
		return -EINVAL;
	e = &q->p[q->n];
	e->koff = dbuf_len(&q->text);
	rc = requote ? uri_requote(&q->text, k, klen, false)
		     : uri_encode(&q->text, k, klen, false);
	if (rc)
		return rc;
	e->klen = dbuf_len(&q->text) - e->koff;
	e->voff = dbuf_len(&q->text);
	rc = requote ? uri_requote(&q->text, v, vlen, false)
		     : uri_encode(&q->text, v, vlen, false);
	if (rc)
		return rc;
	e->vlen = dbuf_len(&q->text) - e->voff;
	q->n++;
	return 0;
}

static int qlist_add_str(struct qlist *q, const char *k, const char *v)
{
	return qlist_add(q, k, strlen(k), v, strlen(v), false);
}

/* Split the wire query on '&' and the first '='.  Empty pieces ("a&&b")
 * carry nothing and are dropped.  '+' is taken literally (encoded %2B):
 * AWS query strings encode a space as %20, never as '+'. */
static int qlist_parse(struct qlist *q, const char *query)
{
	const char *p = query, *amp, *eq;
	int rc = 0;

	while (p && *p && !rc) {
		amp = strchr(p, '&');
		if (!amp)
			amp = p + strlen(p);
		if (amp > p) {
			eq = memchr(p, '=', (size_t)(amp - p));
			if (eq)
				rc = qlist_add(q, p, (size_t)(eq - p), eq + 1,
					       (size_t)(amp - eq - 1), true);
			else
				rc = qlist_add(q, p, (size_t)(amp - p), "", 0,
					       true);
		}
		p = *amp ? amp + 1 : amp;
	}
	return rc;
}

static int bytes_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static int qparam_cmp(const void *x, const void *y)
{
	const struct qparam *a = x, *b = y;
	int c = bytes_cmp(a->k, a->klen, b->k, b->klen);

	return c ? c : bytes_cmp(a->v, a->vlen, b->v, b->vlen);
}

static bool qlist_has_key(const struct qlist *q, const char *key)
{
	size_t i, n = strlen(key);

	for (i = 0; i < q->n; i++)
		if (q->p[i].klen == n &&
		    !memcmp(dbuf_str(&q->text) + q->p[i].koff, key, n))
			return true;
	return false;
}

/* Sort and join as k=v&k=v (a key without value is "key="). */
static int qlist_emit(struct qlist *q, struct dbuf *out)
{
	const char *base = dbuf_str(&q->text);
	size_t i;
	int rc = 0;

	for (i = 0; i < q->n; i++) {
		q->p[i].k = base + q->p[i].koff;
		q->p[i].v = base + q->p[i].voff;
	}
	if (q->n > 1)
		qsort(q->p, q->n, sizeof(*q->p), qparam_cmp);
	for (i = 0; i < q->n && !rc; i++) {
		if (i)
			rc = dbuf_addc(out, '&');
		if (!rc)
			rc = dbuf_add(out, q->p[i].k, q->p[i].klen);
		if (!rc)
			rc = dbuf_addc(out, '=');
		if (!rc)
			rc = dbuf_add(out, q->p[i].v, q->p[i].vlen);
	}
	return rc;
}

/* ---- canonical headers ------------------------------------------------ */

struct hentry {
	const char *name;
	size_t nlen;
	const char *value;
	size_t order; /* position on the wire: repeated names keep it */
};

static bool name_is(const char *name, size_t nlen, const char *lower)
{
	size_t i;

	if (strlen(lower) != nlen)
		return false;
	for (i = 0; i < nlen; i++)
		if (ascii_lower((unsigned char)name[i]) !=
		    (unsigned char)lower[i])
			return false;
	return true;
}

static int name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t i, n = alen < blen ? alen : blen;

	for (i = 0; i < n; i++) {
		unsigned char ca = ascii_lower((unsigned char)a[i]);
		unsigned char cb = ascii_lower((unsigned char)b[i]);

		if (ca != cb)
			return ca < cb ? -1 : 1;
	}
	return alen < blen ? -1 : alen > blen;
}

static int hentry_cmp(const void *x, const void *y)
{
	const struct hentry *a = x, *b = y;
	int c = name_cmp(a->name, a->nlen, b->name, b->nlen);

	if (c)
		return c;
	return a->order < b->order ? -1 : a->order > b->order;
}

/* Trim the value and collapse each inner run of white space (folded lines
 * included) to one space. */
static int add_header_value(struct dbuf *b, const char *v)
{
	const unsigned char *p = (const unsigned char *)v;
	bool gap = false, any = false;
	int rc = 0;

	for (; *p && !rc; p++) {
		if (is_space(*p)) {
			gap = any;
			continue;
		}
		if (gap)
			rc = dbuf_addc(b, ' ');
		if (!rc)
			rc = dbuf_addc(b, (char)*p);
		gap = false;
		any = true;
	}
	return rc;
}

static void hlist_push(struct hentry *h, size_t *n, const char *name,
		       const char *value)
{
	h[*n].name = name;
	h[*n].nlen = strlen(name);
	h[*n].value = value;
	h[*n].order = *n;
	(*n)++;
}

/* Whether a request header is left out of signing: one the signer itself
 * produces (its value comes from the parameters, never from the caller) or
 * one that does not survive transit unchanged. */
static bool header_skipped(const char *name, size_t nlen, bool own_token,
			   bool own_sha)
{
	size_t i;

	if (name_is(name, nlen, "x-amz-date"))
		return true;
	if (own_token && name_is(name, nlen, "x-amz-security-token"))
		return true;
	if (own_sha && name_is(name, nlen, "x-amz-content-sha256"))
		return true;
	for (i = 0; i < sizeof(unsignable_headers) /
			sizeof(unsignable_headers[0]); i++)
		if (name_is(name, nlen, unsignable_headers[i]))
			return true;
	return false;
}

/* Canonical header block (each line ending in '\n') and the signed-header
 * list.  extra holds the signer's own headers (x-amz-date and friends). */
static int canonical_headers(const struct sigv4_request *req,
			     const struct sigv4_header *extra, size_t nextra,
			     bool own_token, bool own_sha, struct dbuf *canon,
			     struct dbuf *signed_list)
{
	struct hentry *h = NULL;
	size_t n = 0, i, j;
	bool host = false;
	int rc = 0;

	if (req->nheaders && !req->headers)
		return -EINVAL;
	h = calloc(req->nheaders + nextra + 1, sizeof(*h));
	if (!h)
		return -ENOMEM;

	for (i = 0; i < req->nheaders; i++) {
		const struct sigv4_header *rh = &req->headers[i];
		size_t nlen;

		if (!rh->name) {
			rc = -EINVAL;
			goto out;
		}
		nlen = strlen(rh->name);
		if (!is_token(rh->name, nlen)) {
			rc = -EINVAL;
			goto out;
		}
		if (header_skipped(rh->name, nlen, own_token, own_sha))
			continue;
		if (name_is(rh->name, nlen, "host")) {
			/* One Host header with a value: anything else is a
			 * malformed request the server would reject. */
			if (host || !rh->value) {
				rc = -EINVAL;
				goto out;
			}
			host = true;
		}
		hlist_push(h, &n, rh->name, rh->value ? rh->value : "");
	}
	if (!host) {
		rc = -EINVAL;
		goto out;
	}
	for (i = 0; i < nextra; i++)
		hlist_push(h, &n, extra[i].name, extra[i].value);

	qsort(h, n, sizeof(*h), hentry_cmp);

	for (i = 0; i < n && !rc; i = j) {
		size_t k;

		if (i)
			rc = dbuf_addc(signed_list, ';');
		for (k = 0; k < h[i].nlen && !rc; k++) {
			char c = (char)ascii_lower((unsigned char)h[i].name[k]);

			rc = dbuf_addc(signed_list, c);
			if (!rc)
				rc = dbuf_addc(canon, c);
		}
		if (!rc)
			rc = dbuf_addc(canon, ':');
		for (j = i; j < n && !rc &&
			    !name_cmp(h[i].name, h[i].nlen, h[j].name,
				      h[j].nlen);
		     j++) {
			if (j > i)
				rc = dbuf_addc(canon, ',');
			if (!rc)
				rc = add_header_value(canon, h[j].value);
		}
		if (!rc)
			rc = dbuf_addc(canon, '\n');
	}
out:
	free(h);
	return rc;
}

/* ---- signing ---------------------------------------------------------- */

static void out_init(struct sigv4_out *out)
{
	memset(out, 0, sizeof(*out));
	dbuf_init(&out->canonical_request, SIGV4_TEXT_CAP);
	dbuf_init(&out->string_to_sign, SIGV4_TEXT_CAP);
	dbuf_init(&out->authorization, SIGV4_TEXT_CAP);
	dbuf_init(&out->query, SIGV4_TEXT_CAP);
}

void sigv4_out_free(struct sigv4_out *out)
{
	if (!out)
		return;
	/* The canonical request and the query may hold the session token. */
	dbuf_free_secret(&out->canonical_request);
	dbuf_free(&out->string_to_sign);
	dbuf_free(&out->authorization);
	dbuf_free_secret(&out->query);
	out->amz_date[0] = '\0';
	out->content_sha256[0] = '\0';
	out->signature[0] = '\0';
}

static int check_params(const struct sigv4_request *req,
			const struct sigv4_params *p)
{
	if (!req || !p || !req->method || !p->secret_key || !*p->secret_key)
		return -EINVAL;
	if (!is_token(req->method, strlen(req->method)))
		return -EINVAL;
	if (!valid_scope_part(p->access_key) || !valid_scope_part(p->region) ||
	    !valid_scope_part(p->service))
		return -EINVAL;
	if (strlen(p->secret_key) > SIGV4_MAX_SECRET)
		return -EINVAL;
	if (req->body_len && !req->body)
		return -EINVAL;
	return 0;
}

/* The payload hash goes on its own line and maybe into a header: any
 * printable text without spaces, at most a hex SHA-256 long. */
static int payload_hash(const struct sigv4_request *req, char out[65])
{
	size_t i, n;

	if (!req->payload_hash) {
		sigv4_sha256_hex(req->body, req->body_len, out);
		return out[0] ? 0 : -EIO;
	}
	n = strlen(req->payload_hash);
	if (n == 0 || n > 64)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)req->payload_hash[i];

		if (c <= ' ' || c >= 0x7f)
			return -EINVAL;
	}
	memcpy(out, req->payload_hash, n + 1);
	return 0;
}

static int sign_common(struct sigv4_signer *s, const struct sigv4_request *req,
		       const struct sigv4_params *p, bool presign,
		       unsigned expires_s, struct sigv4_out *out)
{
	struct sigv4_header extra[3];
	struct dbuf scope, canon_h, signed_h, canon_q;
	struct qlist q = { .p = NULL };
	unsigned char key[SIGV4_KEY_LEN], mac[SIGV4_KEY_LEN];
	char phash[65], crhash[65], date[9], expires[16];
	const char *token = NULL;
	bool sign_token, sign_body;
	size_t nextra = 0;
	struct tm tm;
	int rc;

	dbuf_init(&scope, SIGV4_TEXT_CAP);
	dbuf_init(&canon_h, SIGV4_TEXT_CAP);
	dbuf_init(&signed_h, SIGV4_TEXT_CAP);
	dbuf_init(&canon_q, SIGV4_TEXT_CAP);
	dbuf_init(&q.text, SIGV4_TEXT_CAP);

	if (!out) {
		rc = -EINVAL;
		goto out;
	}
	out_init(out);

	rc = check_params(req, p);
	if (rc)
		goto out;
	if (!s ||
	    (presign && (expires_s < 1 || expires_s > SIGV4_MAX_EXPIRES))) {
		rc = -EINVAL;
		goto out;
	}

	if (!gmtime_r(&p->now, &tm) ||
	    strftime(out->amz_date, sizeof(out->amz_date), "%Y%m%dT%H%M%SZ",
		     &tm) != 16) {
		rc = -EINVAL;
		goto out;
	}
	memcpy(date, out->amz_date, 8);
	date[8] = '\0';

	if (p->session_token && *p->session_token)
		token = p->session_token;
	sign_token = token && !(p->flags & SIGV4_OMIT_TOKEN);
	/* A presigned URL carries no headers of ours, so the body hash is
	 * only ever a header-signing feature. */
	sign_body = !presign && (p->flags & SIGV4_SIGN_BODY);

	rc = payload_hash(req, phash);
	if (rc)
		goto out;

	rc = dbuf_addf(&scope, "%s/%s/%s/%s", date, p->region, p->service,
		       SIGV4_TERMINATOR);
	if (rc)
		goto out;

	if (!presign) {
		extra[nextra].name = "x-amz-date";
		extra[nextra++].value = out->amz_date;
		if (sign_token) {
			extra[nextra].name = "x-amz-security-token";
			extra[nextra++].value = token;
		}
		if (sign_body) {
			memcpy(out->content_sha256, phash, sizeof(phash));
			extra[nextra].name = "x-amz-content-sha256";
			extra[nextra++].value = out->content_sha256;
		}
	}
	/* The token is ours whenever we have one, signed or not: a copy in
	 * the caller's headers would be a second, possibly stale, value. */
	rc = canonical_headers(req, extra, nextra, token != NULL, sign_body,
			       &canon_h, &signed_h);
	if (rc)
		goto out;

	/* Room for every '&'-separated piece plus the X-Amz-* parameters. */
	q.max = 6;
	if (req->query) {
		const char *c;

		for (c = req->query; *c; c++)
			q.max += *c == '&';
		q.max++;
	}
	q.p = calloc(q.max, sizeof(*q.p));
	if (!q.p) {
		rc = -ENOMEM;
		goto out;
	}
	rc = qlist_parse(&q, req->query);
	if (rc)
		goto out;
	if (presign) {
		static const char *const ours[] = {
			"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date",
			"X-Amz-Expires", "X-Amz-SignedHeaders",
			"X-Amz-Security-Token", "X-Amz-Signature",
		};
		struct dbuf cred;
		size_t i;

		/* A URL that already carries signing parameters would end up
		 * with two of them; refuse instead of guessing. */
		for (i = 0; i < sizeof(ours) / sizeof(ours[0]); i++) {
			if (qlist_has_key(&q, ours[i])) {
				rc = -EINVAL;
				goto out;
			}
		}
		dbuf_init(&cred, SIGV4_TEXT_CAP);
		rc = dbuf_addf(&cred, "%s/%s", p->access_key, dbuf_str(&scope));
		snprintf(expires, sizeof(expires), "%u", expires_s);
		if (!rc)
			rc = qlist_add_str(&q, "X-Amz-Algorithm",
					   SIGV4_ALGORITHM);
		if (!rc)
			rc = qlist_add_str(&q, "X-Amz-Credential",
					   dbuf_str(&cred));
		if (!rc)
			rc = qlist_add_str(&q, "X-Amz-Date", out->amz_date);
		if (!rc)
			rc = qlist_add_str(&q, "X-Amz-Expires", expires);
		if (!rc)
			rc = qlist_add_str(&q, "X-Amz-SignedHeaders",
					   dbuf_str(&signed_h));
		if (!rc && sign_token)
			rc = qlist_add_str(&q, "X-Amz-Security-Token", token);
		dbuf_free(&cred);
		if (rc)
			goto out;
	}
	rc = qlist_emit(&q, &canon_q);
	if (rc)
		goto out;

	rc = dbuf_addf(&out->canonical_request, "%s\n", req->method);
	if (!rc)
		rc = canonical_path(&out->canonical_request, req->path,
				    p->flags);
	if (!rc)
		rc = dbuf_addf(&out->canonical_request, "\n%s\n%s\n%s\n%s",
			       dbuf_str(&canon_q), dbuf_str(&canon_h),
			       dbuf_str(&signed_h), phash);
	if (rc)
		goto out;

	sigv4_sha256_hex(dbuf_str(&out->canonical_request),
			 dbuf_len(&out->canonical_request), crhash);
	if (!crhash[0]) {
		rc = -EIO;
		goto out;
	}
	rc = dbuf_addf(&out->string_to_sign, "%s\n%s\n%s\n%s", SIGV4_ALGORITHM,
		       out->amz_date, dbuf_str(&scope), crhash);
	if (rc)
		goto out;

	rc = signing_key(s, p, date, key);
	if (rc)
		goto out;
	rc = hmac_sha256(key, sizeof(key), dbuf_str(&out->string_to_sign),
			 dbuf_len(&out->string_to_sign), mac);
	if (rc)
		goto out;
	to_hex(mac, sizeof(mac), out->signature);

	if (presign) {
		rc = dbuf_add(&out->query, dbuf_str(&canon_q),
			      dbuf_len(&canon_q));
		/* With OMIT_TOKEN the service wants the token, just not
		 * signed: it rides along unsigned. */
		if (!rc && token && !sign_token) {
			rc = dbuf_adds(&out->query,
				       dbuf_len(&canon_q) ?
				       "&X-Amz-Security-Token=" :
				       "X-Amz-Security-Token=");
			if (!rc)
				rc = uri_encode(&out->query, token,
						strlen(token), false);
		}
		if (!rc)
			rc = dbuf_addf(&out->query, "%sX-Amz-Signature=%s",
				       dbuf_len(&out->query) ? "&" : "",
				       out->signature);
	} else {
		rc = dbuf_addf(&out->authorization,
			       "%s Credential=%s/%s, SignedHeaders=%s, "
			       "Signature=%s",
			       SIGV4_ALGORITHM, p->access_key,
			       dbuf_str(&scope), dbuf_str(&signed_h),
			       out->signature);
	}
out:
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(mac, sizeof(mac));
	dbuf_free(&scope);
	dbuf_free_secret(&canon_h);
	dbuf_free(&signed_h);
	dbuf_free_secret(&canon_q);
	dbuf_free_secret(&q.text);
	free(q.p);
	if (rc) {
		/* No half-signed result: a caller ignoring rc must not send
		 * a request with a plausible but wrong signature. */
		sigv4_out_free(out);
	}
	return rc;
}

int sigv4_sign(struct sigv4_signer *s, const struct sigv4_request *req,
	       const struct sigv4_params *p, struct sigv4_out *out)
{
	return sign_common(s, req, p, false, 0, out);
}

int sigv4_presign(struct sigv4_signer *s, const struct sigv4_request *req,
		  const struct sigv4_params *p, unsigned expires_s,
		  struct sigv4_out *out)
{
	return sign_common(s, req, p, true, expires_s, out);
}
