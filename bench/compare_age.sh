#!/bin/sh
# hyperfine: `atrest encrypt`/`decrypt` against age (X25519 recipient) on one
# file (default 1 GiB; SIZE_MIB=256 for less), to a file and to /dev/null.
# The markdown table lands in bench/results/compare_age-<date>.md.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
atrest=${ATREST_BIN:-$root/build/atrest}
size=${SIZE_MIB:-1024}
runs=${RUNS:-5}
for tool in hyperfine age age-keygen; do
	command -v "$tool" >/dev/null || { echo "$0: needs $tool" >&2; exit 1; }
done
[ -x "$atrest" ] || { echo "$0: build atrest first (bench/run.sh)" >&2; exit 1; }

d=$(mktemp -d "${TMPDIR:-/var/tmp}/atrest-age.XXXXXX")
trap 'rm -rf "$d"' EXIT
ATREST_KEY=$("$atrest" keygen)
export ATREST_KEY
age-keygen -o "$d/age.key" 2>/dev/null
r=$(age-keygen -y "$d/age.key")
head -c "${size}M" /dev/urandom >"$d/in"
"$atrest" encrypt -o "$d/in.atrest" "$d/in"
age -r "$r" -o "$d/in.age" "$d/in"

mkdir -p "$root/bench/results"
out="$root/bench/results/compare_age-$(date -u +%Y-%m-%d).md"
hyperfine --warmup 1 --runs "$runs" --prepare "rm -f $d/o" \
	--export-markdown "$out" \
	-n "atrest encrypt, file" "$atrest encrypt -o $d/o $d/in" \
	-n "age encrypt, file" "age -r $r -o $d/o $d/in" \
	-n "atrest encrypt, null" "$atrest encrypt $d/in >/dev/null" \
	-n "age encrypt, null" "age -r $r $d/in >/dev/null" \
	-n "atrest decrypt, file" "$atrest decrypt -o $d/o $d/in.atrest" \
	-n "age decrypt, file" "age -d -i $d/age.key -o $d/o $d/in.age" \
	-n "atrest decrypt, null" "$atrest decrypt $d/in.atrest >/dev/null" \
	-n "age decrypt, null" "age -d -i $d/age.key $d/in.age >/dev/null"
echo "saved $out"
