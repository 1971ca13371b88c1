// 60 The Debian package: `cpack -G DEB` in the build tree builds the .deb, `dpkg -i` installs it
// into this machine, and the installed files are checked: /usr/sbin/mqttd, the conffiles in
// /etc/mqttd, the unit (systemd-analyze verify), the system user mqttd owning /var/lib/mqttd.
// The installed binary runs with the installed configuration as the mqttd user (listeners
// moved to free ports with --set) under a NOTIFY_SOCKET the test listens on: READY=1 once it
// serves MQTT and REST, WATCHDOG=1 pings, STOPPING=1 at SIGTERM; it writes its store and its
// self-signed certificate into /var/lib/mqttd. Then `dpkg -r` and `dpkg --purge` and what each
// leaves.
//
// This suite changes the machine: it needs root (skipped otherwise) and refuses to touch an
// mqttd package it did not install. The other suites never use /usr/sbin/mqttd, and a lock
// file keeps two runs of this suite (other build trees) apart. The package is purged when the
// suite ends, passed or failed.
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "harness.h"
#include "http_client.h"

namespace mqttd::itest {
namespace {

namespace fs = std::filesystem;

// Marks a package this suite installed, so a crashed earlier run can be cleaned up and an
// operator's own installation is never touched.
constexpr const char* kMarker = "/var/lib/mqttd/.installed-by-mqttd-package-test";

struct Shell {
    int status = -1;  // exit code; -1 when it did not exit normally
    std::string out;  // stdout and stderr
};

Shell sh(const std::string& command) {
    Shell r;
    FILE* p = ::popen((command + " 2>&1").c_str(), "r");
    if (p == nullptr) {
        return r;
    }
    char buf[4096];
    size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) {
        r.out.append(buf, n);
    }
    const int st = ::pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

// dpkg with a retry while another dpkg or apt holds the lock.
Shell dpkg(const std::string& args) {
    Shell r;
    for (int attempt = 0; attempt < 120; ++attempt) {
        r = sh("DEBIAN_FRONTEND=noninteractive dpkg " + args);
        if (r.status == 0 || r.out.find("lock") == std::string::npos) {
            return r;
        }
        std::this_thread::sleep_for(1s);
    }
    return r;
}

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

bool package_installed() {
    return sh("dpkg-query -W -f='${Status}' mqttd").out.find("install ok installed") !=
           std::string::npos;
}

// Installed, or removed with its configuration files still there.
bool package_known() {
    const Shell q = sh("dpkg-query -W -f='${Status}' mqttd");
    return q.status == 0 && q.out.find("not-installed") == std::string::npos;
}

std::string owner_of(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        return "(missing)";
    }
    const passwd* pw = ::getpwuid(st.st_uid);
    const group* gr = ::getgrgid(st.st_gid);
    return std::string(pw != nullptr ? pw->pw_name : "?") + ":" +
           (gr != nullptr ? gr->gr_name : "?");
}

unsigned mode_of(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0;
}

bool user_exists(const char* name) {
    return ::getpwnam(name) != nullptr;
}

// A datagram socket in the abstract namespace (no file, reachable by any user) standing in for
// systemd's notify socket.
class NotifySocket {
public:
    NotifySocket() {
        name_ = "@mqttd-package-test-" + std::to_string(::getpid());
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::memcpy(addr.sun_path + 1, name_.data() + 1, name_.size() - 1);
        const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name_.size());
        if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
            ADD_FAILURE() << "notify socket: " << std::strerror(errno);
        }
    }
    ~NotifySocket() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }
    NotifySocket(const NotifySocket&) = delete;
    NotifySocket& operator=(const NotifySocket&) = delete;
    const std::string& name() const { return name_; }

    // Reads datagrams until one holds the line `line` (e.g. "READY=1"); everything read is
    // appended to `seen`.
    bool wait_for(const std::string& line, std::chrono::milliseconds timeout, std::string& seen) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0) {
                continue;
            }
            char buf[4096];
            const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) {
                continue;
            }
            const std::string msg(buf, static_cast<size_t>(n));
            seen += msg + "\n---\n";
            if (("\n" + msg + "\n").find("\n" + line + "\n") != std::string::npos) {
                return true;
            }
        }
        return false;
    }

private:
    std::string name_;
    int fd_ = -1;
};

class Package : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        if (::geteuid() != 0) {
            skip_ = "needs root: it installs the .deb with dpkg -i";
            return;
        }
        for (const char* tool : {"dpkg", "dpkg-query", "setpriv"}) {
            if (sh(std::string("command -v ") + tool).status != 0) {
                skip_ = std::string("needs ") + tool;
                return;
            }
        }
        // Another build tree running this suite waits here.
        lock_fd_ = ::open("/run/lock/mqttd-package-test.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (lock_fd_ >= 0) {
            ::flock(lock_fd_, LOCK_EX);
        }
        if (package_known()) {
            if (!fs::exists(kMarker)) {
                skip_ = "an mqttd package this suite did not install is on this machine";
                return;
            }
            setup_log_ += dpkg("--purge mqttd").out;  // left by a run that was killed
        }
        work_ = std::make_unique<TempDir>();
        const Shell built = sh(std::string(MQTTD_CPACK_COMMAND) + " -G DEB --config " +
                               MQTTD_BUILD_DIR + "/CPackConfig.cmake -B " + work_->path());
        setup_log_ += built.out;
        if (built.status != 0) {
            return;
        }
        for (const auto& e : fs::directory_iterator(work_->path())) {
            if (e.path().extension() == ".deb") {
                deb_ = e.path().string();
            }
        }
        if (deb_.empty()) {
            return;
        }
        const Shell installed = dpkg("-i " + deb_);
        setup_log_ += installed.out;
        installed_ = installed.status == 0;
        if (installed_) {
            std::ofstream(kMarker) << "mqttd's tests/integration/60_package_test.cpp\n";
        }
    }

    static void TearDownTestSuite() {
        if (package_known() && fs::exists(kMarker)) {
            (void)dpkg("--purge mqttd");
        }
        work_.reset();
        if (lock_fd_ >= 0) {
            ::close(lock_fd_);
            lock_fd_ = -1;
        }
    }

    void SetUp() override {
        if (!skip_.empty()) {
            GTEST_SKIP() << skip_;
        }
        ASSERT_FALSE(deb_.empty()) << "cpack built no .deb:\n" << setup_log_;
    }

    static std::string skip_;
    static std::string setup_log_;
    static std::string deb_;
    static bool installed_;
    static int lock_fd_;
    static std::unique_ptr<TempDir> work_;
};

std::string Package::skip_;
std::string Package::setup_log_;
std::string Package::deb_;
bool Package::installed_ = false;
int Package::lock_fd_ = -1;
std::unique_ptr<TempDir> Package::work_;

TEST_F(Package, ControlFieldsNameTheComputedDependencies) {
    const Shell depends = sh("dpkg-deb -f " + deb_ + " Depends");
    ASSERT_EQ(depends.status, 0) << depends.out;
    // dpkg-shlibdeps found the libraries the binary links (spdlog, libc, ...): RocksDB's
    // package when it is linked shared, else (MQTTD_ROCKSDB_STATIC) the compression
    // libraries the static RocksDB needs, and no RocksDB package.
    for (const char* dep : {"adduser", "libspdlog", "libc6"}) {
        EXPECT_NE(depends.out.find(dep), std::string::npos) << dep << " in " << depends.out;
    }
    if (MQTTD_ROCKSDB_STATIC) {
        EXPECT_EQ(depends.out.find("librocksdb"), std::string::npos) << depends.out;
        for (const char* dep : {"libsnappy", "liblz4", "libzstd", "libbz2"}) {
            EXPECT_NE(depends.out.find(dep), std::string::npos) << dep << " in " << depends.out;
        }
    } else {
        EXPECT_NE(depends.out.find("librocksdb"), std::string::npos) << depends.out;
    }
    EXPECT_EQ(sh("dpkg-deb -f " + deb_ + " Package").out, "mqttd\n");
}

TEST_F(Package, InstallsFilesConffilesUserAndDataDirectory) {
    ASSERT_TRUE(installed_) << setup_log_;
    EXPECT_TRUE(package_installed());
    const Shell files = sh("dpkg -L mqttd");
    for (const char* f :
         {"/usr/sbin/mqttd", "/etc/mqttd/mqttd.conf", "/etc/mqttd/acl.conf",
          "/lib/systemd/system/mqttd.service", "/usr/share/bash-completion/completions/mqttd"}) {
        EXPECT_NE(files.out.find(std::string(f) + "\n"), std::string::npos) << f << files.out;
        EXPECT_TRUE(fs::exists(f)) << f;
    }
    EXPECT_EQ(mode_of("/usr/sbin/mqttd") & 0111, 0111u);

    const Shell conffiles = sh("dpkg-query -W -f='${Conffiles}' mqttd");
    EXPECT_NE(conffiles.out.find("/etc/mqttd/mqttd.conf "), std::string::npos) << conffiles.out;
    EXPECT_NE(conffiles.out.find("/etc/mqttd/acl.conf "), std::string::npos) << conffiles.out;

    // The package's configuration points into /var/lib/mqttd and /etc/mqttd, never data/.
    const std::string conf = slurp("/etc/mqttd/mqttd.conf");
    EXPECT_NE(conf.find("\nnode.data_dir = /var/lib/mqttd\n"), std::string::npos);
    EXPECT_NE(conf.find("\nmqtt.acl_file = /etc/mqttd/acl.conf\n"), std::string::npos);
    EXPECT_NE(conf.find("= /var/lib/mqttd/certs/key.pem"), std::string::npos);
    EXPECT_EQ(conf.find("= data/"), std::string::npos);
    EXPECT_EQ(owner_of("/etc/mqttd/acl.conf"), "root:mqttd");
    EXPECT_EQ(mode_of("/etc/mqttd/acl.conf"), 0640u);

    ASSERT_TRUE(user_exists("mqttd"));
    const passwd* pw = ::getpwnam("mqttd");
    EXPECT_LT(pw->pw_uid, 1000u) << "a system user";
    EXPECT_EQ(owner_of("/var/lib/mqttd"), "mqttd:mqttd");
    EXPECT_EQ(mode_of("/var/lib/mqttd"), 0750u);

    // The completion script is the generated one and loads in bash.
    const Shell completion =
            sh("bash -c 'source /usr/share/bash-completion/completions/mqttd && complete -p "
               "mqttd'");
    EXPECT_EQ(completion.status, 0) << completion.out;
    EXPECT_NE(completion.out.find("_mqttd"), std::string::npos) << completion.out;
    // mqttd's own options and ctl's commands complete.
    const Shell option =
            sh("bash -c 'source /usr/share/bash-completion/completions/mqttd && "
               "COMP_WORDS=(mqttd --da) COMP_CWORD=1 && _mqttd && echo \"${COMPREPLY[*]}\"'");
    EXPECT_EQ(option.out, "--data-dir\n");
    const Shell command =
            sh("bash -c 'source /usr/share/bash-completion/completions/mqttd && "
               "COMP_WORDS=(mqttd ctl clients k) COMP_CWORD=3 && _mqttd && "
               "echo \"${COMPREPLY[*]}\"'");
    EXPECT_EQ(command.out, "kick\n");
}

TEST_F(Package, UnitIsNotifyRestartOnFailureAndHardened) {
    ASSERT_TRUE(installed_) << setup_log_;
    const std::string unit = slurp("/lib/systemd/system/mqttd.service");
    for (const char* line :
         {"Type=notify", "ExecStart=/usr/sbin/mqttd -c /etc/mqttd/mqttd.conf", "Restart=on-failure",
          "User=mqttd", "ProtectSystem=strict", "NoNewPrivileges=yes",
          "ReadWritePaths=/var/lib/mqttd", "PrivateTmp=yes", "ProtectHome=yes", "WatchdogSec="}) {
        EXPECT_NE(unit.find(std::string("\n") + line), std::string::npos) << line;
    }
    if (sh("command -v systemd-analyze").status != 0) {
        std::printf("systemd-analyze is not installed: the unit is not verified\n");
        return;
    }
    const Shell verify = sh("systemd-analyze verify /lib/systemd/system/mqttd.service");
    EXPECT_EQ(verify.status, 0) << verify.out;
    EXPECT_EQ(verify.out.find("mqttd.service:"), std::string::npos)
            << "systemd-analyze complains about the unit:\n"
            << verify.out;
}

// The installed binary, the installed configuration, the mqttd user, the package's data
// directory; READY=1, WATCHDOG=1 and STOPPING=1 on the notify socket.
TEST_F(Package, InstalledBinaryServesAsTheMqttdUserAndNotifies) {
    ASSERT_TRUE(installed_) << setup_log_;
    const uint16_t mqtt = free_port();
    const uint16_t api = free_port();
    const uint16_t tls = free_port();
    NotifySocket notify;
    const std::string log_path = work_->sub("mqttd.log");
    std::vector<std::string> argv = {"/usr/bin/setpriv",
                                     "--reuid=mqttd",
                                     "--regid=mqttd",
                                     "--clear-groups",
                                     "--",
                                     "/usr/sbin/mqttd",
                                     "-c",
                                     "/etc/mqttd/mqttd.conf",
                                     "--set",
                                     "listener.tcp.external=127.0.0.1:" + std::to_string(mqtt),
                                     "--set",
                                     "listener.api.mgmt=127.0.0.1:" + std::to_string(api),
                                     "--set",
                                     "listener.ssl.external=127.0.0.1:" + std::to_string(tls),
                                     "--set",
                                     "listener.ws.external=",
                                     "--set",
                                     "listener.wss.external="};
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        (void)::chdir("/");  // as systemd starts it
        ::setenv("NOTIFY_SOCKET", notify.name().c_str(), 1);
        // setpriv execs mqttd in this process: the watchdog is meant for this pid.
        ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
        ::setenv("WATCHDOG_USEC", "400000", 1);
        std::vector<char*> args;
        for (auto& a : argv) {
            args.push_back(a.data());
        }
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    auto log = [&] {
        return slurp(log_path);
    };
    struct Reaper {  // the broker never outlives the test, whatever fails
        pid_t pid;
        ~Reaper() {
            if (pid > 0) {
                ::kill(pid, SIGKILL);
                ::waitpid(pid, nullptr, 0);
            }
        }
    } reaper{pid};

    std::string seen;
    ASSERT_TRUE(notify.wait_for("READY=1", 20s, seen)) << "no READY=1; got:\n"
                                                       << seen << "\nlog:\n"
                                                       << log();
    EXPECT_NE(seen.find("STATUS=listening on 127.0.0.1:" + std::to_string(mqtt)), std::string::npos)
            << seen;

    // READY=1 means serving: MQTT and REST answer at once.
    // connect_ok returns "session present": false for a clean session; a refusal fails the test.
    RawClient sub;
    EXPECT_FALSE(sub.connect_ok(mqtt, "pkg-sub"));
    ASSERT_FALSE(HasFailure()) << log();
    EXPECT_EQ(sub.subscribe("pkg/t", 1), (std::vector<uint8_t>{1}));
    RawClient pub;
    EXPECT_FALSE(pub.connect_ok(mqtt, "pkg-pub"));
    ASSERT_FALSE(HasFailure()) << log();
    pub.publish("pkg/t", "hello", 1);
    auto got = sub.receive_and_ack();
    ASSERT_TRUE(got);
    EXPECT_EQ(got->payload, "hello");
    const auto reply = test::http(api, "GET", "/api/v2/management/nodes");
    EXPECT_EQ(reply.status, 200) << reply.body;

    ASSERT_TRUE(notify.wait_for("WATCHDOG=1", 5s, seen)) << seen;

    // It wrote its store and its self-signed certificate as mqttd into /var/lib/mqttd.
    EXPECT_TRUE(fs::is_directory("/var/lib/mqttd/db")) << log();
    EXPECT_EQ(owner_of("/var/lib/mqttd/db"), "mqttd:mqttd");
    EXPECT_EQ(owner_of("/var/lib/mqttd/certs/key.pem"), "mqttd:mqttd") << log();
    EXPECT_EQ(mode_of("/var/lib/mqttd/certs/key.pem"), 0600u);
    EXPECT_NE(log().find("127.0.0.1:" + std::to_string(tls) + " (mqtt:ssl)"), std::string::npos)
            << log();

    ASSERT_EQ(::kill(pid, SIGTERM), 0);
    EXPECT_TRUE(notify.wait_for("STOPPING=1", 15s, seen)) << seen;
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    reaper.pid = -1;
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << "\n" << log();
}

// Last: remove keeps the configuration and the data, purge deletes them and the user.
TEST_F(Package, RemoveKeepsDataAndPurgeDeletesIt) {
    ASSERT_TRUE(installed_) << setup_log_;
    const Shell removed = dpkg("-r mqttd");
    ASSERT_EQ(removed.status, 0) << removed.out;
    EXPECT_FALSE(fs::exists("/usr/sbin/mqttd"));
    EXPECT_FALSE(fs::exists("/lib/systemd/system/mqttd.service"));
    EXPECT_TRUE(fs::exists("/etc/mqttd/mqttd.conf")) << "conffiles stay until purge";
    EXPECT_TRUE(fs::exists(kMarker)) << "the data stays until purge";
    EXPECT_TRUE(user_exists("mqttd"));
    EXPECT_NE(sh("dpkg-query -W -f='${Status}' mqttd").out.find("config-files"), std::string::npos);

    const Shell purged = dpkg("--purge mqttd");
    ASSERT_EQ(purged.status, 0) << purged.out;
    EXPECT_FALSE(fs::exists("/etc/mqttd"));
    EXPECT_FALSE(fs::exists("/var/lib/mqttd"));
    EXPECT_FALSE(user_exists("mqttd"));
    EXPECT_FALSE(package_known());
}

}  // namespace
}  // namespace mqttd::itest
