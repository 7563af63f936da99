/* dbuf: the one growable, capped byte buffer of dynfs.
 *
 * Every buffer has a hard cap so that a hostile or broken peer cannot make
 * us allocate without bound.  The contents are always NUL-terminated so a
 * text buffer can be handed to string functions directly.  The fields are
 * visible only so a dbuf can live on the stack; use the functions. */
#ifndef DYNFS_DBUF_H
#define DYNFS_DBUF_H

#include <stdarg.h>
#include <stddef.h>

struct dbuf {
	char *ptr;
	size_t len;
	size_t alloc;
	size_t cap;
};

/* Caps for common uses. */
#define DBUF_CAP_SMALL (64u * 1024)
#define DBUF_CAP_BODY (64u * 1024 * 1024)

void dbuf_init(struct dbuf *b, size_t cap);
/* 0, -ENOMEM, or -E2BIG when the cap would be exceeded (b is unchanged). */
int dbuf_add(struct dbuf *b, const void *data, size_t len);
int dbuf_adds(struct dbuf *b, const char *s);
int dbuf_addc(struct dbuf *b, char c);
int dbuf_addf(struct dbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int dbuf_vaddf(struct dbuf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* dbuf_addf for messages: b may be NULL (the caller wants none), and a
 * failure is ignored, since a message that does not fit is not worth
 * failing for. */
void dbuf_addf_opt(struct dbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The text, never NULL ("" while empty). */
const char *dbuf_str(const struct dbuf *b);
size_t dbuf_len(const struct dbuf *b);
/* Shorten to len bytes (len <= current length). */
void dbuf_truncate(struct dbuf *b, size_t len);
void dbuf_reset(struct dbuf *b);
/* Hand the NUL-terminated bytes to the caller (free() them) and reset b.
 * Returns NULL only on out-of-memory for an empty buffer. */
char *dbuf_take(struct dbuf *b, size_t *len);
/* Release memory; wipes it first when the buffer held secrets. */
void dbuf_free(struct dbuf *b);
void dbuf_free_secret(struct dbuf *b);

#endif
