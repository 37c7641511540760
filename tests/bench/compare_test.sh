#!/usr/bin/env bash
# Smoke test of bench/compare/compare.sh (`make compare`): its usage and argument errors, and,
# when PostgreSQL and Redis are installed, a 1-second W1 against each system whose table must
# hold a number in each column; afterwards no process of the run and no temp dir may remain.
# Exit 77 (ctest SKIP_RETURN_CODE) when the peers are missing.
# usage: compare_test.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
BUILD=$1
SRC=$2
COMPARE="$SRC/bench/compare/compare.sh"
TMP=$(mktemp -d "${TMPDIR:-/var/tmp}/compare-test.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# expect_usage_error "MESSAGE" ARGS...: exit status 2 and MESSAGE on stderr, nothing started.
expect_usage_error() {
  local want=$1 code
  shift
  "$COMPARE" "$@" >"$TMP/out" 2>"$TMP/err"
  code=$?
  [ "$code" = 2 ] || fail "compare.sh $* exited $code, want 2: $(cat "$TMP/err")"
  grep -qF -- "$want" "$TMP/err" || fail "compare.sh $*: stderr lacks '$want': $(cat "$TMP/err")"
  grep -qF -- "(see bench/compare/compare.sh --help)" "$TMP/err" || fail "compare.sh $*: no pointer to --help"
}

"$COMPARE" --help >"$TMP/out" 2>&1 || fail "--help exited $?"
grep -q '^usage: bench/compare/compare.sh \[options\]' "$TMP/out" || fail "--help: $(cat "$TMP/out")"
for flag in --duration --quick --only --workloads --w4-events --rounds --tail-appends --build-dir; do
  grep -q -- "^  $flag" "$TMP/out" || fail "--help does not list $flag"
done

expect_usage_error "--duration: expected whole seconds from 1 to 3600, got '0'" --duration 0
expect_usage_error "--duration needs a value" --duration
expect_usage_error "--only: expected esd, postgres or redis, got 'mysql'" --only mysql
expect_usage_error "--workloads: expected a list of W1,W2,W3,W4,orders, got 'W9'" --workloads W1,W9
expect_usage_error "--w4-events: expected a multiple of 1000 (at least 1000), got '1500'" --w4-events 1500
expect_usage_error "--rounds: expected a number from 1 to 9, got '0'" --rounds 0
expect_usage_error "--tail-appends: expected a number of appends from 1 to 100000000, got '5M'" --tail-appends 5M
expect_usage_error "--build-dir: no directory '$TMP/nothing'" --build-dir "$TMP/nothing"
expect_usage_error "unknown argument '--fast'" --fast

# fsync on a tmpfs reaches no disk: a temp dir there is refused before anything starts.
if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ]; then
  COMPARE_TMPDIR=/dev/shm "$COMPARE" --only esd --workloads W1 >"$TMP/out" 2>"$TMP/err"
  code=$?
  [ "$code" = 1 ] || fail "COMPARE_TMPDIR=/dev/shm exited $code, want 1: $(cat "$TMP/err")"
  grep -qF "set COMPARE_TMPDIR to a directory on a disk" "$TMP/err" || fail "tmpfs refusal: $(cat "$TMP/err")"
  ls /dev/shm | grep -q '^esd-compare\.' && fail "a temp dir was left in /dev/shm"
fi

# no_process_runs_from DIR: fails when a process of a run is still there.
no_process_runs_from() {
  local cmdline
  for cmdline in /proc/[0-9]*/cmdline; do
    if { tr '\0' ' ' <"$cmdline"; } 2>/dev/null | grep -qF "$1/"; then
      fail "a process of the run is still there: $(tr '\0' ' ' <"$cmdline")"
    fi
  done
}

# esd_only_run NAME WHAT ARGS...: compare.sh --only esd ARGS in a temp dir of its own, its
# output in $TMP/out and $TMP/err; afterwards the dir must be empty and no process of the run
# left. Returns 1 (and the caller checks nothing) when the dir is on a tmpfs, where compare.sh
# (rightly) refuses to run.
esd_only_run() {
  local dir="$TMP/$1" what=$2
  shift 2
  mkdir "$dir"
  if [ "$(stat -f -c %T "$dir")" = tmpfs ]; then
    echo "note: $dir is on a tmpfs; the $what is left out (set TMPDIR to a disk)"
    return 1
  fi
  COMPARE_TMPDIR="$dir" "$COMPARE" --build-dir "$BUILD" --only esd "$@" >"$TMP/out" 2>"$TMP/err" ||
    fail "the $what failed: $(cat "$TMP/err")"
  [ -z "$(ls -A "$dir")" ] || fail "the $what left $(ls -A "$dir") in its temp dir"
  no_process_runs_from "$dir"
  return 0
}

# The tail check needs esd alone: W2 over each protocol until N appends, and its verdict.
if esd_only_run tail "tail run" --workloads W1 --duration 1 --tail-appends 300; then
  tail_re='^esd W2 \(64 clients\) until 300 appends, no append over 50 ms: rpc (met|missed), [0-9]+ appends, p99\.9 [0-9.]+ ms, max [0-9.]+ ms \(fdatasyncs over 10 ms: [0-9]+, over 50 ms: [0-9]+\); frames (met|missed), [0-9]+ appends, '
  grep -Eq "$tail_re" "$TMP/out" || fail "no tail line for both protocols: $(cat "$TMP/out")"
fi

# esd's orders rows need no peer: over RPC, framed, and framed with 64 orders in flight on 2
# connections (esbench --inflight 32), each with a rate and a verdict against 10 k/s.
if esd_only_run orders "orders run" --workloads orders --duration 1; then
  for label in "orders (create, 3 items, place), 64 clients" "orders, framed commands" \
    "orders, framed, 64 in flight on 2 connections"; do
    grep -Eq "^\| ${label//[()]/.} \| [0-9.]+( k)? orders/s \| +\| +\| >= 10 k/s (met|missed) \|" "$TMP/out" ||
      fail "no row '$label' with a rate: $(cat "$TMP/out")"
  done
  grep -q 'esd ordersf_mux: esbench .*--clients 2 --inflight 32' "$TMP/err" || fail "no multiplexed orders run: $(cat "$TMP/err")"
  for w in orders ordersf ordersf_mux; do  # each orders row's rate is orders placed, not events
    grep -Eq "esd $w: [0-9.]+/s \(orders_per_s\)" "$TMP/err" || fail "$w's rate is not orders/s: $(cat "$TMP/err")"
  done
fi

missing=""
ls /usr/lib/postgresql/*/bin/pgbench >/dev/null 2>&1 || missing="$missing postgresql"
command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null || missing="$missing redis-server/redis-tools"
if [ -n "$missing" ]; then
  echo "SKIP: not installed:$missing (make compare-deps installs them); the argument checks passed"
  exit 77
fi

RUN="$TMP/run"
mkdir "$RUN"
chmod 755 "$TMP" "$RUN"  # PostgreSQL runs as the postgres user when we are root
COMPARE_TMPDIR="$RUN" "$COMPARE" --build-dir "$BUILD" --duration 1 --workloads W1 >"$TMP/out" 2>"$TMP/err" ||
  fail "the 1-second run failed: $(cat "$TMP/err")"
# | W1 1 client x 1 event | <esd> | <PostgreSQL> | <Redis> | >= Redis met|missed | <ratio> | <ratio> |
num='[0-9.]+( [kM])?/s'
grep -Eq "^\| W1 1 client x 1 event \| $num \| $num \| $num \| >= Redis (met|missed) \| [0-9.]+ \| [0-9.]+ \|$" "$TMP/out" ||
  fail "the table has no W1 row with three rates and two ratios: $(cat "$TMP/out")"
# esd's W1 again over the framed protocol, against the same peers.
grep -Eq "^\| W1, framed appends \| $num \| $num \| $num \| >= Redis (met|missed) \| [0-9.]+ \| [0-9.]+ \|$" "$TMP/out" ||
  fail "the table has no framed W1 row with three rates and two ratios: $(cat "$TMP/out")"
grep -q '^esd: esd ' "$TMP/out" && grep -q '^postgres: postgres (PostgreSQL)' "$TMP/out" &&
  grep -q '^redis: Redis server' "$TMP/out" || fail "the versions are missing: $(cat "$TMP/out")"
grep -q '^command: bench/compare/compare.sh --build-dir' "$TMP/out" || fail "the command line is missing"
grep -q '\[compare\] redis W1' "$TMP/err" || fail "no progress on stderr: $(cat "$TMP/err")"
# esd's tail latency beside its disk's: the slow fdatasyncs of the same run, from its /metrics.
grep -Eq '^esd latency per call \(esbench\): W1 p99\.9 [0-9.]+ ms, max [0-9.]+ ms \(fdatasyncs over 10 ms: [0-9]+, over 50 ms: [0-9]+\);' "$TMP/out" ||
  fail "esd's latency line lacks its slow fdatasyncs: $(cat "$TMP/out")"

# Nothing of the run remains: its temp dir is gone and no process runs from it.
[ -z "$(ls -A "$RUN")" ] || fail "the run left $(ls -A "$RUN") in its temp dir"
no_process_runs_from "$RUN"
echo "PASS"
