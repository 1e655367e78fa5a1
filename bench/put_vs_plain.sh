#!/bin/sh
# hyperfine: `atrest put` of a file against a plaintext copy with the same
# durability (dd conv=fsync to a temp file, mv, sync of the directory), for
# 4 KiB, 1 MiB and 1 GiB (SIZES="4K 1M" to choose).  Process start-up is in
# both; `atrest bench --only put` measures the same in-process.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
atrest=${ATREST_BIN:-$root/build/atrest}
command -v hyperfine >/dev/null || { echo "$0: needs hyperfine" >&2; exit 1; }
[ -x "$atrest" ] || { echo "$0: build atrest first (bench/run.sh)" >&2; exit 1; }

d=$(mktemp -d "${TMPDIR:-/var/tmp}/atrest-put.XXXXXX")
trap 'rm -rf "$d"' EXIT
ATREST_KEY=$("$atrest" keygen)
export ATREST_KEY
mkdir -p "$d/plain" "$root/bench/results"
out="$root/bench/results/put_vs_plain-$(date -u +%Y-%m-%d).md"
: >"$out"
for s in ${SIZES:-4K 1M 1G}; do
	head -c "$s" /dev/urandom >"$d/in.$s"
	runs=20
	[ "$s" = 1G ] && runs=5
	hyperfine --warmup 2 --runs "$runs" --export-markdown "$d/t.md" \
		-n "atrest put $s" "$atrest --store $d/store put obj $d/in.$s" \
		-n "dd conv=fsync + mv + sync $s" \
		"dd if=$d/in.$s of=$d/plain/tmp bs=1M conv=fsync status=none && mv $d/plain/tmp $d/plain/obj && sync $d/plain"
	cat "$d/t.md" >>"$out"
	echo >>"$out"
done
echo "saved $out"
