#include "storage/index_file.h"

#include <fcntl.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "storage/format.h"

namespace esd::storage {

uint64_t StreamNameHash(std::string_view stream) { return format::Checksum(stream.data(), stream.size()); }

std::string IndexRebuildNote(const std::string& file, const Status& why) {
  return file + ": " + (why.code() == Status::Code::kNotFound ? std::string("missing") : why.message()) +
         "; open rebuilds it from its segment, and nothing is lost";
}

namespace {

struct NamedRun {
  uint64_t hash;
  std::string_view name;
  StreamRun run;
};

struct NamedTip {
  uint64_t hash;
  std::string_view name;
  StreamTip tip;
};

bool KeyLess(uint64_t ha, std::string_view na, uint64_t hb, std::string_view nb) {
  return ha != hb ? ha < hb : na < nb;
}

template <typename T>
void Append(std::vector<uint8_t>& out, const T& value) {
  const auto* p = reinterpret_cast<const uint8_t*>(&value);
  out.insert(out.end(), p, p + sizeof(T));
}

void PadTo8(std::vector<uint8_t>& out) { out.resize(format::AlignUp(out.size()), 0); }

}  // namespace

Status IndexFile::Write(const std::filesystem::path& path, SegmentId id, GlobalPosition first_position,
                        GlobalPosition end_position, uint64_t end_offset, const MemIndex& index,
                        const IndexFile* previous, std::span<const format::TipsEntry> extra_tips) {
  std::vector<NamedRun> runs;
  runs.reserve(index.stream_count());
  index.ForEachStream([&](std::string_view name, const StreamRun& run) {
    runs.push_back({StreamNameHash(name), name, run});
  });
  std::sort(runs.begin(), runs.end(),
            [](const NamedRun& a, const NamedRun& b) { return KeyLess(a.hash, a.name, b.hash, b.name); });

  // What this segment changes: its runs' last events, and the tips record's entries for the
  // streams it holds no event of any more.
  std::vector<NamedTip> updates;
  updates.reserve(runs.size() + extra_tips.size());
  for (const NamedRun& r : runs) {
    updates.push_back({r.hash, r.name, {r.run.last_version(), r.run.last_position, r.run.last_timestamp}});
  }
  for (const format::TipsEntry& e : extra_tips) {
    if (index.Find(e.stream)) continue;  // a run says the same or more
    updates.push_back({StreamNameHash(e.stream), e.stream, {e.last_version, e.last_position, e.last_timestamp}});
  }
  std::sort(updates.begin(), updates.end(),
            [](const NamedTip& a, const NamedTip& b) { return KeyLess(a.hash, a.name, b.hash, b.name); });

  // Tips: the previous segment's, updated by this segment's (a sorted merge).
  std::vector<NamedTip> tips;
  size_t prev_count = previous != nullptr ? previous->header_.tip_count : 0;
  tips.reserve(prev_count + updates.size());
  size_t i = 0, j = 0;
  while (i < prev_count || j < updates.size()) {
    const TipEntry* p = i < prev_count ? &previous->tips_[i] : nullptr;
    std::string_view pname = p != nullptr ? previous->Name(p->name_offset, p->name_size) : "";
    const NamedTip* r = j < updates.size() ? &updates[j] : nullptr;
    if (r != nullptr && (p == nullptr || !KeyLess(p->name_hash, pname, r->hash, r->name))) {
      if (p != nullptr && p->name_hash == r->hash && pname == r->name) ++i;
      tips.push_back(*r);
      ++j;
    } else {
      tips.push_back({p->name_hash, pname,
                      {StreamVersion(p->last_version), GlobalPosition(p->last_position), p->last_timestamp}});
      ++i;
    }
  }

  std::string names;
  std::vector<uint32_t> tip_name_offsets(tips.size());
  for (size_t k = 0; k < tips.size(); ++k) {
    tip_name_offsets[k] = static_cast<uint32_t>(names.size());
    names.append(tips[k].name);
  }

  std::vector<uint8_t> out(kIndexHeaderSize, 0);
  uint32_t offset_count = 0;
  size_t t = 0;  // runs are a subset of tips, in the same order
  for (const NamedRun& r : runs) {
    while (tips[t].hash != r.hash || tips[t].name != r.name) ++t;
    RunEntry e{r.hash, r.run.first_version.value, r.run.last_position.value, r.run.last_timestamp,
               static_cast<uint32_t>(r.run.offsets.size()), offset_count, tip_name_offsets[t],
               static_cast<uint32_t>(r.name.size())};
    Append(out, e);
    offset_count += e.count;
  }
  for (const NamedRun& r : runs) {
    for (uint32_t off : r.run.offsets) Append(out, off);
  }
  PadTo8(out);
  for (size_t k = 0; k < tips.size(); ++k) {
    TipEntry e{tips[k].hash, tips[k].tip.last_version.value, tips[k].tip.last_position.value,
               tips[k].tip.last_timestamp, tip_name_offsets[k], static_cast<uint32_t>(tips[k].name.size())};
    Append(out, e);
  }
  for (const SparseEntry& s : index.sparse()) Append(out, s);
  out.insert(out.end(), names.begin(), names.end());
  PadTo8(out);

  Header h{};
  h.magic = kIndexMagic;
  h.format_version = kIndexFormatVersion;
  h.header_size = kIndexHeaderSize;
  h.segment_id = id.value;
  h.first_position = first_position.value;
  h.end_position = end_position.value;
  h.end_offset = static_cast<uint32_t>(end_offset);
  h.run_count = static_cast<uint32_t>(runs.size());
  h.offset_count = offset_count;
  h.tip_count = static_cast<uint32_t>(tips.size());
  h.sparse_count = static_cast<uint32_t>(index.sparse().size());
  h.names_size = static_cast<uint32_t>(names.size());
  h.body_checksum = format::Checksum(out.data() + kIndexHeaderSize, out.size() - kIndexHeaderSize);
  h.header_checksum = format::Checksum(&h, offsetof(Header, header_checksum));
  std::memcpy(out.data(), &h, sizeof(h));
  return WriteFileAtomically(path, out);
}

Result<std::unique_ptr<IndexFile>> IndexFile::Load(const std::filesystem::path& path, SegmentId id,
                                                   GlobalPosition first_position, uint64_t segment_bytes) {
  auto file = File::Open(path, O_RDONLY);
  if (!file.ok()) {
    if (!std::filesystem::exists(path)) return Status::NotFound(path.string() + " does not exist");
    return file.status();
  }
  auto size = file->Size();
  if (!size.ok()) return size.status();
  const std::string where = path.string() + ": ";
  if (*size < kIndexHeaderSize) return Status::Corruption(where + "shorter than its header");
  auto map = MappedFile::Map(*file, *size);
  if (!map.ok()) return map.status();

  std::unique_ptr<IndexFile> f(new IndexFile());
  std::memcpy(&f->header_, map->data(), sizeof(Header));
  const Header& h = f->header_;
  if (h.magic != kIndexMagic) return Status::Corruption(where + "bad magic");
  if (h.header_checksum != format::Checksum(&h, offsetof(Header, header_checksum))) {
    return Status::Corruption(where + "header checksum mismatch");
  }
  if (h.format_version != kIndexFormatVersion) return Status::Corruption(where + "unknown format version");
  if (h.segment_id != id.value || h.first_position != first_position.value) {
    return Status::Corruption(where + "belongs to another segment");
  }
  const uint64_t expected_size =
      format::AlignUp(kIndexHeaderSize + uint64_t{h.run_count} * sizeof(RunEntry) + uint64_t{h.offset_count} * 4) +
      format::AlignUp(uint64_t{h.tip_count} * sizeof(TipEntry) + uint64_t{h.sparse_count} * sizeof(SparseEntry) +
                      h.names_size);
  if (expected_size != *size) return Status::Corruption(where + "size does not match its header");
  if (h.body_checksum != format::Checksum(map->data() + kIndexHeaderSize, *size - kIndexHeaderSize)) {
    return Status::Corruption(where + "body checksum mismatch");
  }
  const uint8_t* p = map->data() + kIndexHeaderSize;
  f->runs_ = reinterpret_cast<const RunEntry*>(p);
  p += uint64_t{h.run_count} * sizeof(RunEntry);
  f->offsets_ = reinterpret_cast<const uint32_t*>(p);
  p = map->data() + format::AlignUp(p - map->data() + uint64_t{h.offset_count} * 4);
  f->tips_ = reinterpret_cast<const TipEntry*>(p);
  p += uint64_t{h.tip_count} * sizeof(TipEntry);
  f->sparse_ = reinterpret_cast<const SparseEntry*>(p);
  p += uint64_t{h.sparse_count} * sizeof(SparseEntry);
  f->names_ = reinterpret_cast<const char*>(p);
  // Entries point into the names, the offsets and the segment: check them once so lookups
  // need not. A checksum only proves the file is as written, not that it was right.
  if (h.end_offset < format::kSegmentHeaderSize || h.end_offset > segment_bytes || h.end_offset % format::kAlignment != 0) {
    return Status::Corruption(where + "end offset " + std::to_string(h.end_offset) + " lies outside its segment (" +
                              std::to_string(segment_bytes) + " bytes)");
  }
  if (h.end_position < h.first_position) return Status::Corruption(where + "ends before it starts");
  const uint64_t min_offset = format::kSegmentHeaderSize + format::kBatchHeaderSize;
  const uint64_t max_offset = h.end_offset - format::kEventHeaderSize;  // a whole event header fits
  for (uint32_t k = 0; k < h.run_count; ++k) {
    const RunEntry& e = f->runs_[k];
    if (uint64_t{e.name_offset} + e.name_size > h.names_size || e.count == 0 ||
        uint64_t{e.first_offset_index} + e.count > h.offset_count || e.last_position < h.first_position ||
        e.last_position >= h.end_position) {
      return Status::Corruption(where + "run entry " + std::to_string(k) + " out of bounds");
    }
  }
  for (uint32_t k = 0; k < h.offset_count; ++k) {
    const uint32_t o = f->offsets_[k];
    if (o < min_offset || o > max_offset || o % format::kAlignment != 0) {
      return Status::Corruption(where + "event offset " + std::to_string(o) + " (entry " + std::to_string(k) +
                                ") lies outside its segment's log");
    }
  }
  for (uint32_t k = 0; k < h.sparse_count; ++k) {
    const SparseEntry& e = f->sparse_[k];
    if (e.offset < format::kSegmentHeaderSize || e.offset >= h.end_offset || e.offset % format::kAlignment != 0 ||
        e.position < h.first_position || e.position >= h.end_position ||
        (k > 0 && (e.position <= f->sparse_[k - 1].position || e.offset <= f->sparse_[k - 1].offset))) {
      return Status::Corruption(where + "sparse entry " + std::to_string(k) + " out of bounds");
    }
  }
  for (uint32_t k = 0; k < h.tip_count; ++k) {
    if (uint64_t{f->tips_[k].name_offset} + f->tips_[k].name_size > h.names_size) {
      return Status::Corruption(where + "tip entry " + std::to_string(k) + " out of bounds");
    }
  }
  // The descriptor closes here: the mapping stays, and a store keeps one descriptor per
  // segment rather than two (its open-file limit bounds how large it may grow).
  f->map_ = std::move(map).value();
  return f;
}

std::string_view IndexFile::Name(uint32_t offset, uint32_t size) const {
  return std::string_view(names_ + offset, size);
}

template <typename Entry>
const Entry* IndexFile::Lookup(const Entry* entries, size_t count, std::string_view stream) const {
  const uint64_t hash = StreamNameHash(stream);
  const Entry* end = entries + count;
  const Entry* it = std::lower_bound(entries, end, hash,
                                     [](const Entry& e, uint64_t h) { return e.name_hash < h; });
  for (; it != end && it->name_hash == hash; ++it) {  // collisions are adjacent
    if (Name(it->name_offset, it->name_size) == stream) return it;
  }
  return nullptr;
}

std::optional<StreamRun> IndexFile::Find(std::string_view stream) const {
  const RunEntry* e = Lookup(runs_, header_.run_count, stream);
  if (e == nullptr) return std::nullopt;
  return ToRun(*e);
}

std::optional<StreamTip> IndexFile::Tip(std::string_view stream) const {
  const TipEntry* e = Lookup(tips_, header_.tip_count, stream);
  if (e == nullptr) return std::nullopt;
  return TipAt(static_cast<size_t>(e - tips_));
}

std::optional<SparseEntry> IndexFile::SparseFloor(GlobalPosition position) const {
  if (header_.sparse_count == 0) return std::nullopt;
  const SparseEntry* end = sparse_ + header_.sparse_count;
  const SparseEntry* it = std::upper_bound(sparse_, end, position.value,
                                           [](uint64_t p, const SparseEntry& e) { return p < e.position; });
  return it == sparse_ ? *sparse_ : *(it - 1);
}

}  // namespace esd::storage
