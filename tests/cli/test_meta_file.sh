#!/bin/sh
# put --meta-file: metadata read from a file or standard input instead of
# the command line (which other users see in ps); kept in order with
# --meta; malformed lines, a NUL, an oversized file and standard input
# asked for both data and metadata are refused, and nothing is stored.
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"

new_key
printf 'data\n' >"$T/data"
printf 'token=s3cr3t value with = and spaces\n\nowner=alice\n' >"$T/meta"

check_exit 0 atrest put --meta first=1 --meta-file "$T/meta" --meta last=2 obj "$T/data"
check_exit 0 atrest ls -l --json
json 'j[0]["meta"] == {"first": "1", "token": "s3cr3t value with = and spaces", "owner": "alice", "last": "2"}'
check_exit 0 atrest get obj -o "$T/back"
same "$T/data" "$T/back"

# From standard input, the data from FILE; the last line needs no newline.
printf 'k=v' | check_exit 0 atrest put --meta-file - stdin-meta "$T/data"
check_exit 0 atrest ls -l --json stdin-meta
json 'j[0]["meta"] == {"k": "v"}'

# Refused, and nothing stored.
printf 'k=v\n' | check_exit 2 atrest put --meta-file - both
check_err "cannot both come from standard input"
printf 'no equals sign\n' >"$T/bad"
check_exit 2 atrest put --meta-file "$T/bad" bad "$T/data"
check_err "line 1"
printf '=value\n' >"$T/bad"
check_exit 2 atrest put --meta-file "$T/bad" bad "$T/data"
printf 'k=a\000b\n' >"$T/bad"
check_exit 2 atrest put --meta-file "$T/bad" bad "$T/data"
check_err "NUL"
head -c 70000 /dev/zero | tr '\0' 'a' | sed 's/^/k=/' >"$T/big"
check_exit 1 atrest put --meta-file "$T/big" bad "$T/data"
check_err "larger than 65536 bytes"
check_exit 3 atrest put --meta-file "$T/missing" bad "$T/data"
check_exit 3 atrest get bad

# The help says why the option exists.
check_exit 0 atrest put --help
check_out "other users"
check_out "--meta-file F"
