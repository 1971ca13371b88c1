// The key table and the value parser. Adding a key: add a row here, a line in data/mqttd.conf
// (config_test checks that the shipped file lists every key with its default) and a row in
// src/config/README.md.
#include "config/keys.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <limits>
#include <system_error>

namespace mqttd::config {
namespace {

constexpr std::array<std::string_view, 2> kAllowDeny{"allow", "deny"};
constexpr std::array<std::string_view, 2> kVerify{"verify_none", "verify_peer"};
constexpr std::array<std::string_view, 3> kPeerCert{"off", "cn", "dn"};
constexpr std::array<std::string_view, 2> kWalRecovery{"strict", "point_in_time"};
constexpr std::array<std::string_view, 2> kOnOff{"on", "off"};
constexpr std::array<std::string_view, 2> kLogFormats{"text", "json"};
constexpr std::array<std::string_view, 6> kLogLevels{"debug", "info",     "warning",
                                                     "error", "critical", "off"};
constexpr int64_t kMaxInt = std::numeric_limits<int64_t>::max();
constexpr int64_t kOneDay = 86400;

// MQTT 5 Session Expiry Interval is a four byte integer [MQTT-3.1.2.11.2].
constexpr int64_t kMaxUint32 = 4294967295;
// The largest Remaining Length the variable byte integer can encode [MQTT-1.5.5].
constexpr int64_t kMaxRemainingLength = 268435455;

using enum ValueType;

// clang-format off
constexpr std::array kKeys{
    KeyDef{.name = "node.name", .type = String, .default_text = "mqttd@127.0.0.1", .min = 1,
           .description = "Node name shown by the REST API (name@host)."},
    KeyDef{.name = "node.data_dir", .type = String, .default_text = "data", .min = 1,
           .description = "Data directory; the RocksDB store lives in <data_dir>/db."},
    KeyDef{.name = "node.workers", .type = Int, .default_text = "0", .min = 0, .max = 256,
           .description = "Worker threads, one io_context each; 0 = number of CPU cores."},
    KeyDef{.name = "node.shutdown_timeout", .type = Duration, .default_text = "10", .min = 1,
           .max = 3600,
           .description = "SIGTERM: how long acks that wait for the store and the store's close "
                          "may take before mqttd exits anyway; a second SIGTERM exits at once."},

    KeyDef{.name = "cluster.etcd.endpoints", .type = String, .default_text = "",
           .description = "etcd endpoints of the cluster (comma-separated http://host:port); "
                          "empty = a single node."},
    KeyDef{.name = "cluster.name", .type = String, .default_text = "mqttd", .min = 1,
           .description = "The cluster's name: its keys in etcd live under <name>/."},
    KeyDef{.name = "cluster.lease_ttl", .type = Duration, .default_text = "10", .min = 2,
           .max = 3600,
           .description = "How long after its last keep-alive a node still counts as running."},
    KeyDef{.name = "cluster.api_advertise", .type = String, .default_text = "",
           .description = "host:port at which the other nodes reach this node's REST API; "
                          "empty = listener.api.mgmt, a wildcard host replaced by the host "
                          "name."},
    KeyDef{.name = "cluster.listener", .type = Address, .default_text = "127.0.0.1:4370",
           .description = "The node-to-node link: host:port other nodes reach this one on "
                          "(advertised in its member record)."},
    KeyDef{.name = "cluster.listener.ssl", .type = Bool, .default_text = "false",
           .description = "TLS on the node-to-node link, both ways: each node shows its "
                          "certificate and verifies the other's against the cluster's CA."},
    KeyDef{.name = "cluster.listener.keyfile", .type = String, .default_text = "",
           .description = "PEM private key of the link's certificate; empty = "
                          "listener.ssl.external.keyfile."},
    KeyDef{.name = "cluster.listener.certfile", .type = String, .default_text = "",
           .description = "PEM certificate chain this node shows its peers (for server and "
                          "client authentication); empty = listener.ssl.external.certfile."},
    KeyDef{.name = "cluster.listener.cacertfile", .type = String, .default_text = "",
           .description = "PEM CA certificates the peers' certificates are verified with; empty "
                          "= listener.ssl.external.cacertfile."},
    KeyDef{.name = "cluster.forward_timeout", .type = Duration, .default_text = "30", .min = 1,
           .max = 3600,
           .description = "How long a QoS 1/2 message forwarded to another node waits for its "
                          "answer before its publisher is refused."},
    KeyDef{.name = "cluster.takeover_timeout", .type = Duration, .default_text = "5", .min = 1,
           .max = 600,
           .description = "How long a CONNECT for a client id another node owns waits for that "
                          "node to hand the session over before it is refused (0x88)."},

    KeyDef{.name = "listener.tcp.external", .type = Address, .default_text = "0.0.0.0:1883",
           .description = "MQTT over TCP: host:port or port; empty = off."},
    KeyDef{.name = "listener.tcp.external.max_clients", .type = Int, .default_text = "1024000",
           .min = 1, .max = 100000000,
           .description = "Most concurrent connections of this listener; more are closed at "
                          "accept."},
    KeyDef{.name = "listener.tcp.external.acceptors", .type = Int, .default_text = "1",
           .min = 1, .max = 256,
           .description = "Listening sockets (SO_REUSEPORT), each accepting on its own worker."},
    KeyDef{.name = "listener.tcp.external.rate_limit", .type = String, .default_text = "",
           .description = "bytes_per_second,burst read per connection (e.g. 100KB,1MB); empty = "
                          "no limit."},
    KeyDef{.name = "listener.tcp.external.proxy_protocol", .type = Bool, .default_text = "false",
           .description = "Expect a HAProxy PROXY v1/v2 header first: clients show their real "
                          "address."},
    KeyDef{.name = "listener.tcp.external.proxy_protocol_timeout", .type = Duration,
           .default_text = "3",
           .min = 1, .max = 3600,
           .description = "Close a connection whose PROXY header does not come within this time."},
    KeyDef{.name = "listener.ssl.external", .type = Address, .default_text = "0.0.0.0:8883",
           .description = "MQTT over TLS: host:port or port; empty = off."},
    KeyDef{.name = "listener.ssl.external.max_clients", .type = Int, .default_text = "102400",
           .min = 1, .max = 100000000,
           .description = "Most concurrent connections of this listener; more are closed at "
                          "accept."},
    KeyDef{.name = "listener.ssl.external.acceptors", .type = Int, .default_text = "1",
           .min = 1, .max = 256,
           .description = "Listening sockets (SO_REUSEPORT), each accepting on its own worker."},
    KeyDef{.name = "listener.ssl.external.rate_limit", .type = String, .default_text = "",
           .description = "bytes_per_second,burst read per connection (e.g. 100KB,1MB); empty = "
                          "no limit."},
    KeyDef{.name = "listener.ssl.external.proxy_protocol", .type = Bool, .default_text = "false",
           .description = "Expect a HAProxy PROXY v1/v2 header first: clients show their real "
                          "address."},
    KeyDef{.name = "listener.ssl.external.handshake_timeout", .type = Duration,
           .default_text = "15",
           .min = 1, .max = 3600,
           .description = "TLS handshake must end within this time."},
    KeyDef{.name = "listener.ssl.external.keyfile", .type = String,
           .default_text = "data/certs/key.pem",
           .description = "PEM private key; generated (self-signed) on first start when this and "
                          "certfile are the defaults and absent."},
    KeyDef{.name = "listener.ssl.external.certfile", .type = String,
           .default_text = "data/certs/cert.pem",
           .description = "PEM certificate chain of the server."},
    KeyDef{.name = "listener.ssl.external.cacertfile", .type = String,
           .default_text = "data/certs/cacert.pem",
           .description = "PEM CA certificates client certificates are verified with "
                          "(verify_peer)."},
    KeyDef{.name = "listener.ssl.external.password", .type = String, .default_text = "",
           .description = "Password of an encrypted keyfile; empty = not encrypted."},
    KeyDef{.name = "listener.ssl.external.verify", .type = Enum, .default_text = "verify_none",
           .choices = kVerify,
           .description = "verify_peer asks clients for a certificate and verifies it against "
                          "cacertfile."},
    KeyDef{.name = "listener.ssl.external.fail_if_no_peer_cert", .type = Bool,
           .default_text = "false",
           .description = "With verify_peer: refuse clients that send no certificate."},
    KeyDef{.name = "listener.ssl.external.tls_versions", .type = String,
           .default_text = "tlsv1.3,tlsv1.2",
           .min = 1,
           .description = "TLS versions offered, comma-separated: tlsv1.3, tlsv1.2."},
    KeyDef{.name = "listener.ssl.external.ciphers", .type = String, .default_text = "",
           .description = "Cipher suites, comma-separated OpenSSL names (TLS_... for 1.3); empty "
                          "= OpenSSL's defaults."},
    KeyDef{.name = "listener.ssl.external.peer_cert_as_username", .type = Enum,
           .default_text = "off",
           .choices = kPeerCert,
           .description = "off, or cn / dn: the client certificate's common name / subject DN "
                          "becomes the username."},
    KeyDef{.name = "listener.ws.external", .type = Address, .default_text = "0.0.0.0:8083",
           .description = "MQTT over WebSocket: host:port or port; empty = off."},
    KeyDef{.name = "listener.ws.external.max_clients", .type = Int, .default_text = "102400",
           .min = 1, .max = 100000000,
           .description = "Most concurrent connections of this listener; more are closed at "
                          "accept."},
    KeyDef{.name = "listener.ws.external.acceptors", .type = Int, .default_text = "1",
           .min = 1, .max = 256,
           .description = "Listening sockets (SO_REUSEPORT), each accepting on its own worker."},
    KeyDef{.name = "listener.ws.external.rate_limit", .type = String, .default_text = "",
           .description = "bytes_per_second,burst read per connection (e.g. 100KB,1MB); empty = "
                          "no limit."},
    KeyDef{.name = "listener.ws.external.handshake_timeout", .type = Duration, .default_text = "15",
           .min = 1, .max = 3600,
           .description = "WebSocket upgrade must end within this time."},
    KeyDef{.name = "listener.ws.external.mqtt_path", .type = String, .default_text = "/mqtt",
           .min = 1,
           .description = "HTTP path of the WebSocket upgrade."},
    KeyDef{.name = "listener.wss.external", .type = Address, .default_text = "0.0.0.0:8084",
           .description = "MQTT over WebSocket over TLS: host:port or port; empty = off."},
    KeyDef{.name = "listener.wss.external.max_clients", .type = Int, .default_text = "102400",
           .min = 1, .max = 100000000,
           .description = "Most concurrent connections of this listener; more are closed at "
                          "accept."},
    KeyDef{.name = "listener.wss.external.acceptors", .type = Int, .default_text = "1",
           .min = 1, .max = 256,
           .description = "Listening sockets (SO_REUSEPORT), each accepting on its own worker."},
    KeyDef{.name = "listener.wss.external.rate_limit", .type = String, .default_text = "",
           .description = "bytes_per_second,burst read per connection (e.g. 100KB,1MB); empty = "
                          "no limit."},
    KeyDef{.name = "listener.wss.external.handshake_timeout", .type = Duration,
           .default_text = "15",
           .min = 1, .max = 3600,
           .description = "TLS handshake and WebSocket upgrade must end within this time."},
    KeyDef{.name = "listener.wss.external.mqtt_path", .type = String, .default_text = "/mqtt",
           .min = 1,
           .description = "HTTP path of the WebSocket upgrade."},
    KeyDef{.name = "listener.wss.external.keyfile", .type = String,
           .default_text = "data/certs/key.pem",
           .description = "PEM private key; generated (self-signed) on first start when this and "
                          "certfile are the defaults and absent."},
    KeyDef{.name = "listener.wss.external.certfile", .type = String,
           .default_text = "data/certs/cert.pem",
           .description = "PEM certificate chain of the server."},
    KeyDef{.name = "listener.wss.external.cacertfile", .type = String,
           .default_text = "data/certs/cacert.pem",
           .description = "PEM CA certificates client certificates are verified with "
                          "(verify_peer)."},
    KeyDef{.name = "listener.wss.external.password", .type = String, .default_text = "",
           .description = "Password of an encrypted keyfile; empty = not encrypted."},
    KeyDef{.name = "listener.wss.external.verify", .type = Enum, .default_text = "verify_none",
           .choices = kVerify,
           .description = "verify_peer asks clients for a certificate and verifies it against "
                          "cacertfile."},
    KeyDef{.name = "listener.wss.external.fail_if_no_peer_cert", .type = Bool,
           .default_text = "false",
           .description = "With verify_peer: refuse clients that send no certificate."},
    KeyDef{.name = "listener.wss.external.tls_versions", .type = String,
           .default_text = "tlsv1.3,tlsv1.2",
           .min = 1,
           .description = "TLS versions offered, comma-separated: tlsv1.3, tlsv1.2."},
    KeyDef{.name = "listener.wss.external.ciphers", .type = String, .default_text = "",
           .description = "Cipher suites, comma-separated OpenSSL names (TLS_... for 1.3); empty "
                          "= OpenSSL's defaults."},
    KeyDef{.name = "listener.wss.external.peer_cert_as_username", .type = Enum,
           .default_text = "off",
           .choices = kPeerCert,
           .description = "off, or cn / dn: the client certificate's common name / subject DN "
                          "becomes the username."},

    KeyDef{.name = "listener.api.mgmt", .type = Address, .default_text = "127.0.0.1:8080",
           .min = 1, .description = "REST API v2 (management): host:port or port."},

    KeyDef{.name = "dashboard.listener.http", .type = Address, .default_text = "0.0.0.0:18083",
           .description = "Web dashboard (plugin emq_dashboard): host:port or port; empty = off."},
    KeyDef{.name = "dashboard.docroot", .type = String, .default_text = "",
           .description = "Directory of the dashboard's files; empty = share/mqttd/www beside "
                          "the binary's bin/, else www/ beside the binary."},

    KeyDef{.name = "mqtt.allow_anonymous", .type = Bool, .default_text = "true", .hot = true,
           .description = "Accept clients that connect without a username."},
    KeyDef{.name = "mqtt.acl_file", .type = String, .default_text = "data/acl.conf",
           .hot = true, .description = "ACL rules file; empty = no file rules."},
    KeyDef{.name = "mqtt.acl_nomatch", .type = Enum, .default_text = "allow",
           .choices = kAllowDeny, .hot = true,
           .description = "What to do when no ACL rule matches: allow or deny."},
    KeyDef{.name = "mqtt.cache_acl", .type = Bool, .default_text = "true", .hot = true,
           .description = "Cache ACL decisions per connection."},
    KeyDef{.name = "mqtt.broker.sys_interval", .type = Duration, .default_text = "60",
           .min = 0, .max = kOneDay, .hot = true,
           .description = "Interval of the $SYS/ broker messages; 0 = off."},
    KeyDef{.name = "mqtt.max_packet_size", .type = Size, .default_text = "1048576", .min = 2,
           .max = kMaxRemainingLength,
           .description = "Largest MQTT packet accepted; larger ones close the connection."},
    KeyDef{.name = "mqtt.max_clientid_len", .type = Int, .default_text = "65535", .min = 23,
           .max = 65535, .description = "Longest client identifier accepted."},
    KeyDef{.name = "mqtt.max_keepalive", .type = Duration, .default_text = "0", .min = 0,
           .max = 65535,
           .description = "Longest keepalive an MQTT 5 client is given (Server Keep Alive); "
                          "0 = the client's own."},
    KeyDef{.name = "mqtt.max_inflight", .type = Int, .default_text = "0", .min = 0,
           .max = 65535,
           .description = "QoS 1/2 messages in flight per session; 0 = no fixed count "
                          "(mqtt.max_inflight_bytes and the client's Receive Maximum bound it)."},
    KeyDef{.name = "mqtt.max_inflight_bytes", .type = Size, .default_text = "4194304",
           .min = 0, .max = kMaxInt,
           .description = "Bytes of QoS 1/2 messages in flight per session; 0 = no limit."},
    KeyDef{.name = "mqtt.mqueue.max_len", .type = Int, .default_text = "1000", .min = 0,
           .max = kMaxInt,
           .description = "Queued messages per session; beyond it the oldest is dropped. "
                          "0 = no limit."},
    KeyDef{.name = "mqtt.mqueue.store_qos0", .type = Bool, .default_text = "true",
           .description = "Queue QoS 0 messages for offline persistent sessions."},
    KeyDef{.name = "mqtt.connect_timeout", .type = Duration, .default_text = "15", .min = 1,
           .max = 3600,
           .description = "Close a connection that sends no CONNECT within this time."},
    KeyDef{.name = "mqtt.session.expiry_interval", .type = Duration, .default_text = "7200",
           .min = 0, .max = kMaxUint32,
           .description = "How long an offline persistent session is kept; 0 = never expires."},
    KeyDef{.name = "mqtt.retry_interval", .type = Duration, .default_text = "20", .min = 1,
           .max = kOneDay,
           .description = "Accepted for EMQ 2.x configuration files, without effect: "
                          "unacknowledged messages are resent when their session resumes, as "
                          "MQTT requires, not on a timer."},
    KeyDef{.name = "mqtt.max_awaiting_rel", .type = Int, .default_text = "100", .min = 0,
           .max = 65535,
           .description = "QoS 2 messages awaiting PUBREL per session; 0 = no limit."},
    KeyDef{.name = "mqtt.await_rel_timeout", .type = Duration, .default_text = "20", .min = 1,
           .max = kOneDay,
           .description = "Drop a QoS 2 message whose PUBREL does not come in time."},

    KeyDef{.name = "log.console.level", .type = Enum, .default_text = "info",
           .choices = kLogLevels, .hot = true,
           .description = "Console (stderr) log level."},
    KeyDef{.name = "log.format", .type = Enum, .default_text = "text", .choices = kLogFormats,
           .description = "Console and file log lines: text, or json (one object per line: "
                          "time (ISO 8601 UTC), level, thread, message)."},
    KeyDef{.name = "log.file", .type = String, .default_text = "",
           .description = "Also log to this file, rotated by size; empty = console only."},
    KeyDef{.name = "log.file.level", .type = Enum, .default_text = "info",
           .choices = kLogLevels, .description = "Log file level."},
    KeyDef{.name = "log.file.max_size", .type = Size, .default_text = "10485760", .min = 1024,
           .max = kMaxInt,
           .description = "Rotate the log file when the next line would take it past this "
                          "size."},
    KeyDef{.name = "log.file.count", .type = Int, .default_text = "5", .min = 1, .max = 1000,
           .description = "Rotated log files kept (for mqttd.log: mqttd.1.log, the newest, "
                          "mqttd.2.log, ...); older ones are deleted."},

    KeyDef{.name = "storage.sync", .type = Bool, .default_text = "false",
           .description = "fsync every group commit: survive power loss, not only a crash."},
    KeyDef{.name = "storage.wal_recovery", .type = Enum, .default_text = "strict",
           .choices = kWalRecovery,
           .description = "A damaged WAL record with writes after it: strict refuses to start, "
                          "point_in_time drops it and all after it (logged; same as --recover)."},
    KeyDef{.name = "storage.verify_on_open", .type = Bool, .default_text = "true",
           .description = "Check every table file's block checksums at start (reads the store "
                          "once), so a damaged file stops startup instead of a later read."},
    KeyDef{.name = "storage.backup_dir", .type = String, .default_text = "",
           .description = "Where POST /api/v2/backup puts backups; empty = "
                          "<node.data_dir>/backups."},

    KeyDef{.name = "api.default_user", .type = String, .default_text = "admin", .min = 1,
           .description = "REST admin user created when the store has no users."},
    KeyDef{.name = "api.default_password", .type = String, .default_text = "public", .min = 1,
           .description = "Password of that user when it is created (change it after)."},
    KeyDef{.name = "api.metrics.auth", .type = Enum, .default_text = "on", .choices = kOnOff,
           .description = "on: GET /metrics needs the REST API's Basic auth; off: open to all."},
    KeyDef{.name = "api.nice", .type = Int, .default_text = "10", .min = 0, .max = 19,
           .description = "Nice value of the REST API's and the dashboard's threads (0 = as "
                          "mqttd's), so MQTT workers win the cores when both want them."},
    KeyDef{.name = "api.auth.failure_burst", .type = Int, .default_text = "10", .min = 1,
           .max = 1000000,
           .description = "Failed REST logins a source address may make at once; past them its "
                          "logins get 429 (no hashing) until it earns more."},
    KeyDef{.name = "api.auth.failure_refill_per_min", .type = Int, .default_text = "60",
           .min = 1, .max = 6000000,
           .description = "Failed REST logins a source address earns back a minute, up to "
                          "api.auth.failure_burst."},
    KeyDef{.name = "api.auth.max_concurrent_hashes", .type = Int, .default_text = "1", .min = 1,
           .max = 256,
           .description = "REST password checks (PBKDF2, ~25 ms of a core each) at once, all "
                          "sources together; a login past them waits for one (then 429)."},
    KeyDef{.name = "api.auth.max_hash_wait_ms", .type = Int, .default_text = "1000", .min = 0,
           .max = 10000,
           .description = "How long a REST login waits, first come first served, for a "
                          "password check slot before 429; 0 = not at all."},
    KeyDef{.name = "api.auth.failure_delay_ms", .type = Int, .default_text = "1000", .min = 0,
           .max = 60000,
           .description = "Failed and refused REST logins are answered this late (a 429 at most "
                          "until its Retry-After), without holding a thread; 0 = at once."},
    KeyDef{.name = "api.auth.max_delayed", .type = Int, .default_text = "1024", .min = 0,
           .max = 1000000,
           .description = "Late answers held at once per REST listener; past them an answer "
                          "goes at once."},

    KeyDef{.name = "auth.user.1.username", .type = String,
           .description = "emq_auth_username: user 1 added at start if not stored yet."},
    KeyDef{.name = "auth.user.1.password", .type = String,
           .description = "emq_auth_username: password of user 1 (stored hashed)."},
    KeyDef{.name = "auth.user.2.username", .type = String,
           .description = "emq_auth_username: user 2 added at start if not stored yet."},
    KeyDef{.name = "auth.user.2.password", .type = String,
           .description = "emq_auth_username: password of user 2 (stored hashed)."},
    KeyDef{.name = "auth.user.3.username", .type = String,
           .description = "emq_auth_username: user 3 added at start if not stored yet."},
    KeyDef{.name = "auth.user.3.password", .type = String,
           .description = "emq_auth_username: password of user 3 (stored hashed)."},
    KeyDef{.name = "auth.user.4.username", .type = String,
           .description = "emq_auth_username: user 4 added at start if not stored yet."},
    KeyDef{.name = "auth.user.4.password", .type = String,
           .description = "emq_auth_username: password of user 4 (stored hashed)."},
    KeyDef{.name = "auth.client.1.clientid", .type = String,
           .description = "emq_auth_clientid: client id 1 added at start if not stored yet."},
    KeyDef{.name = "auth.client.1.password", .type = String,
           .description = "emq_auth_clientid: password of client id 1 (stored hashed)."},
    KeyDef{.name = "auth.client.2.clientid", .type = String,
           .description = "emq_auth_clientid: client id 2 added at start if not stored yet."},
    KeyDef{.name = "auth.client.2.password", .type = String,
           .description = "emq_auth_clientid: password of client id 2 (stored hashed)."},
    KeyDef{.name = "auth.client.3.clientid", .type = String,
           .description = "emq_auth_clientid: client id 3 added at start if not stored yet."},
    KeyDef{.name = "auth.client.3.password", .type = String,
           .description = "emq_auth_clientid: password of client id 3 (stored hashed)."},
    KeyDef{.name = "auth.client.4.clientid", .type = String,
           .description = "emq_auth_clientid: client id 4 added at start if not stored yet."},
    KeyDef{.name = "auth.client.4.password", .type = String,
           .description = "emq_auth_clientid: password of client id 4 (stored hashed)."},

    KeyDef{.name = "auth.redis.server", .type = String, .default_text = "127.0.0.1:6379",
           .description = "emq_auth_redis: Redis server host:port."},
    KeyDef{.name = "auth.redis.pool", .type = String, .default_text = "8",
           .description = "emq_auth_redis: connections (and threads) to the server, 1..64."},
    KeyDef{.name = "auth.redis.database", .type = String, .default_text = "0",
           .description = "emq_auth_redis: database number to SELECT."},
    KeyDef{.name = "auth.redis.password", .type = String, .default_text = "",
           .description = "emq_auth_redis: password for AUTH; empty = none."},
    KeyDef{.name = "auth.redis.auth_cmd", .type = String, .default_text = "HMGET mqtt_user:%u password",
           .description = "emq_auth_redis: command returning the password (and salt)."},
    KeyDef{.name = "auth.redis.password_hash", .type = String, .default_text = "plain",
           .description = "emq_auth_redis: plain, md5, sha, sha256, sha512, bcrypt, salt,<hash>, <hash>,salt, pbkdf2,<mac>,<iterations>,<dklen>."},
    KeyDef{.name = "auth.redis.super_cmd", .type = String, .default_text = "HGET mqtt_user:%u is_superuser",
           .description = "emq_auth_redis: command returning 1 for a superuser; empty = none."},
    KeyDef{.name = "auth.redis.acl_cmd", .type = String, .default_text = "HGETALL mqtt_acl:%u",
           .description = "emq_auth_redis: command returning topic -> 1 (sub), 2 (pub), 3 (both); empty = no ACL."},
    KeyDef{.name = "auth.redis.query_timeout", .type = String, .default_text = "5s",
           .description = "emq_auth_redis: longest wait for one query (5s, 500ms; a plain number is seconds)."},
    KeyDef{.name = "auth.redis.on_error", .type = String, .default_text = "ignore",
           .description = "emq_auth_redis: while the backend cannot answer: ignore (next provider) or deny."},
    KeyDef{.name = "auth.redis.cache_ttl", .type = String, .default_text = "0",
           .description = "emq_auth_redis: seconds an allowed CONNECT is remembered; 0 = no auth cache."},
    KeyDef{.name = "auth.mysql.server", .type = String, .default_text = "127.0.0.1:3306",
           .description = "emq_auth_mysql: server host:port."},
    KeyDef{.name = "auth.mysql.pool", .type = String, .default_text = "8",
           .description = "emq_auth_mysql: connections (and threads) to the server, 1..64."},
    KeyDef{.name = "auth.mysql.username", .type = String, .default_text = "",
           .description = "emq_auth_mysql: database user."},
    KeyDef{.name = "auth.mysql.password", .type = String, .default_text = "",
           .description = "emq_auth_mysql: password of that user."},
    KeyDef{.name = "auth.mysql.database", .type = String, .default_text = "mqtt",
           .description = "emq_auth_mysql: database name."},
    KeyDef{.name = "auth.mysql.auth_query", .type = String, .default_text = "select password from mqtt_user where username = '%u' limit 1",
           .description = "emq_auth_mysql: query returning the password (and salt)."},
    KeyDef{.name = "auth.mysql.password_hash", .type = String, .default_text = "sha256",
           .description = "emq_auth_mysql: plain, md5, sha, sha256, sha512, bcrypt, salt,<hash>, <hash>,salt, pbkdf2,<mac>,<iterations>,<dklen>."},
    KeyDef{.name = "auth.mysql.super_query", .type = String, .default_text = "select is_superuser from mqtt_user where username = '%u' limit 1",
           .description = "emq_auth_mysql: query returning 1/true for a superuser; empty = none."},
    KeyDef{.name = "auth.mysql.acl_query", .type = String, .default_text = "select allow, ipaddr, username, clientid, access, topic from mqtt_acl where ipaddr = '%a' or username = '%u' or username = '$all' or clientid = '%c'",
           .description = "emq_auth_mysql: query returning the ACL rows; empty = no ACL."},
    KeyDef{.name = "auth.mysql.query_timeout", .type = String, .default_text = "5s",
           .description = "emq_auth_mysql: longest wait for one query (5s, 500ms; a plain number is seconds)."},
    KeyDef{.name = "auth.mysql.on_error", .type = String, .default_text = "ignore",
           .description = "emq_auth_mysql: while the backend cannot answer: ignore (next provider) or deny."},
    KeyDef{.name = "auth.mysql.cache_ttl", .type = String, .default_text = "0",
           .description = "emq_auth_mysql: seconds an allowed CONNECT is remembered; 0 = no auth cache."},
    KeyDef{.name = "auth.pgsql.server", .type = String, .default_text = "127.0.0.1:5432",
           .description = "emq_auth_pgsql: server host:port."},
    KeyDef{.name = "auth.pgsql.pool", .type = String, .default_text = "8",
           .description = "emq_auth_pgsql: connections (and threads) to the server, 1..64."},
    KeyDef{.name = "auth.pgsql.username", .type = String, .default_text = "root",
           .description = "emq_auth_pgsql: database user."},
    KeyDef{.name = "auth.pgsql.password", .type = String, .default_text = "",
           .description = "emq_auth_pgsql: password of that user."},
    KeyDef{.name = "auth.pgsql.database", .type = String, .default_text = "mqtt",
           .description = "emq_auth_pgsql: database name."},
    KeyDef{.name = "auth.pgsql.encoding", .type = String, .default_text = "utf8",
           .description = "emq_auth_pgsql: client encoding."},
    KeyDef{.name = "auth.pgsql.ssl", .type = String, .default_text = "false",
           .description = "emq_auth_pgsql: true = require TLS to the server."},
    KeyDef{.name = "auth.pgsql.auth_query", .type = String, .default_text = "select password from mqtt_user where username = '%u' limit 1",
           .description = "emq_auth_pgsql: query returning the password (and salt)."},
    KeyDef{.name = "auth.pgsql.password_hash", .type = String, .default_text = "sha256",
           .description = "emq_auth_pgsql: plain, md5, sha, sha256, sha512, bcrypt, salt,<hash>, <hash>,salt, pbkdf2,<mac>,<iterations>,<dklen>."},
    KeyDef{.name = "auth.pgsql.super_query", .type = String, .default_text = "select is_superuser from mqtt_user where username = '%u' limit 1",
           .description = "emq_auth_pgsql: query returning 1/true for a superuser; empty = none."},
    KeyDef{.name = "auth.pgsql.acl_query", .type = String, .default_text = "select allow, ipaddr, username, clientid, access, topic from mqtt_acl where ipaddr = '%a' or username = '%u' or username = '$all' or clientid = '%c'",
           .description = "emq_auth_pgsql: query returning the ACL rows; empty = no ACL."},
    KeyDef{.name = "auth.pgsql.query_timeout", .type = String, .default_text = "5s",
           .description = "emq_auth_pgsql: longest wait for one query (5s, 500ms; a plain number is seconds)."},
    KeyDef{.name = "auth.pgsql.on_error", .type = String, .default_text = "ignore",
           .description = "emq_auth_pgsql: while the backend cannot answer: ignore (next provider) or deny."},
    KeyDef{.name = "auth.pgsql.cache_ttl", .type = String, .default_text = "0",
           .description = "emq_auth_pgsql: seconds an allowed CONNECT is remembered; 0 = no auth cache."},
    KeyDef{.name = "auth.ldap.servers", .type = String, .default_text = "127.0.0.1",
           .description = "emq_auth_ldap: LDAP server host names, comma-separated."},
    KeyDef{.name = "auth.ldap.port", .type = String, .default_text = "389",
           .description = "emq_auth_ldap: LDAP port."},
    KeyDef{.name = "auth.ldap.pool", .type = String, .default_text = "8",
           .description = "emq_auth_ldap: connections (and threads) to the server, 1..64."},
    KeyDef{.name = "auth.ldap.bind_dn", .type = String, .default_text = "cn=root,dc=emqtt,dc=io",
           .description = "emq_auth_ldap: DN the broker binds as."},
    KeyDef{.name = "auth.ldap.bind_password", .type = String, .default_text = "public",
           .description = "emq_auth_ldap: password of bind_dn."},
    KeyDef{.name = "auth.ldap.timeout", .type = String, .default_text = "30",
           .description = "emq_auth_ldap: seconds to open a connection."},
    KeyDef{.name = "auth.ldap.device_dn", .type = String, .default_text = "ou=device,dc=emqtt,dc=io",
           .description = "emq_auth_ldap: search base of the users."},
    KeyDef{.name = "auth.ldap.match_objectclass", .type = String, .default_text = "mqttUser",
           .description = "emq_auth_ldap: object class of the users."},
    KeyDef{.name = "auth.ldap.username.attributetype", .type = String, .default_text = "uid",
           .description = "emq_auth_ldap: attribute holding the username."},
    KeyDef{.name = "auth.ldap.password.attributetype", .type = String, .default_text = "userPassword",
           .description = "emq_auth_ldap: attribute holding the password ({SSHA}, {SHA}, {CRYPT}, ... or plain)."},
    KeyDef{.name = "auth.ldap.ssl", .type = String, .default_text = "false",
           .description = "emq_auth_ldap: true = ldaps://."},
    KeyDef{.name = "auth.ldap.query_timeout", .type = String, .default_text = "5s",
           .description = "emq_auth_ldap: longest wait for one query (5s, 500ms; a plain number is seconds)."},
    KeyDef{.name = "auth.ldap.on_error", .type = String, .default_text = "ignore",
           .description = "emq_auth_ldap: while the backend cannot answer: ignore (next provider) or deny."},
    KeyDef{.name = "auth.ldap.cache_ttl", .type = String, .default_text = "0",
           .description = "emq_auth_ldap: seconds an allowed CONNECT is remembered; 0 = no auth cache."},
};
// clang-format on

std::string quoted(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 2);
    out += '"';
    out += s;
    out += '"';
    return out;
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())) != 0) {
        s.remove_prefix(1);
    }
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0) {
        s.remove_suffix(1);
    }
    return s;
}

std::string range_error(const KeyDef& def, std::string_view text, int64_t n, bool overflow) {
    std::string what;
    if (overflow) {
        what = quoted(text);
    } else if (std::to_string(n) == text) {
        what = std::string(text);
    } else {
        what = quoted(text) + " = " + std::to_string(n);
    }
    return what + " is out of range " + std::to_string(def.min) + ".." + std::to_string(def.max);
}

// A number followed by an optional unit from `units` (each with its multiplier).
struct Unit {
    std::string_view suffix;
    int64_t multiplier;
};

// Err("") means "not a number of this kind"; the caller words that message.
Result<int64_t, std::string> parse_scaled(const KeyDef& def,
                                          std::string_view text,
                                          std::span<const Unit> units) {
    std::string_view t = trim(text);
    int64_t n = 0;
    const char* begin = t.data();
    const char* end = t.data() + t.size();
    if (!t.empty() && t.front() == '+') {
        ++begin;
    }
    auto [ptr, ec] = std::from_chars(begin, end, n);
    if (ptr == begin || (ec != std::errc{} && ec != std::errc::result_out_of_range)) {
        return Err{std::string{}};
    }
    const std::string suffix = lower(trim(std::string_view(ptr, static_cast<size_t>(end - ptr))));
    int64_t multiplier = 1;
    if (!suffix.empty()) {
        auto it = std::find_if(units.begin(), units.end(),
                               [&](const Unit& u) { return u.suffix == suffix; });
        if (it == units.end()) {
            return Err{std::string{}};
        }
        multiplier = it->multiplier;
    }
    if (ec == std::errc::result_out_of_range) {
        return Err{range_error(def, text, 0, true)};
    }
    if (n > kMaxInt / multiplier || n < -(kMaxInt / multiplier)) {
        return Err{range_error(def, text, 0, true)};
    }
    n *= multiplier;
    if (n < def.min || n > def.max) {
        return Err{range_error(def, text, n, false)};
    }
    return n;
}

constexpr std::array<Unit, 0> kNoUnits{};
constexpr std::array kDurationUnits{Unit{"s", 1}, Unit{"m", 60}, Unit{"h", 3600},
                                    Unit{"d", kOneDay}};
constexpr std::array kSizeUnits{Unit{"b", 1},
                                Unit{"k", int64_t{1} << 10},
                                Unit{"kb", int64_t{1} << 10},
                                Unit{"m", int64_t{1} << 20},
                                Unit{"mb", int64_t{1} << 20},
                                Unit{"g", int64_t{1} << 30},
                                Unit{"gb", int64_t{1} << 30}};

Result<Value, std::string> parse_number(const KeyDef& def,
                                        std::string_view text,
                                        std::span<const Unit> units,
                                        std::string_view kind) {
    auto n = parse_scaled(def, text, units);
    if (!n) {
        if (n.error().empty()) {
            return Err{quoted(text) + " is not " + std::string(kind)};
        }
        return Err{n.error()};
    }
    return Value{std::to_string(*n), *n};
}

// host:port, [v6]:port or port. The host is not resolved here; the listener reports a bad host.
Result<Value, std::string> parse_address(const KeyDef& def, std::string_view text) {
    if (text.empty()) {
        if (def.min > 0) {
            return Err{std::string("value must not be empty")};
        }
        return Value{};
    }
    const std::string bad = quoted(text) + " is not an address (host:port or port)";
    std::string_view port = text;
    if (text.front() == '[') {
        const size_t close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':' ||
            close == 1) {
            return Err{bad};
        }
        port = text.substr(close + 2);
    } else if (const size_t colon = text.rfind(':'); colon != std::string_view::npos) {
        const std::string_view host = text.substr(0, colon);
        if (host.empty() || host.find(':') != std::string_view::npos ||
            host.find_first_of(" \t") != std::string_view::npos) {
            return Err{bad};
        }
        port = text.substr(colon + 1);
    }
    int64_t p = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (port.empty() || ec != std::errc{} || ptr != port.data() + port.size()) {
        return Err{bad};
    }
    if (p < 1 || p > 65535) {
        return Err{"port " + std::string(port) + " is out of range 1..65535"};
    }
    return Value{std::string(text), 0};
}

}  // namespace

Result<RateLimitValue, std::string> parse_rate_limit(std::string_view text) {
    static constexpr KeyDef kBytes{.type = Size, .min = 1, .max = kMaxInt};
    text = trim(text);
    if (text.empty()) {
        return RateLimitValue{};
    }
    const size_t comma = text.find(',');
    auto rate = parse_scaled(kBytes, text.substr(0, comma), kSizeUnits);
    if (!rate) {
        return Err{quoted(text) + " is not bytes_per_second,burst (e.g. 100KB,1MB)"};
    }
    RateLimitValue v{static_cast<uint64_t>(*rate), static_cast<uint64_t>(*rate)};
    if (comma != std::string_view::npos) {
        auto burst = parse_scaled(kBytes, text.substr(comma + 1), kSizeUnits);
        if (!burst) {
            return Err{quoted(text) + " is not bytes_per_second,burst (e.g. 100KB,1MB)"};
        }
        v.burst = static_cast<uint64_t>(*burst);
    }
    return v;
}

std::span<const KeyDef> all_keys() {
    return kKeys;
}

const KeyDef* find_key(std::string_view name) {
    for (const KeyDef& def : kKeys) {
        if (def.name == name) {
            return &def;
        }
    }
    return nullptr;
}

std::string_view datatpye(const KeyDef& def) {
    switch (def.type) {
        case Bool:
        case Enum:
            return "enum";
        case Int:
        case Duration:
        case Size:
            return "integer";
        case String:
        case Address:
            return "string";
    }
    return "string";
}

Result<Value, std::string> parse_value(const KeyDef& def, std::string_view text) {
    switch (def.type) {
        case Bool:
            if (text == "true") {
                return Value{"true", 1};
            }
            if (text == "false") {
                return Value{"false", 0};
            }
            return Err{quoted(text) + " is not a boolean (true or false)"};
        case Int:
            return parse_number(def, text, kNoUnits, "an integer");
        case Duration:
            return parse_number(def, text, kDurationUnits,
                                "a duration (seconds, or a number with s, m, h or d)");
        case Size:
            return parse_number(def, text, kSizeUnits,
                                "a size (bytes, or a number with KB, MB or GB)");
        case String:
            if (def.min > 0 && text.empty()) {
                return Err{std::string("value must not be empty")};
            }
            return Value{std::string(text), 0};
        case Address:
            return parse_address(def, text);
        case Enum: {
            for (size_t i = 0; i < def.choices.size(); ++i) {
                if (def.choices[i] == text) {
                    return Value{std::string(text), static_cast<int64_t>(i)};
                }
            }
            std::string list;
            for (std::string_view c : def.choices) {
                list += list.empty() ? "" : "|";
                list += c;
            }
            return Err{quoted(text) + " is not one of " + list};
        }
    }
    return Err{std::string("unsupported type")};
}

}  // namespace mqttd::config
