# spawn_server LOG [SERVER ARGS...]: start '$ATREST_BIN server --port 0'
# logging to LOG and wait (30 s at most) for its startup line; sets
# SPAWNED_PID (the caller stops it) and SPAWNED_URL.  Returns 1, after
# showing the log, when it did not start.  Sourced by the server tests and
# bench/server.sh.
spawn_server() {
	log=$1
	shift
	: >"$log"
	"$ATREST_BIN" server --port 0 "$@" 2>>"$log" &
	SPAWNED_PID=$!
	i=0
	while ! grep -q 'listening on' "$log"; do
		i=$((i + 1))
		if [ $i -gt 300 ] || ! kill -0 "$SPAWNED_PID" 2>/dev/null; then
			cat "$log" >&2
			return 1
		fi
		sleep 0.1
	done
	SPAWNED_URL=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$log" | tail -n 1)
}
