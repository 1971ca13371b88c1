#include "broker/admin.h"

#include <algorithm>
#include <atomic>
#include <future>
#include <iterator>
#include <limits>
#include <memory>

#include "broker/broker.h"
#include "common/clock.h"

namespace mqttd::broker {
namespace {

constexpr auto kTaskTimeout = std::chrono::seconds(5);
constexpr uint64_t kAllClients = std::numeric_limits<size_t>::max();

// Runs `fn` on worker `w` and waits for its result; nullopt when the worker did not answer
// in time (it is stopping, or stuck).
template <typename Fn>
auto run_on(Broker& broker, uint32_t w, Fn fn) -> std::optional<decltype(fn(broker.worker(w)))> {
    using R = decltype(fn(broker.worker(w)));
    auto promise = std::make_shared<std::promise<R>>();
    auto future = promise->get_future();
    Worker& worker = broker.worker(w);
    worker.push_task(
            [promise, fn = std::move(fn), &worker]() mutable { promise->set_value(fn(worker)); });
    if (future.wait_for(kTaskTimeout) != std::future_status::ready) {
        return std::nullopt;
    }
    return future.get();
}

}  // namespace

std::optional<ClientView> Admin::client(const std::string& client_id) {
    uint32_t w = broker_.home_worker(client_id);
    auto r = run_on(broker_, w,
                    [client_id](Worker& worker) { return worker.client_view(client_id); });
    return r ? *r : std::nullopt;
}

std::vector<ClientView> Admin::clients(uint64_t offset, uint64_t limit, bool clean_only) {
    // Each worker sends its first offset + limit clients in client-id order; the page is cut
    // from their merge. A worker that does not answer in time is left out.
    auto n = static_cast<size_t>(offset > kAllClients - limit ? kAllClients : offset + limit);
    std::vector<ClientView> all;
    for (uint32_t w = 0; w < broker_.worker_count(); ++w) {
        auto r = run_on(broker_, w, [n, clean_only](Worker& worker) {
            return worker.client_views(n, clean_only);
        });
        if (r) {
            all.insert(all.end(), std::make_move_iterator(r->begin()),
                       std::make_move_iterator(r->end()));
        }
    }
    std::sort(all.begin(), all.end(),
              [](const ClientView& a, const ClientView& b) { return a.client_id < b.client_id; });
    std::vector<ClientView> out;
    for (uint64_t i = offset; i < all.size() && out.size() < limit; ++i) {
        out.push_back(std::move(all[static_cast<size_t>(i)]));
    }
    return out;
}

uint64_t Admin::client_count() const {
    uint64_t n = 0;
    for (uint32_t w = 0; w < broker_.worker_count(); ++w) {
        n += broker_.worker(w).connection_count();
    }
    return n;
}

uint64_t Admin::clean_client_count() const {
    uint64_t n = 0;
    for (uint32_t w = 0; w < broker_.worker_count(); ++w) {
        n += broker_.worker(w).clean_session_count();
    }
    return n;
}

bool Admin::kick(const std::string& client_id) {
    uint32_t w = broker_.home_worker(client_id);
    auto r = run_on(broker_, w, [client_id](Worker& worker) { return worker.kick(client_id); });
    return r.value_or(false);
}

Admin::SessionDelete Admin::delete_session(const std::string& client_id) {
    uint32_t w = broker_.home_worker(client_id);
    auto done = std::make_shared<std::promise<int>>();
    auto future = done->get_future();
    Worker& worker = broker_.worker(w);
    worker.push_task([&worker, client_id, done] {
        int r = worker.delete_session(client_id);
        if (r != 0) {
            done->set_value(r);
            return;
        }
        worker.after_commit([done] { done->set_value(0); });
    });
    if (future.wait_for(kTaskTimeout) != std::future_status::ready) {
        return SessionDelete::Timeout;
    }
    switch (future.get()) {
        case 0:
            return SessionDelete::Deleted;
        case 2:
            return SessionDelete::Online;
        default:
            return SessionDelete::NotFound;
    }
}

std::optional<SessionView> Admin::session(const std::string& client_id) {
    uint32_t w = broker_.home_worker(client_id);
    auto r = run_on(broker_, w,
                    [client_id](Worker& worker) { return worker.session_view(client_id); });
    return r ? *r : std::nullopt;
}

std::vector<SessionView> Admin::sessions(const std::vector<std::string>& client_ids) {
    std::vector<std::vector<std::string>> by_worker(broker_.worker_count());
    for (const auto& id : client_ids) {
        by_worker[broker_.home_worker(id)].push_back(id);
    }
    std::map<std::string, SessionView> found;
    for (uint32_t w = 0; w < broker_.worker_count(); ++w) {
        if (by_worker[w].empty()) {
            continue;
        }
        auto ids = by_worker[w];
        auto r = run_on(broker_, w, [ids](Worker& worker) {
            std::vector<SessionView> views;
            for (const auto& id : ids) {
                if (auto v = worker.session_view(id)) {
                    views.push_back(std::move(*v));
                }
            }
            return views;
        });
        if (r) {
            for (auto& v : *r) {
                found.emplace(v.client_id, std::move(v));
            }
        }
    }
    std::vector<SessionView> out;
    for (const auto& id : client_ids) {
        if (auto it = found.find(id); it != found.end()) {
            out.push_back(it->second);
        }
    }
    return out;
}

std::optional<std::vector<SubscriptionView>> Admin::subscriptions_of(const std::string& client_id) {
    uint32_t w = broker_.home_worker(client_id);
    auto r = run_on(broker_, w,
                    [client_id](Worker& worker) { return worker.subscriptions_view(client_id); });
    return r ? *r : std::nullopt;
}

bool Admin::subscribe(const std::string& client_id, const std::string& filter, uint8_t qos) {
    uint32_t w = broker_.home_worker(client_id);
    auto r = run_on(broker_, w,
                    [=](Worker& worker) { return worker.admin_subscribe(client_id, filter, qos); });
    return r.value_or(false);
}

bool Admin::unsubscribe(const std::string& client_id, const std::string& filter) {
    uint32_t w = broker_.home_worker(client_id);
    auto r = run_on(broker_, w,
                    [=](Worker& worker) { return worker.admin_unsubscribe(client_id, filter); });
    return r.value_or(false);
}

bool Admin::publish(const std::string& topic,
                    const std::string& payload,
                    uint8_t qos,
                    bool retain,
                    const std::string& client_id) {
    uint32_t w = broker_.home_worker(client_id);
    auto msg = make_message(MessageInit{topic,
                                        payload,
                                        qos,
                                        retain,
                                        {},
                                        client_id,
                                        unix_ms(),
                                        0,
                                        broker_.store().next_message_id()});
    // Answered once the message is in the store for every session it was routed to: after
    // the publishing worker's commit, every worker commits what it has by then (deliveries
    // from this publish reach a worker's inbox before the task that asks for its commit).
    auto done = std::make_shared<std::promise<void>>();
    auto future = done->get_future();
    auto remaining = std::make_shared<std::atomic<uint32_t>>(broker_.worker_count());
    Broker& broker = broker_;
    Worker& worker = broker_.worker(w);
    worker.push_task([&broker, &worker, msg, done, remaining] {
        worker.publish(msg, nullptr, nullptr);
        worker.after_commit([&broker, done, remaining] {
            for (uint32_t i = 0; i < broker.worker_count(); ++i) {
                Worker& other = broker.worker(i);
                other.push_task([&other, done, remaining] {
                    other.after_commit([done, remaining] {
                        if (remaining->fetch_sub(1) == 1) {
                            done->set_value();
                        }
                    });
                });
            }
        });
    });
    return future.wait_for(kTaskTimeout) == std::future_status::ready;
}

bool Admin::clean_acl_cache(const std::string& client_id, const std::string& topic) {
    uint32_t w = broker_.home_worker(client_id);
    auto r = run_on(broker_, w,
                    [=](Worker& worker) { return worker.clean_acl_cache(client_id, topic); });
    return r.value_or(false);
}

Admin::RetainedDelete Admin::delete_retained(const std::string& topic) {
    auto barrier = std::make_shared<std::promise<void>>();
    auto passed = barrier->get_future();
    auto remaining = std::make_shared<std::atomic<uint32_t>>(broker_.worker_count());
    for (uint32_t i = 0; i < broker_.worker_count(); ++i) {
        Worker& w = broker_.worker(i);
        w.push_task([&w, barrier, remaining] {
            w.after_commit([barrier, remaining] {
                if (remaining->fetch_sub(1) == 1) {
                    barrier->set_value();
                }
            });
        });
    }
    if (passed.wait_for(kTaskTimeout) != std::future_status::ready) {
        return RetainedDelete::Timeout;
    }
    auto done = std::make_shared<std::promise<bool>>();
    auto deleted = done->get_future();
    Worker& w = broker_.worker(broker_.home_worker(topic));
    w.push_task([&w, topic, done] {
        if (!w.delete_retained(topic)) {
            done->set_value(false);
            return;
        }
        w.after_commit([done] { done->set_value(true); });
    });
    if (deleted.wait_for(kTaskTimeout) != std::future_status::ready) {
        return RetainedDelete::Timeout;
    }
    return deleted.get() ? RetainedDelete::Deleted : RetainedDelete::NotFound;
}

Admin::AclReload Admin::reload_acl() {
    AclReload out;
    auto file = broker_.extensions().acl_file.load();
    if (!file) {
        out.error = "no ACL file configured";
        return out;
    }
    auto r = file->reload();
    if (!r) {
        out.error = r.error();
    }
    out.path = file->path();
    out.rules = file->rules()->size();
    return out;
}

auth::CredentialStore* Admin::usernames() {
    return broker_.extensions().usernames.get();
}

auth::CredentialStore* Admin::client_ids() {
    return broker_.extensions().client_ids.get();
}

const std::string& Admin::node_name() const {
    return broker_.settings().node_name;
}

const std::string& Admin::version() const {
    return broker_.settings().version;
}

int64_t Admin::started_at_ms() const {
    return broker_.started_at_ms();
}

uint32_t Admin::max_packet_size() const {
    return broker_.settings().max_packet_size.load(std::memory_order_relaxed);
}

std::vector<std::pair<std::string, uint64_t>> Admin::auth_metrics() const {
    std::vector<std::pair<std::string, uint64_t>> out;
    for (const auto& stats : broker_.extensions().backend_stats) {
        auto m = stats->metrics();
        out.insert(out.end(), m.begin(), m.end());
    }
    return out;
}

MetricsSnapshot Admin::metrics() const {
    return broker_.metrics_snapshot();
}

std::map<std::string, uint64_t> Admin::stats() {
    return broker_.stats();
}

Result<storage::BackupInfo, storage::Status> Admin::backup(const std::string& backup_dir,
                                                           const std::string& name) {
    return storage::create_backup(broker_.store(), backup_dir, name);
}

Result<std::vector<storage::BackupInfo>, storage::Status> Admin::backups(
        const std::string& backup_dir) const {
    return storage::list_backups(backup_dir);
}

storage::Status Admin::delete_backup(const std::string& backup_dir, const std::string& name) {
    return storage::delete_backup(backup_dir, name);
}

}  // namespace mqttd::broker
