#!/bin/bash
# W2 (64 clients x 1 event, durable) without and with a scavenge running beside it, on a
# store where deleted streams hold about half the log (docs/storage.md, "Scavenge", Measured).
# Usage: bench/w2_during_scavenge.sh [BIN_DIR]   (root: it drops the page cache before the
# scavenge; ports 7450-7451; its store goes under $TMPDIR, default /tmp: point TMPDIR at a
# disk, since on a tmpfs fdatasync costs nothing)
set -u
B=${1:-build/bin}
D=$(mktemp -d "${TMPDIR:-/tmp}/esd-w2s.XXXX")
A=127.0.0.1:7450
$B/esd --data-dir $D/data --listen $A --http 127.0.0.1:7451 --segment-size 67108864 > $D/esd.log 2>&1 &
PID=$!
for i in $(seq 50); do $B/esctl --connect $A streams >/dev/null 2>&1 && break; sleep 0.2; done
w3() { $B/esbench --connect $A --clients 16 --inflight 1 --batch 100 --duration $1 --threads 2 --json | python3 -c 'import json,sys; r=json.load(sys.stdin); print("W3 events/s", int(r["events_per_s"]))'; }
w2() { $B/esbench --connect $A --clients 64 --inflight 1 --batch 1 --duration $1 --threads 2 --json | python3 -c 'import json,sys; r=json.load(sys.stdin); print(json.dumps({k:r[k] for k in r if k in ("events_per_s","latency_us")}))'; }
w3 5
$B/esctl --connect $A --json streams --prefix bench- > $D/first.json
w3 5
du -s --block-size=1 $D/data | cut -f1 > $D/du-before
for s in $(python3 -c 'import json,sys
for l in open(sys.argv[1]):
  l=l.strip()
  if not l: continue
  o=json.loads(l)
  n=o.get("stream") or o.get("name")
  if n and n.startswith("bench-"): print(n)' $D/first.json); do $B/esctl --connect $A stream delete $s >/dev/null || echo "delete $s failed"; done
echo "log before: $(cat $D/du-before) bytes on disk"
echo "--- W2 without scavenge"; w2 3
sync; echo 3 > /proc/sys/vm/drop_caches; $B/esctl --connect $A scavenge start --no-wait
echo "--- W2 with scavenge running"; w2 3
$B/esctl --connect $A scavenge status
for i in $(seq 100); do $B/esctl --connect $A --json scavenge status | grep -q '"running"' || break; sleep 1; done
$B/esctl --connect $A scavenge status
echo "--- W2 after"; w2 3
echo "disk: $(cat $D/du-before) -> $(du -s --block-size=1 $D/data | cut -f1)"
kill $PID; wait $PID
rm -rf $D
