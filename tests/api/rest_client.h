// Test helpers for the REST API suite: the real mqttd binary in a child process (temp data
// dir, free ports, empty config file), a blocking HTTP/1.1 client over a POSIX socket, and a
// libmosquitto client with a queue of received messages. Independent of the code under test.
// Thread-safety: each object belongs to the test thread that made it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <sys/types.h>

#include <nlohmann/json.hpp>

struct mosquitto;
struct mosquitto_message;

namespace mqttd::rest_test {

using Json = nlohmann::json;
using namespace std::chrono_literals;

uint16_t free_port();

struct HttpReply {
    int status = 0;
    std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
    std::string body;
    Json json() const { return Json::parse(body, nullptr, false); }
    std::string header(const std::string& lower_name) const;
};

// Sends one request on a fresh connection ("Connection: close") and reads the whole reply.
// `auth` is "user:password" or empty for none.
HttpReply http(uint16_t port,
               const std::string& method,
               const std::string& path,
               const std::string& body = "",
               const std::string& auth = "admin:public");

class Broker {
public:
    Broker();
    ~Broker();
    Broker(const Broker&) = delete;
    Broker& operator=(const Broker&) = delete;

    // Starts mqttd and waits until the API port answers; false on timeout.
    bool start();
    void stop();
    uint16_t mqtt_port() const { return mqtt_port_; }
    uint16_t api_port() const { return api_port_; }
    const std::string& dir() const { return dir_; }
    std::string log() const;

    // Shortcuts with admin:public.
    Json get(const std::string& path) const;
    Json call(const std::string& method, const std::string& path, const std::string& body) const;

private:
    std::string dir_;
    uint16_t mqtt_port_ = 0;
    uint16_t api_port_ = 0;
    pid_t pid_ = -1;
};

class Mqtt {
public:
    explicit Mqtt(const std::string& client_id, bool clean = true);
    ~Mqtt();
    Mqtt(const Mqtt&) = delete;
    Mqtt& operator=(const Mqtt&) = delete;

    void will(const std::string& topic, const std::string& payload);
    void credentials(const std::string& user, const std::string& password);
    // CONNACK return code, -1 on timeout or a closed connection.
    int connect(uint16_t port);
    bool subscribe(const std::string& filter, int qos);
    bool publish(const std::string& topic, const std::string& payload, int qos, bool retain);
    std::optional<std::pair<std::string, std::string>> wait_message(
            std::chrono::milliseconds timeout = 5000ms);
    bool wait_disconnected(std::chrono::milliseconds timeout = 5000ms);
    void disconnect();

private:
    static void on_connect(mosquitto*, void*, int);
    static void on_disconnect(mosquitto*, void*, int);
    static void on_message(mosquitto*, void*, const mosquitto_message*);
    static void on_subscribe(mosquitto*, void*, int, int, const int*);
    static void on_publish(mosquitto*, void*, int);

    mosquitto* m_ = nullptr;
    bool looping_ = false;
    std::mutex mu_;
    std::condition_variable cv_;
    int rc_ = -1;
    bool connected_ = false;
    bool disconnected_ = false;
    int subacks_ = 0;
    int pubacks_ = 0;
    std::deque<std::pair<std::string, std::string>> messages_;
};

}  // namespace mqttd::rest_test
