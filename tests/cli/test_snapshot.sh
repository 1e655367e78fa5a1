#!/bin/sh
# Snapshots from the command line: put -r / get -r round trips of every kind
# of entry (owners, modes, nanosecond mtimes, links, FIFOs, xattrs, empty
# directories), ls -r, snapshot list|latest, incremental snapshots (objects
# written counted), rm -r, gc, verify -r, tenants, and each tampering case:
# a missing, extra, renamed or swapped object, one rolled back, a manifest
# rolled back or removed (--min-seq) -- each exit 4 naming the file.
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"

new_key
D="$ATREST_STORE/.atrest/snap"

# tree DIR: a small checkpoint-like tree with every kind of entry.
tree() {
	$PY - "$1" <<'PY'
import os, socket, sys
r = sys.argv[1]
os.makedirs(r + "/base/16384")
os.makedirs(r + "/pg_wal/archive_status")
os.makedirs(r + "/empty")
for i in range(30):
    with open("%s/base/16384/%d" % (r, 1000 + i), "wb") as f:
        f.write(os.urandom(8192 * (1 + i % 3)))
with open(r + "/big", "wb") as f:
    f.write(os.urandom(3 << 20))
open(r + "/PG_VERSION", "w").write("15\n")
open(r + "/zero", "w").close()
os.symlink("../elsewhere/tablespace", r + "/link")
os.symlink(r + "/base", r + "/abs-link")
os.link(r + "/PG_VERSION", r + "/PG_VERSION.hard")
os.mkfifo(r + "/fifo", 0o640)
os.chmod(r + "/base/16384", 0o700)
os.chmod(r + "/PG_VERSION", 0o600)
os.chmod(r + "/empty", 0o1777)
os.chown(r + "/base/16384/1000", 1234, 5678)
os.setxattr(r + "/big", "user.origin", b"bench")
os.utime(r + "/base/16384/1001", ns=(1600000000123456789, 1600000000123456789))
PY
}

# same A B: identical trees (types, modes, owners, mtimes in ns, bytes,
# link targets, hard links, xattrs when asked).
same_trees() {
	$PY - "$1" "$2" "${3:-}" <<'PY' || fail "trees $1 and $2 differ"
import hashlib, os, stat, sys
a, b, xattrs = sys.argv[1], sys.argv[2], sys.argv[3]
def walk(r):
    out = {}
    for d, dirs, files in os.walk(r):
        for n in dirs + files + ([] if d != r else ["."]):
            p = os.path.normpath(os.path.join(d, n))
            st = os.lstat(p)
            k = os.path.relpath(p, r)
            v = [stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid]
            if not stat.S_ISLNK(st.st_mode):
                v.append(st.st_mtime_ns)
            if stat.S_ISREG(st.st_mode):
                v += [hashlib.sha256(open(p, "rb").read()).hexdigest(), st.st_nlink]
                if xattrs:
                    v += sorted((x, os.getxattr(p, x)) for x in os.listxattr(p))
            if stat.S_ISLNK(st.st_mode):
                v.append(os.readlink(p))
            out[k] = v
    return out
x, y = walk(a), walk(b)
if x != y:
    for k in sorted(set(x) | set(y)):
        if x.get(k) != y.get(k):
            print("differs:", k, x.get(k), y.get(k), file=sys.stderr)
    sys.exit(1)
PY
	ok "$(basename "$2") is an exact copy of $(basename "$1")"
}

objects() {
	find "$D/d" -type f 2>/dev/null | wc -l | tr -d ' '
}

# ---- put -r, ls -r, get -r ----

tree "$T/src"
$PY -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$T/src/sock"
root_mtime=$($PY -c 'import os,sys; print(os.stat(sys.argv[1]).st_mtime_ns)' "$T/src")
check_exit 0 atrest put -r --xattrs "$T/src" pg/1
check_out "^snapshot pg/1: sequence 1, 33 files .* 0 shared with no parent, [0-9]+ objects written"
check_out "6 directories, 2 symbolic links, 1 hard links, 1 special files, 1 sockets skipped"
grep -q "warning: sock: socket not stored" "$T/err" || fail "the socket was not reported"
ok "the socket is reported on stderr"
rm "$T/src/sock"
$PY -c 'import os,sys; os.utime(sys.argv[1], ns=(int(sys.argv[2]),) * 2)' "$T/src" "$root_mtime"
[ "$(objects)" -ge 2 ] && [ "$(objects)" -le 6 ] || fail "$(objects) objects for 33 files"
ok "33 files in $(objects) objects (small files packed)"
check_exit 0 atrest ls -r pg/1
check_out "^base/16384/1029$"
check_out "^\.$"
check_exit 0 atrest ls -r pg/1 -l
check_out "^drwx------ 0 0 0 .* base/16384$"
check_out "^-rw-r--r-- 1234 5678 8192 .* base/16384/1000$"
check_out "^lrwxrwxrwx .* link -> \.\./elsewhere/tablespace$"
check_out "^hrw------- .* PG_VERSION.hard link to PG_VERSION$"
check_out "^prw-r----- .* fifo$"
check_out "^drwxrwxrwt .* empty$"
check_exit 0 atrest ls -r pg/1 --json
json 'j["name"] == "pg/1" and j["seq"] == 1 and j["files"] == 33'
json '[e for e in j["entries"] if e["path"] == "big"][0]["xattrs"] == ["user.origin"]'
json '[e for e in j["entries"] if e["path"] == "base/16384/1001"][0]["mtime_ns"] == 1600000000123456789'
check_exit 0 atrest get -r pg/1 "$T/rest"
check_out "^restored pg/1 to .*rest: 33 files"
same_trees "$T/src" "$T/rest" xattrs
check_exit 0 atrest verify -r pg/1
check_out "snapshot pg/1: 33 files .* all verified"

# The target must not exist (or be an empty directory); nothing else moves.
check_exit 1 atrest get -r pg/1 "$T/rest"
check_err "get -r pg/1: '.*rest' exists and is not empty"
mkdir "$T/empty-out"
check_exit 0 atrest get -r --no-owners pg/1 "$T/empty-out"
[ "$(stat -c %u "$T/empty-out/base/16384/1000")" = "$(id -u)" ] ||
	fail "--no-owners restored an owner"
ok "--no-owners leaves files to the user running get -r"
check_exit 3 atrest get -r pg/none "$T/x"
check_exit 3 atrest ls -r pg/none
[ ! -e "$T/x" ] || fail "a failed get -r left $T/x"

# ---- errors of use ----
check_exit 2 atrest put -r "$T/src/PG_VERSION" pg/file
check_exit 3 atrest put -r "$T/nonexistent" pg/none
check_exit 2 atrest put -r "$T/src"
check_exit 2 atrest put -r --full --parent pg/1 "$T/src" pg/x
check_exit 2 atrest put -r "$T/src" ../bad
check_exit 1 atrest put -r "$T/src" pg/1
check_err "already exists"
check_exit 3 atrest put -r --parent pg/none "$T/src" pg/x
check_exit 2 atrest get -r pg/1
check_exit 2 atrest get -r --min-seq abc pg/1 "$T/y"
check_exit 2 atrest snapshot
check_exit 2 atrest snapshot frobnicate
check_exit 2 atrest snapshot latest
check_exit 2 atrest gc --ttl 0
check_exit 0 atrest put --help
check_out "put -r \[--parent OLD"
check_exit 0 atrest gc --help
check_exit 0 atrest snapshot --help

# ---- incremental snapshots ----
before=$(objects)
$PY - "$T/src" <<'PY'
import os, sys
r = sys.argv[1]
with open(r + "/base/16384/1005", "r+b") as f:   # one file changed
    f.write(b"changed!")
os.utime(r + "/base/16384/1006", ns=(1700000000000000000, 1700000000000000000))
PY
check_exit 0 atrest put -r "$T/src" pg/2
check_out "sequence 2, 33 files .* 31 shared with pg/1, 1 objects written \((8.0 KiB|16.0 KiB|24.0 KiB)\)"
[ "$(objects)" -eq $((before + 1)) ] || fail "incremental wrote $(($(objects) - before)) objects"
ok "the incremental snapshot wrote one object (the changed file)"
check_exit 0 atrest put -r --full "$T/src" other/full
check_out "0 shared with no parent"
check_exit 0 atrest put -r --parent pg/1 --checksum "$T/src" other/from-1
check_out "31 shared with pg/1, 1 objects written"
check_exit 0 atrest get -r pg/2 "$T/rest2"
same_trees "$T/src" "$T/rest2"

# ---- snapshot list | latest, rm -r, gc ----
check_exit 0 atrest snapshot list
check_out "^1 .* pg/1$"
check_out "^2 .* pg/2 parent=pg/1$"
check_exit 0 atrest snapshot list pg/ --json
json 'len(j) == 2 and j[1]["parent"] == "pg/1"'
check_exit 0 atrest snapshot latest pg/
check_out "^pg/2 2$"
check_exit 0 atrest snapshot latest pg/ --min-seq 2 --json
json 'j == {"name": "pg/2", "seq": 2}'
check_exit 4 atrest snapshot latest pg/ --min-seq 9
check_err "older than the 9 required"
check_exit 3 atrest snapshot latest nothing/
check_exit 0 atrest rm -r pg/1
check_out "removed snapshot pg/1: [0-9]+ objects deleted, [0-9]+ shared with other snapshots kept"
check_exit 3 atrest rm -r pg/1
check_exit 0 atrest verify -r pg/2
rm -rf "$T/rest2"
check_exit 0 atrest get -r pg/2 "$T/rest2"
same_trees "$T/src" "$T/rest2"
check_exit 0 atrest rm -r other/full
check_exit 0 atrest gc --dry-run --grace 0
check_out "^gc: 0 objects to remove"
# A dead writer's temp directory (no lock file: its process is gone) is
# among what gc cleans up beside the snapshots.
mkdir -p "$ATREST_STORE/.atrest/tmp/0123456789abcdef"
echo leftover >"$ATREST_STORE/.atrest/tmp/0123456789abcdef/w0"
check_exit 0 atrest gc
check_out "^gc: 0 objects removed .* 0 stale leases removed, [0-9]+ dead writers' leftovers cleaned"
[ ! -e "$ATREST_STORE/.atrest/tmp/0123456789abcdef" ] || fail "dead temp dir kept"
ok "gc removed a dead writer's temp directory"
[ -z "$(ls -A "$D/l" 2>/dev/null)" ] || fail "leases left behind"
[ -z "$(ls -A "$D/g" 2>/dev/null)" ] || fail "gc markers left behind"
ok "no lease and no gc marker left"
# An object nobody references (a dead writer's) goes once old enough.
w=$(ls "$D/d" | head -1)
cp "$D/d/$w/1" "$D/d/$w/77"
check_exit 0 atrest gc
check_out "^gc: 0 objects removed"
check_exit 0 atrest gc --grace 0
check_out "^gc: 1 objects removed"

# ---- tampering ----
check_exit 0 atrest put -r --full "$T/src" t/1
# The writer's directory of t/1: the newest under d/.
wd=$(ls -td "$D/d"/*/ | head -1)
big=$(ls -S "$wd" | head -1)
small=$(ls -S "$wd" | tail -1)
cp "$wd/$big" "$T/big.obj"
cp "$wd/$small" "$T/small.obj"

tampered() {
	check_exit 4 atrest get -r t/1 "$T/bad"
	check_err "$1"
	[ ! -e "$T/bad" ] || fail "a failed get -r left $T/bad"
	ls -a "$T" | grep -q '\.atrest-' && fail "a failed get -r left its temporary tree"
	check_exit 4 atrest verify -r t/1
	grep -q -- "$1" "$T/err" || fail "verify -r did not report '$1': $(cat "$T/err")"
	ok "verify -r reports it too"
}
restore_objects() {
	cp "$T/big.obj" "$wd/$big"
	cp "$T/small.obj" "$wd/$small"
}

rm "$wd/$big"
tampered "file 'big': its object .* is missing"
restore_objects
mv "$wd/$big" "$wd/999"
tampered "file 'big': its object .* is missing"
rm "$wd/999"
restore_objects
cp "$wd/$small" "$wd/1234"
tampered "object .*/1234 is not part of snapshot 't/1'"
rm "$wd/1234"
cp "$T/small.obj" "$wd/$big"
cp "$T/big.obj" "$wd/$small"
tampered "file '.*': object .* was written as .*moved or copied"
restore_objects
flip "$wd/$big" 5000
tampered "file 'big'"
restore_objects
check_exit 0 atrest verify -r t/1
# An object of another snapshot (its own valid version) in its place.
other=$(find "$D/d" -type f ! -path "$wd*" | head -1)
cp "$other" "$wd/$big"
tampered "file 'big'"
restore_objects

# The whole snapshot rolled back: an older copy of its manifest.
cp "$D/m/t/1" "$T/t1.manifest"
check_exit 0 atrest rm -r t/1
check_exit 0 atrest put -r --full "$T/src" t/1
seq=$(atrest snapshot latest t/ | cut -d' ' -f2)
check_exit 0 atrest get -r --min-seq "$seq" t/1 "$T/fresh"
cp "$T/t1.manifest" "$D/m/t/1"
check_exit 4 atrest get -r --min-seq "$seq" t/1 "$T/stale"
check_err "has sequence [0-9]+, older than the $seq required"
check_exit 4 atrest snapshot latest t/ --min-seq "$seq"
# The newest snapshot removed behind the reader's back.
check_exit 0 atrest put -r "$T/src" t/2
seq=$(atrest snapshot latest t/ | cut -d' ' -f2)
rm "$D/m/t/2"
check_exit 4 atrest snapshot latest t/ --min-seq "$seq"
check_err "the newest snapshot under 't/' is 't/1'"

# A manifest edited, or another snapshot's manifest under this name.
cp "$D/m/pg/2" "$D/m/t/1"
check_exit 4 atrest get -r t/1 "$T/x"
check_err "moved or copied"
flip "$D/m/pg/2" -20
check_exit 4 atrest ls -r pg/2

# ---- tenants ----
check_exit 0 atrest tenant add acme
check_exit 0 atrest --tenant acme put -r "$T/src" acme/1
check_exit 0 atrest --tenant acme snapshot list
check_out "acme/1"
check_exit 3 atrest ls -r acme/1
check_exit 0 atrest snapshot list acme/
[ ! -s "$T/out" ] || fail "the default tenant lists acme's snapshots"
[ -f "$ATREST_STORE/.atrest/tenants/acme/snap/m/acme/1" ] || fail "not in acme's area"
check_exit 0 atrest --tenant acme get -r acme/1 "$T/acme-out"
same_trees "$T/src" "$T/acme-out"
check_exit 0 atrest tenant shred acme
[ ! -e "$ATREST_STORE/.atrest/tenants/acme/snap" ] || fail "shred left acme's snapshots"
ok "tenant shred removes the tenant's snapshots"

# ---- data keys ----
check_exit 0 atrest rotate
old=$(key_id 0)
check_exit 1 atrest keys destroy "$old"
check_err "objects"
