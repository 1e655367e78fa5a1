#!/bin/sh
# TPM 2.0 sealed master keys against swtpm: round trips, the sealed blob
# in the keyring, key-check, PCR binding (a changed PCR refuses), another
# TPM refuses, the TPM down (exit 5 at once), and a long-running process
# that keeps serving while swtpm is stopped and restarted.
set -eu
. "$ATREST_SRC/tests/service/lib.sh"
swtpm_up

export ATREST_KEY_URI="$TPM"
echo hello >in
check_exit 0 atrest put a in
check_exit 0 atrest get a
check_out '^hello$'
grep -q 'tpm2-sealed-v1' "$ATREST_STORE/.atrest/keyring" || fail "no sealed blob"
ok "the sealed master key is in the keyring"
check_exit 0 atrest key-check --time 5
check_out '^matches: +yes'

# Bound to PCR 16 (resettable, for tests): extending it refuses unsealing.
ATREST_KEY_URI="$TPM&pcrs=sha256:16" check_exit 0 atrest --store "$T/pcr" put a in
ATREST_KEY_URI="$TPM&pcrs=sha256:16" check_exit 0 atrest --store "$T/pcr" get a
tpm2_pcrextend -T "$TPM_TCTI" \
	16:sha256=0000000000000000000000000000000000000000000000000000000000000001
ATREST_KEY_URI="$TPM&pcrs=sha256:16" check_fast 15 atrest --store "$T/pcr" get a
check_err 'tpm2: .*PCR values .* changed'
ATREST_KEY_URI="$TPM&pcrs=sha256:99" check_fast 15 atrest get a
check_err 'tpm2 URI: pcrs is'

# Another TPM (a fresh swtpm) cannot unseal it.
mkdir -p "$T/swtpm2"
eval "$("$SVC/swtpm-up" "$T/swtpm2" | sed 's/^TPM_/TPM2_/')"
ATREST_KEY_URI="tpm2:$TPM2_TCTI" check_fast 15 atrest get a
check_err 'tpm2: the sealed master key does not load on this TPM'
"$SVC/swtpm-down" "$T/swtpm2"

# swtpm stops under a running process, then comes back.
kc_start "$ATREST_STORE" 1
kc ok put b before
"$SVC/swtpm-down" "$T"
ok "swtpm stopped"
check_fast 15 atrest get a
check_err 'tpm2: TPM unreachable'
sleep 2
kc "ok before" get b
kc ok put c during
kc ok rotate
eval "$("$SVC/swtpm-up" "$T")"
kc_until_ok check 1
kc "ok during" get c
kc_stop
check_exit 0 atrest get c
check_out '^during$'
