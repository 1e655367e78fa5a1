#!/bin/sh
# encrypt / decrypt: standalone files through pipes and files; -o leaves
# nothing behind on failure and keeps an existing OUT; exit 4 for damaged
# or foreign input, 5 for key errors; files move between stores' environments.
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"

check_exit 0 atrest encrypt --help
check_out 'usage: atrest encrypt'
check_exit 0 atrest decrypt --help
check_out 'non-zero exit status'
check_exit 5 atrest encrypt /dev/null -o "$T/x"
check_err 'no master key'
check "no key leaves no output" test ! -e "$T/x"

new_key
head -c 300000 /dev/urandom >"$T/data"
head -c 5000000 /dev/urandom >"$T/big"

# Pipes, both ways, and the empty stream.
printf 'hello\n' | atrest encrypt | atrest decrypt >"$T/out"
check "a pipe round trip" test "$(cat "$T/out")" = hello
: | atrest encrypt >"$T/empty.atr"
atrest decrypt <"$T/empty.atr" >"$T/out"
check "the empty stream" test ! -s "$T/out"
check "no store was created" test ! -e "$T/store"

# Files, and mixes of both.
check_exit 0 atrest encrypt "$T/data" -o "$T/data.atr"
check "the file is a standalone atrest file" \
	test "$(head -c 9 "$T/data.atr" | od -An -tx1 | tr -d ' \n')" = 894154524553540102
check_exit 0 atrest decrypt "$T/data.atr" -o "$T/data.out"
same "$T/data.out" "$T/data"
check "decrypt -o makes a 0600 file" test "$(stat -c %a "$T/data.out")" = 600
atrest encrypt <"$T/big" >"$T/big.atr"
atrest decrypt "$T/big.atr" >"$T/big.out"
same "$T/big.out" "$T/big"
check_exit 0 atrest decrypt - -o "$T/big.out2" <"$T/big.atr"
same "$T/big.out2" "$T/big"
for c in chacha20-poly1305 aes-256-cbc-hmac-sha256; do
	check_exit 0 atrest encrypt --cipher $c --segment-size 1K "$T/data" -o "$T/c.atr"
	check_exit 0 atrest inspect "$T/c.atr"
	check_out "$c"
	check_exit 0 atrest decrypt "$T/c.atr" -o "$T/c.out"
	same "$T/c.out" "$T/data"
done
cp "$T/data" "$T/inplace"
check_exit 0 atrest encrypt "$T/inplace" -o "$T/inplace"
check_exit 0 atrest decrypt "$T/inplace" -o "$T/inplace"
same "$T/inplace" "$T/data"

# Devices are written to, never replaced.
check_exit 0 atrest encrypt "$T/data" -o /dev/null
check_exit 0 atrest decrypt "$T/data.atr" -o /dev/null
check "/dev/null is still a device" test -c /dev/null

# Usage errors.
check_exit 2 atrest encrypt a b
check_exit 2 atrest encrypt --cipher rot13 "$T/data" -o "$T/x"
check_exit 2 atrest decrypt --cipher aes-256-gcm "$T/data.atr"
check_exit 3 atrest encrypt "$T/missing" -o "$T/x"
check "a missing input leaves no output" test ! -e "$T/x"

# Damage: -o leaves nothing new and keeps an existing OUT untouched.
mkdir "$T/o"
cp "$T/big.atr" "$T/bad.atr"
flip "$T/bad.atr" -1
check_exit 4 atrest decrypt "$T/bad.atr" -o "$T/o/new"
check_err 'decrypt .*bad.atr: .*(failed authentication|modified)'
check "nothing is left at OUT" test ! -e "$T/o/new"
check "no temporary file is left" test -z "$(ls -A "$T/o")"
printf 'precious\n' >"$T/o/keep"
cp "$T/o/keep" "$T/keep.orig"
check_exit 4 atrest decrypt "$T/bad.atr" -o "$T/o/keep"
same "$T/o/keep" "$T/keep.orig"
check "still only the old file" test "$(ls -A "$T/o")" = keep
cp "$T/big.atr" "$T/short.atr"
truncate -s 4000000 "$T/short.atr"
check_exit 4 atrest decrypt "$T/short.atr" -o "$T/o/keep"
same "$T/o/keep" "$T/keep.orig"
cp "$T/big.atr" "$T/long.atr"
printf 'x' >>"$T/long.atr"
check_exit 4 atrest decrypt "$T/long.atr" -o "$T/o/keep"
flip "$T/bad.atr" 100
check_exit 4 atrest decrypt "$T/bad.atr" -o "$T/o/keep"
same "$T/o/keep" "$T/keep.orig"
check_exit 4 atrest decrypt "$T/data" -o "$T/o/keep"
check_err 'not an atrest file'
check "still only the old file" test "$(ls -A "$T/o")" = keep

# To stdout, a failure late in the file exits 4 after verified bytes only.
cp "$T/big.atr" "$T/late.atr"
flip "$T/late.atr" -100
check_exit 4 atrest decrypt "$T/late.atr"
check "stdout holds fewer bytes than the file" \
	test "$(size "$T/out")" -lt 5000000
check "what stdout holds is a prefix of the plaintext" \
	cmp -s -n "$(size "$T/out")" "$T/out" "$T/big"

# A store object is not a standalone file, and vice versa.
check_exit 0 atrest put obj "$T/data"
check_exit 4 atrest decrypt "$T/store/obj" -o "$T/o/keep"
check_err 'a store object, not a standalone file'
same "$T/o/keep" "$T/keep.orig"

# Key errors: the message names the key the file wants.
file_key_id=$($PY -c 'import sys; b=open(sys.argv[1],"rb").read(); i=b.index(b"fp:"); print(b[i:i+19].decode())' "$T/data.atr")
mv "$T/key" "$T/key1"
new_key
check_exit 5 atrest decrypt "$T/data.atr" -o "$T/o/keep"
check_err "wrong master key: the file is encrypted with master key $file_key_id"
same "$T/o/keep" "$T/keep.orig"

# Another store's environment with the same key (given another way) works.
unset ATREST_KEY_FILE
export ATREST_KEY="$(cat "$T/key1")" ATREST_STORE="$T/other-store"
check_exit 0 atrest decrypt "$T/data.atr" -o "$T/moved"
same "$T/moved" "$T/data"
check_exit 0 atrest put elsewhere "$T/data"
unset ATREST_KEY

# Passphrases: a new salt per file; a wrong passphrase is a key error.
export ATREST_PASSPHRASE='correct horse'
check_exit 0 atrest encrypt "$T/data" -o "$T/pass.atr"
check_exit 0 atrest decrypt "$T/pass.atr" -o "$T/pass.out"
same "$T/pass.out" "$T/data"
export ATREST_PASSPHRASE='battery staple'
check_exit 5 atrest decrypt "$T/pass.atr" -o "$T/pass.out2"
check_err 'wrong master key'
check "a wrong passphrase leaves nothing" test ! -e "$T/pass.out2"
unset ATREST_PASSPHRASE
export ATREST_KEY_FILE="$T/key1"
check_exit 5 atrest decrypt "$T/pass.atr"

# A reader that goes away: EPIPE is an ordinary error (exit 1).
{
	rc=0
	atrest decrypt "$T/big.atr" 2>"$T/err" || rc=$?
	echo "$rc" >"$T/rc"
} | head -c 10 >/dev/null
check "a closed pipe exits 1" test "$(cat "$T/rc")" = 1
echo "all encrypt/decrypt checks passed"
