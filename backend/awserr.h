/* awserr: what a failed AWS call said, and the one place where it becomes
 * an errno.  The service's own error type and message are kept for the
 * log line. */
#ifndef DYNFS_AWSERR_H
#define DYNFS_AWSERR_H

#include <stddef.h>

struct aws_err {
	long status;          /* HTTP status; 0 when no response arrived */
	int transport;        /* -errno of http_perform, or 0 */
	int attempts;         /* how many tries were made */
	char type[96];        /* e.g. "ResourceNotFoundException" */
	char message[512];    /* the service's words, or curl's */
	char request_id[80];
};

void awserr_clear(struct aws_err *e);

/* Fill e from an error response: JSON {"__type": "ns#Code", "message"} or
 * {"Message"/"message"}, the x-amzn-ErrorType header (may be NULL), or an
 * XML <Code>/<Message> body; keeps only the code after '#' or before ':'. */
void awserr_from_response(struct aws_err *e, long status, const char *body,
			  size_t body_len, const char *errortype_header);
void awserr_from_transport(struct aws_err *e, int transport, const char *why);

/* The one mapping to -errno (never 0 for a failure). */
int awserr_to_errno(const struct aws_err *e);

/* "403 InvalidSignatureException: The request signature ..." */
const char *awserr_describe(const struct aws_err *e, char *buf, size_t size);

/* 1 for the credential-rejection codes (InvalidSignatureException,
 * UnrecognizedClientException, SignatureDoesNotMatch, InvalidClientTokenId,
 * ExpiredToken...), used to tell the user to check the keys. */
int awserr_is_auth(const struct aws_err *e);

#endif
