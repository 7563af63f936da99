/* lambda: the Lambda client (REST-JSON, service "lambda"): the function
 * list and synchronous invocation.  It knows nothing of files. */
#ifndef DYNFS_LAMBDA_H
#define DYNFS_LAMBDA_H

#include <stddef.h>

#include "backend/awserr.h"
#include "backend/dbuf.h"
#include "backend/svc.h"

struct lambda;

/* svc borrowed (signing name "lambda"). */
int lambda_new(struct lambda **out, struct svc *svc);
void lambda_free(struct lambda *l);

typedef int (*lambda_name_cb)(void *ctx, const char *name);

/* Every function (ListFunctions, all pages); a non-zero value from cb
 * stops the walk and is returned. */
int lambda_list_functions(struct lambda *l, lambda_name_cb cb, void *ctx,
			  struct aws_err *err);

struct lambda_result {
	long status;               /* HTTP status of Invoke */
	char function_error[64];   /* X-Amz-Function-Error, "" when none */
	struct dbuf payload;       /* the response payload, error or not */
	struct dbuf log_tail;      /* X-Amz-Log-Result, base64-decoded */
};

void lambda_result_init(struct lambda_result *r);
void lambda_result_free(struct lambda_result *r);

/* Invoke (RequestResponse, LogType Tail).  0 when the call itself
 * succeeded, even with a function error (res->function_error says so);
 * -errno with err filled when Invoke failed (404: -ENOENT). */
int lambda_invoke(struct lambda *l, const char *function,
		  const void *payload, size_t len, struct lambda_result *res,
		  struct aws_err *err);

#endif
