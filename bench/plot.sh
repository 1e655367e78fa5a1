#!/bin/sh
# Plot throughput against object size (4 KiB .. 256 MiB) for put, get,
# encrypt and decrypt beside plaintext writes, reads and age, and each
# figure against its target: docs/img/*.png.
# usage: bench/plot.sh [SWEEP.json [FIGURES.json]]; without SWEEP.json it
# runs `atrest bench --json --only sweep`; FIGURES.json defaults to the
# newest bench/results/<date>.json.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
atrest=${ATREST_BIN:-$root/build/atrest}
img="$root/docs/img"
d=$(mktemp -d "${TMPDIR:-/var/tmp}/atrest-plot.XXXXXX")
trap 'rm -rf "$d"' EXIT
mkdir -p "$img"

sweep=${1:-}
if [ -z "$sweep" ]; then
	mkdir -p "$root/bench/results"
	sweep="$root/bench/results/sweep-$(date -u +%Y-%m-%dT%H%M%SZ).json"
	"$atrest" bench --json --only sweep >"$sweep"
fi
figs=${2:-$(ls -t "$root"/bench/results/2*.json 2>/dev/null | head -n 1)}

/usr/bin/python3 - "$sweep" "$figs" "$d" <<'PY'
import json, sys
sweep, figs, d = sys.argv[1], sys.argv[2], sys.argv[3]
cols = ["put", "plain_write", "get", "pread", "encrypt", "decrypt",
        "age_encrypt", "age_decrypt"]
with open(d + "/sweep.dat", "w") as o:
    for r in json.load(open(sweep))["sweep"]:
        o.write("%d %s\n" % (r["size"], " ".join(
            "?" if r[c] is None else "%.6g" % r[c] for c in cols)))
with open(d + "/ratios.dat", "w") as o:
    if figs:
        for f in json.load(open(figs))["figures"]:
            t = f["target"]
            x = f[t["on"]] if t else None
            if x:
                # Above 1 when met, whichever way the target points.
                m = x / t["value"] if t["cmp"] == ">=" else t["value"] / x
                o.write('"%s" %.4g\n' % (f["name"], m))
PY

gnuplot <<GP
set terminal pngcairo size 900,540 font ",10"
set datafile missing "?"
set logscale xy
set grid
set key top left
set xlabel "object size (bytes)"
set ylabel "MB/s"
set format x "%.0s%cB"
set output "$img/put.png"
set title "put against a plaintext write with the same durability"
plot "$d/sweep.dat" u 1:2 w lp t "atrest put", "" u 1:3 w lp t "plaintext write + fsync + rename"
set output "$img/get.png"
set title "get from the page cache against open + pread"
plot "$d/sweep.dat" u 1:4 w lp t "atrest get", "" u 1:5 w lp t "open + pread"
set output "$img/crypt.png"
set title "encrypt / decrypt of a file (to a file) against age"
plot "$d/sweep.dat" u 1:6 w lp t "atrest encrypt", "" u 1:7 w lp t "atrest decrypt", \
	"" u 1:8 w lp t "age encrypt", "" u 1:9 w lp t "age decrypt"
GP

if [ -s "$d/ratios.dat" ]; then
	gnuplot <<GP
set terminal pngcairo size 1000,560 font ",9"
set output "$img/targets.png"
set title "each figure against its target (1 = the target; above: met)"
set style fill solid 0.7 border -1
set boxwidth 0.7
set xtics rotate by -40 left
set grid ytics
set bmargin 10
set rmargin 10
set logscale y
set yrange [0.1:*]
plot "$d/ratios.dat" u 0:2:xtic(1) w boxes t "measured / target", 1 w l lw 2 t "target"
GP
fi
ls "$img"
