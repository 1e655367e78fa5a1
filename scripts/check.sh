#!/bin/sh
# make check: every test on the release build, then the unit tests again
# under AddressSanitizer + UBSan and under ThreadSanitizer.
# make check-quick (--quick BUILD): the release build without the tests
# that start real services (label "service").
# Ends with one "N passed, N failed" line.
set -u
quick=0
if [ "${1:-}" = --quick ]; then
	quick=1
	shift
fi
build=${1:-build}
asan=${2:-build-asan}
tsan=${3:-build-tsan}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$(date +%s)

rc=0
if [ $quick = 1 ]; then
	ctest --test-dir "$build" --output-on-failure -j 2 -LE service 2>&1 | tee "$log"
	rc=$?
else
	ctest --test-dir "$build" --output-on-failure -j 2 2>&1 | tee "$log" || rc=1
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --test-dir "$asan" -L unit --output-on-failure -j 2 2>&1 |
		tee -a "$log"
	# tee hides ctest's status: the summary below counts the failures.
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(pwd)/tests/tsan.supp" \
		ctest --test-dir "$tsan" -L unit --output-on-failure -j 2 2>&1 |
		tee -a "$log"
fi

# ctest prints "NN% tests passed, F tests failed out of T" once per run.
passed=0
failed=0
runs=0
for line in $(sed -n 's/.*tests passed, \([0-9]*\) tests\{0,1\} failed out of \([0-9]*\).*/\1:\2/p' "$log"); do
	f=${line%%:*}
	t=${line##*:}
	failed=$((failed + f))
	passed=$((passed + t - f))
	runs=$((runs + 1))
done
want=3
[ $quick = 1 ] && want=1
if [ "$runs" -ne "$want" ]; then
	echo "check: expected $want ctest runs, saw $runs (a build or ctest failed)"
	failed=$((failed + 1))
fi
echo "$passed passed, $failed failed ($(($(date +%s) - start)) s)"
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
