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

    // `after_send` (may be empty) runs once each response has been handed to the socket.
    explicit Glue(std::shared_ptr<const Serve> serve, std::function<void()> after_send = {})
        : serve_(std::move(serve)), after_send_(std::move(after_send)) {}

    void onRequest(const Http::Request& in, Http::ResponseWriter out) override {
        Response resp;
        try {
            resp = (*serve_)(convert(in));
        } catch (const std::exception& e) {
            spdlog::error("HTTP {}: {}", in.resource(), e.what());
            resp = Response{500, R"({"code":102,"message":"internal error"})", {}, {}};
        }
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
            spdlog::warn("HTTP {}: cannot send the response: {}", in.resource(), e.what());
        }
        if (after_send_) {
            after_send_();
        }
    }

private:
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
};

// "host:port" or "port" (host 0.0.0.0; "[v6]" unbracketed). False when the port is not a
// number.
bool split_address(const std::string& address, std::string& host, uint16_t& port);

}  // namespace mqttd::api::glue
