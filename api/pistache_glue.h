// The Pistache side of api::Server and api::Dashboard (internal: included only by server.cpp
// and dashboard.cpp, the two translation units that see Pistache): converts a Pistache request
// into an api::Request, calls a function for the api::Response and writes it.
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <utility>

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

class Glue : public Http::Handler {
public:
    HTTP_PROTOTYPE(Glue)

    // `after_send` (may be empty) runs once each response has been handed to the socket (or
    // dropped at shutdown). Requests `off_thread` picks are served on `pool` instead of the
    // HTTP thread (both may be empty: every request on its HTTP thread).
    explicit Glue(std::shared_ptr<const Serve> serve,
                  std::function<void()> after_send = {},
                  std::shared_ptr<TaskPool> pool = {},
                  std::function<bool(const Request&)> off_thread = {})
        : serve_(std::move(serve)),
          after_send_(std::move(after_send)),
          pool_(std::move(pool)),
          off_thread_(std::move(off_thread)) {}

    void onRequest(const Http::Request& in, Http::ResponseWriter out) override {
        Request req = convert(in);
        if (pool_ && off_thread_ && off_thread_(req)) {
            auto pending = std::make_shared<Pending>(std::move(out), std::move(req), in.resource(),
                                                     after_send_);
            if (pool_->submit([serve = serve_, pending] {
                    write(pending->out, serve_one(*serve, pending->req, pending->resource),
                          pending->resource);
                })) {
                return;
            }
            write(pending->out,
                  Response{503,
                           R"({"code":102,"message":"too many cluster-wide requests at once"})",
                           {},
                           {{"Retry-After", "1"}}},
                  pending->resource);
            return;
        }
        write(out, serve_one(*serve_, req, in.resource()), in.resource());
        if (after_send_) {
            after_send_();
        }
    }

private:
    // A request served on the pool; after_send runs when it is gone (answered or dropped).
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

    static Response serve_one(const Serve& serve, const Request& req, const std::string& resource) {
        try {
            return serve(req);
        } catch (const std::exception& e) {
            spdlog::error("HTTP {}: {}", resource, e.what());
            return Response{500, R"({"code":102,"message":"internal error"})", {}, {}};
        }
    }

    static void write(Http::ResponseWriter& out,
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
            out.send(static_cast<Http::Code>(resp.status), resp.body);
        } catch (const std::exception& e) {
            spdlog::warn("HTTP {}: cannot send the response: {}", resource, e.what());
        }
    }

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
    std::shared_ptr<TaskPool> pool_;
    std::function<bool(const Request&)> off_thread_;
};

// "host:port" or "port" (host 0.0.0.0; "[v6]" unbracketed). False when the port is not a
// number.
bool split_address(const std::string& address, std::string& host, uint16_t& port);

}  // namespace mqttd::api::glue
