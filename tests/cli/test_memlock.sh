#!/bin/sh
# When key memory cannot be locked (RLIMIT_MEMLOCK 0, no CAP_IPC_LOCK) the
# command still works and says so once on stderr; stdout is untouched and
# with locking possible nothing is said.
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"

# unlocked CMD...: run CMD with no lockable memory (root first loses
# CAP_IPC_LOCK, which would bypass the limit).
unlocked() {
	if [ "$(id -u)" = 0 ]; then
		setpriv --bounding-set=-ipc_lock --inh-caps=-ipc_lock \
			prlimit --memlock=0:0 "$@"
	else
		prlimit --memlock=0:0 "$@"
	fi
}

new_key
printf 'secret data\n' >"$T/data"
check_exit 0 unlocked "$ATREST_BIN" put obj "$T/data"
check_err "^atrest: warning: [0-9]+ key buffers? could not be locked in memory \(RLIMIT_MEMLOCK 0 bytes"
check_exit 0 unlocked "$ATREST_BIN" get obj
check "stdout is the object alone" cmp -s "$T/out" "$T/data"
check_err "may be written to swap"
check_exit 0 atrest get obj
check "locked: nothing on stderr" test ! -s "$T/err"
# A failing command: its error, then the warning (one each).
check_exit 3 unlocked "$ATREST_BIN" get missing
check "error and warning, two lines" test "$(wc -l <"$T/err")" = 2
