#!/bin/sh
# Two processes, as two hosts (each its own state dir), share one S3 store
# for 30 s: each puts new objects, rotates the data key every fourth round
# (so both update the keyring at once: conditional puts on RGW decide) and
# reads back the newest object of the other (sealed, often, under a key the
# other just made).  Then every object reads back as written, every key
# either made is in the keyring, and no id is there twice.
set -eu
. "$ATREST_SRC/tests/service/lib/s3.sh"
new_key
check_exit 0 atrest init
XDG_STATE_HOME="$T/host-a" "$S3_TOOL" race 30 a b "$T/a.log" >"$T/a.out" 2>"$T/a.err" &
pa=$!
XDG_STATE_HOME="$T/host-b" "$S3_TOOL" race 30 b a "$T/b.log" >"$T/b.out" 2>"$T/b.err" &
pb=$!
sa=0
sb=0
wait "$pa" || sa=$?
wait "$pb" || sb=$?
[ "$sa" -eq 0 ] || fail "process a: $(cat "$T/a.out" "$T/a.err")"
[ "$sb" -eq 0 ] || fail "process b: $(cat "$T/b.out" "$T/b.err")"
ok "$(cat "$T/a.out"), $(cat "$T/b.out"), no failure"
ka=$(grep -c '^key ' "$T/a.log")
kb=$(grep -c '^key ' "$T/b.log")
[ "$ka" -ge 5 ] && [ "$kb" -ge 5 ] || fail "too few rotations to prove anything: $ka, $kb"
grep -q '^saw b/' "$T/a.log" && grep -q '^saw a/' "$T/b.log" ||
	fail "the processes never saw each other's objects"
ok "each process read the other's newest objects ($ka and $kb rotations)"
XDG_STATE_HOME="$T/host-c" check_exit 0 "$S3_TOOL" check "$T/a.log" "$T/b.log"
check_out 'objects and [0-9]+ rotated keys checked'
cat "$T/out"
check_exit 0 atrest verify
