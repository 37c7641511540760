# The wire contract of esd. Business outcomes (a wrong expected version, a rejected append,
# a missing stream) are typed results; exceptions are for broken requests and bugs. Damage
# (bytes of the log that do not verify) is a typed result too, a `Damage`, for the caller
# whose request needs those bytes; the rest of the store keeps serving.
# Versions and positions are 0-based; "last" values are inclusive.
@0xe4d7da315dda49d1;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("esd::rpc");

interface Bootstrap {
  # The capability a connection starts with. It hands out nothing until a token is shown.

  login @0 (token :Text) -> (session :Session);
  # Checks `token` against the daemon's --auth file and returns a session with that token's
  # role. Without --auth every token (also the empty one) gets the admin role. An unknown
  # token fails the call (an exception: "unauthenticated").
}

enum Role {
  reader @0;   # reads and subscriptions
  writer @1;   # reader, plus appends (and order commands)
  admin @2;    # writer, plus Admin
}

interface Session {
  role @0 () -> (role :Role);
  # The role the token was granted.

  eventStore @1 () -> (store :EventStore);
  # The event store. A reader's appends are rejected with `permissionDenied`.

  admin @2 () -> (admin :Admin);
  # Administration; fails with "permission denied" below the admin role.

  orders @3 () -> (orders :OrderService);
  # The Order service. A reader's commands fail with `permissionDenied`; queries work.
}

struct ExpectedVersion {
  # What the writer checks before it appends; the append fails as a whole if it does not hold.
  union {
    any @0 :Void;            # no check
    noStream @1 :Void;       # the stream must have no event yet
    streamExists @2 :Void;   # the stream must have at least one event
    exact @3 :UInt64;        # the stream's last version must be this
  }
}

struct EventData {
  # One event to append.
  id @0 :Data;            # 16 bytes (a UUID), not all zero; a retried append with the same ids
                          # returns the original positions and writes nothing
  type @1 :Text;          # 1..255 bytes, e.g. "OrderPlaced"
  contentType @2 :Text;   # 0..255 bytes, e.g. "application/json"
  metadata @3 :Data;
  data @4 :Data;
}

struct RecordedEvent {
  # One event as stored.
  stream @0 :Text;
  version @1 :UInt64;           # in its stream
  position @2 :UInt64;          # in $all, dense: no gaps
  id @3 :Data;
  type @4 :Text;
  contentType @5 :Text;
  timestampMicros @6 :UInt64;   # commit time, never decreasing along $all
  metadata @7 :Data;
  data @8 :Data;
}

enum RejectCode {
  invalidArgument @0;       # bad name, size, count or content: fix the request
  idempotencyConflict @1;   # an event id was already written with other content
  outOfSpace @2;            # the disk is full; nothing was written; retry later
  permissionDenied @3;      # the session's role may not do this
  unavailable @4;           # the store cannot write (an I/O error, shutting down)
  dataLoss @5;              # what the request needs is damaged on disk (see its `damage`);
                            # nothing was written. Retrying does not help (restore the file)
  overloaded @6;            # the daemon has more appends queued for its disk than it takes
                            # (its bound on queued bytes); nothing was written. Retry after a
                            # short pause, with backoff
}

struct Damage {
  # Where the log does not verify. Every batch's checksum is checked before any of its
  # events leaves the store: nothing of this batch is served, nor anything after it in its
  # segment file; the rest of the store is. `esctl verify` lists it too.
  file @0 :Text;          # relative to the data directory, "segments/<name>.seg"; empty when
                          # the damage has no known place in a file (e.g. an event that
                          # does not decode as its type says)
  offset @1 :UInt64;      # in `file`: where the batch that does not verify starts
  hasPosition @2 :Bool;
  position @3 :UInt64;    # when hasPosition: the $all position that batch should start at
  reason @4 :Text;        # for people: what does not hold
}

struct AppendResult {
  union {
    ok :group {
      firstVersion @0 :UInt64;
      lastVersion @1 :UInt64;
      firstPosition @2 :UInt64;
      lastPosition @3 :UInt64;
      timestampMicros @4 :UInt64;
      alreadyWritten @5 :Bool;   # an idempotent retry: these are the original positions
    }
    wrongExpectedVersion :group {
      streamExists @6 :Bool;     # false: the stream has no event
      actualVersion @7 :UInt64;  # its last version, when streamExists
    }
    rejected :group {
      code @8 :RejectCode;
      reason @9 :Text;           # for people: what was wrong and what to do
    }
    streamDeleted @10 :Void;     # the stream was hard-deleted (deleteStream with `hard`): it can
                                 # never be written again; nothing was written
  }
}

enum Direction {
  forward @0;
  backward @1;
}

struct ReadStreamResult {
  union {
    events @0 :List(RecordedEvent);   # empty when `fromVersion` is past the end (forwards)
    notFound @1 :Void;                # the stream has no event
    damaged @2 :Damage;               # an event asked for is in damaged bytes: none is returned
    streamDeleted @5 :Void;           # the stream was hard-deleted: it is never read again (an esd
                                      # older than deletion never answers this)
  }
  # Where a page ended. A page may hold fewer events than asked for (16 MiB of events per
  # answer) without being the end: only `endOfStream` says that. An esd older than these
  # fields leaves them 0 and false.
  nextVersion @3 :UInt64;   # the `fromVersion` of the next page: forwards one past the last
                            # event returned, backwards one below it (0 once version 0 was
                            # returned); `fromVersion` when no event was returned (notFound,
                            # damaged, past the end, count 0)
  endOfStream @4 :Bool;     # forwards: the page reached the stream's last durable event (or
                            # `fromVersion` is past it); backwards: it reached version 0; also
                            # true for notFound and streamDeleted. False for damaged:
                            # reading from `nextVersion` again answers the same damage
}

struct Filter {
  # Which events of $all to deliver. Empty fields match everything; both set: both must hold.
  streamPrefix @0 :Text;
  eventTypes @1 :List(Text);   # any of these
}

struct StreamInfo {
  union {
    notFound @0 :Void;
    found :group {
      lastVersion @1 :UInt64;
      eventCount @2 :UInt64;
      lastPosition @3 :UInt64;
      lastWriteMicros @4 :UInt64;
      # What deleteStream, truncateStream and the metadata removed (an esd older than them
      # leaves these 0 and false). Versions are never reused: a deleted or truncated stream
      # keeps its lastVersion and eventCount (which counts removed events too).
      firstKept @5 :UInt64;     # the first version a read returns; lastVersion + 1 when none
                                # is left (soft-deleted, or truncated to its end)
      hardDeleted @6 :Bool;     # never written or read again
      hasMetadata @7 :Bool;     # the stream has metadata (see getStreamMetadata)
    }
  }
}

struct StreamMetadata {
  # A stream's lifecycle settings (docs/storage.md, "Lifecycle"), kept in the log as the last
  # event of the stream "$$<stream>". An event is removed (no read returns it any more, and
  # `esctl scavenge` frees its bytes) when it is older than maxAge, when more than maxCount
  # newer events follow it, or when its version is below truncateBefore.
  hasMaxAge @0 :Bool;
  maxAgeMicros @1 :UInt64;
  hasMaxCount @2 :Bool;
  maxCount @3 :UInt64;          # at least 1
  truncateBefore @4 :UInt64;    # never moves back: a lower value keeps the current one
  hardDeleted @5 :Bool;         # set by deleteStream with `hard`; ignored in setStreamMetadata
  custom @6 :Data;              # the user's own bytes, kept as given
}

struct LifecycleResult {
  # What deleteStream, truncateStream and setStreamMetadata did. Each writes one event to the
  # stream "$$<stream>" (its metadata), durable before it answers; from then on no read
  # returns what it removed. Failing, each writes nothing.
  union {
    ok :group {
      position @0 :UInt64;          # the metadata event's $all position
      metadataVersion @1 :UInt64;   # its version in "$$<stream>": the expected version for
                                    # the next setStreamMetadata
      timestampMicros @2 :UInt64;
    }
    wrongExpectedVersion :group {
      streamExists @3 :Bool;        # false: the stream (for setStreamMetadata: its metadata)
                                    # has no event
      actualVersion @4 :UInt64;     # its last version, when streamExists
    }
    streamDeleted @5 :Void;         # the stream was hard-deleted: nothing more can be done to it
    notFound @6 :Void;              # deleteStream, truncateStream: the stream has no event
    rejected :group {
      code @7 :RejectCode;          # invalidArgument (a reserved name, maxCount 0, a truncate
                                    # past the end), permissionDenied (needs writer), ...
      reason @8 :Text;              # for people: what was wrong and what to do
    }
  }
}

struct StreamMetadataResult {
  union {
    ok :group {
      metadata @0 :StreamMetadata;  # the defaults (nothing removed) when none was written
      written @1 :Bool;             # false: the stream never had metadata
      metadataVersion @2 :UInt64;   # when written: the version of "$$<stream>" it is at
    }
    rejected :group {
      code @3 :RejectCode;          # invalidArgument: not a stream name
      reason @4 :Text;
    }
  }
}

struct SubscribeFrom {
  union {
    position @0 :UInt64;   # $all from this position (inclusive)
    start @1 :Void;        # $all from position 0
    end @2 :Void;          # only what is appended from now on
    stream :group {        # one stream, from a version (inclusive)
      name @3 :Text;
      fromVersion @4 :UInt64;
    }
  }
}

interface EventStore {
  append @0 (stream :Text, expected :ExpectedVersion, events :List(EventData)) -> (result :AppendResult);
  # Appends 1..N events to one stream as one atomic batch; answers once they are durable.

  readStream @1 (stream :Text, fromVersion :UInt64, count :UInt32, direction :Direction)
      -> (result :ReadStreamResult);
  # Up to `count` durable events of `stream` from `fromVersion` on (or down, backwards;
  # use the largest UInt64 to read backwards from the end): at most 10,000 and, past the
  # first, at most 16 MiB of them. Continue from `result.nextVersion` until
  # `result.endOfStream`; a short page is not the end.

  readAll @2 (fromPosition :UInt64, count :UInt32, filter :Filter, records :Bool)
      -> (events :List(RecordedEvent), nextPosition :UInt64, endOfLog :Bool, damage :Damage, records :Data);
  # Up to `count` durable events of $all from `fromPosition` that pass `filter`. With
  # `records`, they come in the answer's `records` (as Subscriber.events's) and `events` is
  # empty; a server that predates them answers with `events` all the same. Continue
  # from `nextPosition`; `endOfLog` says nothing durable lies past what was scanned.
  # `damage` is set (hasDamage) when the scan reached damaged bytes: `events` are the ones
  # before it, `nextPosition` is where the scan stopped (the damage's position, unless
  # `fromPosition` was already past it in the same segment file), `endOfLog` is false.
  # Reading again from there answers the same damage.

  streamInfo @3 (stream :Text) -> (info :StreamInfo);

  subscribe @4 (from :SubscribeFrom, filter :Filter, subscriber :Subscriber, records :Bool)
      -> (subscription :Subscription);
  # Pushes every event from `from` on that passes `filter` to `subscriber`, first the past
  # (catch-up), then, after one `caughtUp`, what is appended from then on, as one cursor:
  # no gap and no duplicate at the switch. Dropping `subscription` (or disconnecting)
  # cancels it. `records`: the subscriber takes `Subscriber.events`'s `records` (a server
  # that predates it sends `events` all the same).

  listStreams @5 (prefix :Text, after :Text, count :UInt32) -> (streams :List(StreamSummary), more :Bool);
  # Streams whose name starts with `prefix`, in name order, after the name `after` ("" for
  # the first page), at most `count` (capped at 10,000). `more`: another page follows.

  # ---- Lifecycle (docs/storage.md, "Lifecycle"). Changes need the writer role: a reader's
  # is rejected with permissionDenied. Names starting with '$' are reserved (invalidArgument).

  deleteStream @6 (stream :Text, expected :ExpectedVersion, hard :Bool) -> (result :LifecycleResult);
  # `expected` is checked against the stream. Soft (hard false): the stream reads as not found
  # until an append recreates it, its versions going on after the last one. Hard: a tombstone;
  # appends, reads and lifecycle calls get streamDeleted from then on. notFound when the stream
  # has no event.

  truncateStream @7 (stream :Text, before :UInt64) -> (result :LifecycleResult);
  # Removes the versions below `before`, which is at most the last version + 1 (rejected
  # invalidArgument past that). notFound when the stream has no event.

  setStreamMetadata @8 (stream :Text, expected :ExpectedVersion, metadata :StreamMetadata)
      -> (result :LifecycleResult);
  # Replaces the stream's metadata as a whole. `expected` is checked against the metadata's
  # own version (LifecycleResult.ok.metadataVersion; noStream: none written yet). Removal is
  # final: what the old metadata removed stays removed, whatever the new one says.

  getStreamMetadata @9 (stream :Text) -> (result :StreamMetadataResult);
  # The stream's metadata as written last (any role).
}

struct StreamSummary {
  name @0 :Text;
  lastVersion @1 :UInt64;
  eventCount @2 :UInt64;
  lastPosition @3 :UInt64;
  lastWriteMicros @4 :UInt64;
}

interface Subscriber {
  # Implemented by the client.

  events @0 (events :List(RecordedEvent), records :Data) -> stream;
  # A batch of events in log order. Flow control: the server sends more only as the
  # client takes these.
  #
  # When `subscribe` asked for `records`, the events come in `records` instead (`events` is
  # empty): one after the other, each as the log stores it, which the server copies in
  # whole runs rather than field by field (W4: ~a quarter of the daemon's CPU was building
  # `events`). Each record, little-endian: position :UInt64, version :UInt64, id (16 bytes),
  # timestampMicros :UInt64, recordSize :UInt32, dataSize :UInt32, metadataSize :UInt32,
  # streamSize :UInt16, typeSize :UInt16, contentTypeSize :UInt16, flags :UInt16 (0),
  # reserved :UInt32 (0) -- 64 bytes -- then the stream name, type, content type, metadata
  # and data, then zero padding to `recordSize`, a multiple of 8. The server checked every
  # record's checksum before sending it.

  caughtUp @1 (position :UInt64);
  # Once: everything durable before `position` has been delivered; live events follow.

  dropped @2 (reason :Text, damage :Damage);
  # The server ended the subscription (shutting down, or an error reading the log). When it
  # reached damaged bytes of the log, `damage` (hasDamage) says where, and everything
  # before that position that passed the filter was delivered; `reason` names it too.
}

interface Subscription {
  # Held by the client; dropping it cancels the subscription.
  cancel @0 ();
}

struct ServerStatus {
  version @0 :Text;
  durablePosition @1 :UInt64;   # events in the store
  segments @2 :UInt64;
  dataDir @3 :Text;
  connections @4 :UInt32;
  subscriptions @5 :UInt32;
  appends @6 :UInt64;           # since start
  eventsWritten @7 :UInt64;
  uptimeSeconds @8 :UInt64;
  projectionCheckpoint @9 :UInt64;  # the order projection: next $all position it applies
  projectionLag @10 :UInt64;        # durable events it has not applied yet
  bytes @11 :UInt64;                # of segment and index files: their length (st_size), holes included
  streams @12 :UInt64;
  logBytes @13 :UInt64;             # of log written: each segment from its start to its last batch
  allocatedBytes @14 :UInt64;       # disk blocks of segment and spare files (st_blocks * 512)
}

interface Admin {
  status @0 () -> (status :ServerStatus);

  rebuildProjection @1 (name :Text, progress :ProgressSink) -> (eventsRead :UInt64, checkpoint :UInt64);
  # Replays $all from position 0 into a fresh copy of the projection ("orders") while
  # queries keep being answered from the current one; answers once the copy has caught up
  # and taken over. An unknown name fails the call. Progress in events: read, and the
  # durable position it is catching up with.

  backup @2 (dest :Text, progress :ProgressSink) -> (position :UInt64, bytes :UInt64);
  # Copies the store into `dest`, a directory on the daemon's machine that must not exist
  # or be empty: snapshots first, then every segment and index file up to what is durable
  # when the copy of the log begins (`position`: every event below it). Appends go on
  # meanwhile. esd starts on `dest` as it is: restoring is starting esd there. Progress in
  # bytes of log copied.

  verify @3 (progress :ProgressSink) -> (report :VerifyReport);
  # Checks the store's files while the daemon serves: segment headers and joins, every
  # batch checksum, index files against the log, snapshot checksums. Exactly as strict as
  # opening the store: what open refuses is a problem, what open repairs by itself is a
  # note. Progress in bytes of log checked.

  listSnapshots @4 (after :Text, count :UInt32) -> (snapshots :List(SnapshotInfo), more :Bool);
  # The store's snapshot files in file name order, after the name `after` ("" for the first
  # page), at most `count` (capped at 10,000), each with whether it verifies. `more`:
  # another page follows.

  readSnapshot @5 (target :SnapshotTarget, offset :UInt64, maxBytes :UInt32)
      -> (found :Bool, file :Data, problem :Text, totalBytes :UInt64, fileTag :UInt64);
  # The snapshot file's bytes as they are on disk (header and body, see domain/snapshots.h),
  # for the caller to check and decode, one page at a time: a projection's snapshot can be
  # larger than a message may be (64 MiB). `found` false: there is none.
  # `offset`: the first byte of the file to send. `maxBytes`: the most to send, capped at
  # 16 MiB; 0 asks for the whole file in one answer, as esd did before pages (refused over
  # 48 MiB, which would not fit in one message).
  # `file`: the bytes from `offset` on, fewer than asked only at the end of the file (none
  # when `offset` is at or past it). `totalBytes`: the file's size.
  # `fileTag`: which file these bytes came from (its identity on disk, its size and times,
  # and its header, which holds the body's checksum). The daemon replaces a snapshot by
  # writing a new file, so a page whose tag differs from the first page's is from another
  # file: start again from offset 0 rather than join the two.
  # `problem`: why the daemon would not load the file ("" when it would), as
  # SnapshotInfo.problem; judged on the whole file the page that reaches its end came from,
  # and sent with that page only ("" on the others).

  createSnapshot @6 (target :SnapshotTarget) -> (found :Bool, info :SnapshotInfo);
  # Writes a snapshot now: of an order from its stream, or of the projection as it is
  # (at its checkpoint). `found` false: the order has no events, nothing was written.

  deleteSnapshot @7 (target :SnapshotTarget) -> (found :Bool, file :Text);
  # Removes the snapshot file. Nothing is lost: an order is then loaded from its events,
  # and the projection writes a new snapshot at its next one (or rebuilds at a start).

  scavengeStart @8 () -> (started :Bool, reason :Text, status :ScavengeStatus);
  # Starts rewriting the sealed segments without their removed events, in the background, and
  # answers at once. `started` false: it did not start, `reason` says why (when one is running
  # already, `status` is that one). Follow it with scavengeStatus.

  scavengeStatus @9 () -> (status :ScavengeStatus);
  # The running scavenge, or the last one since the daemon started.

  scavengeStop @10 () -> (wasRunning :Bool, status :ScavengeStatus);
  # Asks a running scavenge to stop after the segment it is on, and answers at once (state
  # stopping, then stopped). What it rewrote stays rewritten; a later start goes on.
}

enum ScavengeState {
  idle @0;       # none since the daemon started
  running @1;
  stopping @2;   # asked to stop: ends after the segment it is on
  finished @3;
  stopped @4;
  failed @5;     # see ScavengeStatus.error
}

struct ScavengeStatus {
  state @0 :ScavengeState;
  startedMicros @1 :UInt64;
  finishedMicros @2 :UInt64;    # 0 while it runs
  segmentsTotal @3 :UInt64;     # sealed segments it looks at
  segmentsDone @4 :UInt64;
  segmentsRewritten @5 :UInt64;
  bytesTotal @6 :UInt64;        # of log in those segments
  bytesRead @7 :UInt64;
  bytesReclaimed @8 :UInt64;    # disk blocks freed so far
  eventsRemoved @9 :UInt64;     # removed events whose bytes are gone
  error @10 :Text;              # failed: why
  readRateCap @11 :UInt64;      # bytes per second it reads at most (esd --scavenge-max-read-rate); 0: none
}

interface ProgressSink {
  # Implemented by the caller of a long Admin call to see how far it is. While the call
  # runs, called at most every 250 ms, when the figures have changed and there is a total;
  # then once more, with done == total, just before the call answers.
  progress @0 (done :UInt64, total :UInt64) -> stream;
}

struct SnapshotTarget {
  union {
    stream @0 :Text;       # an order's stream, "order-<id>"
    projection @1 :Text;   # a projection's name: "orders"
  }
}

struct SnapshotInfo {
  file @0 :Text;           # relative to the data directory
  bytes @1 :UInt64;
  ok @2 :Bool;             # checksums, format version and body hold; if not, only the kind
                           # (order or projection) below is known
  union {
    order :group {
      stream @3 :Text;
      version @4 :UInt64;  # the stream version the snapshot covers
    }
    projection :group {
      name @5 :Text;
      checkpoint @6 :UInt64;  # the next $all position it would apply
      orders @7 :UInt64;
    }
  }
  problem @8 :Text;        # why it does not verify (would not be loaded), when not ok: damaged,
                           # or the log does not hold what it covers (ahead of the log)
}

struct VerifyReport {
  segments @0 :UInt64;
  batches @1 :UInt64;
  events @2 :UInt64;
  indexFiles @3 :UInt64;
  snapshots @4 :UInt64;
  problems @5 :List(VerifyProblem);  # damage: what open refuses or a read would not serve
  tornTail @6 :Text;           # empty: none (a batch being written shows up here, harmlessly);
                               # also one of `notes`
  notes @7 :List(Text);        # what the next open repairs by itself with nothing acknowledged
                               # lost (a missing or damaged index file, a torn unacknowledged
                               # tail): not problems
}

struct VerifyProblem {
  file @0 :Text;
  offset @1 :UInt64;
  hasPosition @2 :Bool;
  position @3 :UInt64;
  what @4 :Text;
}

# ---- The Order service -----------------------------------------------------------------
# Commands decide against the order's current state and append its events to the stream
# "order-<id>"; queries answer from projections of $all (getOrder, listOrders) or from the
# stream itself (time travel, history).

struct CommandMeta {
  commandId @0 :Text;       # unique per command; a retry with the same id is answered with
                            # the original result and writes nothing
  correlationId @1 :Text;   # the business flow the command belongs to
}

struct CommandResult {
  union {
    ok :group {
      version @0 :UInt64;          # the order's version after the command
      position @1 :UInt64;         # $all position of its last event: pass it as minPosition
                                   # to read your own write
      alreadyApplied @2 :Bool;     # a retry: nothing new was written
    }
    rejected :group {
      rule @3 :Text;               # the business rule that refused it, e.g. "order-not-open"
      message @4 :Text;
    }
    conflict @5 :Void;             # the order kept changing: retried, then gave up
    failed :group {
      code @6 :RejectCode;         # permissionDenied, unavailable, outOfSpace, dataLoss ...
      reason @7 :Text;
      damage @8 :Damage;           # dataLoss: where (the order's events could not be loaded)
    }
  }
}

enum OrderStatus {
  none @0;
  open @1;
  placed @2;
  cancelled @3;
}

struct OrderLine {
  sku @0 :Text;
  quantity @1 :UInt32;
  unitPriceCents @2 :Int64;
}

struct OrderView {
  orderId @0 :Text;
  customerId @1 :Text;
  status @2 :OrderStatus;
  lines @3 :List(OrderLine);
  totalCents @4 :Int64;
  version @5 :UInt64;
  lastPosition @6 :UInt64;
  createdAtMicros @7 :UInt64;
  placedAtMicros @8 :UInt64;     # 0 unless placed
  cancelledAtMicros @9 :UInt64;  # 0 unless cancelled
  cancelReason @10 :Text;
}

struct AsOf {
  union {
    latest @0 :Void;
    version @1 :UInt64;          # the order after this version of its stream
    timeMicros @2 :UInt64;       # the order with every event committed at or before this time
  }
}

struct OrderResult {
  union {
    found @0 :OrderView;
    notFound @1 :Void;
    timeout @2 :Void;            # the projection had not reached minPosition in time
    damaged @3 :Damage;          # as of a version or time: the order's events reach damaged
                                 # bytes; latest: the projection stopped at damage before
                                 # minPosition (it answers only below that position)
  }
}

struct HistoryEvent {
  version @0 :UInt64;
  position @1 :UInt64;
  timestampMicros @2 :UInt64;
  type @3 :Text;
  json @4 :Text;                 # the event's fields as JSON; "null" for an event that is not
                                 # an Order service event (appended directly, before order
                                 # streams were reserved for the service)
  commandId @5 :Text;
  correlationId @6 :Text;
  causedBy @7 :Text;
}

struct ForgetCustomerResult {
  union {
    ok :group {
      streamsDeleted @0 :UInt64;   # order streams this call hard-deleted (0 when the customer
                                   # has none left: forgetting again is no error)
      auditPosition @1 :UInt64;    # $all position of the CustomerForgotten record in $erasures
    }
    failed :group {
      code @2 :RejectCode;         # permissionDenied (needs admin), invalidArgument (an empty
                                   # customer id), unavailable (the projection has not caught
                                   # up yet, or the server is stopping), outOfSpace, dataLoss
      reason @3 :Text;             # for people: what happened, what was done, what to do
      damage @4 :Damage;           # dataLoss: where the projection stopped at damage
    }
  }
}

interface OrderService {
  createOrder @0 (meta :CommandMeta, orderId :Text, customerId :Text) -> (result :CommandResult);
  addItem @1 (meta :CommandMeta, orderId :Text, sku :Text, quantity :UInt32, unitPriceCents :Int64)
      -> (result :CommandResult);
  removeItem @2 (meta :CommandMeta, orderId :Text, sku :Text, quantity :UInt32)
      -> (result :CommandResult);
  # quantity 0 removes the whole line.
  placeOrder @3 (meta :CommandMeta, orderId :Text) -> (result :CommandResult);
  cancelOrder @4 (meta :CommandMeta, orderId :Text, reason :Text) -> (result :CommandResult);

  getOrder @5 (orderId :Text, asOf :AsOf, minPosition :UInt64) -> (result :OrderResult);
  # latest: from the GetOrder projection, once it has applied the event at minPosition (a
  # command's result position; 0 does not wait); waits up to 5 s, then `timeout`. A
  # projection that reached damage in the log stops there and answers from what it applied
  # before it; for a minPosition at or past the damage, `damaged`.
  # version / time: from the stream.

  listOrders @6 (customerId :Text, status :OrderStatus, pageSize :UInt32, pageToken :Text,
                 minPosition :UInt64)
      -> (orders :List(OrderView), nextPageToken :Text, timeout :Bool, damage :Damage);
  # A customer's orders, newest first; status `none` lists all. nextPageToken is empty on
  # the last page. `damage` (hasDamage) instead of orders: the projection stopped at damage
  # in the log before minPosition.

  history @7 (orderId :Text, fromVersion :UInt64)
      -> (events :List(HistoryEvent), damage :Damage, nextVersion :UInt64, endOfHistory :Bool);
  # The audit trail: the order's events from version `fromVersion` on (0 for the first
  # page), oldest first, at most 10,000 per call and, past the first, about 16 MiB of them.
  # Continue from `nextVersion` (one past the last event returned; `fromVersion` when none)
  # until `endOfHistory`: the page reached the order's last event (also true for an order
  # without events, and past its end). `damage` (hasDamage) instead of events: the order's
  # stream reaches damaged bytes; `endOfHistory` is then false and `nextVersion`
  # `fromVersion`. An esd older than these fields answers the first 10,000 events only,
  # with 0 and false. A deleted order has no events: empty, endOfHistory.

  forgetCustomer @8 (customerId :Text) -> (result :ForgetCustomerResult);
  # Erases a customer (GDPR; admin role only; docs/domain.md "Forgetting a customer"): every
  # order stream of the customer (as the by-customer projection knows them, caught up to the
  # log's end first) is hard-deleted, its orders leave getOrder and listOrders before this
  # answers, their snapshots are removed and the projection's snapshot is written again
  # without them; an audit record (when, which role, how many streams; no customer or order
  # id) is appended to the system stream $erasures. The events' bytes leave the data
  # directory at the next scavenge. Idempotent: again, it deletes 0 streams and audits again.
}
