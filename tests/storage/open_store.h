// Opening a test store: the test fails (and goes on) with the store's error when it cannot
// open, instead of crashing on an empty Result. Kept apart from test_util.h, which the crash
// writer (no GoogleTest) links too.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "storage/store.h"
#include "test_util.h"

namespace esd::storage::testing {

// A store in `dir` with `options`; nullptr (and a test failure naming the error) when it
// cannot open.
inline std::unique_ptr<Store> OpenStore(const TempDir& dir, const Options& options = SmallOptions()) {
  auto store = Store::Open(dir.path(), options);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(store).value() : nullptr;
}

}  // namespace esd::storage::testing
