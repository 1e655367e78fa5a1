#!/bin/sh
# make deb: build the Debian packages atrest, libatrest0 and libatrest-dev
# from a copy of the tracked files (dpkg-buildpackage writes beside the
# source, so not in this tree), check them with lintian (no errors
# allowed), and leave the .deb files in build-deb/.
set -eu
cd "$(dirname "$0")/.."
out=$(pwd)/build-deb
work=$(mktemp -d "${TMPDIR:-/tmp}/atrest-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/atrest"
git ls-files -z | xargs -0 cp --parents -t "$work/atrest"
(cd "$work/atrest" && dpkg-buildpackage -us -uc -b -j2 >"$work/build.log" 2>&1) || {
	tail -n 40 "$work/build.log" >&2
	echo "deb: dpkg-buildpackage failed" >&2
	exit 1
}
changes=$(ls "$work"/atrest_*.changes)
# Errors fail the build; warnings are shown.
lintian --fail-on error --tag-display-limit 0 "$changes"
mkdir -p "$out"
cp "$work"/*.deb "$out"/
ls "$out"
