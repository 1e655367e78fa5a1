#!/bin/sh
# kill -9 at varying moments of put -r, rm -r, gc and get -r.  After each
# crash: every snapshot listed verifies and restores exactly (no half
# snapshot is ever visible, no earlier one is harmed); a killed get -r
# leaves nothing at its target and its leftover is removed by the next one.
# At the end gc (whose crashed runs and dead writers are then stale) leaves
# exactly the objects that the remaining snapshots reference.
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"

DELAYS="0 0.002 0.005 0.01 0.02 0.03 0.05 0.08 0.12 0.2"
D="$ATREST_STORE/.atrest/snap"
new_key

# run ARGS...: the CLI, with a hang turned into a failure (status 124).
run() {
	timeout 120 "$ATREST_BIN" "$@"
}

crash() {
	"$@" >/dev/null 2>&1 &
	pid=$!
	sleep "$d"
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# tree DIR SEED: 120 files of 1-40 KiB, one of 4 MiB, in a few directories.
tree() {
	$PY - "$1" "$2" <<'PY'
import os, random, sys
r, seed = sys.argv[1], int(sys.argv[2])
random.seed(seed)
for i in range(120):
    d = os.path.join(r, "d%d" % (i % 6))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%03d" % i), "wb") as f:
        f.write(random.randbytes(random.randint(1024, 40960)))
with open(os.path.join(r, "large"), "wb") as f:
    f.write(random.randbytes(4 << 20))
PY
}

# change DIR: rewrite a few files (a new version of the tree).
change() {
	$PY - "$1" <<'PY'
import os, random, sys
r = sys.argv[1]
for i in random.sample(range(120), 5):
    with open(os.path.join(r, "d%d" % (i % 6), "f%03d" % i), "wb") as f:
        f.write(os.urandom(random.randint(1024, 40960)))
PY
}

same_trees() {
	diff -r "$1" "$2" >/dev/null || fail "$2 differs from $1"
}

# Every listed snapshot verifies; the newest (and the first) restore to the
# tree they were taken of (kept in $T/trees/NAME).
check_all() {
	run snapshot list >"$T/list" 2>"$T/err" || fail "snapshot list after a crash ($d s): $(cat "$T/err")"
	while read -r seq when name rest; do
		run verify -r "$name" >/dev/null 2>"$T/err" ||
			fail "snapshot $name does not verify after a crash ($d s): $(cat "$T/err")"
	done <"$T/list"
	for name in s/base $(run snapshot latest s/ | cut -d' ' -f1); do
		[ -d "$T/trees/$name" ] || continue
		rm -rf "$T/check"
		run get -r --no-sync "$name" "$T/check" >/dev/null 2>"$T/err" ||
			fail "snapshot $name does not restore: $(cat "$T/err")"
		same_trees "$T/trees/$name" "$T/check"
	done
}

# put NAME: a snapshot of the current source, its tree kept for checks.
put() {
	run put -r "$T/src" "$1" >/dev/null 2>"$T/err" || fail "put -r $1: $(cat "$T/err")"
	mkdir -p "$(dirname "$T/trees/$1")"
	cp -a "$T/src" "$T/trees/$1"
}

tree "$T/src" 1
put s/base
n=0
for d in $DELAYS; do
	n=$((n + 1))
	change "$T/src"
	crash "$ATREST_BIN" put -r "$T/src" "s/crash-$n"
	check_all
	# A crashed put -r left no snapshot, or a whole one.
	if run ls -r "s/crash-$n" >/dev/null 2>&1; then
		run verify -r "s/crash-$n" >/dev/null || fail "s/crash-$n is half written"
	fi
	put "s/after-$n"
done
ok "put -r killed at 10 moments: every snapshot listed is whole and verifies"

for d in $DELAYS; do
	n=$((n + 1))
	victim=$(run snapshot list s/after- | head -1 | cut -d' ' -f3)
	crash "$ATREST_BIN" rm -r "$victim"
	check_all
	change "$T/src"
	put "s/r-$n"
done
ok "rm -r killed at 10 moments: the others never harmed"

for d in $DELAYS; do
	n=$((n + 1))
	for v in $(run snapshot list s/r- | sed -n 1p | cut -d' ' -f3); do
		run rm -r "$v" >/dev/null
	done
	crash "$ATREST_BIN" gc --grace 0 --ttl 2
	check_all
	change "$T/src"
	put "s/g-$n"
done
ok "gc killed at 10 moments: every snapshot intact, writers go on"

for d in $DELAYS; do
	crash "$ATREST_BIN" get -r --no-sync s/base "$T/restored"
	[ ! -e "$T/restored" ] || {
		same_trees "$T/trees/s/base" "$T/restored"
		rm -rf "$T/restored"
	}
done
ok "get -r killed at 10 moments: nothing at the target unless complete"
run get -r s/base "$T/restored" >/dev/null
ls -a "$T" | grep -q '\.restored\.atrest-' && fail "leftovers of killed restores remain"
ok "the next get -r removed the leftovers of the killed ones"

# Crashed writers' leases go stale (ttl 1 h by default: none here yet,
# their objects are kept); dead gc markers are removed after 2 x ttl.
sleep 5
run gc --grace 0 >"$T/gc" 2>"$T/err" || fail "gc: $(cat "$T/err")"
check_all
[ -z "$(ls -A "$D/g" 2>/dev/null)" ] || fail "dead gc markers remain: $(ls "$D/g")"
ok "gc removed the markers of killed gc runs"
# Then, with every snapshot removed and the killed writers' leases taken
# as expired, nothing is left.
for name in $(run snapshot list | cut -d' ' -f3); do
	run rm -r "$name" >/dev/null
done
run gc --grace 0 >/dev/null
for l in $(ls "$D/l" 2>/dev/null); do
	rm "$D/l/$l" # killed writers' leases (as after their ttl, 1 h)
done
run gc --grace 0 >/dev/null
[ -z "$(find "$D/d" -type f 2>/dev/null)" ] || fail "objects left: $(find "$D/d" -type f | head -3)"
ok "with every snapshot and lease gone, gc leaves no object"
