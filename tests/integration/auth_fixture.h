// The fixture of the auth, ACL and plugin suites (13..15) and the database auth suites
// (30..33):
//   * rest()  -- one REST call (Basic admin:public) through tests/support's HTTP client, the
//     reply's JSON parsed.
//   * AuthIt  -- a gtest fixture: a broker (harness.h) with an ACL file in a temp dir, and REST
//     shortcuts for plugins and plugin configs.
// The test HTTP server (auth server, web hook receiver) is tests/support/http_server.h.
// Thread-safety: everything belongs to the test thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness.h"
#include "http_client.h"
#include "http_server.h"

namespace mqttd::authtest {

using Json = nlohmann::json;
using namespace std::chrono_literals;

using test::decode_form;
using test::garbage;
using test::hang;
using test::HttpAnswer;
using test::HttpRequest;
using test::HttpServer;
using test::reply;
using test::url_encode;

struct RestReply {
    int status = 0;
    Json json;
    int code() const { return json.is_object() ? json.value("code", -1) : -1; }
    std::string message() const {
        return json.is_object() ? json.value("message", std::string()) : std::string();
    }
};

RestReply rest(uint16_t port,
               const std::string& method,
               const std::string& path,
               const std::string& body = "");

class AuthIt : public ::testing::Test {
protected:
    // Starts a broker with `acl` as the ACL file's text (nullopt: no file at all) and the
    // harness defaults plus `sets`.
    void start_broker(const std::optional<std::string>& acl, std::vector<std::string> sets = {});
    void write_acl(const std::string& text);

    RestReply api(const std::string& method, const std::string& path, const std::string& body = "");
    std::string node();
    // PUT nodes/{node}/plugins/{name}; returns the code.
    int set_plugin(const std::string& name, bool active);
    // PUT nodes/{node}/plugin_configs/{name} with `config`; returns the code.
    int configure(const std::string& name, const Json& config);
    std::optional<bool> plugin_active(const std::string& name);
    std::string plugin_value(const std::string& name, const std::string& key);
    uint64_t metric(const std::string& name);

    uint16_t port() const { return broker_->port(); }

    itest::TempDir dir_;
    std::string acl_path_;
    std::unique_ptr<itest::BrokerProcess> broker_;
    std::string node_;
};

// Publishes `payload` on `topic` from `pub` and then a marker on `marker_topic`; returns the
// topics `sub` receives up to and including the marker (the marker proves everything the
// broker would deliver before it has been delivered, since one publisher's messages keep
// their order).
std::vector<std::string> publish_and_collect(itest::RawClient& pub,
                                             itest::RawClient& sub,
                                             const std::string& topic,
                                             uint8_t qos,
                                             const std::string& marker_topic);

// CONNECT with optional credentials on a fresh socket; the CONNACK return code, or -1 when
// the broker closed the connection without one.
int connect_rc(itest::RawClient& c,
               uint16_t port,
               const std::string& client_id,
               const std::optional<std::string>& username = std::nullopt,
               const std::optional<std::string>& password = std::nullopt);

}  // namespace mqttd::authtest
