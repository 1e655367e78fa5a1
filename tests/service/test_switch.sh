#!/bin/sh
# Moving a store between master-key providers by rewrap, with the old key
# beside the new one: key file, PKCS#11 (SoftHSM2), KMIP (PyKMIP) and TPM
# 2.0 (swtpm), every pair in at least one direction.  After each move only
# the new key opens the store and every object reads back.
set -eu
. "$ATREST_SRC/tests/service/lib.sh"
softhsm_up
kmip_up
swtpm_up
atrest keygen -o "$T/master.key"

# set_key PREFIX PROVIDER: export the variable that names PROVIDER.
set_key() {
	case $2 in
	file) export "${1}KEY_FILE=$T/master.key" ;;
	pkcs11) export "${1}KEY_URI=$P11" ;;
	kmip) export "${1}KEY_URI=$KMIP" ;;
	tpm2) export "${1}KEY_URI=$TPM" ;;
	esac
}

clear_keys() {
	unset ATREST_KEY_FILE ATREST_KEY_URI ATREST_OLD_KEY_FILE ATREST_OLD_KEY_URI
}

only() {
	clear_keys
	set_key ATREST_ "$1"
}

from=file
only file
echo one >one
check_exit 0 atrest put one one
for to in pkcs11 kmip tpm2 file kmip pkcs11 tpm2; do
	clear_keys
	set_key ATREST_OLD_ "$from"
	set_key ATREST_ "$to"
	check_exit 0 atrest rewrap
	only "$to"
	check_exit 0 atrest key-check
	check_exit 0 atrest get one
	check_out '^one$'
	echo "$to" >"$to.txt"
	check_exit 0 atrest put "$from-$to" "$to.txt"
	only "$from"
	check_exit 5 atrest get one
	ok "moved from $from to $to: the old key no longer opens the store"
	from=$to
done
only "$from"
for n in pkcs11-kmip kmip-tpm2 tpm2-file file-kmip kmip-pkcs11 pkcs11-tpm2; do
	check_exit 0 atrest get "$n"
	check_out "^${n#*-}$"
done
