// A small HTTP/1.1 server on 127.0.0.1 (free port) that tests run in their own threads,
// standing in for the emq_auth_http auth server and the emq_web_hook receiver. Independent of
// the code under test. It records every request (method, path, headers, decoded parameters,
// body) and answers through a test-supplied responder: a status and body, a hang, or bytes
// that are not HTTP. Every answer closes its connection.
// Thread-safety: members may be called from any thread (state under a mutex); the responder
// runs on the server's connection threads.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace mqttd::test {

struct HttpRequest {
    std::string method;
    std::string target;                          // path + query, as sent
    std::string path;                            // without the query
    std::string query;                           // raw
    std::map<std::string, std::string> headers;  // names lowercased
    std::string body;
    // Decoded query parameters merged with a decoded x-www-form-urlencoded body.
    std::map<std::string, std::string> params;
    std::string param(const std::string& k) const {
        auto it = params.find(k);
        return it == params.end() ? std::string("<absent>") : it->second;
    }
    std::string header(const std::string& lower_name) const {
        auto it = headers.find(lower_name);
        return it == headers.end() ? std::string() : it->second;
    }
};

struct HttpAnswer {
    int status = 200;
    std::string body;
    bool hang = false;    // read the request, then send nothing until the server stops (10 s)
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
inline HttpAnswer garbage(std::string bytes = "this is not http\r\n\r\n") {
    HttpAnswer a;
    a.garbage = std::move(bytes);
    return a;
}

class HttpServer {
public:
    using Responder = std::function<HttpAnswer(const HttpRequest&)>;

    HttpServer();  // answers 200 "" until set_responder
    explicit HttpServer(Responder r);
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
    size_t count() const;
    size_t count(const std::string& path) const { return requests_to(path).size(); }
    void clear();
    // Waits until a request to `path` satisfying `pred` (default: any) has arrived.
    std::optional<HttpRequest> wait_for(
            const std::string& path,
            std::function<bool(const HttpRequest&)> pred = {},
            std::chrono::milliseconds timeout = std::chrono::seconds(5));
    // Waits until at least n requests have arrived.
    bool wait_count(size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

private:
    void accept_loop();
    void serve(int fd);

    int listen_fd_ = -1;
    uint16_t port_ = 0;
    std::atomic<bool> stopping_{false};
    mutable std::mutex mu_;
    mutable std::condition_variable cv_;
    Responder responder_;
    std::vector<HttpRequest> requests_;
    std::vector<std::thread> conns_;
    std::thread acceptor_;
};

// x-www-form-urlencoded / query text into its decoded pairs ('+' = space).
std::map<std::string, std::string> decode_form(const std::string& text);

}  // namespace mqttd::test
