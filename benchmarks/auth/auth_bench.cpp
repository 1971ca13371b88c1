// auth_bench: the cost of authentication and the ACL, measured against the real mqttd binary.
//
//   CONNECT rate: `kConnThreads` client threads, each looping socket -> CONNECT -> CONNACK 0 ->
//   DISCONNECT -> close with a fresh client id, for `seconds`; reported as CONNACKs per second
//   for: anonymous; emq_auth_username (one user added through REST, so after the first PBKDF2
//   verification every CONNECT is a cache hit); emq_auth_http against a local HTTP server run
//   by this tool (thread per connection, "200 OK", so every CONNECT costs one HTTP request
//   plus the super_req one).
//
//   The database plugins (unless --skip-db): redis-server, MariaDB, PostgreSQL 15 and slapd
//   started once by this tool (tests/integration/db_servers.h: temp dirs, free ports), one
//   user "bench" each (sha256 hex for Redis and SQL, {SSHA} for LDAP), the plugin at its
//   defaults (pool 8, super lookup on: Redis and SQL cost two queries per CONNECT, LDAP one
//   search), no auth cache; and Redis again with auth.redis.cache_ttl=60.
//
//   PUBLISH throughput: one publisher pipelines `kMessages` (10^6) QoS 0 PUBLISHes (topic
//   "bench/t/1", 16 B) to one QoS 0 subscriber of "bench/#"; messages received per second,
//   first send to last receive. With a one-rule ACL ({allow, all}), and with a 100-rule ACL
//   whose deciding rule is the last one (99 rules that do not match: user, client, ipaddr and
//   topic forms), with mqtt.cache_acl on and off.
//
// Usage: auth_bench [--binary PATH] [--seconds N] [--rounds N] [--skip-db] [--only-connect]
// Each figure is the median of `rounds` runs; the broker is started fresh per configuration
// (temp data dir, free ports, 2 workers, log level warning).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>

#ifdef MQTTD_BENCH_DATABASES
#include "db_servers.h"
#endif

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr int kConnThreads = 4;
constexpr int kMessages = 1000000;

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

int dial(uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

bool send_all(int fd, const std::string& d) {
    size_t off = 0;
    while (off < d.size()) {
        ssize_t n = ::send(fd, d.data() + off, d.size() - off, MSG_NOSIGNAL);
        if (n <= 0) {
            return false;
        }
        off += static_cast<size_t>(n);
    }
    return true;
}

// Reads exactly n bytes (5 s budget).
bool read_n(int fd, char* out, size_t n) {
    size_t got = 0;
    while (got < n) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 5000) <= 0) {
            return false;
        }
        ssize_t r = ::recv(fd, out + got, n - got, 0);
        if (r <= 0) {
            return false;
        }
        got += static_cast<size_t>(r);
    }
    return true;
}

// ---- MQTT 3.1.1 packets, by hand ----

void put_str(std::string& o, const std::string& s) {
    o += static_cast<char>(s.size() >> 8);
    o += static_cast<char>(s.size() & 0xff);
    o += s;
}

std::string frame(uint8_t header, const std::string& body) {
    std::string o(1, static_cast<char>(header));
    size_t len = body.size();
    do {
        uint8_t b = len % 128;
        len /= 128;
        o += static_cast<char>(len > 0 ? (b | 0x80) : b);
    } while (len > 0);
    return o + body;
}

std::string connect_packet(const std::string& id, const std::string& user, const std::string& pw) {
    std::string b;
    put_str(b, "MQTT");
    b += '\x04';
    uint8_t flags = 0x02;
    if (!user.empty()) {
        flags |= 0xC0;
    }
    b += static_cast<char>(flags);
    b += '\x00';
    b += '\x3c';
    put_str(b, id);
    if (!user.empty()) {
        put_str(b, user);
        put_str(b, pw);
    }
    return frame(0x10, b);
}

std::string publish_packet(const std::string& topic, const std::string& payload) {
    std::string b;
    put_str(b, topic);
    return frame(0x30, b + payload);
}

// CONNECT and wait for CONNACK; the return code, or -1.
int mqtt_connect(int fd, const std::string& id, const std::string& user, const std::string& pw) {
    if (!send_all(fd, connect_packet(id, user, pw))) {
        return -1;
    }
    char ack[4];
    if (!read_n(fd, ack, 4) || ack[0] != 0x20) {
        return -1;
    }
    return static_cast<unsigned char>(ack[3]);
}

// ---- the broker ----

struct Broker {
    std::string binary;
    std::string dir;
    uint16_t port = 0;
    uint16_t api = 0;
    pid_t pid = -1;

    void start(const std::string& acl_text, const std::vector<std::string>& sets) {
        char tmpl[] = "/tmp/mqttd-auth-bench-XXXXXX";
        dir = ::mkdtemp(tmpl);
        std::ofstream(dir + "/empty.conf") << "";
        std::ofstream(dir + "/acl.conf") << acl_text;
        port = free_port();
        api = free_port();
        std::vector<std::string> args = {binary,
                                         "-c",
                                         dir + "/empty.conf",
                                         "--data-dir",
                                         dir + "/data",
                                         "--set",
                                         "listener.tcp.external=127.0.0.1:" + std::to_string(port),
                                         "--set",
                                         "listener.api.mgmt=127.0.0.1:" + std::to_string(api),
                                         "--set",
                                         "mqtt.acl_file=" + dir + "/acl.conf",
                                         "--set",
                                         "node.workers=2",
                                         "--set",
                                         "storage.sync=false",
                                         "--set",
                                         "log.console.level=warning",
                                         "--set",
                                         "listener.ssl.external=",
                                         "--set",
                                         "listener.ws.external=",
                                         "--set",
                                         "listener.wss.external=",
                                         "--set",
                                         "dashboard.listener.http="};
        for (const auto& s : sets) {
            args.push_back("--set");
            args.push_back(s);
        }
        pid = ::fork();
        if (pid == 0) {
            std::vector<char*> argv;
            for (auto& a : args) {
                argv.push_back(a.data());
            }
            argv.push_back(nullptr);
            int log = ::open((dir + "/mqttd.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            ::dup2(log, 1);
            ::dup2(log, 2);
            ::execv(argv[0], argv.data());
            std::_Exit(127);
        }
        for (int i = 0; i < 500; ++i) {
            int a = dial(api);
            int m = dial(port);
            bool up = a >= 0 && m >= 0;
            ::close(a);
            ::close(m);
            if (up) {
                return;
            }
            std::this_thread::sleep_for(20ms);
        }
        std::fprintf(stderr, "mqttd did not start\n");
        std::exit(1);
    }

    void stop() {
        if (pid > 0) {
            ::kill(pid, SIGTERM);
            int st = 0;
            ::waitpid(pid, &st, 0);
            pid = -1;
        }
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }

    // One REST call (admin:public); true when the answer has "code":0.
    bool rest(const std::string& method, const std::string& path, const std::string& body) const {
        int fd = dial(api);
        std::string req = method + " /api/v2/" + path +
                          " HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWRtaW46cHVibGlj\r\n"
                          "Content-Type: application/json\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
        send_all(fd, req);
        std::string reply;
        char buf[4096];
        pollfd p{fd, POLLIN, 0};
        while (::poll(&p, 1, 2000) > 0) {
            ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n <= 0) {
                break;
            }
            reply.append(buf, static_cast<size_t>(n));
            if (reply.find("\"code\"") != std::string::npos && reply.back() == '}') {
                break;
            }
        }
        ::close(fd);
        bool ok = reply.find("\"code\":0") != std::string::npos;
        if (!ok) {
            std::fprintf(stderr, "REST %s %s failed: %s\n", method.c_str(), path.c_str(),
                         reply.c_str());
        }
        return ok;
    }
};

// ---- a local HTTP server answering 200 to everything (emq_auth_http) ----

class OkServer {
public:
    OkServer() {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
        ::listen(fd_, 512);
        socklen_t len = sizeof a;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        thread_ = std::thread([this] { run(); });
    }
    ~OkServer() {
        stop_ = true;
        thread_.join();
        ::close(fd_);
    }
    uint16_t port() const { return port_; }
    uint64_t requests() const { return requests_.load(); }

private:
    void run() {
        while (!stop_) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) {
                continue;
            }
            int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0) {
                continue;
            }
            std::thread([this, c] {
                // Serves requests on the connection until the client closes it (keep-alive).
                std::string buf;
                char tmp[4096];
                for (;;) {
                    size_t end = buf.find("\r\n\r\n");
                    if (end != std::string::npos) {
                        size_t body = 0;
                        auto cl = buf.find("Content-Length:");
                        if (cl == std::string::npos) {
                            cl = buf.find("content-length:");
                        }
                        if (cl != std::string::npos && cl < end) {
                            body = std::strtoul(buf.c_str() + cl + 15, nullptr, 10);
                        }
                        if (buf.size() >= end + 4 + body) {
                            buf.erase(0, end + 4 + body);
                            requests_.fetch_add(1);
                            send_all(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
                            continue;
                        }
                    }
                    pollfd p2{c, POLLIN, 0};
                    if (::poll(&p2, 1, 2000) <= 0) {
                        break;
                    }
                    ssize_t n = ::recv(c, tmp, sizeof tmp, 0);
                    if (n <= 0) {
                        break;
                    }
                    buf.append(tmp, static_cast<size_t>(n));
                }
                ::close(c);
            }).detach();
        }
    }

    int fd_ = -1;
    uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<uint64_t> requests_{0};
    std::thread thread_;
};

// ---- measurements ----

double connect_rate(uint16_t port, double seconds, const std::string& user, const std::string& pw) {
    std::atomic<uint64_t> ok{0}, failed{0};
    auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
    std::vector<std::thread> threads;
    static std::atomic<uint64_t> serial{0};
    auto t0 = Clock::now();
    for (int t = 0; t < kConnThreads; ++t) {
        threads.emplace_back([&] {
            while (Clock::now() < deadline) {
                int fd = dial(port);
                if (fd < 0) {
                    failed.fetch_add(1);
                    continue;
                }
                std::string id = "bench-" + std::to_string(serial.fetch_add(1));
                if (mqtt_connect(fd, id, user, pw) == 0) {
                    send_all(fd, std::string("\xe0\x00", 2));
                    ok.fetch_add(1);
                } else {
                    failed.fetch_add(1);
                }
                ::close(fd);
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
    if (failed.load() > 0) {
        std::fprintf(stderr, "  (%llu CONNECTs failed)\n",
                     static_cast<unsigned long long>(failed.load()));
    }
    return static_cast<double>(ok.load()) / elapsed;
}

double publish_rate(uint16_t port) {
    int sub = dial(port);
    int pub = dial(port);
    if (mqtt_connect(sub, "bench-sub", "", "") != 0 ||
        mqtt_connect(pub, "bench-pub", "", "") != 0) {
        std::fprintf(stderr, "publish: connect failed\n");
        return 0;
    }
    std::string s;
    s += '\x00';
    s += '\x01';
    put_str(s, "bench/#");
    s += '\x00';
    send_all(sub, frame(0x82, s));
    char suback[5];
    read_n(sub, suback, 5);

    std::atomic<uint64_t> received{0};
    Clock::time_point last;
    std::thread reader([&] {
        std::string buf;
        char tmp[65536];
        size_t pos = 0;
        while (received.load() < static_cast<uint64_t>(kMessages)) {
            pollfd p{sub, POLLIN, 0};
            if (::poll(&p, 1, 3000) <= 0) {
                break;  // nothing for 3 s: the rest was dropped
            }
            ssize_t n = ::recv(sub, tmp, sizeof tmp, 0);
            if (n <= 0) {
                break;
            }
            buf.append(tmp, static_cast<size_t>(n));
            for (;;) {
                if (buf.size() - pos < 2) {
                    break;
                }
                size_t len = 0, mult = 1, i = pos + 1;
                bool done = false;
                for (; i < buf.size() && i < pos + 5; ++i) {
                    len += (static_cast<unsigned char>(buf[i]) & 0x7f) * mult;
                    mult *= 128;
                    if ((static_cast<unsigned char>(buf[i]) & 0x80) == 0) {
                        done = true;
                        ++i;
                        break;
                    }
                }
                if (!done || buf.size() < i + len) {
                    break;
                }
                if ((static_cast<unsigned char>(buf[pos]) >> 4) == 3) {
                    received.fetch_add(1);
                }
                pos = i + len;
            }
            buf.erase(0, pos);
            pos = 0;
            last = Clock::now();
        }
    });
    std::string batch;
    std::string one = publish_packet("bench/t/1", "0123456789abcdef");
    for (int i = 0; i < 100; ++i) {
        batch += one;
    }
    auto t0 = Clock::now();
    for (int i = 0; i < kMessages / 100; ++i) {
        send_all(pub, batch);
    }
    reader.join();
    double elapsed = std::chrono::duration<double>(last - t0).count();
    uint64_t got = received.load();
    if (got < static_cast<uint64_t>(kMessages)) {
        std::fprintf(stderr, "  (%llu of %d delivered)\n", static_cast<unsigned long long>(got),
                     kMessages);
    }
    ::close(sub);
    ::close(pub);
    return elapsed > 0 ? static_cast<double>(got) / elapsed : 0;
}

std::string sha256_hex(const std::string& s) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(s.data(), s.size(), out, &len, EVP_sha256(), nullptr);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string h;
    for (unsigned int i = 0; i < len; ++i) {
        h.push_back(kHex[out[i] >> 4]);
        h.push_back(kHex[out[i] & 15]);
    }
    return h;
}

std::string ssha(const std::string& pw, const std::string& salt) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    std::string in = pw;
    in.append(salt);
    EVP_Digest(in.data(), in.size(), out, &len, EVP_sha1(), nullptr);
    std::string raw(reinterpret_cast<char*>(out), len);
    raw.append(salt);
    std::string b64(4 * ((raw.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()),
                            reinterpret_cast<const unsigned char*>(raw.data()),
                            static_cast<int>(raw.size()));
    b64.resize(static_cast<size_t>(n));
    std::string v = "{SSHA}";
    v.append(b64);
    return v;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// Built by appends: GCC 12 -O3 warns falsely (-Wrestrict) on "literal" + std::string.
std::string hundred_rules() {
    std::string t = "%% 99 rules that never decide a bench client, then allow all\n";
    for (int i = 0; i < 99; ++i) {
        std::string n = std::to_string(i);
        switch (i % 4) {
            case 0:
                t.append("{deny, {user, \"user")
                        .append(n)
                        .append("\"}, publish, [\"bench/#\"]}.\n");
                break;
            case 1:
                t.append("{deny, {client, \"client")
                        .append(n)
                        .append("\"}, pubsub, [\"bench/#\"]}.\n");
                break;
            case 2:
                t.append("{deny, {ipaddr, \"10.")
                        .append(n)
                        .append(".0.0/16\"}, publish, [\"#\"]}.\n");
                break;
            default:
                t.append("{deny, all, publish, [\"other").append(n).append("/+/x\", {eq, \"e");
                t.append(n).append("/#\"}]}.\n");
                break;
        }
    }
    t.append("{allow, all}.\n");
    return t;
}

}  // namespace

int main(int argc, char** argv) {
    std::string binary = MQTTD_BINARY;
    double seconds = 3;
    int rounds = 3;
    bool skip_db = false;
    bool only_connect = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--skip-db") {
            skip_db = true;
            continue;
        }
        if (a == "--only-connect") {
            only_connect = true;
            continue;
        }
        if (i + 1 >= argc) {
            break;
        }
        if (a == "--binary") {
            binary = argv[i + 1];
        } else if (a == "--seconds") {
            seconds = std::atof(argv[i + 1]);
        } else if (a == "--rounds") {
            rounds = std::atoi(argv[i + 1]);
        }
        ++i;
    }
    ::signal(SIGPIPE, SIG_IGN);

    auto run = [&](const char* name, const std::string& acl, std::vector<std::string> sets,
                   const std::function<void(Broker&)>& setup,
                   const std::function<double(Broker&)>& measure, const char* unit) {
        std::vector<double> v;
        for (int r = 0; r < rounds; ++r) {
            Broker b;
            b.binary = binary;
            b.start(acl, sets);
            setup(b);
            v.push_back(measure(b));
            b.stop();
        }
        std::printf("%-44s %10.0f %s (runs:", name, median(v), unit);
        for (double x : v) {
            std::printf(" %.0f", x);
        }
        std::printf(")\n");
        std::fflush(stdout);
    };
    auto none = [](Broker&) {
    };
    auto conns = [&](const std::string& u, const std::string& p) {
        return [&, u, p](Broker& b) {
            return connect_rate(b.port, seconds, u, p);
        };
    };

    run("CONNECT anonymous", "{allow, all}.\n", {}, none, conns("", ""), "CONNECT/s");
    run(
            "CONNECT emq_auth_username", "{allow, all}.\n", {"mqtt.allow_anonymous=false"},
            [](Broker& b) {
                b.rest("POST", "auth_username", R"({"username":"bench","password":"secret"})");
                b.rest("PUT", "nodes/mqttd@127.0.0.1/plugins/emq_auth_username",
                       R"({"active":true})");
            },
            conns("bench", "secret"), "CONNECT/s");
    OkServer http;
    std::string base = "http://127.0.0.1:" + std::to_string(http.port());
    run(
            "CONNECT emq_auth_http (local server)", "{allow, all}.\n",
            {"mqtt.allow_anonymous=false"},
            [&](Broker& b) {
                b.rest("PUT", "nodes/mqttd@127.0.0.1/plugin_configs/emq_auth_http",
                       "{\"auth.http.auth_req\":\"" + base + "/auth\",\"auth.http.super_req\":\"" +
                               base + "/super\",\"auth.http.acl_req\":\"\"}");
                b.rest("PUT", "nodes/mqttd@127.0.0.1/plugins/emq_auth_http", R"({"active":true})");
            },
            conns("bench", "secret"), "CONNECT/s");
    std::printf("  (local HTTP server answered %llu requests)\n",
                static_cast<unsigned long long>(http.requests()));

#ifdef MQTTD_BENCH_DATABASES
    if (!skip_db) {
        using namespace mqttd::dbtest;
        auto plugin = [](const std::string& name, const std::string& config) {
            return [name, config](Broker& b) {
                b.rest("PUT", "nodes/mqttd@127.0.0.1/plugin_configs/" + name, config);
                b.rest("PUT", "nodes/mqttd@127.0.0.1/plugins/" + name, R"({"active":true})");
            };
        };
        const std::string hash = sha256_hex("secret");
        RedisServer redis;
        if (auto err = redis.start(); !err.empty()) {
            std::fprintf(stderr, "%s\n", err.c_str());
            return 1;
        }
        redis.cli({"HSET", "mqtt_user:bench", "password", hash});
        std::string redis_cfg =
                "{\"auth.redis.server\":\"127.0.0.1:" + std::to_string(redis.port()) +
                "\",\"auth.redis.password_hash\":\"sha256\"";
        run("CONNECT emq_auth_redis (pool 8)", "{allow, all}.\n", {"mqtt.allow_anonymous=false"},
            plugin("emq_auth_redis", redis_cfg + "}"), conns("bench", "secret"), "CONNECT/s");
        run("CONNECT emq_auth_redis (pool 8, cache_ttl 60)", "{allow, all}.\n",
            {"mqtt.allow_anonymous=false"},
            plugin("emq_auth_redis", redis_cfg + ",\"auth.redis.cache_ttl\":\"60\"}"),
            conns("bench", "secret"), "CONNECT/s");
        redis.stop();

        std::string users =
                "insert into mqtt_user (username, password) values ('bench', '" + hash + "');";
        MariaDbServer maria;
        if (auto err = maria.start(); !err.empty()) {
            std::fprintf(stderr, "%s\n", err.c_str());
            return 1;
        }
        maria.sql(
                "create database mqtt; create user 'bench'@'%' identified by 'pw';"
                "grant select on mqtt.* to 'bench'@'%'; use mqtt; create table mqtt_user (id "
                "int auto_increment primary key, username varchar(100) unique, password "
                "varchar(100), salt varchar(40), is_superuser tinyint(1) default 0);" +
                users);
        run("CONNECT emq_auth_mysql (MariaDB, pool 8)", "{allow, all}.\n",
            {"mqtt.allow_anonymous=false"},
            plugin("emq_auth_mysql",
                   "{\"auth.mysql.server\":\"127.0.0.1:" + std::to_string(maria.port()) +
                           "\",\"auth.mysql.username\":\"bench\","
                           "\"auth.mysql.password\":\"pw\"}"),
            conns("bench", "secret"), "CONNECT/s");
        maria.stop();

        PostgresServer pg;
        if (auto err = pg.start(); !err.empty()) {
            std::fprintf(stderr, "%s\n", err.c_str());
            return 1;
        }
        pg.sql("create database mqtt;");
        pg.sql("create table mqtt_user (id serial primary key, is_superuser boolean default "
               "false, username varchar(100) unique, password varchar(100), salt varchar(40));" +
                       users,
               "mqtt");
        run("CONNECT emq_auth_pgsql (PostgreSQL 15, pool 8)", "{allow, all}.\n",
            {"mqtt.allow_anonymous=false"},
            plugin("emq_auth_pgsql",
                   "{\"auth.pgsql.server\":\"127.0.0.1:" + std::to_string(pg.port()) +
                           "\",\"auth.pgsql.username\":\"postgres\"}"),
            conns("bench", "secret"), "CONNECT/s");
        pg.stop();

        std::string ldif =
                "dn: dc=emqtt,dc=io\nobjectClass: dcObject\nobjectClass: organization\n"
                "dc: emqtt\no: emqtt\n\ndn: ou=device,dc=emqtt,dc=io\nobjectClass: "
                "organizationalUnit\nou: device\n\ndn: uid=bench,ou=device,dc=emqtt,dc=io\n"
                "objectClass: account\nobjectClass: mqttUser\nuid: bench\nuserPassword: " +
                ssha("secret", "salt") + "\n";
        SlapdServer ldap("dc=emqtt,dc=io", "root-pw", ldif);
        if (auto err = ldap.start(); !err.empty()) {
            std::fprintf(stderr, "%s\n", err.c_str());
            return 1;
        }
        run("CONNECT emq_auth_ldap (slapd, pool 8)", "{allow, all}.\n",
            {"mqtt.allow_anonymous=false"},
            plugin("emq_auth_ldap", "{\"auth.ldap.port\":\"" + std::to_string(ldap.port()) +
                                            "\",\"auth.ldap.bind_password\":\"root-pw\"}"),
            conns("bench", "secret"), "CONNECT/s");
        ldap.stop();
    }
#else
    (void)skip_db;
#endif
    if (only_connect) {
        return 0;
    }

    auto pubs = [](Broker& b) {
        return publish_rate(b.port);
    };
    run("PUBLISH QoS 0, 1-rule ACL", "{allow, all}.\n", {}, none, pubs, "msg/s");
    run("PUBLISH QoS 0, 100-rule ACL, cache on", hundred_rules(), {"mqtt.cache_acl=true"}, none,
        pubs, "msg/s");
    run("PUBLISH QoS 0, 100-rule ACL, cache off", hundred_rules(), {"mqtt.cache_acl=false"}, none,
        pubs, "msg/s");
    return 0;
}
