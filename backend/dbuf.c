#include "backend/dbuf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

void dbuf_init(struct dbuf *b, size_t cap)
{
	b->ptr = NULL;
	b->len = 0;
	b->alloc = 0;
	b->cap = cap;
}

/* Make room for need more bytes plus the terminating NUL. */
static int dbuf_grow(struct dbuf *b, size_t need)
{
	size_t want, n;
	char *p;

	if (need > b->cap || b->len > b->cap - need)
		return -E2BIG;
	want = b->len + need + 1;
	if (want <= b->alloc)
		return 0;
	n = b->alloc ? b->alloc : 64;
	while (n < want)
		n = n > SIZE_MAX / 2 ? want : n * 2;
	if (n > b->cap + 1)
		n = b->cap + 1;
	p = realloc(b->ptr, n);
	if (!p)
		return -ENOMEM;
	b->ptr = p;
	b->alloc = n;
	return 0;
}

int dbuf_add(struct dbuf *b, const void *data, size_t len)
{
	int rc = dbuf_grow(b, len);

	if (rc)
		return rc;
	if (len)
		memcpy(b->ptr + b->len, data, len);
	b->len += len;
	b->ptr[b->len] = '\0';
	return 0;
}

int dbuf_adds(struct dbuf *b, const char *s)
{
	return dbuf_add(b, s, strlen(s));
}

int dbuf_addc(struct dbuf *b, char c)
{
	return dbuf_add(b, &c, 1);
}

int dbuf_vaddf(struct dbuf *b, const char *fmt, va_list ap)
{
	va_list aq;
	int n, rc;

	va_copy(aq, ap);
	n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (n < 0)
		return -EINVAL;
	rc = dbuf_grow(b, (size_t)n);
	if (rc)
		return rc;
	vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int dbuf_addf(struct dbuf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = dbuf_vaddf(b, fmt, ap);
	va_end(ap);
	return rc;
}

void dbuf_addf_opt(struct dbuf *b, const char *fmt, ...)
{
	va_list ap;

	if (!b)
		return;
	va_start(ap, fmt);
	(void)dbuf_vaddf(b, fmt, ap);
	va_end(ap);
}

const char *dbuf_str(const struct dbuf *b)
{
	return b->ptr ? b->ptr : "";
}

size_t dbuf_len(const struct dbuf *b)
{
	return b->len;
}

void dbuf_truncate(struct dbuf *b, size_t len)
{
	if (len < b->len) {
		b->len = len;
		b->ptr[len] = '\0';
	}
}

void dbuf_reset(struct dbuf *b)
{
	dbuf_truncate(b, 0);
}

char *dbuf_take(struct dbuf *b, size_t *len)
{
	char *p = b->ptr;

	if (!p)
		p = calloc(1, 1);
	if (len)
		*len = p ? b->len : 0;
	b->ptr = NULL;
	b->len = 0;
	b->alloc = 0;
	return p;
}

void dbuf_free(struct dbuf *b)
{
	free(b->ptr);
	b->ptr = NULL;
	b->len = 0;
	b->alloc = 0;
}

void dbuf_free_secret(struct dbuf *b)
{
	if (b->ptr)
		OPENSSL_cleanse(b->ptr, b->alloc);
	dbuf_free(b);
}
