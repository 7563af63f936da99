#!/usr/bin/env bash
# run-with-moto-apis.sh TEST [ARGS...]: start moto (authentication off),
# create API Gateway REST, HTTP and WebSocket APIs and a Lambda function in
# it, export where they are, run TEST, and stop moto whatever happens.
#
# The objects are made with boto3 (moto's own dependency, so it is there
# whenever moto is) in one Python process: 30+ AWS CLI calls would take
# half a minute.  Exported for TEST:
#   DYNFS_TEST_MOTO_ENDPOINT   http://127.0.0.1:PORT
#   DYNFS_TEST_REST_APIS       how many REST APIs exist (filler included)
#   DYNFS_TEST_FUNCTION        the Lambda function's name
# and dummy keys in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
set -euo pipefail

if [[ -z "${DYNFS_SOURCE_ROOT:-}" ]]; then
	DYNFS_SOURCE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
fi
# shellcheck source=/dev/null
. "$DYNFS_SOURCE_ROOT/tests/lib/common.sh"

[[ $# -ge 1 ]] || tl_die "usage: $0 TEST [ARGS...]"
PY="${DYNFS_PYTHON:-python3}"

tl_mktemp_dir
work="$TL_TMP"
tl_aws_isolate "$work"
unset AWS_SESSION_TOKEN AWS_SECURITY_TOKEN
export AWS_ACCESS_KEY_ID=AKIADYNFSAPITEST0000
export AWS_SECRET_ACCESS_KEY=dummy-secret-not-checked
export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1

DYNFS_TEST_MOTO_ENDPOINT="$("$DYNFS_SOURCE_ROOT/contrib/moto.sh" start "$work/moto")" ||
	tl_die "contrib/moto.sh start failed"
export DYNFS_TEST_MOTO_ENDPOINT
tl_cleanup_push "'$DYNFS_SOURCE_ROOT/contrib/moto.sh' stop '$work/moto'"
tl_log "moto at $DYNFS_TEST_MOTO_ENDPOINT (authentication off)"

DYNFS_TEST_REST_APIS=31
DYNFS_TEST_FUNCTION=dynfs-fn
export DYNFS_TEST_REST_APIS DYNFS_TEST_FUNCTION

"$PY" - "$DYNFS_TEST_MOTO_ENDPOINT" "$DYNFS_TEST_REST_APIS" "$DYNFS_TEST_FUNCTION" <<'EOF' ||
import io, json, sys, zipfile
import boto3

ep, nrest, fn = sys.argv[1], int(sys.argv[2]), sys.argv[3]
kw = dict(endpoint_url=ep, region_name="us-east-1")
gw = boto3.client("apigateway", **kw)
gw2 = boto3.client("apigatewayv2", **kw)
lam = boto3.client("lambda", **kw)
iam = boto3.client("iam", **kw)

# The REST API with resources, methods of three kinds and two stages.
api = gw.create_rest_api(name="dynfs-orders")["id"]
root = [r for r in gw.get_resources(restApiId=api)["items"] if r["path"] == "/"][0]["id"]
orders = gw.create_resource(restApiId=api, parentId=root, pathPart="orders")["id"]
order = gw.create_resource(restApiId=api, parentId=orders, pathPart="{id}")["id"]
proxy = gw.create_resource(restApiId=api, parentId=root, pathPart="{proxy+}")["id"]
for rid, method, auth in ((orders, "GET", "AWS_IAM"), (orders, "POST", "NONE"),
                          (order, "GET", "AWS_IAM"), (order, "DELETE", "NONE"),
                          (proxy, "ANY", "NONE")):
    gw.put_method(restApiId=api, resourceId=rid, httpMethod=method,
                  authorizationType=auth)
    gw.put_integration(restApiId=api, resourceId=rid, httpMethod=method,
                       type="MOCK", requestTemplates={"application/json": '{"statusCode": 200}'})
dep = gw.create_deployment(restApiId=api, stageName="prod")["id"]
gw.create_stage(restApiId=api, stageName="dev", deploymentId=dep)

# Filler, so that the API listing is long.
for i in range(nrest - 1):
    gw.create_rest_api(name="dynfs-filler-%02d" % i)

http = gw2.create_api(Name="dynfs-http", ProtocolType="HTTP")["ApiId"]
gw2.create_route(ApiId=http, RouteKey="$default")
gw2.create_route(ApiId=http, RouteKey="ANY /items/{id}", AuthorizationType="AWS_IAM")
gw2.create_route(ApiId=http, RouteKey="GET /orders/{id}")
gw2.create_stage(ApiId=http, StageName="$default")
gw2.create_stage(ApiId=http, StageName="beta")

ws = gw2.create_api(Name="dynfs-ws", ProtocolType="WEBSOCKET",
                    RouteSelectionExpression="$request.body.action")["ApiId"]
gw2.create_route(ApiId=ws, RouteKey="$connect", AuthorizationType="AWS_IAM")
gw2.create_route(ApiId=ws, RouteKey="$default")
gw2.create_route(ApiId=ws, RouteKey="sendmessage")
gw2.create_stage(ApiId=ws, StageName="prod")

trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
         "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
role = iam.create_role(RoleName="dynfs-lambda-role",
                       AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:
    z.writestr("index.py", "def handler(event, context):\n    return event\n")
lam.create_function(FunctionName=fn, Runtime="python3.12", Role=role,
                    Handler="index.handler", Code={"ZipFile": buf.getvalue()})
lam.create_function(FunctionName=fn + "-2", Runtime="python3.12", Role=role,
                    Handler="index.handler", Code={"ZipFile": buf.getvalue()})
EOF
	tl_die "creating the APIs and the function in moto failed"

rc=0
"$@" || rc=$?
if [[ $rc -ne 0 ]]; then
	tl_log "test exited with $rc; last lines of the moto log:"
	tail -n 20 "$work/moto/log" >&2 || true
fi
exit "$rc"
