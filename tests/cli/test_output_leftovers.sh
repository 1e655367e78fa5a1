#!/bin/sh
# get -o and decrypt -o killed mid-way (here by SIGXFSZ from a file-size
# limit, which no handler catches, like kill -9) leave no file of verified
# plaintext beside OUT: the output is written unnamed (O_TMPFILE) until it
# is complete.  Leftovers of the named fallback (".OUT.atrest-XXXXXX") from
# a killed run are removed by the next run for the same OUT, unless a live
# process holds them.
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"

new_key
mkdir "$T/o"
head -c 3000000 /dev/urandom >"$T/data"
check_exit 0 atrest put big "$T/data"
check_exit 0 atrest encrypt -o "$T/data.atr" "$T/data"

# killed while writing: 1 MiB allowed, 3 MB to write
killed() {
	set +e
	(ulimit -f 2048 && exec "$@") >/dev/null 2>&1
	rc=$?
	set -e
	[ "$rc" -gt 128 ] || fail "'$*' was not killed (exit $rc)"
	ok "'$*' killed by a signal ($rc)"
}

killed "$ATREST_BIN" get big -o "$T/o/plain"
check "get -o killed leaves nothing in the directory" test -z "$(ls -A "$T/o")"
killed "$ATREST_BIN" decrypt -o "$T/o/plain" "$T/data.atr"
check "decrypt -o killed leaves nothing" test -z "$(ls -A "$T/o")"

# The same over an existing OUT: it is untouched, and nothing else appears.
printf 'keep\n' >"$T/o/plain"
killed "$ATREST_BIN" get big -o "$T/o/plain"
check "OUT is untouched" test "$(cat "$T/o/plain")" = keep
check "only OUT is there" test "$(ls -A "$T/o")" = plain

# Leftovers of a killed named-fallback run: removed by the next run for the
# same OUT; a live writer's (it holds a lock), another OUT's, and files not
# ours by name are kept.
head -c 1000 /dev/urandom >"$T/o/.plain.atrest-Ab12Cd"
head -c 1000 /dev/urandom >"$T/o/.plain.atrest-Zz99Yy"
head -c 1000 /dev/urandom >"$T/o/.other.atrest-Ab12Cd"
head -c 1000 /dev/urandom >"$T/o/.plain.atrest-toolong"
exec 9<"$T/o/.plain.atrest-Zz99Yy"
flock -x 9
check_exit 0 atrest get big -o "$T/o/plain"
same "$T/o/plain" "$T/data"
check "the stale leftover was removed" test ! -e "$T/o/.plain.atrest-Ab12Cd"
check "a locked one is kept" test -e "$T/o/.plain.atrest-Zz99Yy"
check "another OUT's is kept" test -e "$T/o/.other.atrest-Ab12Cd"
check "a name of another shape is kept" test -e "$T/o/.plain.atrest-toolong"
exec 9<&-
check_exit 0 atrest decrypt -o "$T/o/plain" "$T/data.atr"
check "decrypt -o removes it once unlocked" test ! -e "$T/o/.plain.atrest-Zz99Yy"
same "$T/o/plain" "$T/data"
check "decrypt -o output is 0600" test "$(stat -c %a "$T/o/plain")" = 600
