# Helpers shared by the CLI tests (sourced, POSIX sh): a private temp dir
# removed on exit, a clean key environment, and checks that print "ok - ..."
# or stop the test with a clear message.
: "${ATREST_BIN:?ATREST_BIN must name the atrest binary}"
: "${ATREST_SRC:?ATREST_SRC must name the source tree}"

T=$(mktemp -d "${TMPDIR:-/tmp}/atrest-cli.XXXXXX")
trap 'rm -rf "$T"' EXIT
trap 'exit 130' INT TERM
cd "$T"

# Nothing from the caller's environment may pick the key or the store.
unset ATREST_KEY ATREST_KEY_FILE ATREST_PASSPHRASE ATREST_KEY_URI \
	ATREST_OLD_KEY ATREST_OLD_KEY_FILE ATREST_OLD_PASSPHRASE \
	ATREST_OLD_KEY_URI ATREST_ALLOW_PLAINTEXT ATREST_FIPS
export ATREST_STORE="$T/store"
# Keyring generations this "host" has seen (rollback detection): private.
export XDG_STATE_HOME="$T/state"
PY=/usr/bin/python3

atrest() {
	"$ATREST_BIN" "$@"
}

fail() {
	echo "not ok - $*" >&2
	exit 1
}

ok() {
	echo "ok - $*"
}

# check_exit EXPECTED CMD...: run CMD, keeping its output in $T/out and
# $T/err, and require exit status EXPECTED.
check_exit() {
	want=$1
	shift
	set +e
	"$@" >"$T/out" 2>"$T/err"
	got=$?
	set -e
	if [ "$got" != "$want" ]; then
		echo "--- stdout:" >&2
		head -c 2000 "$T/out" >&2
		echo "--- stderr:" >&2
		head -c 2000 "$T/err" >&2
		fail "'$*' exited $got, expected $want"
	fi
	ok "'$*' exits $want"
}

# check_err PATTERN: the last command wrote exactly one line to stderr, and
# it matches the extended regular expression PATTERN.
check_err() {
	lines=$(wc -l <"$T/err")
	[ "$lines" -eq 1 ] ||
		fail "expected one line on stderr, got $lines: $(cat "$T/err")"
	grep -Eq -- "$1" "$T/err" ||
		fail "stderr '$(cat "$T/err")' does not match '$1'"
	ok "stderr matches '$1'"
}

# check_out PATTERN: some line of the last command's stdout matches.
check_out() {
	grep -Eq -- "$1" "$T/out" ||
		fail "stdout '$(head -c 500 "$T/out")' does not match '$1'"
	ok "stdout matches '$1'"
}

# check DESCRIPTION CMD...: CMD must succeed.
check() {
	desc=$1
	shift
	"$@" || fail "$desc"
	ok "$desc"
}

# not CMD...: CMD must fail (for check).
not() {
	! "$@"
}

# same FILE1 FILE2: byte-identical files.
same() {
	cmp -s "$1" "$2" || fail "$1 and $2 differ"
	ok "$(basename "$1") equals $(basename "$2")"
}

# A fresh master key in a mode-0600 file, used through ATREST_KEY_FILE.
new_key() {
	rm -f "$T/key"
	atrest keygen -o "$T/key" || fail "keygen -o failed"
	export ATREST_KEY_FILE="$T/key"
}

# flip FILE OFFSET: invert one byte of FILE in place (OFFSET < 0 counts
# from the end: -1 is the last byte).
flip() {
	$PY -c 'import os,sys
p, o = sys.argv[1], int(sys.argv[2])
if o < 0: o += os.path.getsize(p)
with open(p, "r+b") as f:
    f.seek(o); b = f.read(1)
    if len(b) != 1: sys.exit("no byte at offset %d of %s" % (o, p))
    f.seek(o); f.write(bytes([b[0] ^ 0xff]))' "$1" "$2" || fail "flip $1 $2"
}

# size FILE: bytes in FILE.
size() {
	wc -c <"$1" | tr -d ' '
}

# json EXPR: evaluate the Python expression EXPR with j = the JSON on
# the last command's stdout; it must be true.
json() {
	$PY -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' \
		"$T/out" "$1" || fail "JSON check failed: $1 on $(head -c 800 "$T/out")"
	ok "JSON: $1"
}

# key_id INDEX [GLOBAL-OPTIONS...]: the id of data key INDEX of the store (0
# the oldest, -1 the newest), from 'atrest keys --json'.  Ids are random.
key_id() {
	ki=$1
	shift
	"$ATREST_BIN" "$@" keys --json >"$T/keys.json" 2>"$T/keys.err" ||
		fail "keys --json: $(cat "$T/keys.err")"
	$PY -c 'import json,sys; print(json.load(open(sys.argv[1]))[int(sys.argv[2])]["id"])' \
		"$T/keys.json" "$ki" || fail "no data key $ki"
}

# An id the keyring never issues (ids are 1 to 16777214).
NO_KEY=16777215
