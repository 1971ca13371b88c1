// Implementation of the integration harness. Sockets and pipes are opened with CLOEXEC and the
// children close every inherited descriptor above 2, so a broker started by a test never keeps
// a test client's connection alive after the test closes it.
#include "harness.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <fcntl.h>
#include <mosquitto.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

namespace mqttd::itest {

namespace {

using Clock = std::chrono::steady_clock;

// A loopback connection with TCP_NODELAY, or -1.
int connect_socket(uint16_t port) {
    int fd = test::connect_loopback(port);
    if (fd >= 0) {
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

int remaining_ms(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    return static_cast<int>(std::max<long>(0, static_cast<long>(left.count())));
}

// In a forked child: make fd 1 and 2 what the caller wants, close the rest, exec.
[[noreturn]] void exec_child(const std::vector<std::string>& argv, int out_fd, int err_fd) {
    if (out_fd >= 0) {
        ::dup2(out_fd, 1);
    }
    if (err_fd >= 0) {
        ::dup2(err_fd, 2);
    }
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) {
        ::dup2(devnull, 0);
    }
    ::close_range(3, ~0U, 0);
    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const auto& a : argv) {
        args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
}

std::string read_file_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void mosquitto_init_once() {
    static std::once_flag once;
    std::call_once(once, [] { mosquitto_lib_init(); });
}

// Two workers by default, so connections and sessions cross workers; MQTTD_IT_WORKERS
// overrides it when narrowing a failure down.
long long workers_from_env() {
    const char* env = std::getenv("MQTTD_IT_WORKERS");
    return env != nullptr ? std::atoll(env) : 2;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
std::string num(std::string_view prefix, long long n) {
    std::string out(prefix);
    out += std::to_string(n);
    return out;
}

size_t count_of(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
        ++n;
    }
    return n;
}

// ---------------------------------------------------------------------------------------------
BrokerProcess::BrokerProcess(std::vector<std::string> sets, bool start_now)
    : sets_(std::move(sets)) {
    port_ = free_port();
    api_port_ = free_port();
    cluster_port_ = free_port();
    config_path_ = data_dir_.path() + "/empty.conf";
    std::ofstream(config_path_) << "# integration test: defaults plus --set\n";
    log_path_ = data_dir_.path() + "/mqttd.log";
    if (start_now) {
        start();
    }
}

BrokerProcess::~BrokerProcess() {
    if (running()) {
        stop();
    }
    if (::testing::Test::HasFailure()) {
        std::string log = log_text();
        constexpr size_t kMax = 30000;
        if (log.size() > kMax) {
            log = "...\n" + log.substr(log.size() - kMax);
        }
        std::cerr << "----- mqttd stderr (" << log_path_ << ") -----\n"
                  << log << "----- end of mqttd stderr -----\n";
    }
}

void BrokerProcess::start() {
    ASSERT_NO_FATAL_FAILURE(launch());
    auto deadline = Clock::now() + 10s;
    while (Clock::now() < deadline) {
        if (exited()) {
            FAIL() << "mqttd exited during startup:\n" << log_text();
        }
        // The REST API starts after every MQTT listener is bound: once both accept, all do.
        int fd = connect_socket(port_);
        if (fd >= 0) {
            ::close(fd);
            int api = connect_socket(api_port_);
            if (api >= 0) {
                ::close(api);
                return;
            }
        }
        std::this_thread::sleep_for(20ms);
    }
    FAIL() << "mqttd did not accept connections on port " << port_ << " within 10 s";
}

int BrokerProcess::run_until_exit(std::chrono::milliseconds timeout) {
    launch();
    return wait_exit(timeout);
}

void BrokerProcess::signal(int sig) {
    if (pid_.load() > 0) {
        ::kill(pid_.load(), sig);
    }
}

int BrokerProcess::wait_exit(std::chrono::milliseconds timeout) {
    if (!running()) {
        return -1;
    }
    const auto deadline = Clock::now() + timeout;
    std::lock_guard lock(reap_mutex_);
    const pid_t pid = pid_.load();
    int status = 0;
    while (Clock::now() < deadline) {
        if (::waitpid(pid, &status, WNOHANG) == pid) {
            pid_ = -1;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        std::this_thread::sleep_for(20ms);
    }
    ADD_FAILURE() << "mqttd still running after " << timeout.count() << " ms; killing it";
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    pid_ = -1;
    return -1;
}

std::string BrokerProcess::last_output() const {
    const std::string all = log_text();
    return log_offset_ < all.size() ? all.substr(log_offset_) : std::string();
}

void BrokerProcess::launch() {
    ASSERT_FALSE(running()) << "broker already running";
    std::vector<std::string> argv = {mqttd_binary(), "-c", config_path_, "--data-dir",
                                     data_dir_.path()};
    for (const auto& a : args_) {
        argv.push_back(a);
    }
    std::vector<std::string> defaults = {
            "listener.tcp.external=127.0.0.1:" + std::to_string(port_),
            "listener.api.mgmt=127.0.0.1:" + std::to_string(api_port_),
            // Used only with cluster.etcd.endpoints set: nodes of one test never share a port.
            "cluster.listener=127.0.0.1:" + std::to_string(cluster_port_),
            // The shipped defaults also listen on 8883, 8083, 8084 and 18083 (the dashboard);
            // tests that want those listeners set them on ports of their own.
            "listener.ssl.external=",
            "listener.ws.external=",
            "listener.wss.external=",
            "dashboard.listener.http=",
            "storage.sync=false",
            num("node.workers=", workers_from_env()),
            "mqtt.acl_file=",
            "mqtt.connect_timeout=5",
            "log.console.level=debug",
    };
    for (const auto& s : defaults) {
        argv.push_back("--set");
        argv.push_back(s);
    }
    for (const auto& s : sets_) {
        argv.push_back("--set");
        argv.push_back(s);
    }
    int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    ASSERT_GE(log_fd, 0) << "open " << log_path_;
    std::string banner = "===== start #" + std::to_string(starts_ + 1) + ":";
    for (const auto& a : argv) {
        banner += " " + a;
    }
    banner += "\n";
    ssize_t ignored = ::write(log_fd, banner.data(), banner.size());
    (void)ignored;
    log_offset_ = log_text().size();
    pid_t pid = ::fork();
    if (pid == 0) {
        exec_child(argv, log_fd, log_fd);
    }
    ::close(log_fd);
    ASSERT_GT(pid, 0) << "fork: " << std::strerror(errno);
    pid_ = pid;
    ++starts_;
}

bool BrokerProcess::exited() {
    std::lock_guard lock(reap_mutex_);
    pid_t pid = pid_.load();
    if (pid <= 0) {
        return true;
    }
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
        pid_ = -1;
        return true;
    }
    return false;
}

int BrokerProcess::stop() {
    std::lock_guard lock(reap_mutex_);
    pid_t pid = pid_.load();
    if (pid <= 0) {
        return -1;
    }
    ::kill(pid, SIGTERM);
    int status = 0;
    auto deadline = Clock::now() + 10s;
    while (Clock::now() < deadline) {
        if (::waitpid(pid, &status, WNOHANG) == pid) {
            pid_ = -1;
            return status;
        }
        std::this_thread::sleep_for(10ms);
    }
    ADD_FAILURE() << "mqttd did not stop within 10 s of SIGTERM; killing it";
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    pid_ = -1;
    return status;
}

void BrokerProcess::kill9() {
    std::lock_guard lock(reap_mutex_);
    pid_t pid = pid_.load();
    if (pid <= 0) {
        return;
    }
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    pid_ = -1;
}

std::string BrokerProcess::log_text() const {
    return read_file_text(log_path_);
}

long BrokerProcess::rss_kb() const {
    pid_t pid = pid_.load();
    if (pid <= 0) {
        return 0;
    }
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmRSS:", 0) == 0) {
            return std::strtol(line.c_str() + 6, nullptr, 10);
        }
    }
    return 0;
}

// ---------------------------------------------------------------------------------------------
const char* packet_type_name(uint8_t type) {
    static const char* const kNames[] = {"RESERVED0", "CONNECT",  "CONNACK",     "PUBLISH",
                                         "PUBACK",    "PUBREC",   "PUBREL",      "PUBCOMP",
                                         "SUBSCRIBE", "SUBACK",   "UNSUBSCRIBE", "UNSUBACK",
                                         "PINGREQ",   "PINGRESP", "DISCONNECT",  "AUTH"};
    return type < 16 ? kNames[type] : "?";
}

std::string describe(const Packet& p) {
    std::ostringstream os;
    os << packet_type_name(p.type()) << " flags=0x" << std::hex << int{p.flags()} << " body=[";
    for (size_t i = 0; i < p.body.size() && i < 48; ++i) {
        os << (i != 0 ? " " : "") << int{p.body[i]};
    }
    if (p.body.size() > 48) {
        os << " ...";
    }
    os << "]";
    return os.str();
}

Publish parse_publish(const Packet& p) {
    Publish out;
    if (p.type() != kPublish) {
        ADD_FAILURE() << "expected PUBLISH, got " << describe(p);
        return out;
    }
    out.dup = (p.flags() & 0x08) != 0;
    out.qos = static_cast<uint8_t>((p.flags() >> 1) & 0x03);
    out.retain = (p.flags() & 0x01) != 0;
    const Bytes& b = p.body;
    if (b.size() < 2) {
        ADD_FAILURE() << "PUBLISH too short: " << describe(p);
        return out;
    }
    size_t tlen = size_t{b[0]} << 8 | b[1];
    size_t pos = 2 + tlen;
    if (pos > b.size()) {
        ADD_FAILURE() << "PUBLISH topic length past the end: " << describe(p);
        return out;
    }
    out.topic.assign(reinterpret_cast<const char*>(b.data() + 2), tlen);
    if (out.qos > 0) {
        if (pos + 2 > b.size()) {
            ADD_FAILURE() << "PUBLISH without packet id: " << describe(p);
            return out;
        }
        out.packet_id = static_cast<uint16_t>(b[pos] << 8 | b[pos + 1]);
        pos += 2;
    }
    out.payload.assign(reinterpret_cast<const char*>(b.data() + pos), b.size() - pos);
    return out;
}

uint16_t packet_id_of(const Packet& p) {
    if (p.body.size() < 2) {
        ADD_FAILURE() << "no packet id in " << describe(p);
        return 0;
    }
    return static_cast<uint16_t>(p.body[0] << 8 | p.body[1]);
}

// ---------------------------------------------------------------------------------------------
namespace pkt {

void put_u16(Bytes& out, uint16_t v) {
    out.push_back(static_cast<uint8_t>(v >> 8));
    out.push_back(static_cast<uint8_t>(v & 0xff));
}

void put_str(Bytes& out, std::string_view s) {
    put_u16(out, static_cast<uint16_t>(s.size()));
    out.insert(out.end(), s.begin(), s.end());
}

void put_remaining_length(Bytes& out, size_t len) {
    do {
        auto digit = static_cast<uint8_t>(len % 128);
        len /= 128;
        if (len > 0) {
            digit = static_cast<uint8_t>(digit | 0x80);
        }
        out.push_back(digit);
    } while (len > 0);
}

Bytes frame(uint8_t header, const Bytes& body) {
    Bytes out{header};
    put_remaining_length(out, body.size());
    out.insert(out.end(), body.begin(), body.end());
    return out;
}

Bytes connect(const ConnectOptions& o) {
    Bytes b;
    std::string name = o.protocol_name.value_or(o.level == 3 ? "MQIsdp" : "MQTT");
    put_str(b, name);
    b.push_back(o.level);
    uint8_t flags = o.extra_flags;
    if (o.clean_session) {
        flags |= 0x02;
    }
    if (o.will) {
        flags = static_cast<uint8_t>(flags | 0x04 | (o.will->qos << 3) |
                                     (o.will->retain ? 0x20 : 0));
    }
    if (o.password) {
        flags |= 0x40;
    }
    if (o.username) {
        flags |= 0x80;
    }
    b.push_back(flags);
    put_u16(b, o.keepalive);
    put_str(b, o.client_id);
    if (o.will) {
        put_str(b, o.will->topic);
        put_str(b, o.will->payload);
    }
    if (o.username) {
        put_str(b, *o.username);
    }
    if (o.password) {
        put_str(b, *o.password);
    }
    return frame(0x10, b);
}

Bytes publish(std::string_view topic,
              std::string_view payload,
              uint8_t qos,
              uint16_t packet_id,
              bool retain,
              bool dup) {
    Bytes b;
    put_str(b, topic);
    if (qos > 0) {
        put_u16(b, packet_id);
    }
    b.insert(b.end(), payload.begin(), payload.end());
    auto header = static_cast<uint8_t>(0x30 | (dup ? 0x08 : 0) | (qos << 1) | (retain ? 1 : 0));
    return frame(header, b);
}

namespace {
Bytes id_only(uint8_t header, uint16_t id) {
    Bytes b;
    put_u16(b, id);
    return frame(header, b);
}
}  // namespace

Bytes puback(uint16_t id) {
    return id_only(0x40, id);
}
Bytes pubrec(uint16_t id) {
    return id_only(0x50, id);
}
Bytes pubrel(uint16_t id) {
    return id_only(0x62, id);  // [MQTT-3.6.1-1] flags 0010
}
Bytes pubcomp(uint16_t id) {
    return id_only(0x70, id);
}

Bytes subscribe(uint16_t id, const std::vector<std::pair<std::string, uint8_t>>& filters) {
    Bytes b;
    put_u16(b, id);
    for (const auto& [filter, qos] : filters) {
        put_str(b, filter);
        b.push_back(qos);
    }
    return frame(0x82, b);  // [MQTT-3.8.1-1] flags 0010
}

Bytes unsubscribe(uint16_t id, const std::vector<std::string>& filters) {
    Bytes b;
    put_u16(b, id);
    for (const auto& f : filters) {
        put_str(b, f);
    }
    return frame(0xa2, b);  // [MQTT-3.10.1-1] flags 0010
}

Bytes pingreq() {
    return {0xc0, 0x00};
}
Bytes disconnect() {
    return {0xe0, 0x00};
}

}  // namespace pkt

// ---------------------------------------------------------------------------------------------
RawClient::~RawClient() {
    close();
}

bool RawClient::open(uint16_t port) {
    close();
    closed_ = false;
    buf_.clear();
    early_.clear();
    fd_ = connect_socket(port);
    if (fd_ < 0) {
        ADD_FAILURE() << "cannot connect to 127.0.0.1:" << port << ": " << std::strerror(errno);
        return false;
    }
    return true;
}

void RawClient::close() {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
}

void RawClient::abort() {
    if (fd_ >= 0) {
        linger l{1, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        close();
    }
}

bool RawClient::send(const Bytes& bytes) {
    return send(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

bool RawClient::send(std::string_view bytes) {
    if (fd_ < 0) {
        return false;
    }
    size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            closed_ = true;
            return false;
        }
        done += static_cast<size_t>(n);
    }
    return true;
}

std::optional<Packet> RawClient::read(std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
        // A complete frame in the buffer?
        if (buf_.size() >= 2) {
            size_t len = 0;
            size_t mult = 1;
            size_t pos = 1;
            bool complete = false;
            for (; pos < buf_.size() && pos <= 4; ++pos) {
                len += (buf_[pos] & 0x7f) * mult;
                mult *= 128;
                if ((buf_[pos] & 0x80) == 0) {
                    complete = true;
                    ++pos;
                    break;
                }
            }
            if (!complete && pos > 4) {
                ADD_FAILURE() << "broker sent a malformed remaining length";
                return std::nullopt;
            }
            if (complete && buf_.size() >= pos + len) {
                Packet p;
                p.header = buf_[0];
                p.body.assign(buf_.begin() + static_cast<long>(pos),
                              buf_.begin() + static_cast<long>(pos + len));
                buf_.erase(buf_.begin(), buf_.begin() + static_cast<long>(pos + len));
                return p;
            }
        }
        if (fd_ < 0 || closed_) {
            return std::nullopt;
        }
        pollfd pfd{fd_, POLLIN, 0};
        int r = ::poll(&pfd, 1, remaining_ms(deadline));
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return std::nullopt;  // timeout
        }
        uint8_t tmp[65536];
        ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            closed_ = true;
            continue;  // deliver what is buffered, then report the close
        }
        buf_.insert(buf_.end(), tmp, tmp + n);
    }
}

std::string RawClient::read_raw(size_t want, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (buf_.size() < want && fd_ >= 0 && !closed_) {
        pollfd pfd{fd_, POLLIN, 0};
        int r = ::poll(&pfd, 1, remaining_ms(deadline));
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break;  // timeout
        }
        uint8_t tmp[65536];
        ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            closed_ = true;
            break;
        }
        buf_.insert(buf_.end(), tmp, tmp + n);
    }
    std::string out(buf_.begin(), buf_.end());
    buf_.clear();
    return out;
}

std::optional<Packet> RawClient::next(std::chrono::milliseconds timeout) {
    if (!early_.empty()) {
        Packet p = std::move(early_.front());
        early_.pop_front();
        return p;
    }
    return read(timeout);
}

bool RawClient::wait_closed(std::chrono::milliseconds timeout, int* skipped) {
    auto deadline = Clock::now() + timeout;
    while (!closed_ && Clock::now() < deadline) {
        auto p = read(std::chrono::milliseconds(remaining_ms(deadline)));
        if (p && skipped != nullptr) {
            ++*skipped;
        }
    }
    return closed_;
}

void RawClient::expect_silence(std::chrono::milliseconds quiet) {
    if (!early_.empty()) {
        ADD_FAILURE() << "unexpected packet: " << describe(early_.front());
        return;
    }
    auto p = read(quiet);
    if (p) {
        ADD_FAILURE() << "unexpected packet: " << describe(*p);
        if (p->type() == kPublish) {
            auto pub = parse_publish(*p);
            ADD_FAILURE() << "  PUBLISH topic=" << pub.topic << " payload=" << pub.payload;
        }
    }
}

std::optional<std::pair<bool, uint8_t>> RawClient::connect(const pkt::ConnectOptions& o) {
    if (!send(pkt::connect(o))) {
        ADD_FAILURE() << "connection closed while sending CONNECT";
        return std::nullopt;
    }
    auto p = read();
    if (!p) {
        ADD_FAILURE() << "no CONNACK (" << (closed_ ? "connection closed" : "timeout") << ")";
        return std::nullopt;
    }
    if (p->type() != kConnack || p->body.size() != 2) {
        ADD_FAILURE() << "expected CONNACK, got " << describe(*p);
        return std::nullopt;
    }
    return std::make_pair((p->body[0] & 0x01) != 0, p->body[1]);
}

bool RawClient::connect_ok(uint16_t port,
                           const std::string& client_id,
                           bool clean,
                           uint16_t keepalive) {
    if (!open(port)) {
        return false;
    }
    pkt::ConnectOptions o;
    o.client_id = client_id;
    o.clean_session = clean;
    o.keepalive = keepalive;
    auto r = connect(o);
    if (!r) {
        return false;
    }
    EXPECT_EQ(r->second, 0) << "CONNACK return code for " << client_id;
    return r->first;
}

namespace {
// Reads until a packet of `type` arrives; PUBLISH packets on the way are kept in `early`.
std::optional<Packet> read_until(RawClient& c,
                                 uint8_t type,
                                 std::chrono::milliseconds timeout = kWait) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
        auto p = c.read(std::chrono::milliseconds(remaining_ms(deadline)));
        if (!p) {
            ADD_FAILURE() << "no " << packet_type_name(type) << " ("
                          << (c.closed() ? "connection closed" : "timeout") << ")";
            return std::nullopt;
        }
        if (p->type() == type) {
            return p;
        }
        if (p->type() == kPublish) {
            c.early().push_back(std::move(*p));
            continue;
        }
        ADD_FAILURE() << "expected " << packet_type_name(type) << ", got " << describe(*p);
        return std::nullopt;
    }
}
}  // namespace

std::vector<uint8_t> RawClient::subscribe(
        const std::vector<std::pair<std::string, uint8_t>>& filters, uint16_t id) {
    if (id == 0) {
        id = next_id();
    }
    send(pkt::subscribe(id, filters));
    auto p = read_until(*this, kSuback);
    if (!p) {
        return {};
    }
    EXPECT_EQ(packet_id_of(*p), id) << "[MQTT-3.8.4-2] SUBACK packet id";
    EXPECT_EQ(p->body.size(), 2 + filters.size()) << "[MQTT-3.8.4-5] one code per filter";
    return Bytes(p->body.begin() + std::min<long>(2, static_cast<long>(p->body.size())),
                 p->body.end());
}

void RawClient::unsubscribe(const std::vector<std::string>& filters, uint16_t id) {
    if (id == 0) {
        id = next_id();
    }
    send(pkt::unsubscribe(id, filters));
    auto p = read_until(*this, kUnsuback);
    if (p) {
        EXPECT_EQ(packet_id_of(*p), id) << "[MQTT-3.10.4-4] UNSUBACK packet id";
    }
}

void RawClient::publish(const std::string& topic,
                        const std::string& payload,
                        uint8_t qos,
                        bool retain) {
    uint16_t id = qos > 0 ? next_id() : 0;
    send(pkt::publish(topic, payload, qos, id, retain));
    if (qos == 1) {
        auto p = read_until(*this, kPuback);
        if (p) {
            EXPECT_EQ(packet_id_of(*p), id) << "[MQTT-4.3.2-2] PUBACK packet id";
        }
    } else if (qos == 2) {
        auto p = read_until(*this, kPubrec);
        if (!p) {
            return;
        }
        EXPECT_EQ(packet_id_of(*p), id) << "[MQTT-4.3.3-2] PUBREC packet id";
        send(pkt::pubrel(id));
        p = read_until(*this, kPubcomp);
        if (p) {
            EXPECT_EQ(packet_id_of(*p), id) << "[MQTT-4.3.3-2] PUBCOMP packet id";
        }
    }
}

std::optional<Publish> RawClient::expect_publish(std::chrono::milliseconds timeout) {
    std::optional<Packet> p;
    if (!early_.empty()) {
        p = std::move(early_.front());
        early_.pop_front();
    } else {
        p = read(timeout);
    }
    if (!p) {
        ADD_FAILURE() << "no PUBLISH (" << (closed_ ? "connection closed" : "timeout") << ")";
        return std::nullopt;
    }
    if (p->type() != kPublish) {
        ADD_FAILURE() << "expected PUBLISH, got " << describe(*p);
        return std::nullopt;
    }
    return parse_publish(*p);
}

void RawClient::ack(const Publish& p) {
    if (p.qos == 1) {
        send(pkt::puback(p.packet_id));
    } else if (p.qos == 2) {
        send(pkt::pubrec(p.packet_id));
        auto rel = read_until(*this, kPubrel);
        if (rel) {
            EXPECT_EQ(rel->flags(), 0x02) << "[MQTT-3.6.1-1] PUBREL flags";
            EXPECT_EQ(packet_id_of(*rel), p.packet_id) << "PUBREL packet id";
            send(pkt::pubcomp(p.packet_id));
        }
    }
}

std::optional<Publish> RawClient::receive_and_ack(std::chrono::milliseconds timeout) {
    auto p = expect_publish(timeout);
    if (p) {
        ack(*p);
    }
    return p;
}

void RawClient::disconnect() {
    send(pkt::disconnect());
    close();
}

// ---------------------------------------------------------------------------------------------
MosqClient::MosqClient(const std::string& client_id, bool clean_session, int protocol) {
    mosquitto_init_once();
    mosq_ = mosquitto_new(client_id.empty() ? nullptr : client_id.c_str(), clean_session, this);
    if (mosq_ == nullptr) {
        ADD_FAILURE() << "mosquitto_new failed";
        return;
    }
    mosquitto_int_option(mosq_, MOSQ_OPT_PROTOCOL_VERSION,
                         protocol == 3 ? MQTT_PROTOCOL_V31 : MQTT_PROTOCOL_V311);
    mosquitto_connect_with_flags_callback_set(mosq_, &MosqClient::on_connect);
    mosquitto_disconnect_callback_set(mosq_, &MosqClient::on_disconnect);
    mosquitto_message_callback_set(mosq_, &MosqClient::on_message);
    mosquitto_subscribe_callback_set(mosq_, &MosqClient::on_subscribe);
    mosquitto_publish_callback_set(mosq_, &MosqClient::on_publish);
    mosquitto_reconnect_delay_set(mosq_, 1, 1, false);
}

MosqClient::~MosqClient() {
    if (mosq_ == nullptr) {
        return;
    }
    if (loop_started_) {
        mosquitto_disconnect(mosq_);
        mosquitto_loop_stop(mosq_, false);
    }
    mosquitto_destroy(mosq_);
}

void MosqClient::set_will(const std::string& topic,
                          const std::string& payload,
                          int qos,
                          bool retain) {
    int rc = mosquitto_will_set(mosq_, topic.c_str(), static_cast<int>(payload.size()),
                                payload.data(), qos, retain);
    EXPECT_EQ(rc, MOSQ_ERR_SUCCESS) << "mosquitto_will_set";
}

int MosqClient::connect(uint16_t port, int keepalive) {
    int rc = mosquitto_connect(mosq_, "127.0.0.1", port, keepalive);
    if (rc != MOSQ_ERR_SUCCESS) {
        ADD_FAILURE() << "mosquitto_connect: " << mosquitto_strerror(rc);
        return -1;
    }
    rc = mosquitto_loop_start(mosq_);
    if (rc != MOSQ_ERR_SUCCESS) {
        ADD_FAILURE() << "mosquitto_loop_start: " << mosquitto_strerror(rc);
        return -1;
    }
    loop_started_ = true;
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, kWait, [this] { return connack_rc_ >= 0; });
    return connack_rc_;
}

std::vector<int> MosqClient::subscribe(const std::string& filter, int qos) {
    int mid = 0;
    int rc = mosquitto_subscribe(mosq_, &mid, filter.c_str(), qos);
    if (rc != MOSQ_ERR_SUCCESS) {
        ADD_FAILURE() << "mosquitto_subscribe: " << mosquitto_strerror(rc);
        return {};
    }
    std::unique_lock lock(mutex_);
    std::vector<int> granted;
    bool ok = cv_.wait_for(lock, kWait, [&] {
        for (const auto& [m, g] : subacks_) {
            if (m == mid) {
                granted = g;
                return true;
            }
        }
        return false;
    });
    EXPECT_TRUE(ok) << "no SUBACK for " << filter;
    return granted;
}

bool MosqClient::publish(const std::string& topic,
                         const std::string& payload,
                         int qos,
                         bool retain) {
    int mid = 0;
    int rc = mosquitto_publish(mosq_, &mid, topic.c_str(), static_cast<int>(payload.size()),
                               payload.data(), qos, retain);
    if (rc != MOSQ_ERR_SUCCESS) {
        ADD_FAILURE() << "mosquitto_publish: " << mosquitto_strerror(rc);
        return false;
    }
    std::unique_lock lock(mutex_);
    bool ok = cv_.wait_for(lock, kWait, [&] {
        return std::find(published_.begin(), published_.end(), mid) != published_.end();
    });
    EXPECT_TRUE(ok) << "publish to " << topic << " not completed";
    return ok;
}

std::optional<MosqClient::Message> MosqClient::wait_message(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    if (!cv_.wait_for(lock, timeout, [this] { return !messages_.empty(); })) {
        return std::nullopt;
    }
    Message m = std::move(messages_.front());
    messages_.pop_front();
    return m;
}

bool MosqClient::wait_disconnected(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [this] { return disconnected_; });
}

void MosqClient::disconnect() {
    if (loop_started_) {
        mosquitto_disconnect(mosq_);
        mosquitto_loop_stop(mosq_, false);
        loop_started_ = false;
    }
}

void MosqClient::on_connect(mosquitto*, void* obj, int rc, int flags) {
    auto* self = static_cast<MosqClient*>(obj);
    std::lock_guard lock(self->mutex_);
    self->connack_rc_ = rc;
    self->session_present_ = (flags & 0x01) != 0;
    self->cv_.notify_all();
}

void MosqClient::on_disconnect(mosquitto*, void* obj, int) {
    auto* self = static_cast<MosqClient*>(obj);
    std::lock_guard lock(self->mutex_);
    self->disconnected_ = true;
    self->cv_.notify_all();
}

void MosqClient::on_message(mosquitto*, void* obj, const mosquitto_message* m) {
    auto* self = static_cast<MosqClient*>(obj);
    Message msg;
    msg.topic = m->topic;
    msg.payload.assign(static_cast<const char*>(m->payload), static_cast<size_t>(m->payloadlen));
    msg.qos = m->qos;
    msg.retain = m->retain;
    std::lock_guard lock(self->mutex_);
    self->messages_.push_back(std::move(msg));
    self->cv_.notify_all();
}

void MosqClient::on_subscribe(mosquitto*, void* obj, int mid, int count, const int* granted) {
    auto* self = static_cast<MosqClient*>(obj);
    std::lock_guard lock(self->mutex_);
    self->subacks_.emplace_back(mid, std::vector<int>(granted, granted + count));
    self->cv_.notify_all();
}

void MosqClient::on_publish(mosquitto*, void* obj, int mid) {
    auto* self = static_cast<MosqClient*>(obj);
    std::lock_guard lock(self->mutex_);
    self->published_.push_back(mid);
    self->cv_.notify_all();
}

// ---------------------------------------------------------------------------------------------
Child spawn_child(const std::vector<std::string>& argv) {
    Child c;
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        ADD_FAILURE() << "pipe2: " << std::strerror(errno);
        return c;
    }
    pid_t pid = ::fork();
    if (pid == 0) {
        exec_child(argv, fds[1], -1);
    }
    ::close(fds[1]);
    c.pid = pid;
    c.out_fd = fds[0];
    return c;
}

bool child_exited(Child& c) {
    if (c.reaped) {
        return true;
    }
    if (c.pid > 0 && ::waitpid(c.pid, &c.status, WNOHANG) == c.pid) {
        c.reaped = true;
    }
    return c.reaped;
}

std::string finish_child(Child& c, std::chrono::milliseconds timeout) {
    std::string out;
    auto deadline = Clock::now() + timeout;
    while (c.out_fd >= 0) {
        pollfd pfd{c.out_fd, POLLIN, 0};
        int r = ::poll(&pfd, 1, remaining_ms(deadline));
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break;  // timeout
        }
        char tmp[4096];
        ssize_t n = ::read(c.out_fd, tmp, sizeof tmp);
        if (n <= 0) {
            break;
        }
        out.append(tmp, static_cast<size_t>(n));
    }
    if (c.out_fd >= 0) {
        ::close(c.out_fd);
        c.out_fd = -1;
    }
    // Stdout closes a moment before the process is gone: give it the rest of the timeout.
    while (!child_exited(c) && Clock::now() < deadline) {
        std::this_thread::sleep_for(5ms);
    }
    if (!child_exited(c) && c.pid > 0) {
        ::kill(c.pid, SIGTERM);
        ::waitpid(c.pid, &c.status, 0);
        c.reaped = true;
        c.status = -1;
    }
    return out;
}

const char* mqttd_binary() {
    // MQTTD_IT_BINARY runs the suite against another build (e.g. to see a new test fail on
    // the code before a fix).
    const char* env = std::getenv("MQTTD_IT_BINARY");
    return env != nullptr && *env != '\0' ? env : MQTTD_BINARY;
}

std::pair<int, std::string> run_command(const std::vector<std::string>& argv,
                                        std::chrono::milliseconds timeout) {
    Child c = spawn_child(argv);
    std::string out = finish_child(c, timeout);
    int status = c.status;
    if (status >= 0 && WIFEXITED(status)) {
        status = WEXITSTATUS(status);
    } else if (status >= 0) {
        status = -1;
    }
    return {status, out};
}

std::string rest_get(uint16_t api_port, const std::string& path) {
    auto [rc, out] =
            run_command({"curl", "-s", "-m", "5", "-u", "admin:public",
                         "http://127.0.0.1:" + std::to_string(api_port) + "/api/v2/" + path},
                        8s);
    return rc == 0 ? out : std::string();
}

}  // namespace mqttd::itest
