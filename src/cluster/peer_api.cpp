#include "cluster/peer_api.h"

#include <climits>
#include <memory>

#include <unistd.h>

#include <curl/curl.h>

namespace mqttd::cluster {
namespace {

size_t collect(char* data, size_t size, size_t n, void* out) {
    static_cast<std::string*>(out)->append(data, size * n);
    return size * n;
}

struct EasyDeleter {
    void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct ListDeleter {
    void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

}  // namespace

std::string advertised_address(const std::string& listen, const std::string& advertise) {
    if (!advertise.empty() || listen.empty()) {
        return advertise;
    }
    std::string host;
    std::string port = listen;
    if (size_t colon = listen.rfind(':'); colon != std::string::npos) {
        host = listen.substr(0, colon);
        port = listen.substr(colon + 1);
    }
    if (host.empty() || host == "0.0.0.0" || host == "::" || host == "[::]") {
        char name[HOST_NAME_MAX + 1] = {};
        host = gethostname(name, sizeof(name) - 1) == 0 && name[0] != '\0' ? name : "127.0.0.1";
    }
    return host + ":" + port;
}

std::optional<broker::ClusterView::PeerAnswer> call_peer_api(
        const std::string& address,
        const broker::ClusterView::PeerRequest& req,
        long timeout_ms,
        std::string* why) {
    std::unique_ptr<CURL, EasyDeleter> curl(curl_easy_init());
    if (!curl) {
        *why = "cannot create an HTTP client";
        return std::nullopt;
    }
    std::string url = "http://" + address + req.target;
    std::unique_ptr<curl_slist, ListDeleter> headers;
    auto add_header = [&headers](const std::string& line) {
        headers.reset(curl_slist_append(headers.release(), line.c_str()));
    };
    add_header(std::string(broker::ClusterView::kScopeHeader) + ": node");
    if (!req.authorization.empty()) {
        add_header("Authorization: " + req.authorization);
    }
    if (!req.body.empty()) {
        add_header("Content-Type: application/json");
    }
    add_header("Expect:");  // no 100-continue round trip for a body
    std::string body;
    CURL* c = curl.get();
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
    if (!req.body.empty() || req.method == "POST" || req.method == "PUT") {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.body.c_str());
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(req.body.size()));
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        *why = curl_easy_strerror(rc);
        return std::nullopt;
    }
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    return broker::ClusterView::PeerAnswer{static_cast<int>(status), std::move(body)};
}

}  // namespace mqttd::cluster
