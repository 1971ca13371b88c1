#include "cluster/forwarder.h"

#include <algorithm>

#include "cluster/membership.h"
#include "common/clock.h"
#include "storage/store.h"

namespace mqttd::cluster {

Forwarder::Forwarder(broker::Broker& broker, const Membership& membership, Options options, Log log)
    : broker_(broker),
      membership_(membership),
      options_(std::move(options)),
      log_(std::move(log)),
      routes_(
              Routes::Options{options_.endpoints, options_.cluster, options_.node},
              membership,
              table_,
              [this](const std::string& name) { return node_id(name); },
              log_),
      link_(PeerLink::Options{options_.listen, options_.node,
                              static_cast<uint64_t>(broker.started_at_ms()),
                              options_.max_queue_bytes, options_.forward_timeout_ms,
                              options_.tls_server, options_.tls_client},
            PeerLink::Callbacks{
                    [this] { return membership_.peer_links(); },
                    [this](const PublishFrame& f, uint64_t cookie) { on_publish(f, cookie); },
                    [this] { on_turn(); },
                    [this](const broker::Token& t, bool ok) {
                        broker::Token done = t;
                        done.failed = !ok;
                        broker_.worker(t.worker).push_completions({done});
                    },
                    [this](const std::string& node) { on_up(node); }, log_,
                    [this](const std::string& peer, FrameType type, std::string_view body) {
                        on_control(peer, type, body);
                    }}),
      takeovers_(broker,
                 membership,
                 link_,
                 Takeovers::Options{options_.endpoints, options_.cluster, options_.node,
                                    options_.takeover_timeout_ms},
                 log_) {
    self_id_ = node_id(options_.node);
}

Forwarder::~Forwarder() {
    stop();
}

std::string Forwarder::start() {
    if (auto err = link_.start(); !err.empty()) {
        return err;
    }
    // The subscriptions recovered from the store are this node's routes from the start.
    storage::PageRequest req;
    req.limit = 1000;
    while (true) {
        auto page = broker_.store().routes(req);
        for (const auto& r : page.items) {
            // Only persistent sessions come back from the store: every route is durable.
            routes_.add(r.topic_filter);
            routes_.durable(r.topic_filter, true);
        }
        if (page.next_cursor.empty()) {
            break;
        }
        req.cursor = page.next_cursor;
    }
    routes_.start();
    // So are their client ids: their keys are put once the node has a lease.
    auto st = broker_.store().for_each_session(
            [this](storage::SessionRecord&& r) { takeovers_.own(std::move(r.client_id)); });
    if (!st.is_ok()) {
        return "cluster: reading the stored sessions: " + st.to_string();
    }
    takeovers_.start();
    sync_thread_ = std::thread([this] { send_retained_sets(); });
    return {};
}

void Forwarder::stop() {
    {
        std::lock_guard lock(sync_mutex_);
        sync_stopping_ = true;
    }
    sync_wake_.notify_all();
    if (sync_thread_.joinable()) {
        sync_thread_.join();
    }
    takeovers_.stop();
    link_.stop();
    routes_.stop();
}

void Forwarder::on_up(const std::string& node) {
    // Once per peer and start: what was retained while this node was away (or before it
    // joined).
    if (!retained_asked_.insert(node).second) {
        return;
    }
    std::string request;
    encode_retained_request(request);
    if (link_.send_control(node, request)) {
        log_(false, "cluster: asked " + node + " for its retained messages");
    }
}

void Forwarder::on_control(const std::string& peer, FrameType type, std::string_view body) {
    if (type != FrameType::RetainedRequest) {
        takeovers_.on_frame(peer, type, body);
        return;
    }
    if (!body.empty()) {
        return;  // malformed
    }
    {
        std::lock_guard lock(sync_mutex_);
        sync_to_.push_back(peer);
    }
    sync_wake_.notify_all();
}

void Forwarder::send_retained_sets() {
    constexpr size_t kMaxQueued = size_t{8} << 20;  // leaves room for live traffic
    while (true) {
        std::string node;
        {
            std::unique_lock lock(sync_mutex_);
            sync_wake_.wait(lock, [this] { return sync_stopping_ || !sync_to_.empty(); });
            if (sync_stopping_) {
                return;
            }
            node = std::move(sync_to_.front());
            sync_to_.erase(sync_to_.begin());
        }
        size_t sent = 0;
        bool gone = false;
        // Paced by the peer's queue: a large set does not crowd out live messages.
        auto room = [&] {
            while (true) {
                auto queued = link_.queued_bytes(node);
                if (!queued) {
                    gone = true;
                    return false;
                }
                std::unique_lock lock(sync_mutex_);
                if (sync_stopping_) {
                    gone = true;
                    return false;
                }
                if (*queued < kMaxQueued) {
                    return true;
                }
                sync_wake_.wait_for(lock, std::chrono::milliseconds(5));
            }
        };
        const storage::Status read =
                broker_.store().match_retained("#", [&](storage::RetainedRecord&& r) {
                    if (!room()) {
                        return false;
                    }
                    auto msg = broker::make_message(
                            broker::MessageInit{r.topic, r.payload, r.qos, true, r.properties, "",
                                                r.stored_at_ms, r.expiry_at_ms, 0});
                    link_.send(node, *msg, nullptr, {}, true);
                    ++sent;
                    return true;
                });
        if (!read.is_ok()) {
            log_(true,
                 "cluster: reading the retained set for " + node + " failed: " + read.message());
        }
        // Then the deletions this node knows of, as empty copies stamped with their time.
        size_t deletions = 0;
        for (const auto& [topic, at_ms] : tombstones()) {
            if (gone || !room()) {
                break;
            }
            auto msg = broker::make_message(
                    broker::MessageInit{topic, "", 0, true, "", "", at_ms, 0, 0});
            link_.send(node, *msg, nullptr, {}, true);
            ++deletions;
        }
        log_(false, "cluster: sent " + std::to_string(sent) + " retained messages and " +
                            std::to_string(deletions) + " deletions to " + node +
                            (gone ? " (stopped: the node left or this one stops)" : ""));
    }
}

void Forwarder::claim_client(const std::string& client_id,
                             bool clean_start,
                             broker::ClaimCallback done) {
    takeovers_.claim(client_id, clean_start, std::move(done));
}

void Forwarder::session_installed(uint64_t ticket,
                                  bool stored,
                                  std::function<void(bool owned, int64_t revision)> done) {
    takeovers_.installed(ticket, stored, std::move(done));
}

void Forwarder::client_released(const std::string& client_id) {
    takeovers_.released(client_id);
}

void Forwarder::filter_added(std::string_view filter) {
    routes_.add(filter);
}

void Forwarder::filter_removed(std::string_view filter) {
    routes_.remove(filter);
}

void Forwarder::filter_durable(std::string_view filter, bool durable) {
    routes_.durable(filter, durable);
}

uint32_t Forwarder::node_id(const std::string& name) {
    std::lock_guard lock(names_mutex_);
    auto [it, inserted] = ids_.emplace(name, static_cast<uint32_t>(names_.size()));
    if (inserted) {
        names_.push_back(name);
    }
    return it->second;
}

std::string Forwarder::node_name(uint32_t id) {
    std::lock_guard lock(names_mutex_);
    return id < names_.size() ? names_[id] : std::string();
}

void Forwarder::pick_shared(std::string_view topic, broker::SharedPicks& picks) {
    if (!table_.has_groups()) {
        return;
    }
    thread_local std::vector<std::pair<std::string, uint32_t>> groups;
    groups.clear();
    // A node whose link is down (killed: its routes stay until its lease ends) is passed over
    // while another node has members.
    table_.pick_groups(topic, groups, [this](uint32_t node) {
        return node == self_id_ || link_.linked(node_name(node));
    });
    for (auto& [key, node] : groups) {
        if (node != self_id_) {
            picks.elsewhere.push_back(key);
            picks.remote.emplace_back(node, std::move(key));
        }
    }
}

uint32_t Forwarder::forward(const broker::MessagePtr& msg,
                            const broker::Token* token,
                            const broker::SharedPicks& picks,
                            int64_t& stamp) {
    // Before empty(): an empty table is one at this revision or later (RouteTable).
    stamp = table_.revision();
    if (!msg->retain && table_.empty()) {
        return 0;
    }
    // The groups picked for `node`.
    auto groups_of = [&picks](uint32_t node) {
        std::vector<std::string_view> out;
        for (const auto& [id, key] : picks.remote) {
            if (id == node) {
                out.push_back(key);
            }
        }
        return out;
    };
    if (msg->retain) {
        // Every node stores it (and delivers it to its own subscribers), so a SUBSCRIBE on
        // any node sees it; an empty payload deletes it everywhere.
        return link_.send_all(
                *msg, token,
                [&](const std::string& name) {
                    return picks.remote.empty() ? std::vector<std::string_view>{}
                                                : groups_of(node_id(name));
                },
                stamp);
    }
    thread_local std::vector<RouteTable::Target> targets;
    targets.clear();
    stamp = table_.match(msg->topic(), targets);
    if (!picks.remote.empty()) {
        // A group's member may be a persistent session: a picked node is waited for.
        for (const auto& [id, key] : picks.remote) {
            targets.push_back(RouteTable::Target{id, true});
        }
        RouteTable::merge(targets);
    }
    uint32_t answers = 0;
    for (const auto& t : targets) {  // never this node: its plain routes are not in table_
        // A clean route's node gets the message without an answer: nothing durable waits
        // there, so the publisher's PUBACK does not wait for it.
        answers += link_.send(node_name(t.node), *msg, t.durable ? token : nullptr,
                              picks.remote.empty() ? std::vector<std::string_view>{}
                                                   : groups_of(t.node),
                              false, stamp)
                           ? 1
                           : 0;
    }
    return answers;
}

uint32_t Forwarder::relay(const std::string& node,
                          const std::string& client_id,
                          const broker::MessagePtr& msg,
                          uint8_t qos,
                          bool retain,
                          const broker::SubscriptionIds& subscription_ids,
                          const broker::Token* token) {
    RelayTarget target{client_id, qos, retain, {}};
    subscription_ids.for_each([&](uint32_t id) { target.subscription_ids.push_back(id); });
    return link_.send(node, *msg, token, {}, false, 0, &target) ? 1 : 0;
}

void Forwarder::peer_publish_done(uint64_t cookie, bool ok) {
    link_.answer(cookie, ok);
}

void Forwarder::retained_deleted(std::string_view topic, int64_t at_ms) {
    std::lock_guard lock(tomb_mutex_);
    auto [it, fresh] = tombstones_.try_emplace(std::string(topic), at_ms);
    if (!fresh) {
        it->second = std::max(it->second, at_ms);
        return;
    }
    if (tombstones_.size() <= kMaxTombstones) {
        return;
    }
    // Over the bound: the expired ones go, else the oldest tenth.
    const int64_t expired = unix_ms() - kTombstoneMs;
    std::erase_if(tombstones_, [expired](const auto& t) { return t.second < expired; });
    if (tombstones_.size() > kMaxTombstones) {
        std::vector<int64_t> times;
        times.reserve(tombstones_.size());
        for (const auto& [t, when] : tombstones_) {
            times.push_back(when);
        }
        auto cut = times.begin() + static_cast<std::ptrdiff_t>(times.size() / 10);
        std::nth_element(times.begin(), cut, times.end());
        const int64_t before = *cut;
        std::erase_if(tombstones_, [before](const auto& t) { return t.second <= before; });
    }
}

bool Forwarder::tombstoned(std::string_view topic, int64_t at_ms) {
    std::lock_guard lock(tomb_mutex_);
    auto it = tombstones_.find(std::string(topic));
    return it != tombstones_.end() && it->second >= at_ms;
}

std::vector<std::pair<std::string, int64_t>> Forwarder::tombstones() {
    const int64_t expired = unix_ms() - kTombstoneMs;
    std::lock_guard lock(tomb_mutex_);
    std::erase_if(tombstones_, [expired](const auto& t) { return t.second < expired; });
    return {tombstones_.begin(), tombstones_.end()};
}

void Forwarder::on_publish(const PublishFrame& f, uint64_t cookie) {
    if (f.retained_copy) {
        if (f.payload.empty()) {
            // A deletion the peer knows of: kept here too, for the next node that asks.
            retained_deleted(f.topic, f.created_at_ms);
        } else if (tombstoned(f.topic, f.created_at_ms)) {
            return;  // deleted after it was published: the copy is stale
        }
    }
    auto msg = broker::make_message(broker::MessageInit{
            f.topic, f.payload, f.qos, f.retain, f.properties, f.from_client, f.created_at_ms,
            f.expiry_at_ms, broker_.store().next_message_id()});
    // A relay goes to its session's worker; any other message to its publisher's.
    const uint32_t w = f.relay                 ? broker_.home_worker(f.relay->client_id)
                       : f.from_client.empty() ? 0
                                               : broker_.home_worker(f.from_client);
    if (incoming_.size() <= w) {
        incoming_.resize(broker_.worker_count());
    }
    Incoming in;
    in.msg = std::move(msg);
    in.cookie = cookie;
    in.groups.assign(f.groups.begin(), f.groups.end());
    in.retained_copy = f.retained_copy;
    in.stamp = f.stamp;
    if (f.relay) {
        in.relay_to.assign(f.relay->client_id);
        in.relay_qos = f.relay->qos;
        in.relay_retain = f.relay->retain;
        for (uint32_t id : f.relay->subscription_ids) {
            in.relay_ids.add(id);
        }
    }
    incoming_[w].push_back(std::move(in));
}

void Forwarder::on_turn() {
    for (size_t w = 0; w < incoming_.size(); ++w) {
        if (incoming_[w].empty()) {
            continue;
        }
        auto& worker = broker_.worker(static_cast<uint32_t>(w));
        worker.push_task([&worker, batch = std::move(incoming_[w])] {
            for (const auto& in : batch) {
                if (in.retained_copy) {
                    worker.adopt_retained(in.msg);
                } else if (!in.relay_to.empty()) {
                    worker.deliver_relayed(in.msg, in.cookie, in.relay_to, in.relay_qos,
                                           in.relay_retain, in.relay_ids);
                } else {
                    worker.publish_from_peer(in.msg, in.cookie, in.groups, in.stamp);
                }
            }
        });
        incoming_[w].clear();
    }
}

}  // namespace mqttd::cluster
