#!/bin/sh
# The data-key lifecycle end to end: keys with usage, rotate, a cipher
# change, expose (warnings from keys and verify), destroy refused while in
# use, reencrypt, destroy, an object under a destroyed key (exit 5), and the
# usage errors and --help of the lifecycle commands.
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"

# key_of NAME: the data key id in NAME's header.
key_of() {
	"$ATREST_BIN" inspect --json "$1" >"$T/insp" || fail "inspect $1"
	$PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["data_key_id"])' \
		"$T/insp"
}

# reads NAME FILE: NAME decrypts to the bytes of FILE.
reads() {
	check_exit 0 atrest get "$1"
	same "$T/out" "$2"
}

new_key
for i in 1 2 3; do
	head -c $((i * 5000)) /dev/urandom >"$T/d$i"
	check_exit 0 atrest put "job/chk-$i" "$T/d$i"
done

# keys: one active key carrying the three objects (30000 plaintext bytes)
K1=$(key_id 0)
check_exit 0 atrest keys --json
json 'len(j) == 1 and j[0]["id"] == '"$K1"' and j[0]["status"] == "active"'
json 'j[0]["objects"] == 3 and j[0]["bytes"] == 30000'
json 'set(j[0]) == {"id", "status", "created", "objects", "bytes"}'
json '__import__("re").fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", j[0]["created"])'
check_exit 0 atrest keys
check_out '^ID +STATUS +CREATED +OBJECTS +BYTES$'
check_out "^$K1 +active +[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z +3 +30000$"
check "no warning without an exposed key" test ! -s "$T/err"

# rotate: key 2 takes new writes, key 1 keeps serving old objects
check_exit 0 atrest rotate
K2=$(key_id -1)
check "rotate prints the new key" test "$(cat "$T/out")" = "new active data key $K2"
check "a new id" test "$K2" != "$K1"
check_exit 0 atrest keys --json
json '[(k["id"], k["status"]) for k in j] == [('"$K1"', "retired"), ('"$K2"', "active")]'
json 'j[0]["objects"] == 3 and j[1]["objects"] == 0'
head -c 7000 /dev/urandom >"$T/d4"
check_exit 0 atrest put job/chk-4 "$T/d4"
check "a put after rotate uses key 2" test "$(key_of job/chk-4)" = "$K2"
check "older objects keep key 1" test "$(key_of job/chk-1)" = "$K1"
reads job/chk-1 "$T/d1"
reads job/chk-4 "$T/d4"

# a cipher change needs no wipe: new objects use it, old ones keep theirs
check_exit 0 atrest config cipher chacha20-poly1305
head -c 9000 /dev/urandom >"$T/d5"
check_exit 0 atrest put job/chk-5 "$T/d5"
check_exit 0 atrest inspect --json job/chk-5
json 'j["cipher"] == "chacha20-poly1305" and j["data_key_id"] == '"$K2"
check_exit 0 atrest inspect --json job/chk-1
json 'j["cipher"] == "aes-256-gcm" and j["data_key_id"] == '"$K1"
reads job/chk-5 "$T/d5"
reads job/chk-2 "$T/d2"

# expose 1: keys and verify warn, the key stays readable
check_exit 0 atrest keys expose "$K1"
check_out "^data key $K1 marked exposed$"
check_exit 0 atrest keys
check_out "^$K1 +exposed "
check_err "^warning: 3 objects are still sealed under exposed data key $K1; run 'atrest reencrypt --data-key $K1'$"
check_exit 0 atrest keys --json
json '[k["status"] for k in j] == ["exposed", "active"]'
check "keys --json prints no warning" test ! -s "$T/err"
check_exit 0 atrest verify
check_out '^verified 5 objects, 0 failed$'
check_err "^warning: 3 objects are still sealed under exposed data key $K1; run 'atrest reencrypt --data-key $K1'$"
reads job/chk-3 "$T/d3"

# destroy is refused while objects use the key, and says what to do
check_exit 1 atrest keys destroy "$K1"
check_err "^atrest: keys destroy $K1: .*(reencrypt|--force)"
reads job/chk-1 "$T/d1"

# reencrypt moves them to key 2 with identical content
check_exit 0 atrest reencrypt --data-key "$K1"
check_out '^re-encrypted 3 of [0-9]+ objects \(30000 bytes\), 0 failed$'
for i in 1 2 3; do
	check "job/chk-$i is now under key 2" test "$(key_of "job/chk-$i")" = "$K2"
	reads "job/chk-$i" "$T/d$i"
done
check_exit 0 atrest keys
check "no warning once nothing uses the exposed key" test ! -s "$T/err"
check_exit 0 atrest reencrypt --data-key "$K1"
check_out '^re-encrypted 0 of [0-9]+ objects \(0 bytes\), 0 failed$'

# now it can be destroyed; every object still reads
check_exit 0 atrest keys destroy "$K1"
check_out "^data key $K1 destroyed$"
check_exit 0 atrest keys --json
json '[(k["id"], k["status"], k["objects"]) for k in j] == [('"$K1"', "destroyed", 0), ('"$K2"', "active", 5)]'
for i in 1 2 3 4 5; do
	reads "job/chk-$i" "$T/d$i"
done
check_exit 0 atrest verify
check_out '^verified 5 objects, 0 failed$'

# crypto-shredding: an object under a destroyed key is a key error naming it
check_exit 0 atrest rotate
K3=$(key_id -1)
check_out "^new active data key $K3$"
printf 'to be shredded\n' >"$T/doomed"
check_exit 0 atrest put shred/doomed "$T/doomed"
check "the doomed object is under key 3" test "$(key_of shred/doomed)" = "$K3"
check_exit 0 atrest rotate
K4=$(key_id -1)
check_out "^new active data key $K4$"
check_exit 1 atrest keys destroy "$K3"
check_exit 0 atrest keys destroy --force "$K3"
check_out "^data key $K3 destroyed$"
check_exit 5 atrest get shred/doomed
check_err "^atrest: get shred/doomed: .*data key $K3"
check "nothing of the object is printed" test ! -s "$T/out"
check_exit 5 atrest verify shred/
check_out '^verified 1 objects, 1 failed$'
reads job/chk-4 "$T/d4"
check_exit 0 atrest keys --json
json '[(k["id"], k["status"]) for k in j] == [('"$K1"', "destroyed"), ('"$K2"', "retired"), ('"$K3"', "destroyed"), ('"$K4"', "active")]'
json 'len(set(k["id"] for k in j)) == 4'

# exposing the active key rotates it away first
check_exit 0 atrest keys expose "$K4"
K5=$(key_id -1)
check_out "^data key $K4 marked exposed; new active data key $K5$"
check_exit 0 atrest keys --json
json '[(k["id"], k["status"]) for k in j][3:] == [('"$K4"', "exposed"), ('"$K5"', "active")]'
check_exit 1 atrest keys destroy "$K5"
check_err "^atrest: keys destroy $K5: .*rotate"
check_exit 3 atrest keys destroy "$NO_KEY"
check_exit 3 atrest keys expose "$NO_KEY"

# usage errors and help
check_exit 2 atrest keys frobnicate
check_err "^atrest: keys: unknown action 'frobnicate'"
check_exit 2 atrest keys destroy
check_exit 2 atrest keys destroy one
check_exit 2 atrest keys destroy 0
check_exit 2 atrest keys expose 1 2
check_exit 2 atrest keys --force
check_exit 2 atrest keys destroy 2 --json
check_exit 2 atrest keys --colour
check_exit 2 atrest rotate now
check_exit 2 atrest rewrap please
check_exit 2 atrest reencrypt
check_err "missing --data-key"
check_exit 2 atrest reencrypt --data-key
check_exit 2 atrest reencrypt --data-key x1
check_exit 2 atrest reencrypt --data-key 0
check_exit 2 atrest reencrypt --data-key 1 a b
check_exit 2 atrest migrate a b
check_exit 2 atrest migrate --data-key 1
for c in keys rotate rewrap reencrypt migrate; do
	check_exit 0 atrest "$c" --help
	check_out "^usage: atrest $c"
	check_exit 0 atrest help "$c"
	check_out "^usage: atrest $c"
done
check_exit 0 atrest keys destroy --help
check_out '^usage: atrest keys'
check_exit 0 atrest --help
for c in keys rotate rewrap reencrypt migrate; do
	check_out "^  $c "
done
for c in keys rotate rewrap "reencrypt --data-key 1"; do
	# shellcheck disable=SC2086
	check_exit 3 atrest --store "$T/no-store" $c
done
check "no store was created by them" test ! -e "$T/no-store"
echo "all lifecycle checks passed"
