# Shared by the S3 store tests (sourced): the RGW of the ctest fixture
# (service.rgw_up wrote $RGW_ENV), a bucket of this test's own emptied and
# removed when it ends, atrest pointed at it (ATREST_STORE), and Debian's
# /usr/bin/aws and s3cmd configured as independent clients of the same
# bucket.
. "$ATREST_SRC/tests/cli/lib.sh"
: "${RGW_ENV:?RGW_ENV must name the env file of the RGW fixture}"
: "${S3_TOOL:?S3_TOOL must name the s3_tool program}"
[ -f "$RGW_ENV" ] || fail "no RGW: the fixture service.rgw_up did not start it"
. "$RGW_ENV"
SVC="$ATREST_SRC/tests/service/lib"
HELPER_DIRS=""

# The machine's AWS settings must not leak in; these tests choose their own.
unset AWS_CA_BUNDLE ATREST_CA_BUNDLE CURL_CA_BUNDLE AWS_SESSION_TOKEN AWS_PROFILE \
	AWS_DEFAULT_REGION AWS_ENDPOINT_URL_S3 AWS_SHARED_CREDENTIALS_FILE \
	AWS_CONTAINER_CREDENTIALS_FULL_URI AWS_CONTAINER_CREDENTIALS_RELATIVE_URI \
	AWS_IGNORE_CONFIGURED_ENDPOINT_URLS ATREST_S3_TIMEOUT http_proxy https_proxy \
	HTTP_PROXY HTTPS_PROXY ALL_PROXY
export HOME="$T/home"
mkdir -p "$HOME"
export AWS_EC2_METADATA_DISABLED=true
export AWS_ACCESS_KEY_ID="$S3_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$S3_SECRET_KEY"
export AWS_REGION=us-east-1 AWS_ENDPOINT_URL="$RGW_ENDPOINT"
export AWS_CONFIG_FILE="$T/aws-config"
printf '[default]\nregion = us-east-1\n' >"$AWS_CONFIG_FILE"
S3_ACCESS_KEY=$S3_ACCESS_KEY S3_SECRET_KEY=$S3_SECRET_KEY RGW_PORT=$RGW_PORT \
	"$SVC/s3cfg" >"$T/s3cfg"

# A bucket per test run (names are 3 to 63 characters).
BUCKET="atrest-$(basename "$0" .sh | tr '_' '-' | cut -c1-30)-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
export ATREST_STORE="s3://$BUCKET/store"

s3_cleanup() {
	for d in $HELPER_DIRS; do
		"$SVC/stop-pid" "$d/pid" 5
	done
	/usr/bin/aws --endpoint-url "$RGW_ENDPOINT" s3 rb --force "s3://$BUCKET" \
		>/dev/null 2>&1 || :
	rm -rf "$T"
}
trap 's3_cleanup' EXIT

awscli() {
	/usr/bin/aws --endpoint-url "$RGW_ENDPOINT" "$@"
}

s3c() {
	s3cmd -c "$T/s3cfg" "$@"
}

# helper MODE NAME [TARGET_PORT]: start tcp-helper in $T/NAME, its port in
# $HELPER_PORT.
helper() {
	mkdir -p "$T/$2"
	"$SVC/tcp-helper" "$1" "$T/$2" ${3:-} >/dev/null 2>&1 &
	HELPER_DIRS="$HELPER_DIRS $T/$2"
	i=0
	while [ ! -s "$T/$2/port" ]; do
		i=$((i + 1))
		[ "$i" -lt 300 ] || fail "tcp-helper $1 did not start"
		sleep 0.1
	done
	HELPER_PORT=$(cat "$T/$2/port")
}

# within MAX EXPECTED CMD...: CMD exits EXPECTED in at most MAX seconds.
within() {
	max=$1
	shift
	t0=$(date +%s)
	check_exit "$@"
	t1=$(date +%s)
	[ $((t1 - t0)) -le "$max" ] || fail "'$*' took $((t1 - t0)) s (more than $max s)"
	ok "... in $((t1 - t0)) s (at most $max s)"
}

# gen SEED SIZE FILE: SIZE pseudo-random bytes from SEED.
gen() {
	openssl enc -aes-128-ctr -nosalt -pass "pass:$1" -pbkdf2 -in /dev/zero 2>/dev/null |
		head -c "$2" >"$3"
}
