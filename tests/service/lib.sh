# Shared by the service tests (sourced after tests/cli/lib.sh's checks):
# starting and stopping the real key services on loopback, and a
# long-running keyclient driven through a FIFO.  Everything started here is
# stopped by PID when the test exits.
. "$ATREST_SRC/tests/cli/lib.sh"
: "${KEYCLIENT:?KEYCLIENT must name the keyclient program}"
SVC="$ATREST_SRC/tests/service/lib"
export TSS2_LOG=all+NONE

svc_cleanup() {
	[ -n "${KC_PID:-}" ] && kill "$KC_PID" 2>/dev/null
	[ -f "$T/kmip/pid" ] && "$SVC/kmip-down" "$T"
	[ -f "$T/swtpm/pid" ] && "$SVC/swtpm-down" "$T"
	[ -f "$T/swtpm2/swtpm/pid" ] && "$SVC/swtpm-down" "$T/swtpm2"
	[ -f "$T/pg/data.path" ] && "$SVC/pg-down" "$T"
	rm -rf "$T"
}
trap 'svc_cleanup' EXIT

softhsm_up() {
	eval "$("$SVC/softhsm-up" "$T")"
	P11="pkcs11:token=atrest;object=kek1?module-path=$P11_MODULE&pin-value=1234"
}

kmip_up() {
	eval "$("$SVC/kmip-up" "$T")"
	KMIP_UID=$("$SVC/kmip-admin" "$T" create)
	KMIP_Q="ca=$KMIP_CA&cert=$KMIP_CERT&key=$KMIP_KEY"
	KMIP="kmip://127.0.0.1:$KMIP_PORT/$KMIP_UID?$KMIP_Q"
}

swtpm_up() {
	eval "$("$SVC/swtpm-up" "$T")"
	TPM="tpm2:$TPM_TCTI"
}

# kc_start STORE TTL: a keyclient holding STORE open (key from the env).
kc_start() {
	rm -f "$T/kc.in" "$T/kc.out"
	mkfifo "$T/kc.in"
	: >"$T/kc.out"
	"$KEYCLIENT" "$1" "$2" <"$T/kc.in" >>"$T/kc.out" 2>"$T/kc.err" &
	KC_PID=$!
	exec 3>"$T/kc.in"
	KC_LINES=0
	kc_wait
	[ "$KC_LAST" = ready ] || fail "keyclient did not start: $KC_LAST"
}

# The next answer line of the keyclient, within 60 s.
kc_wait() {
	kc_n=$((KC_LINES + 1))
	kc_i=0
	while [ "$(wc -l <"$T/kc.out")" -lt "$kc_n" ]; do
		kc_i=$((kc_i + 1))
		[ "$kc_i" -lt 600 ] || fail "keyclient did not answer: $(cat "$T/kc.err")"
		kill -0 "$KC_PID" 2>/dev/null || fail "keyclient died: $(cat "$T/kc.err")"
		sleep 0.1
	done
	KC_LINES=$kc_n
	KC_LAST=$(sed -n "${kc_n}p" "$T/kc.out")
}

# kc EXPECT CMD...: send CMD, require the answer to start with EXPECT.
kc() {
	kc_want=$1
	shift
	echo "$*" >&3
	kc_wait
	case "$KC_LAST" in
	"$kc_want"*) ok "keyclient '$*' -> $KC_LAST" ;;
	*) fail "keyclient '$*' answered '$KC_LAST', expected '$kc_want' ($(cat "$T/kc.out" | tr '\n' '|'))" ;;
	esac
}

kc_stop() {
	echo quit >&3
	exec 3>&-
	wait "$KC_PID" || fail "keyclient exited with an error"
	KC_PID=
}

# check_fast MAX CMD...: CMD exits 5 within MAX seconds.
check_fast() {
	max=$1
	shift
	t0=$(date +%s)
	check_exit 5 "$@"
	t1=$(date +%s)
	[ $((t1 - t0)) -le "$max" ] || fail "'$*' took $((t1 - t0)) s (> $max s)"
	ok "'$*' failed within $max s"
}

# kc_until_ok CMD...: send CMD every half second until it answers ok
# (a service coming back), for at most 30 s.
kc_until_ok() {
	for kc_try in $(seq 60); do
		echo "$*" >&3
		kc_wait
		[ "$KC_LAST" = ok ] && break
		[ "$kc_try" -lt 60 ] || fail "'$*' still fails: $KC_LAST"
		sleep 0.5
	done
	ok "keyclient '$*' -> ok again"
}
