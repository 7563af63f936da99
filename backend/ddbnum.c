/* ddbnum: DynamoDB number text.  See ddbnum.h.
 *
 * A number is read as its sign, its significant digits (where they lie in
 * the text) and the power of ten of the first of them: enough to check
 * the limits, compare and normalize without any arithmetic on the digits,
 * so the text may be of any length. */
#include "backend/ddbnum.h"

#include <errno.h>
#include <string.h>

/* DynamoDB's limits: 38 significant digits; the first significant digit's
 * power of ten within -130 .. 125. */
#define DDBNUM_DIGITS 38
#define DDBNUM_EXP_MIN (-130)
#define DDBNUM_EXP_MAX 125
#define DDBNUM_RANGE "1E-130 to 9.9999999999999999999999999999999999999E+125"

/* Exponents beyond this are out of range anyway; clamping keeps the
 * arithmetic on a hostile "1e99999999999999999999" from overflowing. */
#define EXP_CLAMP 1000000000000000LL

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* The parts of the text, as written. */
struct numparts {
	int neg;
	const char *ip; /* integer digits */
	size_t ilen;
	const char *fp; /* fraction digits */
	size_t flen;
	const char *ep; /* the exponent from 'e' on, or NULL */
	size_t elen;
};

static int num_split(const char *s, size_t len, struct numparts *np)
{
	size_t i = 0, d;

	memset(np, 0, sizeof(*np));
	if (!s)
		return -EINVAL;
	if (i < len && (s[i] == '+' || s[i] == '-')) {
		np->neg = s[i] == '-';
		i++;
	}
	np->ip = s + i;
	while (i < len && is_digit(s[i]))
		i++;
	np->ilen = (size_t)(s + i - np->ip);
	np->fp = s + i;
	if (i < len && s[i] == '.') {
		i++;
		np->fp = s + i;
		while (i < len && is_digit(s[i]))
			i++;
		np->flen = (size_t)(s + i - np->fp);
	}
	if (np->ilen + np->flen == 0)
		return -EINVAL;
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		np->ep = s + i;
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		d = i;
		while (i < len && is_digit(s[i]))
			i++;
		if (i == d)
			return -EINVAL;
		np->elen = (size_t)(s + i - np->ep);
	}
	return i == len ? 0 : -EINVAL;
}

struct dnum {
	int sign; /* -1, 0 (zero), 1 */
	struct numparts np;
	size_t first; /* index of the first significant digit in ip+fp */
	size_t ndig;  /* significant digits, trailing zeros dropped */
	long long exp10; /* the power of ten of the first of them */
};

/* The k-th digit of the integer and fraction digits run together. */
static char dnum_digit(const struct dnum *d, size_t k)
{
	return k < d->np.ilen ? d->np.ip[k] : d->np.fp[k - d->np.ilen];
}

static int dnum_parse(const char *s, size_t len, struct dnum *d)
{
	size_t k, n, last = 0;
	long long e = 0;
	const char *p, *end;
	int eneg = 0;

	memset(d, 0, sizeof(*d));
	if (num_split(s, len, &d->np))
		return -EINVAL;
	n = d->np.ilen + d->np.flen;
	for (k = 0; k < n && dnum_digit(d, k) == '0'; k++)
		;
	if (k == n)
		return 0; /* zero, whatever its sign and exponent */
	d->first = k;
	for (k = n; k-- > d->first;) {
		if (dnum_digit(d, k) != '0') {
			last = k;
			break;
		}
	}
	d->ndig = last - d->first + 1;
	d->sign = d->np.neg ? -1 : 1;
	if (d->np.ep) {
		p = d->np.ep + 1;
		end = d->np.ep + d->np.elen;
		if (*p == '+' || *p == '-')
			eneg = *p++ == '-';
		for (; p < end; p++) {
			if (e < EXP_CLAMP)
				e = e * 10 + (*p - '0');
		}
		if (eneg)
			e = -e;
	}
	/* the first significant digit stands for 10^(ilen - 1 - first) */
	if (d->np.ilen > (size_t)EXP_CLAMP || d->first > (size_t)EXP_CLAMP)
		d->exp10 = d->np.ilen > d->first ? EXP_CLAMP : -EXP_CLAMP;
	else
		d->exp10 = (long long)d->np.ilen - 1 - (long long)d->first + e;
	return 0;
}

/* NULL when d is within DynamoDB's limits, else why not. */
static const char *dnum_problem(const struct dnum *d)
{
	if (!d->sign)
		return NULL;
	if (d->ndig > DDBNUM_DIGITS)
		return "has more than 38 significant digits, more than DynamoDB can hold";
	if (d->exp10 < DDBNUM_EXP_MIN || d->exp10 > DDBNUM_EXP_MAX)
		return "is out of DynamoDB's range (magnitudes " DDBNUM_RANGE ")";
	return NULL;
}

int ddbnum_check(const char *s, size_t len, const char **why)
{
	const char *w = "is not a number";
	struct dnum d;

	if (!dnum_parse(s, len, &d))
		w = dnum_problem(&d);
	if (why)
		*why = w;
	return w ? -EINVAL : 0;
}

int ddbnum_normalize(const char *s, size_t len, struct dbuf *out)
{
	size_t mark = dbuf_len(out), k, intd = 0;
	struct dnum d;
	int rc;
	char c;

	if (dnum_parse(s, len, &d) || dnum_problem(&d))
		return -EINVAL;
	if (!d.sign)
		return dbuf_addc(out, '0');
	rc = d.sign < 0 ? dbuf_addc(out, '-') : 0;
	if (!rc && d.exp10 < 0) {
		/* "0." and the zeros before the first significant digit */
		rc = dbuf_adds(out, "0.");
		for (k = 1; !rc && k < (size_t)-d.exp10; k++)
			rc = dbuf_addc(out, '0');
	} else if (!rc) {
		/* the integer digits, padded with zeros up to the point */
		intd = (size_t)d.exp10 + 1;
		for (k = 0; !rc && k < intd; k++) {
			c = k < d.ndig ? dnum_digit(&d, d.first + k) : '0';
			rc = dbuf_addc(out, c);
		}
		if (!rc && d.ndig > intd)
			rc = dbuf_addc(out, '.');
	}
	/* the digits after the point */
	for (k = intd; !rc && k < d.ndig; k++)
		rc = dbuf_addc(out, dnum_digit(&d, d.first + k));
	if (rc)
		dbuf_truncate(out, mark);
	return rc;
}

int ddbnum_to_json(const char *s, size_t len, struct dbuf *out)
{
	size_t mark = dbuf_len(out), i;
	struct numparts np;
	int rc;

	if (num_split(s, len, &np))
		return -EINVAL;
	rc = np.neg ? dbuf_addc(out, '-') : 0;
	/* JSON allows no leading zeros, and needs a digit before the point */
	for (i = 0; i + 1 < np.ilen && np.ip[i] == '0'; i++)
		;
	if (!rc)
		rc = np.ilen ? dbuf_add(out, np.ip + i, np.ilen - i) :
			       dbuf_addc(out, '0');
	if (!rc && np.flen) {
		rc = dbuf_addc(out, '.');
		if (!rc)
			rc = dbuf_add(out, np.fp, np.flen);
	}
	if (!rc && np.ep)
		rc = dbuf_add(out, np.ep, np.elen);
	if (rc)
		dbuf_truncate(out, mark);
	return rc;
}

/* Compare magnitudes of two non-zero numbers. */
static int dnum_magcmp(const struct dnum *a, const struct dnum *b)
{
	size_t i;
	char ca, cb;

	if (a->exp10 != b->exp10)
		return a->exp10 < b->exp10 ? -1 : 1;
	for (i = 0;; i++) {
		/* trailing zeros are not counted, so the longer one has a
		 * non-zero digit left and is larger */
		if (i >= a->ndig || i >= b->ndig)
			return i < b->ndig ? -1 : i < a->ndig;
		ca = dnum_digit(a, a->first + i);
		cb = dnum_digit(b, b->first + i);
		if (ca != cb)
			return ca < cb ? -1 : 1;
	}
}

int ddbnum_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	struct dnum da, db;
	int bad_a = dnum_parse(a, alen, &da) != 0;
	int bad_b = dnum_parse(b, blen, &db) != 0;
	int r;

	if (bad_a && bad_b) {
		/* byte order, a prefix first */
		r = memcmp(a, b, alen < blen ? alen : blen);
		return r ? r : (alen > blen) - (alen < blen);
	}
	if (bad_a || bad_b)
		return bad_a ? 1 : -1;
	if (da.sign != db.sign)
		return da.sign < db.sign ? -1 : 1;
	if (!da.sign)
		return 0;
	r = dnum_magcmp(&da, &db);
	return da.sign > 0 ? r : -r;
}
