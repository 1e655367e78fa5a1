#!/bin/sh
# The audit trail and metrics from the command line: every command's
# events, audit verify (intact, and each kind of tampering named by line),
# kill -9 loops and concurrent processes that never break the chain,
# rotation, ATREST_AUDIT, no secret in any log, and metrics parsed by
# promtool and by prometheus_client with values checked.
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"

PIDS=""
trap 'for p in $PIDS; do kill -9 "$p" 2>/dev/null || :; done; rm -rf "$T"' EXIT
LOG="$ATREST_STORE/.atrest/audit"
PASS="correct horse battery staple $$"
export ATREST_ARGON2_TEST_MEMORY_KIB=64

new_key
KEYHEX=$(cat "$T/key")
printf 'one\n' >"$T/one"
head -c 100000 /dev/urandom >"$T/big"

# ---- every command's events ----
check_exit 0 atrest put a "$T/one"
check_exit 0 atrest put dir/b "$T/big"
check_exit 0 atrest get a
check_exit 0 atrest ls
check_exit 0 atrest rm a
K1=$(atrest keys --json | $PY -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
check_exit 0 atrest rotate
check_exit 0 atrest reencrypt --data-key "$K1"
check_exit 0 atrest keys expose "$K1"
check_exit 0 atrest keys destroy "$K1"
check_exit 0 atrest config rotate-days 20
check_exit 0 atrest rewrap
printf 'plain\n' >"$ATREST_STORE/plainfile"
check_exit 0 atrest migrate plainfile
check_exit 3 atrest get missing
check_exit 0 atrest keys
check_exit 0 atrest verify
# Tenants: their events are lines of the store's one trail.
check_exit 0 atrest tenant add acme
check_exit 0 atrest --tenant acme put t/x "$T/one"
check_exit 0 atrest --tenant acme get t/x
check_exit 0 atrest --tenant acme keys --json
json "len(j) == 1 and j[0]['objects'] == 1"
check_exit 0 atrest tenant shred acme
# Snapshots: each operation is an event of its own, beside its objects'
# (a store of their own: the metric values below count plain objects).
mkdir -p "$T/tree/sub"
cp "$T/one" "$T/tree/sub/f"
cp "$T/big" "$T/tree/g"
SS="$T/snapstore"
check_exit 0 atrest --store "$SS" put -r "$T/tree" snaps/s1
check_exit 0 atrest --store "$SS" verify -r snaps/s1
check_exit 0 atrest --store "$SS" get -r snaps/s1 "$T/restored"
check_exit 3 atrest --store "$SS" get -r snaps/none "$T/restored2"
check_exit 0 atrest --store "$SS" rm -r snaps/s1
check_exit 0 atrest --store "$SS" gc

# ev OP [FIELD VALUE]: some audit line has op OP (and FIELD == VALUE).
ev() {
	$PY - "$LOG" "$@" <<'EOF' || fail "no '$*' event in the audit log"
import glob, json, sys
d, op = sys.argv[1], sys.argv[2]
want = sys.argv[3:5]
for f in sorted(glob.glob(d + "/audit-*.jsonl")):
    for line in open(f):
        e = json.loads(line)
        if e["op"] != op:
            continue
        if not want or str(e.get(want[0])) == want[1]:
            sys.exit(0)
sys.exit(1)
EOF
	ok "event $*"
}
ev open outcome ok
ev put name dir/b
ev put bytes 100000
ev get name a
ev get outcome not_found
ev list count 2
ev delete name a
ev rotate data_key "$(key_id 1)"
ev reencrypt name dir/b
ev reencrypt detail job
ev tenant_add name acme
ev put tenant acme
ev get tenant acme
ev tenant_shred count 1
ev expose data_key "$K1"
ev destroy data_key "$K1"
ev config
ev rewrap
ev migrate name plainfile
ev key_unwrap provider key-file
ev key_wrap
ev recount
ev head
# snap OP FIELD=VALUE...: an audit line of op OP has every field given.
snap() {
	$PY - "$SS/.atrest/audit" "$@" <<'EOF' || fail "no '$*' event in the audit log"
import glob, json, sys
d, op = sys.argv[1], sys.argv[2]
want = dict(a.split("=", 1) for a in sys.argv[3:])
for f in sorted(glob.glob(d + "/audit-*.jsonl")):
    for line in open(f):
        e = json.loads(line)
        if e["op"] == op and all(str(e.get(k)) == v for k, v in want.items()):
            sys.exit(0)
sys.exit(1)
EOF
	ok "event $*"
}
snap snapshot_put name=snaps/s1 count=2 bytes=100004 outcome=ok
snap snapshot_verify name=snaps/s1 count=2 bytes=100004 outcome=ok
snap snapshot_get name=snaps/s1 count=2 bytes=100004 outcome=ok
snap snapshot_open name=snaps/none outcome=not_found
snap snapshot_delete name=snaps/s1 count=2 bytes=100004 outcome=ok
snap gc outcome=ok
# Every line has the fields the schema promises.
$PY - "$LOG" <<'EOF' || fail "an audit line lacks a field"
import glob, json, re, sys
for f in glob.glob(sys.argv[1] + "/audit-*.jsonl"):
    for line in open(f):
        e = json.loads(line)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", e["time"]), e
        assert isinstance(e["seq"], int) and re.fullmatch("[0-9a-f]{64}", e["prev"])
        if e["op"] != "head":
            for k in ("outcome", "principal", "tenant", "latency_us", "pid"):
                assert k in e, (k, e)
EOF
ok "every line has seq, time (UTC, microseconds), prev, outcome, principal, tenant, latency"

# ---- verify ----
check_exit 0 atrest audit pubkey -o "$T/pub.pem"
check_exit 0 atrest audit pubkey --hex
check_out '^[0-9a-f]{64}$'
unset ATREST_KEY_FILE # verify needs no master key
check_exit 0 atrest audit verify --pubkey "$T/pub.pem"
check_out '^verified [0-9]+ lines \([0-9]+ signed heads\) in 1 file'
check_exit 0 atrest audit verify
check_exit 2 atrest audit verify --pubkey "$T/one"
openssl genpkey -algorithm ed25519 2>/dev/null | openssl pkey -pubout >"$T/other.pem"
check_exit 4 atrest audit verify --pubkey "$T/other.pem"
check_err 'another key'

SEG="$LOG/audit-000001.jsonl"
cp "$SEG" "$T/seg.orig"
# tamper HOW LINE: change the log with HOW, verify must name LINE, restore.
tamper() {
	$PY - "$SEG" "$1" <<'EOF' || fail "tamper $1"
import sys
p, how = sys.argv[1], sys.argv[2]
ls = open(p, "rb").read().split(b"\n")[:-1]
if how == "edit":
    ls[4] = ls[4].replace(b'"pid":', b'"pid":1')
elif how == "drop":
    del ls[5]
elif how == "insert":
    ls.insert(3, ls[2])
elif how == "reorder":
    ls[6], ls[7] = ls[7], ls[6]
elif how == "tail":
    ls = ls[:-2]
open(p, "wb").write(b"\n".join(ls) + b"\n")
if how == "truncate":
    data = open(p, "rb").read()
    open(p, "wb").write(data[:-20])
EOF
	check_exit 4 atrest audit verify --pubkey "$T/pub.pem"
	grep -q "audit-000001.jsonl:$2:" "$T/err" || fail "$1: line $2 not named: $(cat "$T/err")"
	ok "$1 detected at line $2: $(cat "$T/err")"
	cp "$T/seg.orig" "$SEG"
}
N=$(wc -l <"$SEG")
tamper edit 5
tamper drop 6
tamper insert 4
tamper reorder 7
tamper truncate "$N"
tamper tail '[0-9]*'
grep -q 'not covered by a signed head' "$T/err" || fail "a cut tail is not reported as such"
check_exit 0 atrest audit verify --pubkey "$T/pub.pem"

# Replaying an old copy: the last signed head recorded earlier is missing.
HEAD=$(sed -n 's/^last signed head: sequence \([0-9]*\),.*/\1/p' "$T/out")
export ATREST_KEY_FILE="$T/key"
check_exit 0 atrest put c "$T/one"
check_exit 0 atrest audit verify --pubkey "$T/pub.pem"
NEWHEAD=$(sed -n 's/^last signed head: sequence \([0-9]*\),.*/\1/p' "$T/out")
cp "$T/seg.orig" "$SEG"
check_exit 4 atrest audit verify --pubkey "$T/pub.pem" --min-seq "$NEWHEAD"
check_err 'older than'
check_exit 0 atrest audit verify --pubkey "$T/pub.pem" --min-seq "$HEAD"

# ---- kill -9 while writing, then concurrent processes ----
for round in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24; do
	"$ATREST_BIN" put "k/$round" "$T/big" >/dev/null 2>&1 &
	p=$!
	PIDS="$PIDS $p"
	sleep 0.00$((round % 10))
	kill -9 "$p" 2>/dev/null || :
	wait "$p" 2>/dev/null || :
done
check_exit 0 atrest ls k/ # the next use signs any unsigned tail
check_exit 0 atrest audit verify --pubkey "$T/pub.pem"
ok "24 puts killed with SIGKILL at varying moments left an unbroken chain"

before=$(sed -n 's/^verified \([0-9]*\) lines.*/\1/p' "$T/out")
for p in 1 2 3 4; do
	(for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
		"$ATREST_BIN" put "cc/$p-$i" "$T/one" || echo fail >>"$T/cfail"
		"$ATREST_BIN" get "cc/$p-$i" >/dev/null || echo fail >>"$T/cfail"
	done) &
	PIDS="$PIDS $!"
done
wait
[ ! -e "$T/cfail" ] || fail "concurrent puts or gets failed"
check_exit 0 atrest audit verify --pubkey "$T/pub.pem"
after=$(sed -n 's/^verified \([0-9]*\) lines.*/\1/p' "$T/out")
[ $((after - before)) -ge 240 ] || fail "expected >= 240 new lines, got $((after - before))"
ok "4 processes x 30 commands: one chain of $((after - before)) new lines"

# ---- a second verifier, written from docs/AUDIT.md alone ----
VPY="$ATREST_SRC/tests/vectors/audit_verify.py"
check_exit 0 $PY "$VPY" verify "$LOG" "$T/pub.pem"
cp "$SEG" "$T/seg.now"
flip "$SEG" 100
check_exit 4 $PY "$VPY" verify "$LOG" "$T/pub.pem"
cp "$T/seg.now" "$SEG"
VEC="$ATREST_SRC/tests/vectors/audit"
check_exit 0 atrest audit verify --pubkey "$VEC/pubkey.hex" "$VEC"
check_out '^verified 5 lines \(2 signed heads\)'
check_exit 0 $PY "$VPY" verify "$VEC" "$(cat "$VEC/pubkey.hex")"
$PY "$VPY" make "$T/vec"
same "$T/vec/audit-000001.jsonl" "$VEC/audit-000001.jsonl"

# ---- rotation by size, ATREST_AUDIT ----
check_exit 0 env ATREST_AUDIT_ROTATE_BYTES=8192 "$ATREST_BIN" put r1 "$T/one"
for i in 1 2 3 4 5 6 7 8; do
	ATREST_AUDIT_ROTATE_BYTES=8192 atrest put "r/$i" "$T/one" || fail "put r/$i"
done
files=$(ls "$LOG" | wc -l)
[ "$files" -ge 3 ] || fail "rotation made $files files"
check_exit 0 atrest audit verify --pubkey "$T/pub.pem"
check_out "in $files files"
mv "$LOG/audit-000002.jsonl" "$T/seg2"
check_exit 4 atrest audit verify --pubkey "$T/pub.pem"
check_err 'missing'
mv "$T/seg2" "$LOG/audit-000002.jsonl"
check_exit 0 env ATREST_AUDIT=off "$ATREST_BIN" put off1 "$T/one"
check_exit 0 atrest audit verify --pubkey "$T/pub.pem" "$LOG"
ATREST_AUDIT="$T/elsewhere" atrest put else1 "$T/one" || fail "put with ATREST_AUDIT=DIR"
check_exit 0 env ATREST_AUDIT="$T/elsewhere" "$ATREST_BIN" audit verify --pubkey "$T/pub.pem"
check_exit 0 env ATREST_AUDIT=syslog "$ATREST_BIN" put sys1 "$T/one"

# ---- a passphrase store: no secret anywhere ----
S2="$T/pstore"
(
	unset ATREST_KEY_FILE
	ATREST_PASSPHRASE="$PASS" atrest --store "$S2" put x "$T/one"
	ATREST_PASSPHRASE="wrong $PASS" atrest --store "$S2" get x || :
	ATREST_PASSPHRASE="$PASS" atrest --store "$S2" stats --json
) >"$T/p.out" 2>"$T/p.err" || fail "passphrase store: $(cat "$T/p.err")"
KEYB64=$($PY -c 'import base64,sys; print(base64.b64encode(bytes.fromhex(sys.argv[1])).decode())' "$KEYHEX")
for s in "$KEYHEX" "$KEYB64" "$PASS" "correct horse"; do
	if grep -rqF -- "$s" "$LOG" "$S2/.atrest/audit" "$T/elsewhere" "$T/p.out" "$T/p.err" "$T/out" "$T/err"; then
		fail "a secret is in an audit file or an output"
	fi
done
ok "no key, base64 key or passphrase in any audit line or output"
grep -q '"op":"open","outcome":"key"' "$S2/.atrest/audit/audit-000001.jsonl" ||
	fail "the failed open (wrong passphrase) is not recorded"
ok "a wrong passphrase is recorded as a key failure"

# ---- stats and metrics ----
# Puts killed above may have committed objects whose count was still in
# memory (docs/AUDIT.md, "Usage"): a full verify counts them all again.
check_exit 0 atrest verify
check_exit 0 atrest stats
check_out '^data keys'
check_exit 0 atrest stats --json
json 'j["keys"][-1]["status"] == "active" and sum(k["objects"] for k in j["keys"]) >= 60'
check_exit 0 atrest stats --prometheus
cp "$T/out" "$T/metrics"
promtool check metrics <"$T/metrics" >"$T/lint" 2>&1 || fail "promtool: $(cat "$T/lint")"
ok "promtool check metrics accepts the exposition"
check_exit 0 atrest ls
objects=$(wc -l <"$T/out")
$PY - "$T/metrics" "$objects" <<'EOF' || fail "metric values"
import sys
from prometheus_client.parser import text_string_to_metric_families
fams = {f.name: f for f in text_string_to_metric_families(open(sys.argv[1]).read())}
objects = int(sys.argv[2])
samples = [s for f in fams.values() for s in f.samples]
def val(name, **labels):
    for s in samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise KeyError((name, labels))
assert fams["atrest_encryption_duration_seconds"].type == "histogram"
assert val("atrest_build_info") == 1
assert val("atrest_operations_total", operation="open", outcome="ok") == 1
# the data-key gauges cover every object of the store
got = sum(s.value for s in samples if s.name == "atrest_data_key_objects")
assert got == objects, (got, objects)
assert val("atrest_data_key_age_seconds", status="active") >= 0
assert val("atrest_keyring_generation") >= 1
buckets = [s for s in samples if s.name == "atrest_kms_call_duration_seconds_bucket"]
assert min(float(s.labels["le"]) for s in buckets) == 50e-6 and any(s.labels["le"] == "10.0" or s.labels["le"] == "10" for s in buckets)
EOF
ok "prometheus_client parses the metrics; values match the store ($objects objects)"
