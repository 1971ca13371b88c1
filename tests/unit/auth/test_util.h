// Helpers shared by the auth tests. Test-only.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <string>

#include <stdlib.h>

#include "broker/auth/auth_chain.h"
#include "temp_dir.h"

namespace mqttd::broker::auth::testing {

// Runs `start(done)` and waits for the decision; fails the wait after `timeout`.
struct Waited {
    bool called = false;
    Decision decision;
};
inline Waited wait_decision(const std::function<void(DecisionCallback)>& start,
                            std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    auto promise = std::make_shared<std::promise<Decision>>();
    auto future = promise->get_future();
    start([promise](Decision d) { promise->set_value(std::move(d)); });
    if (future.wait_for(timeout) != std::future_status::ready) {
        return {};
    }
    return {true, future.get()};
}

inline ClientIdentity identity(std::string client_id,
                               std::optional<std::string> username = std::nullopt,
                               std::optional<std::string> password = std::nullopt,
                               std::string ip = "10.0.0.1") {
    ClientIdentity id;
    id.client_id = std::move(client_id);
    id.username = std::move(username);
    if (password) {
        id.password = std::make_shared<const std::string>(std::move(*password));
    }
    id.ip = std::move(ip);
    id.port = 50000;
    id.proto_ver = 4;
    return id;
}

using TempDir = mqttd::test::TempDir;  // tests/support/temp_dir.h

}  // namespace mqttd::broker::auth::testing
