// A tiny blocking HTTP/1.1 server on 127.0.0.1 for the auth tests: one thread, one connection
// at a time, "Connection: close" on every answer. It records each request and answers with
// what the test's handler returns, or misbehaves on purpose (hang, garbage). Test-only.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

namespace mqttd::broker::auth::testing {

struct ReceivedRequest {
    std::string method;
    std::string target;  // path + query
    std::string path;
    std::string query;
    std::string content_type;
    std::string body;
};

struct CannedResponse {
    enum class Mode { Answer, Hang, Garbage };
    Mode mode = Mode::Answer;
    int status = 200;
    std::string body;

    static CannedResponse answer(int status, std::string body = {}) {
        return {Mode::Answer, status, std::move(body)};
    }
    static CannedResponse hang() { return {Mode::Hang, 0, {}}; }
    static CannedResponse garbage() { return {Mode::Garbage, 0, {}}; }
};

class TestHttpServer {
public:
    using Handler = std::function<CannedResponse(const ReceivedRequest&)>;

    explicit TestHttpServer(Handler handler) : handler_(std::move(handler)) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = 0;
        ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
        ::listen(fd_, 64);
        socklen_t len = sizeof(addr);
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
        port_ = ntohs(addr.sin_port);
        thread_ = std::thread([this] { run(); });
    }
    ~TestHttpServer() {
        stop_ = true;
        thread_.join();
        ::close(fd_);
    }
    TestHttpServer(const TestHttpServer&) = delete;
    TestHttpServer& operator=(const TestHttpServer&) = delete;

    uint16_t port() const { return port_; }
    std::string url(const std::string& path) const {
        return "http://127.0.0.1:" + std::to_string(port_) + path;
    }
    std::vector<ReceivedRequest> requests() const {
        std::lock_guard lock(mu_);
        return requests_;
    }
    size_t count() const {
        std::lock_guard lock(mu_);
        return requests_.size();
    }
    // Waits until at least n requests arrived (or the timeout passed).
    bool wait_for(size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10)) const {
        auto end = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < end) {
            if (count() >= n) {
                return true;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        return count() >= n;
    }

private:
    bool readable(int fd, int ms) const {
        pollfd p{fd, POLLIN, 0};
        return ::poll(&p, 1, ms) > 0;
    }
    void run() {
        while (!stop_) {
            if (!readable(fd_, 50)) {
                continue;
            }
            int c = ::accept(fd_, nullptr, nullptr);
            if (c < 0) {
                continue;
            }
            serve(c);
            ::close(c);
        }
    }
    void serve(int c) {
        std::string data;
        char buf[4096];
        size_t header_end = std::string::npos;
        size_t need = 0;
        while (!stop_) {
            if (header_end != std::string::npos && data.size() >= header_end + 4 + need) {
                break;
            }
            if (!readable(c, 50)) {
                continue;
            }
            ssize_t n = ::recv(c, buf, sizeof(buf), 0);
            if (n <= 0) {
                return;
            }
            data.append(buf, static_cast<size_t>(n));
            if (header_end == std::string::npos) {
                header_end = data.find("\r\n\r\n");
                if (header_end != std::string::npos) {
                    need = content_length(data.substr(0, header_end));
                }
            }
        }
        if (header_end == std::string::npos) {
            return;
        }
        ReceivedRequest req;
        std::string head = data.substr(0, header_end);
        size_t sp1 = head.find(' ');
        size_t sp2 = head.find(' ', sp1 + 1);
        req.method = head.substr(0, sp1);
        req.target = head.substr(sp1 + 1, sp2 - sp1 - 1);
        size_t q = req.target.find('?');
        req.path = req.target.substr(0, q);
        req.query = q == std::string::npos ? "" : req.target.substr(q + 1);
        req.content_type = header(head, "content-type");
        req.body = data.substr(header_end + 4, need);
        {
            std::lock_guard lock(mu_);
            requests_.push_back(req);
        }
        CannedResponse resp = handler_(req);
        if (resp.mode == CannedResponse::Mode::Hang) {
            while (!stop_) {
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            }
            return;
        }
        std::string out;
        if (resp.mode == CannedResponse::Mode::Garbage) {
            out = "this is not http\r\n\r\n";
        } else {
            out = "HTTP/1.1 " + std::to_string(resp.status) +
                  " X\r\nContent-Length: " + std::to_string(resp.body.size()) +
                  "\r\nConnection: close\r\n\r\n" + resp.body;
        }
        ::send(c, out.data(), out.size(), MSG_NOSIGNAL);
    }
    static std::string lower(std::string s) {
        for (auto& ch : s) {
            ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        }
        return s;
    }
    static std::string header(const std::string& head, const std::string& name) {
        std::string l = lower(head);
        size_t p = l.find("\r\n" + name + ":");
        if (p == std::string::npos) {
            return {};
        }
        size_t start = p + 2 + name.size() + 1;
        size_t end = head.find("\r\n", start);
        std::string v = head.substr(start, end - start);
        while (!v.empty() && v.front() == ' ') {
            v.erase(0, 1);
        }
        return v;
    }
    static size_t content_length(const std::string& head) {
        std::string v = header(head, "content-length");
        return v.empty() ? 0 : static_cast<size_t>(std::stoul(v));
    }

    Handler handler_;
    int fd_ = -1;
    uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    mutable std::mutex mu_;
    std::vector<ReceivedRequest> requests_;
    std::thread thread_;
};

// Decodes application/x-www-form-urlencoded "a=1&b=%2F" into pairs.
inline std::vector<std::pair<std::string, std::string>> parse_form(const std::string& s) {
    auto decode = [](const std::string& in) {
        std::string out;
        for (size_t i = 0; i < in.size(); ++i) {
            if (in[i] == '%' && i + 2 < in.size()) {
                out.push_back(static_cast<char>(std::stoi(in.substr(i + 1, 2), nullptr, 16)));
                i += 2;
            } else if (in[i] == '+') {
                out.push_back(' ');
            } else {
                out.push_back(in[i]);
            }
        }
        return out;
    };
    std::vector<std::pair<std::string, std::string>> out;
    size_t start = 0;
    while (start < s.size()) {
        size_t amp = s.find('&', start);
        std::string item = s.substr(start, amp - start);
        size_t eq = item.find('=');
        out.emplace_back(decode(item.substr(0, eq)),
                         eq == std::string::npos ? "" : decode(item.substr(eq + 1)));
        if (amp == std::string::npos) {
            break;
        }
        start = amp + 1;
    }
    return out;
}

// A port on 127.0.0.1 where nothing listens (bound then closed).
inline uint16_t closed_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    return ntohs(addr.sin_port);
}

}  // namespace mqttd::broker::auth::testing
