#!/bin/sh
# A full disk: a store on a small tmpfs that a snapshot does not fit, and a
# restore to a small tmpfs.  Each is a clear error (exit 1, "No space"),
# nothing is lost (earlier snapshots verify and restore), nothing is left
# (no half snapshot, no lease, no object of the failed writer, no partial
# tree at the target).  Mounting needs root: the test runs itself in a user
# and mount namespace of its own when it is not root.
set -eu
if [ "$(id -u)" != 0 ] && [ -z "${ATREST_IN_NS:-}" ]; then
	ATREST_IN_NS=1 exec unshare --user --map-root-user --mount sh "$0" "$@"
fi
. "$ATREST_SRC/tests/cli/lib.sh"

mkdir "$T/small" "$T/tiny"
mount -t tmpfs -o size=12m tmpfs "$T/small" || fail "cannot mount a tmpfs"
mount -t tmpfs -o size=2m tmpfs "$T/tiny" || fail "cannot mount a tmpfs"
trap 'umount "$T/small" "$T/tiny" 2>/dev/null; rm -rf "$T"' EXIT
ok "tmpfs of 12 MiB and 2 MiB mounted"
export ATREST_STORE="$T/small/store"
D="$ATREST_STORE/.atrest/snap"
new_key

mkdir -p "$T/src/a" "$T/big"
$PY - "$T/src" "$T/big" <<'PY'
import os, sys
for i in range(50):
    open("%s/a/f%02d" % (sys.argv[1], i), "wb").write(os.urandom(20000))
for i in range(4):
    open("%s/g%d" % (sys.argv[2], i), "wb").write(os.urandom(4 << 20))
PY
check_exit 0 atrest put -r "$T/src" snap/ok
count=$(find "$D/d" -type f | wc -l)
check_exit 1 atrest put -r "$T/big" snap/too-big
check_err "put -r snap/too-big: .*(No space left on device|disk or quota full)"
check_exit 3 atrest ls -r snap/too-big
[ "$(find "$D/d" -type f | wc -l)" -eq "$count" ] || fail "the failed writer left objects"
[ -z "$(ls -A "$D/l" 2>/dev/null)" ] || fail "the failed writer left its lease"
[ -z "$(ls -A "$ATREST_STORE/.atrest/tmp/"* 2>/dev/null)" ] || fail "temp files left"
ok "nothing of the failed snapshot is left"
check_exit 0 atrest verify -r snap/ok
check_exit 0 atrest snapshot list
check_out "^1 .* snap/ok$"
# Room again: the same snapshot now fits beside the first.
rm -f "$T/big/g3" "$T/big/g2"
check_exit 0 atrest put -r "$T/big" snap/fits

# A restore that does not fit: no partial tree, no leftover.
check_exit 1 atrest get -r snap/fits "$T/tiny/out"
check_err "(No space left on device|disk or quota full)"
[ ! -e "$T/tiny/out" ] || fail "a partial tree at the target"
[ -z "$(ls -A "$T/tiny")" ] || fail "left in the target's directory: $(ls -A "$T/tiny")"
ok "the failed restore left nothing"
check_exit 0 atrest get -r snap/ok "$T/tiny/out"
diff -r "$T/src" "$T/tiny/out" >/dev/null || fail "restored tree differs"
ok "a tree that fits restores"
