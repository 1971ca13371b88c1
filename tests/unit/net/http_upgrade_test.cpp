#include "net/http_upgrade.h"

#include <gtest/gtest.h>

namespace mqttd::net {
namespace {

using Status = UpgradeResult::Status;

std::string request(const std::string& extra, const std::string& path = "/mqtt") {
    return "GET " + path +
           " HTTP/1.1\r\nHost: h\r\nupgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
           extra + "\r\n";
}

TEST(HttpUpgrade, AcceptsAndEchoesTheFirstMqttSubprotocol) {
    auto r = parse_upgrade(request("Sec-WebSocket-Protocol: chat, mqttv3.1, mqtt\r\n") + "XY",
                           "/mqtt");
    ASSERT_EQ(r.status, Status::Accept) << r.reason;
    EXPECT_EQ(r.subprotocol, "mqttv3.1");
    EXPECT_EQ(r.consumed, request("Sec-WebSocket-Protocol: chat, mqttv3.1, mqtt\r\n").size());
    // RFC 6455 section 1.3's example key.
    EXPECT_EQ(websocket_accept(r.key), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    std::string answer = upgrade_response(r);
    EXPECT_EQ(answer.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0), 0u);
    EXPECT_NE(answer.find("Sec-WebSocket-Protocol: mqttv3.1\r\n"), std::string::npos);
    // Repeated headers are joined; the query is not part of the path.
    r = parse_upgrade(request("Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: mqtt\r\n",
                              "/mqtt?x=1"),
                      "/mqtt");
    ASSERT_EQ(r.status, Status::Accept) << r.reason;
    EXPECT_EQ(r.subprotocol, "mqtt");
}

TEST(HttpUpgrade, NeedsMoreUntilTheBlankLineAndRefusesPastTheBound) {
    std::string full = request("Sec-WebSocket-Protocol: mqtt\r\n");
    for (size_t n = 0; n < full.size(); ++n) {
        EXPECT_EQ(parse_upgrade(full.substr(0, n), "/mqtt").status, Status::NeedMore) << n;
    }
    std::string huge = "GET /mqtt HTTP/1.1\r\n" + std::string(kMaxUpgradeRequest, 'x');
    auto r = parse_upgrade(huge, "/mqtt");
    EXPECT_EQ(r.status, Status::Refuse);
    EXPECT_EQ(r.http_status, 431);
}

TEST(HttpUpgrade, RefusesWhatIsNotAnMqttWebSocketUpgrade) {
    auto status = [](const std::string& req, const std::string& path = "/mqtt") {
        auto r = parse_upgrade(req, path);
        return r.status == Status::Refuse ? r.http_status : 0;
    };
    EXPECT_EQ(status(request("")), 400);  // no subprotocol
    EXPECT_EQ(status(request("Sec-WebSocket-Protocol: chat\r\n")), 400);
    EXPECT_EQ(status(request("Sec-WebSocket-Protocol: mqtt\r\n", "/other")), 404);
    EXPECT_EQ(status("POST /mqtt HTTP/1.1\r\n\r\n"), 400);
    EXPECT_EQ(status("garbage\r\n\r\n"), 400);
    EXPECT_EQ(status("GET /mqtt HTTP/1.1\r\nno colon here\r\n\r\n"), 400);
    std::string v8 = request("Sec-WebSocket-Protocol: mqtt\r\n");
    v8.replace(v8.find("Version: 13"), 11, "Version: 8");
    auto r = parse_upgrade(v8, "/mqtt");
    EXPECT_EQ(r.http_status, 426);
    EXPECT_NE(refusal_response(r).find("Sec-WebSocket-Version: 13"), std::string::npos);
}

}  // namespace
}  // namespace mqttd::net
