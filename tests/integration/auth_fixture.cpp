#include "auth_fixture.h"

#include <fstream>

namespace mqttd::authtest {

RestReply rest(uint16_t port,
               const std::string& method,
               const std::string& path,
               const std::string& body) {
    RestReply out;
    test::HttpReply r = test::http(port, method, "/api/v2/" + path, body);
    if (r.status == 0) {
        ADD_FAILURE() << method << " " << path << ": no HTTP reply from port " << port;
        return out;
    }
    out.status = r.status;
    out.json = r.json();
    return out;
}

// ---- AuthIt ----

void AuthIt::write_acl(const std::string& text) {
    std::string tmp = acl_path_ + ".tmp";
    std::ofstream(tmp) << text;
    // rename: a reload never sees a half-written file.
    ASSERT_EQ(std::rename(tmp.c_str(), acl_path_.c_str()), 0);
}

void AuthIt::start_broker(const std::optional<std::string>& acl, std::vector<std::string> sets) {
    acl_path_ = dir_.path() + "/acl.conf";
    if (acl) {
        write_acl(*acl);
    }
    sets.insert(sets.begin(), "mqtt.acl_file=" + acl_path_);
    broker_ = std::make_unique<itest::BrokerProcess>(std::move(sets), false);
    ASSERT_NO_FATAL_FAILURE(broker_->start());
}

RestReply AuthIt::api(const std::string& method, const std::string& path, const std::string& body) {
    return rest(broker_->api_port(), method, path, body);  // start() waited for the API port
}

std::string AuthIt::node() {
    if (node_.empty()) {
        auto r = api("GET", "management/nodes");
        if (r.code() == 0 && r.json["result"].is_array() && !r.json["result"].empty()) {
            node_ = r.json["result"][0].value("name", std::string());
        }
        EXPECT_FALSE(node_.empty()) << r.json.dump();
    }
    return node_;
}

int AuthIt::set_plugin(const std::string& name, bool active) {
    auto r = api("PUT", "nodes/" + node() + "/plugins/" + name, Json{{"active", active}}.dump());
    return r.code();
}

int AuthIt::configure(const std::string& name, const Json& config) {
    auto r = api("PUT", "nodes/" + node() + "/plugin_configs/" + name, config.dump());
    EXPECT_EQ(r.code(), 0) << name << ": " << r.json.dump();
    return r.code();
}

std::optional<bool> AuthIt::plugin_active(const std::string& name) {
    auto r = api("GET", "nodes/" + node() + "/plugins");
    for (const auto& p : r.json["result"]) {
        if (p.value("name", std::string()) == name) {
            return p.value("active", false);
        }
    }
    return std::nullopt;
}

std::string AuthIt::plugin_value(const std::string& name, const std::string& key) {
    auto r = api("GET", "nodes/" + node() + "/plugin_configs/" + name);
    for (const auto& p : r.json["result"]) {
        if (p.value("key", std::string()) == key) {
            return p.value("value", std::string());
        }
    }
    return "<absent>";
}

uint64_t AuthIt::metric(const std::string& name) {
    auto r = api("GET", "monitoring/metrics/" + node());
    const auto& res = r.json["result"];
    if (res.is_object() && res.contains(name) && res[name].is_number()) {
        return res[name].get<uint64_t>();
    }
    ADD_FAILURE() << "no metric " << name << " in " << r.json.dump().substr(0, 300);
    return 0;
}

// ---- MQTT helpers ----

std::vector<std::string> publish_and_collect(itest::RawClient& pub,
                                             itest::RawClient& sub,
                                             const std::string& topic,
                                             uint8_t qos,
                                             const std::string& marker_topic) {
    pub.publish(topic, "payload", qos);
    pub.publish(marker_topic, "marker", 0);
    std::vector<std::string> got;
    for (int i = 0; i < 10; ++i) {
        auto p = sub.receive_and_ack();
        if (!p) {
            ADD_FAILURE() << "marker " << marker_topic << " not received after " << topic;
            break;
        }
        got.push_back(p->topic);
        if (p->topic == marker_topic) {
            break;
        }
    }
    return got;
}

int connect_rc(itest::RawClient& c,
               uint16_t port,
               const std::string& client_id,
               const std::optional<std::string>& username,
               const std::optional<std::string>& password) {
    c.close();
    if (!c.open(port)) {
        return -2;
    }
    itest::pkt::ConnectOptions o;
    o.client_id = client_id;
    o.username = username;
    o.password = password;
    if (!c.send(itest::pkt::connect(o))) {
        return -1;
    }
    auto p = c.read(10s);
    if (!p || p->type() != itest::kConnack || p->body.size() != 2) {
        return -1;
    }
    return p->body[1];
}

}  // namespace mqttd::authtest
