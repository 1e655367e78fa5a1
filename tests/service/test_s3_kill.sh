#!/bin/sh
# A multipart put killed halfway leaves no object anyone can see, only an
# unfinished upload; atrest_store_cleanup (the library call behind gc)
# aborts it once old enough, and so does the first writer of a later
# process, by age (?abort-after=), in the background.
set -eu
. "$ATREST_SRC/tests/service/lib/s3.sh"
new_key
export ATREST_STORE="s3://$BUCKET/store?part-size=5M"
check_exit 0 atrest init
WRITER=
PUTTER=
trap 'for p in $WRITER $PUTTER; do kill -9 "$p" 2>/dev/null || :; done; s3_cleanup' EXIT

uploads() {
	awscli s3api list-multipart-uploads --bucket "$BUCKET" --prefix store/ >"$T/mpu.json"
	$PY -c 'import json,sys
d = json.load(open(sys.argv[1])) if open(sys.argv[1]).read().strip() else {}
print(len(d.get("Uploads", [])))' "$T/mpu.json"
}

# killed_put NAME: a put of NAME killed with 2 parts uploaded, 12 MiB sent.
killed_put() {
	rm -f "$T/fifo"
	mkfifo "$T/fifo"
	"$ATREST_BIN" put "$1" "$T/fifo" 2>"$T/put.err" &
	PUTTER=$!
	{ head -c $((12 * 1024 * 1024)) /dev/urandom; sleep 300; } >"$T/fifo" &
	WRITER=$!
	i=0
	while :; do
		awscli s3api list-multipart-uploads --bucket "$BUCKET" >"$T/mpu.json"
		id=$($PY -c 'import json,sys
for u in json.load(open(sys.argv[1])).get("Uploads", []):
    if u["Key"] == sys.argv[2]: print(u["UploadId"])' "$T/mpu.json" "store/$1" 2>/dev/null || :)
		if [ -n "$id" ]; then
			parts=$(awscli s3api list-parts --bucket "$BUCKET" --key "store/$1" \
				--upload-id "$id" --query 'length(Parts)' 2>/dev/null || echo 0)
			[ "$parts" != None ] && [ "$parts" -ge 2 ] && break
		fi
		i=$((i + 1))
		[ "$i" -lt 120 ] || fail "the put of $1 never had 2 parts up"
		sleep 0.5
	done
	kill -9 "$PUTTER"
	wait "$PUTTER" 2>/dev/null || :
	kill "$WRITER" 2>/dev/null || :
	PUTTER=
	WRITER=
	ok "put of $1 killed (-9) with $parts parts uploaded"
}

killed_put slow
awscli s3 ls "s3://$BUCKET/store/slow" >"$T/ls" 2>&1 || :
! grep -q slow "$T/ls" || fail "the killed put left an object: $(cat "$T/ls")"
check_exit 3 atrest get slow
check_exit 0 atrest ls
! grep -q slow "$T/out" || fail "atrest ls shows the killed put"
[ "$(uploads)" -eq 1 ] || fail "the dead upload should still be there"
ok "no object visible; one unfinished upload left"

# The library call: an hour's age spares it, none aborts it.
[ "$(XDG_STATE_HOME="$T/st" "$S3_TOOL" cleanup 3600)" -eq 0 ] || fail "cleanup 3600"
[ "$(uploads)" -eq 1 ] || fail "a young upload was aborted"
[ "$(XDG_STATE_HOME="$T/st" "$S3_TOOL" cleanup 0)" -eq 1 ] || fail "cleanup 0"
[ "$(uploads)" -eq 0 ] || fail "the dead upload is still there"
ok "atrest_store_cleanup aborted the dead upload (and spared it while young)"

# A later writer: the default age (a day) spares it, abort-after=1s not.
killed_put slow2
echo small >"$T/small"
check_exit 0 atrest put small "$T/small"
[ "$(uploads)" -eq 1 ] || fail "a put with the default age aborted a fresh upload"
sleep 2
ATREST_STORE="$ATREST_STORE&abort-after=1s" check_exit 0 atrest put small "$T/small"
[ "$(uploads)" -eq 0 ] || fail "the first writer did not abort the dead upload"
ok "the first writer of a process aborts uploads older than abort-after"
check_exit 0 atrest get small
