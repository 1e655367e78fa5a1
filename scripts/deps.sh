#!/bin/sh
# Installs the Debian 12 packages that building, testing and running atrest need.
# Called by the Makefile and .ci/run; installs only what is missing.
set -eu
PKGS="cmake make gcc clang pkg-config libssl-dev libargon2-dev libjansson-dev
libcmocka-dev libclang-rt-14-dev llvm bsdextrautils xxd openssl age
libmicrohttpd-dev libgnutls28-dev libcurl4-openssl-dev python3 python3-cryptography
hyperfine gnuplot-nox curl wrk nginx-light procps softhsm2 opensc python3-pykmip
swtpm swtpm-tools tpm2-tools libtss2-dev libp11-kit-dev p11-kit-modules
python3-botocore python3-jwt prometheus python3-prometheus-client libxml2-dev
ceph-mon ceph-osd radosgw ceph-common awscli s3cmd rclone restic postgresql-15
postgresql-contrib zsh dpkg-dev debhelper lintian"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "atrest: missing Debian packages:$missing (run as root or install them)" >&2
	exit 1
fi
echo "atrest: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
