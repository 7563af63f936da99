/* ddbjson: DynamoDB typed items <-> the text of an item file.
 *
 * Rendering walks the typed item and writes jq's layout directly (sorted
 * keys, two-space indentation, jq's string escapes).  Parsing is a
 * recursive descent over the text written here rather than jansson's
 * loader, because jansson turns numbers into doubles or errors and a
 * DynamoDB number has 38 significant digits: a number token is kept as
 * the exact text of the token.  In the plain format the parser builds the
 * typed item as it goes, looking at the old item at the same path to keep
 * types plain JSON cannot show.  See docs/item-json.md. */
#include "backend/ddbjson.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/b64.h"
#include "backend/ddbnum.h"

/* jansson 2.14 added keys of explicit length (which may hold U+0000);
 * with 2.13 such keys are refused instead. */
#if JANSSON_VERSION_HEX >= 0x020e00
#define DJ_KEYLEN 1
#endif

/* How much of a key or token is quoted in a message. */
#define SNIP_MAX 64

static const char type_list[] = "S, N, B, BOOL, NULL, M, L, SS, NS or BS";

enum dtype { T_BAD, T_S, T_N, T_B, T_BOOL, T_NULL, T_M, T_L, T_SS, T_NS, T_BS };

static const struct {
	const char *name;
	enum dtype type;
} type_names[] = {
	{ "S", T_S },       { "N", T_N },   { "B", T_B },   { "BOOL", T_BOOL },
	{ "NULL", T_NULL }, { "M", T_M },   { "L", T_L },   { "SS", T_SS },
	{ "NS", T_NS },     { "BS", T_BS },
};

static const char *type_name(enum dtype t)
{
	size_t i;

	for (i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++)
		if (type_names[i].type == t)
			return type_names[i].name;
	return "?";
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* ---- jansson helpers ---------------------------------------------- */

static json_t *obj_getn(const json_t *o, const char *k, size_t klen)
{
#ifdef DJ_KEYLEN
	return json_object_getn(o, k, klen);
#else
	if (memchr(k, '\0', klen))
		return NULL;
	return json_object_get(o, k);
#endif
}

/* Steals v, as json_object_set_new does.  k is NUL-terminated. */
static int obj_setn_new(json_t *o, const char *k, size_t klen, json_t *v)
{
#ifdef DJ_KEYLEN
	/* the parser validated the key's UTF-8 already */
	return json_object_setn_new_nocheck(o, k, klen, v) ? -ENOMEM : 0;
#else
	(void)klen;
	return json_object_set_new_nocheck(o, k, v) ? -ENOMEM : 0;
#endif
}

static size_t iter_key_len(void *it)
{
#ifdef DJ_KEYLEN
	return json_object_iter_key_len(it);
#else
	return strlen(json_object_iter_key(it));
#endif
}

/* The type of a typed value {"T": payload}; T_BAD when it is not one.
 * The payload itself is not checked. */
static enum dtype tv_type(const json_t *tv, json_t **payload)
{
	const char *k;
	void *it;
	size_t i;

	*payload = NULL;
	if (!json_is_object(tv) || json_object_size(tv) != 1)
		return T_BAD;
	it = json_object_iter((json_t *)tv);
	if (!it)
		return T_BAD;
	k = json_object_iter_key(it);
	if (iter_key_len(it) != strlen(k))
		return T_BAD;
	for (i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++) {
		if (!strcmp(k, type_names[i].name)) {
			*payload = json_object_iter_value(it);
			return type_names[i].type;
		}
	}
	return T_BAD;
}

/* Wrap payload (stolen) as {"T": payload}. */
static int wrap(enum dtype t, json_t *payload, json_t **out)
{
	json_t *o;

	*out = NULL;
	if (!payload)
		return -ENOMEM;
	o = json_object();
	if (!o) {
		json_decref(payload);
		return -ENOMEM;
	}
	if (json_object_set_new_nocheck(o, type_name(t), payload)) {
		json_decref(o);
		return -ENOMEM;
	}
	*out = o;
	return 0;
}

/* Byte order, a shorter string first when it is a prefix (jq's order). */
static int bytes_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int r = memcmp(a, b, alen < blen ? alen : blen);

	if (r)
		return r;
	return alen < blen ? -1 : alen > blen;
}

/* ---- JSON number tokens ------------------------------------------ */

/* Scan a JSON number token (RFC 8259's grammar) at the start of s.  0 with
 * *end its length, or -EINVAL with *end at the offending byte and *msg
 * saying what was wrong. */
static int scan_json_number(const char *s, size_t len, size_t *end,
			    const char **msg)
{
	size_t i = 0;

	*msg = NULL;
	if (i < len && s[i] == '-')
		i++;
	if (i >= len || !is_digit(s[i])) {
		*msg = "expected a digit after '-'";
		goto bad;
	}
	if (s[i] == '0') {
		i++;
		if (i < len && is_digit(s[i])) {
			*msg = "numbers cannot have leading zeros";
			goto bad;
		}
	} else {
		while (i < len && is_digit(s[i]))
			i++;
	}
	if (i < len && s[i] == '.') {
		i++;
		if (i >= len || !is_digit(s[i])) {
			*msg = "expected a digit after '.'";
			goto bad;
		}
		while (i < len && is_digit(s[i]))
			i++;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= len || !is_digit(s[i])) {
			*msg = "expected a digit in the exponent";
			goto bad;
		}
		while (i < len && is_digit(s[i]))
			i++;
	}
	*end = i;
	return 0;
bad:
	*end = i;
	return -EINVAL;
}

/* ---- UTF-8 -------------------------------------------------------- */

size_t ddbjson_utf8_len(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t need, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		need = 1;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 2;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 3;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (avail <= need || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i <= need; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return need + 1;
}

/* Up to SNIP_MAX bytes of s for a message, control bytes as '?'. */
static void put_snip(struct dbuf *m, const char *s, size_t len)
{
	size_t i, n = len;

	if (n > SNIP_MAX) {
		n = SNIP_MAX;
		/* do not cut a UTF-8 sequence */
		while (n && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		(void)dbuf_addc(m, c < 0x20 || c == 0x7f ? '?' : (char)c);
	}
	if (n < len)
		(void)dbuf_adds(m, "...");
}

/* ---- rendering ---------------------------------------------------- */

/* A line break and the indentation of level (two spaces each). */
static int put_newline(struct dbuf *o, int level)
{
	static const char spaces[] = "                                ";
	size_t n = (size_t)level * 2;
	int rc = dbuf_addc(o, '\n');

	while (n && !rc) {
		size_t k = n < sizeof(spaces) - 1 ? n : sizeof(spaces) - 1;

		rc = dbuf_add(o, spaces, k);
		n -= k;
	}
	return rc;
}

/* A JSON string as jq 1.6 writes it: the short escapes for '"', '\\',
 * \b \f \n \r \t, \u00xx (lower-case hex) for other control bytes and
 * DEL, everything else (UTF-8 and '/') as is. */
static int put_str(struct dbuf *o, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, start = 0;
	char u[7];
	int rc;

	rc = dbuf_addc(o, '"');
	for (i = 0; !rc && i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *esc;

		if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f)
			continue;
		switch (c) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		default:
			memcpy(u, "\\u00", 4);
			u[4] = hex[c >> 4];
			u[5] = hex[c & 15];
			u[6] = '\0';
			esc = u;
			break;
		}
		rc = dbuf_add(o, s + start, i - start);
		if (!rc)
			rc = dbuf_adds(o, esc);
		start = i + 1;
	}
	if (!rc)
		rc = dbuf_add(o, s + start, len - start);
	if (!rc)
		rc = dbuf_addc(o, '"');
	return rc;
}

struct member {
	const char *key;
	size_t klen;
	const json_t *val;
};

static int member_cmp(const void *a, const void *b)
{
	const struct member *x = a, *y = b;

	return bytes_cmp(x->key, x->klen, y->key, y->klen);
}

static int str_cmp(const void *a, const void *b)
{
	const json_t *x = *(const json_t *const *)a;
	const json_t *y = *(const json_t *const *)b;

	return bytes_cmp(json_string_value(x), json_string_length(x),
			 json_string_value(y), json_string_length(y));
}

static int num_cmp(const void *a, const void *b)
{
	const json_t *x = *(const json_t *const *)a;
	const json_t *y = *(const json_t *const *)b;
	int r = ddbnum_cmp(json_string_value(x), json_string_length(x),
			   json_string_value(y), json_string_length(y));

	/* equal values in two forms: still one fixed order */
	return r ? r : str_cmp(a, b);
}

/* The members of obj sorted by key (*out NULL when there are none). */
static int sorted_members(const json_t *obj, struct member **out, size_t *n)
{
	size_t cnt = json_object_size(obj), i = 0;
	struct member *m;
	void *it;

	*out = NULL;
	*n = 0;
	if (!cnt)
		return 0;
	m = calloc(cnt, sizeof(*m));
	if (!m)
		return -ENOMEM;
	for (it = json_object_iter((json_t *)obj); it && i < cnt;
	     it = json_object_iter_next((json_t *)obj, it)) {
		m[i].key = json_object_iter_key(it);
		m[i].klen = iter_key_len(it);
		m[i].val = json_object_iter_value(it);
		i++;
	}
	qsort(m, i, sizeof(*m), member_cmp);
	*out = m;
	*n = i;
	return 0;
}

/* The members of a set (strings) sorted, numerically when num: sets have
 * no order, and a fixed one keeps the file the same from read to read. */
static int sorted_set(const json_t *arr, int num, const json_t ***out,
		      size_t *n)
{
	size_t cnt = json_array_size(arr), i;
	const json_t **v;

	*out = NULL;
	*n = 0;
	if (!cnt)
		return 0;
	v = calloc(cnt, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (i = 0; i < cnt; i++) {
		v[i] = json_array_get(arr, i);
		if (!json_is_string(v[i])) {
			free(v);
			return -EINVAL;
		}
	}
	qsort(v, cnt, sizeof(*v), num ? num_cmp : str_cmp);
	*out = v;
	*n = cnt;
	return 0;
}

struct render {
	struct dbuf *o;
	int typed;
};

static int w_typed(struct render *r, const json_t *tv, int level, int depth);

/* Opening of a non-empty container, or the whole of an empty one. */
static int w_open(struct dbuf *o, char open, size_t n)
{
	char e[3] = { open, (char)(open == '{' ? '}' : ']'), '\0' };

	return n ? dbuf_add(o, e, 1) : dbuf_adds(o, e);
}

/* After member or element i of n: ',' or the closing bracket. */
static int w_next(struct dbuf *o, size_t i, size_t n, char close, int level)
{
	int rc;

	if (i + 1 < n)
		return dbuf_addc(o, ',');
	rc = put_newline(o, level);
	if (!rc)
		rc = dbuf_addc(o, close);
	return rc;
}

/* An M payload (or the item itself): members are typed values. */
static int w_map(struct render *r, const json_t *obj, int level, int depth)
{
	struct member *m = NULL;
	size_t n = 0, i;
	int rc;

	if (!json_is_object(obj) || depth > DDBJSON_MAX_DEPTH)
		return -EINVAL;
	rc = sorted_members(obj, &m, &n);
	if (!rc)
		rc = w_open(r->o, '{', n);
	for (i = 0; !rc && i < n; i++) {
		rc = put_newline(r->o, level + 1);
		if (!rc)
			rc = put_str(r->o, m[i].key, m[i].klen);
		if (!rc)
			rc = dbuf_adds(r->o, ": ");
		if (!rc)
			rc = w_typed(r, m[i].val, level + 1, depth);
		if (!rc)
			rc = w_next(r->o, i, n, '}', level);
	}
	free(m);
	return rc;
}

static int w_list(struct render *r, const json_t *arr, int level, int depth)
{
	size_t n = json_array_size(arr), i;
	int rc;

	if (!json_is_array(arr) || depth > DDBJSON_MAX_DEPTH)
		return -EINVAL;
	rc = w_open(r->o, '[', n);
	for (i = 0; !rc && i < n; i++) {
		rc = put_newline(r->o, level + 1);
		if (!rc)
			rc = w_typed(r, json_array_get(arr, i), level + 1,
				     depth);
		if (!rc)
			rc = w_next(r->o, i, n, ']', level);
	}
	return rc;
}

static int w_set(struct render *r, const json_t *arr, int num, int level,
		 int depth)
{
	const json_t **v = NULL;
	size_t n = 0, i;
	int rc;

	if (!json_is_array(arr) || depth > DDBJSON_MAX_DEPTH)
		return -EINVAL;
	rc = sorted_set(arr, num, &v, &n);
	if (!rc)
		rc = w_open(r->o, '[', n);
	for (i = 0; !rc && i < n; i++) {
		const char *s = json_string_value(v[i]);
		size_t len = json_string_length(v[i]);

		rc = put_newline(r->o, level + 1);
		if (!rc)
			rc = num && !r->typed ? ddbnum_to_json(s, len, r->o) :
						put_str(r->o, s, len);
		if (!rc)
			rc = w_next(r->o, i, n, ']', level);
	}
	free(v);
	return rc;
}

/* The payload of a typed value, in the current format.  level is the
 * indentation of the line it starts on, depth the containers around it. */
static int w_payload(struct render *r, enum dtype t, const json_t *pl,
		     int level, int depth)
{
	switch (t) {
	case T_S:
	case T_B:
		if (!json_is_string(pl))
			return -EINVAL;
		return put_str(r->o, json_string_value(pl), json_string_length(pl));
	case T_N:
		if (!json_is_string(pl))
			return -EINVAL;
		if (r->typed)
			return put_str(r->o, json_string_value(pl),
				       json_string_length(pl));
		return ddbnum_to_json(json_string_value(pl),
				      json_string_length(pl), r->o);
	case T_BOOL:
		if (!json_is_boolean(pl))
			return -EINVAL;
		return dbuf_adds(r->o, json_is_true(pl) ? "true" : "false");
	case T_NULL:
		if (!json_is_boolean(pl))
			return -EINVAL;
		if (r->typed)
			return dbuf_adds(r->o, json_is_true(pl) ? "true" : "false");
		return dbuf_adds(r->o, "null");
	case T_M:
		return w_map(r, pl, level, depth + 1);
	case T_L:
		return w_list(r, pl, level, depth + 1);
	case T_SS:
	case T_BS:
		return w_set(r, pl, 0, level, depth + 1);
	case T_NS:
		return w_set(r, pl, 1, level, depth + 1);
	case T_BAD:
		break;
	}
	return -EINVAL;
}

static int w_typed(struct render *r, const json_t *tv, int level, int depth)
{
	json_t *pl;
	enum dtype t = tv_type(tv, &pl);
	int rc;

	if (t == T_BAD)
		return -EINVAL;
	if (!r->typed)
		return w_payload(r, t, pl, level, depth);
	/* {"T": payload} laid out as jq would */
	rc = dbuf_addc(r->o, '{');
	if (!rc)
		rc = put_newline(r->o, level + 1);
	if (!rc)
		rc = put_str(r->o, type_name(t), strlen(type_name(t)));
	if (!rc)
		rc = dbuf_adds(r->o, ": ");
	if (!rc)
		rc = w_payload(r, t, pl, level + 1, depth);
	if (!rc)
		rc = put_newline(r->o, level);
	if (!rc)
		rc = dbuf_addc(r->o, '}');
	return rc;
}

int ddbjson_render(const json_t *item, enum ddbjson_format fmt,
		   struct dbuf *out)
{
	struct render r = { out, fmt == DDBJSON_TYPED };
	size_t mark = dbuf_len(out);
	int rc;

	if (fmt != DDBJSON_PLAIN && fmt != DDBJSON_TYPED)
		return -EINVAL;
	rc = w_map(&r, item, 0, 1);
	if (!rc)
		rc = dbuf_addc(out, '\n');
	if (rc)
		dbuf_truncate(out, mark);
	return rc;
}

/* ---- parsing ------------------------------------------------------ */

struct parser {
	const char *s;
	size_t len;
	size_t pos;
	int typed;
	int depth;
	int max_depth; /* of raw JSON containers */
	struct dbuf *why;
	struct dbuf str;  /* the string just decoded */
	struct dbuf path; /* attribute path of the value at hand, for messages */
};

/* Replace why with "line L, column C: " for the byte at offset at (column
 * in characters, both from 1) and return it for the rest of the message;
 * NULL when the caller wants no message. */
static struct dbuf *msg_at(struct parser *p, size_t at)
{
	size_t line = 1, col = 1, i;

	if (!p->why)
		return NULL;
	for (i = 0; i < at && i < p->len; i++) {
		unsigned char c = (unsigned char)p->s[i];

		if (c == '\n') {
			line++;
			col = 1;
		} else if ((c & 0xc0) != 0x80) {
			col++;
		}
	}
	dbuf_reset(p->why);
	(void)dbuf_addf(p->why, "line %zu, column %zu: ", line, col);
	return p->why;
}

/* "attribute a.b[2]: " after msg_at's prefix (or alone when at is
 * SIZE_MAX: the typed checks have no position). */
static struct dbuf *msg_attr(struct parser *p, size_t at)
{
	struct dbuf *m;

	if (!p->why)
		return NULL;
	if (at == SIZE_MAX) {
		m = p->why;
		dbuf_reset(m);
	} else {
		m = msg_at(p, at);
	}
	if (dbuf_len(&p->path)) {
		(void)dbuf_adds(m, "attribute ");
		(void)dbuf_add(m, dbuf_str(&p->path), dbuf_len(&p->path));
		(void)dbuf_adds(m, ": ");
	}
	return m;
}

/* The end of every parse error: fmt appended to the message m (from
 * msg_at or msg_attr; NULL when none is wanted), and -EINVAL. */
static int vperr(struct dbuf *m, const char *fmt, va_list ap)
{
	if (m)
		(void)dbuf_vaddf(m, fmt, ap);
	return -EINVAL;
}

/* A syntax error at offset at. */
static int perr(struct parser *p, size_t at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int perr(struct parser *p, size_t at, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vperr(msg_at(p, at), fmt, ap);
	va_end(ap);
	return rc;
}

/* A value DynamoDB cannot hold, named by its attribute path (at as for
 * msg_attr). */
static int perr_attr(struct parser *p, size_t at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int perr_attr(struct parser *p, size_t at, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vperr(msg_attr(p, at), fmt, ap);
	va_end(ap);
	return rc;
}

/* Either kind, quoting the offending text: m gets before, a snippet of s
 * (cut, and control bytes made visible: user text is only ever quoted
 * through put_snip), then fmt. */
static int perr_snip(struct dbuf *m, const char *before, const char *s,
		     size_t len, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static int perr_snip(struct dbuf *m, const char *before, const char *s,
		     size_t len, const char *fmt, ...)
{
	va_list ap;
	int rc;

	if (m) {
		(void)dbuf_adds(m, before);
		put_snip(m, s, len);
	}
	va_start(ap, fmt);
	rc = vperr(m, fmt, ap);
	va_end(ap);
	return rc;
}

/* "expected X" at the current position, with a hint for the usual
 * mistakes. */
static int perr_expected(struct parser *p, const char *what)
{
	unsigned char c;

	if (p->pos >= p->len)
		return perr(p, p->pos, "expected %s, but the text ended", what);
	c = (unsigned char)p->s[p->pos];
	if (c == '/')
		return perr(p, p->pos, "expected %s; comments are not allowed in JSON",
			    what);
	if (c == '\'')
		return perr(p, p->pos,
			    "expected %s; strings must be in double quotes", what);
	return perr(p, p->pos, "expected %s", what);
}

/* Attribute path bookkeeping: best effort, it only feeds messages. */
static size_t path_push_key(struct parser *p, const char *k, size_t klen)
{
	size_t mark = dbuf_len(&p->path);

	if (mark)
		(void)dbuf_addc(&p->path, '.');
	put_snip(&p->path, k, klen);
	return mark;
}

static size_t path_push_index(struct parser *p, size_t i)
{
	size_t mark = dbuf_len(&p->path);

	(void)dbuf_addf(&p->path, "[%zu]", i);
	return mark;
}

static void path_pop(struct parser *p, size_t mark)
{
	dbuf_truncate(&p->path, mark);
}

static void skip_ws(struct parser *p)
{
	while (p->pos < p->len) {
		char c = p->s[p->pos];

		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		p->pos++;
	}
}

/* Four hex digits at offset at. */
static int hex4(struct parser *p, size_t at, unsigned *cp)
{
	size_t i;
	int v;

	*cp = 0;
	for (i = 0; i < 4; i++) {
		unsigned char c = at + i < p->len ? (unsigned char)p->s[at + i] : 0;

		if (is_digit((char)c))
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v = c - 'A' + 10;
		else
			return perr(p, at - 2,
				    "\\u must be followed by four hex digits");
		*cp = *cp * 16 + (unsigned)v;
	}
	return 0;
}

static int put_utf8(struct dbuf *b, unsigned cp)
{
	char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | cp >> 12);
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | cp >> 18);
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return dbuf_add(b, u, n);
}

/* The escape at p->pos (a backslash), appended to p->str. */
static int p_escape(struct parser *p)
{
	size_t at = p->pos;
	unsigned cp, lo;
	char c, e;
	int rc;

	if (at + 1 >= p->len)
		return perr(p, at, "unterminated string");
	c = p->s[at + 1];
	p->pos += 2;
	switch (c) {
	case '"': e = '"'; break;
	case '\\': e = '\\'; break;
	case '/': e = '/'; break;
	case 'b': e = '\b'; break;
	case 'f': e = '\f'; break;
	case 'n': e = '\n'; break;
	case 'r': e = '\r'; break;
	case 't': e = '\t'; break;
	case 'u':
		rc = hex4(p, at + 2, &cp);
		if (rc)
			return rc;
		p->pos = at + 6;
		if (cp >= 0xdc00 && cp <= 0xdfff)
			return perr(p, at, "lone surrogate \\u%04x (a low half without a high half)",
				    cp);
		if (cp >= 0xd800 && cp <= 0xdbff) {
			if (p->pos + 1 >= p->len || p->s[p->pos] != '\\' ||
			    p->s[p->pos + 1] != 'u')
				return perr(p, at, "lone surrogate \\u%04x (a high half without a low half)",
					    cp);
			rc = hex4(p, p->pos + 2, &lo);
			if (rc)
				return rc;
			if (lo < 0xdc00 || lo > 0xdfff)
				return perr(p, at, "lone surrogate \\u%04x (a high half without a low half)",
					    cp);
			p->pos += 6;
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
		}
		return put_utf8(&p->str, cp);
	default:
		if ((unsigned char)c > 0x20 && (unsigned char)c < 0x7f)
			return perr(p, at, "invalid escape '\\%c'", c);
		return perr(p, at, "invalid escape");
	}
	return dbuf_addc(&p->str, e);
}

/* The string at p->pos (a '"'), decoded into p->str. */
static int p_string(struct parser *p)
{
	size_t start = p->pos, run, n;
	unsigned char c;
	int rc;

	dbuf_reset(&p->str);
	p->pos++;
	for (;;) {
		run = p->pos;
		while (p->pos < p->len) {
			c = (unsigned char)p->s[p->pos];
			if (c == '"' || c == '\\' || c < 0x20)
				break;
			if (c < 0x80) {
				p->pos++;
				continue;
			}
			n = ddbjson_utf8_len((const unsigned char *)p->s +
						     p->pos, p->len - p->pos);
			if (!n)
				return perr(p, p->pos, "invalid UTF-8 in a string");
			p->pos += n;
		}
		rc = dbuf_add(&p->str, p->s + run, p->pos - run);
		if (rc)
			return rc;
		if (p->pos >= p->len)
			return perr(p, start, "unterminated string");
		c = (unsigned char)p->s[p->pos];
		if (c == '"') {
			p->pos++;
			return 0;
		}
		if (c == '\n')
			return perr(p, p->pos, "unterminated string (a line break in a string must be written \\n)");
		if (c < 0x20)
			return perr(p, p->pos,
				    "control character U+%04X in a string must be escaped",
				    c);
		rc = p_escape(p);
		if (rc)
			return rc;
	}
}

/* A JSON number at p->pos: its token, checked against DynamoDB's limits.
 * Digits are never converted: the token is the value. */
static int p_number(struct parser *p, const char **tok, size_t *toklen)
{
	size_t at = p->pos, n;
	const char *msg, *why;

	if (scan_json_number(p->s + at, p->len - at, &n, &msg)) {
		if (msg && p->s[at] == '-' && at + 1 < p->len &&
		    p->s[at + 1] == '.')
			msg = "expected a digit between '-' and '.'";
		return perr(p, at + n, "%s", msg);
	}
	p->pos += n;
	*tok = p->s + at;
	*toklen = n;
	if (p->typed || !ddbnum_check(*tok, n, &why))
		return 0;
	return perr_snip(msg_attr(p, at), "number ", *tok, n, " %s", why);
}

static int p_value(struct parser *p, const json_t *hint, json_t **out);

/* The opening bracket at p->pos of an object or array: steps over it and
 * counts the depth.  1 when close follows at once (the container is
 * empty, and the bracket is consumed), 0 when members follow, or
 * -EINVAL. */
static int p_open(struct parser *p, char close)
{
	if (++p->depth > p->max_depth)
		return perr(p, p->pos, "nesting deeper than %d levels",
			    DDBJSON_MAX_DEPTH);
	p->pos++;
	skip_ws(p);
	if (p->pos < p->len && p->s[p->pos] == close) {
		p->pos++;
		return 1;
	}
	return 0;
}

/* After a member or element: 0 when a ',' announces another, 1 when close
 * ends the container (consumed), or -EINVAL. */
static int p_next(struct parser *p, char close)
{
	size_t comma;

	skip_ws(p);
	if (p->pos < p->len && p->s[p->pos] == ',') {
		comma = p->pos++;
		skip_ws(p);
		if (p->pos < p->len && p->s[p->pos] == close)
			return perr(p, comma, "trailing comma before '%c'", close);
		return 0;
	}
	if (p->pos < p->len && p->s[p->pos] == close) {
		p->pos++;
		return 1;
	}
	return perr_expected(p, close == '}' ? "',' or '}'" : "',' or ']'");
}

/* An object at p->pos: its members, untyped keys to typed values (plain)
 * or to raw JSON (typed).  hint_map is the old M payload (or the old item
 * at the top), whose members hint the new members of the same name. */
static int p_members(struct parser *p, const json_t *hint_map, int top,
		     json_t **out)
{
	json_t *obj = json_object(), *val;
	size_t kpos, klen, mark;
	char *key = NULL;
	int rc;

	*out = NULL;
	if (!obj)
		return -ENOMEM;
	for (rc = p_open(p, '}'); !rc; rc = p_next(p, '}')) {
		skip_ws(p);
		if (p->pos >= p->len || p->s[p->pos] != '"') {
			rc = perr_expected(p, "a key in double quotes");
			goto out;
		}
		kpos = p->pos;
		rc = p_string(p);
		if (rc)
			goto out;
		key = dbuf_take(&p->str, &klen);
		if (!key) {
			rc = -ENOMEM;
			goto out;
		}
		if (top && !klen) {
			rc = perr(p, kpos, "attribute names cannot be empty");
			goto out;
		}
#ifndef DJ_KEYLEN
		if (memchr(key, '\0', klen)) {
			rc = perr(p, kpos, "keys containing \\u0000 are not supported");
			goto out;
		}
#endif
		if (obj_getn(obj, key, klen)) {
			rc = perr_snip(msg_at(p, kpos), "duplicate key \"", key,
				       klen, "\"");
			goto out;
		}
		skip_ws(p);
		if (p->pos >= p->len || p->s[p->pos] != ':') {
			rc = perr_expected(p, "':'");
			goto out;
		}
		p->pos++;
		mark = path_push_key(p, key, klen);
		rc = p_value(p, hint_map ? obj_getn(hint_map, key, klen) : NULL,
			     &val);
		path_pop(p, mark);
		if (rc)
			goto out;
		rc = obj_setn_new(obj, key, klen, val);
		free(key);
		key = NULL;
		if (rc)
			goto out;
	}
	if (rc < 0)
		goto out;
	p->depth--;
	*out = obj;
	obj = NULL;
	rc = 0;
out:
	free(key);
	json_decref(obj);
	return rc;
}

/* An array at p->pos: its elements; those of an old L hint the new ones
 * at the same index. */
static int p_elems(struct parser *p, const json_t *hint_list, json_t **out)
{
	json_t *arr = json_array(), *val;
	size_t mark, i;
	int rc;

	*out = NULL;
	if (!arr)
		return -ENOMEM;
	for (i = 0, rc = p_open(p, ']'); !rc; i++, rc = p_next(p, ']')) {
		mark = path_push_index(p, i);
		rc = p_value(p, hint_list ? json_array_get(hint_list, i) : NULL,
			     &val);
		path_pop(p, mark);
		if (rc)
			goto out;
		if (json_array_append_new(arr, val)) {
			rc = -ENOMEM;
			goto out;
		}
	}
	if (rc < 0)
		goto out;
	p->depth--;
	*out = arr;
	arr = NULL;
	rc = 0;
out:
	json_decref(arr);
	return rc;
}

/* Sort the members of a set (strings, numbers when num) and return the
 * first i with v[i] equal in value to v[i - 1] ("1" and "1.0" are one
 * number), or 0 when they are distinct as DynamoDB requires. */
static size_t sort_find_dup(const json_t **v, size_t n, int num)
{
	const json_t *a, *b;
	size_t i;
	int r;

	qsort(v, n, sizeof(*v), num ? num_cmp : str_cmp);
	for (i = 1; i < n; i++) {
		a = v[i - 1];
		b = v[i];
		r = num ? ddbnum_cmp(json_string_value(a), json_string_length(a),
				     json_string_value(b), json_string_length(b)) :
			  str_cmp(&a, &b);
		if (!r)
			return i;
	}
	return 0;
}

/* Whether the typed values of arr can form a set of type t: all of the
 * member type and distinct.  Then *set_out is the set's payload (member
 * payloads in the order given); else NULL. */
static int try_set(const json_t *arr, enum dtype t, json_t **set_out)
{
	size_t n = json_array_size(arr), i;
	json_t *pl, *set = NULL;
	const json_t **v;
	int rc = -ENOMEM, num = t == T_NS;

	*set_out = NULL;
	v = calloc(n ? n : 1, sizeof(*v));
	set = json_array();
	if (!v || !set)
		goto out;
	rc = 0;
	for (i = 0; i < n; i++) {
		enum dtype et = tv_type(json_array_get(arr, i), &pl);

		if (et != (num ? T_N : T_S) ||
		    (t == T_BS && !b64_canonical(json_string_value(pl),
						 json_string_length(pl),
						 B64_STD)))
			goto out;
		if (json_array_append(set, pl)) {
			rc = -ENOMEM;
			goto out;
		}
		v[i] = pl;
	}
	if (sort_find_dup(v, n, num))
		goto out; /* DynamoDB would refuse the set */
	*set_out = set;
	set = NULL;
out:
	json_decref(set);
	free(v);
	return rc;
}

/* The typed value of a plain array (arr, stolen): a set when the old value
 * was one and the new members still fit, else L. */
static int settle_array(struct parser *p, size_t at, enum dtype ht,
			json_t *arr, json_t **out)
{
	json_t *set = NULL;
	int rc;

	*out = NULL;
	if (ht == T_SS || ht == T_NS || ht == T_BS) {
		if (!json_array_size(arr)) {
			json_decref(arr);
			return perr_attr(p, at, "an empty set cannot be stored in DynamoDB; delete the attribute instead");
		}
		rc = try_set(arr, ht, &set);
		if (rc) {
			json_decref(arr);
			return rc;
		}
		if (set) {
			json_decref(arr);
			return wrap(ht, set, out);
		}
	}
	return wrap(T_L, arr, out);
}

static int p_literal(struct parser *p, const char *word)
{
	size_t n = strlen(word);

	if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n))
		return perr_expected(p, "a value");
	p->pos += n;
	return 0;
}

/* One value at p->pos.  Plain: the typed value, hint being the old typed
 * value at the same path (or NULL).  Typed format: raw JSON. */
static int p_value(struct parser *p, const json_t *hint, json_t **out)
{
	json_t *hp = NULL, *v;
	enum dtype ht = hint && !p->typed ? tv_type(hint, &hp) : T_BAD;
	const char *tok = NULL;
	size_t at, toklen = 0;
	int rc;

	*out = NULL;
	skip_ws(p);
	at = p->pos;
	if (at >= p->len)
		return perr_expected(p, "a value");
	switch (p->s[at]) {
	case '{':
		rc = p_members(p, ht == T_M && json_is_object(hp) ? hp : NULL, 0,
			       &v);
		if (rc)
			return rc;
		if (p->typed) {
			*out = v;
			return 0;
		}
		return wrap(T_M, v, out);
	case '[':
		rc = p_elems(p, ht == T_L && json_is_array(hp) ? hp : NULL, &v);
		if (rc)
			return rc;
		if (p->typed) {
			*out = v;
			return 0;
		}
		return settle_array(p, at, ht, v, out);
	case '"':
		rc = p_string(p);
		if (rc)
			return rc;
		v = json_stringn_nocheck(dbuf_str(&p->str), dbuf_len(&p->str));
		if (p->typed) {
			*out = v;
			return v ? 0 : -ENOMEM;
		}
		/* a string where a B was, and still base64: keep it B */
		if (ht == T_B && b64_canonical(dbuf_str(&p->str),
					       dbuf_len(&p->str), B64_STD))
			return wrap(T_B, v, out);
		return wrap(T_S, v, out);
	case 't':
	case 'f':
		rc = p_literal(p, p->s[at] == 't' ? "true" : "false");
		if (rc)
			return rc;
		v = json_boolean(p->s[at] == 't');
		if (p->typed) {
			*out = v;
			return 0;
		}
		return wrap(T_BOOL, v, out);
	case 'n':
		rc = p_literal(p, "null");
		if (rc)
			return rc;
		if (p->typed) {
			*out = json_null();
			return 0;
		}
		return wrap(T_NULL, json_true(), out);
	case '-':
	case '0': case '1': case '2': case '3': case '4':
	case '5': case '6': case '7': case '8': case '9':
		rc = p_number(p, &tok, &toklen);
		if (rc)
			return rc;
		if (p->typed)
			return perr_snip(msg_at(p, at),
					 "numbers are strings in the typed format: write {\"N\": \"",
					 tok, toklen, "\"}");
		return wrap(T_N, json_stringn_nocheck(tok, toklen), out);
	default:
		return perr_expected(p, "a value");
	}
}

/* ---- the typed format's structure --------------------------------- */

static int check_tv(struct parser *p, const json_t *tv, int depth);

/* The members of an M payload or of the item itself: typed values at
 * depth. */
static int check_map(struct parser *p, const json_t *obj, int depth)
{
	const char *key;
	size_t mark;
	json_t *tv;
	int rc;

	json_object_foreach ((json_t *)obj, key, tv) {
		mark = path_push_key(p, key, strlen(key));
		rc = check_tv(p, tv, depth);
		path_pop(p, mark);
		if (rc)
			return rc;
	}
	return 0;
}

static int check_set(struct parser *p, enum dtype t, const json_t *arr,
		     int depth)
{
	const char *name = type_name(t);
	size_t n = json_array_size(arr), i, mark;
	const json_t **v = NULL;
	int rc = 0, num = t == T_NS;
	struct dbuf *m;

	if (!json_is_array(arr))
		return perr_attr(p, SIZE_MAX, "%s must be an array", name);
	if (!n)
		return perr_attr(p, SIZE_MAX, "an empty set cannot be stored in DynamoDB; delete the attribute instead");
	if (depth + 1 > DDBJSON_MAX_DEPTH)
		return perr_attr(p, SIZE_MAX, "nesting deeper than %d levels",
				 DDBJSON_MAX_DEPTH);
	v = calloc(n, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		const json_t *e = json_array_get(arr, i);
		const char *s = json_string_value(e);
		size_t len = json_string_length(e);
		const char *why;

		mark = path_push_index(p, i);
		if (!s) {
			rc = perr_attr(p, SIZE_MAX, "%s members must be strings",
				       name);
		} else if (t == T_BS && !b64_canonical(s, len, B64_STD)) {
			rc = perr_attr(p, SIZE_MAX, "BS members must be base64 (standard alphabet, padded)");
		} else if (num && ddbnum_check(s, len, &why)) {
			rc = perr_snip(msg_attr(p, SIZE_MAX), "number ", s, len,
				       " %s", why);
		}
		path_pop(p, mark);
		if (rc)
			goto out;
		v[i] = e;
	}
	i = sort_find_dup(v, n, num);
	if (i) {
		m = msg_attr(p, SIZE_MAX);
		if (m)
			(void)dbuf_addf(m, "%s holds \"", name);
		rc = perr_snip(m, "", json_string_value(v[i - 1]),
			       json_string_length(v[i - 1]),
			       "\" twice; set members must be distinct");
	}
out:
	free(v);
	return rc;
}

/* One typed value; depth counts the containers around it. */
static int check_tv(struct parser *p, const json_t *tv, int depth)
{
	const char *key, *why;
	json_t *pl, *e;
	size_t i, mark;
	enum dtype t;
	int rc = 0;

	t = tv_type(tv, &pl);
	if (t == T_BAD) {
		if (!json_is_object(tv))
			return perr_attr(p, SIZE_MAX, "expected a typed value such as {\"S\": \"text\"}");
		if (json_object_size(tv) != 1)
			return perr_attr(p, SIZE_MAX, "a typed value must have exactly one key, its type (%s)",
					 type_list);
		key = json_object_iter_key(json_object_iter((json_t *)tv));
		return perr_snip(msg_attr(p, SIZE_MAX), "unknown type \"", key,
				 strlen(key), "\"; the types are %s", type_list);
	}
	switch (t) {
	case T_S:
		if (!json_is_string(pl))
			return perr_attr(p, SIZE_MAX, "S must be a string");
		break;
	case T_N:
		if (!json_is_string(pl))
			return perr_attr(p, SIZE_MAX, "N must be a string holding a number, e.g. {\"N\": \"12\"}");
		if (ddbnum_check(json_string_value(pl), json_string_length(pl),
				 &why))
			return perr_snip(msg_attr(p, SIZE_MAX), "N value \"",
					 json_string_value(pl),
					 json_string_length(pl), "\" %s", why);
		break;
	case T_B:
		if (!json_is_string(pl) ||
		    !b64_canonical(json_string_value(pl),
				   json_string_length(pl), B64_STD))
			return perr_attr(p, SIZE_MAX, "B must be a base64 string (standard alphabet, padded)");
		break;
	case T_BOOL:
		if (!json_is_boolean(pl))
			return perr_attr(p, SIZE_MAX, "BOOL must be true or false");
		break;
	case T_NULL:
		if (!json_is_true(pl))
			return perr_attr(p, SIZE_MAX, "NULL must be true");
		break;
	case T_M:
		if (!json_is_object(pl))
			return perr_attr(p, SIZE_MAX, "M must be an object");
		if (depth + 1 > DDBJSON_MAX_DEPTH)
			return perr_attr(p, SIZE_MAX, "nesting deeper than %d levels",
					 DDBJSON_MAX_DEPTH);
		return check_map(p, pl, depth + 1);
	case T_L:
		if (!json_is_array(pl))
			return perr_attr(p, SIZE_MAX, "L must be an array");
		if (depth + 1 > DDBJSON_MAX_DEPTH)
			return perr_attr(p, SIZE_MAX, "nesting deeper than %d levels",
					 DDBJSON_MAX_DEPTH);
		json_array_foreach (pl, i, e) {
			mark = path_push_index(p, i);
			rc = check_tv(p, e, depth + 1);
			path_pop(p, mark);
			if (rc)
				return rc;
		}
		break;
	case T_SS:
	case T_NS:
	case T_BS:
		return check_set(p, t, pl, depth);
	case T_BAD:
		break;
	}
	return rc;
}

int ddbjson_parse(const char *text, size_t len, enum ddbjson_format fmt,
		  const json_t *old, json_t **item_out, struct dbuf *why)
{
	struct parser p;
	json_t *item = NULL;
	int rc;

	*item_out = NULL;
	memset(&p, 0, sizeof(p));
	p.s = text ? text : "";
	p.len = text ? len : 0;
	p.typed = fmt == DDBJSON_TYPED;
	/* In the typed format the raw JSON has two levels per value level
	 * ({"M": {...}}); check_tv counts the value levels. */
	p.max_depth = p.typed ? 2 * DDBJSON_MAX_DEPTH : DDBJSON_MAX_DEPTH;
	p.why = why;
	/* a decoded string is never longer than the text it came from */
	dbuf_init(&p.str, p.len);
	dbuf_init(&p.path, DBUF_CAP_SMALL);
	if (fmt != DDBJSON_PLAIN && fmt != DDBJSON_TYPED) {
		rc = -EINVAL;
		goto out;
	}
	/* RFC 8259 lets a parser ignore a byte order mark; editors add one */
	if (p.len >= 3 && !memcmp(p.s, "\xef\xbb\xbf", 3))
		p.pos = 3;
	skip_ws(&p);
	if (p.pos >= p.len) {
		rc = perr(&p, p.pos, "the file is empty; the item must be a JSON object");
		goto out;
	}
	if (p.s[p.pos] != '{') {
		rc = perr(&p, p.pos, "the item must be a JSON object");
		goto out;
	}
	rc = p_members(&p, !p.typed && json_is_object(old) ? old : NULL, 1,
		       &item);
	if (rc)
		goto out;
	skip_ws(&p);
	if (p.pos < p.len) {
		rc = perr(&p, p.pos, "unexpected text after the end of the item");
		goto out;
	}
	if (p.typed) {
		rc = check_map(&p, item, 1);
		if (rc)
			goto out;
	}
	*item_out = item;
	item = NULL;
out:
	if (rc == -ENOMEM && why) {
		dbuf_reset(why);
		(void)dbuf_adds(why, "out of memory");
	}
	json_decref(item);
	dbuf_free(&p.str);
	dbuf_free(&p.path);
	return rc;
}
