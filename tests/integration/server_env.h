// One real server (db_servers.h) shared by every test of a test binary: a gtest Environment
// that starts it before the first test and stops it after the last, so each binary starts its
// server once. `prepare` runs once after a successful start (loading a schema); text it
// returns is an error. Tests check ok() in SetUp and fail with error() when it did not start.
//
// Ownership: the environment owns the server; gtest owns the environment.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>

#include <gtest/gtest.h>

namespace mqttd::dbtest {

template <typename Server>
class ServerEnv final : public ::testing::Environment {
public:
    using Make = std::function<std::unique_ptr<Server>()>;
    using Prepare = std::function<std::string(Server&)>;

    ServerEnv(Make make, Prepare prepare) : make_(std::move(make)), prepare_(std::move(prepare)) {}

    void SetUp() override {
        server_ = make_();
        error_ = server_->start();
        if (error_.empty() && prepare_) {
            error_ = prepare_(*server_);
        }
    }
    void TearDown() override { server_.reset(); }

    bool ok() const { return server_ != nullptr && error_.empty(); }
    const std::string& error() const { return error_; }
    Server& server() { return *server_; }

private:
    Make make_;
    Prepare prepare_;
    std::unique_ptr<Server> server_;
    std::string error_;
};

template <typename Server>
ServerEnv<Server>* add_server_env(
        typename ServerEnv<Server>::Make make = [] { return std::make_unique<Server>(); },
        typename ServerEnv<Server>::Prepare prepare = {}) {
    return static_cast<ServerEnv<Server>*>(::testing::AddGlobalTestEnvironment(
            new ServerEnv<Server>(std::move(make), std::move(prepare))));
}

}  // namespace mqttd::dbtest
