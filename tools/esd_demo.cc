// esd-demo: what `make run` starts until the daemon exists. Opens (or creates) a store,
// says what recovery found, appends a short cart history, and reads it back by stream and
// from $all. Run it twice: the second run finds the first run's events and continues. Not
// to an order-<id> stream: those hold the Order service's events only (docs/domain.md), and
// esd may later serve this same directory.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "storage/store.h"

namespace {

using namespace esd::storage;

void Usage(std::FILE* out) {
  std::fprintf(out,
               "usage: esd-demo [--data-dir DIR] [--fsync always|interval=MS|never] [--segment-size BYTES]\n"
               "Appends a demo order stream to the store in DIR (default ./data) and reads it back.\n");
}

EventData Event(std::string type, std::string json) {
  EventData e;
  e.id = EventId::Random();
  e.type = std::move(type);
  e.content_type = "application/json";
  e.data = std::move(json);
  return e;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "data";
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "esd-demo: %s needs a value\n", argv[i]);
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      Usage(stdout);
      return 0;
    } else if (arg == "--data-dir") {
      dir = value();
    } else if (arg == "--fsync") {
      auto mode = DurabilityMode::Parse(value());
      if (!mode.ok()) {
        std::fprintf(stderr, "esd-demo: %s\n", mode.status().message().c_str());
        return 2;
      }
      options.durability = mode.value();
    } else if (arg == "--segment-size") {
      options.segment_size = std::strtoull(value(), nullptr, 10);
    } else {
      std::fprintf(stderr, "esd-demo: unknown argument '%s'\n", argv[i]);
      Usage(stderr);
      return 2;
    }
  }

  auto opened = Store::Open(dir, options);
  if (!opened.ok()) {
    std::fprintf(stderr, "esd-demo: cannot open %s: %s\n", dir.c_str(), opened.status().ToString().c_str());
    return 1;
  }
  Store& store = *opened.value();
  const RecoveryReport& rec = store.recovery();
  std::printf("opened %s: %llu events in %llu segments (fsync %s); scanned %llu tail bytes, rebuilt %llu index files",
              dir.c_str(), static_cast<unsigned long long>(rec.end_position.value),
              static_cast<unsigned long long>(rec.segments), options.durability.ToString().c_str(),
              static_cast<unsigned long long>(rec.tail_bytes_scanned),
              static_cast<unsigned long long>(rec.index_files_rebuilt));
  if (rec.torn_bytes_discarded > 0) {
    std::printf(", cut a torn tail of %llu bytes", static_cast<unsigned long long>(rec.torn_bytes_discarded));
  }
  std::printf("\n");

  const std::string stream = "cart-demo-" + std::to_string(rec.end_position.value);
  auto r = store.AppendSync(stream, ExpectedVersion::NoStream(),
                            {Event("CartOpened", R"({"customerId":"c-1"})"),
                             Event("ItemAdded", R"({"sku":"apple","quantity":3,"unitPriceCents":50})"),
                             Event("CartCheckedOut", R"({"totalCents":150,"itemCount":3})")});
  if (!r.ok()) {
    std::fprintf(stderr, "esd-demo: append failed: %s\n", r.status().ToString().c_str());
    return 1;
  }
  std::printf("appended %s versions %llu..%llu at positions %llu..%llu (durable)\n", stream.c_str(),
              static_cast<unsigned long long>(r->first_version.value), static_cast<unsigned long long>(r->last_version.value),
              static_cast<unsigned long long>(r->first_position.value), static_cast<unsigned long long>(r->last_position.value));

  auto events = store.ReadStream(stream, StreamVersion(0), 100);
  if (!events.ok()) {
    std::fprintf(stderr, "esd-demo: read failed: %s\n", events.status().ToString().c_str());
    return 1;
  }
  for (const EventView& e : *events) {
    std::printf("  %s@%llu  pos %-6llu %-13.*s %.*s\n", std::string(e.stream).c_str(),
                static_cast<unsigned long long>(e.version.value), static_cast<unsigned long long>(e.position.value),
                static_cast<int>(e.type.size()), e.type.data(), static_cast<int>(e.data.size()), e.data.data());
  }
  const uint64_t end = store.DurablePosition().value;
  std::printf("$all holds %llu events; the last 5:\n", static_cast<unsigned long long>(end));
  auto tail = store.ReadAll(GlobalPosition(end > 5 ? end - 5 : 0), 5, [](const EventView& e) {
    std::printf("  pos %-6llu %.*s@%llu %.*s\n", static_cast<unsigned long long>(e.position.value),
                static_cast<int>(e.stream.size()), e.stream.data(), static_cast<unsigned long long>(e.version.value),
                static_cast<int>(e.type.size()), e.type.data());
    return true;
  });
  if (!tail.ok()) {
    std::fprintf(stderr, "esd-demo: read of $all failed: %s\n", tail.status().ToString().c_str());
    return 1;
  }
  return 0;
}
