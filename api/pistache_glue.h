// The Pistache side of api::Server and api::Dashboard (internal: included only by server.cpp,
// dashboard.cpp and pistache_glue.cpp, the translation units that see Pistache): converts a
// Pistache request into an api::Request, calls a function for the api::Response and writes it,
// at once or, for a delayed answer, from the Tarpit.
#pragma once

#include <chrono>
#include <condition_variable>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <pistache/endpoint.h>
#include <pistache/http.h>
#include <pistache/http_headers.h>
#include <pistache/mime.h>
#include <spdlog/spdlog.h>

#include "api/http.h"
#include "api/task_pool.h"
#include "api/url.h"
#include "broker/admin.h"

namespace mqttd::api::glue {

using namespace Pistache;

// A response header with a name chosen at run time. Pistache 0.0.5 does not write headers
// added with addRaw() into a response, so WWW-Authenticate goes through a Header object.
class PlainHeader : public Http::Header::Header {
public:
    PlainHeader(std::string name, std::string value)
        : name_(std::move(name)), value_(std::move(value)) {}
    const char* name() const override { return name_.c_str(); }
#ifdef SAFE_HEADER_CAST
    uint64_t hash() const override {
        return Http::Header::detail::hash(name_.c_str());
    }
#endif
    void write(std::ostream& os) const override {
        os << value_;
    }

private:
    std::string name_;
    std::string value_;
};

using Serve = std::function<Response(const Request&)>;

// Writes `resp` through `out`; a failure to send is logged and dropped. `resource` names the
// request in the log. A delayed answer (Response::delay_ms) also asks the client to close.
inline void write_response(Http::ResponseWriter& out,
                           const Response& resp,
                           const std::string& resource) {
    try {
        if (resp.content_type.empty()) {
            out.headers().add<Http::Header::ContentType>(MIME(Application, Json));
        } else {
            out.headers().add(std::make_shared<PlainHeader>("Content-Type", resp.content_type));
        }
        for (const auto& [name, value] : resp.headers) {
            out.headers().add(std::make_shared<PlainHeader>(name, value));
        }
        if (resp.delay_ms > 0) {
            // Pistache copied the request's Connection header into the response; a refused
            // login's client is asked to pay a new connection for its next try.
            out.headers().remove<Http::Header::Connection>();
            out.headers().add<Http::Header::Connection>(Http::ConnectionControl::Close);
        }
        out.send(static_cast<Http::Code>(resp.status), resp.body);
    } catch (const std::exception& e) {
        spdlog::warn("HTTP {}: cannot send the response: {}", resource, e.what());
    }
}

// The tarpit: holds answers that carry a delay (Response::delay_ms, refused and failed logins)
// and sends each when due from its own thread, so a held answer costs its connection and a
// few hundred bytes but no request thread, and a client that waits for its answers (every
// HTTP/1.1 client without pipelining) tries at most once per delay per connection. At most
// `max_held` at once; past that hold() refuses and the answer goes at once.
//
// Sending from this thread is what Pistache's ResponseWriter allows: send() queues the bytes
// on the transport's lock-free queue and wakes its reactor; a connection closed meanwhile
// makes send() return a rejected promise, and the answer is dropped. A client that pipelines
// another request behind a held answer may get that request's answer first; clients that
// wait for each answer (browsers, curl, the HTTP libraries) never see this.
//
// Ownership: shared by the Glue copies of one endpoint; stop() before the endpoint shuts down
// (a held answer refers to the endpoint's transport). Thread-safety: hold() from any request
// thread; stop() from the thread that stops the endpoint.
class Tarpit {
public:
    explicit Tarpit(size_t max_held);
    ~Tarpit();
    Tarpit(const Tarpit&) = delete;
    Tarpit& operator=(const Tarpit&) = delete;

    // Takes `out` and sends `resp` through it resp.delay_ms from now, then runs `after_send`
    // (may be empty). False, and `out` untouched, when max_held are held or after stop().
    bool hold(Http::ResponseWriter& out,
              Response resp,
              std::string resource,
              std::function<void()> after_send);
    // Drops what is held (those connections get no answer and are closed with the endpoint;
    // each after_send runs) and joins the thread. Idempotent.
    void stop();
    size_t held() const;

private:
    struct Held {
        Http::ResponseWriter out;
        Response resp;
        std::string resource;
        std::function<void()> after_send;
    };
    void run();

    const size_t max_held_;
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    // Due time -> answer; equal times keep their order (multimap inserts at the upper end).
    std::multimap<std::chrono::steady_clock::time_point, std::unique_ptr<Held>> held_;  // mutex_
    bool stopping_ = false;                                                             // mutex_
    std::thread thread_;
};

class Glue : public Http::Handler {
public:
    HTTP_PROTOTYPE(Glue)

    // `after_send` (may be empty) runs once each response has been handed to the socket (or,
    // for a held one, dropped at shutdown). `tarpit` (may be null: delays are ignored) holds
    // the delayed answers. Requests `off_thread` picks are served on `pool` instead of the
    // HTTP thread (api/task_pool.h; both may be empty).
    explicit Glue(std::shared_ptr<const Serve> serve,
                  std::function<void()> after_send = {},
                  std::shared_ptr<Tarpit> tarpit = {},
                  std::shared_ptr<TaskPool> pool = {},
                  std::function<bool(const Request&)> off_thread = {})
        : serve_(std::move(serve)),
          after_send_(std::move(after_send)),
          tarpit_(std::move(tarpit)),
          pool_(std::move(pool)),
          off_thread_(std::move(off_thread)) {}

    void onRequest(const Http::Request& in, Http::ResponseWriter out) override;

private:
    // A request served on the pool; its after_send runs when it is gone unanswered (dropped at
    // shutdown), unless answer() has taken it.
    struct Pending {
        Pending(Http::ResponseWriter o, Request r, std::string res, std::function<void()> after)
            : out(std::move(o)),
              req(std::move(r)),
              resource(std::move(res)),
              after_send(std::move(after)) {}
        ~Pending() {
            if (after_send) {
                after_send();
            }
        }
        Pending(const Pending&) = delete;
        Pending& operator=(const Pending&) = delete;
        Http::ResponseWriter out;
        Request req;
        std::string resource;
        std::function<void()> after_send;
    };

    // Serves `req` and writes the answer through `out` (or hands it to the tarpit); takes
    // `after_send` and runs it once the answer is handed over.
    static void answer(const Serve& serve,
                       const std::shared_ptr<Tarpit>& tarpit,
                       Http::ResponseWriter& out,
                       const Request& req,
                       const std::string& resource,
                       std::function<void()> after_send);

    static Request convert(const Http::Request& in) {
        Request r;
        r.method = Http::methodString(in.method());
        r.path = in.resource();
        const auto& q = in.query();
        for (auto it = q.parameters_begin(); it != q.parameters_end(); ++it) {
            auto k = percent_decode(it->first, true);
            auto v = percent_decode(it->second, true);
            // A malformed escape keeps the raw text; the endpoint then rejects the value.
            r.query.emplace(k ? *k : it->first, v ? *v : it->second);
        }
        if (auto a = in.headers().tryGet<Http::Header::Authorization>()) {
            r.authorization = a->value();
        }
        if (auto tag = in.headers().tryGetRaw("If-None-Match")) {
            r.if_none_match = tag->value();
        }
        if (auto scope = in.headers().tryGetRaw(std::string(broker::ClusterView::kScopeHeader))) {
            r.from_peer = scope->value() == "node";
        }
        r.body = in.body();
        r.peer = in.address().host();
        return r;
    }

    std::shared_ptr<const Serve> serve_;
    std::function<void()> after_send_;
    std::shared_ptr<Tarpit> tarpit_;
    std::shared_ptr<TaskPool> pool_;
    std::function<bool(const Request&)> off_thread_;
};

// Names the calling thread `name` (at most 15 characters) and raises its nice value to `nice`
// (never lowers it; 0 leaves it alone), so the threads it starts from here on — Pistache's
// accept and reactor threads, a Tarpit — inherit both: Linux keeps a name and a nice value per
// thread and a new thread starts with its creator's. With api.nice the MQTT workers win the
// cores over the REST API whenever both want them; the name shows them in top -H.
void prepare_api_thread(const char* name, int nice);

// "host:port" or "port" (host 0.0.0.0; "[v6]" unbracketed). False when the port is not a
// number.
bool split_address(const std::string& address, std::string& host, uint16_t& port);

}  // namespace mqttd::api::glue
