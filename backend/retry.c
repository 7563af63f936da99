/* retry: the AWS "standard" retry mode (see retry.h and docs/http.md). */
#define _GNU_SOURCE
#include "backend/retry.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>

/* Defaults.  The SDKs' standard mode uses 3 attempts and a 20 s cap; its
 * base delays (100 ms, 500 ms for throttles in the Java SDK v2) are tuned
 * for far-away endpoints.  DynamoDB answers in a few ms, so a transient
 * failure is retried sooner (50 ms); a throttle keeps the SDKs' 500 ms
 * because retrying early only burns more of the table's capacity. */
#define RETRY_DEF_MAX_ATTEMPTS 3
#define RETRY_DEF_BASE_MS 50u
#define RETRY_DEF_THROTTLE_BASE_MS 500u
#define RETRY_DEF_MAX_BACKOFF_MS 20000u

/* The standard mode's quota. */
#define RETRY_QUOTA_MAX 500u
#define RETRY_QUOTA_COST 5u
#define RETRY_QUOTA_TIMEOUT_COST 10u
#define RETRY_QUOTA_SUCCESS 1u

/* Codes that mean "slow down".  LimitExceededException is left out on
 * purpose: for DynamoDB it is a control-plane limit that waiting a few
 * hundred ms does not lift. */
static const char *const throttle_codes[] = {
	"ThrottlingException",
	"ProvisionedThroughputExceededException",
	"RequestLimitExceeded",
	"TooManyRequestsException",
	"Throttling",
	"ThrottledException",
	"RequestThrottled",
	"RequestThrottledException",
	"SlowDown",
	"TransactionInProgressException",
	"BandwidthLimitExceeded",
	"EC2ThrottledException",
};

/* Codes that say the service failed this once, whatever the status. */
static const char *const transient_codes[] = {
	"CRC32CheckFailed", /* set by svc when x-amz-crc32 does not match */
	"RequestTimeout",
	"RequestTimeoutException",
	"PriorRequestNotComplete",
	"InternalServerError",
	"InternalFailure",
	"InternalError",
	"ServiceUnavailable",
};

static int in_list(const char *const *list, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return 1;
	return 0;
}

#define IN_LIST(list, s) in_list(list, sizeof(list) / sizeof(list[0]), s)

enum retry_class retry_classify(long status, const char *type, int transport)
{
	if (transport) {
		/* Failures where the request either never reached the
		 * server or its answer was lost.  -EPROTO (TLS verification,
		 * a broken server) would fail the same way again, and
		 * -EHOSTUNREACH is a bad endpoint name far more often than a
		 * DNS hiccup. */
		switch (transport) {
		case -ECONNRESET:
		case -ETIMEDOUT:
		case -ECONNREFUSED:
			return RETRY_TRANSIENT;
		default:
			return RETRY_NEVER;
		}
	}
	if (type && *type) {
		if (IN_LIST(throttle_codes, type))
			return RETRY_THROTTLE;
		if (IN_LIST(transient_codes, type))
			return RETRY_TRANSIENT;
	}
	if (status == 429)
		return RETRY_THROTTLE;
	if (status >= 500 && status <= 599)
		return RETRY_TRANSIENT;
	return RETRY_NEVER;
}

/* The default randomness: splitmix64 over an atomic counter, so threads
 * never share mutable state beyond one fetch-add.  Seeded once from
 * getrandom; backoff jitter needs spread, not secrecy. */
static _Atomic uint64_t prng_state;
static pthread_once_t prng_once = PTHREAD_ONCE_INIT;

static void prng_seed(void)
{
	uint64_t seed = 0;
	struct timespec ts;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed)) {
		/* Early boot or an old kernel: any spread will do. */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^
		       ((uint64_t)getpid() << 16) ^ (uint64_t)(uintptr_t)&seed;
	}
	atomic_store(&prng_state, seed);
}

static uint32_t prng_next(void)
{
	uint64_t z;

	pthread_once(&prng_once, prng_seed);
	z = atomic_fetch_add(&prng_state, UINT64_C(0x9e3779b97f4a7c15)) +
	    UINT64_C(0x9e3779b97f4a7c15);
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	z ^= z >> 31;
	return (uint32_t)(z >> 32);
}

void retry_policy_default(struct retry_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->max_attempts = RETRY_DEF_MAX_ATTEMPTS;
	p->base_ms = RETRY_DEF_BASE_MS;
	p->throttle_base_ms = RETRY_DEF_THROTTLE_BASE_MS;
	p->max_backoff_ms = RETRY_DEF_MAX_BACKOFF_MS;
	p->rand = NULL;
	p->rand_ctx = NULL;
}

unsigned retry_delay_ms(const struct retry_policy *p, enum retry_class cls,
			int retry)
{
	uint64_t ceiling, r;
	unsigned base;

	if (cls == RETRY_NEVER)
		return 0;
	base = cls == RETRY_THROTTLE ? p->throttle_base_ms : p->base_ms;
	if (retry < 1)
		retry = 1;
	/* base * 2^(retry-1) without overflow: base < 2^32, so a shift
	 * of 31 or less fits in 64 bits, and anything longer is past any
	 * 32-bit cap anyway. */
	if (retry - 1 >= 32)
		ceiling = p->max_backoff_ms;
	else
		ceiling = (uint64_t)base << (retry - 1);
	if (ceiling > p->max_backoff_ms)
		ceiling = p->max_backoff_ms;
	r = p->rand ? p->rand(p->rand_ctx) : prng_next();
	/* Scale a 32-bit draw onto [0, ceiling], both ends included: 0 gives
	 * 0 and UINT32_MAX gives exactly ceiling. */
	return (unsigned)((r * (ceiling + 1)) >> 32);
}

void retry_quota_init(struct retry_quota *q)
{
	/* A default mutex cannot fail to initialize on Linux. */
	pthread_mutex_init(&q->lock, NULL);
	q->tokens = RETRY_QUOTA_MAX;
	q->max = RETRY_QUOTA_MAX;
}

void retry_quota_destroy(struct retry_quota *q)
{
	pthread_mutex_destroy(&q->lock);
}

unsigned retry_quota_acquire(struct retry_quota *q, int timeout)
{
	unsigned cost = timeout ? RETRY_QUOTA_TIMEOUT_COST : RETRY_QUOTA_COST;

	pthread_mutex_lock(&q->lock);
	if (q->tokens < cost)
		cost = 0;
	else
		q->tokens -= cost;
	pthread_mutex_unlock(&q->lock);
	return cost;
}

void retry_quota_release(struct retry_quota *q, unsigned cost)
{
	unsigned add = cost ? cost : RETRY_QUOTA_SUCCESS;

	pthread_mutex_lock(&q->lock);
	if (q->max - q->tokens < add)
		q->tokens = q->max;
	else
		q->tokens += add;
	pthread_mutex_unlock(&q->lock);
}
