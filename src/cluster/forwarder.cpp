#include "cluster/forwarder.h"

#include "cluster/membership.h"
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
                              options_.max_queue_bytes, options_.forward_timeout_ms},
            PeerLink::Callbacks{
                    [this] { return membership_.peer_links(); },
                    [this](const PublishFrame& f, uint64_t cookie) { on_publish(f, cookie); },
                    [this] { on_turn(); },
                    [this](const broker::Token& t, bool ok) {
                        broker::Token done = t;
                        done.failed = !ok;
                        broker_.worker(t.worker).push_completions({done});
                    },
                    log_,
                    [this](const std::string& peer, FrameType type, std::string_view body) {
                        takeovers_.on_frame(peer, type, body);
                    }}),
      takeovers_(broker,
                 membership,
                 link_,
                 Takeovers::Options{options_.endpoints, options_.cluster, options_.node,
                                    options_.takeover_timeout_ms},
                 log_) {}

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
            routes_.add(r.topic_filter);
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
    return {};
}

void Forwarder::stop() {
    takeovers_.stop();
    link_.stop();
    routes_.stop();
}

void Forwarder::claim_client(const std::string& client_id,
                             bool clean_start,
                             broker::ClaimCallback done) {
    takeovers_.claim(client_id, clean_start, std::move(done));
}

void Forwarder::session_installed(uint64_t ticket,
                                  bool stored,
                                  std::function<void(bool owned)> done) {
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

uint32_t Forwarder::forward(const broker::MessagePtr& msg, const broker::Token* token) {
    if (!msg->retain && table_.empty()) {
        return 0;
    }
    thread_local std::vector<uint32_t> ids;
    ids.clear();
    uint32_t answers = 0;
    if (msg->retain) {
        // Every node stores it (and delivers it to its own subscribers), so a SUBSCRIBE on
        // any node sees it; an empty payload deletes it everywhere.
        return link_.send_all(*msg, token);
    }
    table_.match(msg->topic(), ids);
    for (uint32_t id : ids) {
        answers += link_.send(node_name(id), *msg, token) ? 1 : 0;
    }
    return answers;
}

void Forwarder::peer_publish_done(uint64_t cookie, bool ok) {
    link_.answer(cookie, ok);
}

void Forwarder::on_publish(const PublishFrame& f, uint64_t cookie) {
    auto msg = broker::make_message(broker::MessageInit{
            f.topic, f.payload, f.qos, f.retain, f.properties, f.from_client, f.created_at_ms,
            f.expiry_at_ms, broker_.store().next_message_id()});
    const uint32_t w = f.from_client.empty() ? 0 : broker_.home_worker(f.from_client);
    if (incoming_.size() <= w) {
        incoming_.resize(broker_.worker_count());
    }
    incoming_[w].emplace_back(std::move(msg), cookie);
}

void Forwarder::on_turn() {
    for (size_t w = 0; w < incoming_.size(); ++w) {
        if (incoming_[w].empty()) {
            continue;
        }
        auto& worker = broker_.worker(static_cast<uint32_t>(w));
        worker.push_task([&worker, batch = std::move(incoming_[w])] {
            for (const auto& [msg, cookie] : batch) {
                worker.publish_from_peer(msg, cookie);
            }
        });
        incoming_[w].clear();
    }
}

}  // namespace mqttd::cluster
