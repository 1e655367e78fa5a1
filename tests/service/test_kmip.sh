#!/bin/sh
# KMIP master keys against PyKMIP's server: round trips (server-side
# AES-GCM, mode=get, the CBC fallback), key-check, every key error (unknown
# key, revoked and deactivated keys, client certificates the server
# refuses, a server certificate we refuse, a server that is down), and a
# long-running process that survives the server's stop and restart.
set -eu
. "$ATREST_SRC/tests/service/lib.sh"
kmip_up

export ATREST_KEY_URI="$KMIP"
echo hello >in
check_exit 0 atrest put a in
check_exit 0 atrest get a
check_out '^hello$'
check_exit 0 atrest key-check --time 5
check_out '^matches: +yes'
# The key fetched into memory (mode=get) opens the same keyring.
ATREST_KEY_URI="$KMIP&mode=get" check_exit 0 atrest get a
# The CBC fallback for servers without AES-GCM, in a store of its own.
ATREST_KEY_URI="$KMIP&cipher=cbc" check_exit 0 atrest --store "$T/cbc" put a in
ATREST_KEY_URI="$KMIP&cipher=cbc" check_exit 0 atrest --store "$T/cbc" get a
check_out '^hello$'

base="kmip://127.0.0.1:$KMIP_PORT"
ATREST_KEY_URI="$base/999?$KMIP_Q" check_fast 15 atrest get a
check_err 'kmip: key 999 .*no such key'
other=$("$SVC/kmip-admin" "$T" create)
ATREST_KEY_URI="$base/$other?$KMIP_Q" check_fast 15 atrest get a
check_err 'wrong master key'
d=$KMIP_DIR
ATREST_KEY_URI="$base/$KMIP_UID?ca=$KMIP_CA&cert=$d/stranger.crt&key=$d/stranger.key" \
	check_fast 15 atrest get a
check_err 'kmip: key server .* refused the TLS handshake'
ATREST_KEY_URI="$base/$KMIP_UID?ca=$KMIP_CA&cert=$d/noauth.crt&key=$d/noauth.key" \
	check_fast 15 atrest get a
check_err 'kmip: key server .* refused'
ATREST_KEY_URI="$base/$KMIP_UID?ca=$d/otherca.crt&cert=$KMIP_CERT&key=$KMIP_KEY" \
	check_fast 15 atrest get a
check_err 'kmip: the certificate of key server .* is not trusted'
ATREST_KEY_URI="kmip://localhost:$KMIP_PORT/$KMIP_UID?$KMIP_Q" check_fast 15 atrest get a
check_err 'not trusted'
ATREST_KEY_URI="$base/$KMIP_UID?ca=$KMIP_CA" check_fast 15 atrest get a
check_err 'client certificate is needed'

# Revoked (compromised) and deactivated keys.
for how in revoke deactivate; do
	uid=$("$SVC/kmip-admin" "$T" create)
	ATREST_KEY_URI="$base/$uid?$KMIP_Q" check_exit 0 atrest --store "$T/$how" put a in
	"$SVC/kmip-admin" "$T" "$how" "$uid"
	ATREST_KEY_URI="$base/$uid?$KMIP_Q" check_fast 15 atrest --store "$T/$how" get a
	check_err "kmip: key $uid .* is (compromised|deactivated)"
done

# The server stops under a running process, then comes back.
kc_start "$ATREST_STORE" 1
kc ok put b before
"$SVC/kmip-down" "$T"
ok "PyKMIP stopped"
kc "err 5" check 1
kc "err 5" rotate
sleep 2 # past the 1 s cache TTL: the grace period applies
kc "ok before" get b
kc ok put c during
check_fast 15 atrest get a
check_err 'kmip: key server .* unreachable'
eval "$("$SVC/kmip-up" "$T")"
kc_until_ok check 1
kc ok rotate
kc "ok during" get c
kc_stop
check_exit 0 atrest get c
check_out '^during$'
