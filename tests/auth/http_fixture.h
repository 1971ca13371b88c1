// Test-side HTTP for the auth integration suite, independent of the code under test:
//   * HttpServer -- a small HTTP/1.1 server on POSIX sockets, run by the test in its own
//     threads, standing in for the emq_auth_http auth server and the emq_web_hook receiver.
//     It records every request (method, path, decoded parameters, body) and answers through
//     a test-supplied responder: a status and body, a hang, or bytes that are not HTTP.
//   * rest()     -- one blocking REST call (Basic admin:public) on a fresh connection.
//   * AuthIt     -- a gtest fixture: a broker (tests/integration harness) with an ACL file in
//     a temp dir, and REST shortcuts for plugins and plugin configs.
// Thread-safety: HttpServer's members may be called from any thread (requests are recorded
// under a mutex); everything else belongs to the test thread.
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

namespace mqttd::authtest {

using Json = nlohmann::json;
using namespace std::chrono_literals;

struct HttpRequest {
    std::string method;
    std::string path;                            // without the query
    std::string query;                           // raw
    std::map<std::string, std::string> headers;  // names lowercased
    std::string body;
    // Decoded query parameters (GET) merged with a decoded form body (POST).
    std::map<std::string, std::string> params;
    std::string param(const std::string& k) const {
        auto it = params.find(k);
        return it == params.end() ? std::string("<absent>") : it->second;
    }
};

struct HttpAnswer {
    int status = 200;
    std::string body;
    bool hang = false;    // read the request, then send nothing until the server stops
    std::string garbage;  // when non-empty: sent instead of an HTTP response, then close
};

inline HttpAnswer reply(int status, std::string body = {}) {
    HttpAnswer a;
    a.status = status;
    a.body = std::move(body);
    return a;
}
inline HttpAnswer hang() {
    HttpAnswer a;
    a.hang = true;
    return a;
}
inline HttpAnswer garbage(std::string bytes) {
    HttpAnswer a;
    a.garbage = std::move(bytes);
    return a;
}

class HttpServer {
public:
    using Responder = std::function<HttpAnswer(const HttpRequest&)>;

    HttpServer();  // binds 127.0.0.1 on a free port; answers 200 "" until set_responder
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    uint16_t port() const { return port_; }
    std::string url(const std::string& path) const;
    void set_responder(Responder r);
    // Stops accepting and closes the listening socket: the server is "down".
    void stop();

    std::vector<HttpRequest> requests() const;
    std::vector<HttpRequest> requests_to(const std::string& path) const;
    size_t count(const std::string& path) const { return requests_to(path).size(); }
    void clear();
    // Waits until a request to `path` satisfying `pred` (default: any) has arrived.
    std::optional<HttpRequest> wait_for(const std::string& path,
                                        std::function<bool(const HttpRequest&)> pred = {},
                                        std::chrono::milliseconds timeout = 5000ms);

private:
    void accept_loop();
    void serve(int fd);

    int listen_fd_ = -1;
    uint16_t port_ = 0;
    std::atomic<bool> stopping_{false};
    mutable std::mutex mu_;
    std::condition_variable cv_;
    Responder responder_;
    std::vector<HttpRequest> requests_;
    std::vector<std::thread> conns_;
    std::thread acceptor_;
};

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

// x-www-form-urlencoded / query decoding ('+' = space).
std::map<std::string, std::string> decode_form(const std::string& text);
std::string url_encode(const std::string& s);

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
