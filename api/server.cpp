// The Pistache glue: converts a Pistache request into an api::Request, calls the Handler and
// writes its Response. The only translation unit that includes Pistache.
#include "api/server.h"

#include <charconv>
#include <chrono>
#include <exception>
#include <thread>

#include <pistache/endpoint.h>
#include <pistache/http.h>
#include <pistache/http_headers.h>
#include <pistache/mime.h>
#include <spdlog/spdlog.h>

#include "api/handler.h"
#include "api/url.h"

namespace mqttd::api {
namespace {

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

class Glue : public Http::Handler {
public:
    HTTP_PROTOTYPE(Glue)

    explicit Glue(std::shared_ptr<api::Handler> handler) : handler_(std::move(handler)) {}

    void onRequest(const Http::Request& in, Http::ResponseWriter out) override {
        Response resp;
        try {
            resp = handler_->handle(convert(in));
        } catch (const std::exception& e) {
            spdlog::error("REST {}: {}", in.resource(), e.what());
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
            spdlog::warn("REST {}: cannot send the response: {}", in.resource(), e.what());
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
        r.body = in.body();
        r.peer = in.address().host();
        return r;
    }

    std::shared_ptr<api::Handler> handler_;
};

}  // namespace

struct Server::Impl {
    std::shared_ptr<api::Handler> handler;
    std::unique_ptr<Http::Endpoint> endpoint;
    bool serving = false;
};

Server::Server(Context ctx) : impl_(std::make_unique<Impl>()) {
    impl_->handler = std::make_shared<api::Handler>(std::move(ctx));
}

Server::~Server() {
    stop();
}

std::string Server::start(const std::string& address, int threads) {
    std::string host = "0.0.0.0";
    std::string port_text = address;
    if (auto colon = address.rfind(':'); colon != std::string::npos) {
        host = address.substr(0, colon);
        port_text = address.substr(colon + 1);
    }
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    uint16_t port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size()) {
        return "listener.api.mgmt: \"" + address + "\" is not host:port";
    }
    try {
        impl_->endpoint = std::make_unique<Http::Endpoint>(Address(host, Port(port)));
        impl_->endpoint->init(Http::Endpoint::options()
                                      .threads(threads)
                                      .flags(Tcp::Options::ReuseAddr)
                                      .maxRequestSize(kMaxRequestSize)
                                      .headerTimeout(std::chrono::seconds(10))
                                      .bodyTimeout(std::chrono::seconds(30)));
        impl_->endpoint->setHandler(Http::make_handler<Glue>(impl_->handler));
        impl_->endpoint->serveThreaded();
        impl_->serving = true;
    } catch (const std::exception& e) {
        impl_->endpoint.reset();
        return "REST API: cannot listen on " + address + ": " + e.what();
    }
    impl_->handler->set_api_listener(host + ":" + std::to_string(this->port()),
                                     static_cast<uint32_t>(threads), 0);
    return {};
}

uint16_t Server::port() const {
    return impl_->endpoint ? static_cast<uint16_t>(impl_->endpoint->getPort()) : 0;
}

void Server::stop() {
    if (impl_ && impl_->serving) {
        impl_->endpoint->shutdown();
        impl_->serving = false;
    }
}

}  // namespace mqttd::api
