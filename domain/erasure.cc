#include "domain/erasure.h"

#include <nlohmann/json.hpp>

#include <condition_variable>
#include <future>
#include <mutex>

#include "domain/order_commands.h"

namespace esd::domain {

HardDeleted HardDeleteOrders(storage::Store& store, const std::vector<std::string>& order_ids) {
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    size_t answered = 0;
    HardDeleted result;
  };
  auto shared = std::make_shared<Shared>();
  for (const auto& id : order_ids) {
    store.DeleteStream(OrderStream(id), storage::ExpectedVersion::Any(), /*hard=*/true,
                       [shared, id](storage::AppendResult r) {
                         std::lock_guard lock(shared->mu);
                         HardDeleted& out = shared->result;
                         const auto code = r.ok() ? storage::Status::Code::kOk : r.status().code();
                         if (r.ok()) ++out.deleted;
                         if (r.ok() || code == storage::Status::Code::kStreamDeleted ||
                             code == storage::Status::Code::kNotFound) {
                           out.gone.push_back(id);
                         } else if (out.failure.ok()) {
                           out.failure = r.status();
                         }
                         ++shared->answered;
                         shared->cv.notify_all();
                       });
  }
  std::unique_lock lock(shared->mu);
  shared->cv.wait(lock, [&] { return shared->answered == order_ids.size(); });
  return std::move(shared->result);
}

storage::AppendResult AppendErasureAudit(storage::Store& store, const CustomerForgotten& record) {
  std::promise<storage::AppendResult> appended;
  auto result = appended.get_future();
  std::vector<storage::EventData> events;
  events.push_back(EncodeCustomerForgotten(record));
  store.AppendSystem(std::string(kErasureStream), storage::ExpectedVersion::Any(), std::move(events),
                     [&appended](storage::AppendResult r) { appended.set_value(std::move(r)); });
  return result.get();
}

storage::EventData EncodeCustomerForgotten(const CustomerForgotten& record) {
  storage::EventData e;
  e.id = storage::EventId::Random();
  e.type = std::string(kCustomerForgottenType);
  e.content_type = std::string(kErasureContentType);
  e.data = nlohmann::json{{"atMicros", record.at_micros}, {"role", record.role}, {"streamsDeleted", record.streams_deleted}}
               .dump();
  return e;
}

std::optional<CustomerForgotten> DecodeCustomerForgotten(std::string_view data) {
  auto j = nlohmann::json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || j.size() != 3) return std::nullopt;
  const auto at = j.find("atMicros"), role = j.find("role"), streams = j.find("streamsDeleted");
  if (at == j.end() || role == j.end() || streams == j.end() || !at->is_number_unsigned() || !role->is_string() ||
      !streams->is_number_unsigned()) {
    return std::nullopt;
  }
  return CustomerForgotten{at->get<uint64_t>(), role->get<std::string>(), streams->get<uint64_t>()};
}

}  // namespace esd::domain
