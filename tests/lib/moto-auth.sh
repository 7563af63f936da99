# shellcheck shell=bash
# tests/lib/moto-auth.sh: a moto server with SigV4 verification turned on,
# an IAM user and role inside it, and one DynamoDB table.  Source it after
# tests/lib/common.sh, then call tl_moto_auth_start DIR.
#
# moto checks nothing for its first INITIAL_NO_AUTH_ACTION_COUNT calls and
# verifies every later one against its IAM: the access key must belong to
# an IAM user (AKIA..., no session token) or to a role session made by
# sts:AssumeRole (ASIA..., with that session's token; moto does not accept
# GetSessionToken credentials), the signature must match, and the user's or
# role's policies must allow the action.
#
# The unauthenticated calls, exactly (MOTO_AUTH_SETUP_CALLS of them):
#   1 iam create-user        dynfs-test
#   2 iam create-access-key  (the good AKIA key)
#   3 iam put-user-policy    dynamodb:*, sts:*
#   4 iam create-role        dynfs-test-role, trusting the user
#   5 iam put-role-policy    dynamodb:*
# Then, signed with the good key (so already verified by moto):
#   sts assume-role          -> the session credentials
#   dynamodb create-table    dynfs-moto-table
# and a check that an unknown key is now refused, which proves the count
# is exact (one too many and that call would pass).
#
# Exported afterwards:
#   DYNFS_TEST_MOTO_ENDPOINT   http://127.0.0.1:PORT
#   DYNFS_TEST_MOTO_TABLE      the table's name
#   DYNFS_TEST_AK, DYNFS_TEST_SK                         the user's key
#   DYNFS_TEST_STS_AK, DYNFS_TEST_STS_SK, DYNFS_TEST_STS_TOKEN  role session
# and AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE point at empty files.

MOTO_AUTH_SETUP_CALLS=5
MOTO_AUTH_USER=dynfs-test
MOTO_AUTH_ROLE=dynfs-test-role
MOTO_AUTH_TABLE=dynfs-moto-table

# aws with the given keys against moto; stdout is the call's output.
_tl_moto_aws() {
	local ak="$1" sk="$2" token="$3"
	shift 3
	local envs=(-u AWS_SESSION_TOKEN -u AWS_SECURITY_TOKEN)
	[[ -n "$token" ]] && envs+=("AWS_SESSION_TOKEN=$token")
	env "${envs[@]}" AWS_ACCESS_KEY_ID="$ak" AWS_SECRET_ACCESS_KEY="$sk" \
		AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 \
		aws --endpoint-url "$DYNFS_TEST_MOTO_ENDPOINT" "$@"
}

# The unauthenticated calls are signed with these (moto does not check).
_tl_moto_setup_aws() {
	_tl_moto_aws AKIADYNFSSETUP000000 setup-secret-not-checked "" "$@"
}

tl_moto_auth_start() {
	local dir="$1" out arn account
	tl_require_aws
	mkdir -p "$dir"
	tl_aws_isolate "$dir"
	unset AWS_SESSION_TOKEN

	DYNFS_TEST_MOTO_ENDPOINT="$("$DYNFS_SOURCE_ROOT/contrib/moto.sh" start \
		"$dir/moto" "$MOTO_AUTH_SETUP_CALLS")" ||
		tl_die "contrib/moto.sh start failed"
	export DYNFS_TEST_MOTO_ENDPOINT
	tl_cleanup_push "'$DYNFS_SOURCE_ROOT/contrib/moto.sh' stop '$dir/moto'"

	# 1
	arn="$(_tl_moto_setup_aws iam create-user --user-name "$MOTO_AUTH_USER" \
		--query User.Arn --output text)" || tl_die "iam create-user failed"
	account="$(cut -d: -f5 <<<"$arn")"
	# 2
	out="$(_tl_moto_setup_aws iam create-access-key --user-name "$MOTO_AUTH_USER" \
		--query 'AccessKey.[AccessKeyId,SecretAccessKey]' --output text)" ||
		tl_die "iam create-access-key failed"
	read -r DYNFS_TEST_AK DYNFS_TEST_SK <<<"$out"
	[[ "$DYNFS_TEST_AK" == AKIA* && -n "$DYNFS_TEST_SK" ]] ||
		tl_die "unexpected access key from moto"
	export DYNFS_TEST_AK DYNFS_TEST_SK
	# 3
	_tl_moto_setup_aws iam put-user-policy --user-name "$MOTO_AUTH_USER" \
		--policy-name dynfs-test-all --policy-document \
		'{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["dynamodb:*","sts:*"],"Resource":"*"}]}' \
		>/dev/null || tl_die "iam put-user-policy failed"
	# 4
	_tl_moto_setup_aws iam create-role --role-name "$MOTO_AUTH_ROLE" \
		--assume-role-policy-document \
		"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"$arn\"},\"Action\":\"sts:AssumeRole\"}]}" \
		>/dev/null || tl_die "iam create-role failed"
	# 5
	_tl_moto_setup_aws iam put-role-policy --role-name "$MOTO_AUTH_ROLE" \
		--policy-name dynfs-test-ddb --policy-document \
		'{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["dynamodb:*"],"Resource":"*"}]}' \
		>/dev/null || tl_die "iam put-role-policy failed"

	# From here on moto verifies every call.
	if _tl_moto_setup_aws dynamodb list-tables >/dev/null 2>&1; then
		tl_die "moto accepted an unknown key after $MOTO_AUTH_SETUP_CALLS calls: authentication is not on"
	fi

	out="$(_tl_moto_aws "$DYNFS_TEST_AK" "$DYNFS_TEST_SK" "" sts assume-role \
		--role-arn "arn:aws:iam::$account:role/$MOTO_AUTH_ROLE" \
		--role-session-name dynfs-test-session \
		--query 'Credentials.[AccessKeyId,SecretAccessKey,SessionToken]' \
		--output text)" || tl_die "sts assume-role (signed) failed"
	read -r DYNFS_TEST_STS_AK DYNFS_TEST_STS_SK DYNFS_TEST_STS_TOKEN <<<"$out"
	[[ -n "$DYNFS_TEST_STS_AK" && -n "$DYNFS_TEST_STS_SK" && -n "$DYNFS_TEST_STS_TOKEN" ]] ||
		tl_die "sts assume-role returned no credentials"
	export DYNFS_TEST_STS_AK DYNFS_TEST_STS_SK DYNFS_TEST_STS_TOKEN

	_tl_moto_aws "$DYNFS_TEST_AK" "$DYNFS_TEST_SK" "" dynamodb create-table \
		--table-name "$MOTO_AUTH_TABLE" \
		--attribute-definitions AttributeName=pk,AttributeType=S \
		--key-schema AttributeName=pk,KeyType=HASH \
		--billing-mode PAY_PER_REQUEST >/dev/null ||
		tl_die "dynamodb create-table (signed) failed"
	DYNFS_TEST_MOTO_TABLE="$MOTO_AUTH_TABLE"
	export DYNFS_TEST_MOTO_TABLE
}
