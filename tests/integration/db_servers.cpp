#include "db_servers.h"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

namespace mqttd::dbtest {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;

bool root() {
    return ::geteuid() == 0;
}

// In the child: drop to nobody (when root and asked), die with the parent, exec.
[[noreturn]] void exec_child(const std::vector<std::string>& argv, bool as_nobody) {
    if (as_nobody && root()) {
        if (::setgroups(0, nullptr) != 0 || ::setgid(kNogroup) != 0 || ::setuid(kNobody) != 0) {
            std::perror("drop to nobody");
            ::_exit(126);
        }
    }
    // After the uid change (which clears it): a crashed test binary leaves no server behind.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    std::vector<char*> args;
    for (const auto& a : argv) {
        args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    std::perror(args[0]);
    ::_exit(127);
}

bool port_accepts(uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

std::string make_temp_dir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base != nullptr ? base : "/tmp") + "/mqttd-db-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) == nullptr) {
        return {};
    }
    ::chmod(buf.data(), 0755);  // servers running as nobody reach their subdirectories
    return buf.data();
}

// A subdirectory owned by nobody (when root) so a server dropped to nobody can write it.
std::string nobody_dir(const std::string& path) {
    std::error_code ec;
    std::filesystem::create_directories(path, ec);
    if (ec) {
        return "mkdir " + path + ": " + ec.message();
    }
    if (root() && ::chown(path.c_str(), kNobody, kNogroup) != 0) {
        return "chown " + path + ": " + std::strerror(errno);
    }
    ::chmod(path.c_str(), 0700);
    return {};
}

std::string write_file(const std::string& path, const std::string& text) {
    std::ofstream out(path);
    out << text;
    return out.good() ? std::string() : "cannot write " + path;
}

std::string missing(const char* binary, const char* package) {
    return std::string(binary) + " not found: install the Debian package " + package +
           " (.ci/setup test does)";
}

}  // namespace

RunResult run(const std::vector<std::string>& argv,
              const std::string& input,
              bool as_nobody,
              int timeout_s) {
    RunResult r;
    int in[2];
    int out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) {
        r.output = "pipe failed";
        return r;
    }
    pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(in[0], 0);
        ::dup2(out[1], 1);
        ::dup2(out[1], 2);
        ::chdir("/");
        exec_child(argv, as_nobody);
    }
    ::close(in[0]);
    ::close(out[1]);
    if (!input.empty()) {
        size_t off = 0;
        while (off < input.size()) {
            ssize_t n = ::write(in[1], input.data() + off, input.size() - off);
            if (n <= 0) {
                break;
            }
            off += static_cast<size_t>(n);
        }
    }
    ::close(in[1]);
    auto deadline = Clock::now() + std::chrono::seconds(timeout_s);
    char buf[4096];
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) {
            ::kill(pid, SIGKILL);
            break;
        }
        pollfd p{out[0], POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(std::min<long>(left.count(), 200))) > 0) {
            ssize_t n = ::read(out[0], buf, sizeof buf);
            if (n <= 0) {
                break;
            }
            r.output.append(buf, static_cast<size_t>(n));
        }
    }
    ::close(out[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

std::string find_binary(const std::string& name, const std::vector<std::string>& dirs) {
    std::vector<std::string> all = dirs;
    const char* env = std::getenv("PATH");
    std::string path = env != nullptr ? env : "/usr/bin:/bin";
    size_t start = 0;
    for (;;) {
        size_t colon = path.find(':', start);
        all.push_back(path.substr(start, colon - start));
        if (colon == std::string::npos) {
            break;
        }
        start = colon + 1;
    }
    for (const char* sbin : {"/usr/sbin", "/sbin", "/usr/bin"}) {
        all.emplace_back(sbin);
    }
    for (const auto& dir : all) {
        std::string p = dir + "/" + name;
        if (::access(p.c_str(), X_OK) == 0) {
            return p;
        }
    }
    return {};
}

uint16_t free_tcp_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

std::string source_dir() {
    return MQTTD_SOURCE_DIR;
}

// ---- ServerProcess ----

ServerProcess::ServerProcess() : dir_(make_temp_dir()), port_(free_tcp_port()) {}

ServerProcess::~ServerProcess() {
    stop();
    if (!dir_.empty()) {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
}

std::string ServerProcess::log_tail(size_t bytes) const {
    std::string text;
    int fd = ::open((dir_ + "/server.log").c_str(), O_RDONLY | O_CLOEXEC);
    char buf[4096];
    for (ssize_t n; fd >= 0 && (n = ::read(fd, buf, sizeof buf)) > 0;) {
        text.append(buf, static_cast<size_t>(n));
    }
    if (fd >= 0) {
        ::close(fd);
    }
    return text.size() > bytes ? text.substr(text.size() - bytes) : text;
}

bool ServerProcess::running() {
    int status = 0;
    if (pid_ > 0 && ::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
    }
    return pid_ > 0;
}

std::string ServerProcess::start() {
    if (dir_.empty()) {
        return std::string(what()) + ": cannot create a temp dir";
    }
    if (pid_ > 0) {
        return {};
    }
    if (!prepared_) {
        if (auto err = prepare(); !err.empty()) {
            return std::string(what()) + ": " + err;
        }
        prepared_ = true;
    }
    auto argv = command();
    std::string log = dir_ + "/server.log";
    pid_t pid = ::fork();
    if (pid == 0) {
        int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        int null = ::open("/dev/null", O_RDONLY);
        ::dup2(null, 0);
        ::chdir(dir_.c_str());
        exec_child(argv, as_nobody());
    }
    pid_ = pid;
    auto deadline = Clock::now() + 90s;
    while (Clock::now() < deadline) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            return std::string(what()) + " exited at start; log:\n" + log_tail();
        }
        if (port_accepts(port_)) {
            if (auto err = after_start(); !err.empty()) {
                return std::string(what()) + ": " + err + "; log:\n" + log_tail();
            }
            return {};
        }
        std::this_thread::sleep_for(50ms);
    }
    kill();
    return std::string(what()) + " did not accept on port " + std::to_string(port_) +
           " within 90 s; log:\n" + log_tail();
}

void ServerProcess::stop() {
    if (pid_ <= 0) {
        return;
    }
    ::kill(pid_, SIGTERM);
    auto deadline = Clock::now() + 20s;
    while (Clock::now() < deadline) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            return;
        }
        std::this_thread::sleep_for(20ms);
    }
    kill();
}

void ServerProcess::kill() {
    if (pid_ <= 0) {
        return;
    }
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
}

// ---- Redis ----

std::string RedisServer::prepare() {
    server_ = find_binary("redis-server");
    return server_.empty() ? missing("redis-server", "redis-server") : std::string();
}

std::vector<std::string> RedisServer::command() {
    return {server_,
            "--port",
            std::to_string(port_),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            dir_,
            "--protected-mode",
            "no",
            "--enable-debug-command",
            "yes",
            "--daemonize",
            "no"};
}

RunResult RedisServer::cli(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"redis-cli", "-h", "127.0.0.1", "-p", std::to_string(port_)};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
}

// ---- etcd ----

std::string EtcdServer::endpoint() const {
    return "http://127.0.0.1:" + std::to_string(port_);
}

std::string EtcdServer::extra_endpoint() const {
    return "http://" + extra_host_ + ":" + std::to_string(port_);
}

std::string EtcdServer::prepare() {
    server_ = find_binary("etcd");
    peer_port_ = free_tcp_port();
    return server_.empty() ? missing("etcd", "etcd-server") : std::string();
}

std::vector<std::string> EtcdServer::command() {
    const std::string client =
            extra_host_.empty() ? endpoint() : endpoint() + "," + extra_endpoint();
    const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
    return {server_,        "--name",
            "test",         "--data-dir",
            dir_ + "/data", "--listen-client-urls",
            client,         "--advertise-client-urls",
            client,         "--listen-peer-urls",
            peer,           "--initial-advertise-peer-urls",
            peer,           "--initial-cluster",
            "test=" + peer, "--logger",
            "zap",          "--log-level",
            "warn"};
}

RunResult EtcdServer::ctl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"etcdctl", "--endpoints", endpoint()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
}

// ---- MariaDB ----

std::string MariaDbServer::prepare() {
    mariadbd_ = find_binary("mariadbd");
    std::string install = find_binary("mariadb-install-db");
    if (mariadbd_.empty() || install.empty()) {
        return missing("mariadbd / mariadb-install-db", "mariadb-server");
    }
    if (auto err = nobody_dir(dir_ + "/data"); !err.empty()) {
        return err;
    }
    if (auto err = nobody_dir(dir_ + "/run"); !err.empty()) {
        return err;
    }
    RunResult r = run(
            {install, "--no-defaults", "--datadir=" + dir_ + "/data",
             "--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve"},
            "", true, 300);
    if (r.status != 0) {
        return "mariadb-install-db failed: " + r.output.substr(0, 2000);
    }
    return {};
}

std::vector<std::string> MariaDbServer::command() {
    return {mariadbd_,
            "--no-defaults",
            "--datadir=" + dir_ + "/data",
            "--port=" + std::to_string(port_),
            "--bind-address=127.0.0.1",
            "--socket=" + dir_ + "/run/mysqld.sock",
            "--pid-file=" + dir_ + "/run/mysqld.pid",
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=16M",
            "--innodb-log-file-size=8M",
            "--max-connections=200"};
}

std::string MariaDbServer::after_start() {
    auto deadline = Clock::now() + 30s;
    RunResult r;
    while (Clock::now() < deadline) {
        r = sql("select 1;");
        if (r.status == 0) {
            return {};
        }
        std::this_thread::sleep_for(100ms);
    }
    return "no login as root: " + r.output;
}

RunResult MariaDbServer::sql(const std::string& statements) {
    return run({"mariadb", "--no-defaults", "--socket=" + dir_ + "/run/mysqld.sock", "-uroot",
                "--batch"},
               statements);
}

// ---- PostgreSQL ----

std::string PostgresServer::prepare() {
    std::vector<std::string> dirs = {"/usr/lib/postgresql/15/bin"};
    std::string initdb = find_binary("initdb", dirs);
    bin_ = find_binary("postgres", dirs);
    if (initdb.empty() || bin_.empty()) {
        return missing("initdb / postgres", "postgresql");
    }
    for (const char* sub : {"/data", "/sock"}) {
        if (auto err = nobody_dir(dir_ + sub); !err.empty()) {
            return err;
        }
    }
    RunResult r = run({initdb, "-D", dir_ + "/data", "-U", "postgres", "--auth=trust", "-E", "UTF8",
                       "--no-sync", "--locale=C"},
                      "", true, 300);
    if (r.status != 0) {
        return "initdb failed: " + r.output.substr(0, 2000);
    }
    return {};
}

std::vector<std::string> PostgresServer::command() {
    return {bin_,
            "-D",
            dir_ + "/data",
            "-p",
            std::to_string(port_),
            "-k",
            dir_ + "/sock",
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "shared_buffers=16MB",
            "-c",
            "max_connections=200"};
}

std::string PostgresServer::after_start() {
    auto deadline = Clock::now() + 30s;
    RunResult r;
    while (Clock::now() < deadline) {
        r = sql("select 1;");
        if (r.status == 0) {
            return {};
        }
        std::this_thread::sleep_for(100ms);
    }
    return "no login as postgres: " + r.output;
}

RunResult PostgresServer::sql(const std::string& statements, const std::string& database) {
    std::string psql = find_binary("psql", {"/usr/lib/postgresql/15/bin"});
    return run(
            {psql.empty() ? "psql" : psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
             "-p", std::to_string(port_), "-U", "postgres", "-d", database, "-f", "-"},
            statements);
}

// ---- slapd ----

SlapdServer::SlapdServer(std::string suffix, std::string root_password, std::string ldif)
    : suffix_(std::move(suffix)),
      root_password_(std::move(root_password)),
      ldif_(std::move(ldif)) {}

std::string SlapdServer::prepare() {
    slapd_ = find_binary("slapd");
    std::string slapadd = find_binary("slapadd");
    if (slapd_.empty() || slapadd.empty()) {
        return missing("slapd / slapadd", "slapd");
    }
    std::error_code ec;
    std::filesystem::create_directories(dir_ + "/db", ec);
    std::string conf =
            "include /etc/ldap/schema/core.schema\n"
            "include /etc/ldap/schema/cosine.schema\n"
            "include /etc/ldap/schema/inetorgperson.schema\n"
            "include " +
            source_dir() +
            "/data/schema/mqtt_user.schema\n"
            "pidfile " +
            dir_ +
            "/slapd.pid\n"
            "modulepath /usr/lib/ldap\n"
            "moduleload back_mdb\n"
            "database mdb\n"
            "suffix \"" +
            suffix_ + "\"\nrootdn \"cn=root," + suffix_ + "\"\nrootpw " + root_password_ +
            "\ndirectory " + dir_ + "/db\n";
    if (auto err = write_file(dir_ + "/slapd.conf", conf); !err.empty()) {
        return err;
    }
    if (auto err = write_file(dir_ + "/data.ldif", ldif_); !err.empty()) {
        return err;
    }
    RunResult r = run({slapadd, "-f", dir_ + "/slapd.conf", "-l", dir_ + "/data.ldif"});
    if (r.status != 0) {
        return "slapadd failed: " + r.output.substr(0, 2000);
    }
    return {};
}

std::vector<std::string> SlapdServer::command() {
    return {slapd_,
            "-f",
            dir_ + "/slapd.conf",
            "-h",
            "ldap://127.0.0.1:" + std::to_string(port_) + "/",
            "-d",
            "0"};
}

}  // namespace mqttd::dbtest
