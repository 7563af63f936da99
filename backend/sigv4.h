/* sigv4: AWS Signature Version 4 for any service, on libcrypto.
 *
 * The signer is a pure function of its inputs plus a cache of derived
 * signing keys (one per day, region and service), so a signature can be
 * asserted exactly by passing a fixed time. */
#ifndef DYNFS_SIGV4_H
#define DYNFS_SIGV4_H

#include <stddef.h>
#include <time.h>

#include "backend/dbuf.h"

struct sigv4_header {
	const char *name;
	const char *value;
};

struct sigv4_request {
	const char *method;
	/* The path exactly as sent on the wire (may hold %XX), no query. */
	const char *path;
	/* The raw query string without '?', or NULL. */
	const char *query;
	/* Headers as sent; must include host.  Repeated names are allowed. */
	const struct sigv4_header *headers;
	size_t nheaders;
	const void *body;
	size_t body_len;
	/* Hex SHA-256 of the body, or "UNSIGNED-PAYLOAD"; NULL: computed. */
	const char *payload_hash;
};

enum {
	SIGV4_NO_NORMALIZE = 1u << 0, /* keep the path as is, encode once (S3) */
	SIGV4_SIGN_BODY = 1u << 1,    /* add and sign x-amz-content-sha256 */
	SIGV4_OMIT_TOKEN = 1u << 2,   /* add the token after signing */
};

struct sigv4_params {
	const char *access_key;
	const char *secret_key;
	const char *session_token; /* NULL or "" when none */
	const char *region;
	const char *service;
	time_t now;
	unsigned flags;
};

/* What signing produced.  For header signing, the caller adds
 * x-amz-date, authorization and (when non-empty) x-amz-security-token and
 * x-amz-content-sha256 to the request.  For presigning, query holds the
 * complete signed query string to append after '?'. */
struct sigv4_out {
	char amz_date[17];
	char content_sha256[65]; /* "" unless SIGV4_SIGN_BODY */
	struct dbuf canonical_request;
	struct dbuf string_to_sign;
	char signature[65];
	struct dbuf authorization;
	struct dbuf query;
};

struct sigv4_signer;

struct sigv4_signer *sigv4_signer_new(void);
void sigv4_signer_free(struct sigv4_signer *s);

/* Both return 0 or -errno (-EINVAL for a malformed request). out is
 * initialized by the call and must be released with sigv4_out_free(), on
 * success and on failure alike. */
int sigv4_sign(struct sigv4_signer *s, const struct sigv4_request *req,
	       const struct sigv4_params *p, struct sigv4_out *out);
int sigv4_presign(struct sigv4_signer *s, const struct sigv4_request *req,
		  const struct sigv4_params *p, unsigned expires_s,
		  struct sigv4_out *out);
void sigv4_out_free(struct sigv4_out *out);

/* Lower-case hex SHA-256 of data into hex[65]. */
void sigv4_sha256_hex(const void *data, size_t len, char hex[65]);

#endif
