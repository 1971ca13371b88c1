#include "cluster/takeovers.h"

#include <chrono>

#include "cluster/membership.h"
#include "cluster/route_table.h"
#include "cluster/routes.h"
#include "common/clock.h"

namespace mqttd::cluster {
namespace {

constexpr int64_t kTickMs = 200;

}  // namespace

Takeovers::Takeovers(broker::Broker& broker,
                     const Membership& membership,
                     PeerLink& link,
                     Options options,
                     Log log)
    : broker_(broker),
      membership_(membership),
      link_(link),
      options_(std::move(options)),
      log_(std::move(log)),
      etcd_(options_.endpoints),
      prefix_(options_.cluster + "/clients/") {}

Takeovers::~Takeovers() {
    stop();
}

void Takeovers::own(std::string client_id) {
    owned_.insert(std::move(client_id));
}

void Takeovers::start() {
    thread_ = std::thread([this] { run(); });
}

void Takeovers::stop() {
    {
        std::lock_guard lock(mutex_);
        if (stopping_.exchange(true)) {
            return;
        }
    }
    wake_.notify_all();
    if (thread_.joinable()) {
        thread_.join();
    }
    // What still waits is refused: the node is stopping.
    for (auto& [request, a] : asking_) {
        if (a.deadline_ms != 0 && a.done) {
            a.done(broker::ClaimAnswer{broker::ClaimAnswer::Kind::Refused, 0, nullptr});
        }
    }
    asking_.clear();
    for (auto& [request, q] : querying_) {
        q.done(broker::ClaimAnswer{broker::ClaimAnswer::Kind::Refused, 0, nullptr});
    }
    querying_.clear();
    std::deque<Task> left;
    std::deque<Claim> claims;
    {
        std::lock_guard lock(mutex_);
        left.swap(tasks_);
        claims.swap(claims_);
    }
    for (auto& t : left) {
        t();
    }
    do_claims(claims);  // each answers Refused: stopping_
}

void Takeovers::post(Task t) {
    {
        std::lock_guard lock(mutex_);
        tasks_.push_back(std::move(t));
    }
    wake_.notify_one();
}

std::string Takeovers::key_of(const std::string& client_id) const {
    return prefix_ + client_id;
}

void Takeovers::claim(const std::string& client_id, bool clean_start, broker::ClaimCallback done) {
    {
        std::lock_guard lock(mutex_);
        if (!stopping_) {
            claims_.push_back(Claim{client_id, clean_start, std::move(done)});
            wake_.notify_one();
            return;
        }
    }
    done(broker::ClaimAnswer{broker::ClaimAnswer::Kind::Refused, 0, nullptr});  // stopped
}

void Takeovers::do_claims(std::deque<Claim>& claims) {
    while (!claims.empty()) {
        const int64_t lease = membership_.lease();
        if (stopping_ || lease == 0) {
            for (auto& c : claims) {
                do_claim(c.client_id, c.clean_start, c.done);
            }
            claims.clear();
            return;
        }
        // Distinct ids in order, at most a batch; a repeated id waits for the next batch.
        std::vector<Claim> batch;
        std::deque<Claim> later;
        std::set<std::string> ids;
        while (!claims.empty() && batch.size() < EtcdClient::kMaxBatch) {
            Claim c = std::move(claims.front());
            claims.pop_front();
            if (ids.insert(c.client_id).second) {
                batch.push_back(std::move(c));
            } else {
                later.push_back(std::move(c));
            }
        }
        claims.insert(claims.begin(), std::make_move_iterator(later.begin()),
                      std::make_move_iterator(later.end()));
        std::vector<std::string> keys;
        for (const auto& c : batch) {
            keys.push_back(key_of(c.client_id));
        }
        auto outcomes = etcd_.create_each(keys, options_.node, lease);
        for (size_t i = 0; i < batch.size(); ++i) {
            const EtcdResult<EtcdClient::CreateOutcome> first =
                    outcomes ? EtcdResult<EtcdClient::CreateOutcome>((*outcomes)[i])
                             : EtcdResult<EtcdClient::CreateOutcome>(Err{outcomes.error()});
            do_claim(batch[i].client_id, batch[i].clean_start, batch[i].done, &first);
        }
    }
}

void Takeovers::installed(uint64_t ticket,
                          bool stored,
                          std::function<void(bool owned, int64_t revision)> done) {
    post([this, ticket, stored, done = std::move(done)] {
        auto it = asking_.find(ticket);
        if (it == asking_.end()) {
            done(false, 0);
            return;
        }
        Asking a = std::move(it->second);
        asking_.erase(it);
        if (!stored || stopping_) {
            send_done(a.owner, ticket, a.client_id, false);
            refused(a.client_id, "its session from " + a.owner + " could not be stored");
            done(false, 0);
            return;
        }
        const int64_t revision = take_key(a.client_id, a.mod_revision, a.filters);
        if (revision == 0) {
            send_done(a.owner, ticket, a.client_id, false);
            refused(a.client_id, "its key changed while its session moved from " + a.owner);
            done(false, 0);
            return;
        }
        owned_.insert(a.client_id);
        released_.erase(a.client_id);
        send_done(a.owner, ticket, a.client_id, true, revision);
        log_(false, "cluster: client " + a.client_id + " taken over from " + a.owner +
                            " with its session");
        done(true, revision);
    });
}

void Takeovers::released(const std::string& client_id) {
    post([this, client_id] {
        owned_.erase(client_id);
        released_.insert(client_id);  // deleted after this turn's tasks and claims (run)
    });
}

void Takeovers::refused(const std::string& client_id, const std::string& why) {
    // An etcd out of reach refuses every takeover: one line a second, with a count.
    const int64_t now = mono_ms();
    if (now - last_refusal_log_ms_ >= 1000) {
        log_(true,
             "cluster: client " + client_id + " refused: " + why +
                     (refusals_unlogged_ > 0 ? " (and " + std::to_string(refusals_unlogged_) +
                                                       " more refused since the last such line)"
                                             : std::string()));
        last_refusal_log_ms_ = now;
        refusals_unlogged_ = 0;
    } else {
        ++refusals_unlogged_;
    }
}

void Takeovers::do_claim(const std::string& client_id,
                         bool clean_start,
                         broker::ClaimCallback& done,
                         const EtcdResult<EtcdClient::CreateOutcome>* first) {
    using Kind = broker::ClaimAnswer::Kind;
    auto answer = [&](Kind k) {
        done(broker::ClaimAnswer{k, 0, nullptr});
    };
    if (stopping_) {
        answer(Kind::Refused);
        return;
    }
    const int64_t lease = membership_.lease();
    const bool ours = owned_.contains(client_id);
    if (lease == 0) {
        // Not joined (etcd out of reach since the start, or the lease lost).
        if (ours) {
            answer(Kind::Local);
        } else {
            query_peers(client_id, done);
        }
        return;
    }
    const std::string key = key_of(client_id);
    for (int attempt = 0; attempt < 3; ++attempt) {
        KeyValue existing;
        EtcdResult<bool> created = false;
        if (attempt == 0 && first != nullptr) {
            if (*first) {
                created = (*first)->created;
                existing = (*first)->existing;
            } else {
                created = Err{first->error()};
            }
        } else {
            created = etcd_.create(key, options_.node, lease, &existing);
        }
        if (!created) {
            if (ours) {
                answer(Kind::Local);  // this node's own client: served while etcd is away
            } else {
                query_peers(client_id, done);
            }
            return;
        }
        if (*created) {
            owned_.insert(client_id);
            released_.erase(client_id);
            answer(Kind::Local);
            return;
        }
        if (existing.key.empty()) {
            continue;  // deleted between the compare and the read: try again
        }
        if (existing.value == options_.node) {
            if (existing.lease != lease) {
                (void)etcd_.put(key, options_.node, lease);  // an old lease of this node's
            }
            owned_.insert(client_id);
            released_.erase(client_id);
            answer(Kind::Local);
            return;
        }
        const uint64_t request = next_request_++;
        std::string frame;
        encode_takeover_request(frame, TakeoverRequestFrame{request, clean_start, client_id});
        if (!link_.send_control(existing.value, frame)) {
            refused(client_id, "its owner " + existing.value + " is not linked to this node");
            answer(Kind::Refused);
            return;
        }
        asking_.emplace(request, Asking{client_id,
                                        existing.value,
                                        existing.mod_revision,
                                        std::move(done),
                                        mono_ms() + options_.timeout_ms,
                                        {}});
        return;
    }
    refused(client_id, "its key in etcd keeps changing");
    answer(Kind::Refused);
}

void Takeovers::query_peers(const std::string& client_id, broker::ClaimCallback& done) {
    const uint64_t request = next_request_++;
    std::string frame;
    encode_owner_query(frame, OwnerQueryFrame{request, client_id});
    Querying q{client_id, {}, nullptr, mono_ms() + options_.timeout_ms};
    for (const auto& [peer, address] : membership_.peer_links()) {
        // A member whose link is down cannot be asked, nor can its clients have reached it
        // through this node: it is not waited for (availability while etcd is away; when etcd
        // is back the key decides, and keep_keys logs an id found owned elsewhere).
        if (link_.send_control(peer, frame)) {
            q.waiting.insert(peer);
        }
    }
    if (q.waiting.empty()) {
        owned_.insert(client_id);  // its key is put when etcd is back (keep_keys)
        owned_lease_ = 0;
        done(broker::ClaimAnswer{broker::ClaimAnswer::Kind::Local, 0, nullptr});
        return;
    }
    q.done = std::move(done);
    querying_.emplace(request, std::move(q));
}

void Takeovers::on_owner_answer(const std::string& peer, OwnerAnswerFrame f) {
    auto it = querying_.find(f.request);
    if (it == querying_.end() || it->second.waiting.erase(peer) == 0) {
        return;
    }
    Querying& q = it->second;
    if (f.owns) {
        refused(q.client_id, "owned by " + peer +
                                     ", and etcd, which a takeover needs, is "
                                     "unreachable");
        q.done(broker::ClaimAnswer{broker::ClaimAnswer::Kind::Refused, 0, nullptr});
        querying_.erase(it);
        return;
    }
    if (q.waiting.empty()) {
        owned_.insert(q.client_id);  // its key is put when etcd is back (keep_keys)
        owned_lease_ = 0;
        q.done(broker::ClaimAnswer{broker::ClaimAnswer::Kind::Local, 0, nullptr});
        querying_.erase(it);
    }
}

int64_t Takeovers::take_key(const std::string& client_id,
                            int64_t mod_revision,
                            const std::vector<std::string>& filters) {
    const int64_t lease = membership_.lease();
    if (lease == 0) {
        return 0;
    }
    // This node's routes for the session's filters, written again (a fresh revision even where
    // they were there already): from this revision on the session's messages are this node's
    // to deliver, below it the old owner's, which relays them.
    std::vector<std::pair<std::string, std::string>> routes;
    for (const auto& f : filters) {
        routes.emplace_back(
                Routes::etcd_key(options_.cluster, RouteTable::route_key(f), options_.node), "");
    }
    const std::string key = key_of(client_id);
    auto replaced = etcd_.replace(key, mod_revision, options_.node, lease, routes);
    if (!replaced) {
        return 0;
    }
    if (*replaced != 0) {
        return *replaced;
    }
    // The old owner's key went meanwhile (its clean session ended with the takeover, or its
    // lease expired): nobody owns the id, so it may be created.
    auto created = etcd_.replace(key, 0, options_.node, lease, routes);
    return created ? *created : 0;
}

void Takeovers::send_done(const std::string& peer,
                          uint64_t request,
                          const std::string& client_id,
                          bool moved,
                          int64_t revision) {
    std::string frame;
    encode_takeover_done(frame, TakeoverDoneFrame{request, moved, client_id, revision});
    (void)link_.send_control(peer, frame);  // lost: the owner asks etcd when its wait ends
}

void Takeovers::on_frame(const std::string& peer, FrameType type, std::string_view body) {
    if (type == FrameType::TakeoverRequest) {
        auto f = decode_takeover_request(body);
        if (!f) {
            return;
        }
        const std::string client_id(f->client_id);
        const uint64_t request = f->request;
        {
            std::lock_guard lock(mutex_);
            // Twice the asker's wait: past it, the asker has given up or owns the id.
            giving_[{peer, request}] = Giving{client_id, mono_ms() + 2 * options_.timeout_ms};
        }
        auto& worker = broker_.worker(broker_.home_worker(client_id));
        worker.push_task([this, &worker, peer, request, client_id, drop = f->drop] {
            worker.hand_over(client_id, drop, [this, peer, request, client_id](broker::HandOver h) {
                SessionStateFrame s;
                s.request = request;
                switch (h.kind) {
                    case broker::HandOver::Kind::Session:
                        s.status = SessionStateFrame::Status::Session;
                        s.session = std::move(*h.session);
                        break;
                    case broker::HandOver::Kind::None:
                        s.status = SessionStateFrame::Status::None;
                        break;
                    case broker::HandOver::Kind::Busy:
                        s.status = SessionStateFrame::Status::Busy;
                        break;
                }
                std::string frame;
                encode_session_state(frame, s);
                (void)link_.send_control(peer, frame);
                if (h.kind != broker::HandOver::Kind::Session) {
                    {
                        std::lock_guard lock(mutex_);
                        giving_.erase({peer, request});
                    }
                    if (h.kind == broker::HandOver::Kind::None) {
                        post([this, client_id] { owned_.erase(client_id); });
                    }
                }
            });
        });
    } else if (type == FrameType::SessionState) {
        auto f = decode_session_state(body);
        if (!f) {
            return;
        }
        post([this, peer, f = std::make_shared<SessionStateFrame>(std::move(*f))] {
            on_session_state(peer, std::move(*f));
        });
    } else if (type == FrameType::OwnerQuery) {
        auto f = decode_owner_query(body);
        if (!f) {
            return;
        }
        post([this, peer, request = f->request, client_id = std::string(f->client_id)] {
            std::string frame;
            encode_owner_answer(frame, OwnerAnswerFrame{request, owned_.contains(client_id)});
            (void)link_.send_control(peer, frame);
        });
    } else if (type == FrameType::OwnerAnswer) {
        auto f = decode_owner_answer(body);
        if (!f) {
            return;
        }
        post([this, peer, f = *f] { on_owner_answer(peer, f); });
    } else if (type == FrameType::TakeoverDone) {
        auto f = decode_takeover_done(body);
        if (!f) {
            return;
        }
        const std::string client_id(f->client_id);
        {
            std::lock_guard lock(mutex_);
            giving_.erase({peer, f->request});
        }
        if (f->moved) {
            post([this, client_id] { owned_.erase(client_id); });
        }
        auto& worker = broker_.worker(broker_.home_worker(client_id));
        worker.push_task([&worker, client_id, peer, moved = f->moved, revision = f->revision] {
            worker.hand_over_done(client_id, moved, moved ? revision : 0, peer);
        });
    }
}

void Takeovers::on_session_state(const std::string& peer, SessionStateFrame f) {
    using Kind = broker::ClaimAnswer::Kind;
    auto it = asking_.find(f.request);
    if (it == asking_.end() || it->second.owner != peer || it->second.deadline_ms == 0) {
        // Too late (refused already): the owner keeps its session.
        if (f.status == SessionStateFrame::Status::Session) {
            send_done(peer, f.request, f.session.session.client_id, false);
        }
        return;
    }
    Asking& a = it->second;
    if (f.status == SessionStateFrame::Status::Busy) {
        refused(a.client_id, "its owner " + peer + " is handing it to another node");
        a.done(broker::ClaimAnswer{Kind::Refused, 0, nullptr});
        asking_.erase(it);
        return;
    }
    if (f.status == SessionStateFrame::Status::None) {
        // No session to move (a clean one, or dropped for Clean Start): the id only.
        const bool owned = take_key(a.client_id, a.mod_revision) != 0;
        if (owned) {
            owned_.insert(a.client_id);
            released_.erase(a.client_id);
        } else {
            refused(a.client_id, "its key changed while it was taken from " + peer);
        }
        a.done(broker::ClaimAnswer{owned ? Kind::Local : Kind::Refused, 0, nullptr});
        asking_.erase(it);
        return;
    }
    if (f.session.session.client_id != a.client_id) {
        send_done(peer, f.request, f.session.session.client_id, false);
        refused(a.client_id, "its owner " + peer + " answered for another client");
        a.done(broker::ClaimAnswer{Kind::Refused, 0, nullptr});
        asking_.erase(it);
        return;
    }
    a.deadline_ms = 0;  // the worker stores it and answers through installed()
    for (const auto& sub : f.session.subscriptions) {
        a.filters.push_back(sub.topic_filter);
    }
    auto done = std::move(a.done);
    done(broker::ClaimAnswer{Kind::Install, f.request,
                             std::make_shared<broker::SessionTransfer>(std::move(f.session))});
}

void Takeovers::expire(int64_t now_ms) {
    for (auto it = asking_.begin(); it != asking_.end();) {
        Asking& a = it->second;
        if (a.deadline_ms == 0 || a.deadline_ms > now_ms) {
            ++it;
            continue;
        }
        refused(a.client_id, "its owner " + a.owner + " did not answer within " +
                                     std::to_string(options_.timeout_ms / 1000) + " s");
        a.done(broker::ClaimAnswer{broker::ClaimAnswer::Kind::Refused, 0, nullptr});
        send_done(a.owner, it->first, a.client_id, false);
        it = asking_.erase(it);
    }
    for (auto it = querying_.begin(); it != querying_.end();) {
        if (it->second.deadline_ms > now_ms) {
            ++it;
            continue;
        }
        refused(it->second.client_id, "etcd unreachable and " + *it->second.waiting.begin() +
                                              " did not say whether it owns it");
        it->second.done(broker::ClaimAnswer{broker::ClaimAnswer::Kind::Refused, 0, nullptr});
        it = querying_.erase(it);
    }
    std::vector<std::string> lapsed;
    {
        std::lock_guard lock(mutex_);
        for (auto it = giving_.begin(); it != giving_.end();) {
            if (it->second.deadline_ms <= now_ms) {
                lapsed.push_back(it->second.client_id);
                it = giving_.erase(it);
            } else {
                ++it;
            }
        }
    }
    for (const auto& client_id : lapsed) {
        // No TakeoverDone came: the key says who owns the id now.
        auto kvs = etcd_.range(key_of(client_id));
        const bool moved = kvs && !kvs->empty() && kvs->front().value != options_.node;
        if (moved) {
            owned_.erase(client_id);
        } else if (kvs && kvs->empty()) {
            owned_lease_ = 0;  // put this node's keys again, this one included
        }
        auto& worker = broker_.worker(broker_.home_worker(client_id));
        // Where the messages routed here meanwhile belong is not known without the answer:
        // the copy ends as it is (README "Messages during a move").
        worker.push_task(
                [&worker, client_id, moved] { worker.hand_over_done(client_id, moved, 0, {}); });
    }
}

bool Takeovers::keep_keys() {
    while (!released_.empty()) {
        std::vector<std::string> ids;
        std::vector<std::string> keys;
        for (auto it = released_.begin();
             it != released_.end() && ids.size() < EtcdClient::kMaxBatch; ++it) {
            ids.push_back(*it);
            keys.push_back(key_of(*it));
        }
        // Only if still this node's: a node that took the id over keeps its key.
        if (!etcd_.erase_each_if(keys, options_.node)) {
            return false;  // etcd away: again later
        }
        for (const auto& id : ids) {
            released_.erase(id);
        }
    }
    const int64_t lease = membership_.lease();
    if (lease == 0 || lease == owned_lease_) {
        return true;
    }
    // A new lease (the first, or the old one was lost): the keys of every session here again.
    std::vector<std::string> ids(owned_.begin(), owned_.end());
    for (size_t from = 0; from < ids.size(); from += EtcdClient::kMaxBatch) {
        const size_t to = std::min(ids.size(), from + EtcdClient::kMaxBatch);
        std::vector<std::string> keys;
        for (size_t i = from; i < to; ++i) {
            keys.push_back(key_of(ids[i]));
        }
        auto outcomes = etcd_.create_each(keys, options_.node, lease);
        if (!outcomes) {
            return false;
        }
        for (size_t i = from; i < to; ++i) {
            const auto& o = (*outcomes)[i - from];
            if (o.created) {
                continue;
            }
            if (o.existing.value == options_.node && o.existing.lease != lease) {
                (void)etcd_.put(keys[i - from], options_.node, lease);  // an old lease's
            } else if (o.existing.value != options_.node) {
                log_(true, "cluster: client " + ids[i] + " is owned by " + o.existing.value +
                                   "; the session kept on this node is taken over from it "
                                   "when the client connects here");
            }
        }
    }
    owned_lease_ = lease;
    return true;
}

void Takeovers::run() {
    int64_t last_keep = 0;
    bool keep_ok = true;
    while (true) {
        std::deque<Task> tasks;
        std::deque<Claim> claims;
        {
            std::unique_lock lock(mutex_);
            wake_.wait_for(lock, std::chrono::milliseconds(kTickMs),
                           [this] { return stopping_ || !tasks_.empty() || !claims_.empty(); });
            if (stopping_) {
                return;
            }
            tasks.swap(tasks_);
            claims.swap(claims_);
        }
        for (auto& t : tasks) {
            t();
        }
        do_claims(claims);
        const int64_t now = mono_ms();
        expire(now);
        // Releases at once while etcd answers; every half second the lease check (and the
        // retry while etcd is away).
        if ((keep_ok && !released_.empty()) || now - last_keep >= 500) {
            last_keep = now;
            keep_ok = keep_keys();
        }
    }
}

}  // namespace mqttd::cluster
