// 41 The web dashboard (plugin emq_dashboard on dashboard.listener.http): its files with the
// right Content-Type and caching headers, 304 on a matching ETag, no way out of the docroot
// ("..", "%2e%2e", "%2f", absolute paths, symbolic links, hidden files), the REST API on the
// same origin without WWW-Authenticate, the `dashboard:http` row of monitoring/listeners, and
// the plugin really stopping and starting the listener (also when unloaded through the
// dashboard itself), durably across a restart. The browser test of the pages is
// tests/dashboard/dashboard_test.js (DashboardBrowser below).
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include <gtest/gtest.h>

#include "harness.h"
#include "http_client.h"

namespace mqttd::itest {
namespace {

using test::http;
using test::http_with_headers;
using Json = nlohmann::json;

constexpr const char* kNode = "mqttd@127.0.0.1";

// A docroot with a file of each type, a subdirectory, a hidden file and a link out of it; a
// secret beside it that must never be served.
struct Docroot {
    TempDir dir;
    std::string root = dir.path() + "/www";
    Docroot() {
        std::filesystem::create_directories(root + "/js");
        std::filesystem::create_directories(root + "/sub");
        std::ofstream(root + "/index.html") << "<!doctype html><title>index-marker</title>";
        std::ofstream(root + "/style.css") << "body{}";
        std::ofstream(root + "/js/app.js") << "export const x = 1;";
        std::ofstream(root + "/favicon.svg") << "<svg/>";
        std::ofstream(root + "/data.json") << "{}";
        std::ofstream(root + "/blob") << "raw";
        std::ofstream(root + "/sub/index.html") << "sub-marker";
        std::ofstream(root + "/.hidden") << "hidden-marker";
        std::ofstream(dir.path() + "/secret.txt") << "secret-marker";
        std::filesystem::create_symlink(dir.path() + "/secret.txt", root + "/link.txt");
    }
};

class Dashboard : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        docroot_ = new Docroot();
        dash_port_ = free_port();
        broker_ = new BrokerProcess(
                {"dashboard.listener.http=127.0.0.1:" + std::to_string(dash_port_),
                 "dashboard.docroot=" + docroot_->root});
    }
    static void TearDownTestSuite() {
        delete broker_;
        delete docroot_;
    }
    void SetUp() override { ASSERT_TRUE(broker_->running()) << broker_->log_text(); }

    static test::HttpReply get(const std::string& path, const std::string& headers = "") {
        return http_with_headers(dash_port_, "GET", path, headers);
    }
    static Json plugin_active(bool active) {
        return http(broker_->api_port(), "PUT",
                    std::string("/api/v2/nodes/") + kNode + "/plugins/emq_dashboard",
                    active ? R"({"active":true})" : R"({"active":false})")
                .json();
    }
    static bool listed() {
        auto r = http(broker_->api_port(), "GET", "/api/v2/monitoring/listeners").json();
        for (const auto& l : r["result"][kNode]) {
            if (l["protocol"] == "dashboard:http") {
                return l["listen"] == "127.0.0.1:" + std::to_string(dash_port_);
            }
        }
        return false;
    }
    // Polls until GET / answers (or not), up to `tries` x 50 ms.
    static bool serving_becomes(bool want, int tries = 100) {
        for (int i = 0; i < tries; ++i) {
            if ((get("/").status == 200) == want) {
                return true;
            }
            std::this_thread::sleep_for(50ms);
        }
        return false;
    }

    static Docroot* docroot_;
    static uint16_t dash_port_;
    static BrokerProcess* broker_;
};

Docroot* Dashboard::docroot_ = nullptr;
uint16_t Dashboard::dash_port_ = 0;
BrokerProcess* Dashboard::broker_ = nullptr;

TEST_F(Dashboard, ServesFilesWithTheirTypesAndCachingHeaders) {
    auto index = get("/");
    ASSERT_EQ(index.status, 200);
    EXPECT_NE(index.body.find("index-marker"), std::string::npos);
    EXPECT_EQ(index.header("content-type"), "text/html; charset=utf-8");
    EXPECT_NE(index.header("content-security-policy").find("default-src 'self'"),
              std::string::npos);
    EXPECT_EQ(get("/index.html").body, index.body);
    EXPECT_EQ(get("/sub/").body, "sub-marker");
    for (const auto& [path, type] : std::vector<std::pair<std::string, std::string>>{
                 {"/style.css", "text/css; charset=utf-8"},
                 {"/js/app.js", "text/javascript; charset=utf-8"},
                 {"/favicon.svg", "image/svg+xml"},
                 {"/data.json", "application/json"},
                 {"/blob", "application/octet-stream"}}) {
        auto r = get(path);
        EXPECT_EQ(r.status, 200) << path;
        EXPECT_EQ(r.header("content-type"), type) << path;
        EXPECT_EQ(r.header("cache-control"), "no-cache") << path;
        EXPECT_EQ(r.header("x-content-type-options"), "nosniff") << path;
        EXPECT_FALSE(r.header("etag").empty()) << path;
    }
    EXPECT_EQ(get("/js/app.js").body, "export const x = 1;");
    EXPECT_EQ(get("/js%2Fapp.js").status, 200);  // one decoding, then split: the same file
    EXPECT_EQ(get("/nope.js").status, 404);
    EXPECT_EQ(get("/js").status, 404);  // a directory without index.html: no listing
    EXPECT_EQ(http(dash_port_, "POST", "/index.html", "{}", "").status, 405);
}

TEST_F(Dashboard, AnswersNotModifiedWhileTheETagMatches) {
    auto first = get("/style.css");
    std::string tag = first.header("etag");
    ASSERT_FALSE(tag.empty());
    auto again = get("/style.css", "If-None-Match: " + tag + "\r\n");
    EXPECT_EQ(again.status, 304);
    EXPECT_EQ(again.body, "");
    EXPECT_EQ(get("/style.css", "If-None-Match: \"other\"\r\n").status, 200);
    std::this_thread::sleep_for(20ms);
    std::ofstream(docroot_->root + "/style.css") << "body{color:red}";
    auto changed = get("/style.css", "If-None-Match: " + tag + "\r\n");
    EXPECT_EQ(changed.status, 200);
    EXPECT_EQ(changed.body, "body{color:red}");
}

TEST_F(Dashboard, NeverServesAnythingOutsideItsDocroot) {
    for (const char* path :
         {"/../secret.txt", "/js/../../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E/secret.txt",
          "/js/%2e%2e/%2e%2e/secret.txt", "/..%2fsecret.txt", "/%2e%2e%2fsecret.txt",
          "/js/..%2f..%2fsecret.txt", "//etc/passwd", "/%2fetc/passwd", "/etc/passwd", "/link.txt",
          "/.hidden", "/./index.html", "/js/.", "/..", "/%00index.html", "/..\\secret.txt",
          "/js%5c..%5c..%5csecret.txt"}) {
        auto r = get(path);
        EXPECT_TRUE(r.status == 404 || r.status == 400) << path << " -> " << r.status;
        EXPECT_EQ(r.body.find("secret-marker"), std::string::npos) << path;
        EXPECT_EQ(r.body.find("hidden-marker"), std::string::npos) << path;
        EXPECT_EQ(r.body.find("root:"), std::string::npos) << path;
    }
    EXPECT_EQ(get("/%zz").status, 400);
    EXPECT_EQ(get("/index.html%").status, 400);
    // An absolute URI in the request line is not a way out either.
    auto abs = get("http://127.0.0.1/../secret.txt");
    EXPECT_EQ(abs.body.find("secret-marker"), std::string::npos);
}

TEST_F(Dashboard, ServesTheRestApiOnTheSameOriginWithoutTheBrowserDialog) {
    auto ok = http(dash_port_, "GET", "/api/v2/management/nodes");
    ASSERT_EQ(ok.status, 200);
    EXPECT_EQ(ok.json()["result"][0]["name"], kNode);
    EXPECT_EQ(ok.header("cache-control"), "no-store");
    auto denied = http(dash_port_, "GET", "/api/v2/management/nodes", "", "admin:wrong");
    EXPECT_EQ(denied.status, 401);
    EXPECT_EQ(denied.header("www-authenticate"), "");
    // The REST listener itself still asks for Basic credentials.
    EXPECT_EQ(http(broker_->api_port(), "GET", "/api/v2/management/nodes", "", "")
                      .header("www-authenticate"),
              "Basic realm=\"mqttd\"");
    auto login = http(dash_port_, "POST", "/api/v2/auth",
                      R"({"username":"admin","password":"public"})", "");
    EXPECT_EQ(login.json()["code"], 0);
    auto metrics = http(dash_port_, "GET", "/metrics");
    EXPECT_EQ(metrics.status, 200);
    EXPECT_NE(metrics.body.find("mqttd_store_write_duration_seconds_count"), std::string::npos);
}

TEST_F(Dashboard, PluginStopsAndStartsTheListenerDurably) {
    ASSERT_TRUE(listed());
    auto plugins =
            http(broker_->api_port(), "GET", std::string("/api/v2/nodes/") + kNode + "/plugins");
    bool found = false;
    Json list = plugins.json();  // (a range-for over a temporary's member would dangle)
    for (const auto& p : list["result"]) {
        if (p["name"] == "emq_dashboard") {
            found = true;
            EXPECT_EQ(p["active"], true);
            EXPECT_EQ(p["description"], "EMQ Web Dashboard");
        }
    }
    EXPECT_TRUE(found) << plugins.body;

    ASSERT_EQ(plugin_active(false)["code"], 0);
    EXPECT_EQ(get("/").status, 0);  // the REST call returned once the port was closed
    EXPECT_FALSE(listed());
    EXPECT_EQ(plugin_active(false)["code"], 111);

    broker_->restart();
    ASSERT_TRUE(broker_->running());
    EXPECT_FALSE(serving_becomes(true, 20)) << "unloaded is kept across a restart";
    EXPECT_FALSE(listed());

    ASSERT_EQ(plugin_active(true)["code"], 0);
    EXPECT_EQ(get("/").status, 200);
    EXPECT_TRUE(listed());

    // Unloaded through the dashboard's own /api/v2/: answered, then the port closes.
    auto self = http(dash_port_, "PUT",
                     std::string("/api/v2/nodes/") + kNode + "/plugins/emq_dashboard",
                     R"({"active":false})");
    EXPECT_EQ(self.status, 200);
    EXPECT_EQ(self.json()["code"], 0);
    EXPECT_TRUE(serving_becomes(false));
    EXPECT_FALSE(listed());
    ASSERT_EQ(plugin_active(true)["code"], 0);
    EXPECT_EQ(get("/").status, 200);
}

// What the pages need beyond the spec: the client search and the session delete.
TEST_F(Dashboard, SearchesClientsAndDeletesOfflineSessions) {
    const std::string port = std::to_string(broker_->port());
    std::vector<Child> subs;
    for (const auto& [id, user] : std::vector<std::pair<std::string, std::string>>{
                 {"search-a1", "alice"}, {"search-b1", "bob"}, {"other-1", "alice"}}) {
        subs.push_back(spawn_child({"mosquitto_sub", "-h", "127.0.0.1", "-p", port, "-i", id, "-u",
                                    user, "-t", "s/x"}));
    }
    const std::string base = std::string("/api/v2/nodes/") + kNode + "/clients?";
    auto ids = [&](const std::string& query) {
        Json j = http(broker_->api_port(), "GET", base + query).json();
        std::set<std::string> out;
        for (const auto& c : j["result"]["objects"]) {
            out.insert(c["client_id"].get<std::string>());
        }
        EXPECT_EQ(j["result"]["total_num"], out.size()) << query;
        return out;
    };
    ASSERT_TRUE(eventually([&] { return ids("").size() >= 3; }));
    EXPECT_EQ(ids("clientid=search-"), (std::set<std::string>{"search-a1", "search-b1"}));
    EXPECT_EQ(ids("username=alice"), (std::set<std::string>{"search-a1", "other-1"}));
    EXPECT_EQ(ids("clientid=search-&username=alice"), (std::set<std::string>{"search-a1"}));
    EXPECT_EQ(ids("clientid=nobody"), std::set<std::string>{});
    Json first = http(broker_->api_port(), "GET", base + "clientid=search-&page_size=1").json();
    ASSERT_EQ(first["result"]["objects"].size(), 1u);
    EXPECT_EQ(first["result"]["total_num"], 2);
    std::string cursor = first["result"]["cursor"];
    ASSERT_FALSE(cursor.empty());
    Json second = http(broker_->api_port(), "GET",
                       base + "clientid=search-&page_size=1&cursor=" + test::url_encode(cursor))
                          .json();
    ASSERT_EQ(second["result"]["objects"].size(), 1u);
    EXPECT_NE(second["result"]["objects"][0]["client_id"],
              first["result"]["objects"][0]["client_id"]);
    Json detail = http(broker_->api_port(), "GET", "/api/v2/clients/search-a1").json();
    EXPECT_EQ(detail["result"]["objects"][0]["will"], nullptr);

    // A connected client's session is not deleted; an offline one is, with its subscriptions.
    auto del = [&](const std::string& id) {
        return http(broker_->api_port(), "DELETE", "/api/v2/sessions/" + id).json()["code"];
    };
    EXPECT_EQ(del("search-a1"), 108);
    MosqClient keep("persist-1", false);
    ASSERT_EQ(keep.connect(broker_->port()), 0);
    keep.subscribe("p/#", 1);
    keep.disconnect();
    ASSERT_TRUE(eventually([&] {
        return rest_get(broker_->api_port(), "sessions/persist-1").find(R"("online":false)") !=
               std::string::npos;
    }));
    EXPECT_EQ(del("persist-1"), 0);
    EXPECT_EQ(rest_get(broker_->api_port(), "sessions/persist-1").find("persist-1"),
              std::string::npos);
    EXPECT_EQ(rest_get(broker_->api_port(), "subscriptions/persist-1").find("p/#"),
              std::string::npos);
    EXPECT_EQ(del("persist-1"), 112);
    for (auto& c : subs) {
        finish_child(c, 100ms);
    }
}

// The shipped files, found beside the binary (the build tree's www link to data/www), with the
// dashboard on by default once a port is given.
TEST(DashboardFiles, ServesTheShippedPagesFromBesideTheBinary) {
    uint16_t port = free_port();
    BrokerProcess b({"dashboard.listener.http=127.0.0.1:" + std::to_string(port)});
    ASSERT_TRUE(b.running());
    auto index = http(port, "GET", "/", "", "");
    ASSERT_EQ(index.status, 200) << b.log_text();
    EXPECT_NE(index.body.find("js/app.js"), std::string::npos);
    for (const char* f : {"/js/app.js", "/js/api.js", "/js/pages.js", "/js/ui.js", "/js/chart.js",
                          "/js/mqtt_ws.js", "/style.css", "/favicon.svg"}) {
        EXPECT_EQ(http(port, "GET", f, "", "").status, 200) << f;
    }
    EXPECT_EQ(http(port, "GET", "/../mqttd.conf", "", "").status, 404);
    EXPECT_EQ(http(port, "GET", "/%2e%2e/mqttd.conf", "", "").status, 404);
}

// A port taken by someone else stops startup with one line, as for the REST API.
TEST(DashboardFiles, ABusyPortStopsStartupWithOneLine) {
    uint16_t port = free_port();
    BrokerProcess first({"dashboard.listener.http=127.0.0.1:" + std::to_string(port)});
    ASSERT_TRUE(first.running());
    BrokerProcess second({"dashboard.listener.http=127.0.0.1:" + std::to_string(port)}, false);
    EXPECT_NE(second.run_until_exit(), 0);
    EXPECT_NE(second.last_output().find("dashboard: cannot listen on 127.0.0.1:" +
                                        std::to_string(port)),
              std::string::npos)
            << second.last_output();
}

// The pages in a real browser (tests/dashboard/dashboard_test.js: playwright-core driving
// Debian's chromium headless), against this broker and a mosquitto_sub client. Screenshots go
// to <build>/test-output/dashboard/.
TEST(DashboardBrowser, LogsInAndDrivesEveryPage) {
    const std::string dir = std::string(MQTTD_SOURCE_DIR) + "/tests/dashboard";
    ASSERT_EQ(run_command({"test", "-d", dir + "/node_modules/playwright-core"}, 5s).first, 0)
            << "playwright-core is not installed: run .ci/setup test (npm ci in " << dir << ")";
    const std::string chromium = "/usr/bin/chromium";
    ASSERT_EQ(run_command({"test", "-x", chromium}, 5s).first, 0)
            << "chromium is not installed: run .ci/setup test (apt-get install chromium)";
    uint16_t port = free_port();
    uint16_t ws = free_port();
    BrokerProcess b({"dashboard.listener.http=127.0.0.1:" + std::to_string(port),
                     "listener.ws.external=127.0.0.1:" + std::to_string(ws)});
    ASSERT_TRUE(b.running());
    const std::string client = num("dashsub-", ::getpid());
    // -d: its debug lines show each CONNECT (it reconnects after the kick).
    Child sub = spawn_child({"mosquitto_sub", "-d", "-h", "127.0.0.1", "-p",
                             std::to_string(b.port()), "-i", client, "-t", "dash/#", "-q", "1",
                             "--will-topic", "dash/will", "--will-payload", "gone"});
    ASSERT_TRUE(eventually([&] {
        return rest_get(b.api_port(), "clients/" + client).find(client) != std::string::npos;
    }));
    const std::string out =
            (std::filesystem::path(mqttd_binary()).parent_path() / "test-output" / "dashboard")
                    .string();
    std::filesystem::remove_all(out);
    Json cfg{{"url", "http://127.0.0.1:" + std::to_string(port) + "/"},
             {"chromium", chromium},
             {"out", out},
             {"client", client},
             {"ws", true}};
    auto [rc, output] = run_command({"node", dir + "/dashboard_test.js", cfg.dump()}, 120s);
    EXPECT_EQ(rc, 0) << output;
    size_t last_line = output.rfind("\n{");
    Json summary = Json::parse(
            last_line == std::string::npos ? output : output.substr(last_line + 1), nullptr, false);
    EXPECT_EQ(summary["problems"], Json::array()) << output;
    size_t shots = 0;
    for (const auto& e : std::filesystem::directory_iterator(out)) {
        shots += e.path().extension() == ".png" && e.file_size() > 1000 ? 1 : 0;
    }
    EXPECT_EQ(shots, 15u) << output;
    // What the pages did, seen through the REST API.
    auto retained = rest_get(b.api_port(), "retained/dash/retained");
    EXPECT_NE(retained.find("hello from the dashboard"), std::string::npos) << retained;
    EXPECT_NE(rest_get(b.api_port(), "configs").find(R"("value":"30")"), std::string::npos);
    EXPECT_EQ(rest_get(b.api_port(), "users").find(R"("ops")"), std::string::npos);
    std::string sub_out = finish_child(sub);
    size_t connects = 0;
    for (size_t at = sub_out.find("sending CONNECT"); at != std::string::npos;
         at = sub_out.find("sending CONNECT", at + 1)) {
        ++connects;
    }
    EXPECT_GE(connects, 2u) << "the kick did not disconnect mosquitto_sub:\n" << sub_out;
    EXPECT_NE(sub_out.find("hello from the dashboard"), std::string::npos) << sub_out;
}

}  // namespace
}  // namespace mqttd::itest
