# Helpers shared by the bench scripts that compare against Ceph RGW
# (bench/s3.sh, bench/s3api.sh); sourced, POSIX sh.  They use the caller's
# $T (a private temp dir) and $stamp, and $RGW_DIR when the script started
# its own RGW.

# machine WHEN: the JSON fields of the machine and its load (WHEN: before
# or after).
machine() {
	printf '"date": "%s", "host": "%s", "cpus": %s, "cpu": "%s", ' "$stamp" \
		"$(uname -n)" "$(nproc)" \
		"$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n1)"
	printf '"load_%s": "%s", ' "$1" "$(cut -d' ' -f1-3 /proc/loadavg)"
}

# gc: free what overwritten and removed objects held in RGW (its memstore
# is RAM), when this script runs the RGW.
gc() {
	[ -n "${RGW_DIR:-}" ] && CEPH_CONF="$RGW_DIR/ceph.conf" timeout 300 \
		radosgw-admin gc process --include-all >/dev/null 2>&1 || :
}

# hf NAME RUNS (LABEL COMMAND)...: one hyperfine run into $T/NAME.json.
hf() {
	n=$1
	runs=$2
	shift 2
	hyperfine --warmup 1 --runs "$runs" --export-json "$T/$n.json" "$@" \
		>"$T/$n.log" 2>&1 || {
		cat "$T/$n.log" >&2
		exit 1
	}
}
