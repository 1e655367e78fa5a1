#!/bin/sh
# Every exit status of the contract, each with a one-line message on stderr:
# 2 usage and bad names, 3 not found, 4 integrity (tampered, truncated,
# extended, moved, not atrest), 5 key (none, wrong, malformed, loose file).
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"

new_key
head -c 200000 /dev/urandom >"$T/data"
check_exit 0 atrest put job/a "$T/data"
check_exit 0 atrest put job/b "$T/data"

# 2: usage
check_exit 2 atrest
check_err "missing COMMAND.*atrest --help"
check_exit 2 atrest frobnicate
check_err "unknown command 'frobnicate'"
check_exit 2 atrest --bogus ls
check_err "unknown option '--bogus'"
check_exit 2 atrest get
check_err "^atrest: get: missing NAME \(try 'atrest get --help'\)$"
check_exit 2 atrest get job/a job/b
check_exit 2 atrest get job/a -o
check_err "option '-o' needs a value"
check_exit 2 atrest ls --colour
check_err "try 'atrest ls --help'"
check_exit 2 atrest keygen extra
check_exit 2 atrest rm
check_exit 2 atrest inspect
check_exit 2 atrest verify a b
check_exit 2 atrest put
for bad in "../x" "/abs" "a//b" ".atrest/keyring" "a/./b" "x/" "a/../../b"; do
	check_exit 2 atrest put "$bad" "$T/data"
	check_err "invalid name"
	check_exit 2 atrest get "$bad"
	check_exit 2 atrest rm "$bad"
done
check "bad names wrote nothing outside the store" test ! -e "$T/x"

# 3: not found
check_exit 3 atrest get job/nope
check_err "^atrest: get: no object 'job/nope' in store $T/store$"
check_exit 3 atrest get job
check_exit 3 atrest rm job/nope
check_exit 3 atrest --store "$T/no-store" ls
check_exit 3 atrest inspect job/nope
check_exit 3 atrest put job/c "$T/no-such-input"
check "a missing input file creates no object" \
	test ! -e "$T/store/job/c"

# 4: integrity, each on a fresh copy of the object
obj="$T/store/job/a"
cp "$obj" "$T/good"
check_exit 0 atrest inspect --json job/a
hs=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["header_size"])' "$T/out")
sz=$(size "$obj")
for off in 0 5 12 $((hs - 1)) $((hs + 3)) $((sz / 2)) $((sz - 17)) -1; do
	cp "$T/good" "$obj"
	flip "$obj" "$off"
	check_exit 4 atrest get job/a -o "$T/got"
	check_err '^atrest: get job/a: '
	check "no output after a flip at $off" test ! -e "$T/got"
done
for len in 0 10 $((hs - 1)) "$hs" $((hs + 1)) $((sz / 2)) $((sz - 16)) $((sz - 1)); do
	cp "$T/good" "$obj"
	truncate -s "$len" "$obj"
	check_exit 4 atrest get job/a
done
cp "$T/good" "$obj"
printf 'x' >>"$obj"
check_exit 4 atrest get job/a
cp "$T/good" "$obj"
head -c 65536 /dev/urandom >>"$obj"
check_exit 4 atrest get job/a
cp "$T/good" "$obj"
check_exit 0 atrest get job/a -o "$T/got"
same "$T/got" "$T/data"
cp "$obj" "$T/store/job/moved"
check_exit 4 atrest get job/moved
check_err 'job/moved'
mkdir -p "$T/store/other"
cp "$obj" "$T/store/other/a"
check_exit 4 atrest get other/a
printf 'just a plain file\n' >"$T/store/plain.txt"
check_exit 4 atrest get plain.txt
check_exit 4 atrest ls -l plain.txt
head -c 4096 /dev/urandom >"$T/random.bin"
check_exit 4 atrest inspect "$T/random.bin"
check_err "$T/random.bin is not an atrest object"
: >"$T/empty.bin"
check_exit 4 atrest inspect "$T/empty.bin"
rm -f "$T/store/job/moved" "$T/store/other/a" "$T/store/plain.txt"

# 5: keys
unset ATREST_KEY_FILE
check_exit 5 atrest get job/a
check_err 'no master key.*ATREST_KEY'
check_exit 5 atrest ls -l
check_exit 0 atrest ls # names are not secret: no key needed
ATREST_KEY=$(atrest keygen)
export ATREST_KEY
check_exit 5 atrest get job/a
check_err 'wrong master key'
check_exit 5 atrest put job/new "$T/data"
check "a wrong key wrote nothing" test ! -e "$T/store/job/new"
ATREST_KEY=not-a-key
check_exit 5 atrest get job/a
check "the bad key is not echoed" not grep -q not-a-key "$T/err"
ATREST_KEY=$(head -c 63 "$T/key")
check_exit 5 atrest get job/a
export ATREST_KEY_FILE="$T/key"
check_exit 5 atrest get job/a
check_err 'more than one'
unset ATREST_KEY
chmod 0644 "$T/key"
check_exit 5 atrest get job/a
check_err 'chmod'
chmod 0600 "$T/key"
check_exit 0 atrest get job/a
export ATREST_KEY_FILE="$T/no-such-key"
check_exit 5 atrest get job/a

# The same key given as ATREST_KEY instead of ATREST_KEY_FILE opens the store.
unset ATREST_KEY_FILE
ATREST_KEY=$(cat "$T/key")
export ATREST_KEY
check_exit 0 atrest get job/a
same "$T/out" "$T/data"
echo "all error checks passed"
