#!/bin/sh
# inspect needs no key and does not open the store: text and JSON header
# facts for each cipher, by object name and by path; hostile input is an
# integrity error.
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"

new_key
printf 'checkpoint\n' >"$T/data"
for c in aes-256-gcm chacha20-poly1305 aes-256-cbc-hmac-sha256; do
	check_exit 0 atrest --store "$T/s-$c" init --cipher "$c" --segment-size 2K
	check_exit 0 atrest --store "$T/s-$c" put "job/$c" "$T/data"
	check_exit 0 atrest --store "$T/s-$c" config
	grep '^segment-size = 2048$' "$T/out" >/dev/null || fail "segment size"
done
saved_key=$ATREST_KEY_FILE
unset ATREST_KEY_FILE

for c in aes-256-gcm chacha20-poly1305 aes-256-cbc-hmac-sha256; do
	check_exit 0 atrest --store "$T/s-$c" inspect --json "job/$c"
	json "j[\"cipher\"] == \"$c\" and j[\"segment_size\"] == 2048"
	json "j[\"name\"] == \"job/$c\" and j[\"context\"][\"name\"] == \"job/$c\""
	json 'j["data_key_id"] >= 1 and j["version"] >= 1 and j["form"] == "object"'
	json 'len(j["store_id"]) == 32 and j["context"]["store_id"] == j["store_id"]'
	json 'j["tenant"] == "" and j["context"]["tenant"] == ""'
	json 'j["plaintext_size"] == 11 and j["segments"] >= 1'
	json 'j["header_size"] > 0 and j["stored_size"] > j["plaintext_size"]'
	json 'all(k in j for k in ("version","form","cipher","segment_size","data_key_id","store_id","tenant","name","header_size","meta_size","stored_size","plaintext_size","segments","context"))'
	sz=$(size "$T/s-$c/job/$c")
	json "j[\"stored_size\"] == $sz"
	check_exit 0 atrest inspect "$T/s-$c/job/$c"
	check_out "^cipher: $c$"
	check_out "^name: job/$c$"
	check_out '^segment_size: 2048$'
	check_out '^data_key_id: [0-9]+$'
done

# The store id matches the one init printed; inspect by path needs no store.
env ATREST_KEY_FILE="$saved_key" "$ATREST_BIN" --store "$T/s-id" init >"$T/init.txt"
env ATREST_KEY_FILE="$saved_key" "$ATREST_BIN" --store "$T/s-id" put a "$T/data"
id=$(sed -n 's/.*store id \([0-9a-f]*\))$/\1/p' "$T/init.txt")
cp "$T/s-id/a" "$T/copy-of-a"
check_exit 0 atrest --store "$T/nowhere" inspect --json "$T/copy-of-a"
json "j[\"store_id\"] == \"$id\" and j[\"name\"] == \"a\""
check "inspect did not create a store" test ! -e "$T/nowhere"

# Metadata is counted, not shown.
env ATREST_KEY_FILE="$saved_key" "$ATREST_BIN" --store "$T/s-id" put --meta secret=swordfish m "$T/data"
check_exit 0 atrest --store "$T/s-id" inspect --json m
json 'j["meta_size"] > 0'
check "metadata is not shown" not grep -q swordfish "$T/out"

# Bad input.
check_exit 2 atrest --store "$T/s-id" inspect ../etc/passwd
check_exit 3 atrest --store "$T/s-id" inspect nope
head -c 100000 /dev/urandom >"$T/random.bin"
check_exit 4 atrest inspect "$T/random.bin"
check_err "$T/random.bin is not an atrest object"
printf 'ATREST' >"$T/short.bin"
check_exit 4 atrest inspect "$T/short.bin"
head -c 100 "$T/copy-of-a" >"$T/cut.bin"
check_exit 4 atrest inspect "$T/cut.bin"
echo "all inspect checks passed"
