// net::TlsContext: the OpenSSL context of one TLS listener (mqtt:ssl, mqtt:wss) — its
// certificate and key, the CA that client certificates are verified with, the protocol
// versions and ciphers. Built once at startup; every connection of the listener makes its
// SSL object from it (tls_transport.h).
//
// Also the self-signed material of the shipped configuration: a CA and a server certificate
// for localhost / 127.0.0.1, generated with the OpenSSL API on first start, so no private key
// is ever committed.
//
// Thread-safety: make() and generate_self_signed() on the main thread before the workers
// start; afterwards the context is only read (SSL_new is thread-safe).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "net/server.h"

struct ssl_ctx_st;

namespace mqttd::net {

class TlsContext {
public:
    // `key` names the listener ("listener.ssl.external"): every error is one line naming
    // the key at fault and its file, e.g.
    //   listener.ssl.external.keyfile = data/certs/key.pem: cannot read: No such file ...
    // Server: a listener's. Client: the dialling side of the cluster's node-to-node link,
    // which shows its certificate and checks the peer's against cacertfile (verify_peer).
    enum class Role : uint8_t { Server, Client };
    static Result<std::shared_ptr<TlsContext>, std::string> make(const std::string& key,
                                                                 const TlsSettings& s,
                                                                 Role role = Role::Server);
    ~TlsContext();
    TlsContext(const TlsContext&) = delete;
    TlsContext& operator=(const TlsContext&) = delete;

    ssl_ctx_st* native() const { return ctx_; }
    // Things worth a warning that do not stop the listener (a TLS version not offered).
    const std::vector<std::string>& warnings() const { return warnings_; }

private:
    explicit TlsContext(ssl_ctx_st* ctx) : ctx_(ctx) {}
    ssl_ctx_st* ctx_;
    std::vector<std::string> warnings_;
};

// Writes a new P-256 CA certificate to `cacertfile` and a server certificate signed by it
// (CN localhost, SAN DNS:localhost and IP:127.0.0.1, for server and client authentication,
// so a cluster link can use it both ways; ten years) with its key to `certfile`
// and `keyfile` (mode 0600), creating their directories. The CA's key is not kept. Returns
// an empty string or one line saying what failed.
std::string generate_self_signed(const std::string& keyfile,
                                 const std::string& certfile,
                                 const std::string& cacertfile);

}  // namespace mqttd::net
