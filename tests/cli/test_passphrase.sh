#!/bin/sh
# A passphrase as the master key (Argon2id, 64 MiB as shipped):
# round trip, wrong passphrase is a key error, and it never shows on stdout
# or stderr.
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"

export ATREST_PASSPHRASE='correct horse battery staple'
printf 'state of job 7\n' >"$T/data"
check_exit 0 atrest put job-7/chk-1 "$T/data"
check_exit 0 atrest get job-7/chk-1
same "$T/out" "$T/data"
check_exit 0 atrest ls
check_out '^job-7/chk-1$'

ATREST_PASSPHRASE='correct horse battery stapler'
check_exit 5 atrest get job-7/chk-1
check "the passphrase is not echoed" \
	not grep -q horse "$T/out" "$T/err"
check_exit 5 atrest put job-7/chk-2 "$T/data"
check "a wrong passphrase wrote nothing" test ! -e "$T/store/job-7/chk-2"
ATREST_PASSPHRASE=
check_exit 5 atrest get job-7/chk-1

# A passphrase and a key at once is ambiguous: refused as a key error.
ATREST_PASSPHRASE='correct horse battery staple'
ATREST_KEY=$(atrest keygen)
export ATREST_KEY
check_exit 5 atrest get job-7/chk-1
unset ATREST_KEY
check_exit 0 atrest get job-7/chk-1
same "$T/out" "$T/data"
echo "all passphrase checks passed"
