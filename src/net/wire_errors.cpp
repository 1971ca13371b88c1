#include "net/wire_errors.h"

#include "mqtt/encoder.h"

namespace mqttd::net {

mqtt::ReasonCode reason_of(broker::ConnectRefusal why) {
    switch (why) {
        case broker::ConnectRefusal::ClientIdentifierNotValid:
            return mqtt::ReasonCode::ClientIdentifierNotValid;
        case broker::ConnectRefusal::BadAuthenticationMethod:
            return mqtt::ReasonCode::BadAuthenticationMethod;
        case broker::ConnectRefusal::BadUserNameOrPassword:
            return mqtt::ReasonCode::BadUserNameOrPassword;
        case broker::ConnectRefusal::NotAuthorized:
            return mqtt::ReasonCode::NotAuthorized;
        case broker::ConnectRefusal::ProtocolError:
            return mqtt::ReasonCode::ProtocolError;
        case broker::ConnectRefusal::StoreUnavailable:
            return mqtt::ReasonCode::QuotaExceeded;  // 3.x: 3, Server unavailable
        case broker::ConnectRefusal::ServerUnavailable:
            return mqtt::ReasonCode::ServerUnavailable;  // 3.x: 3
    }
    return mqtt::ReasonCode::NotAuthorized;
}

void encode_refusal(std::string& out, mqtt::Version v, broker::ConnectRefusal why) {
    mqtt::encode_connack(out, v, mqtt::Connack{false, reason_of(why), {}});
}

bool encode_failure(std::string& out, bool connected, mqtt::Version v, mqtt::ReasonCode rc) {
    if (connected) {
        if (v == mqtt::Version::V5 && mqtt::is_error(rc)) {
            mqtt::encode_disconnect(out, mqtt::Version::V5, mqtt::Disconnect{rc, {}});
            return true;
        }
        return false;
    }
    if (rc == mqtt::ReasonCode::UnsupportedProtocolVersion) {
        // The level asked for is the one not understood: answer as 3.1.1.
        mqtt::encode_connack(out, mqtt::Version::V311, mqtt::Connack{false, rc, {}});
        return true;
    }
    return false;
}

}  // namespace mqttd::net
