#include "broker/auth/http_client.h"

#include <memory>
#include <mutex>

#include <curl/curl.h>

namespace mqttd::broker::auth {

namespace {

// curl_global_init is not thread-safe against other libcurl calls: run it once, before the
// first handle is made on any thread.
void global_init() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct EasyDeleter {
    void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
struct SlistDeleter {
    void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

size_t on_body(char* data, size_t size, size_t nmemb, void* user) {
    auto* out = static_cast<std::string*>(user);
    size_t n = size * nmemb;
    if (out->size() + n > kMaxResponseBody) {
        return 0;  // makes curl fail with CURLE_WRITE_ERROR: the answer is not one we accept
    }
    out->append(data, n);
    return n;
}

CURL* thread_handle() {
    thread_local std::unique_ptr<CURL, EasyDeleter> handle;
    if (!handle) {
        global_init();
        handle.reset(curl_easy_init());
    } else {
        curl_easy_reset(handle.get());
    }
    return handle.get();
}

}  // namespace

HttpResponse http_perform(const HttpRequest& req) {
    HttpResponse resp;
    CURL* h = thread_handle();
    if (h == nullptr) {
        resp.error = "curl_easy_init failed";
        return resp;
    }
    char errbuf[CURL_ERROR_SIZE] = {};
    std::unique_ptr<curl_slist, SlistDeleter> headers;
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_URL, req.url.c_str());
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // timeouts without SIGALRM: required in threads
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, req.timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, req.timeout_ms);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp.body);
    if (req.post) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req.body.data());
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
        if (!req.content_type.empty()) {
            std::string ct = "Content-Type: " + req.content_type;
            headers.reset(curl_slist_append(nullptr, ct.c_str()));
            // Without this curl waits for "100 Continue" on bodies over 1 KiB.
            headers.reset(curl_slist_append(headers.release(), "Expect:"));
            curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
        }
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
        resp.status = 0;
        resp.body.clear();
        resp.error = errbuf[0] != '\0' ? std::string(errbuf) : curl_easy_strerror(rc);
        return resp;
    }
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    resp.status = status;
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, nullptr);
    return resp;
}

std::string url_encode(std::string_view s) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(s.size() * 3);
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        bool unreserved = (u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') ||
                          (u >= '0' && u <= '9') || u == '-' || u == '_' || u == '.' || u == '~';
        if (unreserved) {
            out.push_back(c);
        } else {
            out.push_back('%');
            out.push_back(kHex[u >> 4]);
            out.push_back(kHex[u & 0x0F]);
        }
    }
    return out;
}

std::string form_encode(const std::vector<std::pair<std::string, std::string>>& params) {
    std::string out;
    for (const auto& [k, v] : params) {
        if (!out.empty()) {
            out.push_back('&');
        }
        out += url_encode(k);
        out.push_back('=');
        out += url_encode(v);
    }
    return out;
}

}  // namespace mqttd::broker::auth
