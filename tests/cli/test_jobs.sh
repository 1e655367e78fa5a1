#!/bin/sh
# The object-rewriting jobs: migrate turns a directory of plaintext
# checkpoints (nested) into a store in place, by prefix, idempotently; and
# reencrypt moves objects off a data key by prefix, resumably.
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"

MARK=PLAINTEXT-MARKER-5d41
new_key

# plain DIR: a checkpoint directory of nested plaintext files.
plain() {
	mkdir -p "$1/job-1/chk-1" "$1/job-1/chk-2" "$1/job-2" "$1/meta"
	head -c 70000 /dev/urandom >"$1/job-1/chk-1/part-0"
	head -c 3 /dev/urandom >"$1/job-1/chk-1/part-1"
	printf '%s state of operator 7\n' "$MARK" >"$1/job-1/chk-2/state.txt"
	: >"$1/job-1/chk-2/empty"
	{ printf '%s\n' "$MARK"; head -c 200000 /dev/urandom; } >"$1/job-2/big"
	printf '{"offsets": [1, 2, 3], "tag": "%s"}\n' "$MARK" >"$1/meta/offsets.json"
	printf 'sp %s\n' "$MARK" >"$1/meta/with space"
}

# names DIR: the files of DIR as object names, sorted.
names() {
	(cd "$1" && find . -path ./.atrest -prune -o -type f -print) |
		sed 's|^\./||' | LC_ALL=C sort
}

# bytes DIR [PREFIX]: total size of DIR's files whose names start with PREFIX.
bytes() {
	(cd "$1" && find . -path ./.atrest -prune -o -type f -printf '%s %p\n') |
		awk -v p="./${2:-}" 'index($2, p) == 1 { n += $1 } END { print n + 0 }'
}

# all_read STORE ORIG: every object of STORE decrypts to its file in ORIG.
all_read() {
	names "$2" >"$T/names"
	while IFS= read -r n; do
		"$ATREST_BIN" --store "$1" get "$n" >"$T/got" || fail "get $n"
		cmp -s "$T/got" "$2/$n" || fail "$n differs from the original"
	done <"$T/names"
	ok "every object of $(basename "$1") reads back as the original"
}

# key_of STORE NAME: the data key id in NAME's header.
key_of() {
	"$ATREST_BIN" --store "$1" inspect --json "$2" >"$T/insp" || fail "inspect $2"
	$PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["data_key_id"])' \
		"$T/insp"
}

S="$T/ckpt"
plain "$S"
cp -a "$S" "$T/orig"
total=$(names "$S" | wc -l)

# A store made in place over the directory: plaintext is refused, unless
# pass-through is on.
check_exit 0 atrest --store "$S" init
check_exit 4 atrest --store "$S" get job-1/chk-2/state.txt
check_err '^atrest: get job-1/chk-2/state.txt: .*not an atrest object'
check_exit 0 atrest --store "$S" --allow-plaintext get job-1/chk-2/state.txt
same "$T/out" "$T/orig/job-1/chk-2/state.txt"

# migrate PREFIX touches that prefix only
n1=$(names "$S" | grep -c '^job-1/')
b1=$(bytes "$T/orig" job-1/)
check_exit 0 atrest --store "$S" migrate job-1/
check "summary" test "$(cat "$T/out")" = "migrated $n1 plaintext objects ($b1 bytes), 0 failed"
check "job-1 holds no plaintext any more" not grep -rqa "$MARK" "$S/job-1"
check "job-1/chk-1/part-0 was rewritten" not cmp -s "$S/job-1/chk-1/part-0" "$T/orig/job-1/chk-1/part-0"
for n in job-2/big meta/offsets.json "meta/with space"; do
	same "$S/$n" "$T/orig/$n"
done
check_exit 4 atrest --store "$S" get job-2/big
check_exit 0 atrest --store "$S" get job-1/chk-1/part-0
same "$T/out" "$T/orig/job-1/chk-1/part-0"

# migrate the rest; then everything reads, nothing is plaintext on disk
b2=$(($(bytes "$T/orig") - b1))
check_exit 0 atrest --store "$S" migrate
check "summary" test "$(cat "$T/out")" = "migrated $((total - n1)) plaintext objects ($b2 bytes), 0 failed"
check "no file holds the plaintext" not grep -rqa "$MARK" "$S"
all_read "$S" "$T/orig"
check "the store lists the same names" test "$(names "$T/orig")" = "$("$ATREST_BIN" --store "$S" ls)"
check_exit 0 atrest --store "$S" inspect --json "meta/with space"
json 'j["name"] == "meta/with space" and j["plaintext_size"] == '"$(size "$T/orig/meta/with space")"
check_exit 0 atrest --store "$S" verify
check_out "^verified $total objects, 0 failed$"

# again: nothing to do, nothing rewritten
objs() { (cd "$S" && find . -path ./.atrest -prune -o -type f -exec sha256sum {} + | LC_ALL=C sort -k2); }
objs >"$T/sums.before"
check_exit 0 atrest --store "$S" migrate
check "a second migrate does nothing" test "$(cat "$T/out")" = "migrated 0 plaintext objects (0 bytes), 0 failed"
objs >"$T/sums.after"
same "$T/sums.before" "$T/sums.after"

# migrate creates the store when the directory is not one yet
S2="$T/ckpt2"
plain "$S2"
cp -a "$S2" "$T/orig2"
check_exit 0 atrest --store "$S2" migrate
check_out "^migrated $total plaintext objects \($(bytes "$T/orig2") bytes\), 0 failed$"
check "the store was created" test -d "$S2/.atrest"
all_read "$S2" "$T/orig2"

# reencrypt by prefix, resumable: only that prefix moves to the new key
K1=$(key_id 0 --store "$S")
check_exit 0 atrest --store "$S" rotate
K2=$(key_id -1 --store "$S")
check_out "^new active data key $K2$"
check_exit 0 atrest --store "$S" reencrypt --data-key "$K1" job-1/
check_out "^re-encrypted $n1 of [0-9]+ objects \($b1 bytes\), 0 failed$"
check "job-1 moved to key 2" test "$(key_of "$S" job-1/chk-1/part-1)" = "$K2"
check "job-2 stayed on key 1" test "$(key_of "$S" job-2/big)" = "$K1"
check_exit 0 atrest --store "$S" reencrypt --data-key "$K1"
check_out "^re-encrypted $((total - n1)) of [0-9]+ objects \($b2 bytes\), 0 failed$"
check_exit 0 atrest --store "$S" reencrypt --data-key "$K1"
check_out '^re-encrypted 0 of [0-9]+ objects \(0 bytes\), 0 failed$'
check_exit 0 atrest --store "$S" keys --json
json '[(k["id"], k["objects"]) for k in j] == [('"$K1"', 0), ('"$K2"', '"$total"')]'
all_read "$S" "$T/orig"

# jobs report failures with the failing object's status
flip "$S/job-2/big" -1
check_exit 0 atrest --store "$S" rotate
check_exit 4 atrest --store "$S" reencrypt --data-key "$K2"
check_out "^re-encrypted $((total - 1)) of [0-9]+ objects \([0-9]+ bytes\), 1 failed$"
check_err "^atrest: reencrypt --data-key $K2: "
check "the damaged object was left as it was" test "$(key_of "$S" job-2/big)" = "$K2"
check_exit 3 atrest --store "$S" reencrypt --data-key "$NO_KEY"

# migrate and reencrypt keep each file's owner, group, mode and mtime (an
# engine such as PostgreSQL refuses files that changed owner or mode).
A="$T/attrs"
mkdir "$A"
printf 'pg %s\n' "$MARK" >"$A/data"
printf 'conf\n' >"$A/conf"
chmod 0640 "$A/data"
chmod 0604 "$A/conf"
export TZ=UTC
touch -d '2020-01-02 03:04:05.123456789' "$A/data" "$A/conf"
owner=$(id -u):$(id -g)
if [ "$(id -u)" = 0 ]; then
	# As root (how migrate is run on a database's directory): owners kept.
	owner=65534:65534
	chown "$owner" "$A/data" "$A/conf"
fi
attrs() { stat -c '%u:%g %a %y' "$1"; }
want_data=$(attrs "$A/data")
want_conf=$(attrs "$A/conf")
check "attributes set up" test "$want_data" = "$owner 640 2020-01-02 03:04:05.123456789 +0000"
check_exit 0 atrest --store "$A" migrate
check "migrate encrypted the file" not grep -q "$MARK" "$A/data"
check "migrate kept owner, mode and mtime" test "$(attrs "$A/data")" = "$want_data"
check "migrate kept them for each file" test "$(attrs "$A/conf")" = "$want_conf"
KA=$(key_id 0 --store "$A")
check_exit 0 atrest --store "$A" rotate
check_exit 0 atrest --store "$A" reencrypt --data-key "$KA"
check "reencrypt moved the object" test "$(key_of "$A" data)" != "$KA"
check "reencrypt kept owner, mode and mtime" test "$(attrs "$A/data")" = "$want_data"
check_exit 0 atrest --store "$A" get data
check_out "^pg $MARK$"
# A plain put is a new version: this user's, 0600, now.
check_exit 0 atrest --store "$A" put data "$A/conf"
check "a put replaces, not keeps" test "$(stat -c '%u %a' "$A/data")" = "$(id -u) 600"
echo "all job checks passed"
