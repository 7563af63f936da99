/* b64: base64 (RFC 4648) in the two forms dynfs meets.
 *
 *  B64_STD  standard alphabet ("+/") padded with '=' to a multiple of 4:
 *           how DynamoDB's JSON carries B values (section 4);
 *  B64_URL  URL and file name safe alphabet ("-_") without padding: how a
 *           binary key is spelled in a file name (section 5).
 *
 * b64_encode and b64_decode return 0 or -errno, and on failure leave out
 * as it was. */
#ifndef DYNFS_B64_H
#define DYNFS_B64_H

#include <stddef.h>

#include "backend/dbuf.h"

enum b64_form { B64_STD, B64_URL };

/* Append the base64 of data[0..n) in form f to out.  -E2BIG/-ENOMEM from
 * out. */
int b64_encode(const void *data, size_t n, enum b64_form f, struct dbuf *out);

/* Decode s[0..n) in form f, appending the bytes to out (NULL: only check).
 * strict: accept only what b64_encode writes (B64_STD padded to a
 * multiple of 4, B64_URL without '='; the unused low bits of the last
 * character zero), so that each byte string has exactly one spelling.
 * Not strict: '=' padding is optional (when present it must complete the
 * last group) and unused bits are ignored.  -EINVAL for anything else. */
int b64_decode(const char *s, size_t n, enum b64_form f, int strict,
	       struct dbuf *out);

/* 1 when s[0..n) is canonical base64 of form f (what b64_encode writes
 * for some bytes), else 0. */
int b64_canonical(const char *s, size_t n, enum b64_form f);

#endif
