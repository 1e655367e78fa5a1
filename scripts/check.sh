#!/bin/sh
# make check: every test on the release build, then the unit tests again
# under AddressSanitizer + UBSan.  Ends with one "N passed, N failed" line.
set -u
build=${1:-build}
asan=${2:-build-asan}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

ctest --test-dir "$build" --output-on-failure -j 2 2>&1 | tee "$log"
rc1=$?
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	ctest --test-dir "$asan" -L unit --output-on-failure -j 2 2>&1 | tee -a "$log"
rc2=$?

# ctest prints "NN% tests passed, F tests failed out of T" once per run.
passed=0
failed=0
for line in $(sed -n 's/.*tests passed, \([0-9]*\) tests\{0,1\} failed out of \([0-9]*\).*/\1:\2/p' "$log"); do
	f=${line%%:*}
	t=${line##*:}
	failed=$((failed + f))
	passed=$((passed + t - f))
done
echo "$passed passed, $failed failed"
[ "$rc1" -eq 0 ] && [ "$rc2" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
