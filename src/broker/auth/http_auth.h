// emq_auth_http: authentication, superuser and ACL decisions by an HTTP server, with EMQ 2.x's
// configuration keys:
//   auth.http.auth_req          URL of the CONNECT check (empty: authentication not asked)
//   auth.http.auth_req.method   get | post
//   auth.http.auth_req.params   "clientid=%c,username=%u,password=%P"
//   auth.http.super_req (+ .method, .params)   superuser check after an allowed CONNECT
//   auth.http.acl_req   (+ .method, .params)   PUBLISH / SUBSCRIBE check
//   auth.http.timeout           milliseconds per request (default 5000)
// Placeholders in params: %u username, %c client id, %P password, %a peer IP address,
// %A access (1 = subscribe, 2 = publish), %t topic (EMQ 2.x's spelling, as in the REST
// spec's example "access=%A,username=%u,clientid=%c,ipaddr=%a,topic=%t"). A missing username
// or password becomes "". Names and values are url-encoded; GET sends them as the query
// string, POST as an application/x-www-form-urlencoded body.
//
// ANSWERS (EMQ 2.x): HTTP 200 -> Allow (for super_req: superuser), body "ignore" -> Ignore;
// 4xx -> Deny. Anything else - timeout, connection refused, 5xx, a malformed reply - is Deny
// with error = true and reason "auth server unavailable" (counted in `unavailable`): a broken
// auth server locks clients out rather than letting everyone in. A super_req that fails only
// withholds superuser.
//
// THREADING: requests run on a private pool (`threads`, default 2) with a bounded queue
// (`max_queue`); a full queue denies at once (error = true, "auth busy", counted). `done`
// runs on a pool thread (or inline for those immediate answers). No caller ever blocks.
// Thread-safety: immutable config; any thread. Destruction cancels queued requests (their
// callbacks get Deny "auth stopped") and waits for running ones (at most `timeout_ms`).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/auth/auth_chain.h"
#include "broker/auth/task_pool.h"

namespace mqttd::broker::auth {

struct HttpReqSpec {
    std::string url;
    bool post = false;
    std::string params;  // "k=%x,k2=%y"
};

struct HttpAuthConfig {
    HttpReqSpec auth_req;
    HttpReqSpec super_req;
    HttpReqSpec acl_req;
    long timeout_ms = 5000;
    size_t threads = 2;
    size_t max_queue = 1024;

    // Sets one "auth.http.*" key; returns an error line, or "" when applied.
    std::string set(std::string_view key, std::string_view value);
};

struct HttpAuthCounters {
    uint64_t requests = 0;
    uint64_t unavailable = 0;  // no usable answer (timeout, refused, 5xx, garbage)
    uint64_t busy = 0;         // refused because the queue was full
};

class HttpAuth final : public Authenticator, public AclChecker {
public:
    explicit HttpAuth(HttpAuthConfig config);
    ~HttpAuth() override;
    HttpAuth(const HttpAuth&) = delete;
    HttpAuth& operator=(const HttpAuth&) = delete;

    std::string_view name() const override { return "emq_auth_http"; }
    void authenticate(const ClientIdentity& id, DecisionCallback done) override;
    void check(const ClientIdentity& id,
               Access access,
               std::string_view topic,
               DecisionCallback done) override;

    HttpAuthCounters counters() const;
    const HttpAuthConfig& config() const { return config_; }

    // The (name, value) pairs of `params` with placeholders substituted. Exposed for tests.
    static std::vector<std::pair<std::string, std::string>> expand(std::string_view params,
                                                                   const ClientIdentity& id,
                                                                   int access,
                                                                   std::string_view topic);

private:
    enum class Answer { Allow, Deny, Ignore, Unavailable };
    Answer ask(const HttpReqSpec& spec,
               const ClientIdentity& id,
               int access,
               std::string_view topic);
    void submit(std::shared_ptr<DecisionCallback> done, std::function<Decision()> work);

    HttpAuthConfig config_;
    std::atomic<uint64_t> requests_{0}, unavailable_{0}, busy_{0};
    std::unique_ptr<TaskPool> pool_;
};

}  // namespace mqttd::broker::auth
