// Builds SSL_CTXs and the self-signed default certificate. Errors name the configuration key
// and file; OpenSSL's own reason is appended when it has one.
#include "net/tls_context.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <string_view>

#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace mqttd::net {

namespace {

// The last OpenSSL error of this thread as text, and the queue cleared.
std::string ssl_reason() {
    unsigned long e = ERR_peek_last_error();
    std::string out;
    if (e != 0) {
        const char* r = ERR_reason_error_string(e);
        out = r != nullptr ? r : "error " + std::to_string(e);
    }
    ERR_clear_error();
    return out;
}

std::string with_reason(std::string line) {
    std::string r = ssl_reason();
    if (!r.empty()) {
        line += ": ";
        line += r;
    }
    return line;
}

// "key = file: cannot read: reason" when the file cannot be opened, else empty.
std::string unreadable(const std::string& key, const std::string& file) {
    if (file.empty()) {
        return key + " is empty: a TLS listener needs it";
    }
    FILE* f = std::fopen(file.c_str(), "rb");
    if (f == nullptr) {
        return key + " = " + file + ": cannot read: " + std::strerror(errno);
    }
    std::fclose(f);
    return {};
}

int password_cb(char* buf, int size, int /*rwflag*/, void* userdata) {
    const auto* pw = static_cast<const std::string*>(userdata);
    if (pw == nullptr || pw->empty() || size <= 0) {
        return 0;  // no password: an encrypted key fails to load instead of prompting
    }
    auto n = static_cast<int>(std::min<size_t>(pw->size(), static_cast<size_t>(size)));
    std::memcpy(buf, pw->data(), static_cast<size_t>(n));
    return n;
}

struct Versions {
    int min = 0;
    int max = 0;
    std::vector<std::string> ignored;
};

Result<Versions, std::string> parse_versions(const std::string& key, const std::string& text) {
    Versions v;
    size_t pos = 0;
    while (pos <= text.size()) {
        size_t comma = text.find(',', pos);
        if (comma == std::string::npos) {
            comma = text.size();
        }
        std::string item = text.substr(pos, comma - pos);
        while (!item.empty() && item.front() == ' ') {
            item.erase(0, 1);
        }
        while (!item.empty() && item.back() == ' ') {
            item.pop_back();
        }
        pos = comma + 1;
        if (item.empty()) {
            continue;
        }
        int ver = 0;
        if (item == "tlsv1.3") {
            ver = TLS1_3_VERSION;
        } else if (item == "tlsv1.2") {
            ver = TLS1_2_VERSION;
        } else if (item == "tlsv1.1" || item == "tlsv1" || item == "sslv3") {
            v.ignored.push_back(item);
            continue;
        } else {
            return Err{key + ".tls_versions = " + text + ": unknown version \"" + item +
                       "\" (tlsv1.3, tlsv1.2)"};
        }
        v.min = v.min == 0 ? ver : std::min(v.min, ver);
        v.max = std::max(v.max, ver);
    }
    if (v.min == 0) {
        return Err{key + ".tls_versions = " + text + ": none of tlsv1.3, tlsv1.2"};
    }
    return v;
}

}  // namespace

TlsContext::~TlsContext() {
    SSL_CTX_free(ctx_);
}

Result<std::shared_ptr<TlsContext>, std::string> TlsContext::make(const std::string& key,
                                                                  const TlsSettings& s,
                                                                  Role role) {
    ERR_clear_error();
    auto versions = parse_versions(key, s.tls_versions);
    if (!versions) {
        return Err{versions.error()};
    }
    if (auto e = unreadable(key + ".certfile", s.certfile); !e.empty()) {
        return Err{e};
    }
    if (auto e = unreadable(key + ".keyfile", s.keyfile); !e.empty()) {
        return Err{e};
    }
    if (s.verify_peer) {
        if (auto e = unreadable(key + ".cacertfile", s.cacertfile); !e.empty()) {
            return Err{e};
        }
    }
    SSL_CTX* raw = SSL_CTX_new(role == Role::Server ? TLS_server_method() : TLS_client_method());
    if (raw == nullptr) {
        return Err{with_reason(key + ": cannot create a TLS context")};
    }
    std::shared_ptr<TlsContext> ctx(new TlsContext(raw));
    SSL_CTX_set_min_proto_version(raw, versions->min);
    SSL_CTX_set_max_proto_version(raw, versions->max);
    for (const auto& v : versions->ignored) {
        ctx->warnings_.push_back(key + ".tls_versions: " + v +
                                 " is not offered (only tlsv1.2 and tlsv1.3 are)");
    }
    // Release the record buffers of idle connections (about 34 KB each), accept out_ moving
    // as the broker appends to it between retries, and take partial writes record by record.
    SSL_CTX_set_mode(raw, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                  SSL_MODE_ENABLE_PARTIAL_WRITE);
    // Read ahead: one recv takes several records (and a record's header with its body), not
    // two syscalls per record; what is read ahead is buffered() for the link.
    SSL_CTX_set_read_ahead(raw, 1);
    // No renegotiation: a TLS 1.2 read then never needs the socket writable mid-stream.
    SSL_CTX_set_options(
            raw, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    static const unsigned char kSessionContext[] = "mqttd";
    SSL_CTX_set_session_id_context(raw, kSessionContext, sizeof(kSessionContext) - 1);

    if (!s.ciphers.empty()) {
        // EMQ lists names comma-separated; TLS 1.3 suites (TLS_...) are set apart.
        std::string v12;
        std::string v13;
        size_t pos = 0;
        while (pos <= s.ciphers.size()) {
            size_t comma = s.ciphers.find_first_of(",:", pos);
            if (comma == std::string::npos) {
                comma = s.ciphers.size();
            }
            std::string name = s.ciphers.substr(pos, comma - pos);
            pos = comma + 1;
            if (name.empty()) {
                continue;
            }
            std::string& list = name.rfind("TLS_", 0) == 0 ? v13 : v12;
            list += list.empty() ? "" : ":";
            list += name;
        }
        if (!v12.empty() && SSL_CTX_set_cipher_list(raw, v12.c_str()) != 1) {
            return Err{with_reason(key + ".ciphers = " + s.ciphers + ": no known cipher")};
        }
        if (!v13.empty() && SSL_CTX_set_ciphersuites(raw, v13.c_str()) != 1) {
            return Err{with_reason(key + ".ciphers = " + s.ciphers + ": no known TLS 1.3 suite")};
        }
    }

    if (SSL_CTX_use_certificate_chain_file(raw, s.certfile.c_str()) != 1) {
        return Err{with_reason(key + ".certfile = " + s.certfile + ": not a PEM certificate")};
    }
    // Read apart from the context, so that a bad password and a key of another certificate
    // are told apart; the callback answers for the password (OpenSSL would prompt otherwise).
    EVP_PKEY* pkey = nullptr;
    if (FILE* f = std::fopen(s.keyfile.c_str(), "rb")) {
        pkey = PEM_read_PrivateKey(f, nullptr, password_cb, const_cast<std::string*>(&s.password));
        std::fclose(f);
    }
    if (pkey == nullptr) {
        return Err{with_reason(key + ".keyfile = " + s.keyfile +
                               ": not a PEM private key, or encrypted and " + key +
                               ".password is wrong")};
    }
    int used = SSL_CTX_use_PrivateKey(raw, pkey);
    EVP_PKEY_free(pkey);
    if (used != 1 || SSL_CTX_check_private_key(raw) != 1) {
        return Err{with_reason(key + ".keyfile = " + s.keyfile + ": does not match " + key +
                               ".certfile = " + s.certfile)};
    }
    if (s.verify_peer) {
        if (SSL_CTX_load_verify_locations(raw, s.cacertfile.c_str(), nullptr) != 1) {
            return Err{with_reason(key + ".cacertfile = " + s.cacertfile +
                                   ": not PEM CA certificates")};
        }
        if (role == Role::Server) {
            if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(s.cacertfile.c_str())) {
                SSL_CTX_set_client_CA_list(raw, names);
            }
        }
        int mode = SSL_VERIFY_PEER;
        if (s.fail_if_no_peer_cert) {
            mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        }
        SSL_CTX_set_verify(raw, mode, nullptr);
    } else {
        SSL_CTX_set_verify(raw, SSL_VERIFY_NONE, nullptr);
    }
    ERR_clear_error();
    return ctx;
}

namespace {

struct KeyFree {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct CertFree {
    void operator()(X509* c) const { X509_free(c); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;
using CertPtr = std::unique_ptr<X509, CertFree>;

bool add_ext(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
    if (ext == nullptr) {
        return false;
    }
    bool ok = X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

CertPtr make_cert(
        EVP_PKEY* key, const char* cn, X509* issuer, EVP_PKEY* issuer_key, long serial, bool ca) {
    CertPtr cert(X509_new());
    if (!cert) {
        return nullptr;
    }
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 10L * 365 * 24 * 3600);
    X509_set_pubkey(cert.get(), key);
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("mqttd"), -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                               -1, -1, 0);
    X509* signer = issuer != nullptr ? issuer : cert.get();
    X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
    bool ok = true;
    if (ca) {
        ok = add_ext(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE") &&
             add_ext(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign") &&
             add_ext(cert.get(), signer, NID_subject_key_identifier, "hash");
    } else {
        ok = add_ext(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE") &&
             add_ext(cert.get(), signer, NID_key_usage, "critical,digitalSignature") &&
             add_ext(cert.get(), signer, NID_ext_key_usage, "serverAuth,clientAuth") &&
             add_ext(cert.get(), signer, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1") &&
             add_ext(cert.get(), signer, NID_authority_key_identifier, "keyid");
    }
    if (!ok || X509_sign(cert.get(), issuer_key, EVP_sha256()) == 0) {
        return nullptr;
    }
    return cert;
}

std::string write_pem(const std::string& file, mode_t mode, const auto& write) {
    std::error_code ec;
    auto dir = std::filesystem::path(file).parent_path();
    if (!dir.empty()) {
        std::filesystem::create_directories(dir, ec);
        if (ec) {
            return "cannot create " + dir.string() + ": " + ec.message();
        }
    }
    mode_t old = ::umask(static_cast<mode_t>(~mode & 0777));
    FILE* f = std::fopen(file.c_str(), "wb");
    ::umask(old);
    if (f == nullptr) {
        return "cannot write " + file + ": " + std::strerror(errno);
    }
    bool ok = write(f);
    ok = std::fclose(f) == 0 && ok;
    if (!ok) {
        return with_reason("cannot write " + file);
    }
    return {};
}

}  // namespace

std::string generate_self_signed(const std::string& keyfile,
                                 const std::string& certfile,
                                 const std::string& cacertfile) {
    ERR_clear_error();
    KeyPtr ca_key(EVP_EC_gen("P-256"));
    KeyPtr key(EVP_EC_gen("P-256"));
    if (!ca_key || !key) {
        return with_reason("cannot generate a P-256 key");
    }
    auto serial = static_cast<long>(std::time(nullptr));
    CertPtr ca =
            make_cert(ca_key.get(), "mqttd self-signed CA", nullptr, ca_key.get(), serial, true);
    if (!ca) {
        return with_reason("cannot make the self-signed CA certificate");
    }
    CertPtr cert = make_cert(key.get(), "localhost", ca.get(), ca_key.get(), serial + 1, false);
    if (!cert) {
        return with_reason("cannot make the server certificate");
    }
    if (auto e = write_pem(keyfile, 0600,
                           [&](FILE* f) {
                               return PEM_write_PrivateKey(f, key.get(), nullptr, nullptr, 0,
                                                           nullptr, nullptr) == 1;
                           });
        !e.empty()) {
        return e;
    }
    if (auto e = write_pem(certfile, 0644,
                           [&](FILE* f) { return PEM_write_X509(f, cert.get()) == 1; });
        !e.empty()) {
        return e;
    }
    return write_pem(cacertfile, 0644, [&](FILE* f) { return PEM_write_X509(f, ca.get()) == 1; });
}

}  // namespace mqttd::net
