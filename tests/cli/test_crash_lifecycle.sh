#!/bin/sh
# kill -9 at varying moments of rotate, rewrap (there and back), reencrypt,
# migrate and keys destroy --force.  After each crash: the store opens,
# every object reads back as its original, nothing is lost or added, readers
# touch nothing in .atrest/tmp, and the next writer leaves no stray entry
# there.  Then each command runs to completion and its end state is checked.
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"

DELAYS="0 0.001 0.003 0.006 0.01 0.015 0.02 0.03 0.05 0.07"

# run ARGS...: the CLI, with a hang turned into a failure (status 124).
run() {
	timeout 60 "$ATREST_BIN" "$@"
}

# crash CMD...: start CMD in the background and kill -9 it after $d s.
crash() {
	"$@" >/dev/null 2>&1 &
	pid=$!
	sleep "$d"
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# files DIR N MIN MAX: N random files DIR/g-<i%7>/o-<i>, MIN..MAX bytes.
files() {
	$PY -c 'import os,random,sys
d, n, lo, hi = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for i in range(n):
    p = os.path.join(d, "g-%d" % (i % 7))
    os.makedirs(p, exist_ok=True)
    with open(os.path.join(p, "o-%03d" % i), "wb") as f:
        f.write(os.urandom(random.randint(lo, hi)))' "$@" || fail "making files in $1"
}

# names DIR: DIR's files as sorted object names.
names() {
	(cd "$1" && find . -path ./.atrest -prune -o -type f -print) |
		sed 's|^\./||' | LC_ALL=C sort
}

tmp_clean() {
	[ ! -d "$1/.atrest/tmp" ] || [ -z "$(ls -A "$1/.atrest/tmp")" ]
}

tmp_list() {
	ls -A "$1/.atrest/tmp" 2>/dev/null || :
}

# after_crash STORE ORIG [GLOBAL-OPTION]: the checks after a crash.
after_crash() {
	st=$1 orig=$2
	shift 2
	tmp_list "$st" >"$T/tmp.before"
	run --store "$st" "$@" ls >"$T/ls" 2>"$T/err" ||
		fail "store $(basename "$st") does not open after a crash ($d s): $(cat "$T/err")"
	names "$orig" >"$T/names"
	cmp -s "$T/ls" "$T/names" || fail "objects lost or added: $(diff "$T/names" "$T/ls" | head -5)"
	read_all "$st" "$orig" "$@"
	tmp_list "$st" >"$T/tmp.after"
	cmp -s "$T/tmp.before" "$T/tmp.after" ||
		fail "readers changed .atrest/tmp: $(diff "$T/tmp.before" "$T/tmp.after")"
	# A writer removes what the killed process left.
	run --store "$st" "$@" config rotate-days 30 2>"$T/err" ||
		fail "config after a crash ($d s): $(cat "$T/err")"
	tmp_clean "$st" || fail "stray entries in .atrest/tmp: $(tmp_list "$st")"
}

# read_all STORE ORIG [GLOBAL-OPTION]: every object of $T/names decrypts to
# its original; two readers at a time into $T/rd, then one tree comparison.
read_all() {
	rm -rf "$T/rd"
	(cd "$2" && find . -type d) | (cd "$T" && sed 's|^|rd/|' | xargs mkdir -p)
	: >"$T/getfail"
	tr '\n' '\0' <"$T/names" | RD_STORE=$1 RD_OPT=${3:-} RD_DIR="$T" \
		timeout 120 xargs -0 -n 25 -P 2 sh -c 'for n; do
			"$ATREST_BIN" --store "$RD_STORE" ${RD_OPT:+"$RD_OPT"} \
				get "$n" >"$RD_DIR/rd/$n" 2>>"$RD_DIR/getfail" ||
				echo "get $n failed" >>"$RD_DIR/getfail"
		done' sh || fail "reading the objects back failed or hung"
	[ ! -s "$T/getfail" ] || fail "after a crash ($d s): $(head -c 600 "$T/getfail")"
	diff -r "$2" "$T/rd" >/dev/null ||
		fail "objects changed after a crash ($d s): $(diff -rq "$2" "$T/rd" | head -3)"
}

# keys_json STORE: 'keys --json --scan' into $T/out.  A killed process
# loses its last second of per-key usage counts (docs/AUDIT.md); the scan
# counts every header and resets them.
keys_json() {
	run --store "$1" keys --json --scan >"$T/out" 2>"$T/err" ||
		fail "keys: $(cat "$T/err")"
}

atrest keygen -o "$T/keyA"
atrest keygen -o "$T/keyB"
export ATREST_KEY_FILE="$T/keyA"

# rotate
S1="$T/s1"
files "$T/o1" 20 100 9000
for n in $(names "$T/o1"); do
	run --store "$S1" put "$n" "$T/o1/$n" || fail "put $n"
done
for d in $DELAYS; do
	crash "$ATREST_BIN" --store "$S1" rotate
	after_crash "$S1" "$T/o1"
	keys_json "$S1"
	json 'sum(k["status"] == "active" for k in j) == 1'
done
ok "rotate: $(echo "$DELAYS" | wc -w) crashes survived"
check_exit 0 run --store "$S1" rotate
n=$(sed -n 's/^new active data key \([0-9]*\)$/\1/p' "$T/out")
keys_json "$S1"
json 'j[-1]["id"] == '"${n:-0}"' and j[-1]["status"] == "active"'
json 'all(k["status"] == "retired" for k in j[:-1])'
json 'sum(k["objects"] for k in j) == 20'

# rewrap, old -> new and back: exactly one of the two keys opens the store
cur="$T/keyA" oth="$T/keyB"
for d in $DELAYS; do
	crash env ATREST_OLD_KEY_FILE="$cur" ATREST_KEY_FILE="$oth" \
		"$ATREST_BIN" --store "$S1" rewrap
	if ATREST_KEY_FILE="$oth" timeout 60 "$ATREST_BIN" --store "$S1" ls \
		>/dev/null 2>&1; then
		k=$cur
		cur=$oth
		oth=$k
	fi
	export ATREST_KEY_FILE="$cur"
	after_crash "$S1" "$T/o1"
	check_exit 5 env ATREST_KEY_FILE="$oth" "$ATREST_BIN" --store "$S1" ls
done
ok "rewrap: $(echo "$DELAYS" | wc -w) crashes survived"
check_exit 0 env ATREST_OLD_KEY_FILE="$cur" ATREST_KEY_FILE="$oth" \
	"$ATREST_BIN" --store "$S1" rewrap
check_out '^keyring rewrapped under master key key-file '
check_exit 5 run --store "$S1" ls
export ATREST_KEY_FILE="$oth"
after_crash "$S1" "$T/o1"

# keys destroy --force: each victim either still reads or is a key error
# naming its key; the other objects never suffer
for d in $DELAYS; do
	v="victim/$d"
	printf 'victim of a crash at %s s\n' "$d" >"$T/victim"
	run --store "$S1" put "$v" "$T/victim" || fail "put $v"
	run --store "$S1" inspect --json "$v" >"$T/out" || fail "inspect $v"
	k=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["data_key_id"])' "$T/out")
	run --store "$S1" rotate >/dev/null || fail "rotate"
	crash "$ATREST_BIN" --store "$S1" keys destroy --force "$k"
	mkdir -p "$T/o1/victim"
	if run --store "$S1" get "$v" >"$T/got" 2>"$T/err"; then
		same "$T/got" "$T/victim"
		keys_json "$S1"
		json '[x["status"] for x in j if x["id"] == '"$k"'] == ["retired"]'
		mv "$T/victim" "$T/o1/$v" # an object like the others from now on
	else
		rc=$?
		[ $rc -eq 5 ] || fail "get $v after a crashed destroy (exit $rc): $(cat "$T/err")"
		grep -q "data key $k" "$T/err" || fail "the error does not name data key $k"
		keys_json "$S1"
		json '[x["status"] for x in j if x["id"] == '"$k"'] == ["destroyed"]'
		run --store "$S1" rm "$v" || fail "rm $v"
	fi
	after_crash "$S1" "$T/o1"
done
ok "keys destroy --force: $(echo "$DELAYS" | wc -w) crashes survived"
printf 'the last victim\n' >"$T/victim"
check_exit 0 run --store "$S1" put victim/last "$T/victim"
k=$(key_id -1 --store "$S1")
check_exit 0 run --store "$S1" rotate
check_exit 0 run --store "$S1" keys destroy --force "$k"
check_exit 5 run --store "$S1" get victim/last
check_err "data key $k"
check_exit 0 run --store "$S1" rm victim/last
after_crash "$S1" "$T/o1"

# reencrypt of 300 objects off key 1, resumed after every crash
S2="$T/s2"
files "$T/o2" 300 1000 8000
cp -a "$T/o2" "$S2"
check_exit 0 run --store "$S2" migrate
K1=$(key_id 0 --store "$S2")
check_exit 0 run --store "$S2" rotate
K2=$(key_id -1 --store "$S2")
for d in $DELAYS; do
	crash "$ATREST_BIN" --store "$S2" reencrypt --data-key "$K1"
	after_crash "$S2" "$T/o2"
	keys_json "$S2"
	json 'sum(k["objects"] for k in j) == 300'
done
ok "reencrypt: $(echo "$DELAYS" | wc -w) crashes survived"
check_exit 0 run --store "$S2" reencrypt --data-key "$K1"
check_out '^re-encrypted [0-9]+ of [0-9]+ objects \([0-9]+ bytes\), 0 failed$'
keys_json "$S2"
json '[(k["id"], k["objects"]) for k in j] == [('"$K1"', 0), ('"$K2"', 300)]'
check_exit 0 run --store "$S2" keys destroy "$K1"
after_crash "$S2" "$T/o2"

# migrate of 300 plaintext files, resumed after every crash
S3="$T/s3"
files "$T/o3" 300 1000 8000
cp -a "$T/o3" "$S3"
check_exit 0 run --store "$S3" init
for d in $DELAYS; do
	crash "$ATREST_BIN" --store "$S3" migrate
	after_crash "$S3" "$T/o3" --allow-plaintext
done
ok "migrate: $(echo "$DELAYS" | wc -w) crashes survived"
check_exit 0 run --store "$S3" migrate
check_out '^migrated [0-9]+ plaintext objects \([0-9]+ bytes\), 0 failed$'
check_exit 0 run --store "$S3" verify
check_out '^verified 300 objects, 0 failed$'
after_crash "$S3" "$T/o3"
check_exit 0 run --store "$S3" migrate
check_out '^migrated 0 plaintext objects \(0 bytes\), 0 failed$'
echo "all crash checks passed"
