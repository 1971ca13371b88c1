#include "net/worker_loop.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>

#include <pthread.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/basic_stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/smart_ptr/intrusive_ptr.hpp>

#include "broker/broker.h"
#include "common/clock.h"
#include "net/client_link.h"
#include "net/server_impl.h"

namespace mqttd::net {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

// Timers and descriptors name the io_context's executor type rather than any_io_executor (no
// type-erased executor in each object or pending operation).
using Executor = asio::io_context::executor_type;
using Timer = asio::basic_waitable_timer<std::chrono::steady_clock,
                                         asio::wait_traits<std::chrono::steady_clock>,
                                         Executor>;
using Descriptor = asio::posix::basic_stream_descriptor<Executor>;
using Ref = boost::intrusive_ptr<ClientLink>;

constexpr int kMaxEvents = 256;  // per epoll_wait

}  // namespace

struct WorkerLoop::Io {
    asio::io_context ctx{1};
    std::unique_ptr<Descriptor> watch;  // the epoll set, as Asio sees it
    std::unique_ptr<asio::executor_work_guard<Executor>> guard;
    std::unique_ptr<Timer> tick;
    std::unique_ptr<Timer> throttle;  // the next link over its rate_limit to read again
    std::thread thread;
};

Handoff::Handoff() = default;
Handoff::~Handoff() = default;

WorkerLoop::WorkerLoop(Server::Impl& server, uint32_t index)
    : server_(server), index_(index), io_(std::make_unique<Io>()) {
    auto* ctx = &io_->ctx;
    worker().set_poster([ctx](broker::Worker::Task t) { asio::post(*ctx, std::move(t)); });
    int fd = ::epoll_create1(EPOLL_CLOEXEC);
    if (fd < 0) {
        throw std::runtime_error(std::string("cannot create an epoll set: ") +
                                 std::strerror(errno));
    }
    io_->watch = std::make_unique<Descriptor>(io_->ctx.get_executor(), fd);
    epfd_ = fd;
}

WorkerLoop::~WorkerLoop() {
    for (auto& [link, due] : throttled_) {
        intrusive_ptr_release(link);
    }
    throttled_.clear();
}

broker::Worker& WorkerLoop::worker() {
    return server_.broker.worker(index_);
}

asio::io_context& WorkerLoop::context() {
    return io_->ctx;
}

void WorkerLoop::post(std::function<void()> task) {
    asio::post(io_->ctx, std::move(task));
}

void WorkerLoop::start() {
    io_->guard = std::make_unique<asio::executor_work_guard<Executor>>(io_->ctx.get_executor());
    io_->tick = std::make_unique<Timer>(io_->ctx.get_executor());
    io_->throttle = std::make_unique<Timer>(io_->ctx.get_executor());
    schedule_tick();
    watch();
    io_->thread = std::thread([this] {
        std::string name = "mqttd-w" + std::to_string(index_);  // for top -H and perf
        ::pthread_setname_np(::pthread_self(), name.c_str());
        io_->ctx.run();
    });
}

void WorkerLoop::request_stop() {
    asio::post(io_->ctx, [this] { stop_worker(); });
}

void WorkerLoop::release_guard() {
    io_->guard.reset();
}

void WorkerLoop::finish_stop(int64_t deadline_ms) {
    while (!io_->ctx.stopped() && mono_ms() < deadline_ms) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    io_->ctx.stop();
}

void WorkerLoop::join() {
    if (io_->thread.joinable()) {
        io_->thread.join();
    }
}

void WorkerLoop::abandon_links() {
    for (auto& a : awaiting_) {
        if (a.link) {
            a.link->forget_slot();
        }
    }
    awaiting_.clear();
    auto open = std::move(links_);
    for (auto* link : open) {
        link->abandon();
    }
}

void WorkerLoop::post_new_link(int fd, uint8_t listener) {
    asio::post(io_->ctx, [this, fd, listener] {
        std::unique_ptr<LinkExtras> extras;
        if (server_.listeners[listener]->needs_extras()) {
            extras = std::make_unique<LinkExtras>();
        }
        Ref(new ClientLink(*this, fd, listener, std::move(extras)))->start();
    });
}

void WorkerLoop::post_handoff(std::unique_ptr<Handoff> h) {
    asio::post(io_->ctx,
               [this, h = std::move(h)]() mutable { ClientLink::adopt(*this, std::move(*h)); });
}

void WorkerLoop::defer(ClientLink* link, Deferred what) {
    asio::post(io_->ctx, [self = Ref(link), what] { self->run_deferred(what); });
}

void WorkerLoop::release_later(ClientLink* link) {
    asio::post(io_->ctx, [self = Ref(link, false)] {});
    if (stopping_ && links_.empty()) {
        io_->watch->cancel();
    }
}

uint32_t WorkerLoop::list(ClientLink* link) {
    auto slot = static_cast<uint32_t>(links_.size());
    links_.push_back(link);
    return slot;
}

void WorkerLoop::unlist(uint32_t slot) {
    ClientLink* last = links_.back();
    links_[slot] = last;
    last->relist(slot);
    links_.pop_back();
}

uint32_t WorkerLoop::await_connect(ClientLink* link, int64_t deadline_ms) {
    uint32_t slot = awaiting_base_ + static_cast<uint32_t>(awaiting_.size());
    awaiting_.push_back(AwaitingConnect{link, deadline_ms});
    return slot;
}

void WorkerLoop::set_connect_deadline(uint32_t slot, int64_t deadline_ms) {
    awaiting_[slot - awaiting_base_].deadline_ms = deadline_ms;
}

void WorkerLoop::wake_at(ClientLink* link, int64_t due_ms) {
    intrusive_ptr_add_ref(link);
    throttled_.emplace_back(link, due_ms);
    arm_throttle();
}

void WorkerLoop::arm_throttle() {
    if (throttled_.empty()) {
        return;
    }
    int64_t next = throttled_.front().second;
    for (const auto& [link, due] : throttled_) {
        next = std::min(next, due);
    }
    if (throttle_armed_ms_ != 0 && throttle_armed_ms_ <= next) {
        return;  // fires earlier anyway
    }
    throttle_armed_ms_ = next;
    io_->throttle->expires_after(std::chrono::milliseconds(std::max<int64_t>(0, next - mono_ms())));
    io_->throttle->async_wait([this](const error_code& ec) {
        if (ec) {
            return;  // re-armed earlier, or stopping
        }
        throttle_armed_ms_ = 0;
        run_throttled();
    });
}

void WorkerLoop::run_throttled() {
    int64_t now = mono_ms();
    std::vector<ClientLink*> due;
    std::erase_if(throttled_, [&](const auto& e) {
        if (e.second <= now) {
            due.push_back(e.first);
            return true;
        }
        return false;
    });
    for (auto* link : due) {
        link->wake_up();
        intrusive_ptr_release(link);
    }
    arm_throttle();
}

void WorkerLoop::leave_connect_wait(uint32_t slot) {
    awaiting_[slot - awaiting_base_].link = nullptr;
}

// Waits for the epoll set to have events, unless events may be left from the last poll.
void WorkerLoop::watch() {
    if (repoll_) {
        repoll_ = false;
        asio::post(io_->ctx, [this] { poll(); });
        return;
    }
    if (stopping_ && links_.empty()) {
        return;  // nothing to watch: the context may run out of work
    }
    io_->watch->async_wait(Descriptor::wait_read, [this](const error_code& ec) {
        if (!ec) {
            poll();
        }
    });
}

// Handles one batch of socket events. A link closed while the batch runs stays allocated
// until the batch is over (its list reference is released from a posted handler), so the
// events after it may still name it.
void WorkerLoop::poll() {
    std::array<epoll_event, kMaxEvents> events;
    int n = ::epoll_wait(epfd_, events.data(), kMaxEvents, 0);
    if (n == kMaxEvents) {
        repoll_ = true;
    }
    for (int i = 0; i < n; ++i) {
        static_cast<ClientLink*>(events[static_cast<size_t>(i)].data.ptr)
                ->on_event(events[static_cast<size_t>(i)].events);
    }
    watch();
}

void WorkerLoop::schedule_tick() {
    auto& timer = *io_->tick;
    timer.expires_after(std::chrono::milliseconds(500));
    timer.async_wait([this](const error_code& ec) {
        // A tick already due when stop_worker() cancelled the timer still runs, with no
        // error: it must not re-arm, or the context never runs out of work and the stop
        // waits for node.shutdown_timeout.
        if (ec || stopping_) {
            return;
        }
        worker().tick(unix_ms());
        expire_connects();
        schedule_tick();
    });
}

void WorkerLoop::expire_connects() {
    // Deadlines differ by listener (handshake_timeout) and move when a handshake completes,
    // so the whole wait is scanned; it holds only links accepted within the longest timeout.
    int64_t now = mono_ms();
    std::vector<ClientLink*> late;
    for (auto& a : awaiting_) {
        if (a.link && a.deadline_ms <= now) {
            late.push_back(a.link);
            a.link = nullptr;
        }
    }
    while (!awaiting_.empty() && awaiting_.front().link == nullptr) {
        awaiting_.pop_front();
        ++awaiting_base_;
    }
    for (auto* link : late) {
        link->forget_slot();
        link->connect_timed_out();
    }
}

void WorkerLoop::stop_worker() {
    stopping_ = true;  // closes from now on do not linger
    worker().shutdown();
    io_->tick->cancel();
    io_->throttle->cancel();
    std::vector<ClientLink*> lingering = links_;
    for (auto* link : lingering) {
        link->stop_lingering();
    }
    std::vector<ClientLink*> waiting;
    for (auto& a : awaiting_) {
        if (a.link) {
            waiting.push_back(a.link);
        }
    }
    for (auto* link : waiting) {
        link->close();
    }
    if (links_.empty()) {
        io_->watch->cancel();
    }
}

}  // namespace mqttd::net
