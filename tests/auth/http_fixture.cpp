#include "http_fixture.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

namespace mqttd::authtest {
namespace {

using Clock = std::chrono::steady_clock;

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    return s;
}

int hex_value(char ch) {
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    if (ch >= 'A' && ch <= 'F') {
        return ch - 'A' + 10;
    }
    return -1;
}

std::string percent_decode(const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '+') {
            out += ' ';
        } else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 &&
                   hex_value(s[i + 2]) >= 0) {
            out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
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
                std::string target = first.substr(sp1 + 1, sp2 - sp1 - 1);
                size_t q = target.find('?');
                req.path = target.substr(0, q);
                req.query = q == std::string::npos ? "" : target.substr(q + 1);
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

void send_all(int fd, const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
        ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (n <= 0) {
            return;
        }
        off += static_cast<size_t>(n);
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

std::string url_encode(const std::string& s) {
    static const char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char ch : s) {
        if (std::isalnum(ch) != 0 || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            out += static_cast<char>(ch);
        } else {
            out += '%';
            out += kHex[ch >> 4];
            out += kHex[ch & 15];
        }
    }
    return out;
}

// ---- HttpServer ----

HttpServer::HttpServer() {
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

// ---- REST ----

RestReply rest(uint16_t port,
               const std::string& method,
               const std::string& path,
               const std::string& body) {
    RestReply out;
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        ADD_FAILURE() << "REST connect to port " << port << ": " << std::strerror(errno);
        return out;
    }
    // "admin:public" in base64.
    std::string req = method + " /api/v2/" + path +
                      " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic YWRtaW46cHVibGlj\r\n"
                      "Connection: close\r\nContent-Type: application/json\r\nContent-Length: " +
                      std::to_string(body.size()) + "\r\n\r\n" + body;
    send_all(fd, req);
    std::string reply;
    auto deadline = Clock::now() + 15s;
    while (Clock::now() < deadline) {
        pollfd pfd{fd, POLLIN, 0};
        if (::poll(&pfd, 1, 200) <= 0) {
            continue;
        }
        char tmp[8192];
        ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
        if (n <= 0) {
            break;
        }
        reply.append(tmp, static_cast<size_t>(n));
        // The server may keep the connection open: stop once the body is complete.
        size_t head_end = reply.find("\r\n\r\n");
        if (head_end != std::string::npos) {
            std::string head = lower(reply.substr(0, head_end));
            size_t cl = head.find("content-length:");
            if (cl != std::string::npos &&
                reply.size() >= head_end + 4 + std::stoul(head.substr(cl + 15))) {
                break;
            }
        }
    }
    ::close(fd);
    size_t sp = reply.find(' ');
    size_t end = reply.find("\r\n\r\n");
    if (sp == std::string::npos || end == std::string::npos) {
        ADD_FAILURE() << method << " " << path << ": no HTTP reply";
        return out;
    }
    out.status = std::atoi(reply.c_str() + sp + 1);
    std::string payload = reply.substr(end + 4);
    if (lower(reply.substr(0, end)).find("transfer-encoding: chunked") != std::string::npos) {
        std::string dechunked;
        size_t pos = 0;
        while (pos < payload.size()) {
            size_t le = payload.find("\r\n", pos);
            if (le == std::string::npos) {
                break;
            }
            size_t n = std::stoul(payload.substr(pos, le - pos), nullptr, 16);
            if (n == 0) {
                break;
            }
            dechunked += payload.substr(le + 2, n);
            pos = le + 2 + n + 2;
        }
        payload = dechunked;
    }
    out.json = Json::parse(payload, nullptr, false);
    return out;
}

// ---- AuthIt ----

void AuthIt::write_acl(const std::string& text) {
    std::string tmp = acl_path_ + ".tmp";
    std::ofstream(tmp) << text;
    // rename: a reload never sees a half-written file.
    ASSERT_EQ(std::rename(tmp.c_str(), acl_path_.c_str()), 0);
}

void AuthIt::start_broker(const std::optional<std::string>& acl, std::vector<std::string> sets) {
    acl_path_ = dir_.path() + "/acl.conf";
    if (acl) {
        write_acl(*acl);
    }
    sets.insert(sets.begin(), "mqtt.acl_file=" + acl_path_);
    broker_ = std::make_unique<itest::BrokerProcess>(std::move(sets), false);
    ASSERT_NO_FATAL_FAILURE(broker_->start());
}

RestReply AuthIt::api(const std::string& method, const std::string& path, const std::string& body) {
    // The MQTT port accepts before the REST server is up: retry a refused connection briefly.
    for (int i = 0; i < 100; ++i) {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(broker_->api_port());
        bool up = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
        ::close(fd);
        if (up) {
            break;
        }
        std::this_thread::sleep_for(50ms);
    }
    return rest(broker_->api_port(), method, path, body);
}

std::string AuthIt::node() {
    if (node_.empty()) {
        auto r = api("GET", "management/nodes");
        if (r.code() == 0 && r.json["result"].is_array() && !r.json["result"].empty()) {
            node_ = r.json["result"][0].value("name", std::string());
        }
        EXPECT_FALSE(node_.empty()) << r.json.dump();
    }
    return node_;
}

int AuthIt::set_plugin(const std::string& name, bool active) {
    auto r = api("PUT", "nodes/" + node() + "/plugins/" + name, Json{{"active", active}}.dump());
    return r.code();
}

int AuthIt::configure(const std::string& name, const Json& config) {
    auto r = api("PUT", "nodes/" + node() + "/plugin_configs/" + name, config.dump());
    EXPECT_EQ(r.code(), 0) << name << ": " << r.json.dump();
    return r.code();
}

std::optional<bool> AuthIt::plugin_active(const std::string& name) {
    auto r = api("GET", "nodes/" + node() + "/plugins");
    for (const auto& p : r.json["result"]) {
        if (p.value("name", std::string()) == name) {
            return p.value("active", false);
        }
    }
    return std::nullopt;
}

std::string AuthIt::plugin_value(const std::string& name, const std::string& key) {
    auto r = api("GET", "nodes/" + node() + "/plugin_configs/" + name);
    for (const auto& p : r.json["result"]) {
        if (p.value("key", std::string()) == key) {
            return p.value("value", std::string());
        }
    }
    return "<absent>";
}

uint64_t AuthIt::metric(const std::string& name) {
    auto r = api("GET", "monitoring/metrics/" + node());
    const auto& res = r.json["result"];
    if (res.is_object() && res.contains(name) && res[name].is_number()) {
        return res[name].get<uint64_t>();
    }
    ADD_FAILURE() << "no metric " << name << " in " << r.json.dump().substr(0, 300);
    return 0;
}

// ---- MQTT helpers ----

std::vector<std::string> publish_and_collect(itest::RawClient& pub,
                                             itest::RawClient& sub,
                                             const std::string& topic,
                                             uint8_t qos,
                                             const std::string& marker_topic) {
    pub.publish(topic, "payload", qos);
    pub.publish(marker_topic, "marker", 0);
    std::vector<std::string> got;
    for (int i = 0; i < 10; ++i) {
        auto p = sub.receive_and_ack();
        if (!p) {
            ADD_FAILURE() << "marker " << marker_topic << " not received after " << topic;
            break;
        }
        got.push_back(p->topic);
        if (p->topic == marker_topic) {
            break;
        }
    }
    return got;
}

int connect_rc(itest::RawClient& c,
               uint16_t port,
               const std::string& client_id,
               const std::optional<std::string>& username,
               const std::optional<std::string>& password) {
    c.close();
    if (!c.open(port)) {
        return -2;
    }
    itest::pkt::ConnectOptions o;
    o.client_id = client_id;
    o.username = username;
    o.password = password;
    if (!c.send(itest::pkt::connect(o))) {
        return -1;
    }
    auto p = c.read(10s);
    if (!p || p->type() != itest::kConnack || p->body.size() != 2) {
        return -1;
    }
    return p->body[1];
}

}  // namespace mqttd::authtest
