// esctl's offline commands: work on a stopped store's files (--data-dir), holding its LOCK
// so that esd cannot start on them meanwhile.
#pragma once

#include <filesystem>
#include <memory>

#include "client/client.h"
#include "storage/store.h"
#include "tools/esctl_args.h"
#include "tools/esctl_order.h"

namespace esd::esctl {

// True when `dir` holds a store; otherwise says so (and what to check) on stderr.
bool RequireStore(const std::filesystem::path& dir);
// Opens a stopped store: takes its LOCK (a running esd is named) and recovers it as esd
// would. nullptr after a message on stderr.
std::unique_ptr<storage::Store> OpenOffline(const std::filesystem::path& dir);

// `esctl --data-dir DIR verify`.
int VerifyOffline(const Invocation& inv);
// Prints a verify report (offline or from the daemon): each problem, then each note
// ("note: ..."); returns 0 when there are no problems (notes alone are fine), 4 damage.
int PrintVerify(const client::Client::VerifyReport& report, bool json);

// `esctl --data-dir DIR replay PROJECTION`.
int ReplayOffline(const Invocation& inv);

// `esctl --data-dir DIR dump (SEGMENT | --position P)`.
int Dump(const Invocation& inv);

// One line (or JSON object) per stream, for `streams` online and offline.
void PrintStream(const std::string& name, uint64_t last_version, uint64_t events, uint64_t last_position,
                 uint64_t last_write_micros, bool json);
// `esctl --data-dir DIR streams [--prefix P]`.
int StreamsOffline(const Invocation& inv);

// What a backup holds and how to restore it (online and offline).
void PrintBackup(const std::string& dest, uint64_t position, uint64_t bytes, bool json);
// `esctl --data-dir DIR backup DEST`: a copy of a stopped store, with a progress bar.
int BackupOffline(const Invocation& inv);

// `esctl --data-dir DIR status`: from the files.
int StatusOffline(const Invocation& inv);

}  // namespace esd::esctl
