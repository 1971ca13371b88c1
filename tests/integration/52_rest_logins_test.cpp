// 52 REST logins under attack (issue 16): failed Basic-auth attempts are limited per source
// address (api/login_limiter.h): past the budget a source gets 429 with Retry-After and no
// password is hashed, its right password included, until the budget refills; another address
// still logs in; one warning per source; the counters are in monitoring/metrics. Failed and
// refused logins are answered late (api.auth.failure_delay_ms, the tarpit in
// api/pistache_glue.h) with Connection: close, while the right password from another address
// is answered at once; the limiter's keys take effect; the REST threads run at api.nice.
// Loopback 127.0.0.2 is a second source address (the API listens on 127.0.0.1).
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <future>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <dirent.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness.h"

namespace mqttd::itest {
namespace {

struct Answer {
    int status = 0;
    std::string retry_after;
    std::string connection;  // the Connection header, lower case
    double seconds = 0;      // from sending the request to the end of the answer (curl's)
};

// GET api/v2/management/nodes as `user:password` from the source address `from`. The
// request asks for keep-alive, so "close" in the answer is the server's choice.
Answer get_as(uint16_t api_port, const std::string& from, const std::string& credentials) {
    auto [rc, out] = run_command(
            {"curl", "-s", "-m", "8", "-o", "/dev/null", "--interface", from, "-u", credentials,
             "-H", "Connection: keep-alive", "-w",
             "%{http_code} %{time_total} [%header{connection}] %header{retry-after}",
             "http://127.0.0.1:" + std::to_string(api_port) + "/api/v2/management/nodes"},
            10s);
    EXPECT_EQ(rc, 0) << out;
    Answer a;
    a.status = std::atoi(out.c_str());
    size_t sp = out.find(' ');
    if (sp == std::string::npos) {
        return a;
    }
    a.seconds = std::atof(out.c_str() + sp + 1);
    const size_t open = out.find('[', sp);
    const size_t close = out.find(']', open);
    if (open != std::string::npos && close != std::string::npos) {
        a.connection = out.substr(open + 1, close - open - 1);
        for (char& c : a.connection) {
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
        if (close + 2 <= out.size()) {
            a.retry_after = out.substr(close + 2);
        }
    }
    return a;
}

// Nice values of the broker's threads: name -> the nice value of each thread of that name.
std::multimap<std::string, int> thread_nice(pid_t pid) {
    std::multimap<std::string, int> out;
    const std::string dir = "/proc/" + std::to_string(pid) + "/task";
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) {
        return out;
    }
    while (dirent* e = readdir(d)) {
        if (e->d_name[0] == '.') {
            continue;
        }
        std::ifstream f(dir + "/" + e->d_name + "/stat");
        std::string text;
        std::getline(f, text);
        const size_t open = text.find('('), close = text.rfind(')');
        if (open == std::string::npos || close == std::string::npos) {
            continue;
        }
        // After "(name) ": state is field 3, nice field 19.
        std::vector<std::string> fields;
        size_t at = close + 2;
        while (at < text.size()) {
            size_t end = text.find(' ', at);
            fields.push_back(text.substr(at, end - at));
            at = end == std::string::npos ? text.size() : end + 1;
        }
        if (fields.size() > 16) {
            out.emplace(text.substr(open + 1, close - open - 1), std::atoi(fields[16].c_str()));
        }
    }
    closedir(d);
    return out;
}

TEST(RestLogins, WrongPasswordsFromOneAddressAreThrottledOthersAreNot) {
    // Answers at once, so that one client's sequential guesses outrun the refill; one token
    // back every 4 s, so that a loaded machine's pauses between requests do not refill one.
    BrokerProcess broker({"api.auth.failure_delay_ms=0", "api.auth.failure_refill_per_min=15"});
    const uint16_t api = broker.api_port();
    ASSERT_EQ(get_as(api, "127.0.0.1", "admin:public").status, 200);

    // The budget: 10 failures at once (then one every 4 s). Each is a 401.
    int unauthorized = 0;
    Answer a;
    for (int i = 0; i < 30; ++i) {
        a = get_as(api, "127.0.0.1", "admin:wrong" + std::to_string(i));
        if (a.status != 401) {
            break;
        }
        ++unauthorized;
    }
    EXPECT_GE(unauthorized, 10);
    EXPECT_LE(unauthorized, 11) << "a little refill during the run, no more";
    ASSERT_EQ(a.status, 429);
    EXPECT_GE(std::atoi(a.retry_after.c_str()), 1) << "Retry-After: " << a.retry_after;
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(get_as(api, "127.0.0.1", "admin:wrong").status, 429);
    }

    // Over budget, the right password is refused too; another address is not.
    const Answer right = get_as(api, "127.0.0.1", "admin:public");
    EXPECT_EQ(right.status, 429);
    EXPECT_FALSE(right.retry_after.empty());
    EXPECT_EQ(get_as(api, "127.0.0.2", "admin:public").status, 200);
    EXPECT_EQ(get_as(api, "127.0.0.2", "admin:wrong").status, 401);

    // Once the bucket has refilled, the right password gets in again.
    std::this_thread::sleep_for(std::chrono::seconds(std::atoi(right.retry_after.c_str()) + 1));
    EXPECT_EQ(get_as(api, "127.0.0.1", "admin:public").status, 200);

    // One warning for the source, however many refusals.
    EXPECT_EQ(count_of(broker.log_text(), "too many failed logins from 127.0.0.1"), 1u)
            << broker.log_text();
    EXPECT_EQ(count_of(broker.log_text(), "too many failed logins from 127.0.0.2"), 0u);

    auto metrics = nlohmann::json::parse(rest_get(api, "monitoring/metrics"), nullptr, false);
    ASSERT_TRUE(metrics.is_object());
    ASSERT_TRUE(metrics.contains("result"));
    const auto& m = metrics["result"];
    EXPECT_GE(m.value("api/auth/failed", 0), 11);
    EXPECT_GE(m.value("api/auth/throttled", 0), 7);
}

TEST(RestLogins, FailedAndRefusedLoginsAreAnsweredLateTheRightOneAtOnce) {
    BrokerProcess broker({"api.auth.failure_delay_ms=1500", "api.auth.failure_burst=2"});
    const uint16_t api = broker.api_port();

    // A wrong password: 401 after the delay, and the client is asked to close.
    const Answer wrong = get_as(api, "127.0.0.1", "admin:wrong");
    EXPECT_EQ(wrong.status, 401);
    EXPECT_GE(wrong.seconds, 1.4);
    EXPECT_EQ(wrong.connection, "close");

    // 12 at once from one address: its budget is gone after the first few, and the answers,
    // 401 and 429 alike, all come late. While they are held (no request thread waits with
    // them: the API has two), the right password from another address gets in at once.
    std::vector<std::future<Answer>> held;
    for (int i = 0; i < 12; ++i) {
        held.push_back(std::async(std::launch::async, [api, i] {
            return get_as(api, "127.0.0.1", "admin:wrong" + std::to_string(i));
        }));
    }
    std::this_thread::sleep_for(500ms);  // their password checks are over; the answers wait
    const Answer right = get_as(api, "127.0.0.2", "admin:public");
    EXPECT_EQ(right.status, 200);
    EXPECT_LT(right.seconds, 1.0) << "the right password waited behind the held answers";
    EXPECT_EQ(right.connection, "keep-alive");
    int refused = 0;
    for (auto& f : held) {
        const Answer a = f.get();
        EXPECT_TRUE(a.status == 401 || a.status == 429) << a.status;
        EXPECT_GE(a.seconds, 0.9) << a.status << " answered early";
        EXPECT_EQ(a.connection, "close");
        if (a.status == 429) {
            ++refused;
            EXPECT_EQ(a.retry_after, "1");
        }
    }
    EXPECT_GE(refused, 9) << "a budget of 2 (one was spent already), one more a second";
}

TEST(RestLogins, ARightPasswordWaitsItsTurnForAHashDuringABruteForceFromManyAddresses) {
    // Failures answered at once, so the attack keeps the one hash slot as busy as it can.
    BrokerProcess broker({"api.auth.failure_delay_ms=0"});
    const uint16_t api = broker.api_port();
    const std::string base = "http://127.0.0.1:" + std::to_string(api) + "/api/v2/";
    auto [rc, out] =
            run_command({"curl", "-s", "-m", "5", "-u", "admin:public", "-X", "POST", "-d",
                         R"({"username": "fresh", "password": "fresh-pw"})", base + "users"},
                        8s);
    ASSERT_EQ(rc, 0) << out;
    ASSERT_NE(out.find(R"("code":0)"), std::string::npos) << out;

    // 8 loops of wrong passwords, each request from another address 127.0.<k>.<i>.
    std::vector<std::future<std::pair<int, std::string>>> attack;
    for (int k = 1; k <= 8; ++k) {
        const std::string loop =
                "for i in $(seq 2 13); do curl -s -m 5 -o /dev/null --interface "
                "127.0." +
                std::to_string(k) + ".$i -u admin:wrong$i " + base + "management/nodes; done";
        attack.push_back(std::async(std::launch::async, [loop] {
            return run_command({"sh", "-c", loop}, 60s);
        }));
    }
    std::this_thread::sleep_for(1s);
    // Not cached yet, so it needs the hash slot the attack keeps taking; it waits for its turn
    // (api.auth.max_hash_wait_ms) instead of losing the race.
    const Answer right = get_as(api, "127.0.0.3", "fresh:fresh-pw");
    EXPECT_EQ(right.status, 200) << "retry-after " << right.retry_after;
    for (auto& f : attack) {
        f.get();
    }
    auto metrics = nlohmann::json::parse(rest_get(api, "monitoring/metrics"), nullptr, false);
    ASSERT_TRUE(metrics.is_object() && metrics.contains("result"));
    EXPECT_GE(metrics["result"].value("api/auth/failed", 0), 40) << "the attack did run";
}

TEST(RestLogins, ChangedLimiterKeysTakeEffect) {
    // A budget of 3, earned back once a minute, answered at once; no answer is held.
    BrokerProcess broker({"api.auth.failure_burst=3", "api.auth.failure_refill_per_min=1",
                          "api.auth.failure_delay_ms=5000", "api.auth.max_delayed=0",
                          "api.auth.max_concurrent_hashes=2"});
    const uint16_t api = broker.api_port();
    for (int i = 0; i < 3; ++i) {
        const Answer a = get_as(api, "127.0.0.1", "admin:wrong" + std::to_string(i));
        EXPECT_EQ(a.status, 401);
        EXPECT_LT(a.seconds, 4.0) << "held although api.auth.max_delayed = 0";
    }
    const Answer over = get_as(api, "127.0.0.1", "admin:wrong");
    EXPECT_EQ(over.status, 429);
    // One failure earned back a minute: the next try is about a minute away.
    EXPECT_GE(std::atoi(over.retry_after.c_str()), 50) << over.retry_after;
    EXPECT_LE(std::atoi(over.retry_after.c_str()), 60) << over.retry_after;
    EXPECT_LT(over.seconds, 4.0);
    EXPECT_EQ(get_as(api, "127.0.0.1", "admin:public").status, 429);
    EXPECT_EQ(get_as(api, "127.0.0.2", "admin:public").status, 200);
    EXPECT_NE(broker.log_text().find("too many failed logins from 127.0.0.1 (3 at once, then 1 a "
                                     "minute)"),
              std::string::npos)
            << broker.log_text();
}

TEST(RestLogins, RestThreadsRunAtApiNiceMqttWorkersDoNot) {
    BrokerProcess broker({"api.nice=7"});
    ASSERT_EQ(get_as(broker.api_port(), "127.0.0.1", "admin:public").status, 200);
    const auto threads = thread_nice(broker.pid());
    int rest = 0;
    for (const auto& [name, nice] : threads) {
        if (name.starts_with("mqttd-w") || name == "mqttd-commit") {
            EXPECT_EQ(nice, 0) << name;
        }
        if (name == "mqttd-rest") {
            EXPECT_EQ(nice, 7);
            ++rest;
        }
    }
    // Pistache's accept thread, its two reactor threads and the tarpit's.
    EXPECT_GE(rest, 4);
    EXPECT_GT(threads.size(), static_cast<size_t>(rest));

    BrokerProcess plain({"api.nice=0"});
    for (const auto& [name, nice] : thread_nice(plain.pid())) {
        EXPECT_EQ(nice, 0) << name;
    }
}

}  // namespace
}  // namespace mqttd::itest
