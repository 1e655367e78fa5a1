#!/bin/sh
# atrest get --range START-END (inclusive, as HTTP), START- and -N, on a
# directory store: the bytes asked for, to stdout or -o; bad ranges are
# usage errors; and only the segments holding the range are read and
# authenticated (a damaged segment elsewhere does not matter, one inside
# the range is an integrity failure).
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"
new_key
SEG=65536
head -c $((10 * SEG + 123)) /dev/urandom >"$T/data"
check_exit 0 atrest init --segment-size 64K
check_exit 0 atrest put obj "$T/data"

# want START COUNT: the expected bytes in $T/want.
want() {
	tail -c +$(($1 + 1)) "$T/data" | head -c "$2" >"$T/want"
}
for r in "0 1" "0 $SEG" "$((SEG - 1)) 2" "$((3 * SEG + 5)) $((2 * SEG))" \
	"$((10 * SEG)) 123" "$((10 * SEG + 122)) 1"; do
	set -- $r
	check_exit 0 atrest get obj --range "$1-$(($1 + $2 - 1))"
	want "$1" "$2"
	same "$T/want" "$T/out"
done
check_exit 0 atrest get obj --range "$((9 * SEG))-"
want $((9 * SEG)) $((SEG + 123))
same "$T/want" "$T/out"
check_exit 0 atrest get obj --range "$((2 * SEG))-999999999999"
want $((2 * SEG)) $((8 * SEG + 123))
same "$T/want" "$T/out"
check_exit 0 atrest get obj --range -100
tail -c 100 "$T/data" >"$T/want"
same "$T/want" "$T/out"
check_exit 0 atrest get obj --range -99999999
same "$T/data" "$T/out"
check_exit 0 atrest get obj --range 10-19 -o "$T/part"
want 10 10
same "$T/want" "$T/part"

check_exit 2 atrest get obj --range 5-4
check_err 'START <= END'
check_exit 2 atrest get obj --range abc
check_exit 2 atrest get obj --range 1-2-3
check_exit 2 atrest get obj --range "$((10 * SEG + 123))-"
check_err 'past the end of the object'

# Damage segment 7 on disk: ranges elsewhere still read, ranges over it not.
off=$(($(size "$ATREST_STORE/obj") - 3 * (SEG + 16) - 50))
flip "$ATREST_STORE/obj" "$off"
check_exit 0 atrest get obj --range $((2 * SEG))-$((3 * SEG))
want $((2 * SEG)) $((SEG + 1))
same "$T/want" "$T/out"
check_exit 4 atrest get obj --range $((7 * SEG))-$((7 * SEG + 10))
check_exit 4 atrest get obj
ok "only the segments of a range are read and authenticated"

# Plain files pass through with --allow-plaintext.
cp "$T/data" "$ATREST_STORE/plain"
check_exit 0 atrest --allow-plaintext get plain --range 100-199
want 100 100
same "$T/want" "$T/out"
