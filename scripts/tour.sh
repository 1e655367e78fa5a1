#!/bin/sh
# 'make tour': a short tour of atrest on a temporary local store -- key,
# put, what is on disk, inspect, get, tamper detection -- then how to use it.
# Usage: scripts/tour.sh BUILD_DIR
set -eu
BUILD=${1:-build}
BIN=$(cd "$BUILD" && pwd)/atrest
[ -x "$BIN" ] || { echo "tour.sh: no atrest binary in $BUILD" >&2; exit 1; }

DEMO=$(mktemp -d "${TMPDIR:-/tmp}/atrest-demo.XXXXXX")
trap 'rm -rf "$DEMO"' EXIT
trap 'exit 130' INT TERM
unset ATREST_KEY ATREST_PASSPHRASE ATREST_KEY_URI ATREST_OLD_KEY \
	ATREST_OLD_KEY_FILE ATREST_OLD_PASSPHRASE ATREST_OLD_KEY_URI \
	ATREST_ALLOW_PLAINTEXT
export ATREST_STORE="$DEMO/store"
export ATREST_KEY_FILE="$DEMO/master.key"

step() {
	printf '\n== %s\n' "$*"
}

show() {
	printf '$ %s\n' "$*"
	"$@"
}

step "1. A new 256-bit master key, written to a mode-0600 file (never printed)"
show "$BIN" keygen -o "$ATREST_KEY_FILE"
stat -c '%A %n' "$ATREST_KEY_FILE"
echo "ATREST_KEY_FILE=$ATREST_KEY_FILE"

step "2. A checkpoint of job 42, stored encrypted as job-42/chk-1"
cat >"$DEMO/chk-1.json" <<'EOF'
{"job": 42, "checkpoint": 1, "offsets": {"orders-0": 18231, "orders-1": 17710},
 "window": {"start": "2024-05-01T12:00:00Z", "sums": [1200.5, 873.25, 44.0]},
 "state": "the secret running totals of job 42"}
EOF
cat "$DEMO/chk-1.json"
show "$BIN" put --meta job=42 job-42/chk-1 "$DEMO/chk-1.json"

step "3. What is on disk: ciphertext (the file is $ATREST_STORE/job-42/chk-1)"
xxd "$ATREST_STORE/job-42/chk-1" | head -n 8
if grep -q "secret running totals" "$ATREST_STORE/job-42/chk-1"; then
	echo "tour.sh: plaintext found on disk!" >&2
	exit 1
fi
echo "(no trace of the plaintext)"

step "4. Header facts, read without any key"
show "$BIN" inspect job-42/chk-1

step "5. Back again, authenticated, and identical to the original"
show "$BIN" get job-42/chk-1 -o "$DEMO/restored.json"
cmp "$DEMO/chk-1.json" "$DEMO/restored.json"
echo "restored.json equals chk-1.json"
show "$BIN" ls -l

step "6. One flipped byte in the stored file is detected (exit status 4)"
f="$ATREST_STORE/job-42/chk-1"
off=$(($(wc -c <"$f") / 2))
was=$(od -An -tx1 -j "$off" -N1 "$f" | tr -d ' ')
new=Z
[ "$was" = 5a ] && new=Y
printf '%s' "$new" | dd of="$f" bs=1 seek="$off" count=1 conv=notrunc 2>/dev/null
echo "(byte $off of $f: 0x$was -> '$new')"
set +e
"$BIN" get job-42/chk-1 -o "$DEMO/tampered.json" 2>&1
rc=$?
set -e
echo "exit status $rc"
if [ "$rc" -ne 4 ]; then
	echo "tour.sh: expected exit status 4 for a tampered object" >&2
	exit 1
fi
if [ -e "$DEMO/tampered.json" ]; then
	echo "tour.sh: a tampered object left output behind" >&2
	exit 1
fi
echo "and nothing was written to tampered.json"

step "How to use atrest"
cat <<'EOF'
Master key, from the environment only (never on the command line):
  ATREST_KEY=<64 hex>  or  ATREST_KEY_FILE=<file, mode 0600>  or
  ATREST_PASSPHRASE=<passphrase> (Argon2id)
Store: --store DIR or ATREST_STORE (default ./atrest-store)

  atrest keygen -o master.key           a new key file
  atrest init --cipher chacha20-poly1305  create a store
  atrest put job-42/chk-2 state.bin     encrypt a file (stdin without FILE)
  atrest get job-42/chk-2 -o state.bin  decrypt, only if it all verifies
  atrest ls -l job-42/                  list with sizes, ciphers, key ids
  atrest verify                         authenticate every object
  atrest inspect job-42/chk-2           header facts, no key needed
  atrest --help, atrest COMMAND --help  everything else
Exit status: 0 ok, 1 error, 2 usage, 3 not found, 4 integrity, 5 key.
EOF
