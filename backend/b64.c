/* b64: base64 encode and decode, standard and URL-safe.  See b64.h. */
#include "backend/b64.h"

#include <errno.h>
#include <stdint.h>

static const char std_alpha[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alpha[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The 6-bit value of c in form f's alphabet, or -1. */
static int b64_value(unsigned char c, enum b64_form f)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (f == B64_URL ? '-' : '+'))
		return 62;
	if (c == (f == B64_URL ? '_' : '/'))
		return 63;
	return -1;
}

int b64_encode(const void *data, size_t n, enum b64_form f, struct dbuf *out)
{
	const char *alpha = f == B64_URL ? url_alpha : std_alpha;
	const unsigned char *p = data;
	size_t i, rem, mark = dbuf_len(out);
	char q[4];
	uint32_t v;
	int rc = 0;

	for (i = 0; !rc && i + 3 <= n; i += 3) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		q[0] = alpha[v >> 18 & 63];
		q[1] = alpha[v >> 12 & 63];
		q[2] = alpha[v >> 6 & 63];
		q[3] = alpha[v & 63];
		rc = dbuf_add(out, q, 4);
	}
	rem = n - i;
	if (!rc && rem) {
		v = (uint32_t)p[i] << 16 |
		    (rem == 2 ? (uint32_t)p[i + 1] << 8 : 0);
		q[0] = alpha[v >> 18 & 63];
		q[1] = alpha[v >> 12 & 63];
		q[2] = rem == 2 ? alpha[v >> 6 & 63] : '=';
		q[3] = '=';
		/* base64url goes without the padding */
		rc = dbuf_add(out, q, f == B64_URL ? rem + 1 : 4);
	}
	if (rc)
		dbuf_truncate(out, mark);
	return rc;
}

int b64_decode(const char *s, size_t n, enum b64_form f, int strict,
	       struct dbuf *out)
{
	size_t i, pad = 0, mark = out ? dbuf_len(out) : 0;
	unsigned bits = 0;
	unsigned char byte;
	uint32_t acc = 0;
	int v, rc = 0;

	/* Strict base64url has no padding, so a '=' is just a bad
	 * character there. */
	if (f == B64_STD || !strict) {
		while (n > 0 && s[n - 1] == '=' && pad < 2) {
			n--;
			pad++;
		}
		if ((pad || (strict && f == B64_STD)) && (n + pad) % 4)
			return -EINVAL;
	}
	if (n % 4 == 1)
		return -EINVAL;
	for (i = 0; !rc && i < n; i++) {
		v = b64_value((unsigned char)s[i], f);
		if (v < 0) {
			rc = -EINVAL;
			break;
		}
		acc = ((acc << 6) | (uint32_t)v) & 0xFFFFFF;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			byte = (unsigned char)(acc >> bits);
			if (out)
				rc = dbuf_add(out, &byte, 1);
		}
	}
	/* Non-zero unused bits would give the same bytes a second
	 * spelling. */
	if (!rc && strict && (acc & ((1u << bits) - 1)))
		rc = -EINVAL;
	if (rc && out)
		dbuf_truncate(out, mark);
	return rc;
}

int b64_canonical(const char *s, size_t n, enum b64_form f)
{
	return b64_decode(s, n, f, 1, NULL) == 0;
}
