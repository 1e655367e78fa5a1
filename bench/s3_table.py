#!/usr/bin/python3
# bench/s3_table.py FILE: the markdown tables of docs/BENCHMARKS.md from a
# result of bench/s3.sh (CLI runs against aws and s3cmd; library figures).
import json
import sys

r = json.load(open(sys.argv[1]))
sizes = {"4k": ("4 KiB", 4096), "1m": ("1 MiB", 1 << 20), "1g": ("1 GiB", 1 << 30)}
print("%s, %s CPUs (%s), load average %s before and %s after; Ceph RGW %s, %s, s3cmd %s\n"
      % (r["date"], r["cpus"], r["cpu"], r["load_before"], r["load_after"], r["rgw"],
         r["aws"], r["s3cmd"]))
print("| size | operation | atrest | aws s3 cp | s3cmd | atrest / aws |")
print("|---|---|---|---|---|---|")
for key, (label, n) in sizes.items():
    res = {x["command"]: x for op in ("put", "get")
           for x in r["cli"]["%s.%s" % (op, key)]["results"]}
    for op in ("put", "get"):
        a = res["atrest " + op]["median"]
        w = res["aws s3 cp (%s)" % op]["median"]
        c = res["s3cmd " + op]["median"]
        if n >= 1 << 30:
            cell = lambda t: "%.2f s (%.0f MB/s)" % (t, n / t / 1e6)
        else:
            cell = lambda t: "%.0f ms" % (t * 1e3)
        print("| %s | %s | %s | %s | %s | %.2f |" % (label, op, cell(a), cell(w), cell(c), a / w))
print("\nLibrary, one process (`atrest-bench --only s3`):\n")
print("| figure | atrest | plain signed request | ratio | target | met |")
print("|---|---|---|---|---|---|")
for f in r["library"]["figures"]:
    t = f.get("target") or {}
    print("| %s | %.3g %s | %.3g %s | %.2f | %s %s | %s |" % (
        f["name"], f["value"], f["unit"], f["reference"], f["unit"], f["ratio"],
        t.get("cmp", ""), t.get("value", ""), "yes" if f.get("met") else "no"))
