#!/usr/bin/python3
# Print the markdown results table of docs/BENCHMARKS.md from one
# `atrest bench --json` result file (bench/results/<date>.json).
import json
import sys


def num(v):
    return "—" if v is None else "%.4g" % v


def row(f):
    t = f.get("target")
    target = "—" if not t else "%s %s %s" % (t["on"], t["cmp"], num(t["value"]))
    met = {True: "yes", False: "**no**", None: "—"}[f.get("met")]
    ref = "—" if f.get("reference") is None else "%s %s (%s)" % (
        num(f["reference"]), f["unit"], f["reference_name"])
    return "| %s | %s %s | %s | %s | %s | %s |" % (
        f["name"], num(f["value"]), f["unit"], ref, num(f.get("ratio")), target, met)


r = json.load(open(sys.argv[1]))
m = r["machine"]
print("Machine: %s, %d cores, %s, %s; store on %s. Run: %s; load average "
      "before %s, after %s." % (m["cpu"], m["cores"], m["kernel"], m["openssl"],
                                 m["filesystem"], r["date"], m["loadavg_before"],
                                 m["loadavg_after"]))
print()
print("| figure | value | reference | ratio | target | met |")
print("|---|---|---|---|---|---|")
for f in r["figures"]:
    print(row(f))
