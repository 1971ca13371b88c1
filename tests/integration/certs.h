// Test certificates, made by each test binary with the openssl CLI (never committed): a CA,
// a server certificate for localhost / 127.0.0.1 signed by it, a client certificate
// (CN device-7) signed by it, and one signed by an unrelated CA.
#pragma once

#include <string>

#include "harness.h"

namespace mqttd::itest {

struct TestCerts {
    TempDir dir;
    std::string ca;           // CA certificate (PEM)
    std::string server_cert;  // localhost, signed by ca
    std::string server_key;
    std::string client_cert;  // CN=device-7, O=acme, signed by ca
    std::string client_key;
    std::string rogue_cert;  // CN=rogue, signed by another CA
    std::string rogue_key;
};

// Fills `c`; a failing openssl command is a gtest failure (check HasFatalFailure()).
void make_test_certs(TestCerts& c);

// The mqttd --set values of a TLS listener `base` ("listener.ssl.external") on `port` with
// these files.
std::vector<std::string> tls_listener_sets(const std::string& base,
                                           uint16_t port,
                                           const TestCerts& c);

}  // namespace mqttd::itest
