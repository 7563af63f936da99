/* log: one clear line per event for the person, on stderr while in the
 * foreground and in syslog once daemonized.  Secrets never reach it:
 * callers pass error types and messages, never credentials. */
#ifndef DYNFS_LOG_H
#define DYNFS_LOG_H

#include <stdarg.h>

#include "backend/awserr.h"

enum log_level { LOG_LVL_ERROR, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Process-wide, like libfuse's own fuse_log: set once before any thread
 * starts, read-only after. */
void log_setup(int debug, int use_syslog);
int log_debug_enabled(void);
void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The svc_log_fn for -d: operation, status, attempts and latency. */
void log_request(void *ctx, const char *service, const char *what,
		 long status, int attempts, double ms,
		 const struct aws_err *err);

#endif
