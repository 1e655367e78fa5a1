#!/bin/sh
# A real PostgreSQL 15 cluster (Debian's) through snapshots: pgbench data,
# a base backup (pg_basebackup) and the stopped cluster's data directory,
# each put -r and got back with get -r into a new directory (owners and
# modes restored as root), then PostgreSQL started on it: row counts and
# pg_amcheck (tables and every index).  A second base backup after more
# transactions is an incremental snapshot: files whose bytes did not
# change are shared although pg_basebackup wrote them anew (their keyed
# hashes are equal).  Clusters are stopped by PID.
set -eu
. "$ATREST_SRC/tests/service/lib.sh"
SCALE=4
chmod 711 "$T"
new_key

pg() { runuser -u postgres -- "$@"; }
sql() { pg "$PGBIN/psql" -X -qtA -d postgres -c "$1"; }

eval "$("$SVC/pg-up" "$T")"
ok "PostgreSQL 15 up on 127.0.0.1:$PGPORT (pid $PGPID)"
pg "$PGBIN/pgbench" -q -i -s "$SCALE" postgres >"$T/pgbench.log" 2>&1 ||
	fail "pgbench -i: $(tail -3 "$T/pgbench.log")"
pg "$PGBIN/pgbench" -c 2 -t 200 postgres >>"$T/pgbench.log" 2>&1 || fail "pgbench"
hist1=$(sql "select count(*) from pgbench_history")
sum1=$(sql "select sum(abalance) from pgbench_accounts")
ok "pgbench scale $SCALE: $hist1 transactions"

mkdir -m 700 "$T/base" && chown postgres "$T/base"
pg "$PGBIN/pg_basebackup" -D "$T/base" -Fp -Xstream -c fast || fail "pg_basebackup"
files=$(find "$T/base" -type f | wc -l)
empty=$(find "$T/base" -type d -empty | wc -l)
empty1=$empty
check_exit 0 atrest put -r "$T/base" pg/base-1
check_out "^snapshot pg/base-1: sequence 1, $files files"
ok "base backup of $files files ($empty empty directories) stored"

# More transactions, a new base backup: mostly the same bytes.
pg "$PGBIN/pgbench" -c 2 -t 300 postgres >>"$T/pgbench.log" 2>&1 || fail "pgbench"
hist2=$(sql "select count(*) from pgbench_history")
sum2=$(sql "select sum(abalance) from pgbench_accounts")
rm -rf "$T/base"
mkdir -m 700 "$T/base" && chown postgres "$T/base"
pg "$PGBIN/pg_basebackup" -D "$T/base" -Fp -Xstream -c fast || fail "pg_basebackup"
empty2=$(find "$T/base" -type d -empty | wc -l)
check_exit 0 atrest put -r "$T/base" pg/base-2
check_out "shared with pg/base-1"
shared=$(sed -n 's/.*, \([0-9]*\) shared with pg\/base-1.*/\1/p' "$T/out")
[ "$shared" -gt $((files / 2)) ] || fail "only $shared files shared"
ok "incremental: $shared files shared with pg/base-1 (same keyed hash)"
"$SVC/pg-down" "$T"
ok "cluster stopped by PID"
empty3=$(find "$PGDATA" -type d -empty | wc -l)
check_exit 0 atrest put -r "$PGDATA" pg/stopped

# Each snapshot restored into a new directory starts and checks clean.
start_check() {
	name=$1 hist=$2 sum=$3 empty=$4
	check_exit 0 atrest get -r "$name" "$T/restored-$name"
	d="$T/restored-$name"
	[ "$(stat -c '%U %a' "$d")" = "postgres 700" ] || fail "data dir owner/mode: $(stat -c '%U %a' "$d")"
	[ "$(find "$d" -type d -empty | wc -l)" -eq "$empty" ] || fail "empty directories lost"
	ok "$name restored: owner postgres, mode 0700, empty directories kept"
	eval "$(PG_DATA="$d" "$SVC/pg-up" "$T")"
	ok "PostgreSQL started on the restored $name (pid $PGPID)"
	[ "$(sql "select count(*) from pgbench_accounts")" = $((100000 * SCALE)) ] ||
		fail "pgbench_accounts rows"
	[ "$(sql "select count(*) from pgbench_branches")" = "$SCALE" ] || fail "branches"
	[ "$(sql "select count(*) from pgbench_history")" = "$hist" ] || fail "history rows"
	[ "$(sql "select sum(abalance) from pgbench_accounts")" = "$sum" ] || fail "balances"
	ok "row counts and balances as at the backup"
	pg "$PGBIN/pg_amcheck" -d postgres --install-missing --heapallindexed \
		>"$T/amcheck.log" 2>&1 || fail "pg_amcheck: $(head -5 "$T/amcheck.log")"
	ok "pg_amcheck: every table and index checks"
	"$SVC/pg-down" "$T"
}
mkdir -p "$T/restored-pg"
start_check pg/base-1 "$hist1" "$sum1" "$empty1"
start_check pg/base-2 "$hist2" "$sum2" "$empty2"
start_check pg/stopped "$hist2" "$sum2" "$empty3"

# A restored file tampered with in the store: PostgreSQL is never given it.
check_exit 0 atrest verify -r pg/base-2
# Every large file object is damaged (the largest alone may belong only to
# another snapshot: a file that changed between the backups).
n=0
for obj in $(find "$ATREST_STORE/.atrest/snap/d" -type f -size +200k); do
	flip "$obj" 100000
	n=$((n + 1))
done
[ "$n" -gt 0 ] || fail "no large object to damage"
check_exit 4 atrest get -r pg/base-2 "$T/tampered"
[ ! -e "$T/tampered" ] || fail "a tampered snapshot was restored"
ok "a tampered object stops the restore; nothing appears"
