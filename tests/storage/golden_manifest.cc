// storage_golden_manifest DATA_DIR: prints the manifest of a stopped store (tests/storage/
// golden_store.h) on stdout. The generator of a golden store (tests/storage/golden/
// make_golden_v*.sh) runs it on a scratch copy: opening a store takes its LOCK and may
// prepare a spare segment, and the checked-in folder must stay as esd left it.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "golden_store.h"
#include "storage/store.h"

namespace {

// The format version written in the headers of the segment files, or 0 (with a message) when
// they disagree or cannot be read: a golden store is of one version.
uint32_t SegmentFormatVersion(const std::filesystem::path& dir) {
  std::set<uint32_t> versions;
  for (const auto& f : std::filesystem::directory_iterator(dir / "segments")) {
    if (f.path().extension() != ".seg") continue;
    esd::storage::format::SegmentHeader h{};
    std::ifstream in(f.path(), std::ios::binary);
    if (!in.read(reinterpret_cast<char*>(&h), sizeof h) || h.magic != esd::storage::format::kSegmentMagic) {
      std::fprintf(stderr, "storage_golden_manifest: %s has no segment header\n", f.path().c_str());
      return 0;
    }
    versions.insert(h.format_version);
  }
  if (versions.size() != 1) {
    std::fprintf(stderr, "storage_golden_manifest: expected segments of one format version, found %zu\n",
                 versions.size());
    return 0;
  }
  return *versions.begin();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 || std::strcmp(argv[1], "--help") == 0) {
    std::fprintf(stderr, "usage: storage_golden_manifest DATA_DIR   (a scratch copy of a stopped store)\n");
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  const uint32_t version = SegmentFormatVersion(dir);
  if (version == 0) return 1;
  esd::storage::Options options;
  options.segment_size = 64 * 1024;
  options.max_event_size = 32 * 1024;
  options.fill_ahead = 64 * 1024;
  auto store = esd::storage::Store::Open(dir, options);
  if (!store.ok()) {
    std::fprintf(stderr, "storage_golden_manifest: cannot open %s: %s\n", dir.c_str(),
                 store.status().ToString().c_str());
    return 1;
  }
  auto manifest = esd::storage::testing::ComputeManifest(*store.value());
  if (!manifest.ok()) {
    std::fprintf(stderr, "storage_golden_manifest: reading %s: %s\n", dir.c_str(),
                 manifest.status().ToString().c_str());
    return 1;
  }
  manifest.value().format_version = version;
  std::fputs(esd::storage::testing::FormatManifest(manifest.value(), "").c_str(), stdout);
  return 0;
}
