#!/usr/bin/env bash
# Makes the golden store of segment format version 1: tests/storage/golden/v1/ (a data
# directory as esd left it after a graceful stop, without its LOCK file) and
# tests/storage/golden/v1.manifest (what it holds: tests/storage/golden_store.h).
#
# The golden store is frozen: it was made once, by the esd of the commit named in the
# manifest's header, and every later esd must open it (tests/storage/golden_store_test.cc,
# tests/server/e2e_golden_test.cc). Do not make it again: a new format version gets its own
# script and folder (make_golden_v2.sh, v2/), as docs/storage.md says under "Format versions
# and the golden store". The script refuses to overwrite v1/.
#
# v1/ was made on 2026-12-04 by this script at commit 1ad0a88 (esd 0.1.0, storage/format.h
# kFormatVersion 1), with `tests/storage/golden/make_golden_v1.sh` from the worktree root
# after `ninja -C build esd esctl esbench storage_golden_manifest`; v1.manifest's header
# names the commit in full. Later edits of this script only touched its argument handling.
#
# usage: tests/storage/golden/make_golden_v1.sh [BUILD_DIR [OUT_DIR]]
#   BUILD_DIR default build/; OUT_DIR (where v1/ and v1.manifest go) default this folder:
#   another OUT_DIR is a trial run that leaves the checked-in store alone.
# It needs, built from the same commit: esd, esctl, esbench and storage_golden_manifest
#   (ninja -C build esd esctl esbench storage_golden_manifest), and jq.
#
# What it writes, through the real daemon (unix socket in a temp dir, no TCP port):
#   esd --segment-size 65536 (the smallest, storage/format.h kMinSegmentSize) so that a few
#   hundred events fill several sealed segments with their .idx files plus an active one;
#   --max-event-size 32768 (at most half a segment); --snapshot-every 3 so that orders get
#   aggregate snapshots; the graceful stop (SIGTERM) writes the projection's snapshot.
#   - esctl append: single events on carts, a UTF-8 stream name, a 255-byte stream name,
#     JSON with whitespace and numbers no double holds, text, bytes that are not UTF-8, an
#     empty content type, metadata or none, fixed event ids, expected versions of each kind,
#     and 20 KiB events;
#   - esbench: multi-event appends (three --prefill batches of 60 events, then a short
#     append run of 5-event batches over 2 streams);
#   - esctl order: seven orders of four customers, open, placed and cancelled, with items
#     added and removed.
# Segment files have a fixed size (64 KiB here) whatever they hold; with 64 KiB segments
# the whole folder stays well under 1 MB.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
build=${1:-$root/build}
bin=$build/bin
out=${2:-$here}/v1
manifest=${2:-$here}/v1.manifest

fail() {
  echo "make_golden_v1.sh: $*" >&2
  exit 1
}

if [ -e "$out" ] || [ -e "$manifest" ]; then
  echo "make_golden_v1.sh: $out or $manifest exists: the golden store of format version 1 is frozen." >&2
  echo "A new format version gets a script and folder of its own (docs/storage.md, \"Format versions and the" >&2
  echo "golden store\"). To make v1 again on purpose: git rm -r $out $manifest" >&2
  exit 2
fi
for b in esd esctl esbench storage_golden_manifest; do
  [ -x "$bin/$b" ] || fail "$bin/$b is missing: build it first (ninja -C $build esd esctl esbench storage_golden_manifest)"
done
command -v jq > /dev/null || fail "jq is missing (apt-get install jq)"
version=$(sed -n 's/^inline constexpr uint32_t kFormatVersion = \([0-9]*\);/\1/p' "$root/storage/format.h")
[ "$version" = 1 ] || fail "storage/format.h says kFormatVersion = $version: this script makes version 1 only"

work=$(mktemp -d "${TMPDIR:-/tmp}/esd-golden-v1.XXXXXX")
esd_pid=
cleanup() {
  if [ -n "$esd_pid" ]; then kill -KILL "$esd_pid" 2> /dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

data=$work/data
sock=$work/esd.sock
"$bin/esd" --data-dir "$data" --listen "unix:$sock" --http off --segment-size 65536 \
  --max-event-size 32768 --snapshot-every 3 > "$work/esd.log" 2>&1 &
esd_pid=$!
for _ in $(seq 300); do
  grep -q '^esd ready' "$work/esd.log" && break
  kill -0 "$esd_pid" 2> /dev/null || { cat "$work/esd.log" >&2; fail "esd exited before it was ready"; }
  sleep 0.1
done
grep -q '^esd ready' "$work/esd.log" || fail "esd was not ready after 30 s"

esctl() { "$bin/esctl" --connect "unix:$sock" "$@"; }
next_id=0
# Each event gets an id of our own (a counter), so that a later reader can tell them apart.
append() {  # STREAM TYPE DATA [esctl append options...]
  local stream=$1 type=$2 data=$3
  shift 3
  next_id=$((next_id + 1))
  esctl append "$stream" --type "$type" --data "$data" --id "$(printf '00000000-0000-4000-8000-%012x' "$next_id")" \
    "$@" > /dev/null
}
# DATA of exactly N bytes of text: numbered lines, so that a misplaced byte shows.
text_of() {  # N LABEL
  local n=$1 label=$2 i=0 s=
  while [ ${#s} -lt "$n" ]; do
    s+=$(printf '%s line %05d: the quick brown fox jumps over the lazy dog' "$label" "$i")$'\n'
    i=$((i + 1))
  done
  printf '%s' "${s:0:$n}"
}

echo "writing single events (esctl append) ..."
for cart in 1 2 3 4 5 6; do
  append "cart-$cart" CartOpened "{\"cartId\":$cart,\"currency\":\"EUR\"}" \
    --expected-version no-stream --metadata "{\"correlationId\":\"checkout-$cart\",\"user\":\"u$cart\"}"
done
for round in $(seq 0 13); do
  for cart in 1 2 3 4 5 6; do
    # cart-1 checks the exact version each time; the others append at any version.
    if [ "$cart" = 1 ]; then ev=(--expected-version "$round"); else ev=(--expected-version stream-exists); fi
    if [ $((round % 3)) = 0 ]; then meta=(--metadata "{\"round\":$round}"); else meta=(); fi
    append "cart-$cart" ItemAdded "{\"sku\":\"sku-$((round * 7 % 23))\",\"qty\":$((round % 4 + 1)),\"priceCents\":$((round * 137 % 1000 + 99))}" \
      "${ev[@]}" "${meta[@]}"
  done
  if [ $((round % 4)) = 0 ]; then
    append "user-ännä-ößø" ProfileChanged "name: Ännä Ößø, round $round — ünïcödé ✓" --content-type "text/plain; charset=utf-8"
    append "sensor-7" Reading "$(printf '\xff\xfe\x00\x01raw-%02d\x80\x81' "$round" | tr -d '\0')" --content-type application/octet-stream \
      --metadata "unit=celsius;seq=$round"
  fi
done
for cart in 1 2 3; do
  append "cart-$cart" CartCheckedOut '{ "total" : 1.50, "big": 12345678901234567890123, "note": "tab\there" }' \
    --metadata '{ "pretty" : [1, 2, 3] }'
done
append "notes" Note "an event with an empty content type" --content-type ''
append "notes" Note "" --content-type 'text/plain'
append "notes" Note '{}' --metadata '{}'
long_name=long-$(printf 'x%.0s' $(seq 250))
append "$long_name" Named "{\"nameBytes\":${#long_name}}"
append "$long_name" Named "{\"again\":true}" --expected-version 0

echo "writing 20 KiB events ..."
for i in 1 2 3 4 5; do
  append "blobs" BlobStored "$(text_of 20480 "blob-$i")" --content-type text/plain --metadata "{\"blob\":$i}"
done
append "blobs" BlobStored "{\"payload\":\"$(text_of 20000 json | tr '\n' ' ')\"}"

echo "writing multi-event appends (esbench) ..."
for _ in 1 2 3; do
  "$bin/esbench" --connect "unix:$sock" --workload read-all --prefill 60 --event-size 48 --duration 0.05 > /dev/null
done
"$bin/esbench" --connect "unix:$sock" --workload append --batch 5 --event-size 40 --streams-per-client 2 \
  --duration 0.1 > /dev/null

echo "placing orders (esctl order) ..."
order() { esctl order "$@" > /dev/null; }
order create o-1001 --customer alice --correlation-id checkout-1001
order add-item o-1001 --sku apple --qty 3 --price 50
order add-item o-1001 --sku pear --qty 2 --price 80
order place o-1001
order create o-1002 --customer alice
order add-item o-1002 --sku plum --qty 1 --price 120
order add-item o-1002 --sku fig --qty 4 --price 35
order remove-item o-1002 --sku fig --qty 1
order add-item o-1002 --sku kiwi --qty 6 --price 25
order cancel o-1002 --reason "changed my mind"
order create o-1003 --customer bob
order add-item o-1003 --sku lamp --qty 1 --price 4999
order place o-1003
order cancel o-1003 --reason "arrived broken"
order create o-1004 --customer bob
append "cart-4" CartAbandoned '{"reason":"timeout"}'
order create o-1005 --customer carol
order add-item o-1005 --sku pen --qty 10 --price 150
order add-item o-1005 --sku ink --qty 2 --price 700
order add-item o-1005 --sku pad --qty 3 --price 325
order place o-1005
order create o-1006 --customer carol
order add-item o-1006 --sku cup --qty 2 --price 900
order remove-item o-1006 --sku cup
order create o-1007 --customer dörte
order add-item o-1007 --sku tee --qty 1 --price 1999
order place o-1007
append "cart-5" CartAbandoned '{"reason":"closed tab"}'

orders=()
for o in o-1001 o-1002 o-1003 o-1004 o-1005 o-1006 o-1007; do
  orders+=("$(esctl --json order get "$o" |
    jq -r '"order \(.orderId) \(.customerId) \(.status) \(.totalCents) \(.lines | length)"')")
done

echo "stopping esd (SIGTERM) ..."
kill -TERM "$esd_pid"
status=0
wait "$esd_pid" || status=$?
esd_pid=
[ "$status" = 0 ] || { cat "$work/esd.log" >&2; fail "esd exited with $status on SIGTERM"; }
grep -q "saved the order projection's snapshot" "$work/esd.log" || fail "esd did not save the projection's snapshot"

# The folder as esd left it; LOCK only holds the last owner's pid.
mkdir -p "$out"
cp -a "$data/segments" "$data/snapshots" "$out/"

sealed=$(find "$out/segments" -name '*.idx' | wc -l)
[ "$sealed" -ge 2 ] || fail "only $sealed sealed segments: write more events"
[ -n "$(find "$out/snapshots/orders" -name '*.snap')" ] || fail "no aggregate snapshot in $out/snapshots/orders"
[ -f "$out/snapshots/projections/orders.snap" ] || fail "no projection snapshot in $out/snapshots/projections"

# The manifest, read from scratch copies (opening a store takes its LOCK and may make a spare).
cp -a "$out" "$work/scratch"
body=$("$bin/storage_golden_manifest" "$work/scratch")
cp -a "$out" "$work/scratch-esctl"
"$bin/esctl" --data-dir "$work/scratch-esctl" verify > "$work/verify.txt" || { cat "$work/verify.txt" >&2; fail "esctl verify failed"; }
# The same count through another reader: esctl's offline read of $all.
n_esctl=$("$bin/esctl" --data-dir "$work/scratch-esctl" --json read-all | wc -l)
n_manifest=$(sed -n 's/^events //p' <<< "$body")
[ "$n_esctl" = "$n_manifest" ] || fail "esctl read-all counts $n_esctl events, the manifest $n_manifest"

commit=$(git -C "$root" rev-parse HEAD)
dirty=$(git -C "$root" status --porcelain -- storage server domain tools bench client protocol | head -1)
{
  echo "# The golden store of segment format version 1 (tests/storage/golden/v1/)."
  echo "# Made by tests/storage/golden/make_golden_v1.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "# with the binaries of commit $commit${dirty:+ (with uncommitted changes)},"
  echo "# $("$bin/esd" --version | head -1)."
  echo "# Lines: tests/storage/golden_store.h. Frozen: do not edit, do not make again."
  echo "$body"
  printf '%s\n' "${orders[@]}"
} > "$manifest"

echo "made $out ($(du -sh --apparent-size "$out" | cut -f1) in $(find "$out" -type f | wc -l) files, $sealed sealed segments)"
echo "and $manifest ($n_manifest events)"
