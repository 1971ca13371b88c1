#include "net/tls_transport.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "net/tls_context.h"

namespace mqttd::net {

std::unique_ptr<TlsTransport> TlsTransport::make(TlsContext& ctx, int fd, bool client) {
    SSL* ssl = SSL_new(ctx.native());
    if (ssl == nullptr) {
        ERR_clear_error();
        return nullptr;
    }
    // A peer that closes without close_notify ends the stream like one that sends it.
    SSL_set_options(ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        ERR_clear_error();
        return nullptr;
    }
    if (client) {
        SSL_set_connect_state(ssl);
    } else {
        SSL_set_accept_state(ssl);
    }
    return std::unique_ptr<TlsTransport>(new TlsTransport(ssl));
}

TlsTransport::~TlsTransport() {
    SSL_free(ssl_);
}

Io TlsTransport::handshake(int /*fd*/) {
    if (established_) {
        return Io::done();
    }
    ERR_clear_error();  // SSL_get_error reads this thread's queue
    int r = SSL_do_handshake(ssl_);
    if (r == 1) {
        established_ = true;
        handshake_wants_write_ = false;
        return Io::done();
    }
    switch (SSL_get_error(ssl_, r)) {
        case SSL_ERROR_WANT_READ:
            handshake_wants_write_ = false;
            return Io::again();
        case SSL_ERROR_WANT_WRITE:
            handshake_wants_write_ = true;
            return Io::again();
        default:
            ERR_clear_error();
            return Io::failed();  // not TLS, a wrong version, a refused certificate, EOF
    }
}

Io TlsTransport::read(int /*fd*/, std::span<uint8_t> buf) {
    ERR_clear_error();
    size_t n = 0;
    if (SSL_read_ex(ssl_, buf.data(), buf.size(), &n) == 1) {
        read_wants_write_ = false;
        return Io::done(n);
    }
    switch (SSL_get_error(ssl_, 0)) {
        case SSL_ERROR_WANT_READ:
            read_wants_write_ = false;
            return Io::again();
        case SSL_ERROR_WANT_WRITE:
            read_wants_write_ = true;
            return Io::again();
        case SSL_ERROR_ZERO_RETURN:
            return Io::closed();
        default:
            ERR_clear_error();
            return Io::failed();
    }
}

Io TlsTransport::write(int /*fd*/, std::span<const uint8_t> data) {
    if (data.empty()) {
        return Io::done();
    }
    ERR_clear_error();
    size_t n = 0;
    if (SSL_write_ex(ssl_, data.data(), data.size(), &n) == 1) {
        write_wants_read_ = false;
        return Io::done(n);
    }
    switch (SSL_get_error(ssl_, 0)) {
        case SSL_ERROR_WANT_WRITE:
            write_wants_read_ = false;
            return Io::again();
        case SSL_ERROR_WANT_READ:
            write_wants_read_ = true;
            return Io::again();
        default:
            ERR_clear_error();
            return Io::failed();
    }
}

void TlsTransport::goodbye(int /*fd*/) {
    if (established_) {
        ERR_clear_error();
        SSL_shutdown(ssl_);  // close_notify if the socket takes it; no waiting for the peer's
        ERR_clear_error();
    }
}

bool TlsTransport::buffered() const {
    return SSL_has_pending(ssl_) == 1;
}

uint32_t TlsTransport::interest(uint32_t link_wants) const {
    if (!established_) {
        return handshake_wants_write_ ? kWantWrite : kWantRead;
    }
    uint32_t w = 0;
    if ((link_wants & kWantRead) != 0) {
        w |= read_wants_write_ ? kWantWrite : kWantRead;
    }
    if ((link_wants & kWantWrite) != 0) {
        w |= write_wants_read_ ? kWantRead : kWantWrite;
    }
    return w;
}

std::string TlsTransport::peer_subject(bool dn) const {
    X509* cert = SSL_get0_peer_certificate(ssl_);
    if (cert == nullptr || SSL_get_verify_result(ssl_) != X509_V_OK) {
        return {};
    }
    X509_NAME* name = X509_get_subject_name(cert);
    if (name == nullptr) {
        return {};
    }
    std::string out;
    if (dn) {
        BIO* bio = BIO_new(BIO_s_mem());
        if (bio == nullptr) {
            return {};
        }
        if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0) {
            char* data = nullptr;
            long len = BIO_get_mem_data(bio, &data);
            if (len > 0) {
                out.assign(data, static_cast<size_t>(len));
            }
        }
        BIO_free(bio);
        return out;
    }
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (i < 0) {
        return {};
    }
    ASN1_STRING* value = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    unsigned char* utf8 = nullptr;
    int len = ASN1_STRING_to_UTF8(&utf8, value);
    if (len > 0) {
        out.assign(reinterpret_cast<const char*>(utf8), static_cast<size_t>(len));
    }
    OPENSSL_free(utf8);
    return out;
}

}  // namespace mqttd::net
