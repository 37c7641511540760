// The OrderService capability (protocol/esd.capnp), for one session's role. Commands run
// on the event loop without blocking it: Prepare (load, decide), an asynchronous append
// answered through a cross-thread fulfiller, Finish; a conflict prepares again.
#pragma once

#include "protocol/esd.capnp.h"
#include "server/config.h"
#include "server/connection.h"
#include "server/context.h"
#include "server/failed_calls.h"

namespace esd::server {

class OrderServiceImpl final : public LoggedCalls<rpc::OrderService> {
 public:
  // Reads of many events (history, listOrders) wait while `connection` has more than
  // kMaxOutgoingBytes of answers unsent (server/connection.h).
  OrderServiceImpl(ServerContext& ctx, ConnectionState& connection, Role role)
      : LoggedCalls(&ctx.ops.rpc_latency), ctx_(ctx), connection_(kj::addRef(connection)), role_(role) {}

  kj::Promise<void> createOrder(CreateOrderContext context) override;
  kj::Promise<void> addItem(AddItemContext context) override;
  kj::Promise<void> removeItem(RemoveItemContext context) override;
  kj::Promise<void> placeOrder(PlaceOrderContext context) override;
  kj::Promise<void> cancelOrder(CancelOrderContext context) override;
  kj::Promise<void> getOrder(GetOrderContext context) override;
  kj::Promise<void> listOrders(ListOrdersContext context) override;
  kj::Promise<void> history(HistoryContext context) override;
  // GDPR erasure, admin only: docs/domain.md "Forgetting a customer".
  kj::Promise<void> forgetCustomer(ForgetCustomerContext context) override;

 private:
  template <typename Context>
  kj::Promise<void> Command(Context context, rpc::CommandMeta::Reader meta, domain::OrderCommand command);

  void HistoryNow(HistoryContext context);
  // The erasure itself, once the projection has caught up: in one turn of the event loop.
  void ForgetNow(rpc::ForgetCustomerResult::Builder result, const std::string& customer_id);

  ServerContext& ctx_;
  kj::Own<ConnectionState> connection_;
  const Role role_;
};

// removeItem's arguments as the domain's command: on the wire (OrderService.removeItem,
// frames.capnp's removeItem) a quantity of 0 removes the whole line.
domain::RemoveItem RemoveItemCommand(std::string order_id, std::string sku, uint32_t quantity);

// One order command as every protocol serves it (OrderService's five commands, and
// frames.capnp's OrderCommand): refused at once (the daemon is stopping, the role may not
// write), or prepared, appended without blocking and finished, again on a conflict.
// `answer` gives where the result goes; it is called once, when the outcome is known (at
// once for a refusal). Counts esd_order_commands_total. `meta` is not used after this
// returns.
kj::Promise<void> ServeCommand(ServerContext& ctx, Role role, rpc::CommandMeta::Reader meta,
                               domain::OrderCommand command, kj::Function<rpc::CommandResult::Builder()> answer);

}  // namespace esd::server
