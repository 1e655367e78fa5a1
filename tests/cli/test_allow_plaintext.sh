#!/bin/sh
# Plaintext pass-through for migration: a non-atrest file in the store is an
# integrity error, unless --allow-plaintext or ATREST_ALLOW_PLAINTEXT=1 is
# given; then it is returned as is.  Encrypted objects are still checked.
# A directory that is not a store yet works the same, and its first write
# makes it one in place.
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"

new_key
printf 'encrypted one\n' >"$T/enc"
check_exit 0 atrest put enc "$T/enc"
mkdir -p "$T/store/legacy"
head -c 70000 /dev/urandom >"$T/store/legacy/old-checkpoint"
cp "$T/store/legacy/old-checkpoint" "$T/plain"

check_exit 4 atrest get legacy/old-checkpoint
check_err '^atrest: get legacy/old-checkpoint: '
check_exit 0 atrest --allow-plaintext get legacy/old-checkpoint
same "$T/out" "$T/plain"
check_exit 0 env ATREST_ALLOW_PLAINTEXT=1 "$ATREST_BIN" get legacy/old-checkpoint -o "$T/got"
same "$T/got" "$T/plain"
check_exit 0 atrest --allow-plaintext ls -l
check_out '^ +70000 +70000 .* plaintext +- legacy/old-checkpoint$'
check_exit 0 atrest --allow-plaintext verify
check_out '^verified 2 objects, 0 failed$'
check_exit 4 atrest verify

# Pass-through never weakens the checks of real objects.
flip "$T/store/enc" -1
check_exit 4 atrest --allow-plaintext get enc
check_exit 4 env ATREST_ALLOW_PLAINTEXT=1 "$ATREST_BIN" get enc
check_exit 4 env ATREST_ALLOW_PLAINTEXT=0 "$ATREST_BIN" get legacy/old-checkpoint
# A directory of checkpoints that is not a store yet.
P="$T/plain-dir"
mkdir -p "$P/ckpt"
head -c 5000 /dev/urandom >"$P/ckpt/state"
check_exit 0 env ATREST_ALLOW_PLAINTEXT=1 "$ATREST_BIN" --store "$P" get ckpt/state
same "$T/out" "$P/ckpt/state"
check_exit 4 atrest --store "$P" get ckpt/state
check_err '^atrest: get ckpt/state: .*not an atrest object'
check_exit 3 atrest --store "$P" --allow-plaintext get ckpt/missing
check_exit 0 atrest --store "$P" --allow-plaintext ls
check_out '^ckpt/state$'
check "reading made nothing" test ! -e "$P/.atrest"
cp "$P/ckpt/state" "$T/state.orig"
check_exit 0 atrest --store "$P" put ckpt/new "$T/enc"
check "the first write made the store in place" test -f "$P/.atrest/keyring"
check_exit 0 atrest --store "$P" --allow-plaintext get ckpt/state
same "$T/out" "$T/state.orig"
check_exit 0 atrest --store "$P" migrate
check_exit 0 atrest --store "$P" get ckpt/state
same "$T/out" "$T/state.orig"
echo "all plaintext pass-through checks passed"
