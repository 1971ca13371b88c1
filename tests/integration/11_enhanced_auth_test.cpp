// 11 MQTT 5 enhanced authentication (5.0 section 4.12) with SCRAM-SHA-256 (RFC 5802, RFC 7677)
// against emq_auth_username's users: the exchange on CONNECT, re-authentication, refusals.
// The client side of SCRAM is written here with OpenSSL's primitives, independent of the
// broker's code. One broker for the binary (user alice seeded, emq_auth_username started).
#include <optional>
#include <string>
#include <utility>

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "harness.h"
#include "mqtt5.h"

namespace mqttd::itest {
namespace {

using v5::Client5;
using v5::ConnectSpec;
using v5::Props;

std::string b64(std::string_view raw) {
    std::string out(4 * ((raw.size() + 2) / 3), '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(raw.data()),
                            static_cast<int>(raw.size()));
    out.resize(static_cast<size_t>(n));
    return out;
}

std::string unb64(std::string_view text) {
    std::string out(text.size() / 4 * 3, '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(text.data()),
                            static_cast<int>(text.size()));
    size_t pad = text.ends_with("==") ? 2 : text.ends_with("=") ? 1 : 0;
    out.resize(n < 0 ? 0 : static_cast<size_t>(n) - pad);
    return out;
}

std::string hmac(std::string_view key, std::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
    return std::string(reinterpret_cast<const char*>(out), len);
}

std::string sha256(std::string_view data) {
    unsigned char out[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out);
    return std::string(reinterpret_cast<const char*>(out), sizeof out);
}

// The value of attribute `key` in a SCRAM message "a=..,b=..".
std::string attr(std::string_view msg, char key) {
    size_t pos = 0;
    while (pos < msg.size()) {
        size_t comma = msg.find(',', pos);
        std::string_view a = msg.substr(pos, comma == msg.npos ? msg.npos : comma - pos);
        if (a.size() >= 2 && a[0] == key && a[1] == '=') {
            return std::string(a.substr(2));
        }
        if (comma == msg.npos) {
            break;
        }
        pos = comma + 1;
    }
    return {};
}

// The client's side of one exchange.
struct ScramClient {
    ScramClient(std::string u, std::string pw, std::string n = "fyko+d2lbbFgONRv9qkxdawL")
        : user(std::move(u)), password(std::move(pw)), nonce(std::move(n)) {}

    std::string user;
    std::string password;
    std::string nonce;
    std::string client_first_bare;
    std::string auth_message;
    std::string server_key;

    std::string first() {
        client_first_bare = "n=" + user + ",r=" + nonce;
        return "n,," + client_first_bare;
    }
    // The client-final message for `server_first`.
    std::string final(const std::string& server_first) {
        std::string salt = unb64(attr(server_first, 's'));
        int iterations = std::stoi(attr(server_first, 'i'));
        unsigned char salted[32];
        PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                          reinterpret_cast<const unsigned char*>(salt.data()),
                          static_cast<int>(salt.size()), iterations, EVP_sha256(), sizeof salted,
                          salted);
        std::string sp(reinterpret_cast<const char*>(salted), sizeof salted);
        std::string client_key = hmac(sp, "Client Key");
        server_key = hmac(sp, "Server Key");
        std::string without_proof = "c=biws,r=" + attr(server_first, 'r');
        auth_message = client_first_bare + "," + server_first + "," + without_proof;
        std::string signature = hmac(sha256(client_key), auth_message);
        std::string proof(client_key.size(), '\0');
        for (size_t i = 0; i < proof.size(); ++i) {
            proof[i] = static_cast<char>(client_key[i] ^ signature[i]);
        }
        return without_proof + ",p=" + b64(proof);
    }
    // Whether `server_final` proves the server knows the credential (mutual authentication).
    bool server_proved(std::string_view server_final) const {
        return server_final == "v=" + b64(hmac(server_key, auth_message));
    }
};

Props scram_props(const std::string& data) {
    return Props().str(v5::kAuthMethod, "SCRAM-SHA-256").str(v5::kAuthData, data);
}

class EnhancedAuth : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        broker_ = new BrokerProcess({"mqtt.allow_anonymous=false", "auth.user.1.username=alice",
                                     "auth.user.1.password=wonderland"});
        ASSERT_TRUE(broker_->running());
        std::string url = "http://127.0.0.1:" + std::to_string(broker_->api_port()) +
                          "/api/v2/nodes/mqttd@127.0.0.1/plugins/emq_auth_username";
        ASSERT_TRUE(eventually([&] {
            auto r = run_command({"curl", "-s", "-u", "admin:public", "-X", "PUT", url, "-d",
                                  R"({"active":true})"},
                                 5s);
            return r.second == R"({"code":0,"result":[]})";
        }));
    }
    static void TearDownTestSuite() {
        delete broker_;
        broker_ = nullptr;
    }
    static uint16_t port() { return broker_->port(); }

    // Opens `c` and runs the CONNECT and first AUTH; returns the server-first message, or "".
    static std::string begin(Client5& c, ScramClient& s, const std::string& id) {
        EXPECT_TRUE(c.open(port()));
        ConnectSpec spec;
        spec.client_id = id;
        spec.props = scram_props(s.first());
        EXPECT_TRUE(c.raw().send(v5::connect(spec)));
        auto p = c.raw().read();
        if (!p || p->type() != 15) {
            ADD_FAILURE() << "expected AUTH, got " << (p ? describe(*p) : "nothing");
            return {};
        }
        auto a = v5::parse_reasoned(*p);
        EXPECT_TRUE(a && a->reason == 0x18);
        EXPECT_EQ(a->props.text(v5::kAuthMethod), "SCRAM-SHA-256");
        return a->props.text(v5::kAuthData).value_or("");
    }

    static BrokerProcess* broker_;
};

BrokerProcess* EnhancedAuth::broker_ = nullptr;

// 4.12: CONNECT (method + client-first) -> AUTH 0x18 (server-first) -> AUTH 0x18 (client-final)
// -> CONNACK 0 with the server-final message, which proves the server knows the credential.
TEST_F(EnhancedAuth, ScramSha256ExchangeOnConnect_MQTT5_4_12) {
    Client5 c;
    ScramClient s{"alice", "wonderland"};
    std::string server_first = begin(c, s, "scram-a");
    ASSERT_FALSE(server_first.empty());
    EXPECT_TRUE(attr(server_first, 'r').starts_with(s.nonce)) << server_first;
    ASSERT_TRUE(c.raw().send(v5::auth(0x18, scram_props(s.final(server_first)))));
    auto p = c.raw().read();
    ASSERT_TRUE(p);
    auto ack = v5::parse_connack(*p);
    ASSERT_TRUE(ack);
    EXPECT_EQ(ack->reason, 0);
    EXPECT_EQ(ack->props.text(v5::kAuthMethod), "SCRAM-SHA-256");
    EXPECT_TRUE(s.server_proved(ack->props.text(v5::kAuthData).value_or("")));
    // Authenticated as alice: the session works.
    c.subscribe({{"scram/t", 1}});
    EXPECT_EQ(c.publish("scram/t", "hello", 1), 0);
    auto m = c.receive_and_ack();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, "hello");
}

TEST_F(EnhancedAuth, WrongPasswordAndUnknownUserGetConnack87_MQTT5_4_12) {
    for (auto [user, password] : {std::pair{"alice", "wrong"}, std::pair{"nobody", "x"}}) {
        Client5 c;
        ScramClient s{user, password};
        std::string server_first = begin(c, s, std::string("scram-bad-") + user);
        ASSERT_FALSE(server_first.empty()) << "every user name gets a challenge";
        ASSERT_TRUE(c.raw().send(v5::auth(0x18, scram_props(s.final(server_first)))));
        auto p = c.raw().read();
        ASSERT_TRUE(p);
        auto ack = v5::parse_connack(*p);
        ASSERT_TRUE(ack);
        EXPECT_EQ(ack->reason, 0x87) << user;
        EXPECT_TRUE(c.raw().wait_closed());
    }
}

// An unknown method is refused with 0x8C [MQTT-4.12.0-1]; a packet other than AUTH during the
// exchange gets CONNACK 0x82; a user name in CONNECT other than SCRAM's, 0x86.
TEST_F(EnhancedAuth, RefusalsDuringTheExchange_MQTT5_4_12_0_1) {
    {
        Client5 c(port());
        ConnectSpec spec;
        spec.client_id = "scram-method";
        spec.props = Props().str(v5::kAuthMethod, "SCRAM-SHA-1").str(v5::kAuthData, "n,,n=a,r=b");
        auto ack = c.connect(spec);
        ASSERT_TRUE(ack);
        EXPECT_EQ(ack->reason, 0x8C);
    }
    {
        Client5 c;
        ScramClient s{"alice", "wonderland"};
        ASSERT_FALSE(begin(c, s, "scram-proto").empty());
        ASSERT_TRUE(c.raw().send(v5::publish("x", "y", 0, 0)));
        auto p = c.raw().read();
        ASSERT_TRUE(p);
        auto ack = v5::parse_connack(*p);
        ASSERT_TRUE(ack);
        EXPECT_EQ(ack->reason, 0x82);
    }
    {
        Client5 c(port());
        ConnectSpec spec;
        spec.client_id = "scram-name";
        spec.username = "bob";
        ScramClient s{"alice", "wonderland"};
        spec.props = scram_props(s.first());
        auto ack = c.connect(spec);
        ASSERT_TRUE(ack);
        EXPECT_EQ(ack->reason, 0x86);
    }
}

// [MQTT-4.12.1-1]: re-authentication with AUTH 0x19 while the connection keeps working; a
// failed one is DISCONNECT 0x87 [MQTT-4.12.1-2]. A client that connected with a password may not
// send AUTH at all (Protocol Error).
TEST_F(EnhancedAuth, ReauthenticationAndItsFailure_MQTT5_4_12_1_1) {
    Client5 c;
    ScramClient s{"alice", "wonderland"};
    std::string server_first = begin(c, s, "scram-re");
    ASSERT_TRUE(c.raw().send(v5::auth(0x18, scram_props(s.final(server_first)))));
    auto p = c.raw().read();
    ASSERT_TRUE(p && p->type() == kConnack);

    ScramClient again{"alice", "wonderland", "second-nonce"};
    ASSERT_TRUE(c.raw().send(v5::auth(0x19, scram_props(again.first()))));
    auto challenge = c.raw().read();
    ASSERT_TRUE(challenge && challenge->type() == 15);
    auto a = v5::parse_reasoned(*challenge);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->reason, 0x18);
    c.subscribe({{"re/t", 0}});  // other packets flow during the exchange
    ASSERT_TRUE(c.raw().send(
            v5::auth(0x18, scram_props(again.final(a->props.text(v5::kAuthData).value_or(""))))));
    auto done = c.raw().read();
    ASSERT_TRUE(done && done->type() == 15);
    auto d = v5::parse_reasoned(*done);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->reason, 0x00);
    EXPECT_TRUE(again.server_proved(d->props.text(v5::kAuthData).value_or("")));

    ScramClient wrong{"alice", "not it", "third-nonce"};
    ASSERT_TRUE(c.raw().send(v5::auth(0x19, scram_props(wrong.first()))));
    auto ch = c.raw().read();
    ASSERT_TRUE(ch);
    auto ca = v5::parse_reasoned(*ch);
    ASSERT_TRUE(ca);
    ASSERT_TRUE(c.raw().send(
            v5::auth(0x18, scram_props(wrong.final(ca->props.text(v5::kAuthData).value_or(""))))));
    EXPECT_EQ(c.expect_disconnect(), 0x87);
    EXPECT_TRUE(c.raw().wait_closed());

    Client5 plain;
    ConnectSpec spec;
    spec.client_id = "scram-plain";
    spec.username = "alice";
    spec.password = "wonderland";
    ASSERT_TRUE(plain.connect_ok(port(), spec));
    ASSERT_TRUE(plain.raw().send(v5::auth(0x19, scram_props(again.first()))));
    EXPECT_EQ(plain.expect_disconnect(), 0x82);
}

}  // namespace
}  // namespace mqttd::itest
