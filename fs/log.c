#include "fs/log.h"

#include <stdio.h>
#include <string.h>
#include <syslog.h>

static int log_debug_on;
static int log_to_syslog;

void log_setup(int debug, int use_syslog)
{
	log_debug_on = debug;
	log_to_syslog = use_syslog;
	if (use_syslog)
		openlog("dynfs", LOG_PID, LOG_DAEMON);
}

int log_debug_enabled(void)
{
	return log_debug_on;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	static const int prio[] = { LOG_ERR, LOG_INFO, LOG_DEBUG };
	va_list ap;

	if (lvl == LOG_LVL_DEBUG && !log_debug_on)
		return;
	va_start(ap, fmt);
	if (log_to_syslog) {
		vsyslog(prio[lvl], fmt, ap);
	} else {
		/* One write per line so lines from threads do not interleave. */
		char line[2048];
		int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);

		if (n < 0)
			n = 0;
		if ((size_t)n > sizeof(line) - 2)
			n = (int)sizeof(line) - 2;
		line[n] = '\n';
		line[n + 1] = '\0';
		fprintf(stderr, "dynfs: %s", line);
	}
	va_end(ap);
}

void log_request(void *ctx, const char *service, const char *what,
		 long status, int attempts, double ms,
		 const struct aws_err *err)
{
	char desc[700];

	(void)ctx;
	if (!log_debug_on)
		return;
	if (err)
		log_msg(LOG_LVL_DEBUG, "%s %s: %s (%d attempt%s, %.1f ms)",
			service, what, awserr_describe(err, desc, sizeof(desc)),
			attempts, attempts == 1 ? "" : "s", ms);
	else
		log_msg(LOG_LVL_DEBUG, "%s %s: %ld (%d attempt%s, %.1f ms)",
			service, what, status, attempts,
			attempts == 1 ? "" : "s", ms);
}
