// 52 REST logins under attack (issue 16): failed Basic-auth attempts are limited per source
// address (api/login_limiter.h): past the budget a source gets 429 with Retry-After and no
// password is hashed, its right password included, until the budget refills; another address
// still logs in; one warning per source; the counters are in monitoring/metrics. Loopback
// 127.0.0.2 is a second source address (the API listens on 127.0.0.1).
#include <string>
#include <thread>
#include <utility>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness.h"

namespace mqttd::itest {
namespace {

struct Answer {
    int status = 0;
    std::string retry_after;
};

// GET api/v2/management/nodes as `user:password` from the source address `from`.
Answer get_as(uint16_t api_port, const std::string& from, const std::string& credentials) {
    auto [rc, out] = run_command(
            {"curl", "-s", "-m", "5", "-o", "/dev/null", "--interface", from, "-u", credentials,
             "-w", "%{http_code} %header{retry-after}",
             "http://127.0.0.1:" + std::to_string(api_port) + "/api/v2/management/nodes"},
            8s);
    EXPECT_EQ(rc, 0) << out;
    Answer a;
    const size_t sp = out.find(' ');
    a.status = std::atoi(out.substr(0, sp).c_str());
    if (sp != std::string::npos) {
        a.retry_after = out.substr(sp + 1);
    }
    return a;
}

size_t count_of(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
        ++n;
    }
    return n;
}

TEST(RestLogins, WrongPasswordsFromOneAddressAreThrottledOthersAreNot) {
    BrokerProcess broker;
    const uint16_t api = broker.api_port();
    ASSERT_EQ(get_as(api, "127.0.0.1", "admin:public").status, 200);

    // The budget: 10 failures at once (then one a second). Each is a 401.
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
    EXPECT_LE(unauthorized, 12) << "a little refill during the run, no more";
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

}  // namespace
}  // namespace mqttd::itest
