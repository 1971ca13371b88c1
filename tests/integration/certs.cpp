#include "certs.h"

#include <fstream>

#include <gtest/gtest.h>

namespace mqttd::itest {

namespace {

void openssl(const std::vector<std::string>& args) {
    // Through sh, so that openssl's progress output on stderr is captured, not printed.
    std::string line = "openssl";
    for (const auto& a : args) {
        line += " '" + a + "'";
    }
    auto [rc, out] = run_command({"/bin/sh", "-c", line + " 2>&1"}, 20s);
    ASSERT_EQ(rc, 0) << "openssl " << args.front() << " failed: " << out;
}

// A key and a certificate for `subject`, signed by ca/ca_key (self-signed when they are "").
void make_pair(const std::string& dir,
               const std::string& name,
               const std::string& subject,
               const std::string& ca,
               const std::string& ca_key,
               const std::string& ext) {
    std::string key = dir + "/" + name + ".key";
    std::string cert = dir + "/" + name + ".pem";
    if (ca.empty()) {
        openssl({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                 "-days", "2", "-subj", subject});
        return;
    }
    std::string csr = dir + "/" + name + ".csr";
    openssl({"req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj",
             subject});
    std::vector<std::string> sign = {
            "x509", "-req", "-in",   csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
            "-out", cert,   "-days", "2"};
    if (!ext.empty()) {
        std::string ext_file = dir + "/" + name + ".ext";
        std::ofstream(ext_file) << ext << "\n";
        sign.push_back("-extfile");
        sign.push_back(ext_file);
    }
    openssl(sign);
}

}  // namespace

void make_test_certs(TestCerts& c) {
    const std::string& d = c.dir.path();
    ASSERT_NO_FATAL_FAILURE(make_pair(d, "ca", "/CN=mqttd test CA", "", "", ""));
    ASSERT_NO_FATAL_FAILURE(make_pair(d, "server", "/CN=localhost", d + "/ca.pem", d + "/ca.key",
                                      "subjectAltName=DNS:localhost,IP:127.0.0.1"));
    ASSERT_NO_FATAL_FAILURE(
            make_pair(d, "client", "/O=acme/CN=device-7", d + "/ca.pem", d + "/ca.key", ""));
    ASSERT_NO_FATAL_FAILURE(make_pair(d, "other-ca", "/CN=another CA", "", "", ""));
    ASSERT_NO_FATAL_FAILURE(
            make_pair(d, "rogue", "/CN=rogue", d + "/other-ca.pem", d + "/other-ca.key", ""));
    c.ca = d + "/ca.pem";
    c.server_cert = d + "/server.pem";
    c.server_key = d + "/server.key";
    c.client_cert = d + "/client.pem";
    c.client_key = d + "/client.key";
    c.rogue_cert = d + "/rogue.pem";
    c.rogue_key = d + "/rogue.key";
}

std::vector<std::string> tls_listener_sets(const std::string& base,
                                           uint16_t port,
                                           const TestCerts& c) {
    return {base + "=127.0.0.1:" + std::to_string(port), base + ".keyfile=" + c.server_key,
            base + ".certfile=" + c.server_cert, base + ".cacertfile=" + c.ca};
}

}  // namespace mqttd::itest
