#!/bin/sh
# The keyring MAC as docs/FORMAT.md section 4 states it (recomputed by an
# independent Python tool), the attack of a stolen old master key after the
# incident response (rewrap, expose, reencrypt: a keyring forged with the old
# MAC key is refused), and edited store_id or check reported as damage (exit
# 4), not as a wrong master key.
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"

TOOL="$ATREST_SRC/tests/cli/keyring_tool.py"
KR="$T/store/.atrest/keyring"
A=$(atrest keygen)
B=$(atrest keygen)

# The document is exact: rotated, exposed and destroyed keys included.
export ATREST_KEY="$A"
check_exit 0 atrest put a "$ATREST_SRC/README.md"
K1=$(atrest keys --json | $PY -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
check_exit 0 atrest rotate
K2=$(atrest keys --json | $PY -c 'import json,sys; print([k["id"] for k in json.load(sys.stdin) if k["status"] == "active"][0])')
check_exit 0 atrest keys destroy "$K1" --force
check_exit 0 atrest put b "$ATREST_SRC/README.md"
check "keyring MAC recomputed from FORMAT.md" $PY "$TOOL" verify "$KR" "$A"
json_keyring_has_audit() {
	$PY -c 'import json,sys; sys.exit(0 if "audit" in json.load(open(sys.argv[1])) else 1)' "$KR"
}
check "the store's keyring holds the audit key (under the MAC)" json_keyring_has_audit
PUB_A=$(atrest audit pubkey --hex)
cp "$KR" "$T/old-keyring"

# Incident response: master key A leaked.  Rewrap to B, expose the active
# data key, move its objects off it.
check_exit 0 env ATREST_OLD_KEY="$A" ATREST_KEY="$B" "$ATREST_BIN" rewrap
export ATREST_KEY="$B"
check_exit 0 atrest keys expose "$K2"
check_exit 0 atrest reencrypt --data-key "$K2"
check "rewrapped keyring MAC recomputed" $PY "$TOOL" verify "$KR" "$B"
[ "$(atrest audit pubkey --hex)" = "$PUB_A" ] ||
	fail "the rewrap changed the audit key"
ok "the audit key is rewrapped with the data keys, not replaced"
check "the old key cannot unwrap the rewrapped check" \
	not $PY "$TOOL" verify "$KR" "$A" 2>/dev/null
cp "$KR" "$T/good-keyring"

# The attacker: A and the old copy give the old MAC key; they make the
# exposed key K2 active again and MAC the current keyring with it.
$PY "$TOOL" forge "$KR" "$T/old-keyring" "$A" "$K2" "$T/forged" || fail "forge"
cp "$T/forged" "$KR"
check_exit 4 atrest keys
check_err "keyring damaged"
check_exit 4 atrest verify
check_exit 4 atrest put c "$ATREST_SRC/README.md"

# Control: the same forgery with the current key is accepted, so the
# refusal above is the MAC key's doing, not the tool's.
$PY "$TOOL" forge "$T/good-keyring" "$T/good-keyring" "$B" "$K2" "$KR" ||
	fail "control forge"
check_exit 0 atrest keys --json
json "any(k['id'] == $K2 and k['status'] == 'active' for k in j)"
# Putting the good keyring back is a deliberate rollback past the forged
# generation this host has seen: forget that floor, as an operator would.
cp "$T/good-keyring" "$KR"
rm -rf "$XDG_STATE_HOME/atrest"

# An edited store_id or check under the very key the keyring names is
# damage (4); under another key it stays a key error (5).
for field in store_id check; do
	$PY - "$KR" "$field" <<'EOF' || fail "edit $field"
import json, sys
p, f = sys.argv[1], sys.argv[2]
kr = json.load(open(p))
v = kr[f]
kr[f] = v[:4] + ("b" if v[4] == "a" else "a") + v[5:]
json.dump(kr, open(p, "w"), indent=1)
EOF
	check_exit 4 atrest ls
	check_err "keyring damaged"
	grep -q "wrong master key" "$T/err" && fail "edited $field called a wrong key"
	check_exit 5 env ATREST_KEY="$A" "$ATREST_BIN" ls
	check_err "wrong master key"
	cp "$T/good-keyring" "$KR"
done
check_exit 0 atrest get b -o "$T/b.out"
same "$ATREST_SRC/README.md" "$T/b.out"
