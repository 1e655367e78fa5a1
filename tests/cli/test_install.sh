#!/bin/sh
# Installing (cmake --install, as make install does) into a non-system
# prefix gives a working pkg-config file and CMake package: a small program
# builds against each and round-trips an object, without LD_LIBRARY_PATH
# (RPATH); the static library links too; man pages and bash and zsh
# completions come from the command table.
set -eu
. "$ATREST_SRC/tests/cli/lib.sh" # makes $T, removed at exit
build=$(dirname "$ATREST_BIN")

cmake --install "$build" --prefix "$T/prefix" >/dev/null
check "headers installed" test -f "$T/prefix/include/atrest/atrest.h"
check "sys headers installed" test -f "$T/prefix/include/atrest/sys/backend.h"
check "the CLI installed" test -x "$T/prefix/bin/atrest" -a -x "$T/prefix/bin/atrest-bench"
check "shared library installed" test -f "$T/prefix/lib/libatrest.so.0"
check "static library installed" test -f "$T/prefix/lib/libatrest.a"
check "CMake package installed" test -f "$T/prefix/lib/cmake/atrest/atrestConfig.cmake"
check "the installed CLI runs from the prefix" "$T/prefix/bin/atrest" --version
"$T/prefix/bin/atrest" bench --help >/dev/null || fail "atrest bench finds atrest-bench"
ok "atrest bench runs the atrest-bench installed beside it"

# Completions: bash (run here through its completion function) and zsh.
bc="$T/prefix/share/bash-completion/completions/atrest"
zc="$T/prefix/share/zsh/site-functions/_atrest"
check "bash completion installed" test -f "$bc"
check "zsh completion installed" test -f "$zc"
complete_bash() { # complete_bash WORD...: the candidates for the last word
	bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		_atrest; printf "%s\n" "${COMPREPLY[@]}"' sh "$bc" "$@"
}
complete_bash atrest re >"$T/c"
check "bash completes commands" test "$(tr '\n' ' ' <"$T/c")" = "rewrap reencrypt "
complete_bash atrest ls --h >"$T/c"
check "bash completes a command's options" grep -qx -- --human-readable "$T/c"
complete_bash atrest --store s ls --st >"$T/c"
check "bash completes global options after the command" grep -qx -- --store "$T/c"
complete_bash atrest rm --pr >"$T/c"
check "bash completes rm --prefix" grep -qx -- --prefix "$T/c"
check "zsh completion parses" zsh -n "$zc"
for cmd in $("$ATREST_BIN" --help | sed -n '/^commands:/,/^$/s/^  \([a-z-]*\) .*/\1/p'); do
	grep -q "^	'$cmd:" "$zc" || fail "zsh completion lacks $cmd"
	grep -q "^	$cmd) opts=" "$bc" || fail "bash completion lacks $cmd"
done
ok "both completions know every command"

# Man pages: atrest(1) and one per command, saying what --help says.
man1="$T/prefix/share/man/man1"
check "atrest.1 installed" test -f "$man1/atrest.1"
for cmd in $("$ATREST_BIN" --help | sed -n '/^commands:/,/^$/s/^  \([a-z-]*\) .*/\1/p'); do
	page="$man1/atrest-$cmd.1"
	[ -f "$page" ] || fail "no man page for $cmd"
	# Each option line of the help text is in the page (roff escapes undone).
	"$ATREST_BIN" help "$cmd" | grep '^  -' | head -n 3 | while IFS= read -r line; do
		sed 's/\\-/-/g; s/\\e/\\/g; s/^\\&//' "$page" | grep -qF -- "$line" ||
			fail "atrest-$cmd.1 lacks '$line'"
	done
done
ok "a man page per command, matching --help"
# atrest(1)'s environment section names every variable --help names.
for v in $("$ATREST_BIN" --help | grep -o 'ATREST_[A-Z_]*' | sort -u); do
	sed 's/\\-/-/g' "$man1/atrest.1" | grep -q "$v" || fail "atrest.1 lacks $v"
done
sed 's/\\-/-/g' "$man1/atrest.1" | grep -q 'built in:\|no schemes built in' ||
	fail "atrest.1 lacks the key URI schemes"
ok "atrest(1) names every environment variable of --help"

cat >"$T/use.c" <<'C'
#include <atrest/atrest.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;
	atrest_store *st;
	uint8_t k[32];
	void *out;
	size_t n;

	(void)argc;
	atrest_random(k, sizeof(k));
	if (atrest_keyprov_raw(&o.key, k, sizeof(k)) < 0)
		return 1;
	o.path = argv[1];
	o.create = 1;
	if (atrest_store_open(&st, &o) < 0 || atrest_put(st, "a/b", "hello", 5, NULL) < 0 ||
		atrest_get(&out, &n, st, "a/b") < 0)
		return 2;
	printf("%.*s\n", (int)n, (char *)out);
	atrest_free(out);
	atrest_store_close(st);
	return 0;
}
C
export PKG_CONFIG_PATH="$T/prefix/lib/pkgconfig"
unset LD_LIBRARY_PATH
# shellcheck disable=SC2046
cc -o "$T/use-pc" "$T/use.c" $(pkg-config --cflags --libs atrest)
check "pkg-config build round-trips (no LD_LIBRARY_PATH)" \
	test "$("$T/use-pc" "$T/s1")" = hello
# The static library: libatrest.a, then the libraries atrest.pc names as
# its private needs (shared here: Debian lacks static builds of some of
# libcurl's own dependencies).
# shellcheck disable=SC2046
cc -o "$T/use-static" "$T/use.c" $(pkg-config --cflags atrest) \
	"$(pkg-config --variable=libdir atrest)/libatrest.a" \
	$(pkg-config --libs $(pkg-config --print-requires-private atrest)) \
	$(sed -n 's/^Libs.private: //p' "$T/prefix/lib/pkgconfig/atrest.pc")
if readelf -d "$T/use-static" | grep -q 'NEEDED.*libatrest'; then
	fail "the static build needs libatrest.so"
fi
check "static build round-trips" test "$("$T/use-static" "$T/s3")" = hello

mkdir "$T/cm"
cat >"$T/cm/CMakeLists.txt" <<C
cmake_minimum_required(VERSION 3.18)
project(use C)
find_package(atrest REQUIRED)
add_executable(use $T/use.c)
target_link_libraries(use atrest::atrest)
C
cmake -S "$T/cm" -B "$T/cm/b" -DCMAKE_PREFIX_PATH="$T/prefix" >/dev/null
cmake --build "$T/cm/b" >/dev/null
check "CMake package build round-trips (no LD_LIBRARY_PATH)" \
	test "$("$T/cm/b/use" "$T/s2")" = hello
echo "all install checks passed"
