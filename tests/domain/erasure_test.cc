// Forgetting a customer, the domain's part: the audit record holds no personal data and
// reads back as written, and the order streams are hard-deleted in one go.
#include "domain/erasure.h"

#include <gtest/gtest.h>

#include <set>

#include "domain/order_commands.h"
#include "storage/test_util.h"

namespace esd::domain {
namespace {

TEST(CustomerForgottenRecord, HoldsWhenWhoAndHowManyAndReadsBackAsWritten) {
  const CustomerForgotten record{1764892800000000, "admin", 3};
  const storage::EventData e = EncodeCustomerForgotten(record);
  EXPECT_EQ(e.type, "CustomerForgotten");
  EXPECT_EQ(e.content_type, "application/json");
  EXPECT_EQ(e.data, R"({"atMicros":1764892800000000,"role":"admin","streamsDeleted":3})");
  EXPECT_TRUE(e.metadata.empty());
  EXPECT_EQ(DecodeCustomerForgotten(e.data), record);
  EXPECT_NE(EncodeCustomerForgotten(record).id, e.id) << "each request is a record of its own";
}

TEST(CustomerForgottenRecord, AnythingElseDoesNotDecode) {
  for (const char* bad : {"", "{}", "[]", "not json", R"({"atMicros":1,"role":"admin"})",
                          R"({"atMicros":-1,"role":"admin","streamsDeleted":3})",
                          R"({"atMicros":1,"role":7,"streamsDeleted":3})",
                          R"({"atMicros":1,"role":"admin","streamsDeleted":3,"customerId":"x"})"}) {
    EXPECT_EQ(DecodeCustomerForgotten(bad), std::nullopt) << bad;
  }
}

class HardDeleteOrdersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = storage::Store::Open(dir_.path(), storage::testing::SmallOptions()).value();
    OrderCommands orders(*store_);
    for (const char* id : {"a", "b", "c"}) {
      ASSERT_TRUE(std::holds_alternative<OrderCommands::Accepted>(
          orders.Execute(CreateOrder{id, "cust"}, {std::string("create-") + id, "", ""})));
    }
  }
  storage::testing::TempDir dir_;
  std::unique_ptr<storage::Store> store_;
};

TEST_F(HardDeleteOrdersTest, DeletesEveryStreamForGoodAndCountsWhatItDeleted) {
  const HardDeleted first = HardDeleteOrders(*store_, {"a", "b"});
  EXPECT_TRUE(first.failure.ok()) << first.failure.ToString();
  EXPECT_EQ(first.deleted, 2u);
  EXPECT_EQ(std::set<std::string>(first.gone.begin(), first.gone.end()), (std::set<std::string>{"a", "b"}));
  for (const char* id : {"a", "b"}) {
    EXPECT_EQ(store_->ReadStream(OrderStream(id), storage::StreamVersion(0), 10).status().code(),
              storage::Status::Code::kStreamDeleted);
    EXPECT_TRUE(store_->GetStreamInfo(OrderStream(id))->hard_deleted);
  }
  EXPECT_TRUE(store_->ReadStream("order-c", storage::StreamVersion(0), 10).ok()) << "another order is untouched";
  // Again, with one not deleted yet: what was deleted before counts as done, not again.
  const HardDeleted second = HardDeleteOrders(*store_, {"a", "b", "c"});
  EXPECT_TRUE(second.failure.ok()) << second.failure.ToString();
  EXPECT_EQ(second.deleted, 1u);
  EXPECT_EQ(second.gone.size(), 3u);
  EXPECT_EQ(HardDeleteOrders(*store_, {}).deleted, 0u);
}

}  // namespace
}  // namespace esd::domain
