#!/bin/sh
# bench: the quick run of the fast figures prints well-formed JSON (machine,
# date, every figure with its fields, positive numbers) and a table; timing
# itself is never asserted.  Options are checked too.
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"


check_exit 0 atrest bench --quick --json --dir "$T" \
	--only object,get,records,passphrase
cp "$T/out" "$T/bench.json"
$PY - "$T/bench.json" <<'EOF' || fail "bench JSON"
import json, sys
r = json.load(open(sys.argv[1]))
m = r["machine"]
assert m["cpu"] and m["cores"] >= 1 and m["openssl"].startswith("OpenSSL"), m
assert len(r["date"]) == 20 and r["date"].endswith("Z"), r["date"]
assert r["quick"] is True
figs = r["figures"]
names = [f["name"] for f in figs]
for want in ("seal 1 thread", "open 1 thread", "seal 2 threads",
             "get 1 MiB (page cache) p99", "record seal 64 B",
             "record open 512 B", "passphrase: open + 100 puts"):
    assert want in names, (want, names)
keys = {"name", "value", "unit", "reference", "reference_name", "ratio",
        "target", "met", "note"}
for f in figs:
    assert set(f) == keys, f
    assert f["value"] is not None and f["value"] > 0, f
    assert f["reference"] is None or f["reference"] > 0, f
    assert f["ratio"] is None or f["ratio"] > 0, f
    t = f["target"]
    if t is not None:
        assert t["on"] in ("ratio", "value") and t["cmp"] in (">=", "<="), f
        assert t["value"] > 0 and isinstance(f["met"], bool), f
EOF
ok "bench --json: structure and positive numbers"

ls "$T" | grep atrest-bench >/dev/null && fail "bench left its directory"
ok "bench removes its directory"

check_exit 0 atrest bench --quick --dir "$T" --only records
grep '^figure ' "$T/out" >/dev/null || fail "table header"
grep '^record open 256 B ' "$T/out" >/dev/null || fail "table row"
grep '^cpu: ' "$T/out" >/dev/null || fail "cpu line"
ok "bench prints a table"

# The shell figures: streams through pipes against age, and one CLI
# process against cp (each a value beside its same-run reference).
check_exit 0 atrest bench --quick --json --dir "$T" --only pipe,cli
json '[f["name"] for f in j["figures"]] == ["encrypt through pipes", "decrypt through pipes", "CLI put, 4 KiB", "CLI get -o, 4 KiB"]'
json 'all(f["value"] > 0 and f["reference"] > 0 for f in j["figures"])'
json 'all(f["target"] == {"on": "ratio", "cmp": ">=", "value": 2} for f in j["figures"][:2])'
json '"age" in j["figures"][0]["reference_name"] and "cp" in j["figures"][2]["reference_name"]'
ls "$T" | grep atrest-bench >/dev/null && fail "bench left its directory"

check_exit 2 atrest bench --only nosuch
grep "unknown figure 'nosuch'" "$T/err" >/dev/null || fail "--only message"
check_exit 2 atrest bench extra
check_exit 0 atrest bench --help
grep -- '--only' "$T/out" >/dev/null || fail "help"
ok "bench options"
