#!/bin/sh
# Listing an S3 store past one page (1,000 keys) and past 10,000 keys:
# every name once, in byte order, across continuation tokens; prefixes that
# start and end inside pages; the store's own keys (.atrest/) hidden even
# when thousands of them sit between two pages of names; aws and s3cmd
# count the same.  The keys are filled raw by 16 threads (s3_tool fill).
set -eu
. "$ATREST_SRC/tests/service/lib/s3.sh"
new_key
check_exit 0 atrest init
loc="s3://$BUCKET/store"
"$S3_TOOL" fill "$loc" "many/k" 10001 16 || fail "filling 10,001 keys failed"
# Names around the store's own keys: "+" sorts before ".", "0" after.
"$S3_TOOL" fill "$loc" ".atrest/filler/k" 1500 16 || fail "filling .atrest/ failed"
for n in +before .a .b 0after; do
	check_exit 0 atrest put "$n" "$T/out"
done
ok "10,001 + 1,500 + 4 keys in the bucket"

check_exit 0 atrest ls
[ "$(wc -l <"$T/out")" -eq 10005 ] || fail "atrest ls listed $(wc -l <"$T/out") names"
{
	printf '%s\n' +before .a .b 0after
	seq -f 'many/k%05g' 0 10000
} | LC_ALL=C sort >"$T/want"
same "$T/want" "$T/out"
ok "atrest ls: 10,005 names in byte order, .atrest/ hidden"
check_exit 0 atrest ls many/k05
[ "$(wc -l <"$T/out")" -eq 1000 ] || fail "prefix many/k05: $(wc -l <"$T/out")"
check_exit 0 atrest ls many/k1000
[ "$(cat "$T/out")" = "many/k10000" ] || fail "prefix many/k1000: $(cat "$T/out")"
check_exit 0 atrest ls .
[ "$(cat "$T/out" | tr '\n' ' ')" = ".a .b " ] || fail "prefix '.': $(cat "$T/out")"
[ "$("$S3_TOOL" count "$loc" many/)" -eq 10001 ] || fail "the backend counts otherwise"
[ "$("$S3_TOOL" count "$loc" .atrest/filler/)" -eq 1500 ] || fail ".atrest/ listing"
ok "prefixes list exactly their names; .atrest/ lists when asked"
awscli s3 ls --recursive "s3://$BUCKET/store/many/" >"$T/aws.ls"
[ "$(wc -l <"$T/aws.ls")" -eq 10001 ] || fail "aws s3 ls counted $(wc -l <"$T/aws.ls")"
s3c ls "s3://$BUCKET/store/many/" >"$T/s3cmd.ls" 2>&1
[ "$(grep -c 'store/many/k' "$T/s3cmd.ls")" -eq 10001 ] ||
	fail "s3cmd counted $(grep -c 'store/many/k' "$T/s3cmd.ls")"
ok "aws s3 ls and s3cmd count the same 10,001 keys"
