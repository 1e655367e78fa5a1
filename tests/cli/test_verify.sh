#!/bin/sh
# verify: all good -> 0 with a summary; one tampered object among several ->
# exit 4, its name on stderr, the others still verified; prefixes; no
# progress bar when stderr is not a terminal.
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"

new_key
check_exit 0 atrest init --segment-size 1K
for i in 1 2 3 4 5; do
	head -c $((i * 3000)) /dev/urandom >"$T/d$i"
	check_exit 0 atrest put "job/chk-$i" "$T/d$i"
done
check_exit 0 atrest put other/x "$T/d1"

check_exit 0 atrest verify
check "summary line" test "$(cat "$T/out")" = "verified 6 objects, 0 failed"
check "nothing on stderr (no progress bar off a terminal)" test ! -s "$T/err"
check_exit 0 atrest verify job/
check_out '^verified 5 objects, 0 failed$'

flip "$T/store/job/chk-3" 5000
check_exit 4 atrest verify
check_out '^verified 6 objects, 1 failed$'
check_err '^job/chk-3: '
check_exit 0 atrest verify other
check_out '^verified 1 objects, 0 failed$'

truncate -s 100 "$T/store/job/chk-5"
check_exit 4 atrest verify job/
check_out '^verified 5 objects, 2 failed$'
check "both bad names reported" \
	test "$(cut -d: -f1 "$T/err" | tr '\n' ' ')" = "job/chk-3 job/chk-5 "

check_exit 0 atrest verify nothing/
check_out '^verified 0 objects, 0 failed$'

# The first failure decides the status: a key error comes first here.
ATREST_KEY_FILE="$T/other-key"
atrest keygen -o "$ATREST_KEY_FILE"
check_exit 5 atrest verify
echo "all verify checks passed"
