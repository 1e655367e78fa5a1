#!/bin/sh
# Plaintext pass-through for migration: a non-atrest file in the store is an
# integrity error, unless --allow-plaintext or ATREST_ALLOW_PLAINTEXT=1 is
# given; then it is returned as is.  Encrypted objects are still checked.
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
check_out '^70000 70000 .* plaintext key=- legacy/old-checkpoint$'
check_exit 0 atrest --allow-plaintext verify
check_out '^verified 2 objects, 0 failed$'
check_exit 4 atrest verify

# Pass-through never weakens the checks of real objects.
flip "$T/store/enc" -1
check_exit 4 atrest --allow-plaintext get enc
check_exit 4 env ATREST_ALLOW_PLAINTEXT=1 "$ATREST_BIN" get enc
check_exit 4 env ATREST_ALLOW_PLAINTEXT=0 "$ATREST_BIN" get legacy/old-checkpoint
echo "all plaintext pass-through checks passed"
