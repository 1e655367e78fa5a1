#!/bin/sh
# The everyday commands end to end: keygen, init, put/get round trips at
# segment boundaries, stdin/stdout, metadata, ls in its three forms, rm,
# config, and --help everywhere.
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"

# keygen
check_exit 0 atrest keygen
check "keygen prints 64 lowercase hex digits" \
	grep -Eqx '[0-9a-f]{64}' "$T/out"
check_exit 0 atrest keygen --base64
check "keygen --base64 prints base64 of 32 bytes" \
	test "$(base64 -d <"$T/out" | wc -c)" -eq 32
new_key
check "keygen -o makes a mode 0600 file" \
	test "$(stat -c %a "$T/key")" = 600
check "the key file holds 64 hex digits" grep -Eqx '[0-9a-f]{64}' "$T/key"
cp "$T/key" "$T/key.orig"
check_exit 1 atrest keygen -o "$T/key"
check_err 'already exists'
same "$T/key" "$T/key.orig"

# init
check_exit 0 atrest init --cipher chacha20-poly1305 --segment-size 4KiB
check_out "^initialized store $T/store \(cipher chacha20-poly1305, segment size 4096, store id [0-9a-f]{32}\)$"
check_exit 1 atrest init
check_err "store $T/store already exists"
check_exit 2 atrest init --cipher rot13
check_exit 2 atrest --store "$T/s2" init --segment-size 12Q
check_exit 2 atrest --store "$T/s2" init --segment-size 1
check "a refused init creates nothing" test ! -e "$T/s2"

# config
check_exit 0 atrest config
check_out '^cipher = chacha20-poly1305$'
check_out '^segment-size = 4096$'
check_out '^rotate-days = [0-9]+$'
check_out '^force-days = [0-9]+$'
check_exit 0 atrest config cipher aes-256-gcm
check_exit 0 atrest config segment-size 64K
check_exit 0 atrest config rotate-days 7
check_exit 0 atrest config cipher
check "config KEY prints the value" test "$(cat "$T/out")" = aes-256-gcm
check_exit 0 atrest config segment-size
check "segment-size 64K is 65536" test "$(cat "$T/out")" = 65536
check_exit 0 atrest config rotate-days
check "rotate-days was set" test "$(cat "$T/out")" = 7
check_exit 2 atrest config colour blue
check_exit 2 atrest config cipher rot13
check_exit 2 atrest config rotate-days -3
check_exit 2 atrest config cipher aes-256-gcm extra

# put/get round trips at the segment boundaries, from files and pipes
for n in 0 1 65535 65536 65537 1048577 3145733; do
	head -c "$n" /dev/urandom >"$T/in.$n"
	check_exit 0 atrest put "sizes/$n" "$T/in.$n"
	check_exit 0 atrest get "sizes/$n" -o "$T/back.$n"
	same "$T/in.$n" "$T/back.$n"
	check "get -o makes a mode 0600 file" \
		test "$(stat -c %a "$T/back.$n")" = 600
	check_exit 0 atrest get "sizes/$n"
	same "$T/in.$n" "$T/out"
done
check_exit 0 atrest put piped <"$T/in.65537"
check_exit 0 atrest get piped
same "$T/in.65537" "$T/out"
check_exit 0 atrest put dash - <"$T/in.1048577"
check_exit 0 atrest get dash -o -
same "$T/in.1048577" "$T/out"
check "stored objects are not plaintext" \
	not cmp -s "$T/in.65537" "$T/store/sizes/65537"

# metadata, odd names, ls
check_exit 0 atrest put --meta job=42 --meta "note=a b=c" job/meta "$T/in.1"
check_exit 2 atrest put --meta novalue job/x "$T/in.1"
weird='odd/sp ace "quoted" back\slash ünï'
check_exit 0 atrest put "$weird" "$T/in.1"
check_exit 0 atrest ls
check_out '^sizes/65536$'
check_out '^piped$'
check "ls lists each object once" \
	test "$(wc -l <"$T/out")" -eq 11
check_exit 0 atrest ls sizes/6553
check "ls PREFIX lists just that prefix" \
	test "$(tr '\n' ' ' <"$T/out")" = "sizes/65535 sizes/65536 sizes/65537 "
check_exit 0 atrest ls -l sizes/65537
check_out "^ +65537 +[0-9]+ [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z aes-256-gcm +[0-9]+ sizes/65537$"
check_out "^ +SIZE +STORED MODIFIED +CIPHER +KEY NAME$"
check_out "^total: 1 object, 65537 bytes of data, [0-9]+ bytes stored$"
check_exit 0 atrest ls --json
json 'len(j) == 11 and all(set(o) == {"name", "stored_size", "mtime"} for o in j)'
json '"odd/sp ace \"quoted\" back\\slash ünï" in [o["name"] for o in j]'
check_exit 0 atrest ls -l --json job/
json 'j[0]["name"] == "job/meta" and j[0]["size"] == 1'
json 'j[0]["cipher"] == "aes-256-gcm" and isinstance(j[0]["data_key_id"], int)'
json 'j[0]["meta"] == {"job": "42", "note": "a b=c"}'
check_exit 0 atrest ls --json nothing-here
json 'j == []'

# rm
check_exit 0 atrest rm sizes/0
check_exit 3 atrest get sizes/0
check_exit 3 atrest rm sizes/0

# --help on every command, globally, and through 'help'
for c in keygen init config put get ls rm inspect verify help; do
	check_exit 0 atrest "$c" --help
	check_out "^usage: atrest $c"
	check_exit 0 atrest "$c" -h
done
check_exit 0 atrest --help
check_out '^commands:'
check_exit 0 atrest help get
check_out '^usage: atrest get'
check_exit 0 atrest --version
echo "all basic checks passed"
