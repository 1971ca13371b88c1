#include "rest_client.h"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <fcntl.h>
#include <mosquitto.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>

namespace mqttd::rest_test {
namespace {

int connect_to(uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

std::string base64(const std::string& in) {
    std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(in.data()),
                            static_cast<int>(in.size()));
    out.resize(static_cast<size_t>(n));
    return out;
}

const char* binary() {
    const char* env = std::getenv("MQTTD_BIN");
    return env != nullptr ? env : MQTTD_BINARY;
}

}  // namespace

uint16_t free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

std::string HttpReply::header(const std::string& lower_name) const {
    for (const auto& [k, v] : headers) {
        if (k == lower_name) {
            return v;
        }
    }
    return {};
}

HttpReply http(uint16_t port,
               const std::string& method,
               const std::string& path,
               const std::string& body,
               const std::string& auth) {
    HttpReply reply;
    int fd = connect_to(port);
    if (fd < 0) {
        return reply;
    }
    std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
    if (!auth.empty()) {
        req += "Authorization: Basic " + base64(auth) + "\r\n";
    }
    if (!body.empty() || method == "POST" || method == "PUT") {
        req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
               "\r\n";
    }
    req += "\r\n" + body;
    size_t sent = 0;
    while (sent < req.size()) {
        ssize_t n = ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) {
            break;  // the server may refuse early (413) and close
        }
        sent += static_cast<size_t>(n);
    }
    std::string raw;
    char buf[65536];
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 200) <= 0) {
            continue;
        }
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
            break;
        }
        raw.append(buf, static_cast<size_t>(n));
        // Complete once Content-Length bytes of body are in.
        size_t end = raw.find("\r\n\r\n");
        if (end != std::string::npos) {
            std::string head = raw.substr(0, end);
            for (auto& ch : head) {
                ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
            }
            size_t cl = head.find("content-length:");
            if (cl != std::string::npos &&
                raw.size() - end - 4 >= std::stoul(head.substr(cl + 15))) {
                break;
            }
        }
    }
    ::close(fd);
    size_t end = raw.find("\r\n\r\n");
    if (raw.size() < 12 || end == std::string::npos) {
        return reply;
    }
    reply.status = std::atoi(raw.c_str() + 9);
    std::istringstream lines(raw.substr(0, end));
    std::string line;
    std::getline(lines, line);
    while (std::getline(lines, line)) {
        size_t colon = line.find(':');
        if (colon == std::string::npos) {
            continue;
        }
        std::string k = line.substr(0, colon);
        for (auto& ch : k) {
            ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        }
        std::string v = line.substr(colon + 1);
        while (!v.empty() && (v.front() == ' ')) {
            v.erase(0, 1);
        }
        while (!v.empty() && (v.back() == '\r' || v.back() == ' ')) {
            v.pop_back();
        }
        reply.headers.emplace_back(k, v);
    }
    reply.body = raw.substr(end + 4);
    return reply;
}

Broker::Broker() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "mqttd-rest-XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
    std::ofstream(dir_ + "/empty.conf") << "# rest_api_test\n";
    mqtt_port_ = free_port();
    api_port_ = free_port();
}

Broker::~Broker() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
}

bool Broker::start() {
    std::vector<std::string> args = {
            binary(),
            "-c",
            dir_ + "/empty.conf",
            "--data-dir",
            dir_ + "/data",
            "--set",
            "listener.tcp.external=127.0.0.1:" + std::to_string(mqtt_port_),
            "--set",
            "listener.api.mgmt=127.0.0.1:" + std::to_string(api_port_),
            "--set",
            "node.workers=2",
            "--set",
            "listener.ssl.external=",
            "--set",
            "listener.ws.external=",
            "--set",
            "listener.wss.external=",
    };
    pid_ = ::fork();
    if (pid_ == 0) {
        int log = ::open((dir_ + "/mqttd.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        ::dup2(log, 1);
        ::dup2(log, 2);
        std::vector<char*> argv;
        for (auto& a : args) {
            argv.push_back(a.data());
        }
        argv.push_back(nullptr);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    auto deadline = std::chrono::steady_clock::now() + 15s;
    while (std::chrono::steady_clock::now() < deadline) {
        int fd = connect_to(api_port_);
        if (fd >= 0) {
            ::close(fd);
            return true;
        }
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            return false;
        }
        std::this_thread::sleep_for(20ms);
    }
    return false;
}

void Broker::stop() {
    if (pid_ <= 0) {
        return;
    }
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 500; ++i) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            return;
        }
        std::this_thread::sleep_for(10ms);
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
}

std::string Broker::log() const {
    std::ifstream in(dir_ + "/mqttd.log");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

Json Broker::get(const std::string& path) const {
    return http(api_port_, "GET", path).json();
}

Json Broker::call(const std::string& method,
                  const std::string& path,
                  const std::string& body) const {
    return http(api_port_, method, path, body).json();
}

// ---- libmosquitto ----

Mqtt::Mqtt(const std::string& client_id, bool clean) {
    static const int init = mosquitto_lib_init();
    (void)init;
    m_ = mosquitto_new(client_id.c_str(), clean, this);
    mosquitto_connect_callback_set(m_, on_connect);
    mosquitto_disconnect_callback_set(m_, on_disconnect);
    mosquitto_message_callback_set(m_, on_message);
    mosquitto_subscribe_callback_set(m_, on_subscribe);
    mosquitto_publish_callback_set(m_, on_publish);
}

Mqtt::~Mqtt() {
    if (looping_) {
        mosquitto_disconnect(m_);
        mosquitto_loop_stop(m_, true);
    }
    mosquitto_destroy(m_);
}

void Mqtt::will(const std::string& topic, const std::string& payload) {
    mosquitto_will_set(m_, topic.c_str(), static_cast<int>(payload.size()), payload.data(), 1,
                       false);
}

void Mqtt::credentials(const std::string& user, const std::string& password) {
    mosquitto_username_pw_set(m_, user.c_str(), password.c_str());
}

int Mqtt::connect(uint16_t port) {
    if (mosquitto_connect(m_, "127.0.0.1", port, 30) != MOSQ_ERR_SUCCESS) {
        return -1;
    }
    mosquitto_loop_start(m_);
    looping_ = true;
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, 5s, [&] { return rc_ >= 0 || disconnected_; });
    return rc_;
}

bool Mqtt::subscribe(const std::string& filter, int qos) {
    // A SUBACK that does not come in 2 s gets the SUBSCRIBE sent again (subscribing twice is
    // idempotent): the subject here is the REST API, not the broker's SUBACK timing.
    for (int attempt = 0; attempt < 3; ++attempt) {
        int before = 0;
        {
            std::lock_guard lock(mu_);
            before = subacks_;
        }
        if (mosquitto_subscribe(m_, nullptr, filter.c_str(), qos) != MOSQ_ERR_SUCCESS) {
            return false;
        }
        std::unique_lock lock(mu_);
        if (cv_.wait_for(lock, 2s, [&] { return subacks_ > before; })) {
            return true;
        }
    }
    return false;
}

bool Mqtt::publish(const std::string& topic, const std::string& payload, int qos, bool retain) {
    int before = 0;
    {
        std::lock_guard lock(mu_);
        before = pubacks_;
    }
    if (mosquitto_publish(m_, nullptr, topic.c_str(), static_cast<int>(payload.size()),
                          payload.data(), qos, retain) != MOSQ_ERR_SUCCESS) {
        return false;
    }
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 5s, [&] { return pubacks_ > before; });
}

std::optional<std::pair<std::string, std::string>> Mqtt::wait_message(
        std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return !messages_.empty(); })) {
        return std::nullopt;
    }
    auto m = messages_.front();
    messages_.pop_front();
    return m;
}

bool Mqtt::wait_disconnected(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return disconnected_; });
}

void Mqtt::disconnect() {
    mosquitto_disconnect(m_);
    wait_disconnected(2s);
}

// A refused CONNECT or a close by the broker ends the client: disconnecting from the callback
// stops libmosquitto's loop thread from reconnecting behind the test's back.
void Mqtt::on_connect(mosquitto* m, void* self, int rc) {
    auto* me = static_cast<Mqtt*>(self);
    if (rc != 0) {
        mosquitto_disconnect(m);
    }
    std::lock_guard lock(me->mu_);
    me->rc_ = rc;
    me->cv_.notify_all();
}

void Mqtt::on_disconnect(mosquitto* m, void* self, int rc) {
    auto* me = static_cast<Mqtt*>(self);
    if (rc != 0) {
        mosquitto_disconnect(m);
    }
    std::lock_guard lock(me->mu_);
    me->disconnected_ = true;
    me->cv_.notify_all();
}

void Mqtt::on_message(mosquitto*, void* self, const mosquitto_message* msg) {
    auto* me = static_cast<Mqtt*>(self);
    std::lock_guard lock(me->mu_);
    me->messages_.emplace_back(msg->topic, std::string(static_cast<const char*>(msg->payload),
                                                       static_cast<size_t>(msg->payloadlen)));
    me->cv_.notify_all();
}

void Mqtt::on_subscribe(mosquitto*, void* self, int, int, const int*) {
    auto* me = static_cast<Mqtt*>(self);
    std::lock_guard lock(me->mu_);
    ++me->subacks_;
    me->cv_.notify_all();
}

void Mqtt::on_publish(mosquitto*, void* self, int) {
    auto* me = static_cast<Mqtt*>(self);
    std::lock_guard lock(me->mu_);
    ++me->pubacks_;
    me->cv_.notify_all();
}

}  // namespace mqttd::rest_test
