#include "broker/auth/credential_store.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace mqttd::broker::auth {
namespace {

using testing::identity;
using testing::wait_decision;

class CredentialStoreTest : public ::testing::Test {
protected:
    void SetUp() override { open(); }
    void open() {
        storage::Options o;
        o.dir = dir_.path() + "/db";
        std::unique_ptr<storage::Store> s;
        ASSERT_TRUE(storage::Store::open(o, s).is_ok());
        store_ = std::move(s);
    }
    void reopen() {
        store_->close();
        store_.reset();
        open();
    }
    CredentialOptions fast() {
        CredentialOptions o;
        o.iterations = 1000;
        return o;
    }
    Decision ask(CredentialStore& cs, const ClientIdentity& id) {
        auto w = wait_decision([&](DecisionCallback cb) { cs.authenticate(id, cb); });
        EXPECT_TRUE(w.called);
        return w.decision;
    }

    testing::TempDir dir_;
    std::unique_ptr<storage::Store> store_;
};

TEST(PasswordHash, FormatAndVerify) {
    std::string h = hash_password("secret", 1000);
    EXPECT_EQ(h.rfind("pbkdf2-sha256$1000$", 0), 0u) << h;
    EXPECT_EQ(h.size(), std::string("pbkdf2-sha256$1000$").size() + 32 + 1 + 64);
    EXPECT_TRUE(verify_password("secret", h));
    EXPECT_FALSE(verify_password("Secret", h));
    EXPECT_NE(hash_password("secret", 1000), h);  // random salt
    EXPECT_FALSE(verify_password("secret", "plain"));
    EXPECT_FALSE(verify_password("secret", "pbkdf2-sha256$0$00$00"));
    EXPECT_FALSE(verify_password("secret", "pbkdf2-sha256$99999999999$00$00"));
    EXPECT_FALSE(verify_password("secret", "pbkdf2-sha256$10$zz$" + std::string(64, '0')));
    EXPECT_EQ(hash_password("x", 0), "");
}

TEST_F(CredentialStoreTest, DecisionsAndRestart) {
    {
        CredentialStore users(*store_, CredentialKind::Username, fast());
        ASSERT_TRUE(users.add("alice", "pw1").is_ok());
        ASSERT_TRUE(users.add("bob", "pw2").is_ok());
        EXPECT_EQ(users.list(), (std::vector<std::string>{"alice", "bob"}));
        EXPECT_EQ(ask(users, identity("c", "alice", "pw1")).verdict, Verdict::Allow);
        EXPECT_EQ(ask(users, identity("c", "alice", "bad")).verdict, Verdict::Deny);
        EXPECT_EQ(ask(users, identity("c", "alice")).verdict, Verdict::Deny);  // no password
        EXPECT_EQ(ask(users, identity("c", "carol", "pw")).verdict, Verdict::Ignore);
        EXPECT_EQ(ask(users, identity("c")).verdict, Verdict::Ignore);  // no username
        // The stored value is a salted hash, never the password.
        auto stored = store_->get_config("auth.username.alice");
        ASSERT_TRUE(stored);
        EXPECT_EQ(stored->rfind("pbkdf2-sha256$1000$", 0), 0u);
        EXPECT_EQ(stored->find("pw1"), std::string::npos);
    }
    reopen();
    CredentialStore users(*store_, CredentialKind::Username, fast());
    EXPECT_EQ(users.list(), (std::vector<std::string>{"alice", "bob"}));
    EXPECT_EQ(users.verify("bob", "pw2"), Verdict::Allow);
    ASSERT_TRUE(users.remove("bob").is_ok());
    EXPECT_TRUE(users.remove("bob").is_not_found());
    reopen();
    CredentialStore again(*store_, CredentialKind::Username, fast());
    EXPECT_EQ(again.list(), (std::vector<std::string>{"alice"}));
}

TEST_F(CredentialStoreTest, ClientIdKindIsSeparate) {
    CredentialStore users(*store_, CredentialKind::Username, fast());
    CredentialStore clients(*store_, CredentialKind::ClientId, fast());
    ASSERT_TRUE(clients.add("dev-1", "k").is_ok());
    EXPECT_EQ(clients.name(), "emq_auth_clientid");
    EXPECT_EQ(users.name(), "emq_auth_username");
    EXPECT_EQ(ask(clients, identity("dev-1", std::nullopt, "k")).verdict, Verdict::Allow);
    EXPECT_EQ(ask(clients, identity("dev-1", "someone", "x")).verdict, Verdict::Deny);
    EXPECT_EQ(ask(users, identity("dev-1", "dev-1", "k")).verdict, Verdict::Ignore);
    EXPECT_TRUE(store_->get_config("auth.clientid.dev-1").has_value());
}

TEST_F(CredentialStoreTest, CacheHitsAndInvalidation) {
    CredentialStore users(*store_, CredentialKind::Username, fast());
    ASSERT_TRUE(users.add("alice", "pw1").is_ok());
    EXPECT_EQ(ask(users, identity("c", "alice", "pw1")).verdict, Verdict::Allow);
    EXPECT_EQ(users.counters().verifications, 1u);
    // A cached CONNECT is answered inline, without PBKDF2.
    bool inline_answer = false;
    users.authenticate(identity("c", "alice", "pw1"),
                       [&](Decision d) { inline_answer = d.verdict == Verdict::Allow; });
    EXPECT_TRUE(inline_answer);
    EXPECT_EQ(users.counters().verifications, 1u);
    EXPECT_EQ(users.counters().cache_hits, 1u);
    // Wrong passwords are never cached.
    EXPECT_EQ(ask(users, identity("c", "alice", "nope")).verdict, Verdict::Deny);
    EXPECT_EQ(ask(users, identity("c", "alice", "nope")).verdict, Verdict::Deny);
    EXPECT_EQ(users.counters().verifications, 3u);
    // A change drops the cached entry: the old password stops working at once.
    ASSERT_TRUE(users.add("alice", "pw2").is_ok());
    EXPECT_EQ(ask(users, identity("c", "alice", "pw1")).verdict, Verdict::Deny);
    EXPECT_EQ(ask(users, identity("c", "alice", "pw2")).verdict, Verdict::Allow);
    ASSERT_TRUE(users.remove("alice").is_ok());
    EXPECT_EQ(ask(users, identity("c", "alice", "pw2")).verdict, Verdict::Ignore);
}

TEST_F(CredentialStoreTest, SeedFromConfigOnlyAddsMissing) {
    CredentialStore users(*store_, CredentialKind::Username, fast());
    ASSERT_TRUE(users.add("admin", "changed-by-rest").is_ok());
    std::vector<std::pair<std::string, std::string>> cfg = {
            {"auth.user.1.username", "admin"},  {"auth.user.1.password", "from-config"},
            {"auth.user.2.username", "guest"},  {"auth.user.2.password", "g"},
            {"auth.user.3.username", "broken"}, {"mqtt.allow_anonymous", "true"},
            {"auth.client.1.clientid", "x"},    {"auth.client.1.password", "y"}};
    auto r = users.seed(cfg);
    EXPECT_TRUE(r.status.is_ok());
    EXPECT_EQ(r.added, 1u);
    ASSERT_EQ(r.warnings.size(), 1u);
    EXPECT_EQ(r.warnings[0], "auth.user.3: needs both .username and .password; skipped");
    EXPECT_EQ(users.verify("admin", "changed-by-rest"), Verdict::Allow);
    EXPECT_EQ(users.verify("guest", "g"), Verdict::Allow);
    EXPECT_FALSE(users.contains("x"));

    CredentialStore clients(*store_, CredentialKind::ClientId, fast());
    EXPECT_EQ(clients.seed(cfg).added, 1u);
    EXPECT_EQ(clients.verify("x", "y"), Verdict::Allow);
}

TEST_F(CredentialStoreTest, OversizedAndEmptyNames) {
    CredentialStore users(*store_, CredentialKind::Username, fast());
    std::string huge(kMaxCredentialBytes + 1, 'a');
    EXPECT_FALSE(users.add(huge, "x").is_ok());
    EXPECT_FALSE(users.add("x", huge).is_ok());
    EXPECT_FALSE(users.add("", "x").is_ok());
    ASSERT_TRUE(users.add("x", std::string(kMaxCredentialBytes, 'p')).is_ok());
    EXPECT_EQ(ask(users, identity("c", "x", std::string(kMaxCredentialBytes, 'p'))).verdict,
              Verdict::Allow);
    EXPECT_EQ(ask(users, identity("c", huge, "x")).verdict, Verdict::Ignore);
}

TEST_F(CredentialStoreTest, DefaultIterationsAreSlowButOffTheCaller) {
    CredentialStore users(*store_, CredentialKind::Username);  // 100 000 iterations
    ASSERT_TRUE(users.add("alice", "pw").is_ok());
    auto stored = store_->get_config("auth.username.alice");
    ASSERT_TRUE(stored);
    EXPECT_EQ(stored->rfind("pbkdf2-sha256$100000$", 0), 0u);
    // The first check runs on the pool: authenticate() returns before the answer.
    std::atomic<bool> answered{false};
    auto w = wait_decision([&](DecisionCallback cb) {
        users.authenticate(identity("c", "alice", "pw"), [&, cb](Decision d) {
            answered = true;
            cb(std::move(d));
        });
        EXPECT_FALSE(answered.load());
    });
    EXPECT_EQ(w.decision.verdict, Verdict::Allow);
}

TEST_F(CredentialStoreTest, FullQueueDeniesAsBusy) {
    CredentialOptions o;
    o.iterations = 200000;
    o.max_queue = 1;
    std::atomic<int> busy{0}, done{0};
    auto users = std::make_unique<CredentialStore>(*store_, CredentialKind::Username, o);
    ASSERT_TRUE(users->add("alice", "pw").is_ok());
    for (int i = 0; i < 10; ++i) {
        users->authenticate(identity("c", "alice", "wrong"), [&](Decision d) {
            if (d.error && d.reason == "auth busy") {
                ++busy;
            }
            ++done;
        });
    }
    EXPECT_GE(busy.load(), 7);
    EXPECT_EQ(users->counters().busy, static_cast<uint64_t>(busy.load()));
    // Destruction finishes or cancels the rest: every callback runs exactly once.
    users.reset();
    EXPECT_EQ(done.load(), 10);
}

}  // namespace
}  // namespace mqttd::broker::auth
