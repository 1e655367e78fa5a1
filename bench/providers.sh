#!/bin/sh
# bench/providers.sh [RUNS] [OUT]: the cost of one wrap and one unwrap of a
# data key by each master-key provider, measured in one run against the
# real services started here on loopback (a key file for reference,
# SoftHSM2, PyKMIP, swtpm), with 'atrest key-check --time RUNS --json'.
# Writes one JSON object per provider to OUT (default: stdout).
set -eu
runs=${1:-200}
out=${2:-/dev/stdout}
src=$(cd "$(dirname "$0")/.." && pwd)
bin=${ATREST_BIN:-$src/build/atrest}
svc=$src/tests/service/lib
T=$(mktemp -d "${TMPDIR:-/tmp}/atrest-bench-providers.XXXXXX")
cleanup() {
	"$svc/kmip-down" "$T" 2>/dev/null || true
	"$svc/swtpm-down" "$T" 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
unset ATREST_KEY ATREST_KEY_FILE ATREST_PASSPHRASE ATREST_KEY_URI
export TSS2_LOG=all+NONE

eval "$("$svc/softhsm-up" "$T")"
eval "$("$svc/kmip-up" "$T")"
uid=$("$svc/kmip-admin" "$T" create)
eval "$("$svc/swtpm-up" "$T")"
"$bin" keygen -o "$T/master.key"

# measure NAME VAR VALUE: a store under that key, then the timed check.
measure() {
	env "$2=$3" "$bin" --store "$T/$1" init >/dev/null
	printf '{"provider": "%s", "check": ' "$1"
	env "$2=$3" "$bin" --store "$T/$1" key-check --time "$runs" --json |
		tr -d '\n'
	printf '}\n'
}

{
	measure key-file ATREST_KEY_FILE "$T/master.key"
	measure pkcs11-softhsm2 ATREST_KEY_URI \
		"pkcs11:token=atrest;object=kek1?module-path=$P11_MODULE&pin-value=1234"
	measure kmip-pykmip ATREST_KEY_URI \
		"kmip://127.0.0.1:$KMIP_PORT/$uid?ca=$KMIP_CA&cert=$KMIP_CERT&key=$KMIP_KEY"
	measure kmip-pykmip-get ATREST_KEY_URI \
		"kmip://127.0.0.1:$KMIP_PORT/$uid?ca=$KMIP_CA&cert=$KMIP_CERT&key=$KMIP_KEY&mode=get"
	measure tpm2-swtpm ATREST_KEY_URI "tpm2:$TPM_TCTI"
} >"$out"
