// What the files of esd::client share beyond client.h: the connection's capabilities, for
// the calls implemented outside client.cc (lifecycle.cc). Not installed; not for users.
#pragma once

#include <string>

#include "client/client.h"
#include "protocol/esd.capnp.h"

namespace esd::client::internal {

rpc::Session::Client& SessionOf(Client::Impl& impl);
rpc::EventStore::Client& StoreOf(Client::Impl& impl);
// "invalid-argument", "permission-denied" ... as AppendResult::reject_code says them.
const char* RejectName(rpc::RejectCode code);
// The wire form of an expected version (appends, deletes, metadata).
void SetExpected(rpc::ExpectedVersion::Builder out, Expected expected);
std::string Str(capnp::Text::Reader t);
std::string Str(capnp::Data::Reader d);

}  // namespace esd::client::internal
