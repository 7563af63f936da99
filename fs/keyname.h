/* keyname: the reversible codec between DynamoDB key values and file names.
 *
 * A key value is DynamoDB typed JSON ({"S": "abc"}, {"N": "12.5"},
 * {"B": "<standard base64>"}); a name is the file stem of an item
 * (<name>.json) or the name of a partition directory.  The mapping is
 * one-to-one: every key has exactly one name for a given max_len, and
 * keyname_decode accepts only names that keyname_encode can produce.
 * docs/key-names.md has the rules and examples.
 *
 *  S  UTF-8 text; "%" -> %25, "/" -> %2F, bytes 0x00-0x1F and 0x7F -> %XX
 *     (upper-case hex), a leading "." -> %2E; all else passes through.
 *  N  DynamoDB's normalized decimal text ("12.5", "-3", "100", "0.001");
 *     encode normalizes any valid DynamoDB number first, decode accepts only
 *     the normalized form.  It never needs escaping.
 *  B  base64url (RFC 4648 section 5) without padding of the raw bytes.
 *
 * Long keys: when the full encoding is longer than max_len, the name is
 * <prefix>%~<hash>: prefix is the longest run of whole encoded units (an
 * escape, a UTF-8 sequence, a 4-character base64url group) that leaves room
 * for "%~" and the hash; hash is 32 lower-case hex digits, the first 16
 * bytes of SHA-256 over the type letter followed by the raw key bytes.  Such
 * a name decodes to a partial key (the prefix and the hash) that the fs
 * layer must resolve by listing or a begins_with query, confirming each
 * candidate with keyname_matches().  Numbers never need the fallback.
 *
 * Every function returns 0 (or the documented 1/0) or -errno.  json_t
 * arguments are borrowed. */
#ifndef DYNFS_KEYNAME_H
#define DYNFS_KEYNAME_H

#include <stddef.h>

#include <jansson.h>

#include "backend/dbuf.h"

enum keyname_type { KEYNAME_S, KEYNAME_N, KEYNAME_B };

/* Longest file name (NAME_MAX), and the item suffix. */
#define KEYNAME_MAX_DIR 255
#define KEYNAME_ITEM_SUFFIX ".json"
#define KEYNAME_ITEM_SUFFIX_LEN 5
/* Longest item stem: a name must fit NAME_MAX with its ".json". */
#define KEYNAME_MAX_STEM (KEYNAME_MAX_DIR - KEYNAME_ITEM_SUFFIX_LEN)
/* The long-key marker "%~" and the hash that follows it. */
#define KEYNAME_HASH_HEX 32
#define KEYNAME_FALLBACK_LEN (2 + KEYNAME_HASH_HEX)

/* Append the name of value (typed JSON of type t, e.g. {"S": "a"}) to
 * name_out, at most max_len bytes (KEYNAME_MAX_STEM for an item stem,
 * KEYNAME_MAX_DIR for a directory).  -EINVAL: value is not a valid
 * non-empty key of type t; -ENAMETOOLONG: max_len is too small to hold
 * even the long-key form (a number longer than max_len, or no room for one
 * unit before "%~<hash>"); -E2BIG/-ENOMEM from name_out.  On failure
 * name_out is left as it was. */
int keyname_encode(enum keyname_type t, const json_t *value, size_t max_len,
		   struct dbuf *name_out);

struct keyname_decoded {
	/* 1: a long-key name; value holds only the key's leading part. */
	int partial;
	/* New reference: the typed key ({"S": ...}), or for a partial name
	 * the typed prefix (for S a string, for B whole bytes), which is
	 * what a begins_with condition needs. */
	json_t *value;
	/* For a partial name, the 32 hex digits after "%~"; else "". */
	char hash[KEYNAME_HASH_HEX + 1];
};

/* Decode name[0..len) that was encoded with the same max_len.  -EINVAL
 * for anything keyname_encode would not produce: empty, leading ".",
 * raw "/" or control byte, bad or lower-case or needless %XX, invalid
 * UTF-8, invalid base64url or non-zero trailing bits, a non-normalized
 * number, a malformed or misplaced "%~" part; -ENAMETOOLONG when
 * len > max_len.  out is always initialized, so keyname_decoded_free is
 * safe after a failure.
 *
 * API change from the issue: max_len was added so that a long-key name
 * whose prefix is not the one encode would cut is rejected. */
int keyname_decode(enum keyname_type t, const char *name, size_t len,
		   size_t max_len, struct keyname_decoded *out);
void keyname_decoded_free(struct keyname_decoded *d);

/* 1 when the key value (typed JSON of type t) hashes to hash (32 lower-case
 * hex digits, as in keyname_decoded), 0 when not; -EINVAL for a bad value. */
int keyname_hash_matches(enum keyname_type t, const json_t *value,
			 const char *hash);
/* 1 when value encodes to exactly name[0..len) under max_len, 0 when not.
 * This is the check for resolving a partial name: it implies the hash
 * matches and also that the prefix is the one encode would cut. */
int keyname_matches(enum keyname_type t, const json_t *value, size_t max_len,
		    const char *name, size_t len);

/* Item names.  keyname_is_item: 1 if name ends in ".json", has a non-empty
 * stem and does not start with "." (dot-names are never items). */
int keyname_is_item(const char *name);
/* keyname_encode with KEYNAME_MAX_STEM, then ".json". */
int keyname_encode_item(enum keyname_type t, const json_t *value,
			struct dbuf *name_out);
/* keyname_decode of the stem of an item name with KEYNAME_MAX_STEM;
 * -EINVAL when keyname_is_item(name) is 0. */
int keyname_decode_item(enum keyname_type t, const char *name,
			struct keyname_decoded *out);

#endif
