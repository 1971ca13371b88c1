// Glue::onRequest and the Tarpit (pistache_glue.h).
#include "api/pistache_glue.h"

#include <cerrno>
#include <cstring>

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

namespace mqttd::api::glue {

void Glue::onRequest(const Http::Request& in, Http::ResponseWriter out) {
    Request req = convert(in);
    if (pool_ && off_thread_ && off_thread_(req)) {
        auto pending = std::make_shared<Pending>(std::move(out), std::move(req), in.resource(),
                                                 after_send_);
        if (pool_->submit([serve = serve_, tarpit = tarpit_, pending] {
                answer(*serve, tarpit, pending->out, pending->req, pending->resource,
                       std::move(pending->after_send));
                pending->after_send = nullptr;
            })) {
            return;
        }
        write_response(
                pending->out,
                Response{503,
                         R"({"code":102,"message":"too many cluster-wide requests at once"})",
                         {},
                         {{"Retry-After", "1"}}},
                pending->resource);
        return;  // pending's after_send runs as it goes
    }
    answer(*serve_, tarpit_, out, req, in.resource(), after_send_);
}

void Glue::answer(const Serve& serve,
                  const std::shared_ptr<Tarpit>& tarpit,
                  Http::ResponseWriter& out,
                  const Request& req,
                  const std::string& resource,
                  std::function<void()> after_send) {
    Response resp;
    try {
        resp = serve(req);
    } catch (const std::exception& e) {
        spdlog::error("HTTP {}: {}", resource, e.what());
        resp = Response{500, R"({"code":102,"message":"internal error"})", {}, {}};
    }
    if (resp.delay_ms > 0 && tarpit && tarpit->hold(out, resp, resource, after_send)) {
        return;
    }
    write_response(out, resp, resource);
    if (after_send) {
        after_send();
    }
}

void prepare_api_thread(const char* name, int nice) {
    ::pthread_setname_np(::pthread_self(), name);
    const auto tid = static_cast<id_t>(gettid());
    errno = 0;
    const int now = getpriority(PRIO_PROCESS, tid);
    if (nice <= 0 || (errno == 0 && now >= nice)) {
        return;
    }
    if (setpriority(PRIO_PROCESS, tid, nice) != 0) {
        spdlog::warn("api.nice = {}: cannot set the REST threads' priority: {}", nice,
                     std::strerror(errno));
    }
}

Tarpit::Tarpit(size_t max_held) : max_held_(max_held) {
    thread_ = std::thread([this] { run(); });
}

Tarpit::~Tarpit() {
    stop();
}

bool Tarpit::hold(Http::ResponseWriter& out,
                  Response resp,
                  std::string resource,
                  std::function<void()> after_send) {
    const auto due = std::chrono::steady_clock::now() + std::chrono::milliseconds(resp.delay_ms);
    std::lock_guard lock(mutex_);
    if (stopping_ || held_.size() >= max_held_) {
        return false;
    }
    const bool first = held_.empty() || due < held_.begin()->first;
    held_.emplace(due, std::make_unique<Held>(Held{std::move(out), std::move(resp),
                                                   std::move(resource), std::move(after_send)}));
    if (first) {
        cv_.notify_one();
    }
    return true;
}

size_t Tarpit::held() const {
    std::lock_guard lock(mutex_);
    return held_.size();
}

void Tarpit::stop() {
    decltype(held_) dropped;
    {
        std::lock_guard lock(mutex_);
        if (stopping_) {
            return;
        }
        stopping_ = true;
        dropped.swap(held_);
    }
    cv_.notify_one();
    if (thread_.joinable()) {
        thread_.join();
    }
    for (auto& [due, h] : dropped) {
        if (h->after_send) {
            h->after_send();
        }
    }
}

void Tarpit::run() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        if (held_.empty()) {
            cv_.wait(lock);
            continue;
        }
        const auto due = held_.begin()->first;
        if (std::chrono::steady_clock::now() < due) {
            cv_.wait_until(lock, due);
            continue;
        }
        // Everything due goes out in one pass, outside the lock.
        std::vector<std::unique_ptr<Held>> ready;
        const auto now = std::chrono::steady_clock::now();
        while (!held_.empty() && held_.begin()->first <= now) {
            ready.push_back(std::move(held_.begin()->second));
            held_.erase(held_.begin());
        }
        lock.unlock();
        for (auto& h : ready) {
            write_response(h->out, h->resp, h->resource);
            if (h->after_send) {
                h->after_send();
            }
        }
        ready.clear();
        lock.lock();
    }
}

}  // namespace mqttd::api::glue
