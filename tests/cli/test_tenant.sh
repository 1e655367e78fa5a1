#!/bin/sh
# Tenants from the command line: add (the store's key, a key file of its
# own), list, --tenant on every command (separate names, keys, settings),
# a file moved between tenants refused, shred (keys first, then objects),
# and the usage errors.
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"

new_key
printf 'default data\n' >"$T/d0"
printf 'acme data\n' >"$T/d1"
check_exit 0 atrest put x "$T/d0"

# add and list
check_exit 0 atrest tenant add acme
check_out '^tenant acme added \(master key: the store.s\)$'
check_exit 1 atrest tenant add acme
check_err 'already exists'
atrest keygen -o "$T/beta.key"
check_exit 0 atrest tenant add beta --key-file "$T/beta.key"
check_out 'its own, from a key file'
check_exit 0 atrest tenant list --json
json '[t["name"] for t in j] == ["acme", "beta"]'
json 'j[0]["key_file"] is None and j[1]["key_file"] == "'"$T/beta.key"'"'
json 'all(len(t["keyring_id"]) == 32 for t in j)'
check_exit 0 atrest tenant list
check_out '^acme +[0-9a-f]{32} store$'
check_out "^beta +[0-9a-f]{32} key-file $T/beta.key$"

# the same name in two tenants: two objects, lists never mix
check_exit 0 atrest --tenant acme put x "$T/d1"
check_exit 0 atrest --tenant acme put only/acme "$T/d1"
check_exit 0 atrest get x
same "$T/out" "$T/d0"
check_exit 0 atrest --tenant acme get x
same "$T/out" "$T/d1"
check_exit 0 atrest ls
check "the default tenant lists its own names only" test "$(cat "$T/out")" = x
check_exit 0 atrest --tenant acme ls
check "acme lists its own names only" test "$(tr '\n' ' ' <"$T/out")" = "only/acme x "
check_exit 3 atrest get only/acme
check_exit 0 atrest --tenant beta ls
check "beta is empty" test ! -s "$T/out"
check_exit 0 atrest --tenant acme inspect --json x
json 'j["tenant"] == "acme" and j["name"] == "x"'
check_exit 0 atrest --tenant acme verify
check_out '^verified 2 objects, 0 failed$'

# own keys, rotation and settings per tenant
check_exit 0 atrest --tenant acme rotate
check_exit 0 atrest --tenant acme keys --json
json 'len(j) == 2'
check_exit 0 atrest keys --json
json 'len(j) == 1'
check_exit 0 atrest --tenant acme config segment-size 4K
check_exit 0 atrest config segment-size
check_out '^65536$'
check_exit 0 atrest --tenant acme config segment-size
check_out '^4096$'
old=$(key_id 0 --tenant acme)
check_exit 0 atrest --tenant acme reencrypt --data-key "$old"
check_out '^re-encrypted 2 of 2 objects'

# a tenant with its own master key: only the reference is in the store
check_exit 0 atrest --tenant beta put b "$T/d1"
check "the key is not in the store's keyring" \
	not grep -q "$(cat "$T/beta.key")" "$T/store/.atrest/keyring"
check "its path is" grep -q "$T/beta.key" "$T/store/.atrest/keyring"
mv "$T/beta.key" "$T/beta.key.away"
check_exit 5 atrest --tenant beta get b
mv "$T/beta.key.away" "$T/beta.key"
check_exit 0 atrest --tenant beta get b
same "$T/out" "$T/d1"

# a file moved from one tenant to another does not open
cp "$T/store/.atrest/tenants/acme/objects/x" "$T/store/.atrest/tenants/beta/objects/x"
check_exit 4 atrest --tenant beta get x
cp "$T/store/.atrest/tenants/acme/objects/x" "$T/store/moved"
check_exit 4 atrest get moved
rm "$T/store/moved" "$T/store/.atrest/tenants/beta/objects/x"

# shred: keys first (a saved copy of an object never opens again), then
# the objects, the keyring and the entry; the others are untouched
cp "$T/store/.atrest/tenants/acme/objects/x" "$T/saved"
check_exit 0 atrest tenant shred acme
check_out '^tenant acme shredded: its data keys destroyed, 2 objects removed$'
check "acme's directory is gone" test ! -e "$T/store/.atrest/tenants/acme"
check_exit 0 atrest tenant list --json
json '[t["name"] for t in j] == ["beta"]'
check_exit 3 atrest --tenant acme ls
check_err "no tenant 'acme'"
check_exit 3 atrest tenant shred acme
check_exit 0 atrest get x
same "$T/out" "$T/d0"
check_exit 0 atrest --tenant beta get b
check_exit 0 atrest tenant add acme
mkdir -p "$T/store/.atrest/tenants/acme/objects"
cp "$T/saved" "$T/store/.atrest/tenants/acme/objects/x"
check_exit 4 atrest --tenant acme get x

# usage errors
check_exit 2 atrest tenant
check_exit 2 atrest tenant frob
check_exit 2 atrest tenant add
check_exit 2 atrest tenant add a b
check_exit 2 atrest tenant add z --key-uri pkcs11:x --key-file "$T/beta.key"
check_exit 2 atrest tenant add "bad/name"
check_exit 2 atrest --tenant acme tenant list
check_exit 2 atrest --tenant acme init
check_exit 0 atrest tenant --help
check_out '^usage: atrest tenant add'
check_exit 3 atrest --store "$T/none" tenant list
check "no store was created" test ! -e "$T/none"
echo "all tenant checks passed"
