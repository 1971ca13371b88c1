#include "broker/auth/auth_chain.h"

#include <thread>

#include <gtest/gtest.h>

#include "broker/auth/acl.h"
#include "test_util.h"

namespace mqttd::broker::auth {
namespace {

using testing::identity;
using testing::wait_decision;

// A provider with a fixed answer that records being asked; optionally answers from another
// thread, like the pool-backed providers do.
class Fixed final : public Authenticator, public AclChecker {
public:
    Fixed(std::string name, Decision d, bool async = false)
        : name_(std::move(name)), d_(std::move(d)), async_(async) {}
    std::string_view name() const override { return name_; }
    void authenticate(const ClientIdentity&, DecisionCallback done) override { answer(done); }
    void check(const ClientIdentity&, Access, std::string_view, DecisionCallback done) override {
        answer(done);
    }
    std::atomic<int> asked{0};

private:
    void answer(DecisionCallback done) {
        ++asked;
        if (async_) {
            std::thread([d = d_, done = std::move(done)] { done(d); }).detach();
        } else {
            done(d_);
        }
    }
    std::string name_;
    Decision d_;
    bool async_;
};

Decision run(AuthChain& chain, const ClientIdentity& id, bool anon) {
    auto w = wait_decision([&](DecisionCallback cb) { chain.authenticate(id, anon, cb); });
    EXPECT_TRUE(w.called);
    return w.decision;
}

TEST(AuthChain, FixedOrderRegardlessOfInsertion) {
    EXPECT_LT(AuthChain::rank_of("emq_auth_username"), AuthChain::rank_of("emq_auth_clientid"));
    EXPECT_LT(AuthChain::rank_of("emq_auth_clientid"), AuthChain::rank_of("emq_auth_jwt"));
    EXPECT_LT(AuthChain::rank_of("emq_auth_jwt"), AuthChain::rank_of("emq_auth_http"));
    EXPECT_LT(AuthChain::rank_of("emq_auth_http"), AuthChain::rank_of("custom"));

    AuthChain chain;
    auto http = std::make_shared<Fixed>("emq_auth_http", Decision::deny("http"), true);
    auto user = std::make_shared<Fixed>("emq_auth_username", Decision::ignore());
    auto jwt = std::make_shared<Fixed>("emq_auth_jwt", Decision::allow("jwt"));
    chain.set(http);
    chain.set(jwt);
    chain.set(user);
    // username ignores, jwt allows before http is asked.
    auto d = run(chain, identity("c", "u", "p"), false);
    EXPECT_EQ(d.verdict, Verdict::Allow);
    EXPECT_EQ(d.reason, "jwt");
    EXPECT_EQ(user->asked, 1);
    EXPECT_EQ(http->asked, 0);
    // Disable jwt at run time: http (answering from another thread) decides.
    ASSERT_TRUE(chain.enable("emq_auth_jwt", false));
    EXPECT_FALSE(chain.enabled("emq_auth_jwt"));
    d = run(chain, identity("c", "u", "p"), true);
    EXPECT_EQ(d.verdict, Verdict::Deny);
    EXPECT_EQ(d.reason, "http");
    EXPECT_EQ(http->asked, 1);
    EXPECT_FALSE(chain.enable("nope", true));
}

TEST(AuthChain, AllIgnoreFallsToAnonymousRule) {
    AuthChain chain;
    EXPECT_EQ(run(chain, identity("c"), true).verdict, Verdict::Allow);
    auto d = run(chain, identity("c"), false);
    EXPECT_EQ(d.verdict, Verdict::Deny);
    EXPECT_TRUE(d.anonymous_rule);  // the CONNACK says "not authorized", not "bad password"
    chain.set(std::make_shared<Fixed>("emq_auth_username", Decision::ignore()));
    chain.set(std::make_shared<Fixed>("emq_auth_http", Decision::ignore(), true));
    d = run(chain, identity("c", "u", "p"), true);
    EXPECT_EQ(d.verdict, Verdict::Allow);
    EXPECT_EQ(d.reason, "anonymous");
    EXPECT_EQ(run(chain, identity("c", "u", "p"), false).verdict, Verdict::Deny);
    auto c = chain.counters();
    EXPECT_EQ(c.ignored, 4u);
    EXPECT_EQ(c.allowed, 2u);
    EXPECT_EQ(c.denied, 2u);
}

TEST(AuthChain, SuperuserErrorsAndOversized) {
    AuthChain chain;
    chain.set(std::make_shared<Fixed>("emq_auth_http", Decision::allow("http", true)));
    EXPECT_TRUE(run(chain, identity("c", "root", "p"), false).superuser);
    chain.set(
            std::make_shared<Fixed>("emq_auth_http", Decision::failed("auth server unavailable")));
    auto d = run(chain, identity("c", "u", "p"), true);
    EXPECT_EQ(d.verdict, Verdict::Deny);  // an unavailable server refuses, even with anonymous
    EXPECT_FALSE(d.anonymous_rule);
    EXPECT_EQ(chain.counters().errors, 1u);
    d = run(chain, identity("c", std::string(kMaxCredentialBytes + 1, 'u'), "p"), true);
    EXPECT_EQ(d.verdict, Verdict::Deny);
    EXPECT_EQ(d.reason, "credentials too long");
    d = run(chain, identity("c", "u", std::string(1 << 20, 'p')), true);
    EXPECT_EQ(d.reason, "credentials too long");
    chain.remove("emq_auth_http");
    // A client id is not a credential: MQTT's 65535 bytes pass to the providers.
    EXPECT_EQ(run(chain, identity(std::string(65535, 'c'), "u", "p"), true).verdict,
              Verdict::Allow);
    EXPECT_EQ(run(chain, identity("c", "u", "p"), true).verdict, Verdict::Allow);
}

TEST(AuthChain, ConcurrentReconfiguration) {
    AuthChain chain;
    chain.set(std::make_shared<Fixed>("emq_auth_username", Decision::ignore()));
    std::atomic<bool> stop{false};
    std::atomic<int> answered{0};
    std::thread rest([&] {
        bool on = false;
        while (!stop) {
            chain.set(std::make_shared<Fixed>("emq_auth_http", Decision::deny("x"), true), on);
            chain.enable("emq_auth_username", on);
            on = !on;
        }
    });
    for (int i = 0; i < 2000; ++i) {
        chain.authenticate(identity("c", "u", "p"), true, [&](Decision) { ++answered; });
    }
    stop = true;
    rest.join();
    for (int i = 0; i < 500 && answered < 2000; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(answered.load(), 2000);
}

TEST(AclChain, OrderSuperuserNomatchAndEpoch) {
    AclChain chain;
    auto file = std::make_shared<AclFile>("unused", [&chain] { chain.bump_epoch(); });
    ASSERT_TRUE(file->load_text("{deny, all, publish, [\"secret/#\"]}.", "acl.conf").ok());
    auto http = std::make_shared<Fixed>("emq_auth_http", Decision::allow("http"), true);
    uint64_t e0 = chain.epoch();
    chain.set(http);
    chain.set(file);
    EXPECT_GT(chain.epoch(), e0);
    auto check = [&](bool super, std::string topic, bool nomatch) {
        auto w = wait_decision([&](DecisionCallback cb) {
            chain.check(identity("c", "u"), super, Access::Publish, topic, nomatch, cb);
        });
        EXPECT_TRUE(w.called);
        return w.decision;
    };
    EXPECT_EQ(check(false, "secret/x", true).verdict, Verdict::Deny);  // file first
    EXPECT_EQ(http->asked, 0);
    EXPECT_EQ(check(true, "secret/x", false).verdict, Verdict::Allow);  // superuser bypass
    EXPECT_EQ(check(false, "open", false).verdict, Verdict::Allow);     // http decides
    EXPECT_EQ(http->asked, 1);
    chain.enable("emq_auth_http", false);
    EXPECT_EQ(check(false, "open", false).verdict, Verdict::Deny);  // nomatch = deny
    EXPECT_EQ(check(false, "open", true).reason, "nomatch");
    uint64_t e1 = chain.epoch();
    ASSERT_TRUE(file->load_text("{allow, all}.", "acl.conf").ok());
    EXPECT_GT(chain.epoch(), e1);
    EXPECT_EQ(check(false, "secret/x", false).verdict, Verdict::Allow);
}

TEST(AclChain, VerdictNowInlineOrFallsBackToCheck) {
    AclChain chain;
    auto file = std::make_shared<AclFile>("unused");
    ASSERT_TRUE(file->load_text("{deny, all, publish, [\"secret/#\"]}.", "acl.conf").ok());
    chain.set(file);
    const auto id = identity("c", "u");
    EXPECT_EQ(chain.verdict_now(id, Access::Publish, "secret/x", true), Verdict::Deny);
    EXPECT_EQ(chain.verdict_now(id, Access::Publish, "open", true), Verdict::Allow);  // nomatch
    EXPECT_EQ(chain.verdict_now(id, Access::Publish, "open", false), Verdict::Deny);
    ChainCounters c = chain.counters();
    EXPECT_EQ(c.allowed, 1u);
    EXPECT_EQ(c.denied, 2u);
    EXPECT_EQ(c.ignored, 2u);

    // A checker that answers only through check(): asked only when the file ignores the topic,
    // and then not inline.
    auto http = std::make_shared<Fixed>("emq_auth_http", Decision::allow("http"), true);
    chain.set(http);
    EXPECT_EQ(chain.verdict_now(id, Access::Publish, "secret/x", false), Verdict::Deny);
    EXPECT_EQ(chain.verdict_now(id, Access::Publish, "open", false), std::nullopt);
    EXPECT_EQ(http->asked, 0);
    EXPECT_EQ(chain.counters().denied, 3u);  // the fallback counts nothing: check() will

    auto long_name = identity("c", std::string(kMaxCredentialBytes + 1, 'u'));
    EXPECT_EQ(chain.verdict_now(long_name, Access::Publish, "secret/x", false), std::nullopt);
}

}  // namespace
}  // namespace mqttd::broker::auth
