#!/usr/bin/python3
"""bench/s3api_table.py RESULT.json: the markdown table of a bench/s3api.sh
result, from the median of each side's runs (a cold first run does not
decide the ratio): times for 4 KiB and 1 MiB (ratio atrest / RGW, below 1
is atrest faster), throughput for 1 GiB (ratio atrest / RGW, above 1 is
atrest faster)."""
import json
import sys

r = json.load(open(sys.argv[1]))
sizes = {"4k": 4096, "1m": 1 << 20, "1g": 1 << 30}
print("| object | operation | atrest S3 API (encrypted) | RGW (plaintext) | atrest / RGW |")
print("| --- | --- | --- | --- | --- |")
for s in ("4k", "1m", "1g"):
    if "put." + s not in r["runs"]:
        continue
    for op in ("put", "get"):
        a, g = (x["median"] for x in r["runs"]["%s.%s" % (op, s)]["results"])
        if s == "1g":
            fa, fg = sizes[s] / a / 2**20, sizes[s] / g / 2**20
            print("| %s | %s | %.0f MiB/s | %.0f MiB/s | %.2f |" % (s, op, fa, fg, fa / fg))
        else:
            print("| %s | %s | %.1f ms | %.1f ms | %.2f |" % (s, op, a * 1e3, g * 1e3, a / g))
