# Helpers of the S3 API tests (sourced after tests/cli/lib.sh and
# tests/service/lib/server.sh): S3 access keys, the server with --s3-port,
# and Debian's aws, s3cmd and rclone configured for it (nothing of the
# machine's AWS settings leaks in).
unset AWS_CA_BUNDLE CURL_CA_BUNDLE SSL_CERT_FILE AWS_SESSION_TOKEN AWS_PROFILE \
	AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 AWS_SHARED_CREDENTIALS_FILE \
	AWS_CONTAINER_CREDENTIALS_FULL_URI AWS_CONTAINER_CREDENTIALS_RELATIVE_URI \
	http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY RCLONE_CA_CERT
export HOME="$T/home"
mkdir -p "$HOME"
export AWS_EC2_METADATA_DISABLED=true AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
export AWS_CONFIG_FILE="$T/aws-config" RCLONE_CONFIG="$T/rclone.conf"
: >"$RCLONE_CONFIG"
# Multipart above 64 MiB (S3_MULTIPART_THRESHOLD changes it).
printf '[default]\nregion = us-east-1\nretry_mode = standard\nmax_attempts = 1\ns3 =\n  multipart_threshold = %s\n  multipart_chunksize = %s\n' \
	"${S3_MULTIPART_THRESHOLD:-64MB}" "${S3_MULTIPART_CHUNKSIZE:-8MB}" >"$AWS_CONFIG_FILE"
S3RAW="/usr/bin/python3 $ATREST_SRC/tests/service/lib/s3raw.py"

# new_s3key NAME ROLE [TENANT]: $T/NAME.id and $T/NAME.secret (mode 0600).
new_s3key() {
	(umask 077 && atrest ${3:+--tenant "$3"} s3key create --role "$2" --name "$1" \
		--json >"$T/$1.json") || fail "s3key create $1"
	/usr/bin/python3 -c 'import json,sys
j = json.load(open(sys.argv[1]))
open(sys.argv[2], "w").write(j["access_key_id"])
open(sys.argv[3], "w").write(j["secret_access_key"])' \
		"$T/$1.json" "$T/$1.id" "$T/$1.secret"
}

# s3_server_start [SERVER ARGS...]: the server with the S3 API; S3URL.
s3_server_start() {
	server_start --s3-port 0 "$@"
	S3URL=$(sed -n 's/.*S3 API at \([^ ]*\).*/\1/p' "$SERVER_LOG" | tail -n 1)
	[ -n "$S3URL" ] || fail "no S3 API line: $(cat "$SERVER_LOG")"
	ok "S3 API at $S3URL"
}

# as NAME: the following aws/s3cmd/rclone calls use key NAME.
as() {
	export AWS_ACCESS_KEY_ID="$(cat "$T/$1.id")"
	export AWS_SECRET_ACCESS_KEY="$(cat "$T/$1.secret")"
	S3KEY=$1
	s3cmd_cfg >"$T/s3cfg"
	export RCLONE_CONFIG_AT_TYPE=s3 RCLONE_CONFIG_AT_PROVIDER=Other \
		RCLONE_CONFIG_AT_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" \
		RCLONE_CONFIG_AT_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" \
		RCLONE_CONFIG_AT_ENDPOINT="$S3URL" RCLONE_CONFIG_AT_REGION=us-east-1
}

s3cmd_cfg() {
	hp=${S3URL#*://}
	https=False
	case $S3URL in https://*) https=True ;; esac
	cat <<CFG
[default]
access_key = $AWS_ACCESS_KEY_ID
secret_key = $AWS_SECRET_ACCESS_KEY
host_base = $hp
host_bucket = $hp
use_https = $https
signature_v2 = False
check_ssl_certificate = True
${S3_CA:+ca_certs_file = $S3_CA}
CFG
}

aws_() {
	timeout 300 /usr/bin/aws --endpoint-url "$S3URL" ${S3_CA:+--ca-bundle "$S3_CA"} "$@"
}
s3cmd_() {
	timeout 300 /usr/bin/s3cmd -c "$T/s3cfg" "$@"
}
rclone_() {
	timeout 300 /usr/bin/rclone --retries 1 --low-level-retries 1 \
		${S3_CA:+--ca-cert "$S3_CA"} "$@"
}

# s3_expect_error CODE WHAT CMD...: CMD fails and its output names CODE.
s3_expect_error() {
	code=$1
	what=$2
	shift 2
	set +e
	"$@" >"$T/out" 2>"$T/err"
	rc=$?
	set -e
	[ $rc -ne 0 ] || fail "$what: succeeded"
	grep -q -- "$code" "$T/out" "$T/err" ||
		fail "$what: no $code in: $(cat "$T/out" "$T/err" | head -c 800)"
	ok "$what: $code"
}

# run WHAT CMD...: CMD succeeds; its output is kept in $T/out and $T/err.
run() {
	what=$1
	shift
	set +e
	"$@" >"$T/out" 2>"$T/err"
	rc=$?
	set -e
	[ $rc -eq 0 ] || fail "$what: exit $rc: $(cat "$T/out" "$T/err" | head -c 1500)"
	ok "$what"
}

# curl_s3 METHOD PATH [CURL ARGS...]: a SigV4-signed curl request with the
# key of 'as' (credentials in a config file, not argv); status in
# $T/status, body in $T/body.
curl_s3() {
	m=$1
	p=$2
	shift 2
	(umask 077 && printf 'user = "%s:%s"\n' "$AWS_ACCESS_KEY_ID" \
		"$AWS_SECRET_ACCESS_KEY" >"$T/curl.cfg")
	curl -sS --max-time 120 -K "$T/curl.cfg" ${S3_CA:+--cacert "$S3_CA"} \
		--aws-sigv4 "aws:amz:us-east-1:s3" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
		-o "$T/body" -D "$T/headers" -w '%{http_code}' -X "$m" "$@" "$S3URL$p" \
		>"$T/status" 2>"$T/curl.err" || true
}
