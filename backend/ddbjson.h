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
 * the text has its own parser, and backend/ddbnum checks and compares
 * them.  The full contract is docs/item-json.md.
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

/* Length (1-4) of the well-formed UTF-8 sequence at s (avail >= 1 bytes
 * there), or 0: no overlong forms, no surrogates, nothing above U+10FFFF.
 * That is the text a JSON string may hold here and what jansson accepts,
 * so whatever passes can become a json_t string. */
size_t ddbjson_utf8_len(const unsigned char *s, size_t avail);

#endif
