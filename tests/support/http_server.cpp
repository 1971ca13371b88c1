#include "http_server.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include "http_client.h"
#include "sockets.h"

namespace mqttd::test {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    return s;
}

// Reads until `fd` has delivered a full request (headers + Content-Length body) or `deadline`.
bool read_request(int fd, std::string& buf, HttpRequest& req, Clock::time_point deadline) {
    size_t header_end = std::string::npos;
    bool continued = false;
    for (;;) {
        if (header_end == std::string::npos) {
            header_end = buf.find("\r\n\r\n");
            if (header_end != std::string::npos) {
                std::string head = buf.substr(0, header_end);
                size_t line_end = head.find("\r\n");
                std::string first = head.substr(0, line_end);
                size_t sp1 = first.find(' ');
                size_t sp2 = first.find(' ', sp1 + 1);
                if (sp1 == std::string::npos || sp2 == std::string::npos) {
                    return false;
                }
                req.method = first.substr(0, sp1);
                req.target = first.substr(sp1 + 1, sp2 - sp1 - 1);
                size_t q = req.target.find('?');
                req.path = req.target.substr(0, q);
                req.query = q == std::string::npos ? "" : req.target.substr(q + 1);
                size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
                while (pos < head.size()) {
                    size_t e = head.find("\r\n", pos);
                    if (e == std::string::npos) {
                        e = head.size();
                    }
                    std::string line = head.substr(pos, e - pos);
                    size_t colon = line.find(':');
                    if (colon != std::string::npos) {
                        std::string v = line.substr(colon + 1);
                        v.erase(0, v.find_first_not_of(' '));
                        req.headers[lower(line.substr(0, colon))] = v;
                    }
                    pos = e + 2;
                }
            }
        }
        if (header_end != std::string::npos) {
            size_t want = 0;
            if (auto it = req.headers.find("content-length"); it != req.headers.end()) {
                want = std::stoul(it->second);
            }
            if (!continued && want > 0 && lower(req.headers["expect"]) == "100-continue") {
                const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
                (void)!::send(fd, kContinue, sizeof kContinue - 1, MSG_NOSIGNAL);
                continued = true;
            }
            if (buf.size() >= header_end + 4 + want) {
                req.body = buf.substr(header_end + 4, want);
                return true;
            }
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) {
            return false;
        }
        pollfd pfd{fd, POLLIN, 0};
        if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) {
            continue;
        }
        char tmp[8192];
        ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
        if (n <= 0) {
            return false;
        }
        buf.append(tmp, static_cast<size_t>(n));
    }
}

const char* reason_phrase(int status) {
    switch (status) {
        case 200:
            return "OK";
        case 400:
            return "Bad Request";
        case 401:
            return "Unauthorized";
        case 403:
            return "Forbidden";
        case 404:
            return "Not Found";
        case 500:
            return "Internal Server Error";
        default:
            return "Status";
    }
}

}  // namespace

std::map<std::string, std::string> decode_form(const std::string& text) {
    std::map<std::string, std::string> out;
    size_t pos = 0;
    while (pos <= text.size() && !text.empty()) {
        size_t amp = text.find('&', pos);
        if (amp == std::string::npos) {
            amp = text.size();
        }
        std::string pair = text.substr(pos, amp - pos);
        size_t eq = pair.find('=');
        if (!pair.empty()) {
            out[percent_decode(pair.substr(0, eq))] =
                    eq == std::string::npos ? "" : percent_decode(pair.substr(eq + 1));
        }
        pos = amp + 1;
    }
    return out;
}

// ---- HttpServer ----

HttpServer::HttpServer() : HttpServer(Responder{}) {}

HttpServer::HttpServer(Responder r) : responder_(std::move(r)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_, 128) != 0) {
        ADD_FAILURE() << "test HTTP server: bind/listen: " << std::strerror(errno);
        return;
    }
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
}

HttpServer::~HttpServer() {
    stop();
    std::vector<std::thread> conns;
    {
        std::lock_guard lock(mu_);
        conns.swap(conns_);
    }
    for (auto& t : conns) {
        t.join();
    }
}

std::string HttpServer::url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
}

void HttpServer::set_responder(Responder r) {
    std::lock_guard lock(mu_);
    responder_ = std::move(r);
}

void HttpServer::stop() {
    if (stopping_.exchange(true)) {
        return;
    }
    ::shutdown(listen_fd_, SHUT_RDWR);
    if (acceptor_.joinable()) {
        acceptor_.join();
    }
    ::close(listen_fd_);
    cv_.notify_all();
}

void HttpServer::accept_loop() {
    while (!stopping_.load()) {
        pollfd pfd{listen_fd_, POLLIN, 0};
        if (::poll(&pfd, 1, 50) <= 0) {
            continue;
        }
        int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) {
            continue;
        }
        std::lock_guard lock(mu_);
        conns_.emplace_back([this, fd] { serve(fd); });
    }
}

void HttpServer::serve(int fd) {
    std::string buf;
    HttpRequest req;
    if (read_request(fd, buf, req, Clock::now() + 5s)) {
        req.params = decode_form(req.query);
        auto type = req.headers.find("content-type");
        if (type != req.headers.end() &&
            type->second.find("application/x-www-form-urlencoded") != std::string::npos) {
            for (auto& [k, v] : decode_form(req.body)) {
                req.params[k] = v;
            }
        }
        Responder responder;
        {
            std::lock_guard lock(mu_);
            requests_.push_back(req);
            responder = responder_;
        }
        cv_.notify_all();
        HttpAnswer a = responder ? responder(req) : HttpAnswer{};
        if (a.hang) {
            std::unique_lock lock(mu_);
            cv_.wait_for(lock, 10s, [this] { return stopping_.load(); });
        } else if (!a.garbage.empty()) {
            send_all(fd, a.garbage);
        } else {
            send_all(fd, "HTTP/1.1 " + std::to_string(a.status) + " " + reason_phrase(a.status) +
                                 "\r\nContent-Type: text/plain\r\nContent-Length: " +
                                 std::to_string(a.body.size()) + "\r\nConnection: close\r\n\r\n" +
                                 a.body);
        }
    }
    ::shutdown(fd, SHUT_WR);
    ::close(fd);
}

std::vector<HttpRequest> HttpServer::requests() const {
    std::lock_guard lock(mu_);
    return requests_;
}

std::vector<HttpRequest> HttpServer::requests_to(const std::string& path) const {
    std::vector<HttpRequest> out;
    for (auto& r : requests()) {
        if (r.path == path) {
            out.push_back(r);
        }
    }
    return out;
}

size_t HttpServer::count() const {
    std::lock_guard lock(mu_);
    return requests_.size();
}

bool HttpServer::wait_count(size_t n, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return requests_.size() >= n; });
}

void HttpServer::clear() {
    std::lock_guard lock(mu_);
    requests_.clear();
}

std::optional<HttpRequest> HttpServer::wait_for(const std::string& path,
                                                std::function<bool(const HttpRequest&)> pred,
                                                std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    std::optional<HttpRequest> found;
    cv_.wait_for(lock, timeout, [&] {
        for (const auto& r : requests_) {
            if (r.path == path && (!pred || pred(r))) {
                found = r;
                return true;
            }
        }
        return false;
    });
    return found;
}

}  // namespace mqttd::test
