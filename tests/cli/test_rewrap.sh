#!/bin/sh
# Master-key change: opening with ATREST_OLD_* rewraps the keyring, as does
# 'atrest rewrap'; afterwards only the new key opens the store, and no object
# file is touched (same bytes, same inode).  Between hex keys, key files and
# passphrases, and on a store of 2,000 objects.
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"


# objects_state DIR OUT: sha256 and inode of every object file of DIR.
objects_state() {
	(cd "$1" && find . -path ./.atrest -prune -o -type f \
		-printf '%i %p\n' | LC_ALL=C sort -k2 >"$2.inodes" &&
		find . -path ./.atrest -prune -o -type f -exec sha256sum {} + |
		LC_ALL=C sort -k2 >"$2") || fail "listing $1"
	cat "$2.inodes" >>"$2"
}

# untouched DIR BEFORE: DIR's objects are as recorded in BEFORE.
untouched() {
	objects_state "$1" "$T/state.now"
	cmp -s "$2" "$T/state.now" || fail "object files changed: $(diff "$2" "$T/state.now" | head -5)"
	ok "no object file changed"
}

# only KEYVARS...: clear every key variable, then set the given ones.
only() {
	unset ATREST_KEY ATREST_KEY_FILE ATREST_PASSPHRASE ATREST_OLD_KEY \
		ATREST_OLD_KEY_FILE ATREST_OLD_PASSPHRASE
	for kv in "$@"; do
		export "${kv?}"
	done
}

# reads_all: every object decrypts to its original.
reads_all() {
	for i in 1 2 3 4; do
		"$ATREST_BIN" get "obj/$i" >"$T/got" || fail "get obj/$i"
		cmp -s "$T/got" "$T/d$i" || fail "obj/$i differs"
	done
	ok "all objects read back"
}

A=$(atrest keygen)
B=$(atrest keygen)
C=$(atrest keygen --base64)
atrest keygen -o "$T/keyfile"
atrest keygen -o "$T/keyfile2"
PASS='rewrap me, gently'

only "ATREST_KEY=$A"
for i in 1 2 3 4; do
	head -c $((i * 20000)) /dev/urandom >"$T/d$i"
	check_exit 0 atrest put "obj/$i" "$T/d$i"
done
check_exit 0 atrest rotate
objects_state "$T/store" "$T/before"

# A -> B just by opening with both keys
only "ATREST_OLD_KEY=$A" "ATREST_KEY=$B"
check_exit 0 atrest ls
check_out '^obj/4$'
only "ATREST_KEY=$A"
check_exit 5 atrest ls
check_err 'key'
only "ATREST_KEY=$B"
check_exit 0 atrest ls
reads_all
untouched "$T/store" "$T/before"
check_exit 0 atrest keys --json
json '[k["status"] for k in j] == ["retired", "active"]'

# B -> C (base64) with the command
only "ATREST_OLD_KEY=$B" "ATREST_KEY=$C"
check_exit 0 atrest rewrap
check_out '^keyring rewrapped under master key key fp:[0-9a-f]{16} \(was fp:[0-9a-f]{16}\)$'
check "no note when the old key was used" test ! -s "$T/err"
said=$(sed 's/.* key key \(fp:[0-9a-f]*\) .*/\1/' "$T/out")
only "ATREST_KEY=$C"
check_exit 0 atrest key-check --json
json 'j["key_id"] == "'"$said"'" and j["matches"]'
ok "rewrap named the new master key's fingerprint"
only "ATREST_KEY=$B"
check_exit 5 atrest get obj/1
only "ATREST_KEY=$C"
reads_all
untouched "$T/store" "$T/before"

# rewrap with no old key: a harmless rewrap under the current key
check_exit 0 atrest rewrap
check_out '^keyring rewrapped under master key key fp:[0-9a-f]{16}$'
reads_all
# an old key beside a keyring already under the new one opened nothing
only "ATREST_OLD_KEY=$A" "ATREST_KEY=$C"
check_exit 0 atrest rewrap
check_err 'already was under this master key.*opened nothing'
only "ATREST_KEY=$C"

# a stale ATREST_OLD_* beside the right key does no harm
only "ATREST_OLD_KEY=$A" "ATREST_KEY=$C"
check_exit 0 atrest ls
only "ATREST_KEY=$C"
reads_all

# a wrong old key is a key error and leaves the store as it was
only "ATREST_OLD_KEY=$B" "ATREST_KEY=$A"
check_exit 5 atrest rewrap
only "ATREST_KEY=$A"
check_exit 5 atrest ls
only "ATREST_KEY=$C"
reads_all

# C -> passphrase
only "ATREST_OLD_KEY=$C" "ATREST_PASSPHRASE=$PASS"
check_exit 0 atrest rewrap
check_out '^keyring rewrapped under master key passphrase [^ ]+ \(was fp:[0-9a-f]{16}\)$'
only "ATREST_KEY=$C"
check_exit 5 atrest ls
only "ATREST_PASSPHRASE=$PASS"
reads_all
only "ATREST_PASSPHRASE=$PASS."
check_exit 5 atrest ls
check "the passphrase is not echoed" not grep -q gently "$T/out" "$T/err"

# passphrase -> key file, by opening
only "ATREST_OLD_PASSPHRASE=$PASS" "ATREST_KEY_FILE=$T/keyfile"
check_exit 0 atrest ls
only "ATREST_PASSPHRASE=$PASS"
check_exit 5 atrest ls
only "ATREST_KEY_FILE=$T/keyfile"
reads_all

# key file -> another passphrase -> key file again
only "ATREST_OLD_KEY_FILE=$T/keyfile" "ATREST_PASSPHRASE=second $PASS"
check_exit 0 atrest rewrap
only "ATREST_OLD_PASSPHRASE=second $PASS" "ATREST_KEY_FILE=$T/keyfile2"
check_exit 0 atrest rewrap
check_out '^keyring rewrapped under master key key-file [^ ]+ \(was [^ ]+\)$'
only "ATREST_PASSPHRASE=second $PASS"
check_exit 5 atrest ls
only "ATREST_KEY_FILE=$T/keyfile"
check_exit 5 atrest ls
only "ATREST_KEY_FILE=$T/keyfile2"
reads_all
untouched "$T/store" "$T/before"
check_exit 0 atrest verify
check_out '^verified 4 objects, 0 failed$'

# 2,000 objects: the rewrap touches none of them
mkdir -p "$T/big"
$PY -c 'import os,sys
for i in range(2000):
    d = os.path.join(sys.argv[1], "part-%d" % (i % 10))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "chk-%04d" % i), "wb") as f:
        f.write(os.urandom(64 + i % 300))' "$T/big" || fail "making 2000 files"
only "ATREST_KEY=$A"
check_exit 0 atrest --store "$T/big" migrate
check_out '^migrated 2000 plaintext objects '
objects_state "$T/big" "$T/big.before"
only "ATREST_OLD_KEY=$A" "ATREST_KEY=$B"
check_exit 0 atrest --store "$T/big" rewrap
untouched "$T/big" "$T/big.before"
only "ATREST_KEY=$A"
check_exit 5 atrest --store "$T/big" ls
only "ATREST_KEY=$B"
check_exit 0 atrest --store "$T/big" ls
check "all 2000 objects listed" test "$(wc -l <"$T/out")" -eq 2000
check_exit 0 atrest --store "$T/big" verify
check_out '^verified 2000 objects, 0 failed$'
echo "all rewrap checks passed"
