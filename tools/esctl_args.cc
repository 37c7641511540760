#include "tools/esctl_args.h"

#include "tools/esctl_exit.h"

#include <charconv>
#include <cstdlib>

namespace esd::esctl {

namespace {

struct FlagSpec {
  std::string_view name;  // without the dashes
  bool takes_value;
  bool repeatable;
};

struct CommandSpec {
  std::string_view name;  // "order create" for a command of the group "order"
  size_t positional;      // exactly this many
  std::vector<FlagSpec> flags;
  std::string_view help;
  std::string_view operand = "STREAM";  // what the positional argument is, for messages
  bool group = false;                   // "order": the next word names the command
  bool positional_optional = false;     // `positional` is a maximum, not an exact count
};

// Flags of every order command that writes.
constexpr FlagSpec kCommandId{"command-id", true, false};
constexpr FlagSpec kCorrelationId{"correlation-id", true, false};

constexpr std::string_view kOverview = R"(usage: esctl [--connect ADDR] [--token T] [--json] [--data-dir DIR] COMMAND [ARGS...]

Talks to an esd event store.

)";

constexpr std::string_view kOverviewOptions = R"(global options (before or after the command):
  --connect ADDR          HOST:PORT, [IPV6]:PORT or unix:PATH (default: $ESD_CONNECT, else
                          127.0.0.1:7400)
  --token T               the login token (default: $ESD_TOKEN; without --auth esd takes any)
  --json                  one JSON object per line on stdout instead of text
  --tls                   connect over TLS, trusting the system's certificate authorities
  --tls-ca FILE           connect over TLS, trusting the PEM certificate(s) in FILE
  --tls-server-name NAME  the name the server's certificate must hold (default: the host
                          of --connect); an IP address must be one of its IP addresses
  --data-dir DIR          work offline on a stopped store's files: status, streams, read,
                          read-all, verify, salvage, replay, dump, backup and snapshot (the
                          others need a running esd)
  -h, --help              help; `esctl COMMAND --help` for a command
  --version               print esctl's version and git commit, and exit

Events print one per line: POSITION STREAM@VERSION TYPE TIMESTAMP DATA, where DATA is the
compacted JSON, the text, a quoted string when the text has control characters, or
"base64:..." when it is not UTF-8. With --json each line is an object with the keys stream,
version, position, id, type, contentType, timestamp, metadata and data (JSON values when the
content type is JSON and they parse, else strings; "dataEncoding":"base64" marks base64).

)";

constexpr std::string_view kSalvageHelp = R"(usage: esctl --data-dir DIR salvage [--dry-run]

For a store that esd refuses to start on because its log is damaged before the end (or whose
reads report damage): finds the first batch that does not verify, by the rules esd's own
start-up uses, and moves everything from there to the end of the log out of the way, into
DIR/quarantine/<time>/: a byte-for-byte copy of the damaged segment, every later segment and
index file, and SALVAGE.txt saying what and why. Nothing is deleted. Afterwards the log ends
just before the damage and esd starts; positions from there on go to new events, so restore
what was moved from a backup if you have one, and rebuild projections (esctl replay orders).
esd must be stopped (salvage holds the directory's LOCK). A torn tail is not damage: esd cuts
it itself. With --dry-run, only says what it would move. Run it again after an interruption.

exit codes: 0 done, or nothing to salvage; 1 cannot salvage (no store, esd running, an
unfinished backup); 2 bad usage
)";

constexpr std::string_view kOrderOverview = R"text(usage: esctl order COMMAND [ID] [options]

The Order service: commands that change an order (they print the order's version and the
$all position of what they wrote), and queries.

commands:
  create ID --customer C                     open a new order for customer C
  add-item ID --sku S --qty N --price CENTS  add N units of S at CENTS each
  remove-item ID --sku S [--qty N]           remove N units of S (default: the whole line)
  place ID                                   place an open order that has lines
  cancel ID [--reason R]                     cancel an order that is not cancelled yet
  get ID [--at-version V | --at-time T] [--min-position P]
                                             the order now, after version V, or at time T
  list --customer C [--status S] [--min-position P]
                                             a customer's orders, newest first
  history ID                                 every event of the order, oldest first
  forget-customer CUSTOMER                   erase a customer's orders for good (GDPR; admin)

Commands that write take --command-id ID: a retry with the same id (after a timeout or a
lost connection) is answered with the first outcome and writes nothing new. An id names one
command: used again for another command (or on another order) it is refused as an
idempotency conflict (exit 3) and nothing is written. The default is a random id, which they
print; `create` also takes --correlation-id ID, the business flow
the order belongs to (it shows in the history).

A command prints "order ID: version V, position P (command id C)". `get` and `list` read a
projection that follows the log: pass --min-position P (P from the command) to see that
command's effect at once. With --json, one JSON object per line.
)text";

// Every order command's help ends with these.
constexpr std::string_view kOrderExitCodes = R"(
exit codes: 0 ok; 1 failure (cannot connect, permission denied, server unavailable, order not
found); 2 bad usage; 3 not done: rejected by a business rule (the rule is named, e.g.
order-not-open), a conflict (the order kept changing: retry), an idempotency conflict
(the --command-id was used before for another command: give this one its own), or
overloaded (esd has more queued for its disk than it takes: retry shortly); 4 the
order's events, or the projection a query waits for, reach damaged bytes of the log (file,
offset and position are named on stderr)
)";

constexpr std::string_view kStreamOverview = R"(usage: esctl stream COMMAND STREAM [options]

A stream's lifecycle. Removed events are never returned by any read again (stream reads,
read-all, tail, order queries); `esctl scavenge start` later frees their disk space.

commands:
  delete STREAM [--hard] [--expected-version V]   delete it (soft, or hard: for good)
  truncate STREAM --before VERSION                remove the versions below VERSION
  meta STREAM [--max-age D] [--max-count N] [--custom JSON] [--expected-version V]
                                                  show the metadata, or change it

These need a token with the writer role (meta without options: any role). `esctl streams`
lists the streams.

exit codes: 0 done; 1 failure (the stream has no events, permission denied, cannot
connect); 2 bad usage (nothing was sent); 3 not done, nothing written: wrong expected
version, the stream was hard-deleted, or rejected (a truncate past the end, a reserved name)
)";

constexpr std::string_view kScavengeOverview = R"(usage: esctl scavenge start [--no-wait] | status | stop

Scavenge rewrites the daemon's sealed segment files without the events that deletes,
truncates and stream metadata removed, and frees their disk space. It runs in esd's
background while the daemon keeps serving; kept events keep their positions. Needs a token
with the admin role.

commands:
  start [--no-wait]   start one, then follow it with a progress bar until it ends (Ctrl-C
                      stops following, not the scavenge); --no-wait: only start it
  status              the running or last scavenge: state, segments, bytes read and
                      reclaimed, removed events dropped, rate in MB/s, and the read cap
                      of esd --scavenge-max-read-rate
  stop                ask the running scavenge to stop after the segment it is on

exit codes: 0 done (stop with none running too); 1 failure (it failed: the esd log says why;
permission denied; cannot connect); 2 bad usage; 3 not started (one is running already)
)";

const std::vector<CommandSpec>& Commands() {
  static const std::vector<CommandSpec> kCommands = {
      {"verify", 0, {}, R"(usage: esctl verify                  (online: the daemon checks its files while it serves)
       esctl --data-dir DIR verify   (offline, on a stopped store)

Checks the store's files by the rules esd's start-up uses: every segment header and that
positions are dense across segments, every batch checksum, that every stream's versions are
dense, every sealed segment's index file against its log, and every snapshot file. It only reads: nothing is repaired or changed. Online, the daemon
reads its own files while it keeps serving (needs the admin role). Offline, esctl reads them,
holding the directory's LOCK: if esd is running there, it says so. Shows a progress bar with
rate and ETA on a terminal, plain progress lines otherwise, on stderr. Lists each bad file,
offset and position (with --json, one object). What the next start repairs by itself with
nothing acknowledged lost (a missing or damaged index file, a tail no later batch vouches
for, a snapshot it would not load) is printed as "note: ..." and is not damage. For damage,
esd refuses to start or to serve the damaged events: see `esctl salvage --help`.

exit codes: 0 clean (notes alone included); 4 damage found (each item listed); 1 cannot check
(no store there, esd running on it); 2 bad usage
)"},
      {"replay", 1, {}, R"(usage: esctl replay PROJECTION            (online)
       esctl --data-dir DIR replay PROJECTION   (offline, on a stopped store)

Rebuilds a projection (there is one: orders) from position 0 of $all. Online, the daemon
keeps answering queries from the current projection until the rebuilt one has caught up,
then switches to it (needs the admin role). Offline, the projection is rebuilt from the
files, and its snapshot replaced, so esd starts from it. Both show their progress (events
read) on stderr: a bar on a terminal, plain lines otherwise.

exit codes: 0 done; 1 failure (unknown projection, cannot connect, permission denied, esd
running on DIR); 2 bad usage
)", "PROJECTION"},
      {"salvage", 0, {{"dry-run", false, false}}, kSalvageHelp},
      {"dump", 1, {{"position", true, false}}, R"(usage: esctl --data-dir DIR dump SEGMENT
       esctl --data-dir DIR dump --position P

Lists the batches of a segment file (a name like 00000000000000000000.seg, or a path): offset,
size, events, first and last position, segment id, commit time, checksum, and whether the
checksum holds. It stops at the end of the log or at the first batch that does not hold
(the rest of the segment cannot be framed). With --position P, only the batch holding
position P. Reads the files only; esd may be running. --json: one object per batch.

exit codes: 0 done; 4 a batch does not hold (it is listed, and the listing stops there);
1 no such segment or position; 2 bad usage
)", "SEGMENT", false, true},
      {"backup", 1, {}, R"(usage: esctl backup DEST                      (online)
       esctl --data-dir DIR backup DEST       (offline, on a stopped store)

Makes a consistent copy of the store in DEST, a directory that must not exist or be empty:
the snapshots, then every segment and index file up to the durable position when the copy
of the log begins, each synced to disk. Online, the daemon copies while it keeps serving, and
DEST is on the daemon's machine (needs the admin role). Prints that position: the copy holds
every event below it. Progress (bytes copied) goes to stderr. To restore, start esd with
--data-dir DEST: it starts from the copy as it is. Until the copy is complete and on disk,
DEST holds a file BACKUP-IN-PROGRESS: esd refuses to start on such a directory and verify
names it, so an interrupted backup is never taken for a whole one. Online, a backup whose
esctl was interrupted still runs to its end in the daemon.

exit codes: 0 done; 1 failure (DEST not new, cannot connect, permission denied, disk full,
esd running on DIR); 2 bad usage
)", "DEST"},
      {"streams", 0, {{"prefix", true, false}}, R"(usage: esctl streams [--prefix P]
       esctl --data-dir DIR streams [--prefix P]   (offline, on a stopped store)

Lists the streams (those whose name starts with P), in name order, one per line: name, last
version, number of events, last position and last write time. With --json, one object per
line. Never scans the log: stream tips come from the index files and the log's tail.

exit codes: 0 done; 1 failure (cannot connect, refused token, esd running on DIR); 2 bad usage
)"},
      {"status", 0, {}, R"(usage: esctl status

Prints the server's version, durable position (the number of events in the store), segment
count and bytes on disk, number of streams, data directory, open connections and
subscriptions, appends and events written since the start, uptime, and the order
projection's checkpoint and lag. Needs a token with the
admin role.

With --data-dir DIR (offline, on a stopped store): the durable position, segments and bytes,
streams, snapshot files, and the order projection's checkpoint and how far it lags.

exit codes: 0 done; 1 failure (cannot connect, permission denied, esd running on DIR);
2 bad usage
)"},
      {"append",
       1,
       {{"type", true, false},
        {"data", true, false},
        {"expected-version", true, false},
        {"id", true, false},
        {"metadata", true, false},
        {"content-type", true, false}},
       R"(usage: esctl append STREAM --type T --data DATA [options]

Appends one event to STREAM and prints its version and position. Streams order-ID belong to
the Order service: an append there is rejected (exit 3); change orders with `esctl order`.

  --type T                   the event type, e.g. CartOpened (required)
  --data DATA                the event's data (required); must be JSON when the content
                             type is JSON
  --content-type CT          default application/json
  --metadata META            the event's metadata; must be JSON when the content type is JSON
  --expected-version EV      any (default), no-stream, stream-exists (or exists), or the
                             stream's last version N; the append fails (exit 3) and prints the
                             actual version otherwise
  --id UUID                  the event id (default: a random one). Appending again with the same
                             id and content is an idempotent retry: it prints the original
                             positions and writes nothing

exit codes: 0 appended (or an idempotent retry); 1 failure (cannot connect, refused token,
permission denied: appends need the writer role, out of space); 2 bad usage (also data that
is not JSON for a JSON content type); 3 not done: wrong expected version (the actual one is
printed) or rejected by the server (the reason is printed: a reserved stream, too large,
overloaded)
)"},
      {"read",
       1,
       {{"from", true, false}, {"backward", false, false}, {"count", true, false}},
       R"(usage: esctl read STREAM [--from V] [--backward] [--count N]

Prints the events of STREAM in version order (or reverse order with --backward). STREAM
'$all' (quoted for the shell) is the global log: read '$all' is read-all (--from and
--count then count positions; --backward is refused).

  --from V        the first version to print (default: 0, or the last one with --backward)
  --backward      newest first
  --count N       at most N events (default: all of them, fetched 1000 at a time)

A stream without events prints nothing (and says so on stderr). With --data-dir DIR, reads
a stopped store's files instead of asking the daemon. Events in damaged bytes of the log are
never printed: the pages before them are, then the damage (file, offset, position) on
stderr.

exit codes: 0 done (also for a stream without events); 1 failure (cannot connect, esd running
on DIR); 2 bad usage; 4 the stream reaches damaged bytes of the log
)"},
      {"read-all",
       0,
       {{"from", true, false}, {"count", true, false}, {"stream-prefix", true, false}, {"type", true, true}},
       R"(usage: esctl read-all [--from P] [--count N] [--stream-prefix P] [--type T]...

Prints the events of the global log ($all) in position order.

  --from P            the first position to look at (default 0)
  --count N           at most N events (default: all of them up to the end of the log)
  --stream-prefix P   only events of streams whose name starts with P
  --type T            only events of type T; repeat for several types (any of them)

With --data-dir DIR, reads a stopped store's files instead of asking the daemon. At damaged
bytes of the log it prints the events before them, then the damage (file, offset, position)
on stderr, and stops.

exit codes: 0 done; 1 failure (cannot connect, esd running on DIR); 2 bad usage; 4 the log is
damaged at a position it had to read
)"},
      {"tail",
       0,
       {{"from", true, false}, {"stream-prefix", true, false}, {"type", true, true}},
       R"(usage: esctl tail [--from P|start|end] [--stream-prefix P] [--type T]...

Subscribes to the global log and prints events as they are appended, until interrupted
(Ctrl-C or SIGTERM: exit 0). Once the past is printed it says "-- caught up at P --" on
stderr (never on stdout).

  --from P|start|end  where to begin: a position, the start of the log, or (default) the end,
                      which prints only what is appended from now on
  --stream-prefix P   only events of streams whose name starts with P
  --type T            only events of type T; repeat for several types (any of them)

exit codes: 0 stopped by Ctrl-C or SIGTERM; 1 failure (cannot connect, the connection was lost
or the server ended the subscription: it prints --from P to go on where it stopped);
2 bad usage; 4 the server ended it at damaged bytes of the log (named on stderr; what was
before them was printed)
)"},
      {"snapshot", 0, {}, R"(usage: esctl [--data-dir DIR] snapshot (list | show | create | delete) ...

Aggregate snapshots (one per order stream) and the order projection's snapshot:
  snapshot list                                   every snapshot: what it covers, its version
                                                  or checkpoint, whether it verifies
  snapshot show (STREAM | --projection orders)    the state in it, as JSON
  snapshot create (STREAM | --projection orders)  write one now
  snapshot delete (STREAM | --projection orders)  remove it (it is rebuilt when needed)

Online the running daemon does the work (it writes snapshots itself; needs the admin role).
With --data-dir DIR, on a stopped store's files, holding its LOCK.

exit codes: 0 done; 1 failure (no such snapshot, one that does not verify, an order without
events, cannot connect, esd running on DIR); 2 bad usage
)", "", true},
      {"snapshot list", 0, {}, R"(usage: esctl [--data-dir DIR] snapshot list

Lists the snapshot files: for an order, its stream and the version it covers; for the
projection, its checkpoint and the number of orders in it; with the file's size. A file
that does not verify is listed as such. --json: one object per line with file, bytes, ok,
and stream and version, or projection, checkpoint and orders.

exit codes: 0 done; 1 failure (cannot connect, esd running on DIR); 2 bad usage
)"},
      {"snapshot show", 1, {{"projection", true, false}}, R"(usage: esctl [--data-dir DIR] snapshot show STREAM
       esctl [--data-dir DIR] snapshot show --projection orders

Prints the state in the snapshot as JSON: an order's fields, lines and recent commands; or
the projection's checkpoint and every order in it. Online, the daemon sends the file (in
pages of 16 MiB, all from the same file) and esctl checks and decodes it.

exit codes: 0 done; 1 no snapshot, or one that does not verify; 2 bad usage
)", "STREAM", false, true},
      {"snapshot create", 1, {{"projection", true, false}}, R"(usage: esctl [--data-dir DIR] snapshot create STREAM
       esctl [--data-dir DIR] snapshot create --projection orders

Writes a snapshot now: of an order stream (order-ID), from its events; or of the projection.
Online, the projection's snapshot is the running projection at its checkpoint; offline, the
projection is caught up from its current snapshot (or position 0) to the end of the log
first. --json: the new snapshot as `snapshot list` prints it.

exit codes: 0 written; 1 failure (the order has no events, cannot write, esd running on DIR);
2 bad usage
)", "STREAM", false, true},
      {"snapshot delete", 1, {{"projection", true, false}}, R"(usage: esctl [--data-dir DIR] snapshot delete STREAM
       esctl [--data-dir DIR] snapshot delete --projection orders

Removes the snapshot. Nothing is lost: an order is then loaded from its events, and the
projection is rebuilt from position 0 at the next start (a running daemon writes a new one
at its next snapshot).

exit codes: 0 deleted; 1 failure (no such snapshot, esd running on DIR); 2 bad usage
)", "STREAM", false, true},
      {"stream", 0, {}, kStreamOverview, "", true},
      {"stream delete",
       1,
       {{"hard", false, false}, {"expected-version", true, false}},
       R"(usage: esctl stream delete STREAM [--hard] [--expected-version V]

Deletes STREAM. Soft (the default): it reads as not found, and an append recreates it, its
versions going on after the last one. --hard: a tombstone; the stream can never be written,
read or deleted again (appends and reads answer "stream deleted", exit 3). Either way the
delete is an event of the stream "$$STREAM" that subscribers see, and `esctl scavenge start`
later frees the deleted events' disk space. Prints the delete's $all position.

  --hard                   delete for good
  --expected-version V     any (default), stream-exists, or the stream's last version N: the
                           delete is refused (exit 3) unless the stream is there
)"},
      {"stream truncate",
       1,
       {{"before", true, false}},
       R"(usage: esctl stream truncate STREAM --before VERSION

Removes the versions of STREAM below VERSION (at most its last version + 1, which removes
them all); the stream keeps its versions, and appends go on after the last one. Truncating
past the end is refused (exit 3) and names the stream's last version. A truncate never moves
back: a VERSION lower than an earlier one changes nothing.

  --before VERSION   the first version to keep (required)
)"},
      {"stream meta",
       1,
       {{"max-age", true, false}, {"max-count", true, false}, {"custom", true, false}, {"expected-version", true, false}},
       R"(usage: esctl stream meta STREAM [--max-age D] [--max-count N] [--custom JSON] [--expected-version V]

Without options, shows STREAM's metadata: max-age, max-count, truncate-before, whether it is
hard-deleted, the custom JSON, the metadata's own version, and which versions are readable.
With options, changes what they name and keeps the rest, then shows the result.

  --max-age D              remove events older than D: a whole number and one unit of ms, s,
                           m, h or d (500ms, 30s, 15m, 2h, 7d); none: no limit
  --max-count N            keep only the newest N events (1 or more); none: no limit
  --custom JSON            your own metadata, any JSON value, stored as given
  --expected-version V     the metadata's version (shown as "metadata version"), or
                           no-stream when it was never written, or any. Default: the version
                           esctl reads just before, so a change made meanwhile is not
                           overwritten unseen (exit 3)

Removal is final: raising max-count or max-age later brings nothing back. Bad values (a
count of 0 or below, a duration without a unit, JSON that does not parse) are refused
before anything is sent (exit 2).
)"},
      {"scavenge", 0, {}, kScavengeOverview, "", true},
      {"scavenge start", 0, {{"no-wait", false, false}}, kScavengeOverview},
      {"scavenge status", 0, {}, kScavengeOverview},
      {"scavenge stop", 0, {}, kScavengeOverview},
      {"order", 0, {}, kOrderOverview, "", true},
      {"order create",
       1,
       {{"customer", true, false}, kCommandId, kCorrelationId},
       R"(usage: esctl order create ID --customer C [--command-id ID] [--correlation-id ID]

Opens order ID for customer C. Exit 3 (rule order-already-exists) if the order exists.

  --customer C          the customer (required)
  --command-id ID       makes a retry safe (default: a random id, printed)
  --correlation-id ID   the business flow this order belongs to, recorded in its history
)",
       "ID"},
      {"order add-item",
       1,
       {{"sku", true, false}, {"qty", true, false}, {"price", true, false}, kCommandId},
       R"(usage: esctl order add-item ID --sku S --qty N --price CENTS [--command-id ID]

Adds N units of SKU S at CENTS each to the open order ID. Adding a SKU that is in the order
again adds to its line (at the same price only: rule price-mismatch otherwise). An order
holds at most 1000 lines (SKUs): rule too-many-lines for one more.

  --sku S           the SKU (required)
  --qty N           the number of units, 1 or more (required; the server allows up to 10000)
  --price CENTS     the unit price in cents, 0 or more (required)
  --command-id ID   makes a retry safe (default: a random id, printed)
)",
       "ID"},
      {"order remove-item",
       1,
       {{"sku", true, false}, {"qty", true, false}, kCommandId},
       R"(usage: esctl order remove-item ID --sku S [--qty N] [--command-id ID]

Removes N units of SKU S from the open order ID; without --qty, the whole line.

  --sku S           the SKU (required)
  --qty N           the number of units to remove, 1 or more (default: all of them)
  --command-id ID   makes a retry safe (default: a random id, printed)
)",
       "ID"},
      {"order place",
       1,
       {kCommandId},
       R"(usage: esctl order place ID [--command-id ID]

Places the open order ID; it must have at least one line (rule order-empty).

  --command-id ID   makes a retry safe (default: a random id, printed)
)",
       "ID"},
      {"order cancel",
       1,
       {{"reason", true, false}, kCommandId},
       R"(usage: esctl order cancel ID [--reason R] [--command-id ID]

Cancels order ID, open or placed (rule order-already-cancelled if it is cancelled).

  --reason R        why, recorded with the order
  --command-id ID   makes a retry safe (default: a random id, printed)
)",
       "ID"},
      {"order get",
       1,
       {{"at-version", true, false}, {"at-time", true, false}, {"min-position", true, false}},
       R"(usage: esctl order get ID [--at-version V | --at-time T | --min-position P]

Prints order ID: customer, status, lines (SKU, quantity, unit price), total (in cents and
in units), version, $all position, and when it was created, placed and cancelled. An order
that does not exist is an error (exit 1).

  --at-version V     the order as it was after version V of its stream (read from the stream)
  --at-time T        the order with every event committed at or before T, a UTC time like
                     2026-11-26T11:22:15.571709Z (fraction and Z optional; read from the stream)
  --min-position P   the latest state comes from a projection that follows the log: wait (up
                     to 5 s) until it has applied position P, e.g. the position a command
                     printed (default 0)

With --json, one object: orderId, customerId, status, lines [{sku, quantity,
unitPriceCents}], totalCents, total, version, lastPosition, createdAt, placedAt, cancelledAt
(null when not) and cancelReason.
)",
       "ID"},
      {"order list",
       0,
       {{"customer", true, false}, {"status", true, false}, {"min-position", true, false}},
       R"(usage: esctl order list --customer C [--status open|placed|cancelled] [--min-position P]

Prints customer C's orders, newest first, one per line: ID STATUS, total, lines, version and
creation time (fetched 100 at a time). With --json, one object per line as `order get` prints.

  --customer C       the customer (required)
  --status S         only orders with this status: open, placed or cancelled
  --min-position P   wait (up to 5 s) until the projection has applied position P (default 0)
)",
       "ID"},
      {"order history",
       1,
       {},
       R"(usage: esctl order history ID

Prints every event of order ID, oldest first (fetched 10,000 at a time), one per line:
VERSION POSITION TIME TYPE JSON COMMAND-ID, then the correlation id and who caused it. With
--json, one object per line with the keys version, position, time, type, json (the event's
fields as a JSON value), commandId, correlationId and causedBy. An order without events is
an error (exit 1).
)",
       "ID"},
      {"order forget-customer",
       1,
       {},
       R"(usage: esctl order forget-customer CUSTOMER

Erases customer CUSTOMER (GDPR; needs the admin role): every order stream of the customer is
hard-deleted (it can never be written or read again), its orders leave `order get` and
`order list` before this returns, their snapshots are deleted and the order projection's
snapshot is written again without them. An audit record stays in the system stream
$erasures: when, by which role, how many streams; no customer or order id. Prints how many
order streams were deleted and the audit record's position. The events' bytes leave the data
directory at the next scavenge (esctl scavenge start). Running it again is no error: it
deletes 0 streams (or what a failed run left) and writes another audit record.

With --json, one object: result, customerId, streamsDeleted, auditPosition (or result
"failed", code and message).

exit codes: 0 forgotten; 1 failure (cannot connect, permission denied: not an admin token,
server unavailable or the projection still catching up: run it again); 2 bad usage (an empty
CUSTOMER); 4 the order projection stopped at damaged bytes of the log (file, offset and
position on stderr): nothing was done
)",
       "CUSTOMER"},
      {"help", 0, {}, "usage: esctl help [COMMAND]\n"},
  };
  return kCommands;
}

const CommandSpec* FindCommand(std::string_view name) {
  for (const auto& c : Commands()) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

const FlagSpec* FindFlag(const CommandSpec& command, std::string_view name) {
  for (const auto& f : command.flags) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

// "one of: create, add-item, ..." for the group `group`.
std::string SubcommandList(const std::string& group) {
  std::string out;
  for (const auto& c : Commands()) {
    if (c.name.size() > group.size() && c.name.rfind(group + " ", 0) == 0) {
      out += (out.empty() ? "one of: " : ", ") + std::string(c.name.substr(group.size() + 1));
    }
  }
  return out;
}

bool IsGlobalSwitch(std::string_view name) { return name == "json" || name == "tls"; }
bool IsGlobalValue(std::string_view name) {
  return name == "connect" || name == "token" || name == "tls-ca" || name == "tls-server-name" ||
         name == "data-dir";
}

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

}  // namespace

std::optional<std::string> Invocation::Value(std::string_view flag) const {
  auto it = flags.find(flag);
  if (it == flags.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::vector<std::string> Invocation::Values(std::string_view flag) const {
  auto it = flags.find(flag);
  return it == flags.end() ? std::vector<std::string>{} : it->second;
}

Invocation ParseCommandLine(const std::vector<std::string>& args) {
  Invocation inv;
  std::optional<std::string> connect, token;
  const CommandSpec* command = nullptr;
  bool options_ended = false;
  std::vector<std::string> pending;  // positional arguments seen after the command name
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    const bool is_option = !options_ended && arg.size() > 1 && arg[0] == '-';
    if (!is_option) {
      if (command == nullptr) {
        command = arg.find(' ') == std::string::npos ? FindCommand(arg) : nullptr;  // not "order create"
        if (command == nullptr) throw UsageError("unknown command '" + arg + "'");
        inv.command = arg;
      } else if (command->group) {
        const std::string name = inv.command + " " + arg;
        command = FindCommand(name);
        if (command == nullptr) throw UsageError("unknown command '" + name + "'; " + SubcommandList(inv.command));
        inv.command = name;
      } else {
        pending.push_back(arg);
      }
      continue;
    }
    if (arg == "--") {
      options_ended = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") {
      inv.help = true;
      continue;
    }
    if (arg == "--version") {
      inv.version = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0) throw UsageError("unknown option '" + arg + "'");
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    }
    const FlagSpec* spec = command != nullptr ? FindFlag(*command, name) : nullptr;
    const bool takes_value = IsGlobalValue(name) || (spec != nullptr && spec->takes_value);
    if (!IsGlobalSwitch(name) && !IsGlobalValue(name) && spec == nullptr) {
      throw UsageError("unknown option '--" + name + "'" +
                       (command != nullptr ? " for " + std::string(command->name) : std::string()));
    }
    if (!takes_value && value) throw UsageError("option '--" + name + "' takes no value");
    if (takes_value && !value) {
      if (i + 1 >= args.size()) throw UsageError("option '--" + name + "' needs a value");
      value = args[++i];
    }
    if (name == "json") inv.global.json = true;
    else if (name == "tls") inv.global.tls = true;
    else if (name == "connect") connect = *value;
    else if (name == "token") token = *value;
    else if (name == "tls-ca") inv.global.tls_ca_file = *value, inv.global.tls = true;
    else if (name == "tls-server-name") inv.global.tls_server_name = *value;
    else if (name == "data-dir") inv.global.data_dir = *value;
    else {
      auto& values = inv.flags[name];
      if (!values.empty() && !spec->repeatable) throw UsageError("option '--" + name + "' is given twice");
      values.push_back(value.value_or(""));
    }
  }
  if (inv.command == "help") {
    inv.help = true;
    inv.command.clear();
    std::string topic;  // "order create" from `help order create`
    for (const std::string& word : pending) topic += (topic.empty() ? "" : " ") + word;
    if (!topic.empty() && topic != "help") {  // `help help`: the overview, which says what help does
      if (FindCommand(topic) == nullptr) throw UsageError("unknown command '" + topic + "'");
      inv.command = topic;
    }
    return inv;
  }
  if (command != nullptr && command->group && !inv.help) {
    throw UsageError(inv.command + ": missing the command; " + SubcommandList(inv.command));
  }
  if (command != nullptr && !inv.help && pending.size() != command->positional &&
      !(command->positional_optional && pending.size() < command->positional)) {
    if (pending.size() < command->positional) {
      throw UsageError(inv.command + ": missing the " + std::string(command->operand) + " argument");
    }
    throw UsageError(inv.command + ": unexpected argument '" + pending[command->positional] + "'");
  }
  inv.positional = std::move(pending);
  inv.global.connect = connect ? *connect : Env("ESD_CONNECT");
  if (inv.global.connect.empty()) inv.global.connect = "127.0.0.1:7400";
  inv.global.token = token ? *token : Env("ESD_TOKEN");
  return inv;
}

std::string OverviewText(std::string_view command_listing) {
  return std::string(kOverview) + "commands:\n" + std::string(command_listing) + "\n" + std::string(kOverviewOptions) +
         std::string(kExitCodeTable);
}

bool HasHelp(std::string_view command) { return FindCommand(command) != nullptr; }

std::string HelpText(const std::string& command) {
  if (const CommandSpec* spec = FindCommand(command)) {
    // forget-customer is no command on one order: its help says its own exit codes.
    const bool order = (command == "order" || command.rfind("order ", 0) == 0) && command != "order forget-customer";
    return std::string(spec->help) + (order ? std::string(kOrderExitCodes) : std::string()) +
           "\nglobal options: --connect ADDR, --token T, --json, --tls, --tls-ca FILE, --data-dir DIR (see esctl help);\n"
           "the exit codes mean the same for every command (the table: esctl help)\n";
  }
  return "no help for '" + command + "'; see esctl help\n";
}

uint64_t ParseNumber(std::string_view flag, const std::string& text) {
  uint64_t v = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || p != end) {
    throw UsageError("--" + std::string(flag) + ": expected a number (0..18446744073709551615), got '" + text + "'");
  }
  return v;
}

uint32_t ParseCount(std::string_view flag, const std::string& text) {
  uint32_t v = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || p != end || v == 0) {
    throw UsageError("--" + std::string(flag) + ": expected a count (1..4294967295), got '" + text + "'");
  }
  return v;
}

}  // namespace esd::esctl
