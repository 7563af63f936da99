/* awserr: the three error body forms, the errno table, describe text. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend/awserr.h"

static void parse(struct aws_err *e, long status, const char *body,
		  const char *hdr)
{
	awserr_clear(e);
	awserr_from_response(e, status, body, body ? strlen(body) : 0, hdr);
}

static void test_json_10(void **state)
{
	struct aws_err e;
	(void)state;

	parse(&e, 400,
	      "{\"__type\":\"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException\","
	      "\"message\":\"Requested resource not found\"}",
	      NULL);
	assert_int_equal(e.status, 400);
	assert_int_equal(e.transport, 0);
	assert_string_equal(e.type, "ResourceNotFoundException");
	assert_string_equal(e.message, "Requested resource not found");
	assert_int_equal(awserr_to_errno(&e), -ENOENT);

	/* "Message" with a capital M, and no namespace */
	parse(&e, 400,
	      " \n{\"__type\":\"ConditionalCheckFailedException\","
	      "\"Message\":\"The conditional request failed\"}",
	      NULL);
	assert_string_equal(e.type, "ConditionalCheckFailedException");
	assert_string_equal(e.message, "The conditional request failed");
	assert_int_equal(awserr_to_errno(&e), -ESTALE);

	/* control characters never reach a log line */
	parse(&e, 400, "{\"__type\":\"x#ValidationException\",\"message\":\"a\\nb\\tc\"}",
	      NULL);
	assert_string_equal(e.message, "a b c");
}

static void test_rest_json_header(void **state)
{
	struct aws_err e;
	/* what http_response_header hands over: a pointer into the header
	 * block, running on into the next line */
	static const char hdrs[] =
		"ResourceNotFoundException:http://internal.amazon.com/coral/com.amazon.coral.validate/\r\n"
		"x-amzn-RequestId: abc\r\n";
	(void)state;

	parse(&e, 404, "{\"Type\":\"User\",\"message\":\"Function not found: arn:aws:lambda:f\"}",
	      hdrs);
	assert_string_equal(e.type, "ResourceNotFoundException");
	assert_string_equal(e.message, "Function not found: arn:aws:lambda:f");
	assert_int_equal(awserr_to_errno(&e), -ENOENT);

	/* a header without ':' still ends at its line */
	parse(&e, 429, "{\"message\":\"Too Many Requests\"}",
	      "TooManyRequestsException\r\nx-other: 1\r\n");
	assert_string_equal(e.type, "TooManyRequestsException");
	assert_int_equal(awserr_to_errno(&e), -EAGAIN);

	/* the header wins over the body's type */
	parse(&e, 400, "{\"__type\":\"ns#SomethingElse\",\"message\":\"m\"}",
	      "aws.protocoltests#BadRequestException:http://x#y");
	assert_string_equal(e.type, "BadRequestException");
	assert_int_equal(awserr_to_errno(&e), -EINVAL);

	/* API Gateway's 403 for a missing route: code only in the header */
	parse(&e, 403, "{\"message\":\"Missing Authentication Token\"}",
	      "MissingAuthenticationTokenException");
	assert_int_equal(awserr_to_errno(&e), -EACCES);
	assert_false(awserr_is_auth(&e));
}

static void test_xml(void **state)
{
	struct aws_err e;
	(void)state;

	parse(&e, 403,
	      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	      "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
	      "<Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code>"
	      "<Message>The request signature we calculated does not match &amp; &lt;so&gt; on</Message>"
	      "</Error><RequestId>4e2c-11</RequestId></ErrorResponse>",
	      NULL);
	assert_string_equal(e.type, "SignatureDoesNotMatch");
	assert_string_equal(e.message,
			    "The request signature we calculated does not match & <so> on");
	assert_string_equal(e.request_id, "4e2c-11");
	assert_int_equal(awserr_to_errno(&e), -EACCES);
	assert_true(awserr_is_auth(&e));

	/* moto's bare <Error> */
	parse(&e, 400, "<Error><Code>InvalidClientTokenId</Code>"
		       "<Message>The security token included in the request is invalid.</Message></Error>",
	      NULL);
	assert_string_equal(e.type, "InvalidClientTokenId");
	assert_true(awserr_is_auth(&e));

	/* an HTML error page: no code, status decides */
	parse(&e, 502, "<html><body>Bad Gateway</body></html>", NULL);
	assert_string_equal(e.type, "");
	assert_int_equal(awserr_to_errno(&e), -EIO);
}

static void test_other_bodies(void **state)
{
	struct aws_err e;
	char big[2000];
	(void)state;

	/* plain text: its words become the message */
	parse(&e, 503, "Service Unavailable\n", NULL);
	assert_string_equal(e.type, "");
	assert_string_equal(e.message, "Service Unavailable");
	assert_int_equal(awserr_to_errno(&e), -EIO);

	/* broken JSON and empty bodies leave the status to decide */
	parse(&e, 404, "{\"__type\":", NULL);
	assert_string_equal(e.type, "");
	assert_int_equal(awserr_to_errno(&e), -ENOENT);
	parse(&e, 403, "", NULL);
	assert_int_equal(awserr_to_errno(&e), -EACCES);
	parse(&e, 403, NULL, NULL);
	assert_int_equal(awserr_to_errno(&e), -EACCES);

	/* a body is only read up to its length */
	awserr_clear(&e);
	awserr_from_response(&e, 400, "{\"__type\":\"a#SerializationException\"}GARBAGE",
			     strlen("{\"__type\":\"a#SerializationException\"}"), NULL);
	assert_string_equal(e.type, "SerializationException");

	/* a long message is cut, still terminated */
	memset(big, 'x', sizeof(big));
	memcpy(big, "{\"message\":\"", 12);
	memcpy(big + sizeof(big) - 3, "\"}", 3);
	parse(&e, 400, big, NULL);
	assert_int_equal(strlen(e.message), sizeof(e.message) - 1);

	/* a cut never leaves half a UTF-8 sequence */
	{
		char body[1300];
		size_t n = 0, i;

		n += (size_t)snprintf(body, sizeof(body), "{\"message\":\"");
		for (i = 0; i < 600; i++) {
			body[n++] = (char)0xc3; /* U+00E9 */
			body[n++] = (char)0xa9;
		}
		memcpy(body + n, "\"}", 3);
		parse(&e, 400, body, NULL);
		assert_int_equal(strlen(e.message) % 2, 0);
		assert_int_equal(strlen(e.message), 510);
	}

	/* attempts and request_id belong to the caller */
	awserr_clear(&e);
	e.attempts = 3;
	snprintf(e.request_id, sizeof(e.request_id), "%s", "RID");
	awserr_from_response(&e, 500, "", 0, NULL);
	assert_int_equal(e.attempts, 3);
	assert_string_equal(e.request_id, "RID");
}

struct row {
	long status;
	const char *type;
	const char *message;
	int err;
};

static void test_errno_table(void **state)
{
	static const struct row rows[] = {
		{ 400, "ResourceNotFoundException", "", -ENOENT },
		{ 404, NULL, "", -ENOENT },
		{ 400, "AccessDenied", "", -EACCES },
		{ 400, "AccessDeniedException", "", -EACCES },
		{ 400, "UnrecognizedClientException", "", -EACCES },
		{ 400, "InvalidSignatureException", "", -EACCES },
		{ 403, "SignatureDoesNotMatch", "", -EACCES },
		{ 403, "InvalidClientTokenId", "", -EACCES },
		{ 403, "MissingAuthenticationToken", "", -EACCES },
		{ 403, "MissingAuthenticationTokenException", "", -EACCES },
		{ 400, "ExpiredToken", "", -EACCES },
		{ 400, "ExpiredTokenException", "", -EACCES },
		{ 403, "IncompleteSignature", "", -EACCES },
		{ 401, NULL, "", -EACCES },
		{ 403, NULL, "", -EACCES },
		{ 400, "ConditionalCheckFailedException", "", -ESTALE },
		{ 400, "TransactionCanceledException", "", -ECANCELED },
		{ 400, "ValidationException",
		  "Item size has exceeded the maximum allowed size", -EFBIG },
		{ 400, "ValidationException",
		  "Item size to update has exceeded the maximum allowed size", -EFBIG },
		{ 400, "ValidationException",
		  "One or more parameter values were invalid: Size of hashkey has "
		  "exceeded the maximum size limit of 2048 bytes", -ENAMETOOLONG },
		{ 400, "ValidationException", "1 validation error detected", -EINVAL },
		{ 413, NULL, "", -EFBIG },
		{ 400, "SerializationException", "", -EINVAL },
		{ 400, NULL, "", -EINVAL },
		{ 400, "ThrottlingException", "", -EAGAIN },
		{ 400, "ProvisionedThroughputExceededException", "", -EAGAIN },
		{ 400, "RequestLimitExceeded", "", -EAGAIN },
		{ 429, "TooManyRequestsException", "", -EAGAIN },
		{ 429, NULL, "", -EAGAIN },
		{ 400, "LimitExceededException", "", -EAGAIN },
		{ 400, "ResourceInUseException", "", -EBUSY },
		{ 400, "ItemCollectionSizeLimitExceededException", "", -ENOSPC },
		{ 500, NULL, "", -EIO },
		{ 502, NULL, "", -EIO },
		{ 503, NULL, "", -EIO },
		{ 500, "InternalServerError", "", -EIO },
		{ 200, "CRC32CheckFailed", "", -EIO },
		/* an unknown code falls back on the status */
		{ 404, "SomethingNew", "", -ENOENT },
		{ 418, "SomethingNew", "", -EIO },
		{ 301, NULL, "", -EIO },
		{ 0, NULL, "", -EIO },
	};
	struct aws_err e;
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		awserr_clear(&e);
		e.status = rows[i].status;
		if (rows[i].type)
			snprintf(e.type, sizeof(e.type), "%s", rows[i].type);
		snprintf(e.message, sizeof(e.message), "%s", rows[i].message);
		if (awserr_to_errno(&e) != rows[i].err)
			fail_msg("row %zu (%ld %s): got %d, want %d", i,
				 rows[i].status, rows[i].type ? rows[i].type : "-",
				 awserr_to_errno(&e), rows[i].err);
	}
}

static void test_transport(void **state)
{
	static const int network[] = {
		-ETIMEDOUT, -ECONNREFUSED, -ECONNRESET, -EHOSTUNREACH,
		-EPROTO, -E2BIG,
	};
	struct aws_err e;
	char buf[256];
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(network) / sizeof(network[0]); i++) {
		awserr_clear(&e);
		awserr_from_transport(&e, network[i], "words");
		assert_int_equal(e.transport, network[i]);
		assert_int_equal(e.status, 0);
		assert_int_equal(awserr_to_errno(&e), -EIO);
		assert_false(awserr_is_auth(&e));
	}
	awserr_from_transport(&e, -ENOMEM, NULL);
	assert_int_equal(awserr_to_errno(&e), -ENOMEM);
	assert_string_equal(awserr_describe(&e, buf, sizeof(buf)), "out of memory");

	awserr_from_transport(&e, -ECONNREFUSED,
			      "Failed to connect to 127.0.0.1 port 9 after 0 ms: Connection refused");
	assert_string_equal(awserr_describe(&e, buf, sizeof(buf)),
			    "connection refused: Failed to connect to 127.0.0.1 "
			    "port 9 after 0 ms: Connection refused");
	awserr_from_transport(&e, -ETIMEDOUT, "Operation timed out after 300 milliseconds");
	assert_string_equal(awserr_describe(&e, buf, sizeof(buf)),
			    "timed out: Operation timed out after 300 milliseconds");
}

static void test_describe(void **state)
{
	struct aws_err e;
	char buf[256], tiny[8];
	(void)state;

	parse(&e, 403, "{\"__type\":\"com.amazon.coral.service#InvalidSignatureException\","
		       "\"message\":\"The request signature we calculated does not match\"}",
	      NULL);
	assert_string_equal(awserr_describe(&e, buf, sizeof(buf)),
			    "403 InvalidSignatureException: The request signature "
			    "we calculated does not match");
	assert_true(awserr_is_auth(&e));

	snprintf(e.request_id, sizeof(e.request_id), "%s", "R1");
	e.message[0] = '\0';
	assert_string_equal(awserr_describe(&e, buf, sizeof(buf)),
			    "403 InvalidSignatureException (request id R1)");

	awserr_clear(&e);
	e.status = 502;
	assert_string_equal(awserr_describe(&e, buf, sizeof(buf)), "HTTP 502");
	snprintf(e.message, sizeof(e.message), "%s", "Bad Gateway");
	assert_string_equal(awserr_describe(&e, buf, sizeof(buf)),
			    "HTTP 502: Bad Gateway");

	/* a small buffer is cut, terminated */
	assert_string_equal(awserr_describe(&e, tiny, sizeof(tiny)), "HTTP 50");
	assert_ptr_equal(awserr_describe(&e, tiny, 0), tiny);

	awserr_clear(&e);
	snprintf(e.type, sizeof(e.type), "%s", "NoCredentials");
	snprintf(e.message, sizeof(e.message), "%s", "no credentials");
	assert_string_equal(awserr_describe(&e, buf, sizeof(buf)),
			    "NoCredentials: no credentials");
}

static void test_is_auth(void **state)
{
	static const char *const yes[] = {
		"InvalidSignatureException", "UnrecognizedClientException",
		"SignatureDoesNotMatch", "InvalidClientTokenId", "ExpiredToken",
		"ExpiredTokenException", "IncompleteSignature",
	};
	static const char *const no[] = {
		"AccessDeniedException", "AccessDenied", "ResourceNotFoundException",
		"ValidationException", "",
	};
	struct aws_err e;
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		awserr_clear(&e);
		e.status = 400;
		snprintf(e.type, sizeof(e.type), "%s", yes[i]);
		assert_true(awserr_is_auth(&e));
	}
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		awserr_clear(&e);
		e.status = 403;
		snprintf(e.type, sizeof(e.type), "%s", no[i]);
		assert_false(awserr_is_auth(&e));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_10),
		cmocka_unit_test(test_rest_json_header),
		cmocka_unit_test(test_xml),
		cmocka_unit_test(test_other_bodies),
		cmocka_unit_test(test_errno_table),
		cmocka_unit_test(test_transport),
		cmocka_unit_test(test_describe),
		cmocka_unit_test(test_is_auth),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
