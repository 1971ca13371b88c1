// Real database servers for the auth integration suites (30..33) and the auth benchmark, each
// in its own temp dir on a free 127.0.0.1 port, never a system instance:
//   RedisServer    redis-server (no persistence, DEBUG enabled for slow-server tests)
//   MariaDbServer  mariadb-install-db once, then mariadbd as user nobody (--user)
//   PostgresServer initdb once, then postgres, both as user nobody (PostgreSQL 15 binaries)
//   EtcdServer     etcd 3.4, one member, its client and peer URLs on free ports
//   SlapdServer    a generated slapd.conf (mdb, EMQ's mqttUser schema), data loaded with
//                  slapadd, then slapd in the foreground
// start() prepares the data dir the first time and starts the process; stop() / kill() end
// it; start() again restarts it on the same port and data (a backend that went down and came
// back). A missing binary is an error naming the Debian package (.ci/setup test installs it).
// No gtest here: errors are returned as text, so the benchmark can use this too.
//
// Ownership: each object owns its process and its temp dir (removed on destruction, after the
// process is stopped). Thread-safety: one thread.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <sys/types.h>

namespace mqttd::dbtest {

struct RunResult {
    int status = -1;     // exit code, or -1 when it did not exit normally in time
    std::string output;  // stdout and stderr
};

// Runs argv (argv[0] an absolute path or searched in PATH) with `input` on stdin; as user
// nobody when `as_nobody` and this process is root.
RunResult run(const std::vector<std::string>& argv,
              const std::string& input = "",
              bool as_nobody = false,
              int timeout_s = 120);

// The path of `name` in PATH or in `dirs`; "" when absent.
std::string find_binary(const std::string& name, const std::vector<std::string>& dirs = {});

uint16_t free_tcp_port();

class ServerProcess {
public:
    ServerProcess();
    virtual ~ServerProcess();
    ServerProcess(const ServerProcess&) = delete;
    ServerProcess& operator=(const ServerProcess&) = delete;

    // "" on success, else one line saying what failed (with the end of the server's log).
    std::string start();
    void stop();  // SIGTERM, wait up to 20 s, then SIGKILL
    void kill();  // SIGKILL, as a crash would
    // Whether the process still runs (one that exited on its own is reaped: start() again
    // restarts it).
    bool running();
    uint16_t port() const { return port_; }
    const std::string& dir() const { return dir_; }
    std::string log_tail(size_t bytes = 2000) const;

protected:
    // Once, before the first start: create the data; "" or an error.
    virtual std::string prepare() = 0;
    virtual std::vector<std::string> command() = 0;
    virtual bool as_nobody() const { return false; }
    virtual const char* what() const = 0;
    // After the port accepts: "" or an error (e.g. wait for a login to work).
    virtual std::string after_start() { return {}; }

    std::string dir_;
    uint16_t port_ = 0;

private:
    pid_t pid_ = -1;
    bool prepared_ = false;
};

class RedisServer final : public ServerProcess {
public:
    // redis-cli against this server.
    RunResult cli(const std::vector<std::string>& args);

protected:
    std::string prepare() override;
    std::vector<std::string> command() override;
    const char* what() const override { return "redis-server"; }

private:
    std::string server_;
};

class EtcdServer final : public ServerProcess {
public:
    // Listens on 127.0.0.1 and, when given, on `extra_host` too (an address of a network
    // namespace a test made), on the same client port.
    explicit EtcdServer(std::string extra_host = "") : extra_host_(std::move(extra_host)) {}
    // "http://127.0.0.1:<client port>"
    std::string endpoint() const;
    // "http://<extra_host>:<client port>"
    std::string extra_endpoint() const;
    // etcdctl against this server.
    RunResult ctl(const std::vector<std::string>& args);

protected:
    std::string prepare() override;
    std::vector<std::string> command() override;
    const char* what() const override { return "etcd"; }

private:
    std::string extra_host_;
    std::string server_;
    uint16_t peer_port_ = 0;
};

class MariaDbServer final : public ServerProcess {
public:
    // Runs SQL as root over the server's Unix socket.
    RunResult sql(const std::string& statements);

protected:
    std::string prepare() override;
    std::vector<std::string> command() override;
    bool as_nobody() const override { return true; }
    const char* what() const override { return "mariadbd"; }
    std::string after_start() override;

private:
    std::string mariadbd_;
};

class PostgresServer final : public ServerProcess {
public:
    // Runs SQL as the superuser "postgres" over TCP.
    RunResult sql(const std::string& statements, const std::string& database = "postgres");

protected:
    std::string prepare() override;
    std::vector<std::string> command() override;
    bool as_nobody() const override { return true; }
    const char* what() const override { return "postgres"; }
    std::string after_start() override;

private:
    std::string bin_;
};

class SlapdServer final : public ServerProcess {
public:
    // `suffix` "dc=emqtt,dc=io", root DN cn=root,<suffix> with password `root_password`;
    // `ldif` is loaded before the first start.
    SlapdServer(std::string suffix, std::string root_password, std::string ldif);
    std::string root_dn() const { return "cn=root," + suffix_; }

protected:
    std::string prepare() override;
    std::vector<std::string> command() override;
    const char* what() const override { return "slapd"; }

private:
    std::string suffix_;
    std::string root_password_;
    std::string ldif_;
    std::string slapd_;
};

// The project's source dir (for data/schema/*).
std::string source_dir();

}  // namespace mqttd::dbtest
