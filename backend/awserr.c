/* awserr: AWS error bodies, and the one mapping from an AWS failure to an
 * errno (see awserr.h and the table in docs/http.md). */
#define _GNU_SOURCE
#include "backend/awserr.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

enum {
	AE_AUTH = 1u << 0,      /* the keys themselves were rejected */
	AE_VALIDATION = 1u << 1 /* look at the message for size limits */
};

struct code_map {
	const char *code;
	int err; /* negative errno */
	unsigned flags;
};

/* The one table.  A code found here wins over the HTTP status. */
static const struct code_map code_table[] = {
	/* not there */
	{ "ResourceNotFoundException", -ENOENT, 0 },
	{ "TableNotFoundException", -ENOENT, 0 },
	{ "NotFoundException", -ENOENT, 0 }, /* API Gateway */

	/* the keys were rejected: tell the user to check them */
	{ "UnrecognizedClientException", -EACCES, AE_AUTH },
	{ "InvalidSignatureException", -EACCES, AE_AUTH },
	{ "SignatureDoesNotMatch", -EACCES, AE_AUTH },
	{ "InvalidClientTokenId", -EACCES, AE_AUTH },
	{ "InvalidAccessKeyId", -EACCES, AE_AUTH },
	{ "ExpiredToken", -EACCES, AE_AUTH },
	{ "ExpiredTokenException", -EACCES, AE_AUTH },
	{ "IncompleteSignature", -EACCES, AE_AUTH },
	{ "IncompleteSignatureException", -EACCES, AE_AUTH },
	{ "AuthFailure", -EACCES, AE_AUTH },
	{ "RequestExpired", -EACCES, AE_AUTH }, /* clock skew */
	/* permission, or (API Gateway) a route that does not exist: the
	 * keys may be fine, so not AE_AUTH */
	{ "AccessDenied", -EACCES, 0 },
	{ "AccessDeniedException", -EACCES, 0 },
	{ "UnauthorizedException", -EACCES, 0 },
	{ "MissingAuthenticationToken", -EACCES, 0 },
	{ "MissingAuthenticationTokenException", -EACCES, 0 },

	/* our own conditions and transactions */
	{ "ConditionalCheckFailedException", -ESTALE, 0 },
	{ "TransactionCanceledException", -ECANCELED, 0 },
	{ "TransactionConflictException", -EAGAIN, 0 },
	{ "ReplicatedWriteConflictException", -EAGAIN, 0 },

	/* bad requests: item or key size limits are told apart by message */
	{ "ValidationException", -EINVAL, AE_VALIDATION },
	{ "SerializationException", -EINVAL, 0 },
	{ "BadRequestException", -EINVAL, 0 },
	{ "InvalidParameterValueException", -EINVAL, 0 },
	{ "InvalidRequestContentException", -EINVAL, 0 },
	{ "UnsupportedMediaTypeException", -EINVAL, 0 },
	{ "IdempotentParameterMismatchException", -EINVAL, 0 },
	{ "RequestEntityTooLargeException", -EFBIG, 0 },

	/* in use, exists, full */
	{ "ResourceInUseException", -EBUSY, 0 },
	{ "ResourceConflictException", -EBUSY, 0 }, /* Lambda: update in progress */
	{ "ConflictException", -EEXIST, 0 },         /* API Gateway */
	{ "TableAlreadyExistsException", -EEXIST, 0 },
	{ "DuplicateItemException", -EEXIST, 0 },
	{ "ItemCollectionSizeLimitExceededException", -ENOSPC, 0 },
	{ "CodeStorageExceededException", -ENOSPC, 0 },

	/* try again later.  LimitExceededException is DynamoDB's "too many
	 * control-plane operations at once" and API Gateway's rate limit:
	 * both pass with time, hence -EAGAIN (it is not retried by svc). */
	{ "LimitExceededException", -EAGAIN, 0 },
	{ "ThrottlingException", -EAGAIN, 0 },
	{ "ProvisionedThroughputExceededException", -EAGAIN, 0 },
	{ "RequestLimitExceeded", -EAGAIN, 0 },
	{ "TooManyRequestsException", -EAGAIN, 0 },
	{ "Throttling", -EAGAIN, 0 },
	{ "ThrottledException", -EAGAIN, 0 },
	{ "RequestThrottled", -EAGAIN, 0 },
	{ "RequestThrottledException", -EAGAIN, 0 },
	{ "SlowDown", -EAGAIN, 0 },
	{ "TransactionInProgressException", -EAGAIN, 0 },
	{ "BandwidthLimitExceeded", -EAGAIN, 0 },
	{ "ResourceNotReadyException", -EAGAIN, 0 },

	/* the service failed */
	{ "CRC32CheckFailed", -EIO, 0 },
	{ "InternalServerError", -EIO, 0 },
	{ "InternalFailure", -EIO, 0 },
	{ "InternalError", -EIO, 0 },
	{ "ServiceUnavailable", -EIO, 0 },
	{ "ServiceUnavailableException", -EIO, 0 },
	{ "ServiceException", -EIO, 0 },
	{ "RequestTimeout", -EIO, 0 },
	{ "RequestTimeoutException", -EIO, 0 },
};

/* ValidationException messages that name a size limit.  An item too big
 * is a file too big; a key too big is a name too long. */
static const struct {
	const char *needle;
	int err;
} validation_table[] = {
	{ "Item size has exceeded", -EFBIG },
	{ "Item size to update has exceeded", -EFBIG },
	{ "Size of hashkey has exceeded", -ENAMETOOLONG },
	{ "Size of rangekey has exceeded", -ENAMETOOLONG },
	{ "range keys has exceeded", -ENAMETOOLONG },
};

/* Used when no code matched. */
static int status_to_errno(long status)
{
	switch (status) {
	case 400:
		return -EINVAL;
	case 401:
	case 403:
		return -EACCES;
	case 404:
		return -ENOENT;
	case 413:
		return -EFBIG;
	case 429:
		return -EAGAIN;
	default:
		return -EIO; /* 5xx, other 4xx, a 3xx we do not follow */
	}
}

static const struct code_map *find_code(const char *code)
{
	size_t i;

	if (!code || !*code)
		return NULL;
	for (i = 0; i < sizeof(code_table) / sizeof(code_table[0]); i++)
		if (strcmp(code_table[i].code, code) == 0)
			return &code_table[i];
	return NULL;
}

/* Copy at most len bytes of src into dst as one clean log-line field:
 * control characters become spaces, the ends are trimmed, and a cut never
 * splits a UTF-8 sequence. */
static void copy_field(char *dst, size_t size, const char *src, size_t len)
{
	size_t i, n = 0, k, want;
	unsigned char lead;

	if (!size)
		return;
	while (len && (*src == ' ' || *src == '\t' || *src == '\r' || *src == '\n')) {
		src++;
		len--;
	}
	for (i = 0; i < len && src[i] != '\0' && n + 1 < size; i++) {
		unsigned char ch = (unsigned char)src[i];

		dst[n++] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
	}
	if (i < len && src[i] != '\0') {
		/* Cut short: drop a multi-byte sequence left incomplete. */
		k = n;
		while (k > 0 && ((unsigned char)dst[k - 1] & 0xc0) == 0x80)
			k--;
		if (k > 0) {
			lead = (unsigned char)dst[k - 1];
			want = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
			if (n - (k - 1) < want)
				n = k - 1;
		}
	}
	while (n > 0 && dst[n - 1] == ' ')
		n--;
	dst[n] = '\0';
}

/* "ns#Code", "Code:http://...", "ns#Code:http://..." -> "Code".  src may be
 * a header value that runs on into the next header line, so it ends at the
 * first CR or LF. */
static void copy_code(char *dst, size_t size, const char *src, size_t len)
{
	const char *p, *hash;

	p = memchr(src, '\r', len);
	if (p)
		len = (size_t)(p - src);
	p = memchr(src, '\n', len);
	if (p)
		len = (size_t)(p - src);
	p = memchr(src, ':', len);
	if (p)
		len = (size_t)(p - src);
	hash = memrchr(src, '#', len);
	if (hash) {
		len -= (size_t)(hash + 1 - src);
		src = hash + 1;
	}
	copy_field(dst, size, src, len);
}

static const char *json_str(json_t *obj, const char *const *keys, size_t n)
{
	size_t i;
	json_t *v;

	for (i = 0; i < n; i++) {
		v = json_object_get(obj, keys[i]);
		if (json_is_string(v))
			return json_string_value(v);
	}
	return NULL;
}

static void parse_json(struct aws_err *e, const char *body, size_t len)
{
	static const char *const type_keys[] = { "__type", "code", "Code" };
	static const char *const msg_keys[] = { "message", "Message",
						"errorMessage" };
	json_t *root;
	const char *s;

	root = json_loadb(body, len, 0, NULL);
	if (!json_is_object(root))
		goto out;
	s = json_str(root, type_keys, sizeof(type_keys) / sizeof(type_keys[0]));
	if (s && !e->type[0])
		copy_code(e->type, sizeof(e->type), s, strlen(s));
	s = json_str(root, msg_keys, sizeof(msg_keys) / sizeof(msg_keys[0]));
	if (s)
		copy_field(e->message, sizeof(e->message), s, strlen(s));
out:
	json_decref(root);
}

/* The text of the first <tag>...</tag> in body, or NULL. */
static const char *xml_tag(const char *body, size_t len, const char *tag,
			   size_t *out_len)
{
	char open[32], close[34];
	const char *start, *end;
	int no, nc;

	no = snprintf(open, sizeof(open), "<%s>", tag);
	nc = snprintf(close, sizeof(close), "</%s>", tag);
	if (no < 0 || nc < 0 || (size_t)no >= sizeof(open) ||
	    (size_t)nc >= sizeof(close))
		return NULL;
	start = memmem(body, len, open, (size_t)no);
	if (!start)
		return NULL;
	start += no;
	end = memmem(start, len - (size_t)(start - body), close, (size_t)nc);
	if (!end)
		return NULL;
	*out_len = (size_t)(end - start);
	return start;
}

/* Decode the five predefined XML entities in place. */
static void xml_unescape(char *s)
{
	static const struct {
		const char *ent;
		char ch;
	} ents[] = {
		{ "&lt;", '<' }, { "&gt;", '>' }, { "&amp;", '&' },
		{ "&quot;", '"' }, { "&apos;", '\'' },
	};
	char *r = s, *w = s;
	size_t i, n;

	while (*r) {
		if (*r == '&') {
			for (i = 0; i < sizeof(ents) / sizeof(ents[0]); i++) {
				n = strlen(ents[i].ent);
				if (strncmp(r, ents[i].ent, n) == 0)
					break;
			}
			if (i < sizeof(ents) / sizeof(ents[0])) {
				*w++ = ents[i].ch;
				r += n;
				continue;
			}
		}
		*w++ = *r++;
	}
	*w = '\0';
}

static void parse_xml(struct aws_err *e, const char *body, size_t len)
{
	const char *v;
	size_t vlen;

	v = xml_tag(body, len, "Code", &vlen);
	if (v && !e->type[0]) {
		copy_code(e->type, sizeof(e->type), v, vlen);
		xml_unescape(e->type);
	}
	v = xml_tag(body, len, "Message", &vlen);
	if (v) {
		copy_field(e->message, sizeof(e->message), v, vlen);
		xml_unescape(e->message);
	}
	v = xml_tag(body, len, "RequestId", &vlen);
	if (v && !e->request_id[0])
		copy_field(e->request_id, sizeof(e->request_id), v, vlen);
}

void awserr_clear(struct aws_err *e)
{
	memset(e, 0, sizeof(*e));
}

void awserr_from_response(struct aws_err *e, long status, const char *body,
			  size_t body_len, const char *errortype_header)
{
	size_t i = 0;

	/* attempts and request_id belong to the caller and are kept. */
	e->status = status;
	e->transport = 0;
	e->type[0] = '\0';
	e->message[0] = '\0';

	/* REST-JSON puts the code in a header; it wins over the body. */
	if (errortype_header && *errortype_header)
		copy_code(e->type, sizeof(e->type), errortype_header,
			  strnlen(errortype_header, 4096));
	if (!body)
		body_len = 0;
	while (i < body_len && strchr(" \t\r\n", body[i]) && body[i])
		i++;
	if (i == body_len)
		return;
	if (body[i] == '{') {
		parse_json(e, body + i, body_len - i);
	} else if (body[i] == '<') {
		parse_xml(e, body + i, body_len - i);
	} else {
		/* Neither JSON nor XML (a proxy, a load balancer): its first
		 * words are better than nothing in the log. */
		copy_field(e->message, sizeof(e->message), body + i, body_len - i);
	}
}

void awserr_from_transport(struct aws_err *e, int transport, const char *why)
{
	e->status = 0;
	e->transport = transport ? transport : -EIO;
	e->type[0] = '\0';
	e->message[0] = '\0';
	if (why)
		copy_field(e->message, sizeof(e->message), why, strlen(why));
}

int awserr_to_errno(const struct aws_err *e)
{
	const struct code_map *m;
	size_t i;

	if (e->transport) {
		/* The filesystem sees -EIO for a network failure; the exact
		 * cause stays in e->transport for the log.  Our own failures
		 * keep their meaning. */
		if (e->transport == -ENOMEM || e->transport == -EINVAL)
			return e->transport;
		return -EIO;
	}
	m = find_code(e->type);
	if (m) {
		if (m->flags & AE_VALIDATION) {
			for (i = 0; i < sizeof(validation_table) /
						sizeof(validation_table[0]); i++)
				if (strcasestr(e->message, validation_table[i].needle))
					return validation_table[i].err;
		}
		return m->err;
	}
	return status_to_errno(e->status);
}

static const char *transport_words(int transport)
{
	switch (transport) {
	case -ETIMEDOUT:
		return "timed out";
	case -ECONNREFUSED:
		return "connection refused";
	case -ECONNRESET:
		return "connection reset";
	case -EHOSTUNREACH:
		return "host unreachable";
	case -EPROTO:
		return "TLS or protocol error";
	case -E2BIG:
		return "response too large";
	case -ENOMEM:
		return "out of memory";
	default:
		return strerror(transport < 0 ? -transport : transport);
	}
}

const char *awserr_describe(const struct aws_err *e, char *buf, size_t size)
{
	size_t n;
	int w;

	if (!size)
		return buf;
	if (e->transport)
		w = snprintf(buf, size, "%s", transport_words(e->transport));
	else if (e->status && e->type[0])
		w = snprintf(buf, size, "%ld %s", e->status, e->type);
	else if (e->status)
		w = snprintf(buf, size, "HTTP %ld", e->status);
	else if (e->type[0])
		w = snprintf(buf, size, "%s", e->type);
	else
		w = snprintf(buf, size, "%s", "unknown error");
	n = w < 0 ? 0 : (size_t)w;
	if (n < size && e->message[0]) {
		w = snprintf(buf + n, size - n, ": %s", e->message);
		n += w < 0 ? 0 : (size_t)w;
	}
	if (n < size && e->request_id[0])
		snprintf(buf + n, size - n, " (request id %s)", e->request_id);
	return buf;
}

int awserr_is_auth(const struct aws_err *e)
{
	const struct code_map *m;

	if (e->transport)
		return 0;
	m = find_code(e->type);
	return m && (m->flags & AE_AUTH);
}
