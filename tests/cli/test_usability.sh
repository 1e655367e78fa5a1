#!/bin/sh
# What a new user meets first: global options after the command, exit 3
# for every missing input, ls -l/-h/-0 and its header and total, rm of
# several names or a prefix, commands that need no key, messages that name
# a thing once and without internal module names, a store path whose parent
# is missing refused, key-check --tenant and audit verify's default place.
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"

new_key
printf 'hello\n' >"$T/small"
head -c 300000 /dev/urandom >"$T/big"

# Global options after the command, and among the command's own options.
check_exit 0 atrest put a/one "$T/small" --store "$T/s"
check_exit 0 atrest put --store="$T/s" a/two "$T/big"
check_exit 0 atrest ls --store "$T/s"
check "ls --store after the command lists that store" \
	test "$(tr '\n' ' ' <"$T/out")" = "a/one a/two "
check_exit 0 atrest get a/one --store "$T/s" -o "$T/got"
same "$T/small" "$T/got"
check_exit 2 atrest ls --store ""
check_err "needs a location"
check_exit 2 atrest ls --store
check_err "option '--store' needs a value"
check "nothing was made in the default store" test ! -e "$T/store"
# --json before the command is the command's own --json.
check_exit 0 atrest --json --store "$T/s" ls
json 'sorted(o["name"] for o in j) == ["a/one", "a/two"]'
check_exit 0 atrest --store "$T/s" --json keys
json 'len(j) == 1 and j[0]["status"] == "active"'
check_exit 2 atrest --json --store "$T/s" rotate
check_err "unknown option '--json'"
export ATREST_STORE="$T/s"
check_exit 0 atrest tenant add acme
check_exit 0 atrest put x/t "$T/small" --tenant acme
check_exit 0 atrest ls --tenant acme
check "ls --tenant after the command lists the tenant's objects" \
	test "$(cat "$T/out")" = x/t
check_exit 0 atrest ls
check_out '^a/one$'
not grep -q x/t "$T/out" || fail "the tenant's object shows in the store's list"
mkdir -p "$T/s/legacy"
printf 'plain' >"$T/s/legacy/old"
check_exit 4 atrest get legacy/old
check_exit 0 atrest get legacy/old --allow-plaintext
check "--allow-plaintext after the command" test "$(cat "$T/out")" = plain
rm -r "$T/s/legacy"

# Exit 3 for every missing input, as for a missing object.
check_exit 3 atrest get a/nope
check_err "^atrest: get: no object 'a/nope' in store $T/s$"
check_exit 3 atrest put a/x "$T/nope"
check_exit 3 atrest put a/x --meta-file "$T/nope" "$T/small"
check_exit 3 atrest encrypt "$T/nope" -o "$T/enc"
check_exit 3 atrest decrypt "$T/nope" -o "$T/dec"
check_err "^atrest: decrypt $T/nope: No such file or directory$"
check_exit 3 atrest put -r "$T/nope" snap/1
check_exit 3 atrest audit verify --pubkey "$T/nope"
check_exit 3 atrest --store "$T/no-store" ls
check_exit 3 atrest --store "$T/no-store" ls -l
check "no input, no output" test ! -e "$T/enc" -a ! -e "$T/dec" -a ! -e "$T/no-store"
# An output whose directory is missing is an error (1), not "not found".
check_exit 1 atrest get a/one -o "$T/no-dir/x"

# Messages: no internal module names; a long name once, shortened.
long=$(printf 'n%.0s' $(seq 200))
check_exit 3 atrest get "d/$long"
check_err "^atrest: get: no object 'd/n{28}\.\.\.n{30}' in store $T/s$"
check_exit 2 atrest get "d/$long$long"
check_err '^atrest: get: invalid name "d/n+\.\.\.": a component is over 255 bytes$'
check_exit 3 atrest rm a/nope
check_err "^atrest: rm: no object 'a/nope' in store $T/s$"
check_exit 3 atrest --tenant ghost ls
check_err "^atrest: ls: no tenant 'ghost' in store $T/s"
check_exit 3 atrest ls --tenant ghost -l
check_err "no tenant 'ghost'"
if grep -rq "fs: \|s3: " "$T/err"; then fail "a module name in a message"; fi

# ls: -l header and total, -h sizes, -0, --help (not -h) for help.
check_exit 0 atrest ls -l a/
check_out '^ +SIZE +STORED +MODIFIED +CIPHER +KEY +NAME$'
check_out '^ +6 +[0-9]+ [0-9T:Z-]+ aes-256-gcm +[0-9]+ a/one$'
check_out '^ +300000 +[0-9]+ [0-9T:Z-]+ aes-256-gcm +[0-9]+ a/two$'
check_out '^total: 2 objects, 300006 bytes of data, [0-9]+ bytes stored$'
check_exit 0 atrest ls -lh a/
check_out '^ +293K +29[0-9]K .* a/two$'
check_out '^total: 2 objects, 293K of data, 29[0-9]K stored$'
check_exit 0 atrest ls --long --human-readable a/
check_out ' a/two$'
check_exit 0 atrest ls -0
check "ls -0 ends each name with NUL" \
	test "$(od -An -c "$T/out" | tr -s ' \n' ' ')" = " a / o n e \0 a / t w o \0 "
check_exit 0 atrest ls -l0 a/one
check "ls -l0: no header, no total" test "$(tr '\0' '\n' <"$T/out" | wc -l)" -eq 1
check_exit 0 atrest ls --help
check_out '^usage: atrest ls'
check_out '-h, --human-readable'
check_exit 0 atrest ls -h
check "ls -h lists (it is not help)" test "$(wc -l <"$T/out")" -eq 2
check_exit 0 atrest ls --json
json 'sorted(o["name"] for o in j) == ["a/one", "a/two"]'

# Commands that need no key do not ask for one.
unset ATREST_KEY_FILE
check_exit 0 atrest ls
check "ls without a key" test "$(tr '\n' ' ' <"$T/out")" = "a/one a/two "
check_exit 0 atrest ls a/o --tenant acme
check_exit 0 atrest ls --tenant acme
check "ls --tenant without a key" test "$(cat "$T/out")" = x/t
check_exit 0 atrest ls --json
json 'len(j) == 2'
check_exit 5 atrest ls -l
check_err "no master key"
check_exit 0 atrest config
check_out '^cipher = aes-256-gcm$'
check_exit 0 atrest inspect a/one
check_out '^cipher: aes-256-gcm$'
check_exit 0 atrest keys
check_out '^[0-9]+ +active +[0-9T:Z-]+ +- +-$'
check_err "NOT authenticated"
check_exit 0 atrest keys --json
json 'len(j) == 1 and j[0]["status"] == "active" and j[0]["objects"] is None'
check_exit 5 atrest keys --scan
check_exit 5 atrest get a/one
check_exit 5 atrest rm a/one
export ATREST_KEY_FILE="$T/key"
# With a key, ls checks it: a wrong key is refused, not ignored.
check_exit 5 env ATREST_KEY_FILE= ATREST_KEY="$(atrest keygen)" "$ATREST_BIN" ls

# rm: several names, a prefix; an empty prefix is refused.
for n in b/1 b/2 b/3 c/1; do check_exit 0 atrest put "$n" "$T/small"; done
check_exit 3 atrest rm b/1 b/nope b/2
check_err "no object 'b/nope'"
check_exit 0 atrest ls b/
check "rm NAME... removed the others" test "$(cat "$T/out")" = b/3
check_exit 0 atrest put b/4 "$T/small"
check_exit 2 atrest rm --prefix ""
check_exit 2 atrest rm --prefix b/ c/1
check_exit 0 atrest rm --prefix b/
check_exit 0 atrest ls
check "rm --prefix removed just that prefix" \
	test "$(tr '\n' ' ' <"$T/out")" = "a/one a/two c/1 "

# A store is made in an existing directory, never with its parents.
check_exit 3 atrest --store "$T/typo/dir/store" put x "$T/small"
check_err "parent directory does not exist"
check "nothing made for a store path with a missing parent" test ! -e "$T/typo"
check_exit 0 atrest --store "$T/new-store" put x "$T/small"
check "the store's own directory is made, mode 0700" \
	test "$(stat -c %a "$T/new-store")" = 700

# key-check --tenant: the tenant's keyring.
check_exit 0 atrest key-check --tenant acme
check_exit 0 atrest --tenant acme key-check
check_exit 3 atrest key-check --tenant ghost
check_exit 5 env ATREST_KEY_FILE= ATREST_KEY="$(atrest keygen)" "$ATREST_BIN" \
	key-check --tenant acme

# audit verify: by default the trail of the store named, however named.
check_exit 0 atrest audit verify
check_out "of $T/s/.atrest/audit"
check_exit 0 atrest audit verify --store "file://$T/s"
check_out "of $T/s/.atrest/audit"
check_exit 2 atrest audit verify --store s3://bucket/prefix
check_err "ATREST_AUDIT"
echo "all usability checks passed"
