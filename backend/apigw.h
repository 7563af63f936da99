/* apigw: API Gateway's management APIs, read-only.  REST APIs (v1:
 * GetRestApis, GetResources?embed=methods, GetStages) and HTTP and
 * WebSocket APIs (v2: GetApis, GetRoutes, GetStages), every listing
 * followed to its last page.  It knows nothing of files.
 *
 * Strings in the structs handed to callbacks are borrowed for the call.
 * Every call returns 0 or -errno, with err (may be NULL) filled on a
 * failed request; a non-zero value from a callback stops the walk and is
 * returned. */
#ifndef DYNFS_APIGW_H
#define DYNFS_APIGW_H

#include "backend/awserr.h"
#include "backend/svc.h"

struct apigw;

/* v1 and v2 are svcs for the v1 and v2 management endpoints (signing
 * name "apigateway" for both); borrowed, they must outlive the apigw. */
int apigw_new(struct apigw **out, struct svc *v1, struct svc *v2);
void apigw_free(struct apigw *a);

enum apigw_kind {
	APIGW_REST,      /* v1 */
	APIGW_HTTP,      /* v2, ProtocolType HTTP */
	APIGW_WEBSOCKET, /* v2, ProtocolType WEBSOCKET */
};

struct apigw_api {
	const char *id;
	const char *name;
	enum apigw_kind kind;
};

/* A REST method or an HTTP/WebSocket route. */
struct apigw_route {
	/* REST and HTTP: "GET", "POST", ..., or "ANY"; NULL for the
	 * HTTP route "$default" and for WebSocket routes. */
	const char *method;
	/* REST and HTTP: the resource path, "/orders/{id}", "/{proxy+}";
	 * "$default" for that HTTP route.  WebSocket: the route key
	 * ("$connect", "$default", "sendmessage"). */
	const char *path;
	/* AuthorizationType: "NONE", "AWS_IAM", "CUSTOM", "JWT",
	 * "COGNITO_USER_POOLS". */
	const char *auth;
};

typedef int (*apigw_api_cb)(void *ctx, const struct apigw_api *api);
typedef int (*apigw_route_cb)(void *ctx, const struct apigw_route *route);
typedef int (*apigw_stage_cb)(void *ctx, const char *stage);

/* Every REST API, then every HTTP and WebSocket API. */
int apigw_list_apis(struct apigw *a, apigw_api_cb cb, void *ctx,
		    struct aws_err *err);
int apigw_list_stages(struct apigw *a, enum apigw_kind kind,
		      const char *api_id, apigw_stage_cb cb, void *ctx,
		      struct aws_err *err);
int apigw_list_routes(struct apigw *a, enum apigw_kind kind,
		      const char *api_id, apigw_route_cb cb, void *ctx,
		      struct aws_err *err);

#endif
