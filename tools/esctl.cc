// esctl: the operator's command line for esd. It talks to the daemon only through
// esd::client. The commands are the table in CommandTable() (tools/esctl.h), their
// arguments and help in tools/esctl_args.cc, what they print in tools/esctl_output.h, and
// the exit codes in tools/esctl_exit.h. Every command checks its arguments before it
// connects, so bad usage is reported even without a server. The order commands are in
// tools/esctl_order.cc.
#include <kj/exception.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <cstdio>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "client/client.h"
#include "tools/esctl.h"
#include "tools/esctl_args.h"
#include "tools/esctl_offline.h"
#include "tools/esctl_order.h"
#include "tools/esctl_output.h"
#include "tools/esctl_progress.h"
#include "tools/esctl_salvage.h"
#include "tools/esctl_scavenge.h"
#include "tools/esctl_snapshot.h"
#include "tools/esctl_source.h"
#include "tools/esctl_stream.h"
#include "tools/esctl_text.h"
#include "version/version.h"

namespace esd::esctl {

namespace {

using client::Client;

// Read commands fetch this many events per request when --count does not bound them.
constexpr uint32_t kPageSize = 1000;

void Print(const std::string& text) { std::fwrite(text.data(), 1, text.size(), stdout); }

void Note(const std::string& text) { std::fprintf(stderr, "esctl: %s\n", text.c_str()); }

client::Filter FilterOf(const Invocation& inv) {
  return {inv.Value("stream-prefix").value_or(""), inv.Values("type")};
}

int Status(const Invocation& inv, const Connector& connect) {
  auto c = connect();
  Print(StatusText(c->Status(), inv.global.json));
  return kExitOk;
}

int Append(const Invocation& inv, const Connector& connect) {
  const std::string& stream = inv.positional[0];
  client::NewEvent event;
  if (!inv.Value("type")) throw UsageError("append: --type is required");
  if (!inv.Value("data")) throw UsageError("append: --data is required");
  event.type = *inv.Value("type");
  event.data = *inv.Value("data");
  event.content_type = inv.Value("content-type").value_or("application/json");
  event.metadata = inv.Value("metadata").value_or("");
  if (IsJsonContentType(event.content_type)) {
    if (!CompactJson(event.data)) {
      throw UsageError("append: --data is not valid JSON (content type " + event.content_type +
                       "); quote it for the shell, e.g. --data '{\"k\":1}', or give --content-type");
    }
    if (inv.Value("metadata") && !CompactJson(event.metadata)) {
      throw UsageError("append: --metadata is not valid JSON (content type " + event.content_type + ")");
    }
  }
  if (auto id = inv.Value("id")) {
    auto parsed = client::ParseEventId(*id);
    if (!parsed) throw UsageError("--id: expected a UUID like 123e4567-e89b-12d3-a456-426614174000, got '" + *id + "'");
    if (*parsed == client::EventId{}) throw UsageError("--id: the all-zero UUID is not a valid event id");
    event.id = *parsed;
  }
  client::Expected expected = client::Expected::Any();
  if (auto ev = inv.Value("expected-version")) {
    // "stream-exists" is the documented name (docs/esctl.md); the client's short "exists" is kept.
    auto parsed = *ev == "stream-exists" ? std::optional(client::Expected::StreamExists()) : client::Expected::Parse(*ev);
    if (!parsed) {
      throw UsageError("--expected-version: expected any, no-stream, stream-exists or a version number, got '" + *ev +
                       "'");
    }
    expected = *parsed;
  }

  auto c = connect();
  const client::AppendResult r = c->Append(stream, expected, {event});
  const bool json = inv.global.json;
  switch (r.outcome) {
    case client::AppendResult::Outcome::kOk: Print(AppendLine(stream, event.id, r, json)); return kExitOk;
    case client::AppendResult::Outcome::kWrongExpectedVersion: {
      const std::string actual = r.actual_version ? "is at version " + std::to_string(*r.actual_version)
                                                  : "has no events";
      const std::string retry = RetryWithExpectedVersion(r.actual_version);
      if (json) Print(WrongExpectedVersionJson(stream, r.actual_version));
      Note("wrong expected version: stream '" + stream + "' " + actual + " (expected " +
           inv.Value("expected-version").value_or("any") + "); nothing was written. Read the stream, then retry with " + retry);
      return kExitNotDone;
    }
    case client::AppendResult::Outcome::kRejected:
      if (json) {
        Print(JsonObject().String("result", "rejected").String("code", r.reject_code).String("reason", r.reason).Done() +
              "\n");
      }
      Note("append rejected (" + r.reject_code + "): " + r.reason +
           (r.reject_code == "permission-denied"
                ? "\nAppends need a token with the writer role; pass one with --token or $ESD_TOKEN."
                : std::string()));
      return ExitForRejectCode(r.reject_code);
    case client::AppendResult::Outcome::kStreamDeleted:
      if (json) Print(JsonObject().String("result", "stream-deleted").String("stream", stream).Done() + "\n");
      Note("append rejected: stream '" + stream + "' was hard-deleted (esctl stream delete --hard) and can never be "
           "written again; nothing was written. Append to a stream of another name");
      return kExitNotDone;
  }
  return kExitFailure;
}

int Read(const Invocation& inv, const std::function<std::unique_ptr<EventSource>()>& open) {
  const std::string& stream = inv.positional[0];
  const bool backward = inv.Has("backward");
  uint64_t from = backward ? std::numeric_limits<uint64_t>::max() : 0;
  if (auto f = inv.Value("from")) from = ParseNumber("from", *f);
  std::optional<uint64_t> left;  // events still to print; nullopt: all
  if (auto n = inv.Value("count")) left = ParseCount("count", *n);

  auto c = open();
  if (!c) return kExitFailure;
  // A page may hold fewer events than asked for (the daemon bounds an answer's bytes):
  // only its end marker ends the stream.
  while (!left || *left > 0) {
    const uint32_t ask = left ? static_cast<uint32_t>(std::min<uint64_t>(*left, kPageSize)) : kPageSize;
    client::StreamPageEnd end;
    auto page = c->ReadStream(stream, from, ask, backward, &end);
    if (!page) {
      Note(end.stream_deleted ? "stream '" + stream + "' was hard-deleted: it is never read or written again"
                              : "stream '" + stream + "' has no events");
      return kExitOk;
    }
    std::string out;
    for (const auto& e : *page) out += EventLine(e, inv.global.json);
    Print(out);
    if (left) *left -= std::min<uint64_t>(*left, page->size());
    // The second: a page with nothing that is not the end (an esd that does not say).
    if (end.end_of_stream || page->empty()) break;
    from = end.next_version;
  }
  return kExitOk;
}

int ReadAll(const Invocation& inv, const std::function<std::unique_ptr<EventSource>()>& open) {
  uint64_t from = 0;
  if (auto f = inv.Value("from")) from = ParseNumber("from", *f);
  std::optional<uint64_t> left;
  if (auto n = inv.Value("count")) left = ParseCount("count", *n);
  const client::Filter filter = FilterOf(inv);

  auto c = open();
  if (!c) return kExitFailure;
  while (!left || *left > 0) {
    const uint32_t ask = left ? static_cast<uint32_t>(std::min<uint64_t>(*left, kPageSize)) : kPageSize;
    auto page = c->ReadAll(from, ask, filter);
    std::string out;
    for (const auto& e : page.events) out += EventLine(e, inv.global.json);
    Print(out);
    if (page.damage) {
      std::fflush(stdout);  // the events before the damage come first
      return ReportDamage(*page.damage, "the events before it were printed");
    }
    if (left) *left -= std::min<uint64_t>(*left, page.events.size());
    if (page.end_of_log || page.next_position <= from) break;  // the second: no progress, stop
    from = page.next_position;
  }
  return kExitOk;
}

int ReportClientError(const client::Error& e, const GlobalOptions& g);

volatile std::sig_atomic_t g_stop = 0;
volatile std::sig_atomic_t g_connecting = 0;
void OnStopSignal(int) {
  if (g_connecting) _exit(kExitOk);  // nothing printed yet, and connecting may hang: just go
  g_stop = 1;
}

int Tail(const Invocation& inv, const Connector& connect) {
  client::SubscribeFrom from = client::SubscribeFrom::End();
  if (auto f = inv.Value("from")) {
    if (*f == "start") from = client::SubscribeFrom::Start();
    else if (*f != "end") from = client::SubscribeFrom::Position(ParseNumber("from", *f));
  }
  const client::Filter filter = FilterOf(inv);
  const bool json = inv.global.json;

  // The loop below polls the flag (RunUntil checks it every few milliseconds), so a stop
  // cancels the subscription and exits 0 instead of dying by the signal.
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);

  g_connecting = 1;
  auto c = connect();
  g_connecting = 0;
  std::optional<uint64_t> next;  // the position after the last event printed
  std::optional<std::string> dropped;
  client::Client::SubscriptionCallbacks callbacks;
  callbacks.on_events = [&](const std::vector<client::RecordedEvent>& events) {
    std::string out;
    for (const auto& e : events) out += EventLine(e, json);
    if (!events.empty()) next = events.back().position + 1;
    Print(out);
    std::fflush(stdout);
  };
  callbacks.on_caught_up = [&](uint64_t position) {
    next = std::max(next.value_or(0), position);  // the filter may have skipped the last events
    std::fprintf(stderr, "-- caught up at %llu --\n", static_cast<unsigned long long>(position));
  };
  callbacks.on_dropped = [&](const std::string& reason) { dropped = reason; };
  auto subscription = c->Subscribe(from, filter, std::move(callbacks));
  try {
    // A lost connection or a server that shuts down ends in `dropped` (the client reports both).
    while (!g_stop && !dropped) c->RunUntil([&] { return g_stop || dropped; }, std::chrono::seconds(60));
  } catch (const client::Error& e) {
    ReportClientError(e, inv.global);
    if (next) Note("to continue where it stopped: esctl tail --from " + std::to_string(*next));
    return kExitFailure;
  }
  const std::optional<client::Damage> damage = subscription->damage();
  subscription.reset();
  if (damage) {
    std::fflush(stdout);
    return ReportDamage(*damage, "the server ended the subscription there; everything before it was printed");
  }
  if (dropped) {
    Note("the server ended the subscription: " + *dropped + "; run tail again" +
         (next ? " with --from " + std::to_string(*next) + " to continue where it stopped" : std::string()));
    return kExitFailure;
  }
  return kExitOk;
}

// What to do about a failed connect, in esctl's flags.
std::string ConnectAdvice(client::Error::ConnectProblem problem) {
  using P = client::Error::ConnectProblem;
  switch (problem) {
    case P::kServerSpeaksTls:
      return "Connect with --tls-ca FILE (FILE: the certificate esd was started with, its --tls-cert, or the CA "
             "that signed it), or with --tls when a certificate authority of this system signed it (see esctl "
             "--help).";
    case P::kServerSpeaksPlain:
      return "Drop --tls and --tls-ca to connect without TLS, or start esd with --tls-cert FILE --tls-key FILE to "
             "serve TLS.";
    case P::kCertificateName:
      return "Name one of the certificate's names with --tls-server-name NAME, or --connect to an address it "
             "holds; or give esd (--tls-cert) a certificate that holds the address you connect to.";
    case P::kCertificateTrust:
      return "Trust it with --tls-ca FILE: the certificate esd was started with (its --tls-cert), or the CA that "
             "signed it.";
    case P::kOptions:
      return "Check --tls-ca FILE (a readable PEM file of certificates) and --tls-server-name NAME (a name on "
             "esd's certificate), see esctl --help.";
    case P::kTlsHandshake:
      return "Does esd there serve TLS (esd --tls-cert)? Check --tls-ca and --tls-server-name, or drop --tls for a "
             "plain connection.";
    case P::kTooManyConnections:
      return "esd serves as many connections as its --max-connections allows: retry once other clients have "
             "closed theirs, or restart esd with a higher --max-connections.";
    case P::kNone:
    case P::kUnreachable:
      break;
  }
  return "Is esd running there? Start it, or point esctl at it with --connect HOST:PORT (or unix:PATH) or "
         "$ESD_CONNECT.";
}

int ReportClientError(const client::Error& e, const GlobalOptions& g) {
  const std::string what = e.what();
  switch (e.kind()) {
    case client::Error::Kind::kConnect:
      Note(what + "\n" + ConnectAdvice(e.connect_problem()));
      break;
    case client::Error::Kind::kUnauthenticated:
      Note("the server at " + g.connect + " refused the token" + (g.token.empty() ? " (none was given)" : "") +
           ".\nPass a token from the daemon's --auth file with --token or $ESD_TOKEN.");
      break;
    case client::Error::Kind::kDisconnected:
      Note("lost the connection to " + g.connect + ": " + what +
           "\nCheck that esd is still running (its log says why it stopped), then retry.");
      break;
    case client::Error::Kind::kPermissionDenied:
      Note(what + "\nThis command needs a token with a higher role (status, verify, backup, replay, snapshot and "
                  "scavenge need admin; append, stream delete, truncate and meta changes, and order commands that "
                  "write need writer); pass one with --token or $ESD_TOKEN.");
      break;
    case client::Error::Kind::kRemote:
      Note("the server failed the request: " + what + "\nSee the esd log for details; retry once it is resolved.");
      break;
    case client::Error::Kind::kDamaged:
      std::fflush(stdout);  // what was printed before it comes first
      if (e.damage()) return ReportDamage(*e.damage());
      Note(what);
      return kExitDamage;
  }
  return kExitFailure;
}

using EventOpener = std::function<std::unique_ptr<EventSource>()>;

int RunVerify(const Invocation& inv, const Connector& connect) {
  if (!inv.global.data_dir.empty()) return VerifyOffline(inv);
  std::fprintf(stderr, "verifying the daemon's files; it keeps serving meanwhile...\n");
  Progress progress("verify", Progress::Unit::kBytes);
  auto report = connect()->Verify(std::ref(progress));
  progress.Finish();
  return PrintVerify(report, inv.global.json);
}

int RunStreams(const Invocation& inv, const Connector& connect) {
  if (!inv.global.data_dir.empty()) return StreamsOffline(inv);
  auto c = connect();
  std::string after;
  while (true) {
    auto page = c->ListStreams(inv.Value("prefix").value_or(""), after, 1000);
    for (const auto& [name, info] : page.streams) {
      PrintStream(name, info.last_version, info.event_count, info.last_position, info.last_write_micros,
                  inv.global.json);
    }
    if (!page.more || page.streams.empty()) break;
    after = page.streams.back().first;
  }
  return kExitOk;
}

int RunBackup(const Invocation& inv, const Connector& connect) {
  if (!inv.global.data_dir.empty()) return BackupOffline(inv);
  // The daemon runs in a directory of its own: a relative DEST means esctl's, so it is made
  // absolute here (DEST is still a path on the daemon's machine).
  const std::string dest = std::filesystem::absolute(inv.positional.at(0)).lexically_normal().string();
  std::fprintf(stderr, "backing up into %s; the daemon keeps serving meanwhile...\n", dest.c_str());
  Progress progress("backup", Progress::Unit::kBytes);
  const auto b = connect()->Backup(dest, std::ref(progress));
  progress.Finish();
  PrintBackup(dest, b.position, b.bytes, inv.global.json);
  return kExitOk;
}

int RunReplay(const Invocation& inv, const Connector& connect) {
  if (!inv.global.data_dir.empty()) return ReplayOffline(inv);
  const std::string& name = inv.positional.at(0);
  const auto start = std::chrono::steady_clock::now();
  std::fprintf(stderr, "replaying %s from position 0; the daemon keeps serving meanwhile...\n", name.c_str());
  Progress progress("replay", Progress::Unit::kEvents);
  const uint64_t read = connect()->RebuildProjection(name, std::ref(progress));
  progress.Finish();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (inv.global.json) {
    Print(JsonObject().String("projection", name).Number("eventsRead", read).Real("seconds", secs).Done() + "\n");
  } else {
    std::printf("replayed %s: %llu events in %.1f s; the rebuilt projection now answers queries\n", name.c_str(),
                static_cast<unsigned long long>(read), secs);
  }
  return kExitOk;
}

EventOpener EventsOf(const Invocation& inv, const Connector& connect) {
  return [&inv, connect] {
    return inv.global.data_dir.empty() ? OnlineSource(connect()) : OfflineSource(inv.global.data_dir);
  };
}

int RunRead(const Invocation& inv, const Connector& connect) {
  // `$all` is the global log, which has no stream of its own: read it as read-all does.
  if (inv.positional.at(0) == "$all") {
    if (inv.Has("backward")) throw UsageError("read '$all': --backward is not supported; the global log reads forwards");
    return ReadAll(inv, EventsOf(inv, connect));
  }
  return Read(inv, EventsOf(inv, connect));
}

int RunReadAll(const Invocation& inv, const Connector& connect) { return ReadAll(inv, EventsOf(inv, connect)); }
int RunStatus(const Invocation& inv, const Connector& connect) {
  return inv.global.data_dir.empty() ? Status(inv, connect) : StatusOffline(inv);
}
int RunDump(const Invocation& inv, const Connector&) { return Dump(inv); }
int RunSalvage(const Invocation& inv, const Connector&) { return SalvageOffline(inv); }
int RunOrderCommand(const Invocation& inv, const Connector& connect) {
  return RunOrder(inv, connect, [&inv](const client::Error& e) { return ReportClientError(e, inv.global); });
}
int RunHelp(const Invocation& inv, const Connector&) {  // the parser turns `help` into inv.help
  Print(inv.command.empty() ? Overview() : HelpText(inv.command));
  return kExitOk;
}

// The names the overview lists, one per line with its summary.
std::string Listing() {
  std::string out;
  for (const CommandEntry& c : CommandTable()) {
    std::string line = "  " + std::string(c.name);
    line.append(line.size() < 15 ? 15 - line.size() : 1, ' ');
    out += line + std::string(c.summary) + "\n";
  }
  return out;
}

// "status, streams, ... and snapshot"
std::string OfflineCommands() {
  std::vector<std::string_view> names;
  for (const CommandEntry& c : CommandTable()) {
    if (c.offline) names.push_back(c.name);
  }
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    out += (i == 0 ? "" : i + 1 == names.size() ? " and " : ", ") + std::string(names[i]);
  }
  return out;
}

}  // namespace

const std::vector<CommandEntry>& CommandTable() {
  // The overview's command list is printed from this table, in this order.
  static const std::vector<CommandEntry> kTable = {
      {"status", "the server's status (needs the admin role), or a stopped store's", true, RunStatus},
      {"streams", "the streams, optionally by name prefix: last version, events, last write", true, RunStreams},
      {"append", "append one event to a stream", false, Append},
      {"read", "read one stream, forwards or backwards (read '$all' reads the global log)", true, RunRead},
      {"read-all", "read the global log ($all), optionally filtered", true, RunReadAll},
      {"tail", "follow the global log as events arrive, until Ctrl-C", false, Tail},
      {"stream", "delete or truncate a stream, show or set its metadata (esctl help stream)", false, RunStream},
      {"scavenge", "start, follow or stop freeing the disk space of removed events (admin)", false, RunScavenge},
      {"order", "the Order service: create, add-item, ..., get, list, history (esctl help order)", false,
       RunOrderCommand},
      {"verify", "check the store's files: checksums, positions, indexes, snapshots", true, RunVerify},
      {"salvage", "move damaged log aside so that esd starts (--data-dir, a stopped store)", true, RunSalvage},
      {"replay", "rebuild a projection from position 0, online or (with --data-dir) offline", true, RunReplay},
      {"dump", "list a segment's batches: offsets, sizes, positions, checksums (--data-dir)", true, RunDump},
      {"backup", "a consistent copy of the store into a new directory, online or offline", true, RunBackup},
      {"snapshot", "list, show, create or delete snapshots", true, Snapshot},
      {"help", "this text, or `esctl help COMMAND` for one command", true, RunHelp},
  };
  return kTable;
}

std::string Overview() { return OverviewText(Listing()); }

int Main(int argc, char** argv) {
  Invocation inv;
  try {
    inv = ParseCommandLine(std::vector<std::string>(argv + 1, argv + argc));
    if (inv.help) {
      Print(inv.command.empty() ? Overview() : HelpText(inv.command));
      return kExitOk;
    }
    if (inv.version) {
      Print(version::VersionLine("esctl") + "\n");
      return kExitOk;
    }
    if (inv.command.empty()) throw UsageError("no command given; the commands are:\n" + Listing());
    const std::string top = inv.command.substr(0, inv.command.find(' '));  // "order" of "order create"
    const auto entry = std::find_if(CommandTable().begin(), CommandTable().end(),
                                    [&](const CommandEntry& c) { return c.name == top; });
    if (entry == CommandTable().end()) throw UsageError("unknown command '" + inv.command + "'");
    if (!inv.global.data_dir.empty() && !entry->offline) {
      throw UsageError(inv.command + " needs a running esd; --data-dir (offline work on a stopped store) is for " +
                       OfflineCommands());
    }
    const Connector connect = [&g = inv.global] {
      return Client::Connect({.address = g.connect,
                              .token = g.token,
                              .tls = g.tls,
                              .tls_ca_file = g.tls_ca_file,
                              .tls_server_name = g.tls_server_name});
    };
    return entry->run(inv, connect);
  } catch (const UsageError& e) {
    Note(std::string(e.what()) + "\nRun 'esctl help' or 'esctl COMMAND --help' for usage.");
    return kExitUsage;
  } catch (const client::Error& e) {
    return ReportClientError(e, inv.global);
  } catch (const kj::Exception& e) {
    Note(std::string("unexpected error: ") + e.getDescription().cStr() + "\nPlease report it with the command you ran.");
  } catch (const std::exception& e) {
    Note(std::string("unexpected error: ") + e.what() + "\nPlease report it with the command you ran.");
  }
  return kExitFailure;
}

}  // namespace esd::esctl
