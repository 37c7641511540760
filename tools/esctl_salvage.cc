#include "tools/esctl_salvage.h"

#include <cstdio>
#include <string>

#include "storage/salvage.h"
#include "tools/esctl_offline.h"
#include "tools/esctl_order.h"  // exit codes
#include "tools/esctl_progress.h"
#include "tools/esctl_text.h"

namespace esd::esctl {

namespace {

void Note(const std::string& s) { std::fprintf(stderr, "esctl: %s\n", s.c_str()); }

void PrintJson(const storage::SalvageReport& r, bool dry_run) {
  std::string moved;
  for (const auto& m : r.moved) {
    if (!moved.empty()) moved += ',';
    moved += QuoteJson(m);
  }
  std::printf("{\"damage\":%s,\"problem\":%s,\"logEnd\":%llu,\"quarantine\":%s,\"moved\":[%s],"
              "\"bytesMoved\":%llu,\"dryRun\":%s}\n",
              r.damage ? QuoteJson(r.damage->ToString()).c_str() : "null",
              r.damage ? QuoteJson(r.problem).c_str() : "null", static_cast<unsigned long long>(r.log_end.value),
              r.damage ? QuoteJson(r.quarantine.string()).c_str() : "null", moved.c_str(),
              static_cast<unsigned long long>(r.bytes_moved), dry_run ? "true" : "false");
}

}  // namespace

int SalvageOffline(const Invocation& inv) {
  const std::filesystem::path dir = inv.global.data_dir;
  if (dir.empty()) {
    Note("salvage works on a stopped store's files: give its directory with --data-dir DIR");
    return kExitUsage;
  }
  if (!RequireStore(dir)) return kExitFailure;
  const bool dry_run = inv.Has("dry-run");
  Progress progress("salvage", Progress::Unit::kBytes);
  storage::SalvageOptions options;
  options.dry_run = dry_run;
  options.progress = [&](uint64_t done, uint64_t total) { progress(done, total); };
  auto report = storage::SalvageStore(dir, options);
  progress.Finish();
  if (!report.ok()) {
    Note(report.status().message());
    return kExitFailure;
  }
  const storage::SalvageReport& r = *report;
  if (inv.global.json) {
    PrintJson(r, dry_run);
    return kExitOk;
  }
  if (!r.damage) {
    std::printf("no damage found: the log ends cleanly at position %llu; nothing to salvage\n",
                static_cast<unsigned long long>(r.log_end.value));
    return kExitOk;
  }
  std::printf("damage at %s: %s\n", r.damage->ToString().c_str(), r.problem.c_str());
  std::printf("%s %llu bytes of log, from there to the end, into %s:\n", dry_run ? "would move" : "moved",
              static_cast<unsigned long long>(r.bytes_moved), r.quarantine.c_str());
  for (const auto& m : r.moved) std::printf("  %s\n", m.c_str());
  if (dry_run) {
    std::printf("nothing was changed (--dry-run); run without it to salvage\n");
  } else {
    std::printf("the log now ends at position %llu (%llu events kept); esd starts on %s. Nothing was deleted.\n"
                "Positions from %llu on will be given to new events: restore the quarantined ones from a backup if "
                "you have one, and rebuild projections that had read past it (esctl replay orders).\n",
                static_cast<unsigned long long>(r.log_end.value), static_cast<unsigned long long>(r.log_end.value),
                dir.c_str(), static_cast<unsigned long long>(r.log_end.value));
  }
  return kExitOk;
}

}  // namespace esd::esctl
