#!/bin/sh
# Lifecycle commands while other processes write and read the same store:
# background loops put and get checkpoints with the CLI while the foreground
# rotates, re-encrypts, changes settings and rewraps the keyring to a new
# master key.  No loop round may fail, and at the end every object reads.
# The loops write new names, as engines write new checkpoints (a name
# overwritten while it is re-encrypted is tested in test_lifecycle.c).
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"

PIDS=
trap 'for p in $PIDS; do kill "$p" 2>/dev/null || :; done; rm -rf "$T"' EXIT

ROUNDS=100

# bg_loop ID KEYFILE [OLDKEYFILE]: ROUNDS rounds of an engine's work: put
# a new checkpoint, read it back, and read an older one (which the
# foreground may be re-encrypting).  Every failure is a line in
# $T/failures; what each checkpoint must hold is kept in $T/want/.
bg_loop() {
	id=$1
	export ATREST_KEY_FILE="$2"
	[ -z "${3:-}" ] || export ATREST_OLD_KEY_FILE="$3"
	i=0
	while [ "$i" -lt "$ROUNDS" ]; do
		{ echo "loop $id round $i"; head -c $((i * 37 % 5000)) /dev/urandom; } \
			>"$T/want/bg$id.chk-$i"
		if ! "$ATREST_BIN" put "bg$id/chk-$i" "$T/want/bg$id.chk-$i" \
			2>>"$T/bg$id.err"; then
			echo "loop $id: put bg$id/chk-$i failed" >>"$T/failures"
		fi
		bg_read "$id" "$i"
		bg_read "$id" $((i / 2))
		i=$((i + 1))
	done
	: >"$T/bg$id.done"
}

# bg_read ID ROUND: loop ID's checkpoint of ROUND reads back as written.
bg_read() {
	if ! "$ATREST_BIN" get "bg$1/chk-$2" >"$T/bg$1.got" 2>>"$T/bg$1.err"; then
		echo "loop $1: get bg$1/chk-$2 failed" >>"$T/failures"
	elif ! cmp -s "$T/bg$1.got" "$T/want/bg$1.chk-$2"; then
		echo "loop $1: bg$1/chk-$2 has the wrong content (that of" \
			"'$(head -n 1 "$T/bg$1.got")')" >>"$T/failures"
	fi
}

# start ID KEYFILE [OLDKEYFILE]: a loop in the background, its pid in $last.
start() {
	bg_loop "$@" >/dev/null 2>&1 &
	last=$!
	PIDS="$PIDS $last"
}

running() {
	for p in "$@"; do
		kill -0 "$p" 2>/dev/null && return 0
	done
	return 1
}

# finish IDS...: after waiting for the loops, each ran all its rounds.
finish() {
	for id in "$@"; do
		test -e "$T/bg$id.done" || fail "loop $id stopped early"
	done
	if [ -s "$T/failures" ]; then
		cat "$T/failures" >&2
		tail -n 5 "$T"/bg*.err >&2 || :
		fail "background loops failed: $(wc -l <"$T/failures") rounds"
	fi
	ok "loops $* ran $ROUNDS rounds each without a failure"
}

# cycle CIPHER SEGMENT: rotate, change settings, re-encrypt off the old key.
cycle() {
	check_exit 0 atrest rotate
	old=$(key_id -2)
	check_exit 0 atrest config cipher "$1"
	check_exit 0 atrest config segment-size "$2"
	check_exit 0 atrest reencrypt --data-key "$old"
	check_out ' 0 failed$'
}

# fg_reads: the foreground's objects read back as written.
fg_reads() {
	for i in 1 2 3 4 5 6; do
		check_exit 0 atrest get "fg/$i"
		same "$T/out" "$T/fg$i"
	done
}

atrest keygen -o "$T/keyA"
atrest keygen -o "$T/keyB"
export ATREST_KEY_FILE="$T/keyA"
mkdir "$T/want"
: >"$T/failures"
for i in 1 2 3 4 5 6; do
	head -c $((i * 11000)) /dev/urandom >"$T/fg$i"
	check_exit 0 atrest put "fg/$i" "$T/fg$i"
done

# Phase 1, master key A: two loops, while the foreground rotates at least
# three times (more while the loops run), re-encrypts and changes settings.
start 1 "$T/keyA"
p1=$last
start 2 "$T/keyA"
p2=$last
n=0
while [ "$n" -lt 3 ] || { [ "$n" -lt 8 ] && running "$p1" "$p2"; }; do
	case $((n % 3)) in
	0) cycle chacha20-poly1305 4K ;;
	1) cycle aes-256-cbc-hmac-sha256 16K ;;
	*) cycle aes-256-gcm 64K ;;
	esac
	check_exit 0 atrest verify fg/
	n=$((n + 1))
done
wait "$p1" "$p2" || :
finish 1 2
fg_reads

# Phase 2, A -> B: one loop holds both keys (its opens may rewrap too) and
# runs across the rewrap; another starts once B is the key.
start 3 "$T/keyB" "$T/keyA"
p3=$last
check_exit 0 env ATREST_OLD_KEY_FILE="$T/keyA" ATREST_KEY_FILE="$T/keyB" \
	"$ATREST_BIN" rewrap
export ATREST_KEY_FILE="$T/keyB"
start 4 "$T/keyB"
p4=$last
cycle chacha20-poly1305 8K
check_exit 5 env ATREST_KEY_FILE="$T/keyA" "$ATREST_BIN" ls
n=0
while [ "$n" -lt 1 ] || { [ "$n" -lt 5 ] && running "$p3" "$p4"; }; do
	cycle aes-256-gcm 32K
	n=$((n + 1))
done
wait "$p3" "$p4" || :
finish 3 4

# The end: everything reads under B, only one key is active, the usage
# counts add up, and no temporary entry is left.
fg_reads
for f in "$T"/want/bg*; do
	b=$(basename "$f")
	"$ATREST_BIN" get "${b%%.*}/${b#*.}" >"$T/out" || fail "get ${b%%.*}/${b#*.}"
	cmp -s "$T/out" "$f" || fail "${b%%.*}/${b#*.} differs"
done
ok "all $((4 * ROUNDS)) checkpoints of the loops read back"
check_exit 0 atrest verify
check_out "^verified $((6 + 4 * ROUNDS)) objects, 0 failed$"
check_exit 0 atrest keys --json
json 'sum(k["status"] == "active" for k in j) == 1'
json 'sum(k["objects"] for k in j) == '$((6 + 4 * ROUNDS))
check "no temporary entry left" \
	test -z "$(ls -A "$T/store/.atrest/tmp" 2>/dev/null)"
echo "all concurrency checks passed"
