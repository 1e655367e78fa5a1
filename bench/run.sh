#!/bin/sh
# Build atrest when needed, run `atrest bench --json` (extra arguments are
# passed on, e.g. --quick or --dir DIR) and keep bench/results/<date>.json.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${ATREST_BUILD:-$root/build}

if [ ! -f "$build/CMakeCache.txt" ]; then
	cmake -S "$root" -B "$build" >/dev/null
fi
cmake --build "$build" -j"$(nproc)" >/dev/null
mkdir -p "$root/bench/results"
out="$root/bench/results/$(date -u +%Y-%m-%dT%H%M%SZ).json"
"$build/atrest" bench --json "$@" >"$out.tmp"
mv "$out.tmp" "$out"
/usr/bin/python3 - "$out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for f in r["figures"]:
    met = {True: "yes", False: "no", None: "-"}[f["met"]]
    v = "-" if f["value"] is None else "%.4g" % f["value"]
    q = "-" if f["ratio"] is None else "%.3f" % f["ratio"]
    print("%-34s %10s %-5s ratio %-7s met %s" % (f["name"], v, f["unit"], q, met))
PY
echo "saved $out"
