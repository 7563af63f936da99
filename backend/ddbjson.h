/* ddbjson: the codec between DynamoDB typed items and the text of an item
 * file.
 *
 * An item is a jansson object in DynamoDB's typed JSON ({"pk": {"S": "a"},
 * "n": {"N": "12.50"}}), as ddb hands it over.  Its file shows it either
 * plain (S as a string, N as a JSON number with DynamoDB's exact digits,
 * sets as sorted arrays...) or typed (the typed JSON itself), laid out
 * exactly as `jq -S --indent 2 .` would print it.  Parsing the edited text
 * back uses the item as last read to keep types that plain JSON cannot
 * show (SS, NS, BS, B).  Numbers are never converted to double anywhere:
 * the text has its own parser.  The full contract is docs/item-json.md.
 *
 * json_t arguments are borrowed; *_out values are new references.  Every
 * call returns 0 or -errno. */
#ifndef DYNFS_DDBJSON_H
#define DYNFS_DDBJSON_H

#include <stddef.h>

#include <jansson.h>

#include "backend/dbuf.h"

enum ddbjson_format {
	DDBJSON_PLAIN, /* the default file format */
	DDBJSON_TYPED  /* -o json=dynamodb: the Item of `aws dynamodb get-item` */
};

/* Containers (objects and arrays, the item itself counting as one) the
 * parser accepts nested; DynamoDB's own limit, 32 levels, is lower and
 * is left to DynamoDB to enforce. */
#define DDBJSON_MAX_DEPTH 64

/* Render a typed item as the file's text, appended to out.  -EINVAL when
 * item is not a well-formed typed item; -E2BIG / -ENOMEM from out.  On
 * failure out is left as it was. */
int ddbjson_render(const json_t *item, enum ddbjson_format fmt,
		   struct dbuf *out);

/* Parse a file's text (len bytes, need not be NUL-terminated) into a typed
 * item.  old (typed, may be NULL) is the item as last read: its types are
 * kept where the new value still fits (plain format only).  -EINVAL for
 * invalid JSON, a body that is not an object, or a value DynamoDB cannot
 * hold; why (may be NULL) is then replaced by one sentence for the log,
 * e.g. "line 3, column 7: expected ',' or '}'".  -ENOMEM on out of
 * memory. */
int ddbjson_parse(const char *text, size_t len, enum ddbjson_format fmt,
		  const json_t *old, json_t **item_out, struct dbuf *why);

/* Compare two DynamoDB number strings numerically, in arbitrary precision:
 * <0, 0, >0 ("1.0" equals "1" and "10E-1").  Accepts the forms DynamoDB
 * does ([+-], digits with an optional '.', optional exponent).  Strings
 * that are not numbers sort after every number, bytewise among
 * themselves. */
int ddbjson_numcmp(const char *a, const char *b);

/* Whether s is a number DynamoDB can store: at most 38 significant digits
 * and a magnitude of 0 or within 1E-130 .. 9.99...E+125. */
int ddbjson_number_ok(const char *s, size_t len);

#endif
