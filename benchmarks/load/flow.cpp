// fanin, fanout, pairs and `durable --online`: publishers and subscribers exchanging stamped
// messages for a duration (or a message count), paced by an end-to-end window.
//
// Streams: each publisher owns one stream (its index) and one topic. A subscriber expects a
// contiguous range of streams (fanin: all of them through a `+` filter; fanout: the single
// stream; pairs: its partner's). The window is counted in messages per stream:
//   in_flight(s) = sent(s) - delivered(s) / fanout(s)
// and a publisher may send while in_flight(s) < window(s), where window(s) is --window divided
// evenly over the streams: --window is the budget of deliveries in flight in the whole scenario.
// At QoS 1 and 2 a message also stays in flight until the broker acknowledges it to its
// publisher (in_flight is at least the publisher's unacknowledged count): a broker whose acks
// lag its deliveries (a store behind) is paced by its acks, not only by its deliveries.
// So the broker never has more than --window deliveries pending (below its queue limits), and
// throughput is what the broker sustains rather than how fast socket buffers fill, with a
// latency that means something.
// Throughput is the number of distinct deliveries during the measured interval divided by its
// length; after it, publishing stops and the remaining in-flight messages are drained (bounded)
// before lost/duplicate counts are taken.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "scenario.h"

namespace mqttd::load {

namespace {

struct Stream {
    Client* publisher = nullptr;
    std::string topic;
    std::uint64_t sent = 0;
    std::uint64_t delivered = 0;  // distinct deliveries over all its subscribers
    std::uint32_t fanout = 0;
    std::uint64_t window = 1;
    std::uint64_t quota = 0;        // messages to send; 0 = unbounded
    std::uint64_t written_off = 0;  // in-flight messages given up on after a stall
    std::uint64_t last_progress_ns = 0;
};

struct Subscriber {
    Client* client = nullptr;
    std::string filter;
    SeqTracker tracker;
};

class Flow final : public ScenarioBase {
public:
    explicit Flow(const Options& opts) : ScenarioBase(opts) {}

    std::string run() override;
    void on_message(Client& c, const PublishView& m) override;
    void on_closed(Client& c, int err) override;

private:
    void fill();
    [[nodiscard]] Tally tally() const;
    [[nodiscard]] bool drained() const;

    std::vector<Stream> streams_;
    std::vector<Subscriber> subs_;
    std::vector<std::int32_t> sub_of_client_;  // client index -> subscriber index or -1
    bool publishing_ = false;
    std::uint64_t start_ns_ = 0;
    std::uint64_t rr_ = 0;
    std::uint64_t sent_total_ = 0;
    std::uint64_t closed_mid_run_ = 0;
    std::uint64_t last_delivery_ns_ = 0;
    std::uint64_t stalls_ = 0;
};

// A broker that drops messages would otherwise hold a publisher's window shut forever: after
// kStallNs without a delivery from a full window, what is in flight is written off (the bitmaps
// still count it as lost if it never arrives) and the publisher resumes.
constexpr std::uint64_t kStallNs = 1'000'000'000;

void Flow::on_message(Client& c, const PublishView& m) {
    const std::int32_t si = sub_of_client_[c.index()];
    if (si < 0 || !m.stamped) {
        return;
    }
    Subscriber& s = subs_[static_cast<std::size_t>(si)];
    if (s.tracker.record(m.seq)) {
        const auto stream = static_cast<std::size_t>(m.seq >> kStreamShift);
        const std::uint64_t now = loop_.read_time_ns();
        ++streams_[stream].delivered;
        streams_[stream].last_progress_ns = now;
        last_delivery_ns_ = now;
        latency_.record(now > m.ts_ns ? now - m.ts_ns : 0);
    }
}

void Flow::on_closed(Client& c, int err) {
    ScenarioBase::on_closed(c, err);
    if (publishing_ && !c.close_requested()) {
        ++closed_mid_run_;
    }
}

void Flow::fill() {
    const std::uint64_t now = now_ns();
    std::uint64_t budget = UINT64_MAX;
    if (opts_.rate > 0) {
        const double due = opts_.rate * static_cast<double>(now - start_ns_) / 1e9;
        const auto due_n = static_cast<std::uint64_t>(due) + 1;
        budget = due_n > sent_total_ ? due_n - sent_total_ : 0;
    }
    // Round-robin start so a rate budget is shared fairly among publishers.
    const std::size_t n = streams_.size();
    for (std::size_t k = 0; k < n && budget > 0; ++k) {
        Stream& s = streams_[(rr_ + k) % n];
        if (s.publisher->phase() != Client::Phase::Ready) {
            continue;
        }
        const std::uint64_t done = s.written_off + s.delivered / s.fanout;
        const std::uint64_t undelivered = s.sent > done ? s.sent - done : 0;
        std::uint64_t in_flight = std::max<std::uint64_t>(undelivered, s.publisher->unacked());
        if (in_flight >= s.window) {
            if (now - s.last_progress_ns < kStallNs) {
                continue;
            }
            s.written_off += undelivered;
            s.last_progress_ns = now;
            ++stalls_;
            in_flight = 0;
        }
        std::uint64_t room = std::min(s.window - in_flight, budget);
        if (s.quota > 0) {
            room = std::min(room, s.quota - s.sent);
        }
        const std::uint64_t stream_bits = static_cast<std::uint64_t>((rr_ + k) % n) << kStreamShift;
        for (std::uint64_t i = 0; i < room; ++i) {
            if (!s.publisher->publish(s.topic, opts_.qos, stream_bits | s.sent, now, opts_.size)) {
                break;
            }
            ++s.sent;
            ++sent_total_;
            --budget;
        }
    }
    ++rr_;
}

Tally Flow::tally() const {
    Tally t;
    for (const Stream& s : streams_) {
        t.sent += s.sent;
        t.expected += s.sent * s.fanout;
    }
    for (const Subscriber& s : subs_) {
        t.received += s.tracker.unique();
        t.duplicates += s.tracker.duplicates();
        t.unexpected += s.tracker.unexpected();
    }
    return t;
}

bool Flow::drained() const {
    for (const Stream& s : streams_) {
        if (s.delivered < s.sent * s.fanout || s.publisher->unacked() > 0) {
            return false;
        }
    }
    return true;
}

std::string Flow::run() {
    const std::string& sc = opts_.scenario;
    const bool durable = sc == "durable";
    std::uint32_t npub = 0;
    std::uint32_t nsub = 0;
    if (sc == "fanin") {
        npub = opts_.pubs;
        nsub = 1;
    } else if (sc == "fanout") {
        npub = 1;
        nsub = opts_.subs;
    } else {  // pairs, durable --online
        npub = durable ? opts_.sessions : opts_.pairs;
        nsub = npub;
    }
    const char* kind = sc == "fanin" ? "fi" : sc == "fanout" ? "fo" : durable ? "do" : "pr";

    std::vector<Client*> pubs;
    std::vector<Client*> subs;
    std::vector<std::string> filters;
    for (std::uint32_t i = 0; i < nsub; ++i) {
        Client& c = add_client(opts_.prefix + (durable ? "-dsub-" : "-s-") + std::to_string(i));
        subs.push_back(&c);
        if (sc == "fanin") {
            filters.push_back(opts_.prefix + "/" + kind + "/+");
            subs_.push_back(Subscriber{&c, filters.back(), SeqTracker(0, npub)});
        } else if (sc == "fanout") {
            filters.push_back(topic(kind, 0));
            subs_.push_back(Subscriber{&c, filters.back(), SeqTracker(0, 1)});
        } else {
            filters.push_back(topic(kind, i));
            subs_.push_back(Subscriber{&c, filters.back(), SeqTracker(i, 1)});
        }
    }
    // --window is the whole scenario's end-to-end budget in deliveries, split over the streams.
    const std::uint64_t fanout = sc == "fanout" ? nsub : 1;
    const std::uint64_t per_stream_window =
            std::max<std::uint64_t>(1, (opts_.window + npub * fanout - 1) / (npub * fanout));
    for (std::uint32_t i = 0; i < npub; ++i) {
        Client& c = add_client(opts_.prefix + "-p-" + std::to_string(i));
        pubs.push_back(&c);
        Stream s;
        s.publisher = &c;
        s.topic = topic(kind, sc == "fanout" ? 0 : i);
        s.fanout = static_cast<std::uint32_t>(fanout);
        s.window = per_stream_window;
        if (opts_.messages > 0 && durable) {
            s.quota = (opts_.messages + npub - 1 - i) / npub;  // spread the total exactly
        }
        streams_.push_back(std::move(s));
    }
    sub_of_client_.assign(clients_.size(), -1);
    for (std::size_t i = 0; i < subs_.size(); ++i) {
        sub_of_client_[subs_[i].client->index()] = static_cast<std::int32_t>(i);
    }

    JsonLine j;
    j.add("scenario", durable ? std::string("durable_online") : sc);
    JsonLine params;
    params.add("qos", opts_.qos)
            .add("size", static_cast<std::uint64_t>(opts_.size))
            .add("publishers", npub)
            .add("subscribers", nsub)
            .add("window", opts_.window)
            .add("rate", opts_.rate);
    if (durable) {
        params.add("messages", opts_.messages).add("persistent", true);
    } else {
        params.add("duration", opts_.duration);
    }
    j.raw("params", params.str());

    const std::size_t subs_ready = connect_all(subs, !durable, opts_.connect_timeout, &sub_to_);
    const std::size_t pubs_ready = connect_all(pubs, true, opts_.connect_timeout);
    const bool subscribed = subscribe_all(subs, filters, opts_.qos, opts_.connect_timeout);
    if (subs_ready != subs.size() || pubs_ready != pubs.size() || !subscribed) {
        j.add("error", "setup failed")
                .add("subs_ready", static_cast<std::uint64_t>(subs_ready))
                .add("pubs_ready", static_cast<std::uint64_t>(pubs_ready))
                .add("subscribed", subscribed)
                .add("connect_errors", connect_errors_);
        add_result(j, tally(), 0.0);
        return j.str();
    }

    if (opts_.sub_port != 0 && opts_.sub_port != opts_.port) {
        // Subscribers on another node: their routes reach the publishers' node through etcd's
        // watch first (milliseconds); a second keeps the first messages from going unrouted.
        run_until([] { return false; }, 1.0);
    }
    publishing_ = true;
    start_ns_ = now_ns();
    for (Stream& s : streams_) {
        s.last_progress_ns = start_ns_;
    }
    const bool by_count = durable && opts_.messages > 0;
    const double limit_s = by_count ? opts_.drain_timeout : opts_.duration;
    const int wait_ms = opts_.rate > 0 ? 1 : 5;
    std::uint64_t quota_total = 0;
    for (const Stream& s : streams_) {
        quota_total += s.quota;
    }
    run_until(
            [&] {
                if (!by_count) {
                    return false;
                }
                // Done, or nothing delivered for 5 stall periods (a broker that stopped).
                const std::uint64_t quiet = now_ns() - std::max(last_delivery_ns_, start_ns_);
                return tally().received >= quota_total ||
                       (sent_total_ >= quota_total && quiet > kStallNs) || quiet > 5 * kStallNs;
            },
            limit_s, [&] { fill(); }, wait_ms);
    const std::uint64_t end_ns = now_ns();
    const Tally at_end = tally();
    publishing_ = false;
    const double elapsed = static_cast<double>(end_ns - start_ns_) / 1e9;
    // Let what is in flight arrive; bounded because a broker may have dropped it.
    last_delivery_ns_ = now_ns();
    const bool clean_drain =
            run_until([&] { return drained() || now_ns() - last_delivery_ns_ > kStallNs; }, 10.0);
    const Tally t = tally();
    if (std::getenv("LOAD_DEBUG") != nullptr) {
        for (const Stream& s : streams_) {
            std::fprintf(stderr, "stream %s sent %lu delivered %lu unacked %u\n", s.topic.c_str(),
                         static_cast<unsigned long>(s.sent),
                         static_cast<unsigned long>(s.delivered), s.publisher->unacked());
        }
    }
    add_result(j, t, static_cast<double>(at_end.received) / elapsed);
    j.add("elapsed_s", elapsed)
            .add("sent_per_s", static_cast<double>(at_end.sent) / elapsed)
            .add("drained", clean_drain && drained())
            .add("stalls", stalls_)
            .add("closed_mid_run", closed_mid_run_)
            .add("connect_errors", connect_errors_);
    disconnect_all(pubs, 2.0);
    disconnect_all(subs, 2.0);
    return j.str();
}

}  // namespace

std::unique_ptr<ScenarioBase> make_flow(const Options& opts) {
    return std::make_unique<Flow>(opts);
}

}  // namespace mqttd::load
