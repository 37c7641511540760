#include "tools/esctl_stream.h"

#include <cstdio>
#include <optional>
#include <string>

#include "tools/esctl_exit.h"
#include "tools/esctl_output.h"
#include "tools/esctl_text.h"

namespace esd::esctl {

namespace {

using client::LifecycleResult;

void Print(const std::string& text) { std::fwrite(text.data(), 1, text.size(), stdout); }
void Note(const std::string& text) { std::fprintf(stderr, "esctl: %s\n", text.c_str()); }

std::string Quoted(const std::string& s) { return "'" + s + "'"; }

std::string StreamOf(const Invocation& inv) {
  if (inv.positional.at(0).empty()) throw UsageError(inv.command + ": the STREAM must not be empty");
  return inv.positional[0];
}

// --expected-version as `append` takes it; `what` is what it is checked against.
std::optional<client::Expected> ExpectedOf(const Invocation& inv) {
  auto ev = inv.Value("expected-version");
  if (!ev) return std::nullopt;
  auto parsed = *ev == "stream-exists" ? std::optional(client::Expected::StreamExists()) : client::Expected::Parse(*ev);
  if (!parsed) {
    throw UsageError("--expected-version: expected any, no-stream, stream-exists or a version number, got '" + *ev +
                     "'");
  }
  return parsed;
}

// A count flag: a whole number, 1 or more.
uint64_t PositiveCount(std::string_view flag, const std::string& text) {
  const bool negative = !text.empty() && text[0] == '-';
  uint64_t n = 0;
  if (!negative) {
    try {
      n = ParseNumber(flag, text);
    } catch (const UsageError&) {
      n = 0;
    }
  }
  if (n == 0) {
    throw UsageError("--" + std::string(flag) + ": expected a count of events, 1 or more, got '" + text +
                     "' (--" + std::string(flag) + " none removes the limit)");
  }
  return n;
}

// What a refused or failed lifecycle call means for people, and its exit code. `verb` says
// what was asked ("delete", "truncate", "set the metadata of").
// `expected`: the expected version that was sent, as the user would write it.
int Refused(const LifecycleResult& r, const std::string& stream, const std::string& verb, const Invocation& inv,
            const std::string& expected, const std::string& extra = "") {
  const bool json = inv.global.json;
  using O = LifecycleResult::Outcome;
  switch (r.outcome) {
    case O::kOk: return kExitOk;
    case O::kWrongExpectedVersion: {
      const bool meta = inv.command == "stream meta";
      const std::string subject = meta ? "the metadata of stream " + Quoted(stream) : "stream " + Quoted(stream);
      const std::string actual = r.actual_version ? "is at version " + std::to_string(*r.actual_version)
                                                  : (meta ? "was never written" : "has no events");
      const std::string retry = RetryWithExpectedVersion(r.actual_version);
      if (json) Print(WrongExpectedVersionJson(stream, r.actual_version));
      Note("wrong expected version: " + subject + " " + actual + " (expected " + expected +
           "); nothing was written. " +
           (meta ? "See it with `esctl stream meta " + stream + "`" : "See it with `esctl read " + stream + "`") +
           ", then retry with " + retry);
      return kExitNotDone;
    }
    case O::kStreamDeleted:
      if (json) Print(JsonObject().String("result", "stream-deleted").String("stream", stream).Done() + "\n");
      Note("cannot " + verb + " stream " + Quoted(stream) +
           ": it was hard-deleted, and can never be written, read or changed again; nothing was written");
      return kExitNotDone;
    case O::kNotFound:
      if (json) Print(JsonObject().String("result", "not-found").String("stream", stream).Done() + "\n");
      Note("cannot " + verb + " stream " + Quoted(stream) +
           ": it has no events (never written, or deleted already); nothing was written. `esctl streams` lists the "
           "streams");
      return kExitFailure;
    case O::kRejected:
      if (json) {
        Print(JsonObject().String("result", "rejected").String("code", r.reject_code).String("reason", r.reason).Done() +
              "\n");
      }
      Note("cannot " + verb + " stream " + Quoted(stream) + " (" + r.reject_code + "): " + r.reason + extra +
           (r.reject_code == "permission-denied"
                ? "\nDeleting, truncating and changing metadata need a token with the writer role; pass one with "
                  "--token or $ESD_TOKEN."
                : std::string()));
      return ExitForRejectCode(r.reject_code);
  }
  return kExitFailure;
}

int Delete(const Invocation& inv, const Connector& connect) {
  const std::string stream = StreamOf(inv);
  const client::Expected expected = ExpectedOf(inv).value_or(client::Expected::Any());
  const bool hard = inv.Has("hard");
  auto c = connect();
  // The version it had, to say where a recreated stream goes on.
  const auto info = c->GetStreamInfo(stream);
  const LifecycleResult r = c->DeleteStream(stream, expected, hard);
  if (!r.ok()) return Refused(r, stream, "delete", inv, inv.Value("expected-version").value_or("any"));
  if (inv.global.json) {
    Print(JsonObject()
              .String("result", "deleted")
              .String("stream", stream)
              .Bool("hard", hard)
              .Number("position", r.position)
              .Number("metadataVersion", r.metadata_version)
              .Done() +
          "\n");
  } else if (hard) {
    Print("hard-deleted stream " + Quoted(stream) + " (position " + std::to_string(r.position) +
          "): it can never be written or read again; `esctl scavenge start` frees its disk space\n");
  } else {
    const std::string next = info ? " from version " + std::to_string(info->last_version + 1) : std::string();
    Print("deleted stream " + Quoted(stream) + " (position " + std::to_string(r.position) +
          "): it reads as not found; an append recreates it" + next +
          "; `esctl scavenge start` frees its disk space\n");
  }
  return kExitOk;
}

int Truncate(const Invocation& inv, const Connector& connect) {
  const std::string stream = StreamOf(inv);
  auto before_text = inv.Value("before");
  if (!before_text) throw UsageError("stream truncate: --before VERSION is required");
  const uint64_t before = ParseNumber("before", *before_text);
  auto c = connect();
  const LifecycleResult r = c->TruncateStream(stream, before);
  if (!r.ok()) {
    std::string extra;
    if (r.outcome == LifecycleResult::Outcome::kRejected && r.reject_code == "invalid-argument") {
      if (auto info = c->GetStreamInfo(stream); info && before > info->last_version + 1) {
        extra = " (the stream's last version is " + std::to_string(info->last_version) + ": --before is at most " +
                std::to_string(info->last_version + 1) + ", which removes every event)";
      }
    }
    return Refused(r, stream, "truncate", inv, "any", extra);
  }
  if (inv.global.json) {
    Print(JsonObject()
              .String("result", "truncated")
              .String("stream", stream)
              .Number("before", before)
              .Number("position", r.position)
              .Number("metadataVersion", r.metadata_version)
              .Done() +
          "\n");
  } else {
    Print("truncated stream " + Quoted(stream) + ": versions below " + std::to_string(before) +
          " are removed (position " + std::to_string(r.position) + ")\n");
  }
  return kExitOk;
}

// The custom bytes as JSON: as they are when they are JSON (what esctl stores), else as a
// string, or base64 when they are not UTF-8.
std::string CustomJson(const std::string& custom) {
  if (auto json = CompactJson(custom)) return *json;
  if (IsValidUtf8(custom)) return QuoteJson(custom);
  return QuoteJson("base64:" + Base64(custom));
}

int Show(const std::string& stream, client::Client& c, bool json) {
  const client::StreamMetadataResult m = c.GetStreamMetadata(stream);
  if (!m.ok) {
    Note("cannot read the metadata of stream " + Quoted(stream) + " (" + m.reject_code + "): " + m.reason);
    return ExitForRejectCode(m.reject_code);
  }
  const auto info = c.GetStreamInfo(stream);
  const client::StreamMetadata& md = m.metadata;
  if (json) {
    JsonObject o;
    o.String("stream", stream);
    if (md.max_age_micros) o.Number("maxAgeMicros", *md.max_age_micros).String("maxAge", FormatDuration(*md.max_age_micros));
    else o.Null("maxAgeMicros").Null("maxAge");
    if (md.max_count) o.Number("maxCount", *md.max_count);
    else o.Null("maxCount");
    o.Number("truncateBefore", md.truncate_before).Bool("hardDeleted", md.hard_deleted);
    if (md.custom.empty()) o.Null("custom");
    else o.Raw("custom", CustomJson(md.custom));
    if (m.metadata_version) o.Number("metadataVersion", *m.metadata_version);
    else o.Null("metadataVersion");
    if (info) o.Number("lastVersion", info->last_version).Number("firstKept", info->first_kept);
    else o.Null("lastVersion").Null("firstKept");
    Print(o.Done() + "\n");
    return kExitOk;
  }
  std::string out;
  auto row = [&out](const std::string& name, const std::string& value) {
    out += name + std::string(name.size() < 17 ? 17 - name.size() : 1, ' ') + value + "\n";
  };
  row("stream", stream);
  row("max-age", md.max_age_micros ? FormatDuration(*md.max_age_micros) : "none");
  row("max-count", md.max_count ? std::to_string(*md.max_count) : "none");
  row("truncate-before", std::to_string(md.truncate_before));
  row("hard-deleted", md.hard_deleted ? "yes" : "no");
  row("custom", md.custom.empty() ? "none" : CustomJson(md.custom));
  row("metadata version", m.metadata_version ? std::to_string(*m.metadata_version) : "none (never written)");
  if (!info) {
    row("events", "none");
  } else if (info->first_kept > info->last_version) {
    row("events", "none left of versions 0.." + std::to_string(info->last_version));
  } else {
    row("events", "versions " + std::to_string(info->first_kept) + ".." + std::to_string(info->last_version) +
                      " readable");
  }
  Print(out);
  return kExitOk;
}

int Meta(const Invocation& inv, const Connector& connect) {
  const std::string stream = StreamOf(inv);
  const auto expected = ExpectedOf(inv);
  // Every flag is checked before anything is sent.
  std::optional<std::optional<uint64_t>> max_age, max_count;  // outer: given; inner nullopt: "none"
  std::optional<std::string> custom;
  if (auto v = inv.Value("max-age")) {
    if (*v == "none") {
      max_age = std::optional<uint64_t>();
    } else {
      auto micros = ParseDuration(*v);
      if (!micros) {
        throw UsageError("--max-age: expected a duration such as 500ms, 30s, 15m, 2h or 7d (a whole number, 1 or "
                         "more, and one unit), or none, got '" + *v + "'");
      }
      max_age = micros;
    }
  }
  if (auto v = inv.Value("max-count")) max_count = *v == "none" ? std::optional<uint64_t>() : PositiveCount("max-count", *v);
  if (auto v = inv.Value("custom")) {
    if (!CompactJson(*v)) {
      throw UsageError("--custom: not valid JSON; quote it for the shell, e.g. --custom '{\"owner\":\"team-a\"}'");
    }
    custom = *v;
  }
  const bool change = max_age || max_count || custom;
  if (!change && expected) {
    throw UsageError("stream meta: --expected-version goes with a change (--max-age, --max-count or --custom)");
  }
  auto c = connect();
  if (!change) return Show(stream, *c, inv.global.json);

  // The metadata is written as a whole: what is not given stays as it is.
  const client::StreamMetadataResult current = c->GetStreamMetadata(stream);
  if (!current.ok) {
    Note("cannot read the metadata of stream " + Quoted(stream) + " (" + current.reject_code + "): " + current.reason);
    return ExitForRejectCode(current.reject_code);
  }
  client::StreamMetadata next = current.metadata;
  if (max_age) next.max_age_micros = *max_age;
  if (max_count) next.max_count = *max_count;
  if (custom) next.custom = *custom;
  // Without --expected-version, the version read above: a change made meanwhile by someone
  // else is not overwritten unseen.
  const client::Expected ev = expected ? *expected
                              : current.metadata_version ? client::Expected::Exact(*current.metadata_version)
                                                         : client::Expected::NoStream();
  const LifecycleResult r = c->SetStreamMetadata(stream, next, ev);
  if (!r.ok()) {
    const std::string sent = expected ? *inv.Value("expected-version")
                             : current.metadata_version
                                 ? std::to_string(*current.metadata_version) + ", the version it had when esctl read it"
                                 : "no-stream: none written when esctl read it";
    return Refused(r, stream, "set the metadata of", inv, sent);
  }
  if (!inv.global.json) {
    Print("set the metadata of stream " + Quoted(stream) + " (metadata version " + std::to_string(r.metadata_version) +
          ", position " + std::to_string(r.position) + ")\n");
  }
  return Show(stream, *c, inv.global.json);
}

}  // namespace

int RunStream(const Invocation& inv, const Connector& connect) {
  if (inv.command == "stream delete") return Delete(inv, connect);
  if (inv.command == "stream truncate") return Truncate(inv, connect);
  if (inv.command == "stream meta") return Meta(inv, connect);
  throw UsageError("unknown command '" + inv.command + "'");
}

}  // namespace esd::esctl
