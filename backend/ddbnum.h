/* ddbnum: DynamoDB numbers as text.
 *
 * DynamoDB's number forms are [+-] digits [. digits] [eE [+-] digits], with
 * digits on at least one side of the point.  A number it can store has at
 * most 38 significant digits and is 0 or of a magnitude within 1E-130 ..
 * 9.9999999999999999999999999999999999999E+125.  Numbers are never
 * converted to double: everything here works on the digits of the text,
 * in arbitrary precision.  Functions taking (s, len) need no NUL. */
#ifndef DYNFS_DDBNUM_H
#define DYNFS_DDBNUM_H

#include <stddef.h>

#include "backend/dbuf.h"

/* 0 when s is a number DynamoDB can store, else -EINVAL with *why (why
 * may be NULL) saying what is wrong, to follow the number in a message:
 * "is not a number", "has more than 38 significant digits, ...", "is out
 * of DynamoDB's range (...)". */
int ddbnum_check(const char *s, size_t len, const char **why);

/* Append s in DynamoDB's normalized form, which is what DynamoDB returns
 * for any number it stores: plain decimal (exponents expanded), no
 * leading zeros but one before the point, no trailing fraction zeros, no
 * point without a fraction, no "+" and no "-0" ("1.5E2" -> "150", "00042"
 * -> "42", "1.0" -> "1", "-0" -> "0").  At most 170 characters.  -EINVAL
 * when ddbnum_check fails; -E2BIG/-ENOMEM from out. */
int ddbnum_normalize(const char *s, size_t len, struct dbuf *out);

/* Append s as a JSON number token (RFC 8259) with every digit kept: only
 * the form changes ("+5" -> "5", ".5" -> "0.5", "5." -> "5", "007" ->
 * "7"); a token that is already JSON is copied as is.  -EINVAL when s is
 * not in DynamoDB's number syntax (limits are not checked). */
int ddbnum_to_json(const char *s, size_t len, struct dbuf *out);

/* Compare numerically: <0, 0, >0 ("1.0" equals "1" and "10E-1"; "-0"
 * equals "0").  Limits are not checked.  Text that is not in DynamoDB's
 * number syntax sorts after every number, bytewise among itself. */
int ddbnum_cmp(const char *a, size_t alen, const char *b, size_t blen);

#endif
