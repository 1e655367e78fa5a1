#!/bin/sh
# bench/s3api_plot.sh [RESULT.json]: docs/img/s3api.png from a result of
# bench/s3api.sh (default: the newest bench/results/s3api-*.json): for each
# object size and direction, atrest's S3 API (encrypted) against Ceph RGW
# (plaintext) as the ratio of their times (1 GiB: of their throughputs, so
# above 1 is atrest faster everywhere), with the 1.0 line.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
res=${1:-$(ls -t "$root"/bench/results/s3api-*.json | head -n 1)}
d=$(mktemp -d "${TMPDIR:-/var/tmp}/atrest-plot.XXXXXX")
trap 'rm -rf "$d"' EXIT
mkdir -p "$root/docs/img"
/usr/bin/python3 - "$res" "$d/s3api.dat" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))["runs"]
with open(sys.argv[2], "w") as o:
    for size in ("4k", "1m", "1g"):
        for op in ("put", "get"):
            r = runs.get(op + "." + size)
            if not r:
                continue
            atrest = rgw = None
            for x in r["results"]:
                if x["command"].startswith("atrest"):
                    atrest = x["median"]
                else:
                    rgw = x["median"]
            o.write('"%s %s" %.4f\n' % (op, size, rgw / atrest))
PY
gnuplot <<EOF2
set terminal pngcairo size 800,420 font "sans,10"
set output "$root/docs/img/s3api.png"
set title "aws s3 cp through atrest's S3 API (encrypted) vs Ceph RGW (plaintext)"
set ylabel "RGW time / atrest time (above 1: atrest faster)"
set style data histograms
set style fill solid 0.6 border -1
set boxwidth 0.7
set yrange [0:*]
set grid ytics
set key off
plot "$d/s3api.dat" using 2:xtic(1) lc rgb "#3b6ea5", 1 with lines lc rgb "#c03030" dt 2
EOF2
echo "$root/docs/img/s3api.png"
