// The broker launcher and MQTT clients of every test that needs a broker (tests/integration,
// the benchmarks' helpers): runs the real mqttd binary (MQTTD_BINARY) in a child process and
// drives it with clients that are independent of the code under test:
//   * BrokerProcess -- free ports, a temp data dir kept across restarts, fork/exec, readiness
//     wait, stderr captured to a file (printed when the test fails), SIGTERM / SIGKILL.
//   * RawClient     -- a blocking TCP socket with poll() timeouts; packets are built byte by
//     byte here (namespace pkt), never with the broker's encoder, so a codec bug cannot hide
//     itself.
//   * MosqClient    -- libmosquitto (a mainstream client library) with its own network thread;
//     received messages are queued for the test thread.
//   * run_command   -- runs mosquitto_pub / mosquitto_sub and captures their stdout.
// Thread-safety: every object belongs to the test thread that made it, except where a comment
// says otherwise (BrokerProcess::kill9 may be called from a second thread).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <sys/types.h>

#include "sockets.h"
#include "temp_dir.h"

struct mosquitto;
struct mosquitto_message;

namespace mqttd::itest {

using Bytes = std::vector<uint8_t>;
using namespace std::chrono_literals;

// Default wait for a packet that must arrive; generous because the suite runs in parallel with
// builds on a shared machine.
inline constexpr std::chrono::milliseconds kWait{5000};
// Wait used to check that nothing arrives.
inline constexpr std::chrono::milliseconds kQuiet{400};

// prefix + decimal n. Out of line: GCC 12 at -O3 warns (-Wrestrict, a false positive) on
// `"literal" + std::to_string(n)`.
std::string num(std::string_view prefix, long long n);
// How many times `what` occurs in `text` (overlaps counted), e.g. a line in a broker's log.
size_t count_of(const std::string& text, const std::string& what);

using test::free_port;  // tests/support/sockets.h
using test::TempDir;    // tests/support/temp_dir.h

// One mqttd child process. The data directory and the ports stay the same across restart().
// On destruction the broker is stopped (SIGTERM, then SIGKILL after a grace period) and, if the
// current test has failed, its stderr log is printed.
class BrokerProcess {
public:
    // `sets` are extra KEY=VALUE pairs passed as --set; they override the harness defaults
    // (short timeouts, storage.sync=false, two workers).
    explicit BrokerProcess(std::vector<std::string> sets = {}, bool start_now = true);
    ~BrokerProcess();
    BrokerProcess(const BrokerProcess&) = delete;
    BrokerProcess& operator=(const BrokerProcess&) = delete;

    // Starts the process and waits (10 s) until the MQTT port accepts connections; a failure
    // is a fatal gtest failure (check with ASSERT_NO_FATAL_FAILURE or HasFatalFailure()).
    void start();
    // Starts the process and waits for it to exit on its own (a refused start); returns its
    // exit code (128 + signal when killed by one), -1 on a timeout (then it is killed).
    int run_until_exit(std::chrono::milliseconds timeout = std::chrono::seconds(20));
    // Sends `sig` to the process (no wait).
    void signal(int sig);
    // Waits for the process to exit; its exit code as run_until_exit's.
    int wait_exit(std::chrono::milliseconds timeout = std::chrono::seconds(20));
    // What the last start wrote to stderr.
    std::string last_output() const;
    // Extra command-line arguments (after --data-dir, before the --set pairs) for later starts,
    // e.g. {"--recover"}.
    void set_args(std::vector<std::string> args) { args_ = std::move(args); }
    // One more --set pair for later starts (after the others: it wins).
    void add_set(std::string key_value) { sets_.push_back(std::move(key_value)); }
    // SIGTERM and wait; returns the exit status (as from waitpid) or -1 if it was not running.
    int stop();
    // SIGKILL and wait. Safe to call from another thread while the test thread publishes.
    void kill9();
    void restart() {
        stop();
        start();
    }
    bool running() const { return pid_.load() > 0; }
    // True if the child has exited on its own (crash); reaps it.
    bool exited();

    uint16_t port() const { return port_; }
    uint16_t api_port() const { return api_port_; }
    uint16_t cluster_port() const { return cluster_port_; }  // cluster.listener
    pid_t pid() const { return pid_.load(); }
    const std::string& data_dir() const { return data_dir_.path(); }
    std::string log_text() const;
    // VmRSS of the broker in KiB, from /proc/<pid>/status (0 if unknown).
    long rss_kb() const;
    // Number of times the binary has been started by this object.
    int starts() const { return starts_; }

private:
    void launch();

    TempDir data_dir_;
    std::vector<std::string> sets_;
    std::vector<std::string> args_;
    size_t log_offset_ = 0;
    uint16_t port_ = 0;
    uint16_t api_port_ = 0;
    uint16_t cluster_port_ = 0;
    std::string config_path_;
    std::string log_path_;
    std::atomic<pid_t> pid_{-1};
    std::mutex reap_mutex_;
    int starts_ = 0;
};

// One MQTT control packet as read from the wire.
struct Packet {
    uint8_t header = 0;  // first byte: type << 4 | flags
    Bytes body;          // variable header + payload
    uint8_t type() const { return static_cast<uint8_t>(header >> 4); }
    uint8_t flags() const { return static_cast<uint8_t>(header & 0x0f); }
};

// Packet type numbers (MQTT 3.1.1 section 2.2.1).
enum PacketType : uint8_t {
    kConnect = 1,
    kConnack = 2,
    kPublish = 3,
    kPuback = 4,
    kPubrec = 5,
    kPubrel = 6,
    kPubcomp = 7,
    kSubscribe = 8,
    kSuback = 9,
    kUnsubscribe = 10,
    kUnsuback = 11,
    kPingreq = 12,
    kPingresp = 13,
    kDisconnect = 14,
};

const char* packet_type_name(uint8_t type);
std::string describe(const Packet& p);

// A decoded PUBLISH as the broker sent it.
struct Publish {
    std::string topic;
    std::string payload;
    uint8_t qos = 0;
    bool retain = false;
    bool dup = false;
    uint16_t packet_id = 0;
};
// REQUIRES: p.type() == kPublish. A malformed packet is a gtest failure; the result is empty.
Publish parse_publish(const Packet& p);
// The 16-bit id at the start of the body (PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK).
uint16_t packet_id_of(const Packet& p);

// Packet builders. They encode by hand (remaining length, UTF-8 length prefixes), independent
// of src/mqtt.
namespace pkt {

struct Will {
    std::string topic;
    std::string payload;
    uint8_t qos = 0;
    bool retain = false;
};

struct ConnectOptions {
    std::string client_id;
    bool clean_session = true;
    uint16_t keepalive = 60;
    uint8_t level = 4;                         // 3 = MQTT 3.1 ("MQIsdp"), 4 = MQTT 3.1.1 ("MQTT")
    std::optional<std::string> protocol_name;  // default from level
    std::optional<Will> will;
    std::optional<std::string> username;
    std::optional<std::string> password;
    uint8_t extra_flags = 0;  // OR-ed into the connect flags (e.g. 0x01, the reserved bit)
};

void put_u16(Bytes& out, uint16_t v);
void put_str(Bytes& out, std::string_view s);
void put_remaining_length(Bytes& out, size_t len);
// Fixed header (type/flags byte + remaining length) followed by `body`.
Bytes frame(uint8_t header, const Bytes& body);

Bytes connect(const ConnectOptions& o);
Bytes publish(std::string_view topic,
              std::string_view payload,
              uint8_t qos = 0,
              uint16_t packet_id = 0,
              bool retain = false,
              bool dup = false);
Bytes puback(uint16_t id);
Bytes pubrec(uint16_t id);
Bytes pubrel(uint16_t id);
Bytes pubcomp(uint16_t id);
Bytes subscribe(uint16_t id, const std::vector<std::pair<std::string, uint8_t>>& filters);
Bytes unsubscribe(uint16_t id, const std::vector<std::string>& filters);
Bytes pingreq();
Bytes disconnect();

}  // namespace pkt

// A blocking MQTT client over a raw TCP socket, for protocol-level checks.
class RawClient {
public:
    RawClient() = default;
    explicit RawClient(uint16_t port) { open(port); }
    ~RawClient();
    RawClient(const RawClient&) = delete;
    RawClient& operator=(const RawClient&) = delete;

    // Connects the socket (no MQTT); a failure is a gtest failure and returns false.
    bool open(uint16_t port);
    void close();
    bool is_open() const { return fd_ >= 0; }
    // Abortive close (RST), as a crashed client would.
    void abort();

    // Sends all bytes; returns false if the peer has closed the connection.
    bool send(const Bytes& bytes);
    bool send(std::string_view bytes);

    // Reads one packet within `timeout`; nullopt on timeout, close or a malformed frame. `closed`
    // tells which: true if the peer closed (EOF or reset).
    std::optional<Packet> read(std::chrono::milliseconds timeout = kWait);
    // Like read(), but first returns the PUBLISH packets kept in early() by the helpers below.
    std::optional<Packet> next(std::chrono::milliseconds timeout = kWait);
    bool closed() const { return closed_; }
    // True if the connection is closed by the peer within `timeout`; packets that arrive
    // before the close are skipped (and counted in `skipped`).
    bool wait_closed(std::chrono::milliseconds timeout = kWait, int* skipped = nullptr);
    // Expects that no packet arrives for `quiet`; a packet is a gtest failure.
    void expect_silence(std::chrono::milliseconds quiet = kQuiet);
    // Raw bytes (an HTTP answer, WebSocket frames): reads until `want` bytes are buffered,
    // the peer closes or `timeout` passes, and returns (and takes) what is buffered.
    std::string read_raw(size_t want, std::chrono::milliseconds timeout = kWait);

    // ---- MQTT level helpers; every mismatch is a gtest failure ----
    // Sends CONNECT and reads CONNACK; returns {session_present, return_code} or nullopt.
    std::optional<std::pair<bool, uint8_t>> connect(const pkt::ConnectOptions& o);
    // connect() on a fresh socket and expect return code 0; returns session present.
    bool connect_ok(uint16_t port,
                    const std::string& client_id,
                    bool clean = true,
                    uint16_t keepalive = 60);
    // SUBSCRIBE and read SUBACK: returns the granted return codes. Publishes that arrive first
    // (retained ones are allowed to) are kept in `early`.
    std::vector<uint8_t> subscribe(const std::vector<std::pair<std::string, uint8_t>>& filters,
                                   uint16_t id = 0);
    std::vector<uint8_t> subscribe(const std::string& filter, uint8_t qos, uint16_t id = 0) {
        return subscribe({{filter, qos}}, id);
    }
    void unsubscribe(const std::vector<std::string>& filters, uint16_t id = 0);
    // Publishes and completes the QoS flow (PUBACK, or PUBREC/PUBREL/PUBCOMP).
    void publish(const std::string& topic,
                 const std::string& payload,
                 uint8_t qos = 0,
                 bool retain = false);
    // Reads the next PUBLISH (after anything kept in `early`); other packets are a failure.
    std::optional<Publish> expect_publish(std::chrono::milliseconds timeout = kWait);
    // expect_publish + the acknowledgement (PUBACK, or PUBREC then PUBREL/PUBCOMP).
    std::optional<Publish> receive_and_ack(std::chrono::milliseconds timeout = kWait);
    void ack(const Publish& p);
    void disconnect();

    uint16_t next_id() {
        next_id_ = static_cast<uint16_t>(next_id_ % 65535 + 1);
        return next_id_;
    }
    std::deque<Packet>& early() { return early_; }

private:
    int fd_ = -1;
    bool closed_ = false;
    Bytes buf_;
    uint16_t next_id_ = 0;
    std::deque<Packet> early_;
};

// libmosquitto client with a background network thread (mosquitto_loop_start). Callbacks run
// on that thread and fill queues guarded by mutex_; the wait_* calls run on the test thread.
class MosqClient {
public:
    explicit MosqClient(const std::string& client_id,
                        bool clean_session = true,
                        int protocol = 4);  // 3 = MQTT 3.1, 4 = MQTT 3.1.1
    ~MosqClient();
    MosqClient(const MosqClient&) = delete;
    MosqClient& operator=(const MosqClient&) = delete;

    void set_will(const std::string& topic, const std::string& payload, int qos, bool retain);
    // Connects and waits for CONNACK; returns the return code (-1 on timeout).
    int connect(uint16_t port, int keepalive = 30);
    bool session_present() const { return session_present_; }
    // Subscribes and waits for SUBACK; returns the granted QoS list.
    std::vector<int> subscribe(const std::string& filter, int qos);
    // Publishes and waits until the library reports it sent/acknowledged (on_publish).
    bool publish(const std::string& topic,
                 const std::string& payload,
                 int qos,
                 bool retain = false);
    struct Message {
        std::string topic;
        std::string payload;
        int qos = 0;
        bool retain = false;
    };
    std::optional<Message> wait_message(std::chrono::milliseconds timeout = kWait);
    // True if on_disconnect fired within `timeout`.
    bool wait_disconnected(std::chrono::milliseconds timeout = kWait);
    void disconnect();

private:
    static void on_connect(mosquitto*, void*, int, int);
    static void on_disconnect(mosquitto*, void*, int);
    static void on_message(mosquitto*, void*, const mosquitto_message*);
    static void on_subscribe(mosquitto*, void*, int, int, const int*);
    static void on_publish(mosquitto*, void*, int);

    mosquitto* mosq_ = nullptr;
    bool loop_started_ = false;
    std::mutex mutex_;
    std::condition_variable cv_;
    int connack_rc_ = -1;
    bool session_present_ = false;
    bool disconnected_ = false;
    std::deque<Message> messages_;
    std::vector<std::pair<int, std::vector<int>>> subacks_;
    std::vector<int> published_;
};

// The mqttd binary under test.
const char* mqttd_binary();

// Runs argv (argv[0] searched in PATH) with a timeout; returns {exit status, stdout}. A
// process still running at the timeout gets SIGTERM (exit status -1).
std::pair<int, std::string> run_command(const std::vector<std::string>& argv,
                                        std::chrono::milliseconds timeout);
// Starts argv in the background with stdout to a pipe; read_child_output collects it after
// terminate_child (SIGTERM + wait).
struct Child {
    pid_t pid = -1;
    int out_fd = -1;
    int status = -1;
    bool reaped = false;
};
Child spawn_child(const std::vector<std::string>& argv);
// True if the child has exited (reaps it; the exit status is kept in `status`).
bool child_exited(Child& c);
// Reads the child's stdout until it exits or `timeout` passes (then SIGTERM), reaps it and
// returns the output.
std::string finish_child(Child& c, std::chrono::milliseconds timeout = 2000ms);

// GET http://127.0.0.1:port/api/v2/PATH as admin:public (curl); the body, "" on failure.
std::string rest_get(uint16_t api_port, const std::string& path);

// Polls `pred` every 20 ms until it holds or `timeout` passes.
template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = kWait) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (pred()) {
            return true;
        }
        std::this_thread::sleep_for(20ms);
    }
    return pred();
}

}  // namespace mqttd::itest
