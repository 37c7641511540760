# Shared by the packaging tests (sourced): a temporary directory $T removed at exit with any
# esd still running, `fail`, and an esd started and stopped through its ready line.
T=$(mktemp -d)
ESD_PID=
cleanup() {
  [ -n "$ESD_PID" ] && kill -KILL "$ESD_PID" 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# start_esd ESD ARGS...: runs it with stdout and stderr on fd 3 and returns once it printed
# its ready line (daemon.h; log lines may come first), which is left in $READY_LINE.
start_esd() {
  exec 3< <(exec "$@" 2>&1)
  ESD_PID=$!
  READY_LINE=
  while [[ $READY_LINE != "esd ready: "* ]]; do
    read -r -t 60 READY_LINE <&3 || fail "$1 did not say it was ready (last line: $READY_LINE)"
  done
}

# stop_esd: SIGTERM, then reads to esd's end (the pipe closes when it exits); it must have
# stopped gracefully.
stop_esd() {
  kill -TERM "$ESD_PID"
  local rest
  rest=$(cat <&3)
  ESD_PID=
  [[ $rest == *"esd: stopped"* ]] || fail "esd did not stop gracefully: $rest"
}
