# Helpers for the service tests (sourced after tests/cli/lib.sh's rules):
# contract servers started in private directories and stopped by pid when
# the test ends, their control port, call counts, and checks that no secret
# a server issued or a test used shows up in any output.
. "$ATREST_SRC/tests/cli/lib.sh"

SVC_LIB="$ATREST_SRC/tests/service/lib"
SVC_DIRS=""
SVC_LOG="$T/all-output.log"
: >"$SVC_LOG"
trap 'svc_stop_all; rm -rf "$T"' EXIT

# The tests choose their CAs and credentials on purpose.
unset AWS_CA_BUNDLE VAULT_CACERT ATREST_CA_BUNDLE CURL_CA_BUNDLE \
	AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE \
	AWS_REGION AWS_DEFAULT_REGION AWS_ENDPOINT_URL AWS_ENDPOINT_URL_KMS \
	AWS_CONTAINER_CREDENTIALS_FULL_URI AWS_CONTAINER_CREDENTIALS_RELATIVE_URI \
	AWS_CONTAINER_AUTHORIZATION_TOKEN AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE \
	AWS_EC2_METADATA_SERVICE_ENDPOINT AWS_SHARED_CREDENTIALS_FILE AWS_CONFIG_FILE \
	GOOGLE_APPLICATION_CREDENTIALS GCE_METADATA_HOST ATREST_GCP_KMS_ENDPOINT \
	AZURE_TENANT_ID AZURE_CLIENT_ID AZURE_CLIENT_SECRET AZURE_AUTHORITY_HOST \
	AZURE_FEDERATED_TOKEN_FILE IDENTITY_ENDPOINT IDENTITY_HEADER \
	AZURE_POD_IDENTITY_AUTHORITY_HOST VAULT_TOKEN VAULT_ROLE_ID VAULT_SECRET_ID \
	VAULT_NAMESPACE VAULT_ADDR ATREST_KMS_TIMEOUT http_proxy https_proxy \
	HTTP_PROXY HTTPS_PROXY ALL_PROXY
export HOME="$T/home"
mkdir -p "$HOME"
export AWS_EC2_METADATA_DISABLED=true

# svc_up NAME DIR CONFIG [CERTDIR]: start tests/contract/NAME.py.
svc_up() {
	"$SVC_LIB/contract-up" "$@" >"$2.ports" || fail "cannot start contract server $1"
	SVC_DIRS="$SVC_DIRS $2"
	ok "contract server $1 up ($(tr '\n' ' ' <"$2.ports"))"
}

svc_down() {
	"$SVC_LIB/contract-down" "$1"
}

svc_stop_all() {
	for d in $SVC_DIRS; do
		"$SVC_LIB/contract-down" "$d"
	done
}

# port DIR [NAME]: a port of the server in DIR (port, ctl_port, meta_port...).
port() {
	$PY -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
		"$1/ports.json" "${2:-port}"
}

# ctl DIR CMD [JSON]: a control command; its answer in $T/ctl.out.
ctl() {
	"$SVC_LIB/contract-ctl" "$@" >"$T/ctl.out" || fail "control command $2 failed: $(cat "$T/ctl.out")"
}

# calls DIR OP: how many times OP was called.
calls() {
	"$SVC_LIB/contract-ctl" "$1" counts |
		$PY -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1], 0))' "$2"
}

# expect_calls DIR OP N [WHY]
expect_calls() {
	got=$(calls "$1" "$2")
	[ "$got" = "$3" ] || fail "${4:-calls of $2}: $got, expected $3"
	ok "${4:-$2 called $3 times}"
}

# run EXPECTED CMD...: check_exit, keeping all output for the secret scan.
run() {
	check_exit "$@"
	{
		echo "## $*"
		cat "$T/out" "$T/err"
	} >>"$SVC_LOG"
}

# no_secrets FILE...: none of the lines of FILEs (secrets the servers issued
# or the test used) appears in any output of the test.
no_secrets() {
	for f in "$@"; do
		while IFS= read -r s; do
			[ -n "$s" ] || continue
			if grep -rqF -- "$s" "$SVC_LOG" "$T"/*.out "$T"/*.err 2>/dev/null; then
				fail "a secret appears in the output: ${s%"${s#????}"}..."
			fi
		done <"$f"
	done
	ok "no secret in any output ($(cat "$@" | grep -c .) checked)"
}

# elapsed CMD...: run CMD, leaving the seconds it took in $ELAPSED.
elapsed() {
	t0=$(date +%s.%N)
	set +e
	"$@" >"$T/out" 2>"$T/err"
	ELAPSED_RC=$?
	set -e
	ELAPSED=$($PY -c 'import sys; print("%.1f" % (float(sys.argv[2]) - float(sys.argv[1])))' \
		"$t0" "$(date +%s.%N)")
	cat "$T/out" "$T/err" >>"$SVC_LOG"
}

# ---- checks every provider passes (the key URI and credentials set up)

# per_process DIR UNWRAP WRAP: a process that writes and reads 60 objects
# asks the service for 3 unwraps (check secret, audit key, data key) and
# no wrap.
per_process() {
	ctl "$1" reset
	{
		echo open
		for i in $(seq 1 30); do echo "put many/$i 2000"; done
		for i in $(seq 1 30); do echo "get many/$i"; done
		echo quit
	} | "$ATREST_DRIVER" >"$T/driver.out"
	[ "$(grep -c '^ok' "$T/driver.out")" = 61 ] ||
		fail "driver: $(grep -v '^ok' "$T/driver.out" | head -3)"
	expect_calls "$1" "$2" 3 \
		"60 objects in one process: 3 unwraps (check secret, audit key, data key)"
	expect_calls "$1" "$3" 0 "no wrap for objects"
}

# moved_key PATTERN: a key wrapped for one store does not unwrap for
# another (the provider says PATTERN), and a store whose check blob comes
# from another store is refused as the wrong master key.
moved_key() {
	printf 'wrap store-a\nunwrap store-b\nunwrap store-a\nquit\n' |
		"$ATREST_DRIVER" >"$T/driver.out"
	sed -n 1p "$T/driver.out" | grep -q '^ok$' || fail "wrap: $(cat "$T/driver.out")"
	sed -n 2p "$T/driver.out" | grep -Eq "^err -5 $1" ||
		fail "moved key: $(sed -n 2p "$T/driver.out")"
	sed -n 3p "$T/driver.out" | grep -q '^ok$' || fail "unwrap: $(cat "$T/driver.out")"
	cat "$T/driver.out" >>"$SVC_LOG"
	ok "a key wrapped for one store does not unwrap for another"
	rm -rf "$T/store2"
	ATREST_STORE="$T/store2" run 0 atrest init
	$PY - "$ATREST_STORE/.atrest/keyring" "$T/store2/.atrest/keyring" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))
b = json.load(open(sys.argv[2]))
b["check"] = a["check"]
json.dump(b, open(sys.argv[2], "w"), indent=1)
PY
	# The key that opens it is the one the keyring names: the check blob
	# was swapped, so the keyring is damaged (4), not a wrong key (5).
	ATREST_STORE="$T/store2" run 4 atrest ls
	check_err 'keyring damaged'
}

# outage DIR: a running process keeps working on cached keys while the
# service is down (its key cache lasting 1 s, so the provider is asked and
# answers unavailable); a cold process exits 5 within 15 s whether the
# service refuses connections or hangs.
outage() {
	rm -f "$T/in.fifo"
	mkfifo "$T/in.fifo"
	"$ATREST_DRIVER" <"$T/in.fifo" >"$T/outage.out" &
	drv=$!
	exec 4>"$T/in.fifo"
	printf 'open 1\nput o/1 5000\nget o/1\n' >&4
	sleep 1
	ctl "$1" mode '{"mode": "down"}'
	sleep 2
	printf 'get o/1\nput o/2 5000\nget o/2\n' >&4
	elapsed atrest get obj/1
	[ "$ELAPSED_RC" = 5 ] || fail "cold process during an outage exited $ELAPSED_RC: $(cat "$T/err")"
	$PY -c "import sys; sys.exit(0 if $ELAPSED < 15 else 1)" || fail "cold process took $ELAPSED s"
	grep -q 'cannot reach 127.0.0.1' "$T/err" || fail "outage message: $(cat "$T/err")"
	ok "cold process during an outage: exit 5 in $ELAPSED s"
	ctl "$1" mode '{"mode": "hang"}'
	elapsed atrest get obj/1
	[ "$ELAPSED_RC" = 5 ] || fail "cold process against a hung service exited $ELAPSED_RC"
	$PY -c "import sys; sys.exit(0 if $ELAPSED < 15 else 1)" || fail "hung service: $ELAPSED s"
	ok "cold process against a hung service: exit 5 in $ELAPSED s"
	ctl "$1" mode '{"mode": "up"}'
	echo quit >&4
	exec 4>&-
	wait "$drv" || fail "driver exited $?"
	[ "$(tr '\n' ' ' <"$T/outage.out")" = "ok ok ok ok ok ok " ] ||
		fail "running process during the outage: $(cat "$T/outage.out")"
	cat "$T/outage.out" >>"$SVC_LOG"
	ok "a running process keeps working through the outage on cached keys"
}

# retries DIR UNWRAP PATTERN: throttling and 5xx are retried; throttling
# that outlasts the retries is exit 5 with the service's code (PATTERN).
retries() {
	ctl "$1" reset
	ctl "$1" throttle '{"count": 2}'
	run 0 atrest get obj/1 -o "$T/got"
	expect_calls "$1" "$2" 5 \
		"a get's 3 unwraps (check secret, audit key, data key), two retried"
	ctl "$1" fail '{"count": 2, "status": 503}'
	run 0 atrest get obj/1 -o "$T/got"
	ctl "$1" throttle '{"count": 1000}'
	run 5 atrest get obj/1
	check_err "$3"
	ctl "$1" throttle '{"count": 0}'
}

# driver_start [TTL]: a driver process (key cache TTL seconds, default
# 300) fed by step; driver_end stops it, its answers then in $T/steps.out.
driver_start() {
	rm -f "$T/steps.fifo"
	mkfifo "$T/steps.fifo"
	"$ATREST_DRIVER" <"$T/steps.fifo" >"$T/steps.out" &
	DRIVER_PID=$!
	exec 5>"$T/steps.fifo"
	echo "open ${1:-}" >&5
}

step() {
	echo "$1" >&5
}

driver_end() {
	echo quit >&5
	exec 5>&-
	wait "$DRIVER_PID"
	cat "$T/steps.out" >>"$SVC_LOG"
}

# answer N: the driver's Nth answer (1 is the open).
answer() {
	sed -n "${1}p" "$T/steps.out"
}

# round_trip DIR WRAP KEY_ID: a new store wraps its check secret, first
# data key and audit signing key (3 WRAP calls), an object goes in and
# comes back, and the keyring records KEY_ID as the master key.
round_trip() {
	head -c 100000 /dev/urandom >"$T/data"
	ctl "$1" reset
	run 0 atrest init
	expect_calls "$1" "$2" 3 \
		"init wraps the check secret, the first data key and the audit key"
	run 0 atrest put obj/1 "$T/data"
	run 0 atrest get obj/1 -o "$T/got"
	same "$T/data" "$T/got"
	grep -qF "\"key_id\": \"$3\"" "$ATREST_STORE/.atrest/keyring" ||
		fail "the keyring does not name $3"
	ok "the keyring names $3"
}

# latency DIR: the server-side time of each operation (median and maximum
# over the test, in ms) from the contract server's request log.
latency() {
	$PY - "$1/requests.log" <<'PY'
import json, statistics, sys
ops = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["status"] < 300:
        ops.setdefault(r["op"], []).append(r["ms"])
for op, ms in sorted(ops.items()):
    print("# latency %s: median %.1f ms, max %.1f ms, %d calls" %
          (op, statistics.median(ms), max(ms), len(ms)))
PY
}
