#!/usr/bin/env bash
# The side-by-side harness of issue 12: the same durable workloads against esd, PostgreSQL
# (Message DB's shape, driven by pgbench) and Redis Streams (appendfsync always, driven by
# redis-benchmark), each started here on loopback in a temp directory and stopped at the end,
# then ONE table with the ratios. `make compare` installs the peers and builds esd first.
# What each workload is on each system, and why it is fair: docs/benchmarks.md.
set -Eeuo pipefail
# set -e stops at the first failing command; say which, rather than stop in silence.
trap 'echo "compare.sh: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

usage() {
  cat <<'EOF'
usage: bench/compare/compare.sh [options]

Runs W1, W2, W3, W4 and orders against esd and the same workloads that the peers can do
against PostgreSQL and Redis, all durable, 200-byte events, and prints one table.

  --duration S      seconds per workload and system (default 10)
  --quick           3 seconds per workload, and W4 over 1,000,000 events
  --only SYSTEM     run one system: esd, postgres or redis (default all three)
  --workloads LIST  comma-separated subset of W1,W2,W3,W4,orders (default all)
  --w4-events N     events in the store (esd) and rows in the table (PostgreSQL) that W4
                    reads, a multiple of 1000 (default 5000000)
  --rounds N        run every system N times (1-9, default 1), the systems one after the
                    other in each round, and print the median of the rounds; this machine's
                    single runs move by a third
  --tail-appends N  after the table, esd alone: W2 (64 clients) over RPC and framed until N
                    appends each (esbench --calls N), on fresh stores, and whether any took
                    over 50 ms (issue 12: none in 5,000,000); 5 M take about 4-5 minutes for both
  --build-dir DIR   where esd and esbench are (default build; make compare builds them)
  --help            print this and exit

Environment: COMPARE_TMPDIR is where the temp directory goes (default /var/tmp; it must not be
a tmpfs, fsync has to reach a disk); COMPARE_PORT_BASE is the first loopback port tried
(default 7800). Exit status: 0 the table was printed, 1 a system failed, 2 bad usage.
EOF
}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
COMMAND_LINE="bench/compare/compare.sh $*"

DURATION=10
ROUNDS=1
W4_EVENTS=5000000
W4_EVENTS_SET=0
ONLY=""
TAIL_APPENDS=0
WORKLOADS="W1,W2,W3,W4,orders"
BUILD_DIR="$ROOT/build"
EVENT_SIZE=200

die_usage() {
  echo "compare.sh: $*" >&2
  echo "(see bench/compare/compare.sh --help)" >&2
  exit 2
}

while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h) usage; exit 0 ;;
    --quick) DURATION=3; [ "$W4_EVENTS_SET" = 1 ] || W4_EVENTS=1000000; shift ;;
    --duration|--only|--workloads|--w4-events|--rounds|--build-dir|--tail-appends)
      [ $# -ge 2 ] || die_usage "$1 needs a value"
      case "$1" in
        --duration)
          [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -ge 1 ] && [ "$2" -le 3600 ] ||
            die_usage "--duration: expected whole seconds from 1 to 3600, got '$2'"
          DURATION=$2 ;;
        --only)
          case "$2" in esd|postgres|redis) ONLY=$2 ;;
            *) die_usage "--only: expected esd, postgres or redis, got '$2'" ;; esac ;;
        --workloads)
          IFS=, read -r -a list <<<"$2"
          [ ${#list[@]} -gt 0 ] || die_usage "--workloads: expected a list of W1,W2,W3,W4,orders, got '$2'"
          for w in "${list[@]}"; do
            case "$w" in W1|W2|W3|W4|orders) ;;
              *) die_usage "--workloads: expected a list of W1,W2,W3,W4,orders, got '$w'" ;; esac
          done
          WORKLOADS=$2 ;;
        --w4-events)
          [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -ge 1000 ] && [ $(( $2 % 1000 )) -eq 0 ] ||
            die_usage "--w4-events: expected a multiple of 1000 (at least 1000), got '$2'"
          W4_EVENTS=$2; W4_EVENTS_SET=1 ;;
        --rounds)
          [[ "$2" =~ ^[1-9]$ ]] || die_usage "--rounds: expected a number from 1 to 9, got '$2'"
          ROUNDS=$2 ;;
        --tail-appends)
          [[ "$2" =~ ^[1-9][0-9]*$ ]] && [ "$2" -le 100000000 ] ||
            die_usage "--tail-appends: expected a number of appends from 1 to 100000000, got '$2'"
          TAIL_APPENDS=$2 ;;
        --build-dir) BUILD_DIR=$(cd "$2" 2>/dev/null && pwd) || die_usage "--build-dir: no directory '$2'" ;;
      esac
      shift 2 ;;
    *) die_usage "unknown argument '$1'" ;;
  esac
done

ESD="$BUILD_DIR/bin/esd"
ESBENCH="$BUILD_DIR/bin/esbench"
TICKS=$(getconf CLK_TCK)
# A 200-byte event: esbench's --event-size 200 for esd; for Redis a 200-byte field value; for
# PostgreSQL a jsonb document of 200 bytes of text ({"d":"xx...x"}).
VALUE=$(printf 'x%.0s' $(seq 1 "$EVENT_SIZE"))
JSON_DATA="{\"d\":\"$(printf 'x%.0s' $(seq 1 $((EVENT_SIZE - 8))))\"}"

wants() {  # wants SYSTEM WORKLOAD: is this pair asked for?
  { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; } && [[ ",$WORKLOADS," == *",$2,"* ]]
}
wants_system() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }

log() { echo "[compare] $*" >&2; }
fail() { echo "compare.sh: $*" >&2; exit 1; }
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }

# --- the temp directory, ports and cleanup ---------------------------------------------------

TMP_PARENT=${COMPARE_TMPDIR:-/var/tmp}
[ -d "$TMP_PARENT" ] || fail "COMPARE_TMPDIR=$TMP_PARENT is not a directory"
if [ "$(stat -f -c %T "$TMP_PARENT")" = tmpfs ]; then
  fail "$TMP_PARENT is a tmpfs: fsync would not reach a disk; set COMPARE_TMPDIR to a directory on a disk"
fi
WORK=""
CLEANUPS=()  # commands run at exit, last first
cleanup() {
  local i
  for (( i=${#CLEANUPS[@]}-1; i>=0; i-- )); do eval "${CLEANUPS[$i]}" >/dev/null 2>&1 || true; done
  [ -n "$WORK" ] && rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

WORK=$(mktemp -d "$TMP_PARENT/esd-compare.XXXXXX")
chmod 755 "$WORK"  # PostgreSQL's user must reach its cluster below it

NEXT_PORT=${COMPARE_PORT_BASE:-7800}
PORT=""
free_port() {  # PORT = the next loopback port from NEXT_PORT that nothing listens on
  while (exec 3<>"/dev/tcp/127.0.0.1/$NEXT_PORT") 2>/dev/null; do NEXT_PORT=$((NEXT_PORT + 1)); done
  PORT=$NEXT_PORT
  NEXT_PORT=$((NEXT_PORT + 1))
}

# --- CPU time from /proc ---------------------------------------------------------------------

# proc_ticks PID [children]: utime + stime of PID (all its threads), in clock ticks; with
# "children" also cutime + cstime, the time of the children it has waited for.
proc_ticks() {
  local stat
  stat=$(cat "/proc/$1/stat") || return 1
  # "PID (COMM) STATE ...": fields count from the last ')'; after it, proc(5)'s field n is
  # word n-2: utime (14) is word 12, stime 13, cutime 14, cstime 15.
  local -a f
  read -r -a f <<<"${stat##*) }"
  if [ "${2:-}" = children ]; then
    echo $(( f[11] + f[12] + f[13] + f[14] ))
  else
    echo $(( f[11] + f[12] ))
  fi
}

# Results: RATE[system.workload] (events/s, rows/s or orders/s), CPU_US[system.workload]
# (daemon CPU µs per event).
declare -A RATE=() CPU_US=()
declare -A VERSION=()
declare -A LATENCY=()  # esd's "p99.9 X ms, max Y ms" per workload
declare -A MAX_MS=()         # esd's slowest call per workload (ms), and its calls
declare -A CALLS=()
declare -A REDIS_LATENCY=()  # the same for Redis, from a second redis-benchmark pass

# --- esd -----------------------------------------------------------------------------------------

ESD_PID=""
ESD_RPC=""
ESD_HTTP=""
esd_start() {  # esd_start NAME: a fresh store, default --fsync always, on free loopback ports
  local dir="$WORK/esd-$1"
  mkdir -p "$dir"
  : >"$dir/log"
  free_port
  local rpc_port=$PORT
  free_port
  ESD_HTTP=$PORT
  "$ESD" --data-dir "$dir/data" --listen "127.0.0.1:$rpc_port" --http "127.0.0.1:$ESD_HTTP" >"$dir/log" 2>&1 &
  ESD_PID=$!
  CLEANUPS+=("kill $ESD_PID; wait $ESD_PID")
  local i
  for (( i=0; i<600; i++ )); do
    ESD_RPC=$(sed -n 's/.*esd ready: rpc=\([^ ]*\).*/\1/p' "$dir/log")
    [ -n "$ESD_RPC" ] && return 0
    kill -0 "$ESD_PID" 2>/dev/null || fail "esd did not start: $(cat "$dir/log")"
    sleep 0.1
  done
  fail "esd did not get ready in 60 s: $(cat "$dir/log")"
}
esd_stop() {
  kill "$ESD_PID" && wait "$ESD_PID" || true
}

# esd_slow_syncs: "A B", esd's fdatasyncs so far that took over 10 ms and over 50 ms (from
# esd_fsync_seconds on its /metrics): the disk's share of an append's tail latency.
esd_slow_syncs() {
  local text
  text=$(exec 3<>"/dev/tcp/127.0.0.1/$ESD_HTTP" && printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 && cat <&3) ||
    fail "esd's /metrics did not answer on 127.0.0.1:$ESD_HTTP"
  awk '/^esd_fsync_seconds_bucket\{le="0.01"\}/ { a = $2 } /^esd_fsync_seconds_bucket\{le="0.05"\}/ { b = $2 }
       /^esd_fsync_seconds_count/ { n = $2 } END { printf "%d %d", n - a, n - b }' <<<"$text"
}

json_field() {  # json_field NAME JSON: a number from esbench's --json line
  sed -n "s/.*\"$1\":\([0-9.e+-]*\).*/\1/p" <<<"$2"
}

esd_run() {  # esd_run WORKLOAD esbench-options...: RATE and CPU_US of esd for WORKLOAD
  local workload=$1 out rate per_event
  shift
  log "esd $workload: esbench $*"
  local slow_before slow_after
  slow_before=$(esd_slow_syncs)
  if ! out=$("$ESBENCH" --connect "$ESD_RPC" --threads 2 --daemon-pid "$ESD_PID" --json "$@"); then
    fail "esbench failed for esd $workload: $out"
  fi
  slow_after=$(esd_slow_syncs)
  local field=events_per_s
  [[ "$workload" == orders* ]] && field=orders_per_s
  rate=$(json_field "$field" "$out")
  per_event=$(sed -n 's/.*"daemon_cpu":{[^}]*"us_per_event":\([0-9.]*\).*/\1/p' <<<"$out")
  RATE[esd.$workload]=$rate
  CPU_US[esd.$workload]=$per_event
  if [[ "$out" == *'"latency_us":{'* ]]; then
    MAX_MS[$workload]=$(awk -v b="$(sed -n 's/.*"latency_us":{[^}]*"max":\([0-9.]*\).*/\1/p' <<<"$out")" \
      'BEGIN { printf "%.1f", b / 1e3 }')
    CALLS[$workload]=$(json_field calls "$out")
    LATENCY[$workload]=$(awk -v a="$(sed -n 's/.*"latency_us":{[^}]*"p999":\([0-9.]*\).*/\1/p' <<<"$out")" \
      -v max="${MAX_MS[$workload]}" 'BEGIN { printf "p99.9 %.1f ms, max %s ms", a / 1e3, max }')
    LATENCY[$workload]+=$(awk -v b="$slow_before" -v a="$slow_after" 'BEGIN { split(b, x, " "); split(a, y, " ")
      printf " (fdatasyncs over 10 ms: %d, over 50 ms: %d)", y[1] - x[1], y[2] - x[2] }')
  fi
  log "esd $workload: $rate/s ($field), daemon cpu ${per_event:-?} us/event"
}

run_esd() {
  [ -x "$ESD" ] && [ -x "$ESBENCH" ] || fail "$ESD or $ESBENCH is missing: run make build (or make compare)"
  VERSION[esd]=$("$ESD" --version)
  if wants esd W1 || wants esd W2 || wants esd W3 || wants esd orders; then
    esd_start appends
    wants esd W1 && esd_run W1 --clients 1 --duration "$DURATION"
    wants esd W2 && esd_run W2 --clients 64 --duration "$DURATION"
    # The same over the framed protocol (esd::client::Appender; docs/server.md, "Framed
    # appends"), for producers that only append: rows W1f and W2f.
    wants esd W1 && esd_run W1f --protocol frames --clients 1 --duration "$DURATION"
    wants esd W2 && esd_run W2f --protocol frames --clients 64 --duration "$DURATION"
    wants esd W3 && esd_run W3 --clients 16 --batch 100 --duration "$DURATION"
    wants esd orders && esd_run orders --workload orders --clients 64 --duration "$DURATION"
    # Order commands over the framed protocol too: row ordersf.
    wants esd orders && esd_run ordersf --workload orders --protocol frames --clients 64 --duration "$DURATION"
    # The same 64 orders in flight over 2 connections (32 each), as an application server
    # multiplexes its users' commands over a small pool: row ordersf_mux.
    wants esd orders && esd_run ordersf_mux --workload orders --protocol frames --clients 2 --inflight 32 \
      --duration "$DURATION"
    esd_stop
  fi
  if wants esd W4; then
    # W4: a fresh store of W4_EVENTS events (esbench --prefill), then one subscription to $all
    # from 0 until caught up; the rate is over the catch-up.
    esd_start read
    esd_run W4 --workload subscribe --prefill "$W4_EVENTS"
    esd_stop
  fi
}

# --- PostgreSQL ----------------------------------------------------------------------------------

PG_BIN=""
PG_PORT=""
PG_DIR=""
PG_PID=""
as_pg() {  # PostgreSQL refuses to run as root: as root, run its commands as the postgres user
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
# The clients (psql, pgbench) run as whoever runs this, connecting as the postgres role.
psql_run() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres "$@"; }

pg_start() {
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$PG_BIN" ] && [ -x "$PG_BIN/pgbench" ] ||
    fail "PostgreSQL (initdb, postgres, pgbench) is not installed: make compare installs it (COMPARE_PACKAGES)"
  PG_DIR="$WORK/postgres"
  free_port
  PG_PORT=$PORT
  mkdir -p "$PG_DIR"
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$PG_DIR"
    as_pg test -w "$PG_DIR" ||
      fail "the postgres user cannot reach $PG_DIR: make COMPARE_TMPDIR and its parents world-searchable (chmod o+x)"
  fi
  as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 --no-sync >"$WORK/postgres-initdb.log" 2>&1 ||
    fail "initdb failed: $(cat "$WORK/postgres-initdb.log")"
  # initdb --no-sync: its files need not reach the disk for a benchmark (a crash loses the
  # cluster anyway, it is a temp dir); what the workloads write does.
  # Durable like the others: fsync and synchronous_commit on (both also the defaults), full
  # page writes on. A larger max_wal_size keeps checkpoints out of a 10 s window (esd has none);
  # shared_buffers holds W4's table.
  CLEANUPS+=("as_pg '$PG_BIN/pg_ctl' -D '$PG_DIR/data' -m immediate stop")
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -t 60 start -o \
    "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c fsync=on -c synchronous_commit=on \
     -c full_page_writes=on -c max_connections=100 -c shared_buffers=1GB -c max_wal_size=8GB" \
    >/dev/null || fail "PostgreSQL did not start: $(cat "$PG_DIR/log")"
  PG_PID=$(head -1 "$PG_DIR/data/postmaster.pid")
  psql_run -f "$HERE/postgres/schema.sql"
  VERSION[postgres]=$("$PG_BIN/postgres" --version)
}
pg_stop() {
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null || true
}

# PostgreSQL's CPU: the postmaster forks a backend per connection, and a backend that exits
# is waited for by the postmaster, so its CPU time lands in the postmaster's cutime/cstime.
# pg_ticks = postmaster utime+stime+cutime+cstime + utime+stime of its children alive now
# (checkpointer, walwriter, background writer, ..., and backends not yet gone). A backend
# counts once: alive in the second term, after its exit in the first. pg_settle waits after
# pgbench until the backends it used are gone, so the "after" sample holds all of them.
# Checked on PostgreSQL 15 (docs/benchmarks.md): a psql session ran SELECT count(*) over
# generate_series(1, 3e7), then read its own backend's utime+stime from /proc (\setenv BP
# to pg_backend_pid(), \! awk ... /proc/$BP/stat): 260 and 246 ticks; pg_ticks before the
# session and after its backend was gone moved by 265 and 248 (start-up and exit included).
pg_children_pids() { cat "/proc/$PG_PID/task/$PG_PID/children"; }  # the postmaster is single-threaded
pg_ticks() {  # one awk over all the children: a process per child would take seconds under load
  local own pids
  own=$(proc_ticks "$PG_PID" children)
  pids=$(pg_children_pids)
  # A child may exit between the listing and the read: cat then fails for it, and its time
  # is already in the postmaster's cutime (or not yet: a tick or two of one backend).
  # shellcheck disable=SC2046,SC2086  # one /proc path per child pid
  { cd /proc && cat $(printf '%s/stat ' $pids) 2>/dev/null || true; } |
    awk -v own="$own" '{ sub(/.*\) /, ""); split($0, f, " "); t += f[12] + f[13] } END { print own + t }'
}
pg_children() { pg_children_pids | wc -w; }
pg_settle() {  # pg_settle PIDS: until these children (pgbench's backends) are gone, 10 s at most
  local i p alive
  for (( i=0; i<200; i++ )); do
    alive=0
    for p in $1; do [ -e "/proc/$p" ] && alive=1 && break; done
    [ "$alive" = 0 ] && return 0
    sleep 0.05
  done
}

pg_last() { psql_run -A -t -c 'SELECT coalesce(max(global_position), 0) FROM messages'; }
pgbench_start() {  # pgbench_start CLIENTS SECONDS SCRIPT [options]: in the background, BENCH its pid
  local clients=$1 seconds=$2 script=$3
  shift 3
  "$PG_BIN/pgbench" -h 127.0.0.1 -p "$PG_PORT" -U postgres -n -M prepared -c "$clients" \
    -j $(( clients < 2 ? clients : 2 )) -T "$seconds" -f "$script" -D "data=$JSON_DATA" "$@" postgres \
    >"$WORK/pgbench.out" 2>&1 &
  BENCH=$!
}

pg_run_writes() {  # pg_run_writes WORKLOAD CLIENTS SCRIPT: RATE and CPU_US of an append workload
  local workload=$1 clients=$2 script=$3 children before after last0 last1 t0 t1 i base backends
  log "postgres $workload: pgbench -c $clients -f $(basename "$script")"
  base=" $(pg_children_pids | tr '\n' ' ') "
  children=$(wc -w <<<"$base")
  # pgbench's -T counts from before its clients connect, and a backend start-up costs tens
  # of ms here: the window is DURATION seconds from the moment all clients have their
  # backend (esbench and redis-benchmark connect before their clock starts too), and pgbench
  # runs long enough to cover it. Events = global positions written in the window.
  pgbench_start "$clients" $(( DURATION + 120 )) "$script"
  for (( i=0; i<1200; i++ )); do
    [ "$(pg_children)" -ge $(( children + clients )) ] && break
    kill -0 "$BENCH" 2>/dev/null || fail "pgbench failed for postgres $workload: $(cat "$WORK/pgbench.out")"
    sleep 0.05
  done
  backends=$(for p in $(pg_children_pids); do [[ "$base" == *" $p "* ]] || echo "$p"; done)
  t0=$(now); last0=$(pg_last); before=$(pg_ticks)
  sleep "$DURATION"
  t1=$(now); last1=$(pg_last); after=$(pg_ticks)
  kill "$BENCH" 2>/dev/null; wait "$BENCH" 2>/dev/null || true
  pg_settle "$backends"
  [ "$last1" -gt "$last0" ] || fail "no event written in postgres $workload: $(cat "$WORK/pgbench.out")"
  RATE[postgres.$workload]=$(calc "($last1 - $last0) / ($t1 - $t0)")
  CPU_US[postgres.$workload]=$(calc "($after - $before) / $TICKS * 1e6 / ($last1 - $last0)")
  log "postgres $workload: ${RATE[postgres.$workload]}/s; daemon cpu $(calc "($after - $before) / $TICKS") s" \
      "over $(( last1 - last0 )) events, ${CPU_US[postgres.$workload]} us/event"
}

pg_run_read() {  # W4: one reader paging through the table for DURATION seconds (read.sql)
  local out tps
  log "postgres W4: pgbench -c 1 -f read.sql, pages of 1000 over $W4_EVENTS rows"
  pgbench_start 1 "$DURATION" "$HERE/postgres/read.sql" -D last=0 -D total="$W4_EVENTS"
  wait "$BENCH" || fail "pgbench failed for postgres W4: $(cat "$WORK/pgbench.out")"
  out=$(cat "$WORK/pgbench.out")
  tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' <<<"$out")
  [ -n "$tps" ] || fail "no tps in pgbench's output for postgres W4: $out"
  RATE[postgres.W4]=$(calc "$tps * 1000")
  log "postgres W4: ${RATE[postgres.W4]} rows/s"
}

run_postgres() {
  pg_start
  wants postgres W1 && pg_run_writes W1 1 "$HERE/postgres/append.sql"
  wants postgres W2 && pg_run_writes W2 64 "$HERE/postgres/append.sql"
  wants postgres W3 && pg_run_writes W3 16 "$HERE/postgres/append100.sql"
  if wants postgres W4; then
    # W4: the table holds exactly W4_EVENTS rows at global positions 1..W4_EVENTS, so a
    # reader's next key is known without reading the last row of its page (read.sql).
    log "postgres W4: prefilling $W4_EVENTS rows"
    psql_run -v n="$W4_EVENTS" -v data="$JSON_DATA" -f "$HERE/postgres/prefill.sql"
    pg_run_read
  fi
  pg_stop
}

# --- Redis ---------------------------------------------------------------------------------------

REDIS_PORT=""
REDIS_PID=""
rcli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }
redis_start() {
  command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null ||
    fail "redis-server or redis-benchmark is not installed: make compare installs them (COMPARE_PACKAGES)"
  local dir="$WORK/redis"
  mkdir -p "$dir"
  free_port
  REDIS_PORT=$PORT
  # Durable: every write is in the append-only file and fsync'ed before the reply (Redis
  # groups the writes of one event-loop turn into one write + fsync). No RDB snapshots.
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$dir" --appendonly yes --appendfsync always \
    --save '' --daemonize no --logfile "$dir/log" &
  REDIS_PID=$!
  CLEANUPS+=("kill $REDIS_PID; wait $REDIS_PID")
  local i
  for (( i=0; i<300; i++ )); do
    [ "$(rcli ping 2>/dev/null)" = PONG ] && break
    kill -0 "$REDIS_PID" 2>/dev/null || fail "redis-server did not start: $(cat "$dir/log")"
    sleep 0.1
  done
  [ "$(rcli config get appendfsync | tail -1)" = always ] || fail "redis-server does not run with appendfsync always"
  VERSION[redis]=$(redis-server --version)
}
redis_stop() { kill "$REDIS_PID" && wait "$REDIS_PID" || true; }
redis_xadds() { rcli info commandstats | sed -n 's/^cmdstat_xadd:calls=\([0-9]*\),.*/\1/p' | grep . || echo 0; }

# redis_xadd CLIENTS REQUESTS [OPTIONS...]: sets XADD_COMMAND to redis-benchmark's XADD of a
# 200-byte event to one of 64,000 random streams, CLIENTS connections on up to 2 threads (when
# it has --threads). The caller runs it, so that $! of a background run is redis-benchmark's.
redis_xadd() {
  local clients=$1 requests=$2 threads=()
  shift 2
  redis-benchmark --help 2>&1 | grep -q -- '--threads' && threads=(--threads $(( clients < 2 ? clients : 2 )))
  XADD_COMMAND=(redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -c "$clients" "${threads[@]}" -n "$requests"
    -r 64000 "$@" XADD "bench-__rand_int__" '*' data "$VALUE")
}

redis_run() {  # redis_run WORKLOAD CLIENTS
  local workload=$1 clients=$2 calls0 calls1 cpu0 cpu1 t0 t1 bench
  log "redis $workload: redis-benchmark -c $clients XADD to random streams"
  # redis-benchmark has no duration: it runs far more requests than fit, and is stopped after
  # DURATION seconds; the rate is the XADD count of INFO commandstats over the window.
  calls0=$(redis_xadds); cpu0=$(proc_ticks "$REDIS_PID"); t0=$(now)
  redis_xadd "$clients" 2000000000 -q
  "${XADD_COMMAND[@]}" >/dev/null 2>&1 &
  bench=$!
  sleep "$DURATION"
  # SIGTERM: a background job of a script ignores SIGINT.
  kill "$bench" 2>/dev/null; wait "$bench" 2>/dev/null || true
  calls1=$(redis_xadds); cpu1=$(proc_ticks "$REDIS_PID"); t1=$(now)
  [ "$calls1" -gt "$calls0" ] || fail "redis-benchmark made no XADD for redis $workload"
  RATE[redis.$workload]=$(calc "($calls1 - $calls0) / ($t1 - $t0)")
  CPU_US[redis.$workload]=$(calc "($cpu1 - $cpu0) / $TICKS * 1e6 / ($calls1 - $calls0)")
  log "redis $workload: ${RATE[redis.$workload]}/s, daemon cpu ${CPU_US[redis.$workload]} us/event"
  # Latency, beside esd's: a killed redis-benchmark prints nothing, so a second pass of about
  # 5 s at the rate just measured runs to its end and prints its percentiles.
  local n out
  n=$(awk -v r="${RATE[redis.$workload]}" 'BEGIN { n = int(r * 5); if (n < 1000) n = 1000; print n }')
  redis_xadd "$clients" "$n"
  out=$("${XADD_COMMAND[@]}" 2>/dev/null) || true
  # "99.902% <= 59.007 milliseconds (cumulative count 19981)": the first line at or past 99.9%.
  REDIS_LATENCY[$workload]=$(awk '/% <= .* milliseconds/ { p = $1 + 0; v = $3 + 0
      if (p >= 99.9 && a == "") a = v; if (p >= 100) m = v }
    END { if (a != "") printf "p99.9 %.1f ms, max %.1f ms", a, m }' <<<"$out")
}

run_redis() {
  redis_start
  wants redis W1 && redis_run W1 1
  wants redis W2 && redis_run W2 64
  redis_stop
}

# --- the table -----------------------------------------------------------------------------------

human() {  # human NUMBER UNIT: 385/s, 2.8 k/s, 1.52 M/s, 2.8 k orders/s, 51 µs
  [ -n "$1" ] || { echo ""; return; }
  awk -v v="$1" -v u="$2" 'BEGIN {
    if (u == "us") { printf (v < 10 ? "%.1f µs" : "%.0f µs"), v; exit }
    sep = (substr(u, 1, 1) == "/") ? "" : " "
    if (v >= 1e6) printf "%.2f M%s%s", v / 1e6, sep, u
    else if (v >= 1e3) printf "%.1f k%s%s", v / 1e3, sep, u
    else printf "%.0f%s%s", v, sep, u }'
}
ratio() {  # ratio A B: A/B with two digits, empty when either is missing
  [ -n "$1" ] && [ -n "$2" ] || { echo ""; return; }
  awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b }'
}
verdict() {  # verdict VALUE OP BOUND: met or missed, empty without both numbers
  [ -n "$1" ] && [ -n "$3" ] || { echo ""; return; }
  awk -v v="$1" -v op="$2" -v b="$3" 'BEGIN { ok = (op == ">=") ? v >= b : v <= b; print ok ? "met" : "missed" }'
}

row() {  # row LABEL WORKLOAD UNIT TARGET-TEXT OP BOUND-or-"redis" [cpu]
  # WORKLOAD W1f / W2f / ordersf / ordersf_mux: esd's framed runs, beside the peers' W1 / W2 /
  # orders.
  local label=$1 w=$2 unit=$3 target=$4 op=$5 bound=$6 kind=${7:-rate} e p r
  local peer=${w%_mux}
  peer=${peer%f}
  if [ "$kind" = cpu ]; then
    e=${CPU_US[esd.$w]:-}; p=${CPU_US[postgres.$peer]:-}; r=${CPU_US[redis.$peer]:-}
  else
    e=${RATE[esd.$w]:-}; p=${RATE[postgres.$peer]:-}; r=${RATE[redis.$peer]:-}
  fi
  [ "$bound" = redis ] && bound=$r
  [[ ",$WORKLOADS," == *",$peer,"* ]] || return 0
  printf '| %s | %s | %s | %s | %s %s | %s | %s |\n' "$label" "$(human "$e" "$unit")" "$(human "$p" "$unit")" \
    "$(human "$r" "$unit")" "$target" "$(verdict "$e" "$op" "$bound")" "$(ratio "$e" "$p")" "$(ratio "$e" "$r")"
}

print_table() {
  echo
  echo "esd vs PostgreSQL vs Redis, durable, ${EVENT_SIZE}-byte events, loopback, ${DURATION} s per run"
  echo "command: $COMMAND_LINE"
  echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC'); machine: $(nproc) cores, $(uname -sr)"
  for s in esd postgres redis; do [ -n "${VERSION[$s]:-}" ] && echo "$s: ${VERSION[$s]}"; done
  echo
  echo "| workload | esd | PostgreSQL (Message DB shape) | Redis Streams | target | esd/PostgreSQL | esd/Redis |"
  echo "|---|---|---|---|---|---|---|"
  row "W1 1 client x 1 event" W1 /s ">= Redis" ">=" redis
  row "W2 64 clients x 1 event" W2 /s ">= Redis" ">=" redis
  row "daemon CPU per 1-event append (W2)" W2 us "<= 20 µs" "<=" 20 cpu
  row "W1, framed appends" W1f /s ">= Redis" ">=" redis
  row "W2, framed appends" W2f /s ">= Redis" ">=" redis
  row "daemon CPU per 1-event append (W2, framed)" W2f us "<= 20 µs" "<=" 20 cpu
  row "W3 16 clients x 100 events" W3 /s ">= 1.5 M/s" ">=" 1500000
  row "W4 catch-up read of \$all (${W4_EVENTS} events)" W4 /s ">= 8 M/s" ">=" 8000000
  row "orders (create, 3 items, place), 64 clients" orders "orders/s" ">= 10 k/s" ">=" 10000
  row "orders, framed commands" ordersf "orders/s" ">= 10 k/s" ">=" 10000
  row "orders, framed, 64 in flight on 2 connections" ordersf_mux "orders/s" ">= 10 k/s" ">=" 10000
  echo
  echo "Rates are events/s (W4: events or rows read/s; orders: orders placed/s). The CPU row's"
  echo "ratio is esd's CPU over the peer's: below 1 is less CPU per event. Daemon CPU per event"
  echo "in every run (µs):$(for k in $(printf '%s\n' "${!CPU_US[@]}" | sort); do printf ' %s %.1f;' "$k" "${CPU_US[$k]}"; done)"
  if [ ${#LATENCY[@]} -gt 0 ]; then
    echo "esd latency per call (esbench):$(for k in W1 W2 W1f W2f W3 orders ordersf ordersf_mux; do
      [ -n "${LATENCY[$k]:-}" ] && printf ' %s %s;' "$k" "${LATENCY[$k]}"; done)"
  fi
  if [ ${#REDIS_LATENCY[@]} -gt 0 ]; then
    echo "Redis latency per call (redis-benchmark, a second pass of ~5 s):$(for k in W1 W2; do
      [ -n "${REDIS_LATENCY[$k]:-}" ] && printf ' %s %s;' "$k" "${REDIS_LATENCY[$k]}"; done)"
  fi
}

# Each system starts on a quiet disk: the one before may leave gigabytes of dirty pages (its
# data, then its deleted files), whose writeback would slow the next one's fsyncs. Measured:
# Redis W1 right after PostgreSQL's W4 made 272 appends/s, alone 1.2-1.4 k/s.
quiet_disk() {
  rm -rf "$WORK/esd-appends" "$WORK/esd-read" "$WORK/postgres" "$WORK/redis"
  log "sync (the disk settles before the next system)"
  sync
}

# Each round's results, per system.workload, as space-separated lists; the table shows the
# median of the rounds (the lower middle one for an even count).
declare -A ROUND_RATE=() ROUND_CPU=()
median() { printf '%s\n' $1 | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

for ((round = 1; round <= ROUNDS; round++)); do
  [ "$ROUNDS" -gt 1 ] && log "round $round of $ROUNDS"
  RATE=() CPU_US=()
  wants_system esd && { quiet_disk; run_esd; }
  wants_system postgres && { quiet_disk; run_postgres; }
  wants_system redis && { quiet_disk; run_redis; }
  for k in "${!RATE[@]}"; do ROUND_RATE[$k]+="${RATE[$k]} "; done
  for k in "${!CPU_US[@]}"; do ROUND_CPU[$k]+="${CPU_US[$k]} "; done
done
for k in "${!ROUND_RATE[@]}"; do RATE[$k]=$(median "${ROUND_RATE[$k]}"); done
for k in "${!ROUND_CPU[@]}"; do CPU_US[$k]=$(median "${ROUND_CPU[$k]}"); done
print_table
# --tail-appends: W2 until N appends, each protocol on a fresh store after a quiet disk.
if [ "$TAIL_APPENDS" -gt 0 ] && wants_system esd; then
  tail_line="esd W2 (64 clients) until $TAIL_APPENDS appends, no append over 50 ms:"
  for proto in rpc frames; do
    quiet_disk
    esd_start "tail-$proto"
    esd_run "W2-$proto-tail" --protocol "$proto" --clients 64 --calls "$TAIL_APPENDS"
    esd_stop
    rm -rf "$WORK/esd-tail-$proto"
    w="W2-$proto-tail"
    over=$(awk -v m="${MAX_MS[$w]:-0}" 'BEGIN { print (m > 50) ? "missed" : "met" }')
    tail_line+=" $proto $over, ${CALLS[$w]:-?} appends, ${LATENCY[$w]:-no latency};"
  done
fi
if [ "$ROUNDS" -gt 1 ]; then
  echo "The table holds the median of $ROUNDS rounds (esd's latency: the last round). Every round:"
  for k in $(printf '%s\n' "${!ROUND_RATE[@]}" | sort); do
    cpu=""
    [ -n "${ROUND_CPU[$k]:-}" ] && cpu="; daemon CPU per event (µs)$(for v in ${ROUND_CPU[$k]}; do printf ' %.1f' "$v"; done)"
    echo "  $k: rate$(for v in ${ROUND_RATE[$k]}; do printf ' %.0f' "$v"; done)$cpu"
  done
fi
[ -n "${tail_line:-}" ] && echo "$tail_line"
exit 0
