#include "server/direct_capability.h"

#include <capnp/schema.h>
#include <kj/debug.h>

namespace esd::server {

namespace {

bool CanHoldCapability(capnp::Type type, int depth);

bool StructCanHoldCapability(capnp::StructSchema schema, int depth) {
  for (auto field : schema.getFields()) {
    if (CanHoldCapability(field.getType(), depth + 1)) return true;
  }
  return false;
}

bool CanHoldCapability(capnp::Type type, int depth) {
  if (depth > 16) return true;  // a recursive type: assume the worst
  switch (type.which()) {
    case capnp::schema::Type::INTERFACE:
    case capnp::schema::Type::ANY_POINTER:
      return true;
    case capnp::schema::Type::STRUCT:
      return StructCanHoldCapability(type.asStruct(), depth);
    case capnp::schema::Type::LIST:
      return CanHoldCapability(type.asList().getElementType(), depth + 1);
    default:
      return false;
  }
}

class DirectClient final : public capnp::ClientHook, public kj::Refcounted {
 public:
  DirectClient(uint64_t interface_id, std::vector<bool> direct, kj::Own<capnp::ClientHook> local,
               capnp::Capability::Server& server)
      : interface_id_(interface_id), direct_(std::move(direct)), local_(kj::mv(local)), server_(server) {}

  capnp::Request<capnp::AnyPointer, capnp::AnyPointer> newCall(uint64_t interface_id, uint16_t method_id,
                                                               kj::Maybe<capnp::MessageSize> size_hint) override {
    return local_->newCall(interface_id, method_id, size_hint);
  }

  VoidPromiseAndPipeline call(uint64_t interface_id, uint16_t method_id,
                              kj::Own<capnp::CallContextHook>&& context) override {
    if (interface_id != interface_id_ || method_id >= direct_.size() || !direct_[method_id]) {
      return local_->call(interface_id, method_id, kj::mv(context));
    }
    kj::Maybe<kj::Promise<void>> promise;
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&] {
      promise = server_.dispatchCall(interface_id, method_id,
                                     capnp::CallContext<capnp::AnyPointer, capnp::AnyPointer>(*context))
                    .promise;
    })) {
      promise = kj::Promise<void>(kj::mv(*e));
    }
    return {KJ_ASSERT_NONNULL(promise).attach(kj::mv(context), kj::addRef(*this)), no_pipeline_->addRef()};
  }

  kj::Maybe<capnp::ClientHook&> getResolved() override { return nullptr; }
  kj::Maybe<kj::Promise<kj::Own<capnp::ClientHook>>> whenMoreResolved() override { return nullptr; }
  kj::Own<capnp::ClientHook> addRef() override { return kj::addRef(*this); }
  const void* getBrand() override { return &kBrand; }
  kj::Maybe<int> getFd() override { return nullptr; }

 private:
  static constexpr int kBrand = 0;
  const uint64_t interface_id_;
  const std::vector<bool> direct_;
  kj::Own<capnp::ClientHook> local_;  // owns the server
  capnp::Capability::Server& server_;
  // One for every direct call (an exception's text costs ~2k instructions to build).
  kj::Own<capnp::PipelineHook> no_pipeline_ =
      capnp::newBrokenPipeline(KJ_EXCEPTION(FAILED, "this method's results hold no capability to call"));
};

}  // namespace

std::vector<bool> MethodsWithoutCapabilities(capnp::InterfaceSchema schema) {
  std::vector<bool> direct;
  for (auto method : schema.getMethods()) {
    direct.push_back(!StructCanHoldCapability(method.getResultType(), 0));
  }
  return direct;
}

capnp::Capability::Client DirectCapability(uint64_t interface_id, std::vector<bool> direct_methods,
                                           kj::Own<capnp::Capability::Server> server) {
  capnp::Capability::Server& ref = *server;
  auto local = capnp::ClientHook::from(capnp::Capability::Client(kj::mv(server)));
  return capnp::Capability::Client(kj::refcounted<DirectClient>(interface_id, std::move(direct_methods),
                                                                kj::mv(local), ref));
}

}  // namespace esd::server
