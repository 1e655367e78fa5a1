#!/bin/sh
# The ABI of libatrest.so: the exported symbols are exactly those recorded
# in abi/libatrest.symbols, so that no change to the public interface goes
# unnoticed (add or remove a symbol there on purpose, in the same commit),
# and nothing internal (atrest__*) or benchmark-only is exported.
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"

lib=$(dirname "$ATREST_BIN")/libatrest.so
[ -f "$lib" ] || fail "no $lib"
nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBR]$/ {print $3}' | sort >"$T/now"
[ -s "$T/now" ] || fail "no exported symbols read from $lib"
if ! diff -u "$ATREST_SRC/abi/libatrest.symbols" "$T/now" >"$T/diff"; then
	cat "$T/diff" >&2
	fail "exported symbols differ from abi/libatrest.symbols (+ new, - gone)"
fi
ok "exported symbols match abi/libatrest.symbols ($(wc -l <"$T/now"))"
if grep -E '^atrest__|bench' "$T/now"; then
	fail "internal or benchmark symbols are exported"
fi
ok "no internal or benchmark symbol is exported"
grep -v '^atrest_' "$T/now" && fail "a symbol outside the atrest_ namespace"
ok "every symbol is in the atrest_ namespace"
