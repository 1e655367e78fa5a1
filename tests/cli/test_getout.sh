#!/bin/sh
# get -o: FILE appears (or is replaced) only after the whole object verified;
# on any failure nothing is left at FILE, an existing FILE is untouched, and
# no temporary file stays behind.
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"

new_key
mkdir "$T/out.d"
head -c 300000 /dev/urandom >"$T/data"
check_exit 0 atrest put big "$T/data"
obj="$T/store/big"
cp "$obj" "$T/good"

# A failure late in the object, after earlier segments verified.
flip "$obj" -1
check_exit 4 atrest get big -o "$T/out.d/new"
check "nothing is left at FILE" test ! -e "$T/out.d/new"
check "no temporary file is left" test -z "$(ls -A "$T/out.d")"

printf 'precious\n' >"$T/out.d/existing"
chmod 0640 "$T/out.d/existing"
cp "$T/out.d/existing" "$T/existing.orig"
check_exit 4 atrest get big -o "$T/out.d/existing"
same "$T/out.d/existing" "$T/existing.orig"
check "the existing FILE keeps its mode" \
	test "$(stat -c %a "$T/out.d/existing")" = 640
check "still no temporary file" \
	test "$(ls -A "$T/out.d")" = existing

# Truncated object, and a missing one.
cp "$T/good" "$obj"
truncate -s 200000 "$obj"
check_exit 4 atrest get big -o "$T/out.d/existing"
same "$T/out.d/existing" "$T/existing.orig"
check_exit 3 atrest get nothing -o "$T/out.d/existing"
same "$T/out.d/existing" "$T/existing.orig"
check_exit 3 atrest get nothing -o "$T/out.d/new"
check "not found leaves nothing" test "$(ls -A "$T/out.d")" = existing

# A directory that does not exist: an error, nothing created.
cp "$T/good" "$obj"
check_exit 1 atrest get big -o "$T/no-dir/file"
check "no directory was created" test ! -e "$T/no-dir"

# Success replaces the existing file, relative paths work too.
check_exit 0 atrest get big -o "$T/out.d/existing"
same "$T/out.d/existing" "$T/data"
check "only the result is in the directory" \
	test "$(ls -A "$T/out.d")" = existing
(cd "$T/out.d" && check_exit 0 atrest get big -o rel) || exit 1
same "$T/out.d/rel" "$T/data"

# Without -o the failure is still reported (stdout may hold verified
# segments only, never a byte of the damaged one).
flip "$obj" 100000
check_exit 4 atrest get big
check "stdout holds fewer bytes than the object" \
	test "$(size "$T/out")" -lt 300000
check "what stdout holds is a prefix of the plaintext" \
	cmp -s -n "$(size "$T/out")" "$T/out" "$T/data"

# A reader that goes away: EPIPE is an ordinary error (exit 1), not a crash.
# The object is larger than a pipe can hold (atrest grows it to 1 MiB).
cp "$T/good" "$obj"
head -c $((4 << 20)) /dev/urandom >"$T/huge"
check_exit 0 atrest put huge "$T/huge"
{
	rc=0
	atrest get huge 2>"$T/err" || rc=$?
	echo "$rc" >"$T/rc"
} | head -c 10 >/dev/null
check "a closed pipe exits 1" test "$(cat "$T/rc")" = 1
check_err 'get huge: writing standard output: Broken pipe'
# A device or FIFO given to -o is written to, never replaced by a rename.
check_exit 0 atrest get big -o /dev/null
check "/dev/null is still a character device" test -c /dev/null
mkfifo "$T/fifo"
cat "$T/fifo" >"$T/from-fifo" &
check_exit 0 atrest get big -o "$T/fifo"
wait
check "the FIFO is still a FIFO" test -p "$T/fifo"
check "the FIFO carried the whole object" cmp -s "$T/from-fifo" "$T/data"
echo "all get -o checks passed"
