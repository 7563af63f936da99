/* retry: classification, the backoff schedule with injected randomness,
 * and the retry quota. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend/retry.h"

static void test_classify_throttle(void **state)
{
	static const char *const codes[] = {
		"ThrottlingException",
		"ProvisionedThroughputExceededException",
		"RequestLimitExceeded",
		"TooManyRequestsException",
		"Throttling",
		"ThrottledException",
		"RequestThrottled",
		"SlowDown",
		"RequestThrottledException",
		"TransactionInProgressException",
	};
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		/* DynamoDB sends its throttles as 400 */
		assert_int_equal(retry_classify(400, codes[i], 0), RETRY_THROTTLE);
		assert_int_equal(retry_classify(503, codes[i], 0), RETRY_THROTTLE);
	}
	assert_int_equal(retry_classify(429, NULL, 0), RETRY_THROTTLE);
	assert_int_equal(retry_classify(429, "", 0), RETRY_THROTTLE);
	/* a control-plane limit, not a throttle */
	assert_int_equal(retry_classify(400, "LimitExceededException", 0),
			 RETRY_NEVER);
}

static void test_classify_transient(void **state)
{
	long s;
	(void)state;

	assert_int_equal(retry_classify(500, NULL, 0), RETRY_TRANSIENT);
	assert_int_equal(retry_classify(502, NULL, 0), RETRY_TRANSIENT);
	assert_int_equal(retry_classify(503, NULL, 0), RETRY_TRANSIENT);
	assert_int_equal(retry_classify(504, NULL, 0), RETRY_TRANSIENT);
	for (s = 500; s <= 599; s++)
		assert_int_equal(retry_classify(s, NULL, 0), RETRY_TRANSIENT);
	assert_int_equal(retry_classify(500, "InternalServerError", 0),
			 RETRY_TRANSIENT);
	assert_int_equal(retry_classify(200, "CRC32CheckFailed", 0),
			 RETRY_TRANSIENT);
	assert_int_equal(retry_classify(0, NULL, -ECONNRESET), RETRY_TRANSIENT);
	assert_int_equal(retry_classify(0, NULL, -ETIMEDOUT), RETRY_TRANSIENT);
	assert_int_equal(retry_classify(0, NULL, -ECONNREFUSED), RETRY_TRANSIENT);
}

static void test_classify_never(void **state)
{
	static const char *const codes[] = {
		"ValidationException",
		"ConditionalCheckFailedException",
		"ResourceNotFoundException",
		"AccessDenied",
		"AccessDeniedException",
		"UnrecognizedClientException",
		"InvalidSignatureException",
		"ExpiredTokenException",
		"TransactionCanceledException",
		"SerializationException",
	};
	size_t i;
	long s;
	(void)state;

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		assert_int_equal(retry_classify(400, codes[i], 0), RETRY_NEVER);
	for (s = 400; s <= 499; s++)
		if (s != 429)
			assert_int_equal(retry_classify(s, NULL, 0), RETRY_NEVER);
	assert_int_equal(retry_classify(200, NULL, 0), RETRY_NEVER);
	assert_int_equal(retry_classify(301, NULL, 0), RETRY_NEVER);
	/* TLS verification and protocol failures fail the same way again */
	assert_int_equal(retry_classify(0, NULL, -EPROTO), RETRY_NEVER);
	assert_int_equal(retry_classify(0, NULL, -EHOSTUNREACH), RETRY_NEVER);
	assert_int_equal(retry_classify(0, NULL, -E2BIG), RETRY_NEVER);
	assert_int_equal(retry_classify(0, NULL, -ENOMEM), RETRY_NEVER);
	assert_int_equal(retry_classify(0, NULL, -EINVAL), RETRY_NEVER);
}

static void test_defaults(void **state)
{
	struct retry_policy p;
	(void)state;

	memset(&p, 0xa5, sizeof(p));
	retry_policy_default(&p);
	assert_int_equal(p.max_attempts, 3);
	assert_int_equal(p.base_ms, 50);
	assert_int_equal(p.throttle_base_ms, 500);
	assert_int_equal(p.max_backoff_ms, 20000);
	assert_null(p.rand);
	assert_null(p.rand_ctx);
}

static uint32_t rand_fixed(void *ctx)
{
	return *(const uint32_t *)ctx;
}

static void test_schedule_max(void **state)
{
	static const unsigned transient[] = {
		50, 100, 200, 400, 800, 1600, 3200, 6400, 12800, 20000, 20000,
	};
	static const unsigned throttle[] = {
		500, 1000, 2000, 4000, 8000, 16000, 20000, 20000,
	};
	struct retry_policy p;
	uint32_t r = UINT32_MAX;
	size_t i;
	(void)state;

	retry_policy_default(&p);
	p.rand = rand_fixed;
	p.rand_ctx = &r;
	for (i = 0; i < sizeof(transient) / sizeof(transient[0]); i++)
		assert_int_equal(retry_delay_ms(&p, RETRY_TRANSIENT, (int)i + 1),
				 transient[i]);
	for (i = 0; i < sizeof(throttle) / sizeof(throttle[0]); i++)
		assert_int_equal(retry_delay_ms(&p, RETRY_THROTTLE, (int)i + 1),
				 throttle[i]);
	/* a huge retry number neither overflows nor passes the cap */
	assert_int_equal(retry_delay_ms(&p, RETRY_TRANSIENT, 40), 20000);
	assert_int_equal(retry_delay_ms(&p, RETRY_TRANSIENT, 1000000), 20000);
	assert_int_equal(retry_delay_ms(&p, RETRY_NEVER, 1), 0);
}

static void test_schedule_fixed(void **state)
{
	struct retry_policy p;
	uint32_t r;
	(void)state;

	retry_policy_default(&p);
	p.rand = rand_fixed;
	p.rand_ctx = &r;

	r = 0;
	assert_int_equal(retry_delay_ms(&p, RETRY_TRANSIENT, 1), 0);
	assert_int_equal(retry_delay_ms(&p, RETRY_THROTTLE, 5), 0);

	/* half the range: floor((ceiling + 1) / 2) */
	r = UINT32_C(0x80000000);
	assert_int_equal(retry_delay_ms(&p, RETRY_TRANSIENT, 1), 25);
	assert_int_equal(retry_delay_ms(&p, RETRY_TRANSIENT, 2), 50);
	assert_int_equal(retry_delay_ms(&p, RETRY_TRANSIENT, 3), 100);
	assert_int_equal(retry_delay_ms(&p, RETRY_THROTTLE, 1), 250);
	assert_int_equal(retry_delay_ms(&p, RETRY_THROTTLE, 2), 500);
	assert_int_equal(retry_delay_ms(&p, RETRY_THROTTLE, 7), 10000);

	/* a quarter: floor((ceiling + 1) / 4) */
	r = UINT32_C(0x40000000);
	assert_int_equal(retry_delay_ms(&p, RETRY_TRANSIENT, 1), 12);
	assert_int_equal(retry_delay_ms(&p, RETRY_TRANSIENT, 4), 100);
	assert_int_equal(retry_delay_ms(&p, RETRY_THROTTLE, 3), 500);

	/* custom policy */
	p.base_ms = 10;
	p.max_backoff_ms = 35;
	r = UINT32_MAX;
	assert_int_equal(retry_delay_ms(&p, RETRY_TRANSIENT, 1), 10);
	assert_int_equal(retry_delay_ms(&p, RETRY_TRANSIENT, 2), 20);
	assert_int_equal(retry_delay_ms(&p, RETRY_TRANSIENT, 3), 35);
	/* retry numbers below 1 count as the first retry */
	assert_int_equal(retry_delay_ms(&p, RETRY_TRANSIENT, 0), 10);
}

static void test_default_rand_in_range(void **state)
{
	struct retry_policy p;
	unsigned d, lo = UINT32_MAX, hi = 0;
	int i, retry;
	(void)state;

	retry_policy_default(&p);
	for (retry = 1; retry <= 12; retry++) {
		unsigned cap = 50u << (retry - 1);

		if (cap > 20000)
			cap = 20000;
		for (i = 0; i < 200; i++) {
			d = retry_delay_ms(&p, RETRY_TRANSIENT, retry);
			assert_true(d <= cap);
			if (retry == 12) {
				lo = d < lo ? d : lo;
				hi = d > hi ? d : hi;
			}
		}
	}
	/* 200 draws over [0, 20000] are spread, not stuck */
	assert_true(lo < 5000);
	assert_true(hi > 15000);
}

static void test_quota(void **state)
{
	struct retry_quota q;
	unsigned n = 0, cost;
	(void)state;

	retry_quota_init(&q);
	assert_int_equal(q.tokens, 500);
	assert_int_equal(q.max, 500);

	assert_int_equal(retry_quota_acquire(&q, 0), 5);
	assert_int_equal(q.tokens, 495);
	assert_int_equal(retry_quota_acquire(&q, 1), 10);
	assert_int_equal(q.tokens, 485);
	/* success after a retry gives back that retry's cost */
	retry_quota_release(&q, 10);
	assert_int_equal(q.tokens, 495);
	retry_quota_release(&q, 5);
	assert_int_equal(q.tokens, 500);
	/* never past the max */
	retry_quota_release(&q, 0);
	retry_quota_release(&q, 10);
	assert_int_equal(q.tokens, 500);

	/* exhaustion: 100 plain retries, then nothing */
	while ((cost = retry_quota_acquire(&q, 0)) != 0) {
		assert_int_equal(cost, 5);
		n++;
	}
	assert_int_equal(n, 100);
	assert_int_equal(q.tokens, 0);
	assert_int_equal(retry_quota_acquire(&q, 0), 0);
	assert_int_equal(retry_quota_acquire(&q, 1), 0);

	/* a success without retry refunds 1 token */
	retry_quota_release(&q, 0);
	assert_int_equal(q.tokens, 1);
	assert_int_equal(retry_quota_acquire(&q, 0), 0);
	retry_quota_release(&q, 5);
	assert_int_equal(q.tokens, 6);
	assert_int_equal(retry_quota_acquire(&q, 1), 0); /* timeout needs 10 */
	assert_int_equal(retry_quota_acquire(&q, 0), 5);
	assert_int_equal(q.tokens, 1);
	retry_quota_destroy(&q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify_throttle),
		cmocka_unit_test(test_classify_transient),
		cmocka_unit_test(test_classify_never),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_schedule_max),
		cmocka_unit_test(test_schedule_fixed),
		cmocka_unit_test(test_default_rand_in_range),
		cmocka_unit_test(test_quota),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
