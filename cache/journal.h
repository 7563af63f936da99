/* journal: the write-back queue's log on disk, so that a write whose
 * close() succeeded survives kill -9 and power loss.
 *
 * One append-only file, DIR/journal, of framed records: a 4-byte length
 * and a 4-byte CRC-32 (zlib's crc32, little-endian) of the payload, then the payload,
 * a JSON object the caller defines.  While open, the file also holds zeros
 * written ahead of the records (a zero length ends them), so that an
 * append's sync has no file size to update.  journal_append returns only once the
 * record is on disk (fdatasync); concurrent appenders share one sync
 * (group commit).  A torn or corrupt tail, as a crash leaves, ends the
 * replay and is cut off.  DIR is made 0700 and the file 0600, and an
 * exclusive flock on DIR/lock keeps a second mount out of the same DIR.
 *
 * Thread-safe.  Returns 0 or -errno; why (may be NULL) gets one sentence
 * for the log. */
#ifndef DYNFS_JOURNAL_H
#define DYNFS_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "backend/dbuf.h"

struct journal;

/* Opens (making DIR and its parents as needed) and locks.  -EBUSY when
 * another process holds DIR. */
int journal_open(struct journal **out, const char *dir, struct dbuf *why);
/* Closes and unlocks; records stay for the next open. */
void journal_close(struct journal *j);

/* Calls cb for each record on disk, oldest first (rec borrowed).
 * Call once, after journal_open and before the first append.  A
 * non-zero value from cb stops the replay and is returned. */
typedef int (*journal_cb)(void *ctx, json_t *rec);
int journal_replay(struct journal *j, journal_cb cb, void *ctx,
		   struct dbuf *why);

/* Appends rec; durable when 0 is returned. */
int journal_append(struct journal *j, const json_t *rec, struct dbuf *why);
/* Appends rec without waiting for the disk (done-markers: losing one only
 * means a replay re-sends an idempotent write). */
int journal_append_lazy(struct journal *j, const json_t *rec,
			struct dbuf *why);

/* Replaces the whole journal with the records of live (an array, in
 * order; may be empty), atomically: a new file is written, synced and
 * renamed over the old one.  Callers hold off appends meanwhile (the
 * journal serializes them).  Used when the queue drains and when the
 * file grows past what its live records need. */
int journal_rewrite(struct journal *j, const json_t *live, struct dbuf *why);

/* Bytes of records in the journal now (not the zeros ahead of them). */
uint64_t journal_size(struct journal *j);

/* The directory (borrowed), for files kept beside the journal. */
const char *journal_dir(const struct journal *j);

#endif
