// esd::client: a small, typed C++ client for esd over Cap'n Proto RPC. esctl and esbench
// use it; nothing else talks raw RPC.
//
//   auto c = esd::client::Client::Connect({.address = "127.0.0.1:7400", .token = "t"});
//   auto r = c->Append("cart-1", Expected::NoStream(), {NewEvent::Json("CartOpened", "{}")});
//   if (r.outcome == AppendResult::Outcome::kWrongExpectedVersion) ...
//
// Threads: a Client runs on the KJ event loop of the thread that created it, shared by all
// Clients of that thread, and must be used on that thread only. The synchronous calls run
// the loop until their answer arrives, so subscription callbacks (of any Client of the
// thread) run inside any call, or RunFor/RunUntil.
// Errors: a broken connection, a refused login, or a request the server calls malformed
// throw esd::client::Error; business outcomes (a wrong expected version, a rejected
// append, a missing stream) are values.
// Damage (bytes of the daemon's log that do not verify, which it never serves) is told
// apart everywhere, with a Damage saying where: a `damage` field where the result has
// something else to give (ReadAll's events before it, an order query, a command outcome
// with code "data-loss", a subscription's end), else Error::Kind::kDamaged with
// Error::damage() (ReadStream, History).
#pragma once

#include <kj/async.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace esd::client {

using EventId = std::array<uint8_t, 16>;
EventId NewEventId();  // random (version 4 UUID); a forked child draws ids of its own
std::string FormatEventId(const EventId& id);                   // 8-4-4-4-12 hex
std::optional<EventId> ParseEventId(std::string_view text);

struct NewEvent {
  EventId id = NewEventId();
  std::string type;
  std::string content_type;
  std::string metadata;
  std::string data;
  static NewEvent Json(std::string type, std::string json);
};

struct RecordedEvent {
  std::string stream;
  uint64_t version = 0;
  uint64_t position = 0;
  EventId id{};
  std::string type;
  std::string content_type;
  uint64_t timestamp_micros = 0;
  std::string metadata;
  std::string data;
};

struct Expected {
  enum class Kind { kAny, kNoStream, kStreamExists, kExact };
  Kind kind = Kind::kAny;
  uint64_t version = 0;
  static Expected Any() { return {}; }
  static Expected NoStream() { return {Kind::kNoStream, 0}; }
  static Expected StreamExists() { return {Kind::kStreamExists, 0}; }
  static Expected Exact(uint64_t v) { return {Kind::kExact, v}; }
  // "any", "no-stream", "exists" or a number.
  static std::optional<Expected> Parse(std::string_view text);
};

struct AppendResult {
  enum class Outcome { kOk, kWrongExpectedVersion, kRejected, kStreamDeleted };
  Outcome outcome = Outcome::kOk;
  // kOk
  uint64_t first_version = 0, last_version = 0, first_position = 0, last_position = 0;
  uint64_t timestamp_micros = 0;
  bool already_written = false;
  // kWrongExpectedVersion: nullopt when the stream has no event
  std::optional<uint64_t> actual_version;
  // kRejected: "invalid-argument", "idempotency-conflict", "out-of-space", "overloaded"
  // (retry after a pause), "permission-denied" or "unavailable", and a sentence for people
  std::string reject_code;
  std::string reason;

  bool ok() const { return outcome == Outcome::kOk; }
};

// An event as a view into the received message: valid only during the callback that gets
// it. For consumers that look at events without keeping them (no copy, no allocation).
struct RecordedEventView {
  std::string_view stream;
  uint64_t version = 0;
  uint64_t position = 0;
  EventId id{};
  std::string_view type;
  std::string_view content_type;
  uint64_t timestamp_micros = 0;
  std::string_view metadata;
  std::string_view data;
};

struct StreamInfo {
  uint64_t last_version = 0;
  uint64_t event_count = 0;  // versions 0..last_version, removed ones included
  uint64_t last_position = 0;
  uint64_t last_write_micros = 0;
  // What deletes, truncates and metadata removed (an esd older than them says 0 and false):
  // the first version a read returns, last_version + 1 when none is left.
  uint64_t first_kept = 0;
  bool hard_deleted = false;
  bool has_metadata = false;
};

// ---- Stream lifecycle (docs/storage.md, "Lifecycle") ----
// A stream's metadata: what is removed of it (no read returns it; `esctl scavenge` frees
// its bytes). Kept in the log as the last event of the stream "$$<stream>".
struct StreamMetadata {
  std::optional<uint64_t> max_age_micros;  // events older than this are removed
  std::optional<uint64_t> max_count;       // only the newest max_count events remain (>= 1)
  uint64_t truncate_before = 0;            // versions below this are removed; never moves back
  bool hard_deleted = false;               // set by DeleteStream(hard); ignored when setting
  std::string custom;                      // the user's own bytes, kept as given
};

// What DeleteStream, TruncateStream and SetStreamMetadata did. Each wrote one event to
// "$$<stream>" (kOk), or nothing.
struct LifecycleResult {
  enum class Outcome { kOk, kWrongExpectedVersion, kStreamDeleted, kNotFound, kRejected };
  Outcome outcome = Outcome::kOk;
  // kOk: the metadata event's $all position and its version in "$$<stream>" (the expected
  // version of the next SetStreamMetadata)
  uint64_t position = 0, metadata_version = 0, timestamp_micros = 0;
  // kWrongExpectedVersion: nullopt when the stream (SetStreamMetadata: its metadata) has no event
  std::optional<uint64_t> actual_version;
  // kRejected: as AppendResult's ("invalid-argument" for a reserved name, a max_count of 0 or
  // a truncate past the end; "permission-denied" below the writer role ...), and a sentence
  std::string reject_code;
  std::string reason;
  bool ok() const { return outcome == Outcome::kOk; }
};

struct StreamMetadataResult {
  bool ok = true;                    // false: rejected (not a stream name): reject_code, reason
  StreamMetadata metadata;           // the defaults (nothing removed) when none was written
  std::optional<uint64_t> metadata_version;  // nullopt: the stream never had metadata
  std::string reject_code;
  std::string reason;
};

// A scavenge (Client::ScavengeStart) as the daemon reports it.
struct ScavengeStatus {
  std::string state;  // "idle" (none since the daemon started), "running", "stopping",
                      // "finished", "stopped" or "failed"
  uint64_t started_micros = 0, finished_micros = 0;  // finished: 0 while it runs
  uint64_t segments_total = 0, segments_done = 0, segments_rewritten = 0;
  uint64_t bytes_total = 0, bytes_read = 0, bytes_reclaimed = 0;
  uint64_t events_removed = 0;
  uint64_t read_rate_cap = 0;  // bytes/s it reads at most (esd --scavenge-max-read-rate); 0: none
  std::string error;  // "failed": why
  bool running() const { return state == "running" || state == "stopping"; }
};

struct Filter {
  std::string stream_prefix;
  std::vector<std::string> event_types;  // any of these
};

// Where the daemon's log does not verify (protocol/esd.capnp, struct Damage).
struct Damage {
  std::string file;                  // "segments/<name>.seg"; empty: no known place in a file
  uint64_t offset = 0;               // in `file`: the batch that does not verify
  std::optional<uint64_t> position;  // the $all position that batch should start at
  std::string reason;                // what does not hold, for people
  // "segments/X.seg offset O (position P): reason" (the parts that are known)
  std::string ToString() const;
};

// Where a page of one stream ended (ReadStream): continue from `next_version` until
// `end_of_stream`. A page may hold fewer events than asked for without being the end (the
// daemon sends at most 16 MiB of events per answer).
struct StreamPageEnd {
  uint64_t next_version = 0;   // the `from` of the next page: forwards one past the last event
                               // returned, backwards one below it; `from` when none was
  bool end_of_stream = false;  // forwards: the page reached the stream's last durable event;
                               // backwards: version 0; true for a stream without events
  bool stream_deleted = false; // ReadStream returned nullopt because the stream was
                               // hard-deleted (not merely without events)
};

struct ReadAllResult {
  std::vector<RecordedEvent> events;
  uint64_t next_position = 0;  // continue from here
  bool end_of_log = false;
  // The scan reached damage: `events` are the ones before it, `next_position` is where it
  // stopped; reading on from there meets the same damage.
  std::optional<Damage> damage;
};

struct SubscribeFrom {
  enum class Kind { kPosition, kStart, kEnd, kStream };
  Kind kind = Kind::kStart;
  uint64_t position = 0;
  std::string stream;
  uint64_t version = 0;
  static SubscribeFrom Position(uint64_t p) { return {Kind::kPosition, p, {}, 0}; }
  static SubscribeFrom Start() { return {Kind::kStart, 0, {}, 0}; }
  static SubscribeFrom End() { return {Kind::kEnd, 0, {}, 0}; }
  static SubscribeFrom Stream(std::string name, uint64_t from_version) {
    return {Kind::kStream, 0, std::move(name), from_version};
  }
};

struct ServerStatus {
  std::string version;
  uint64_t durable_position = 0;
  uint64_t segments = 0;
  std::string data_dir;
  uint32_t connections = 0;
  uint32_t subscriptions = 0;
  uint64_t appends = 0;
  uint64_t events_written = 0;
  uint64_t uptime_seconds = 0;
  uint64_t projection_checkpoint = 0;  // the order projection
  uint64_t projection_lag = 0;
  uint64_t bytes = 0;    // of segment and index files (their length, holes included)
  uint64_t streams = 0;
  uint64_t log_bytes = 0;        // of log written (preallocated zeros not counted)
  uint64_t allocated_bytes = 0;  // disk blocks of segment and spare files
};

// ---- the Order service ----
struct CommandOutcome {
  enum class Kind { kOk, kRejected, kConflict, kFailed };
  Kind kind = Kind::kOk;
  uint64_t version = 0;    // kOk: the order's version after the command
  uint64_t position = 0;   // kOk: pass as min_position to read your own write
  bool already_applied = false;
  std::string rule;        // kRejected: the business rule, e.g. "order-not-open"
  std::string message;     // kRejected / kFailed: for people
  std::string code;        // kFailed: "permission-denied", "unavailable", "data-loss", ...
  std::optional<Damage> damage;  // code "data-loss": where the order's events are damaged
  bool ok() const { return kind == Kind::kOk; }
};

// OrderService.forgetCustomer: the customer's order streams hard-deleted, and where the
// audit record of it went.
struct ForgetOutcome {
  bool ok = false;
  uint64_t streams_deleted = 0;  // ok: 0 when the customer had no orders (left)
  uint64_t audit_position = 0;   // ok: $all position of the CustomerForgotten record in $erasures
  std::string code;              // !ok: "permission-denied", "invalid-argument", "unavailable", ...
  std::string message;           // !ok: what happened, what was done, what to do
  std::optional<Damage> damage;  // code "data-loss": where the projection stopped
};

struct OrderLineView {
  std::string sku;
  uint32_t quantity = 0;
  int64_t unit_price_cents = 0;
};

struct OrderView {
  std::string order_id;
  std::string customer_id;
  std::string status;  // "open", "placed" or "cancelled"
  std::vector<OrderLineView> lines;
  int64_t total_cents = 0;
  uint64_t version = 0;
  uint64_t last_position = 0;
  uint64_t created_at_micros = 0, placed_at_micros = 0, cancelled_at_micros = 0;
  std::string cancel_reason;
};

struct OrderQuery {
  std::optional<OrderView> order;  // nullopt: no such order (at that point)
  bool timed_out = false;          // the projection had not reached min_position in time
  // Instead of an order: its events (as of a version or time) reach damage, or the
  // projection stopped at damage before min_position.
  std::optional<Damage> damage;
};

struct OrderPage {
  std::vector<OrderView> orders;
  std::string next_page_token;  // empty: the last page
  bool timed_out = false;
  std::optional<Damage> damage;  // instead of orders: the projection stopped at damage before min_position
};

struct HistoryEntry {
  uint64_t version = 0, position = 0, timestamp_micros = 0;
  std::string type, json, command_id, correlation_id, caused_by;
};

// One page of an order's history: continue from `next_version` until `end_of_history`.
struct HistoryPage {
  std::vector<HistoryEntry> events;
  uint64_t next_version = 0;    // one past the last event returned; `from` when none was
  bool end_of_history = false;  // the page reached the order's last event (or it has none)
};

struct ConnectOptions {
  std::string address = "127.0.0.1:7400";  // HOST:PORT, [IPV6]:PORT or unix:PATH
  std::string token;
  // TLS (tls = true): the server's certificate must chain to a certificate in tls_ca_file
  // (PEM, one or more: the server's own if self-signed, or its CA), or with tls_ca_file
  // empty to the system's certificate authorities; and it must hold tls_server_name, by
  // default the host of `address`. A name that is an IP address (v4 or v6) must be one of
  // the certificate's IP address names (subjectAltName IP:...), any other name one of its
  // DNS names (wildcards allowed; sent as SNI). A unix socket has no host: name one.
  // A certificate that fails either check is refused during the handshake (the server gets
  // an alert saying why); Connect throws Error kConnect with ConnectProblem kCertificateTrust
  // or kCertificateName, saying what was expected and which names the certificate holds.
  bool tls = false;
  std::string tls_ca_file;
  std::string tls_server_name;
  // A TCP connection idle this many seconds is probed, and its calls and subscriptions fail
  // as disconnected (Error::Kind::kDisconnected) when the server does not answer 3 probes,
  // a third of this apart: a server whose machine or network went away, which sends no FIN
  // and no reset, is found out instead of waited for without end. 0: never (the kernel's
  // default). A live server answers the probes in its kernel, however long it has nothing
  // to say (transport::SetKeepAlive; esd does the same from its side, esd --tcp-keepalive).
  int keepalive_seconds = 60;
};

class Error : public std::runtime_error {
 public:
  // kDamaged: what the call asked for is in damaged bytes of the log (damage() says where);
  // retrying does not help.
  enum class Kind { kConnect, kUnauthenticated, kPermissionDenied, kDisconnected, kRemote, kDamaged };
  // kConnect: what stood in the way, so that a tool can say which of its options helps.
  enum class ConnectProblem {
    kNone,               // the error is not a kConnect
    kUnreachable,        // no connection: refused, no such host, no route ...
    kOptions,            // the options cannot work: an unreadable tls_ca_file, TLS to a unix
                         // socket without tls_server_name
    kServerSpeaksTls,    // a plain connection to a port that speaks TLS: the server answered
                         // with a TLS record (esd answers a plain client with a TLS alert)
    kServerSpeaksPlain,  // a TLS connection to a port that does not speak TLS: the server
                         // answered the TLS hello with bytes that are not TLS
    kCertificateName,    // the certificate is trusted but does not hold the name checked
    kCertificateTrust,   // the certificate does not chain to a trusted one (or has expired ...)
    kTlsHandshake,       // another TLS failure: the server refused the handshake or left during it
    kTooManyConnections, // the server is there but serves its most connections (esd
                         // --max-connections): it said so and closed this one; retry later
  };
  Error(Kind kind, const std::string& what)
      : std::runtime_error(what),
        kind_(kind),
        connect_problem_(kind == Kind::kConnect ? ConnectProblem::kUnreachable : ConnectProblem::kNone) {}
  // A kConnect error.
  Error(ConnectProblem problem, const std::string& what)
      : std::runtime_error(what), kind_(Kind::kConnect), connect_problem_(problem) {}
  // kDamaged; what() is "the log is damaged: " + damage.ToString().
  explicit Error(Damage damage);
  Kind kind() const { return kind_; }
  ConnectProblem connect_problem() const { return connect_problem_; }
  const std::optional<Damage>& damage() const { return damage_; }

 private:
  Kind kind_;
  ConnectProblem connect_problem_;
  std::optional<Damage> damage_;
};

// The Error that a synchronous call throws for `e`, the exception a promise of an *Async
// call is rejected with.
Error ErrorOf(const kj::Exception& e);

class Client {
 public:
  // Connects and logs in (the login's verdict is awaited). Throws Error: kConnect (with a
  // ConnectProblem) when no session could be set up over TLS or plain TCP as asked, and
  // kUnauthenticated for a refused token. A plain connection to a port that speaks TLS is
  // kServerSpeaksTls ("esd at ADDR speaks TLS ..."), not a lost connection.
  static std::unique_ptr<Client> Connect(const ConnectOptions& options);
  static std::unique_ptr<Client> Connect(const std::string& address, const std::string& token = "");
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  std::string Role();  // "reader", "writer" or "admin"

  AppendResult Append(const std::string& stream, Expected expected, const std::vector<NewEvent>& events);
  // nullopt: the stream has no event. `from` = UINT64_MAX with backward reads from the end.
  // Error kDamaged when an event asked for is in damaged bytes (none is returned).
  // One page: `end` (if given) says where the next starts and whether this was the last.
  std::optional<std::vector<RecordedEvent>> ReadStream(const std::string& stream, uint64_t from, uint32_t count,
                                                       bool backward = false, StreamPageEnd* end = nullptr);
  ReadAllResult ReadAll(uint64_t from, uint32_t count, const Filter& filter = {});
  std::optional<StreamInfo> GetStreamInfo(const std::string& stream);
  // Streams whose name starts with `prefix`, in name order, after `after` (paging).
  struct StreamPage {
    std::vector<std::pair<std::string, StreamInfo>> streams;
    bool more = false;
  };
  StreamPage ListStreams(const std::string& prefix, const std::string& after = "", uint32_t count = 1000);
  ServerStatus Status();  // needs the admin role

  // Stream lifecycle. Changes need the writer role (else kRejected "permission-denied").
  // Soft delete: the stream reads as not found until an append recreates it (its versions go
  // on). Hard delete: never written or read again (appends answer kStreamDeleted, ReadStream
  // nullopt with StreamPageEnd::stream_deleted). `expected` is checked against the stream.
  LifecycleResult DeleteStream(const std::string& stream, Expected expected = Expected::Any(), bool hard = false);
  // Removes the versions below `before` (at most the last version + 1).
  LifecycleResult TruncateStream(const std::string& stream, uint64_t before);
  // Replaces the stream's metadata as a whole; `expected` is checked against the metadata's
  // own version (LifecycleResult::metadata_version; NoStream: none written yet).
  LifecycleResult SetStreamMetadata(const std::string& stream, const StreamMetadata& metadata,
                                    Expected expected = Expected::Any());
  StreamMetadataResult GetStreamMetadata(const std::string& stream);

  // Scavenge (admin role): rewrites sealed segments without their removed events, in the
  // daemon's background; these return at once. `started` false: `reason` says why (one is
  // running already: `status` is that one).
  struct ScavengeStartResult {
    bool started = false;
    std::string reason;
    ScavengeStatus status;
  };
  ScavengeStartResult ScavengeStart();
  ScavengeStatus GetScavengeStatus();
  // Asks a running scavenge to stop after its current segment. `was_running` false: none ran.
  struct ScavengeStopResult {
    bool was_running = false;
    ScavengeStatus status;
  };
  ScavengeStopResult ScavengeStop();
  // How far a long Admin call is: (done, total), a few times a second while it runs and
  // once more, with done == total, before it returns. Runs inside the call, on this thread.
  using Progress = std::function<void(uint64_t done, uint64_t total)>;

  // Rebuilds a projection ("orders") from position 0 while the daemon keeps serving;
  // returns once the rebuilt one took over: the events it read. Needs the admin role.
  // Progress in events.
  uint64_t RebuildProjection(const std::string& name, Progress progress = {});
  // Copies the store into `dest` on the daemon's machine (new or empty) while it keeps
  // serving; returns the position below which the copy holds every event. Admin role.
  // Progress in bytes of log.
  struct BackupResult {
    uint64_t position = 0;
    uint64_t bytes = 0;
  };
  BackupResult Backup(const std::string& dest, Progress progress = {});
  // Checks the daemon's files while it serves (admin role). Progress in bytes of log.
  struct VerifyProblem {
    std::string file;
    uint64_t offset = 0;
    std::optional<uint64_t> position;
    std::string what;
  };
  struct VerifyReport {
    uint64_t segments = 0, batches = 0, events = 0, index_files = 0, snapshots = 0;
    std::vector<VerifyProblem> problems;  // damage
    std::string torn_tail;                // also one of `notes`
    // What the next open repairs by itself (an index rebuilt, a torn tail cut): not problems.
    std::vector<std::string> notes;
  };
  VerifyReport Verify(Progress progress = {});

  // The daemon's snapshots (admin role): an order's, by its stream, or a projection's.
  struct SnapshotTarget {
    bool projection = false;
    std::string name;  // the stream "order-<id>", or the projection ("orders")
    static SnapshotTarget Stream(std::string stream) { return {false, std::move(stream)}; }
    static SnapshotTarget Projection(std::string name) { return {true, std::move(name)}; }
  };
  struct SnapshotInfo {
    std::string file;  // relative to the daemon's data directory
    uint64_t bytes = 0;
    bool ok = false;   // it would be loaded: checksums, format version and body hold, and
                       // the log holds what it covers
    std::string problem;  // why not, when !ok
    bool projection = false;
    std::string name;  // the order's stream (empty unless ok), or the projection's name
    uint64_t version = 0;  // an order: the stream version it covers; a projection: its checkpoint
    uint64_t orders = 0;   // a projection: the orders in it
  };
  std::vector<SnapshotInfo> ListSnapshots();  // every page, in file name order
  // The snapshot file's bytes as on disk (see domain/snapshots.h); nullopt: there is none.
  // `problem` (if given) gets why the daemon would not load it, or "" when it would.
  // Fetched in pages of 16 MiB, all from one file: if the daemon replaces the file between
  // two pages, the read starts again (a few times; then Error kRemote).
  std::optional<std::string> ReadSnapshot(const SnapshotTarget& target, std::string* problem = nullptr);
  // One page of it: [offset, offset + max_bytes) of the file, max_bytes capped at 16 MiB by
  // the daemon (0: the whole file in one answer, refused over 48 MiB, as before pages).
  struct SnapshotPage {
    bool found = false;        // false: there is no such snapshot
    std::string bytes;         // fewer than asked only at the end of the file
    uint64_t total_bytes = 0;  // the file's size
    uint64_t file_tag = 0;     // which file the bytes came from: another tag, another file
    std::string problem;       // on the page that reaches the end: why the daemon would not
                               // load the file, or ""; "" on the other pages
  };
  SnapshotPage ReadSnapshotPage(const SnapshotTarget& target, uint64_t offset, uint32_t max_bytes);
  // Writes one now; nullopt: the order has no events (nothing written).
  std::optional<SnapshotInfo> CreateSnapshot(const SnapshotTarget& target);
  // The file it removed; nullopt: there was none.
  std::optional<std::string> DeleteSnapshot(const SnapshotTarget& target);

  // The Order service. `command_id` makes a command idempotent: a retry with the same id
  // returns the original outcome. An empty id gets a random one (no retry protection).
  CommandOutcome CreateOrder(const std::string& order_id, const std::string& customer_id,
                             const std::string& command_id = "", const std::string& correlation_id = "");
  CommandOutcome AddItem(const std::string& order_id, const std::string& sku, uint32_t quantity,
                         int64_t unit_price_cents, const std::string& command_id = "",
                         const std::string& correlation_id = "");
  CommandOutcome RemoveItem(const std::string& order_id, const std::string& sku, uint32_t quantity /* 0: all */,
                            const std::string& command_id = "", const std::string& correlation_id = "");
  CommandOutcome PlaceOrder(const std::string& order_id, const std::string& command_id = "",
                            const std::string& correlation_id = "");
  CommandOutcome CancelOrder(const std::string& order_id, const std::string& reason, const std::string& command_id = "",
                             const std::string& correlation_id = "");
  // The same commands as promises on this client's loop, for callers that keep many
  // commands in flight on one thread (esbench's orders workload drives 64 clients from 2
  // threads so): the same arguments and outcomes as above, the same request on the wire.
  // Nothing is sent or answered until the loop runs: a synchronous call of any Client of
  // this thread, RunUntil/RunFor, or promise.wait(wait_scope()). A broken call rejects the
  // promise with the kj::Exception that the synchronous call throws as Error;
  // ErrorOf(exception) gives that Error. The promise must not outlive this Client.
  // Commands on one order sent before the previous one's answer race as two clients'
  // would: each is decided on the order as the daemon finds it, which retries a conflict.
  kj::Promise<CommandOutcome> CreateOrderAsync(const std::string& order_id, const std::string& customer_id,
                                               const std::string& command_id = "",
                                               const std::string& correlation_id = "");
  kj::Promise<CommandOutcome> AddItemAsync(const std::string& order_id, const std::string& sku, uint32_t quantity,
                                           int64_t unit_price_cents, const std::string& command_id = "",
                                           const std::string& correlation_id = "");
  kj::Promise<CommandOutcome> RemoveItemAsync(const std::string& order_id, const std::string& sku,
                                              uint32_t quantity /* 0: all */, const std::string& command_id = "",
                                              const std::string& correlation_id = "");
  kj::Promise<CommandOutcome> PlaceOrderAsync(const std::string& order_id, const std::string& command_id = "",
                                              const std::string& correlation_id = "");
  kj::Promise<CommandOutcome> CancelOrderAsync(const std::string& order_id, const std::string& reason,
                                               const std::string& command_id = "",
                                               const std::string& correlation_id = "");
  // The latest state (after min_position, from the projection), or as of a version or time.
  OrderQuery GetOrder(const std::string& order_id, uint64_t min_position = 0);
  OrderQuery GetOrderAtVersion(const std::string& order_id, uint64_t version);
  OrderQuery GetOrderAtTime(const std::string& order_id, uint64_t time_micros);
  // status "" lists every status.
  OrderPage ListOrders(const std::string& customer_id, const std::string& status, uint32_t page_size,
                       const std::string& page_token = "", uint64_t min_position = 0);
  // Every event of the order, oldest first, fetched page by page (10,000 events per call).
  // Error kDamaged when the order's stream reaches damaged bytes.
  std::vector<HistoryEntry> History(const std::string& order_id);
  // One page of it, from version `from_version` on: for callers that show it as it comes.
  HistoryPage HistoryFrom(const std::string& order_id, uint64_t from_version);
  // Erases the customer (admin role; docs/domain.md "Forgetting a customer"): hard-deletes
  // every order stream of it, and records that it did (no customer id) in $erasures.
  // Idempotent: again, 0 streams. Refusals (the role, an empty id) are values, not Errors.
  ForgetOutcome ForgetCustomer(const std::string& customer_id);

  // For load generators: the append as a promise on this client's loop.
  kj::Promise<AppendResult> AppendAsync(const std::string& stream, Expected expected,
                                        const std::vector<NewEvent>& events);
  kj::WaitScope& wait_scope();

  class Subscription {
   public:
    virtual ~Subscription() = default;  // cancels; no callback runs afterwards
    virtual bool caught_up() const = 0;
    virtual std::optional<std::string> dropped() const = 0;  // the server's reason
    // Set when the server ended it because the log is damaged there; everything before the
    // damage that passed the filter was delivered.
    virtual std::optional<Damage> damage() const { return std::nullopt; }
  };
  struct SubscriptionCallbacks {
    std::function<void(const std::vector<RecordedEvent>&)> on_events;
    // Instead of on_events when set: the same batches as views, without copying them.
    std::function<void(const std::vector<RecordedEventView>&)> on_event_views;
    std::function<void(uint64_t position)> on_caught_up;
    // The subscription ended: the server said why (shutting down, damage in the log: then
    // Subscription::damage() is set before this runs), the connection was lost ("connection
    // lost: ..."), or on_events / on_event_views threw (the reason names what it threw; the
    // server ends the subscription too). Called once.
    std::function<void(const std::string& reason)> on_dropped;
  };
  // Events are delivered in log order while the loop runs; a slow callback slows only this
  // subscription (flow control). Destroying the result cancels.
  std::unique_ptr<Subscription> Subscribe(const SubscribeFrom& from, const Filter& filter,
                                          SubscriptionCallbacks callbacks);
  std::unique_ptr<Subscription> Subscribe(const SubscribeFrom& from, const Filter& filter,
                                          std::function<void(const std::vector<RecordedEvent>&)> on_events,
                                          std::function<void(uint64_t position)> on_caught_up = {},
                                          std::function<void(const std::string& reason)> on_dropped = {});

  // Runs the event loop until `done()` returns true (checked after each event) or `timeout`
  // passes. Returns done().
  bool RunUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout);
  void RunFor(std::chrono::milliseconds duration);

  class Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace esd::client
