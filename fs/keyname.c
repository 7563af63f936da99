/* keyname: the reversible codec between DynamoDB key values and file names.
 *
 * The one property everything here serves: the map key -> name is
 * one-to-one for a given max_len, and decode accepts exactly the image of
 * encode.  So decode checks canonical form (no needless or lower-case
 * escapes, normalized numbers, base64url without padding and with zero
 * trailing bits, the exact long-key cut) instead of being liberal, since a
 * second name for the same key would show one item as two files.
 * docs/key-names.md explains the rules. */
#include "fs/keyname.h"

#include <errno.h>
#include <string.h>

#include <openssl/evp.h>

#include "backend/b64.h"
#include "backend/ddbjson.h"
#include "backend/ddbnum.h"

/* DynamoDB keys are at most 2048 bytes; the cap only keeps a broken caller
 * from making us allocate without bound. */
#define KEYNAME_RAW_CAP DBUF_CAP_SMALL

/* Longest escape or UTF-8 sequence in a string name: the decoder uses it
 * to tell whether a long-key prefix is the longest one encode would cut. */
#define KEYNAME_S_MAX_UNIT 4
/* A base64url group: 4 characters for 3 bytes, so a cut prefix decodes to
 * whole bytes. */
#define KEYNAME_B_GROUP 4

/* Number text longer than this is refused before it is read.  A
 * normalized DynamoDB number is at most 170 characters ("-0." + 129 zeros
 * + 38 digits); only zero padding makes a valid one longer. */
#define NUM_TEXT_MAX 1024

static const char hex_upper[] = "0123456789ABCDEF";
static const char hex_lower[] = "0123456789abcdef";

static char type_letter(enum keyname_type t)
{
	switch (t) {
	case KEYNAME_S:
		return 'S';
	case KEYNAME_N:
		return 'N';
	case KEYNAME_B:
		return 'B';
	}
	return '\0';
}

/* The string inside a typed value of type t; exactly {"<t>": "..."}. */
static int typed_text(enum keyname_type t, const json_t *value,
		      const char **text, size_t *len)
{
	char tag[2] = { type_letter(t), '\0' };
	const json_t *v;

	if (!tag[0] || !json_is_object(value) || json_object_size(value) != 1)
		return -EINVAL;
	v = json_object_get(value, tag);
	if (!json_is_string(v))
		return -EINVAL;
	*text = json_string_value(v);
	*len = json_string_length(v);
	return 0;
}

/* ---- string units ----------------------------------------------------- */

/* Bytes a string name writes as %XX: the escape character itself, the
 * path separator, control bytes (unprintable, and some tools choke on
 * them), and a leading dot so that no key becomes ".", ".." or hidden. */
static int s_must_escape(unsigned char c, int first)
{
	return c == '%' || c == '/' || c < 0x20 || c == 0x7F ||
	       (first && c == '.');
}

/* The encoded unit at raw offset i: returns its length in the name (3 for
 * an escape) and sets *in_len to the raw bytes it covers; 0 when the raw
 * text is not valid UTF-8 there. */
static size_t s_unit(const unsigned char *s, size_t n, size_t i,
		     size_t *in_len)
{
	size_t u;

	if (s_must_escape(s[i], i == 0)) {
		*in_len = 1;
		return 3;
	}
	u = ddbjson_utf8_len(s + i, n - i);
	*in_len = u;
	return u;
}

/* ---- hash ------------------------------------------------------------- */

/* First 16 bytes of SHA-256(type letter || raw key), as lower-case hex.
 * The type letter keeps an S key and a B key with the same bytes apart. */
static int key_hash(enum keyname_type t, const void *raw, size_t n,
		    char hex[KEYNAME_HASH_HEX + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	char tag = type_letter(t);
	EVP_MD_CTX *ctx;
	int rc = 0;

	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return -ENOMEM;
	/* OpenSSL fails here only for lack of memory (or a broken provider
	 * setup, which we cannot tell apart and treat the same). */
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, &tag, 1) != 1 ||
	    EVP_DigestUpdate(ctx, raw, n) != 1 ||
	    EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 ||
	    mdlen * 2 < KEYNAME_HASH_HEX) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < KEYNAME_HASH_HEX / 2; i++) {
		hex[2 * i] = hex_lower[md[i] >> 4];
		hex[2 * i + 1] = hex_lower[md[i] & 0xF];
	}
	hex[KEYNAME_HASH_HEX] = '\0';
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* ---- numbers ------------------------------------------------------------ */

/* DynamoDB's normalized form of the number text s[0..n): what DynamoDB
 * returns for any number it stores, so the name it gets. */
static int num_normalize(const char *s, size_t n, struct dbuf *out)
{
	if (n > NUM_TEXT_MAX)
		return -EINVAL;
	return ddbnum_normalize(s, n, out);
}

/* ---- raw keys ------------------------------------------------------------ */

/* The raw bytes of a typed key: the UTF-8 of S, the normalized text of N,
 * the decoded bytes of B.  These are what a name encodes and what the
 * long-key hash covers. */
static int raw_key(enum keyname_type t, const json_t *value, struct dbuf *raw)
{
	const char *text;
	size_t len, i, u;
	int rc;

	rc = typed_text(t, value, &text, &len);
	if (rc)
		return rc;
	switch (t) {
	case KEYNAME_S:
		/* jansson checks UTF-8 unless built with the nocheck calls;
		 * check again since cut points depend on it. */
		for (i = 0; i < len; i += u) {
			u = ddbjson_utf8_len((const unsigned char *)text + i,
					     len - i);
			if (!u)
				return -EINVAL;
		}
		rc = dbuf_add(raw, text, len);
		break;
	case KEYNAME_N:
		rc = num_normalize(text, len, raw);
		break;
	case KEYNAME_B:
		/* Any spelling DynamoDB (or an emulator) sends stands for the
		 * bytes it decodes to: padding optional, stray bits ignored. */
		rc = b64_decode(text, len, B64_STD, 0, raw);
		break;
	default:
		rc = -EINVAL;
	}
	/* DynamoDB forbids empty key values. */
	if (!rc && dbuf_len(raw) == 0)
		rc = -EINVAL;
	return rc;
}

/* {"<t>": <raw as the wire text>} */
static int make_typed(enum keyname_type t, const char *raw, size_t n,
		      json_t **out)
{
	char tag[2] = { type_letter(t), '\0' };
	struct dbuf text;
	json_t *obj = NULL, *str;
	int rc = -ENOMEM;

	dbuf_init(&text, KEYNAME_RAW_CAP * 2);
	if (t == KEYNAME_B) {
		rc = b64_encode(raw, n, B64_STD, &text);
		if (rc)
			goto out;
		raw = dbuf_str(&text);
		n = dbuf_len(&text);
	}
	/* Our own checks already passed, so a NULL here means no memory. */
	rc = -ENOMEM;
	str = json_stringn(raw, n);
	if (!str)
		goto out;
	obj = json_object();
	if (!obj || json_object_set_new(obj, tag, str)) {
		if (!obj)
			json_decref(str);
		goto out;
	}
	*out = obj;
	obj = NULL;
	rc = 0;
out:
	json_decref(obj);
	dbuf_free(&text);
	return rc;
}

/* ---- encode ------------------------------------------------------------ */

static int add_fallback(enum keyname_type t, const char *raw, size_t n,
			struct dbuf *out)
{
	char hex[KEYNAME_HASH_HEX + 1];
	int rc;

	rc = key_hash(t, raw, n, hex);
	if (!rc)
		rc = dbuf_add(out, "%~", 2);
	if (!rc)
		rc = dbuf_add(out, hex, KEYNAME_HASH_HEX);
	return rc;
}

static int s_encode(const char *raw, size_t n, size_t max_len,
		    struct dbuf *out)
{
	const unsigned char *s = (const unsigned char *)raw;
	size_t i, u, in, total = 0, used = 0, budget;
	char esc[3];
	int rc;

	for (i = 0; i < n; i += in) {
		u = s_unit(s, n, i, &in);
		if (!u)
			return -EINVAL;
		total += u;
	}
	if (total <= max_len)
		budget = total;
	else if (max_len > KEYNAME_FALLBACK_LEN)
		budget = max_len - KEYNAME_FALLBACK_LEN;
	else
		return -ENAMETOOLONG;
	/* Whole units only, and stop at the first that does not fit: the
	 * prefix must be a prefix of the full encoding. */
	for (i = 0; i < n; i += in) {
		u = s_unit(s, n, i, &in);
		if (used + u > budget)
			break;
		if (in == 1 && u == 3) {
			esc[0] = '%';
			esc[1] = hex_upper[s[i] >> 4];
			esc[2] = hex_upper[s[i] & 0xF];
			rc = dbuf_add(out, esc, 3);
		} else {
			rc = dbuf_add(out, raw + i, in);
		}
		if (rc)
			return rc;
		used += u;
	}
	if (total <= max_len)
		return 0;
	if (used == 0)
		return -ENAMETOOLONG;
	return add_fallback(KEYNAME_S, raw, n, out);
}

static int b_encode(const char *raw, size_t n, size_t max_len,
		    struct dbuf *out)
{
	size_t full = (4 * n + 2) / 3, groups;
	int rc;

	if (full <= max_len)
		return b64_encode(raw, n, B64_URL, out);
	groups = max_len > KEYNAME_FALLBACK_LEN ?
		 (max_len - KEYNAME_FALLBACK_LEN) / KEYNAME_B_GROUP : 0;
	if (groups == 0)
		return -ENAMETOOLONG;
	/* full > max_len guarantees 3 * groups < n, so the cut is inside. */
	rc = b64_encode(raw, 3 * groups, B64_URL, out);
	if (!rc)
		rc = add_fallback(KEYNAME_B, raw, n, out);
	return rc;
}

int keyname_encode(enum keyname_type t, const json_t *value, size_t max_len,
		   struct dbuf *name_out)
{
	size_t start = dbuf_len(name_out);
	struct dbuf raw;
	int rc;

	dbuf_init(&raw, KEYNAME_RAW_CAP);
	rc = raw_key(t, value, &raw);
	if (rc)
		goto out;
	switch (t) {
	case KEYNAME_S:
		rc = s_encode(dbuf_str(&raw), dbuf_len(&raw), max_len,
			      name_out);
		break;
	case KEYNAME_N:
		/* Normalized numbers are [-0-9.] and never start with "." or
		 * hold "/" or "%", so they need no escaping; at most 170
		 * characters, they never need the long-key form either. */
		if (dbuf_len(&raw) > max_len)
			rc = -ENAMETOOLONG;
		else
			rc = dbuf_add(name_out, dbuf_str(&raw), dbuf_len(&raw));
		break;
	case KEYNAME_B:
		rc = b_encode(dbuf_str(&raw), dbuf_len(&raw), max_len,
			      name_out);
		break;
	default:
		rc = -EINVAL;
	}
out:
	if (rc)
		dbuf_truncate(name_out, start);
	dbuf_free(&raw);
	return rc;
}

/* ---- decode ------------------------------------------------------------ */

static int hex_upper_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* name[at] is the '%' of "%~": the rest must be exactly the hash. */
static int parse_tail(const char *name, size_t len, size_t at,
		      struct keyname_decoded *out)
{
	size_t i;
	char c;

	if (len - at != KEYNAME_FALLBACK_LEN || name[at + 1] != '~')
		return -EINVAL;
	for (i = 0; i < KEYNAME_HASH_HEX; i++) {
		c = name[at + 2 + i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return -EINVAL;
		out->hash[i] = c;
	}
	out->hash[KEYNAME_HASH_HEX] = '\0';
	out->partial = 1;
	return 0;
}

static int s_decode(const char *name, size_t len, size_t max_len,
		    struct dbuf *raw, struct keyname_decoded *out)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t i, u;
	int hi, lo, rc;
	unsigned char v;

	for (i = 0; i < len; i += u) {
		if (s[i] == '%' && i + 1 < len && s[i + 1] == '~') {
			/* Encode cuts the longest prefix that fits: one more
			 * unit (at most KEYNAME_S_MAX_UNIT bytes) would not
			 * have. len == i + FALLBACK_LEN <= max_len holds
			 * once parse_tail accepts. */
			if (i == 0 || i + KEYNAME_FALLBACK_LEN +
					      KEYNAME_S_MAX_UNIT <= max_len)
				return -EINVAL;
			return parse_tail(name, len, i, out);
		}
		if (s[i] == '%') {
			if (len - i < 3)
				return -EINVAL;
			hi = hex_upper_value(name[i + 1]);
			lo = hex_upper_value(name[i + 2]);
			if (hi < 0 || lo < 0)
				return -EINVAL;
			v = (unsigned char)(hi << 4 | lo);
			/* Only bytes that must be escaped may be. */
			if (!s_must_escape(v, i == 0))
				return -EINVAL;
			rc = dbuf_add(raw, &v, 1);
			u = 3;
		} else {
			/* A raw "/", control byte or leading "." should
			 * have been escaped. */
			if (s_must_escape(s[i], i == 0))
				return -EINVAL;
			u = ddbjson_utf8_len(s + i, len - i);
			if (!u)
				return -EINVAL;
			rc = dbuf_add(raw, name + i, u);
		}
		if (rc)
			return rc;
	}
	return 0;
}

static int b_decode(const char *name, size_t len, size_t max_len,
		    struct dbuf *raw, struct keyname_decoded *out)
{
	const char *pct = memchr(name, '%', len);
	size_t plen = len;
	int rc;

	if (pct) {
		plen = (size_t)(pct - name);
		/* The cut is fixed: as many whole groups as fit. */
		if (len - plen != KEYNAME_FALLBACK_LEN || plen == 0 ||
		    plen != (max_len - KEYNAME_FALLBACK_LEN) /
				    KEYNAME_B_GROUP * KEYNAME_B_GROUP)
			return -EINVAL;
		rc = parse_tail(name, len, plen, out);
		if (rc)
			return rc;
	}
	return b64_decode(name, plen, B64_URL, 1, raw);
}

static int n_decode(const char *name, size_t len, struct dbuf *raw)
{
	int rc = num_normalize(name, len, raw);

	if (rc)
		return rc;
	if (dbuf_len(raw) != len || memcmp(dbuf_str(raw), name, len))
		return -EINVAL;
	return 0;
}

/* The empty result, which a failed decode leaves. */
static void decoded_clear(struct keyname_decoded *d)
{
	d->partial = 0;
	d->value = NULL;
	d->hash[0] = '\0';
}

int keyname_decode(enum keyname_type t, const char *name, size_t len,
		   size_t max_len, struct keyname_decoded *out)
{
	struct dbuf raw;
	int rc;

	decoded_clear(out);
	dbuf_init(&raw, KEYNAME_RAW_CAP);
	if (!name || len == 0 || name[0] == '.') {
		rc = -EINVAL;
		goto out;
	}
	if (len > max_len) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	switch (t) {
	case KEYNAME_S:
		rc = s_decode(name, len, max_len, &raw, out);
		break;
	case KEYNAME_N:
		rc = n_decode(name, len, &raw);
		break;
	case KEYNAME_B:
		rc = b_decode(name, len, max_len, &raw, out);
		break;
	default:
		rc = -EINVAL;
	}
	if (!rc && dbuf_len(&raw) == 0)
		rc = -EINVAL;
	if (rc)
		goto out;
	rc = make_typed(t, dbuf_str(&raw), dbuf_len(&raw), &out->value);
out:
	/* value is set only by the last step, which failed or succeeded */
	if (rc)
		decoded_clear(out);
	dbuf_free(&raw);
	return rc;
}

void keyname_decoded_free(struct keyname_decoded *d)
{
	json_decref(d->value);
	decoded_clear(d);
}

/* ---- matching ------------------------------------------------------------ */

int keyname_hash_matches(enum keyname_type t, const json_t *value,
			 const char *hash)
{
	char hex[KEYNAME_HASH_HEX + 1];
	struct dbuf raw;
	int rc;

	dbuf_init(&raw, KEYNAME_RAW_CAP);
	if (!hash) {
		rc = -EINVAL;
		goto out;
	}
	rc = raw_key(t, value, &raw);
	if (rc)
		goto out;
	rc = key_hash(t, dbuf_str(&raw), dbuf_len(&raw), hex);
	if (rc)
		goto out;
	rc = strlen(hash) == KEYNAME_HASH_HEX &&
	     memcmp(hash, hex, KEYNAME_HASH_HEX) == 0;
out:
	dbuf_free(&raw);
	return rc;
}

int keyname_matches(enum keyname_type t, const json_t *value, size_t max_len,
		    const char *name, size_t len)
{
	struct dbuf enc;
	int rc;

	dbuf_init(&enc, KEYNAME_RAW_CAP);
	rc = keyname_encode(t, value, max_len, &enc);
	if (rc)
		goto out;
	rc = dbuf_len(&enc) == len && memcmp(dbuf_str(&enc), name, len) == 0;
out:
	dbuf_free(&enc);
	return rc;
}

/* ---- item names ------------------------------------------------------------ */

int keyname_is_item(const char *name)
{
	size_t n = strlen(name);

	return n > KEYNAME_ITEM_SUFFIX_LEN && name[0] != '.' &&
	       memcmp(name + n - KEYNAME_ITEM_SUFFIX_LEN, KEYNAME_ITEM_SUFFIX,
		      KEYNAME_ITEM_SUFFIX_LEN) == 0;
}

int keyname_encode_item(enum keyname_type t, const json_t *value,
			struct dbuf *name_out)
{
	size_t start = dbuf_len(name_out);
	int rc;

	rc = keyname_encode(t, value, KEYNAME_MAX_STEM, name_out);
	if (rc)
		return rc;
	rc = dbuf_add(name_out, KEYNAME_ITEM_SUFFIX, KEYNAME_ITEM_SUFFIX_LEN);
	if (rc)
		dbuf_truncate(name_out, start);
	return rc;
}

int keyname_decode_item(enum keyname_type t, const char *name,
			struct keyname_decoded *out)
{
	if (!keyname_is_item(name)) {
		decoded_clear(out);
		return -EINVAL;
	}
	return keyname_decode(t, name, strlen(name) - KEYNAME_ITEM_SUFFIX_LEN,
			      KEYNAME_MAX_STEM, out);
}
