// mqttd: command line, configuration, store, broker, listeners, signals and clean shutdown.
// Startup errors are one line on stderr and a non-zero exit, never a crash dump.
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "api/dashboard.h"
#include "api/node_info.h"
#include "api/server.h"
#include "api/static_files.h"
#include "broker/admin.h"
#include "broker/broker.h"
#include "broker/plugins.h"
#include "broker/settings.h"
#include "cluster/etcd_client.h"
#include "cluster/forwarder.h"
#include "cluster/membership.h"
#include "cluster/peer_api.h"
#include "config/command_line.h"
#include "config/config.h"
#include "config/keys.h"
#include "config/logging.h"
#include "net/server.h"
#include "net/tls_context.h"
#include "service/notify.h"
#include "storage/backup.h"
#include "storage/store.h"
#include "tools/ctl.h"
#include "tools/inspect.h"

#ifndef MQTTD_VERSION
#define MQTTD_VERSION "0.1.0"
#endif

namespace {

using namespace mqttd;

int fail(const std::string& line) {
    std::fprintf(stderr, "mqttd: %s\n", line.c_str());
    return 1;
}

// A damaged store (corrupt WAL record with writes after it, table, MANIFEST) exits with
// EX_DATAERR, so scripts and unit files can tell "start with --recover" from other failures.
constexpr int kExitDamagedStore = 65;

// Copies the configuration into the broker's settings and keeps the hot keys in step.
void wire_settings(config::Config& cfg, broker::Settings& s) {
    s.node_name = cfg.get_string("node.name");
    s.version = MQTTD_VERSION;
    auto bind_bool = [&](const char* key, std::atomic<bool>& target) {
        target = cfg.get_bool(key);
        cfg.subscribe(key,
                      [&cfg, &target, key](const std::string&) { target = cfg.get_bool(key); });
    };
    auto bind_int = [&](const char* key, auto& target) {
        using T = typename std::remove_reference_t<decltype(target)>::value_type;
        target = static_cast<T>(cfg.get_int(key));
        cfg.subscribe(key, [&cfg, &target, key](const std::string&) {
            target = static_cast<T>(cfg.get_int(key));
        });
    };
    bind_bool("mqtt.allow_anonymous", s.allow_anonymous);
    bind_bool("mqtt.mqueue.store_qos0", s.mqueue_store_qos0);
    bind_int("mqtt.max_packet_size", s.max_packet_size);
    bind_int("mqtt.max_clientid_len", s.max_clientid_len);
    bind_int("mqtt.max_inflight", s.max_inflight);
    bind_int("mqtt.max_inflight_bytes", s.max_inflight_bytes);
    bind_int("mqtt.max_keepalive", s.max_keepalive_s);
    bind_int("mqtt.mqueue.max_len", s.mqueue_max_len);
    bind_int("mqtt.session.expiry_interval", s.session_expiry_s);
    bind_int("mqtt.broker.sys_interval", s.sys_interval_s);
    bind_int("mqtt.connect_timeout", s.connect_timeout_s);
    bind_int("mqtt.max_awaiting_rel", s.max_awaiting_rel);
    bind_int("mqtt.await_rel_timeout", s.await_rel_timeout_s);
}

// The TLS settings of listener `base` ("listener.ssl.external").
net::TlsSettings tls_settings(const config::Config& cfg, const std::string& base) {
    net::TlsSettings t;
    t.keyfile = cfg.get_string(base + ".keyfile");
    t.certfile = cfg.get_string(base + ".certfile");
    t.cacertfile = cfg.get_string(base + ".cacertfile");
    t.password = cfg.get_string(base + ".password");
    t.verify_peer = cfg.get_string(base + ".verify") == "verify_peer";
    t.fail_if_no_peer_cert = cfg.get_bool(base + ".fail_if_no_peer_cert");
    t.tls_versions = cfg.get_string(base + ".tls_versions");
    t.ciphers = cfg.get_string(base + ".ciphers");
    return t;
}

// The node-to-node link's TLS (cluster.listener.ssl): listener.ssl.external's settings with the
// link's own files where set, and the peer's certificate always required. One line on error.
std::string link_tls(const config::Config& cfg,
                     std::shared_ptr<net::TlsContext>& server,
                     std::shared_ptr<net::TlsContext>& client) {
    net::TlsSettings t = tls_settings(cfg, "listener.ssl.external");
    for (auto [field, name] : {std::pair{&t.keyfile, "keyfile"},
                               {&t.certfile, "certfile"},
                               {&t.cacertfile, "cacertfile"}}) {
        if (auto own = cfg.get_string(std::string("cluster.listener.") + name); !own.empty()) {
            *field = own;
        }
    }
    t.verify_peer = true;
    t.fail_if_no_peer_cert = true;
    auto s = net::TlsContext::make("cluster.listener", t, net::TlsContext::Role::Server);
    if (!s) {
        return s.error();
    }
    auto c = net::TlsContext::make("cluster.listener", t, net::TlsContext::Role::Client);
    if (!c) {
        return c.error();
    }
    server = std::move(*s);
    client = std::move(*c);
    return {};
}

bool is_default(const std::string& key, const std::string& value) {
    const auto* def = config::find_key(key);
    return def != nullptr && def->default_text == value;
}

// True when `path` is in the data directory's certs/ (the Debian package's configuration puts
// the TLS files in /var/lib/mqttd/certs/, the only place its unit lets mqttd write).
bool in_data_certs(const config::Config& cfg, const std::string& path) {
    const auto dir = std::filesystem::path(cfg.data_dir()) / "certs";
    return std::filesystem::path(path).parent_path().lexically_normal() == dir.lexically_normal();
}

// The shipped configuration enables TLS with certificates under data/certs/: when a TLS
// listener's files are the defaults and absent, a self-signed CA and server certificate are
// made (no private key is ever shipped); so they are when both are in <node.data_dir>/certs/.
// One warning while they are in use.
std::string ensure_default_certificates(const config::Config& cfg, bool& warned) {
    for (const char* base : {"listener.ssl.external", "listener.wss.external"}) {
        const std::string b = base;
        if (cfg.get_string(b).empty()) {
            continue;
        }
        const std::string key = cfg.get_string(b + ".keyfile");
        const std::string cert = cfg.get_string(b + ".certfile");
        const std::string ca = cfg.get_string(b + ".cacertfile");
        if (!(is_default(b + ".keyfile", key) && is_default(b + ".certfile", cert)) &&
            !(in_data_certs(cfg, key) && in_data_certs(cfg, cert))) {
            continue;
        }
        std::error_code ec;
        if (!std::filesystem::exists(key, ec) && !std::filesystem::exists(cert, ec)) {
            if (auto err = net::generate_self_signed(key, cert, ca); !err.empty()) {
                return b + ".keyfile = " + key +
                       ": cannot generate a self-signed certificate: " + err;
            }
        }
        if (!warned) {
            warned = true;
            spdlog::warn(
                    "{}: the default self-signed certificate {} is in use (made on first start); "
                    "clients verify it with the CA file {}; set {}.certfile and .keyfile for a "
                    "real one",
                    b, cert, ca, b);
        }
    }
    return {};
}

// Sets up every configured listener; `listening` gets "address (protocol), " for each.
std::string listen_all(const config::Config& cfg, net::Server& server, std::string& listening) {
    bool warned = false;
    if (auto err = ensure_default_certificates(cfg, warned); !err.empty()) {
        return err;
    }
    struct Kind {
        const char* name;
        net::ListenerKind kind;
    };
    for (Kind k : {Kind{"tcp", net::ListenerKind::Tcp}, Kind{"ssl", net::ListenerKind::Ssl},
                   Kind{"ws", net::ListenerKind::Ws}, Kind{"wss", net::ListenerKind::Wss}}) {
        const std::string base = std::string("listener.") + k.name + ".external";
        net::ListenerConfig lc;
        lc.kind = k.kind;
        lc.key = base;
        lc.address = cfg.get_string(base);
        if (lc.address.empty()) {
            continue;
        }
        lc.max_clients = static_cast<uint64_t>(cfg.get_int(base + ".max_clients"));
        lc.acceptors = static_cast<uint32_t>(cfg.get_int(base + ".acceptors"));
        auto rate = config::parse_rate_limit(cfg.get_string(base + ".rate_limit"));
        if (!rate) {
            return base + ".rate_limit: " + rate.error();
        }
        lc.rate_limit = {rate->bytes_per_second, rate->burst};
        if (cfg.has(base + ".proxy_protocol")) {
            lc.proxy_protocol = cfg.get_bool(base + ".proxy_protocol");
        }
        if (cfg.has(base + ".handshake_timeout")) {
            lc.handshake_timeout_ms = cfg.get_int(base + ".handshake_timeout") * 1000;
        } else if (cfg.has(base + ".proxy_protocol_timeout")) {
            lc.handshake_timeout_ms = cfg.get_int(base + ".proxy_protocol_timeout") * 1000;
        }
        if (cfg.has(base + ".mqtt_path")) {
            lc.mqtt_path = cfg.get_string(base + ".mqtt_path");
        }
        if (k.kind == net::ListenerKind::Ssl || k.kind == net::ListenerKind::Wss) {
            lc.tls = tls_settings(cfg, base);
            const std::string as_user = cfg.get_string(base + ".peer_cert_as_username");
            lc.peer_cert_as_username = as_user == "cn"   ? net::PeerCertAsUsername::Cn
                                       : as_user == "dn" ? net::PeerCertAsUsername::Dn
                                                         : net::PeerCertAsUsername::Off;
        }
        if (auto err = server.listen(lc); !err.empty()) {
            return err;
        }
        listening += lc.address + " (" + net::protocol_name(k.kind) + "), ";
    }
    return {};
}

// mqttd --restore BACKUP: the backup into the data directory's store (the broker stopped).
int restore(const config::CommandLine& cl, const config::Config& cfg) {
    auto st = storage::restore_backup(*cl.restore, cfg.db_dir(), cl.force);
    if (!st.is_ok()) {
        return fail("restore: " + (st.message().empty() ? st.to_string() : st.message()));
    }
    std::printf("mqttd: restored %s into %s\n", cl.restore->c_str(), cfg.db_dir().c_str());
    return 0;
}

int run(int argc, char** argv) {
    auto cl = config::parse_command_line(argc, argv);
    if (!cl) {
        // One line; the options and keys are in --help.
        std::fprintf(stderr, "mqttd: %s\n", cl.error().c_str());
        return 2;
    }
    if (cl->help) {
        std::fputs(config::usage_text(argv[0]).c_str(), stdout);
        return 0;
    }
    if (cl->version) {
        std::printf("mqttd %s\n", MQTTD_VERSION);
        return 0;
    }
    // Signals are blocked before any thread starts (RocksDB's start with the store), so every
    // thread inherits the mask and only sigwait() below sees them: a SIGTERM that reached a
    // thread with the default action would end the process without the clean stop. One that
    // comes during startup waits for the end of it.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
    config::init_console_logging();
    // Every connection is a descriptor: take the hard limit, as other brokers do.
    rlimit nofile{};
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        setrlimit(RLIMIT_NOFILE, &nofile);
    }
    auto loaded = config::Config::load(*cl);
    if (!loaded) {
        return fail(loaded.error());
    }
    std::unique_ptr<config::Config> cfg = std::move(loaded.value());
    if (cl->restore) {
        return restore(*cl, *cfg);
    }
    std::error_code fs_ec;
    std::filesystem::create_directories(cfg->data_dir(), fs_ec);
    if (fs_ec) {
        return fail("cannot create data directory " + cfg->data_dir() + ": " + fs_ec.message());
    }
    std::unique_ptr<storage::Store> store;
    auto store_options = cfg->store_options();
    store_options.on_sticky_error = [](const storage::Status& s) {
        spdlog::error(
                "store write failed, no further writes are acknowledged until mqttd is "
                "restarted on a writable data directory: {}",
                s.to_string());
    };
    // Out of space: one line when it starts, one when the store takes writes again.
    store_options.on_no_space = [](const storage::Status& s) {
        spdlog::error(
                "store is out of space, writes are refused (MQTT 5: 0x97) until space is "
                "freed; mqttd resumes by itself: {}",
                s.to_string());
    };
    store_options.on_resumed = [](uint64_t refused) {
        spdlog::warn("store takes writes again ({} write batches refused since start)", refused);
    };
    store_options.repair = cl->recover;
    store_options.on_warning = [](const std::string& line) {
        spdlog::warn("{}", line);
    };
    auto st = storage::Store::open(store_options, store);
    if (!st.is_ok()) {
        const int code = fail(st.message().empty() ? st.to_string() : st.message());
        return st.is_corruption() ? kExitDamagedStore : code;
    }
    for (const auto& warning : cfg->apply_saved(*store)) {
        spdlog::warn("{}", warning);
    }
    if (auto logging = config::init_logging(*cfg); !logging) {
        store->close();
        return fail(logging.error());
    }

    broker::Settings settings;
    wire_settings(*cfg, settings);
    auto workers = static_cast<uint32_t>(cfg->get_int("node.workers"));
    if (workers == 0) {
        workers = std::max(1u, std::thread::hardware_concurrency());
    }
    broker::Broker broker(*store, settings, workers);
    st = broker.recover();
    if (!st.is_ok()) {
        return fail("recovering sessions from " + cfg->db_dir() + ": " + st.to_string());
    }

    net::Server server(broker);
    std::string listening;
    if (auto err = listen_all(*cfg, server, listening); !err.empty()) {
        return fail(err);
    }
    broker::PluginRegistry plugins(*store);
    broker::register_retainer(plugins, settings);
    {
        std::vector<std::pair<std::string, std::string>> seeds;
        for (const auto& item : cfg->items()) {
            if (!item.value.empty() &&
                (item.key.starts_with("auth.user.") || item.key.starts_with("auth.client."))) {
                seeds.emplace_back(item.key, item.value);
            }
            // The database plugins' keys, empty values included (an empty query disables it).
            for (const char* db : {"auth.redis.", "auth.mysql.", "auth.pgsql.", "auth.ldap."}) {
                if (item.key.starts_with(db)) {
                    seeds.emplace_back(item.key, item.value);
                }
            }
        }
        auto& ext = broker.extensions();
        auto built = broker::build_extensions(ext, plugins, *store, settings.node_name,
                                              cfg->get_string("mqtt.acl_file"), seeds);
        if (!built) {
            return fail(built.error());
        }
        for (const auto& warning : *built) {
            spdlog::warn("{}", warning);
        }
        ext.acl_nomatch_allow = cfg->get_string("mqtt.acl_nomatch") == "allow";
        ext.cache_acl = cfg->get_bool("mqtt.cache_acl");
        cfg->subscribe("mqtt.acl_nomatch",
                       [&ext](const std::string& v) { ext.acl_nomatch_allow = v == "allow"; });
        cfg->subscribe("mqtt.acl_file", [&ext](const std::string& path) {
            if (auto err = broker::switch_acl_file(ext, path); !err.empty()) {
                spdlog::error("mqtt.acl_file {} refused, old rules kept: {}", path, err);
            } else {
                spdlog::info("ACL rules now from {}", path);
            }
        });
        cfg->subscribe("mqtt.cache_acl",
                       [&ext](const std::string& v) { ext.cache_acl = v == "true"; });
    }
    broker::Admin admin(broker, plugins);
    std::string api_address = cfg->get_string("listener.api.mgmt");
    api::Server rest(api::Context{admin, *store, *cfg, [&server] {
                                      std::vector<api::ListenerView> out;
                                      for (const auto& l : server.listeners()) {
                                          out.push_back({l.protocol, l.address, l.acceptors,
                                                         l.max_clients, l.current_clients, l.closed,
                                                         l.refused, l.handshake_failed});
                                      }
                                      return out;
                                  }});
    // emq_dashboard: the web dashboard (api/dashboard.h), started with the plugin.
    std::string dashboard_address = cfg->get_string("dashboard.listener.http");
    std::string docroot;
    if (!dashboard_address.empty()) {
        std::string docroot_error;
        docroot = api::resolve_docroot(cfg->get_string("dashboard.docroot"), docroot_error);
        if (docroot.empty()) {
            spdlog::warn("{}; the dashboard does not listen", docroot_error);
        }
    }
    api::Dashboard dashboard(rest.handler(), dashboard_address, docroot);
    plugins.add(broker::PluginInfo{"emq_dashboard", MQTTD_VERSION, "EMQ Web Dashboard", true, {}},
                broker::PluginHooks{[&dashboard] { dashboard.set_enabled(true); },
                                    [&dashboard] { dashboard.set_enabled(false); },
                                    {},
                                    {}});
    for (const auto& warning : plugins.load()) {
        spdlog::warn("{}", warning);
    }

    // A cluster member joins before serving: management/nodes lists the cluster from the first
    // request. etcd out of reach does not stop the node (it serves its clients and keeps trying).
    std::unique_ptr<cluster::Membership> membership;
    std::unique_ptr<cluster::Forwarder> forwarder;
    if (auto endpoints =
                cluster::EtcdClient::parse_endpoints(cfg->get_string("cluster.etcd.endpoints"));
        !endpoints.empty()) {
        cluster::Membership::Options o;
        o.endpoints = std::move(endpoints);
        o.cluster = cfg->get_string("cluster.name");
        o.node = settings.node_name;
        o.lease_ttl_s = cfg->get_int("cluster.lease_ttl");
        o.version = MQTTD_VERSION;
        o.otp_release = api::build_description();
        o.started_at_ms = broker.started_at_ms();
        o.api = cluster::advertised_address(api_address, cfg->get_string("cluster.api_advertise"));
        o.link = cluster::advertised_address(cfg->get_string("cluster.listener"), "");
        membership = std::make_unique<cluster::Membership>(
                std::move(o), [](bool warning, const std::string& line) {
                    if (warning) {
                        spdlog::warn("{}", line);
                    } else {
                        spdlog::info("{}", line);
                    }
                });
        std::string why;
        if (!membership->start(&why)) {
            spdlog::warn("cluster: etcd unreachable ({}); serving local clients, retrying", why);
        }
        admin.set_cluster(membership.get());
        // Routes and forwarding: the link binds before the listeners open (a port in use
        // stops startup), and the broker knows its cluster before any worker runs.
        cluster::Forwarder::Options f;
        f.endpoints =
                cluster::EtcdClient::parse_endpoints(cfg->get_string("cluster.etcd.endpoints"));
        f.cluster = cfg->get_string("cluster.name");
        f.node = settings.node_name;
        f.listen = cfg->get_string("cluster.listener");
        const std::string tls_error = cfg->get_bool("cluster.listener.ssl")
                                              ? link_tls(*cfg, f.tls_server, f.tls_client)
                                              : std::string();
        f.forward_timeout_ms = cfg->get_int("cluster.forward_timeout") * 1000;
        f.takeover_timeout_ms = cfg->get_int("cluster.takeover_timeout") * 1000;
        const bool no_link = f.listen.empty();
        forwarder = std::make_unique<cluster::Forwarder>(broker, *membership, std::move(f),
                                                         [](bool warning, const std::string& line) {
                                                             if (warning) {
                                                                 spdlog::warn("{}", line);
                                                             } else {
                                                                 spdlog::info("{}", line);
                                                             }
                                                         });
        if (auto err = !tls_error.empty() ? tls_error
                       : no_link ? std::string("cluster.listener is empty: a cluster node needs it")
                                 : forwarder->start();
            !err.empty()) {
            membership->stop();
            store->close();
            return fail(err);
        }
        broker.set_cluster(forwarder.get());
    }

    server.start();
    // Before the REST API: once both the MQTT and the REST ports accept, the dashboard does too.
    if (auto err = dashboard.arm(); !err.empty()) {
        server.stop();
        store->close();
        return fail(err);
    }
    if (!api_address.empty()) {
        if (auto err = rest.start(api_address); !err.empty()) {
            dashboard.stop();
            server.stop();
            store->close();
            return fail(err);
        }
    }
    spdlog::info("mqttd {} ({}) listening on {}{} (REST API) with {} workers, data in {}",
                 MQTTD_VERSION, settings.node_name, listening, api_address, workers, cfg->db_dir());
    // systemd (Type=notify): the listeners accept from here on; the watchdog pings until the
    // clean stop is over.
    service::notify_ready("listening on " + listening + api_address);
    service::Watchdog watchdog;

    int sig = 0;
    while (true) {
        sigwait(&signals, &sig);
        if (sig != SIGHUP) {
            break;
        }
        // SIGHUP re-reads the ACL file without dropping clients; a broken file keeps the old
        // rules.
        if (auto r = admin.reload_acl(); !r.error.empty()) {
            spdlog::error("ACL reload refused, old rules kept: {}", r.error);
        } else {
            spdlog::info("ACL reloaded from {}", cfg->get_string("mqtt.acl_file"));
        }
    }
    spdlog::info("signal {}: stopping", sig);
    service::notify_stopping("stopping");
    // A second SIGTERM or SIGINT while stopping exits at once: still safe, the WAL holds every
    // write that was acknowledged.
    std::thread([signals] {
        int again = 0;
        while (sigwait(&signals, &again) == 0) {
            if (again == SIGTERM || again == SIGINT) {
                static constexpr char kLine[] = "mqttd: second signal: exiting at once\n";
                ssize_t ignored = ::write(STDERR_FILENO, kLine, sizeof kLine - 1);
                (void)ignored;
                ::_exit(1);
            }
        }
    }).detach();
    const int64_t timeout_ms = cfg->get_int("node.shutdown_timeout") * 1000;
    // Stop accepting (the listeners close first), then each connection once the acks it waits
    // for are sent, MQTT 5 ones with DISCONNECT 0x8B; bounded by node.shutdown_timeout.
    server.stop(timeout_ms);
    dashboard.stop();
    rest.stop();
    admin.set_cluster(nullptr);
    if (forwarder) {
        forwarder->stop();  // after the workers: their last acks from peers came meanwhile
    }
    if (membership) {
        membership->stop();  // leaves the cluster: the node's alive key goes with its lease
    }
    // The store's close writes what is queued and closes RocksDB cleanly; bounded too.
    std::promise<void> closed;
    auto close_done = closed.get_future();
    std::thread closer([&store, &closed] {
        store->close();
        closed.set_value();
    });
    if (close_done.wait_for(std::chrono::milliseconds(timeout_ms)) != std::future_status::ready) {
        spdlog::error(
                "the store did not close within node.shutdown_timeout ({} s); exiting "
                "(the WAL holds what was acknowledged)",
                timeout_ms / 1000);
        ::_exit(1);
    }
    closer.join();
    spdlog::info("stopped");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        if (argc > 1 && std::string_view(argv[1]) == "inspect") {
            return tools::inspect_main(argc - 1, argv + 1);
        }
        if (argc > 1 && std::string_view(argv[1]) == "ctl") {
            return tools::ctl_main(argc - 1, argv + 1);
        }
        return run(argc, argv);
    } catch (const std::exception& e) {
        return fail(e.what());
    }
}
