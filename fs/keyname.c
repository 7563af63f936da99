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
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>

/* DynamoDB keys are at most 2048 bytes; the cap only keeps a broken caller
 * from making us allocate without bound. */
#define KEYNAME_RAW_CAP DBUF_CAP_SMALL

/* Longest escape or UTF-8 sequence in a string name: the decoder uses it
 * to tell whether a long-key prefix is the longest one encode would cut. */
#define KEYNAME_S_MAX_UNIT 4
/* A base64url group: 4 characters for 3 bytes, so a cut prefix decodes to
 * whole bytes. */
#define KEYNAME_B_GROUP 4

/* DynamoDB numbers: at most 38 significant digits, magnitude from 1E-130
 * to 9.9999999999999999999999999999999999999E+125, so the exponent of the
 * first significant digit lies in [-130, 125].  Longer input text than
 * NUM_TEXT_MAX is refused before parsing; a DynamoDB-normalized number is
 * at most 170 characters ("-0." + 129 zeros + 38 digits). */
#define NUM_MAX_DIGITS 38
#define NUM_MIN_EXP (-130)
#define NUM_MAX_EXP 125
#define NUM_TEXT_MAX 1024
/* Saturation of a parsed exponent; far beyond any valid one. */
#define NUM_EXP_SAT 100000L

static const char hex_upper[] = "0123456789ABCDEF";
static const char hex_lower[] = "0123456789abcdef";
static const char b64_std_alpha[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url_alpha[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

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

/* ---- UTF-8 and string units ------------------------------------------ */

/* Length of the valid UTF-8 sequence at s, or 0.  RFC 3629 strictly: no
 * overlong forms, no surrogates, nothing above U+10FFFF, which is also
 * what jansson accepts, so every string we decode can become a json_t. */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xBF;
	size_t n, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else {
		return 0;
	}
	if (avail < n || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return n;
}

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
	u = utf8_len(s + i, n - i);
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

/* ---- base64 ------------------------------------------------------------ */

static int b64_value(unsigned char c, int url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (url ? '-' : '+'))
		return 62;
	if (c == (url ? '_' : '/'))
		return 63;
	return -1;
}

/* Decode n characters without padding (n % 4 != 1).  strict: the unused
 * low bits of the last character must be zero, so that each byte string
 * has exactly one spelling. */
static int b64_decode(const char *s, size_t n, int url, int strict,
		      struct dbuf *out)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	unsigned char byte;
	size_t i;
	int v, rc;

	if (n % 4 == 1)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		v = b64_value((unsigned char)s[i], url);
		if (v < 0)
			return -EINVAL;
		acc = ((acc << 6) | (uint32_t)v) & 0xFFFFFF;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			byte = (unsigned char)(acc >> bits);
			rc = dbuf_add(out, &byte, 1);
			if (rc)
				return rc;
		}
	}
	if (strict && (acc & ((1u << bits) - 1)))
		return -EINVAL;
	return 0;
}

/* Standard base64 as DynamoDB's JSON carries it.  Padding is optional and
 * stray low bits are ignored: this reads values from the service (or an
 * emulator), and any spelling it sends stands for the bytes it decodes to. */
static int b64_std_decode(const char *s, size_t n, struct dbuf *out)
{
	size_t pad = 0;

	while (n > 0 && s[n - 1] == '=' && pad < 2) {
		n--;
		pad++;
	}
	if (pad && (n + pad) % 4)
		return -EINVAL;
	return b64_decode(s, n, 0, 0, out);
}

/* url: base64url without padding; else standard base64 with padding. */
static int b64_encode(const unsigned char *p, size_t n, int url,
		      struct dbuf *out)
{
	const char *alpha = url ? b64_url_alpha : b64_std_alpha;
	char q[4];
	uint32_t v;
	size_t i, rem;
	int rc;

	for (i = 0; i + 3 <= n; i += 3) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		q[0] = alpha[v >> 18 & 63];
		q[1] = alpha[v >> 12 & 63];
		q[2] = alpha[v >> 6 & 63];
		q[3] = alpha[v & 63];
		rc = dbuf_add(out, q, 4);
		if (rc)
			return rc;
	}
	rem = n - i;
	if (!rem)
		return 0;
	v = (uint32_t)p[i] << 16 | (rem == 2 ? (uint32_t)p[i + 1] << 8 : 0);
	q[0] = alpha[v >> 18 & 63];
	q[1] = alpha[v >> 12 & 63];
	q[2] = rem == 2 ? alpha[v >> 6 & 63] : '=';
	q[3] = '=';
	return dbuf_add(out, q, url ? rem + 1 : 4);
}

/* ---- numbers ------------------------------------------------------------ */

/* Write the number text s[0..n) in DynamoDB's normalized form: plain
 * decimal (exponents expanded), no leading zeros but one before the point,
 * no trailing fraction zeros, no point without a fraction, no "+" and no
 * "-0".  That is what DynamoDB returns for any number it stores ("1.5E2"
 * -> "150", "00042" -> "42", "1.0" -> "1", "-0" -> "0").  -EINVAL for
 * text DynamoDB would refuse: bad syntax, more than 38 significant digits,
 * magnitude out of range. */
static int num_normalize(const char *s, size_t n, struct dbuf *out)
{
	char sig[NUM_MAX_DIGITS];
	size_t nsig = 0, zeros = 0, i = 0, k;
	long first_exp = 0, int_run = 0, frac_pos = 0, e = 0, exp10, intd;
	int neg = 0, seen_digit = 0, seen_point = 0, found = 0, eneg = 0;
	int in_int = 0, rc;
	char c;

	if (n == 0 || n > NUM_TEXT_MAX)
		return -EINVAL;
	if (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-';
		i++;
	}
	for (; i < n; i++) {
		c = s[i];
		if (c == '.') {
			if (seen_point)
				return -EINVAL;
			seen_point = 1;
			continue;
		}
		if (c < '0' || c > '9')
			break;
		seen_digit = 1;
		if (seen_point)
			frac_pos++;
		if (!found) {
			if (c == '0')
				continue;
			found = 1;
			in_int = !seen_point;
			first_exp = seen_point ? -frac_pos : 0;
		}
		if (!seen_point)
			int_run++;
		/* Zeros count as significant only once a non-zero digit
		 * follows them; trailing zeros are dropped. */
		if (c == '0') {
			zeros++;
			continue;
		}
		if (nsig + zeros + 1 > NUM_MAX_DIGITS)
			return -EINVAL;
		memset(sig + nsig, '0', zeros);
		nsig += zeros;
		zeros = 0;
		sig[nsig++] = c;
	}
	if (!seen_digit)
		return -EINVAL;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '-' || s[i] == '+')) {
			eneg = s[i] == '-';
			i++;
		}
		if (i == n)
			return -EINVAL;
		for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			if (e < NUM_EXP_SAT)
				e = e * 10 + (s[i] - '0');
		if (eneg)
			e = -e;
	}
	if (i != n)
		return -EINVAL;
	if (!found)
		return dbuf_addc(out, '0');

	/* exp10: the power of ten of the first significant digit. */
	exp10 = (in_int ? int_run - 1 : first_exp) + e;
	if (exp10 < NUM_MIN_EXP || exp10 > NUM_MAX_EXP)
		return -EINVAL;
	if (neg) {
		rc = dbuf_addc(out, '-');
		if (rc)
			return rc;
	}
	if (exp10 >= 0) {
		intd = exp10 + 1;
		k = nsig < (size_t)intd ? nsig : (size_t)intd;
		rc = dbuf_add(out, sig, k);
		for (; !rc && k < (size_t)intd; k++)
			rc = dbuf_addc(out, '0');
		if (!rc && nsig > (size_t)intd) {
			rc = dbuf_addc(out, '.');
			if (!rc)
				rc = dbuf_add(out, sig + intd, nsig - intd);
		}
		return rc;
	}
	rc = dbuf_adds(out, "0.");
	for (k = 0; !rc && k < (size_t)(-exp10 - 1); k++)
		rc = dbuf_addc(out, '0');
	if (!rc)
		rc = dbuf_add(out, sig, nsig);
	return rc;
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
			u = utf8_len((const unsigned char *)text + i, len - i);
			if (!u)
				return -EINVAL;
		}
		rc = dbuf_add(raw, text, len);
		break;
	case KEYNAME_N:
		rc = num_normalize(text, len, raw);
		break;
	case KEYNAME_B:
		rc = b64_std_decode(text, len, raw);
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
		rc = b64_encode((const unsigned char *)raw, n, 0, &text);
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
		return b64_encode((const unsigned char *)raw, n, 1, out);
	groups = max_len > KEYNAME_FALLBACK_LEN ?
		 (max_len - KEYNAME_FALLBACK_LEN) / KEYNAME_B_GROUP : 0;
	if (groups == 0)
		return -ENAMETOOLONG;
	/* full > max_len guarantees 3 * groups < n, so the cut is inside. */
	rc = b64_encode((const unsigned char *)raw, 3 * groups, 1, out);
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
			u = utf8_len(s + i, len - i);
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
	return b64_decode(name, plen, 1, 1, raw);
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

int keyname_decode(enum keyname_type t, const char *name, size_t len,
		   size_t max_len, struct keyname_decoded *out)
{
	struct dbuf raw;
	int rc;

	out->partial = 0;
	out->value = NULL;
	out->hash[0] = '\0';
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
	if (rc) {
		out->partial = 0;
		out->hash[0] = '\0';
	}
	dbuf_free(&raw);
	return rc;
}

void keyname_decoded_free(struct keyname_decoded *d)
{
	json_decref(d->value);
	d->value = NULL;
	d->partial = 0;
	d->hash[0] = '\0';
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
		out->partial = 0;
		out->value = NULL;
		out->hash[0] = '\0';
		return -EINVAL;
	}
	return keyname_decode(t, name, strlen(name) - KEYNAME_ITEM_SUFFIX_LEN,
			      KEYNAME_MAX_STEM, out);
}
