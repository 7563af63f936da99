/* journal_test: hooks for tests/unit/test_journal.c only; nothing else
 * includes this.  They let a test slow down, count or fail the syncs
 * without touching the real disk's behaviour. */
#ifndef DYNFS_JOURNAL_TEST_H
#define DYNFS_JOURNAL_TEST_H

#include <stdint.h>

#include "cache/journal.h"

/* How the journal makes its file durable: 0, or -1 with errno set, like
 * fdatasync(2), which is the default (sync NULL puts it back). */
typedef int (*journal_sync_fn)(int fd);
void journal_test_set_sync(struct journal *j, journal_sync_fn sync);

/* File syncs made so far (appends and rewrites; not directory syncs). */
uint64_t journal_test_syncs(struct journal *j);

#endif
