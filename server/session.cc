#include "server/session.h"

#include <kj/debug.h>

#include "server/admin_service.h"
#include "server/direct_capability.h"
#include "server/failed_calls.h"
#include "server/event_store_service.h"
#include "server/order_service.h"

namespace esd::server {

namespace {

class SessionImpl final : public LoggedCalls<rpc::Session> {
 public:
  SessionImpl(ServerContext& ctx, ConnectionState& connection, Role role)
      : ctx_(ctx), connection_(kj::addRef(connection)), role_(role) {}

  kj::Promise<void> role(RoleContext context) override {
    context.getResults().setRole(RoleOnWire(role_));
    return kj::READY_NOW;
  }
  kj::Promise<void> eventStore(EventStoreContext context) override {
    // The hot calls (append, reads, order commands) skip LocalClient's per-call machinery.
    context.getResults().setStore(
        DirectCapability<rpc::EventStore>(kj::heap<EventStoreService>(ctx_, *connection_, role_)));
    return kj::READY_NOW;
  }
  kj::Promise<void> orders(OrdersContext context) override {
    context.getResults().setOrders(
        DirectCapability<rpc::OrderService>(kj::heap<OrderServiceImpl>(ctx_, *connection_, role_)));
    return kj::READY_NOW;
  }
  kj::Promise<void> admin(AdminContext context) override {
    if (role_ != Role::kAdmin) {
      kj::throwFatalException(KJ_EXCEPTION(FAILED, kj::str("permission denied: Admin needs the admin role; this "
                                                           "session has the ", RoleName(role_), " role")));
    }
    context.getResults().setAdmin(MakeAdmin(ctx_, *connection_));
    return kj::READY_NOW;
  }

 private:
  ServerContext& ctx_;
  kj::Own<ConnectionState> connection_;
  const Role role_;
};

class BootstrapImpl final : public LoggedCalls<rpc::Bootstrap> {
 public:
  BootstrapImpl(ServerContext& ctx, ConnectionState& connection) : ctx_(ctx), connection_(kj::addRef(connection)) {}

  kj::Promise<void> login(LoginContext context) override {
    Role role = Role::kAdmin;  // without --auth, everyone is trusted (loopback only)
    if (!ctx_.config.auth_file.empty()) {
      auto token = context.getParams().getToken();
      auto it = ctx_.config.tokens.find(std::string(token.cStr(), token.size()));
      if (it == ctx_.config.tokens.end()) {
        kj::throwFatalException(KJ_EXCEPTION(FAILED, "unauthenticated: unknown token"));
      }
      role = it->second;
    }
    connection_->LoggedIn();
    context.getResults().setSession(kj::heap<SessionImpl>(ctx_, *connection_, role));
    return kj::READY_NOW;
  }

 private:
  ServerContext& ctx_;
  kj::Own<ConnectionState> connection_;
};

}  // namespace

rpc::Role RoleOnWire(Role r) {
  switch (r) {
    case Role::kReader: return rpc::Role::READER;
    case Role::kWriter: return rpc::Role::WRITER;
    case Role::kAdmin: return rpc::Role::ADMIN;
  }
  return rpc::Role::READER;
}

rpc::Bootstrap::Client MakeBootstrap(ServerContext& ctx, ConnectionState& connection) {
  return kj::heap<BootstrapImpl>(ctx, connection);
}

}  // namespace esd::server
