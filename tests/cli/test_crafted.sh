#!/bin/sh
# Objects sealed with the store's own data key (by the independent Python
# writer) that break a rule of FORMAT.md: metadata that is not one exact
# encoding, and a cipher-3 segment before the last that opens short.  get,
# get -o and verify refuse them (exit 4), and so does ls -l for the metadata
# (it authenticates the header and metadata, not the segments); a
# well-formed one made the same way reads.
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"

CRAFT="$ATREST_SRC/tests/cli/craft_object.py"
export ATREST_KEY="$(atrest keygen)"
check_exit 0 atrest put seed "$ATREST_SRC/README.md"

$PY "$CRAFT" "$ATREST_STORE" "$ATREST_KEY" fine fine || fail "craft fine"
check_exit 0 atrest get fine
check "the crafted well-formed object reads" test "$(size "$T/out")" = 1124
check_exit 0 atrest ls -l --json fine
json 'j[0]["meta"] == {"k": "v"}'

for kind in empty-key trailing nul count short-segment; do
	$PY "$CRAFT" "$ATREST_STORE" "$ATREST_KEY" "bad-$kind" "$kind" ||
		fail "craft $kind"
	check_exit 4 atrest get "bad-$kind"
	check_exit 4 atrest get "bad-$kind" -o "$T/o"
	check "nothing at -o ($kind)" test ! -e "$T/o"
	check_exit 4 atrest verify "bad-$kind"
	if [ "$kind" != short-segment ]; then
		check_exit 4 atrest ls -l "bad-$kind"
	fi
	rm -f "$ATREST_STORE/bad-$kind"
done
check_exit 0 atrest verify
