/* retry: the AWS "standard" retry mode.  Which failures are retried, how
 * long to wait (exponential backoff with full jitter), and the retry
 * quota that stops a failing endpoint from being hammered.  Randomness is
 * injected so a schedule can be asserted exactly. */
#ifndef DYNFS_RETRY_H
#define DYNFS_RETRY_H

#include <pthread.h>
#include <stdint.h>

enum retry_class {
	RETRY_NEVER = 0,
	RETRY_THROTTLE,  /* throttling error codes, 429 */
	RETRY_TRANSIENT, /* 5xx, connection reset, timeout, bad CRC */
};

/* status: HTTP status, 0 when no response arrived.  type: the service's
 * error code without namespace (NULL when none).  transport: the -errno of
 * http_perform, 0 when a response arrived. */
enum retry_class retry_classify(long status, const char *type, int transport);

typedef uint32_t (*retry_rand_fn)(void *ctx);

struct retry_policy {
	int max_attempts;          /* first try included; standard: 3 */
	unsigned base_ms;          /* transient errors */
	unsigned throttle_base_ms; /* throttling errors */
	unsigned max_backoff_ms;   /* standard: 20000 */
	retry_rand_fn rand;        /* NULL: a thread-safe PRNG */
	void *rand_ctx;
};

/* Defaults documented in docs/http.md. */
void retry_policy_default(struct retry_policy *p);
/* Delay before retry number `retry` (1 for the first retry): a uniform
 * value in [0, min(max_backoff, base * 2^(retry-1))]. */
unsigned retry_delay_ms(const struct retry_policy *p, enum retry_class cls,
			int retry);

/* The standard mode's retry quota: a bucket of 500 tokens; a retry costs
 * 5 (10 after a timeout), a success after a retry returns that cost, a
 * success without one returns 1.  When the bucket is empty, retries stop. */
struct retry_quota {
	pthread_mutex_t lock; /* leaf lock: nothing is taken while held */
	unsigned tokens;
	unsigned max;
};

void retry_quota_init(struct retry_quota *q);
void retry_quota_destroy(struct retry_quota *q);
/* The cost taken, or 0 when the quota is exhausted (do not retry). */
unsigned retry_quota_acquire(struct retry_quota *q, int timeout);
/* After a success: cost is what this request's last retry took (0 if none). */
void retry_quota_release(struct retry_quota *q, unsigned cost);

#endif
