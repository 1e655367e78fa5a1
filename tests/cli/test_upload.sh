#!/bin/sh
# Multipart uploads from the command line: create, parts in any order from
# files and stdin, list, complete, the object read whole and by ranges
# across parts, verified, a damaged part named, create-only completion,
# abort, cleanup by age, rm removing the parts, and the usage errors.
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"
new_key
check_exit 0 atrest init --segment-size 4K
head -c 10000 /dev/urandom >"$T/p1"
head -c 4096 /dev/urandom >"$T/p2"
head -c 777 /dev/urandom >"$T/p3"
cat "$T/p1" "$T/p2" "$T/p3" >"$T/all"

parts() { # files under the store's upload area
	find "$ATREST_STORE/.atrest/uploads" -type f 2>/dev/null | grep -vc '\.tmp' || true
}

check_exit 0 atrest upload create big/obj
ID=$(cat "$T/out")
check "an upload id is printable" expr "$ID" : '[0-9a-f]\{32\}$' >/dev/null
check_exit 0 atrest upload part big/obj "$ID" 3 "$T/p3"
check_exit 0 atrest upload part big/obj "$ID" 1 "$T/p1"
check_exit 0 sh -c "'$ATREST_BIN' upload part big/obj '$ID' 2 <'$T/p2'"
check_exit 0 atrest upload list
check_out "^[0-9T:-]+Z $ID big/obj$"
check_exit 0 atrest upload list --json
json 'len(j) == 1 and j[0]["name"] == "big/obj" and j[0]["upload_id"] == "'"$ID"'"'
check_exit 3 atrest get big/obj
check_exit 0 atrest upload complete big/obj "$ID" 1 2 3
check_exit 0 atrest upload list
check "no upload in progress after completion" test ! -s "$T/out"

check_exit 0 atrest get big/obj -o "$T/got"
same "$T/all" "$T/got"
check_exit 0 atrest get big/obj --range 9990-10100
tail -c +9991 "$T/all" | head -c 111 >"$T/want"
same "$T/want" "$T/out"
check_exit 0 atrest ls
check "the object is listed once, nothing else" test "$(cat "$T/out")" = big/obj
check_exit 0 atrest ls -l --json
json 'j[0]["size"] == 14873'
check_exit 0 atrest verify
check_out 'verified 1 objects, 0 failed'
check_exit 0 atrest inspect big/obj --json
json 'j["form"] == "multipart"'

# a damaged part is an integrity failure that names it
P2=$(find "$ATREST_STORE/.atrest/uploads/$ID" -name '00002-*')
cp "$P2" "$T/p2.saved"
flip "$P2" -10
check_exit 4 atrest verify
grep -q 'part 2' "$T/err" || fail "verify does not name part 2: $(cat "$T/err")"
ok "verify names the damaged part"
check_exit 4 atrest get big/obj -o "$T/bad"
check "no output left after a failed get" test ! -e "$T/bad"
cp "$T/p2.saved" "$P2"
check_exit 0 atrest get big/obj --range 0-9

# create-only completion
check_exit 0 atrest upload create big/obj
ID2=$(cat "$T/out")
check_exit 0 atrest upload part big/obj "$ID2" 1 "$T/p3"
check_exit 1 atrest upload complete --if-absent big/obj "$ID2" 1
check_err 'exists'
check_exit 2 atrest upload complete big/obj "$ID2" 2 1
check_exit 0 atrest upload abort big/obj "$ID2"
check_exit 3 atrest upload abort big/obj "$ID2"
check_exit 3 atrest upload part big/obj "$ID2" 1 "$T/p3"

# rm removes the parts with the object
check "parts and record are kept while the object lives" test "$(parts)" = 4
check_exit 0 atrest rm big/obj
check "rm removes the parts" test "$(parts)" = 0

# cleanup by age
check_exit 0 atrest upload create old
ID3=$(cat "$T/out")
check_exit 0 atrest upload part old "$ID3" 1 "$T/p3"
check_exit 0 atrest upload cleanup --older-than 1h
check_out '^0 uploads removed$'
sleep 2
check_exit 0 atrest upload cleanup --older-than 1
check_out '^1 uploads removed$'
check "cleanup removes the parts" test "$(parts)" = 0

# usage errors
check_exit 2 atrest upload
check_exit 2 atrest upload nosuch
check_exit 2 atrest upload cleanup
check_exit 2 atrest upload cleanup --older-than 5y
check_exit 2 atrest upload cleanup --older-than -5
check_exit 2 atrest upload part x "$ID3" 0 "$T/p3"
check_exit 2 atrest upload complete x "$ID3"
check_exit 0 atrest upload --help
check_out 'cleanup --older-than DUR'
check_exit 0 atrest --help
check_out 'upload'
