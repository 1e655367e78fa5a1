#!/bin/sh
# Attacks on a local store through the file system, reproduced: links
# planted in .atrest/tmp (no command may delete outside the store), a link
# to a directory outside on the way to an object (put, rm, get refuse it),
# FIFOs as locks (nothing hangs), a read-only store (as another user and on
# a read-only mount: readers work), a new keyring beside objects (refused;
# init --force), a keyring rolled back (reported), settings shown without a
# key, and --store file:// URIs.
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"

new_key
printf 'one\n' >"$T/one"
check_exit 0 atrest put a/one "$T/one"

# victim DIR: a directory outside the store with files we must keep.
victim() {
	mkdir -p "$1"
	printf 'precious\n' >"$1/keep"
	printf 'outside\n' >"$1/y"
}
intact() {
	test -f "$1/keep" && test -f "$1/y" && test ! -e "$1/x" ||
		fail "files outside the store were touched: $(ls -A "$1")"
	ok "nothing outside the store was touched"
}

# links in .atrest/tmp, a stale lock beside one: readers and writers run
victim "$T/v1"
ln -s "$T/v1" "$T/store/.atrest/tmp/00000000deadbeef"
: >"$T/store/.atrest/tmp/00000000deadbeef.lock"
ln -s "$T/v1" "$T/store/.atrest/tmp/00000000000000a1"
ln -s "$T/v1/keep" "$T/store/.atrest/tmp/00000000000000a2.lock"
check_exit 0 atrest ls
check_exit 0 atrest get a/one
intact "$T/v1"
check_exit 0 atrest put a/two "$T/one"
intact "$T/v1"
check "the planted links are gone" \
	test ! -e "$T/store/.atrest/tmp/00000000deadbeef" -a ! -h "$T/store/.atrest/tmp/00000000000000a1"

# .atrest/tmp a link: readers work, writers refuse
mv "$T/store/.atrest/tmp" "$T/tmp.real"
ln -s "$T/v1" "$T/store/.atrest/tmp"
check_exit 0 atrest get a/one
check_exit 1 atrest put a/three "$T/one"
check_err 'not a directory'
intact "$T/v1"
rm "$T/store/.atrest/tmp"
mv "$T/tmp.real" "$T/store/.atrest/tmp"

# a link to a directory outside on the way to an object
victim "$T/v2"
ln -s "$T/v2" "$T/store/l"
check_exit 1 atrest put l/x "$T/one"
check_err "'l' in store .* is a symbolic link"
check_exit 1 atrest rm l/y
check_err "'l' in store .* is a symbolic link"
check_exit 1 atrest --allow-plaintext get l/y
check_err "'l' in store .* is a symbolic link"
check "nothing was printed" test ! -s "$T/out"
check_exit 0 atrest ls
check "the listing does not enter the link" not grep -q '^l/' "$T/out"
intact "$T/v2"
rm "$T/store/l"

# FIFOs: as a temp lock and as the store's lock, nothing hangs
mkfifo "$T/store/.atrest/tmp/0123456789abcdef.lock"
check_exit 0 timeout 60 "$ATREST_BIN" put a/four "$T/one"
check "the FIFO was cleaned" test ! -e "$T/store/.atrest/tmp/0123456789abcdef.lock"
rm -f "$T/store/.atrest/lock"
mkfifo "$T/store/.atrest/lock"
check_exit 1 timeout 60 "$ATREST_BIN" put a/five "$T/one"
check_err 'not a regular file'
check_exit 0 timeout 60 "$ATREST_BIN" get a/one
rm "$T/store/.atrest/lock"

# a read-only store: as another user (nobody) ...
if [ "$(id -u)" = 0 ]; then
	chmod 0755 "$T"
	chmod -R go+rX "$T/store"
	cp "$T/key" "$T/nobody.key"
	chown 65534 "$T/nobody.key"
	before=$(ls -A "$T/store/.atrest/tmp" | LC_ALL=C sort)
	ro() {
		setpriv --reuid=65534 --regid=65534 --clear-groups \
			env ATREST_KEY_FILE="$T/nobody.key" XDG_STATE_HOME=/nonexistent \
			"$ATREST_BIN" "$@"
	}
	check_exit 0 ro get a/one
	same "$T/out" "$T/one"
	check_exit 0 ro ls
	check_out '^a/one$'
	check_exit 0 ro verify
	check_out '^verified 3 objects, 0 failed$'
	check_exit 0 ro keys
	check_exit 1 ro put a/six "$T/one"
	check "readers made nothing in .atrest/tmp" \
		test "$(ls -A "$T/store/.atrest/tmp" | LC_ALL=C sort)" = "$before"
	# ... and on a read-only mount
	mkdir "$T/ro"
	check_exit 0 unshare -m sh -c 'mount --bind -o ro "$1" "$2" &&
		"$3" --store "$2" get a/one >"$4/ro.out" &&
		"$3" --store "$2" verify >/dev/null &&
		! "$3" --store "$2" put a/six "$4/one" 2>"$4/ro.err"' sh \
		"$T/store" "$T/ro" "$ATREST_BIN" "$T"
	same "$T/ro.out" "$T/one"
	grep -q 'Read-only file system' "$T/ro.err" || fail "no EROFS: $(cat "$T/ro.err")"
	ok "a read-only mount reads, and refuses writes"
	chmod 0700 "$T"
else
	echo "ok - read-only store checks need root (setpriv, mount): not run as uid $(id -u)"
fi

# no new keyring beside atrest objects
mv "$T/store/.atrest" "$T/atrest.saved"
check_exit 4 atrest put a/six "$T/one"
check_err "holds atrest objects .* no keyring"
check_exit 4 atrest init
check_err 'init --force'
check_exit 4 atrest get a/one
check_err 'no keyring'
check "no keyring was made" test ! -e "$T/store/.atrest/keyring"
rm -rf "$T/store/.atrest"
mv "$T/atrest.saved" "$T/store/.atrest"
check_exit 0 atrest get a/one
cp -a "$T/store" "$T/store2"
rm -rf "$T/store2/.atrest"
check_exit 0 atrest --store "$T/store2" init --force
check_exit 4 atrest --store "$T/store2" get a/one
check_exit 1 atrest init
check_err 'already exists'

# a keyring rolled back to an older copy
cp "$T/store/.atrest/keyring" "$T/keyring.old"
check_exit 0 atrest rotate
check_exit 0 atrest put a/seven "$T/one"
cp "$T/keyring.old" "$T/store/.atrest/keyring"
check_exit 4 atrest get a/one
check_err 'rolled back to an older copy .* remove .*generations'
rm -rf "$XDG_STATE_HOME/atrest/generations"
check_exit 0 atrest get a/one
check_exit 4 atrest get a/seven
check_err 'not in this store.s keyring'

# settings: without a key, shown as written with a note
check_exit 0 env -u ATREST_KEY_FILE "$ATREST_BIN" config
check_out '^cipher = aes-256-gcm$'
check_err 'NOT authenticated'
check_exit 0 atrest config
check "with the key, no note" test ! -s "$T/err"

# --store file:// URIs
check_exit 0 atrest --store "file://$T/store" get a/one
same "$T/out" "$T/one"
check_exit 0 atrest --store "file://localhost$T/store" ls
check_exit 2 atrest --store "nosuch://bucket/x" ls
check_err 'unknown scheme'
echo "all store safety checks passed"
