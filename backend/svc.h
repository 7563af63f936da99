/* svc: one AWS service endpoint.  A call is signed with the current
 * credentials, sent, retried by the standard policy, and its failure is
 * parsed and mapped to -errno.  dynamodb, lambda, apigateway, execute-api
 * and sts clients are built on it. */
#ifndef DYNFS_SVC_H
#define DYNFS_SVC_H

#include <stddef.h>
#include <stdint.h>

#include "backend/awserr.h"
#include "backend/creds.h"
#include "backend/http.h"
#include "backend/retry.h"

struct svc;

enum {
	SVC_CHECK_CRC32 = 1u << 0, /* verify x-amz-crc32 when sent (DynamoDB) */
	SVC_UNSIGNED = 1u << 1,    /* send without a signature */
};

struct svc_opts {
	const char *endpoint;  /* "https://host[:port][/base]" */
	const char *region;
	const char *service;   /* signing name: dynamodb, lambda, ... */
	unsigned flags;
	const struct retry_policy *retry; /* NULL: retry_policy_default() */
};

/* Borrowed: http, creds must outlive the svc.  Several svcs may share
 * one http client and one chain. */
int svc_new(struct svc **out, struct http_client *http,
	    struct creds_chain *creds, const struct svc_opts *opts);
void svc_free(struct svc *s);

/* Tests inject time and sleep so a backoff schedule is exact. */
typedef time_t (*svc_clock_fn)(void *ctx);
typedef void (*svc_sleep_fn)(void *ctx, unsigned ms);
void svc_set_clock(struct svc *s, svc_clock_fn fn, void *ctx);
void svc_set_sleep(struct svc *s, svc_sleep_fn fn, void *ctx);

/* Called once per call after its last attempt, for the -d log.  what is
 * the operation (x-amz-target's action, or METHOD path). */
typedef void (*svc_log_fn)(void *ctx, const char *service, const char *what,
			   long status, int attempts, double ms,
			   const struct aws_err *err);
void svc_set_log(struct svc *s, svc_log_fn fn, void *ctx);

struct svc_call {
	const char *method;
	const char *path;  /* appended to the endpoint's base path; "/" */
	const char *query; /* without '?', already encoded, or NULL */
	const struct http_header *headers; /* extra: content-type, x-amz-target */
	size_t nheaders;
	const void *body;
	size_t body_len;
	int idempotent; /* 0: never retried once the request may have run */
	const char *resource; /* for the log: the table, function...; NULL */
};

/* 0 for a 2xx (resp holds it), else -errno with *err filled (err may be
 * NULL).  resp must be initialized by the caller and is freed by it. */
int svc_call(struct svc *s, const struct svc_call *call,
	     struct http_response *resp, struct aws_err *err);

const char *svc_endpoint(const struct svc *s);
const char *svc_region(const struct svc *s);

/* Counters for .dynfs/stats and benchmarks. */
struct svc_stats {
	uint64_t requests, retries, throttles, errors, bytes_out, bytes_in;
};
void svc_get_stats(struct svc *s, struct svc_stats *out);
/* Requests made, by operation (what the -d log calls them). */
typedef int (*svc_op_cb)(void *ctx, const char *op, uint64_t count);
int svc_stats_ops(struct svc *s, svc_op_cb cb, void *ctx);

#endif
