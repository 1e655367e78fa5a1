#!/bin/sh
# Every cloud provider can be switched to and from by rewrap: a store goes
# from a key file to AWS KMS, Google Cloud KMS, Azure Key Vault, Vault
# Transit and back to a key file, each step with ATREST_OLD_* beside the
# new key and `atrest rewrap`; after each, only the new key opens it, and
# no object file changes.
set -eu
. "$ATREST_SRC/tests/service/lib/svc.sh"
. "$ATREST_SRC/tests/service/lib/kms.sh"
aws_up
gcp_up
azure_up
vault_up
unset ATREST_KEY_URI

# only VAR=VALUE...: the master key variables set to exactly these.
only() {
	unset ATREST_KEY_FILE ATREST_KEY_URI ATREST_OLD_KEY_FILE ATREST_OLD_KEY_URI
	for kv in "$@"; do
		export "${kv?}"
	done
}

objects() {
	(cd "$T/store" && find . -path ./.atrest -prune -o -type f -exec sha256sum {} + |
		LC_ALL=C sort) >"$1"
}

kind() {
	$PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["master"]["kind"])' \
		"$T/store/.atrest/keyring"
}

atrest keygen -o "$T/key1"
atrest keygen -o "$T/key2"
head -c 300000 /dev/urandom >"$T/data"
only "ATREST_KEY_FILE=$T/key1"
run 0 atrest put obj/1 "$T/data"
run 0 atrest rotate
run 0 atrest put obj/2 "$T/data"
objects "$T/before"

prev="ATREST_KEY_FILE=$T/key1"
prev_old="ATREST_OLD_KEY_FILE=$T/key1"
for step in "ATREST_KEY_URI=$AWS_URI aws-kms" "ATREST_KEY_URI=$GCP_URI gcp-kms" \
	"ATREST_KEY_URI=$AZURE_URI azure-kv" "ATREST_KEY_URI=$VAULT_URI vault" \
	"ATREST_KEY_FILE=$T/key2 key-file"; do
	new=${step% *}
	kind_want=${step##* }
	only "$prev_old" "$new"
	run 0 atrest rewrap
	[ "$(kind)" = "$kind_want" ] || fail "keyring kind $(kind), expected $kind_want"
	only "$new"
	for o in obj/1 obj/2; do
		run 0 atrest get "$o" -o "$T/got"
		same "$T/data" "$T/got"
	done
	only "$prev"
	run 5 atrest get obj/1
	ok "switched to $kind_want; the previous key no longer opens the store"
	prev=$new
	case $new in
	ATREST_KEY_URI=*) prev_old="ATREST_OLD_KEY_URI=${new#ATREST_KEY_URI=}" ;;
	*) prev_old="ATREST_OLD_KEY_FILE=${new#ATREST_KEY_FILE=}" ;;
	esac
done
objects "$T/after"
cmp -s "$T/before" "$T/after" || fail "object files changed"
ok "no object file changed through five master-key switches"
no_secrets "$T/test-secrets" "$T/aws/secrets.txt" "$T/gcp/secrets.txt" "$T/az/secrets.txt" \
	"$T/vault/secrets.txt"
