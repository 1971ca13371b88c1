// MQTT reason codes as one typed enum: the same value is the error the codec and broker return
// and the byte written on the wire (MQTT 5.0 section 2.4; 3.1.1 CONNACK return codes are mapped
// in one place, to_v3_connack()). Pure values; thread-safe.
#pragma once

#include <cstdint>
#include <string_view>

namespace mqttd::mqtt {

enum class ReasonCode : uint8_t {
    Success = 0x00,
    GrantedQos1 = 0x01,
    GrantedQos2 = 0x02,
    DisconnectWithWill = 0x04,
    NoMatchingSubscribers = 0x10,
    NoSubscriptionExisted = 0x11,
    ContinueAuthentication = 0x18,
    ReAuthenticate = 0x19,
    UnspecifiedError = 0x80,
    MalformedPacket = 0x81,
    ProtocolError = 0x82,
    ImplementationSpecificError = 0x83,
    UnsupportedProtocolVersion = 0x84,
    ClientIdentifierNotValid = 0x85,
    BadUserNameOrPassword = 0x86,
    NotAuthorized = 0x87,
    ServerUnavailable = 0x88,
    ServerBusy = 0x89,
    Banned = 0x8A,
    ServerShuttingDown = 0x8B,
    BadAuthenticationMethod = 0x8C,
    KeepAliveTimeout = 0x8D,
    SessionTakenOver = 0x8E,
    TopicFilterInvalid = 0x8F,
    TopicNameInvalid = 0x90,
    PacketIdentifierInUse = 0x91,
    PacketIdentifierNotFound = 0x92,
    ReceiveMaximumExceeded = 0x93,
    TopicAliasInvalid = 0x94,
    PacketTooLarge = 0x95,
    MessageRateTooHigh = 0x96,
    QuotaExceeded = 0x97,
    AdministrativeAction = 0x98,
    PayloadFormatInvalid = 0x99,
    RetainNotSupported = 0x9A,
    QosNotSupported = 0x9B,
    UseAnotherServer = 0x9C,
    ServerMoved = 0x9D,
    SharedSubscriptionsNotSupported = 0x9E,
    ConnectionRateExceeded = 0x9F,
    MaximumConnectTime = 0xA0,
    SubscriptionIdentifiersNotSupported = 0xA1,
    WildcardSubscriptionsNotSupported = 0xA2,
};

inline bool is_error(ReasonCode rc) {
    return static_cast<uint8_t>(rc) >= 0x80;
}

// MQTT 3.1 / 3.1.1 CONNACK return codes (3.1.1 section 3.2.2.3).
enum class ConnackV3 : uint8_t {
    Accepted = 0,
    UnacceptableProtocolVersion = 1,
    IdentifierRejected = 2,
    ServerUnavailable = 3,
    BadUserNameOrPassword = 4,
    NotAuthorized = 5,
};

inline ConnackV3 to_v3_connack(ReasonCode rc) {
    switch (rc) {
        case ReasonCode::Success:
            return ConnackV3::Accepted;
        case ReasonCode::UnsupportedProtocolVersion:
            return ConnackV3::UnacceptableProtocolVersion;
        case ReasonCode::ClientIdentifierNotValid:
            return ConnackV3::IdentifierRejected;
        case ReasonCode::BadUserNameOrPassword:
        case ReasonCode::BadAuthenticationMethod:
            return ConnackV3::BadUserNameOrPassword;
        case ReasonCode::NotAuthorized:
        case ReasonCode::Banned:
            return ConnackV3::NotAuthorized;
        default:
            return ConnackV3::ServerUnavailable;
    }
}

std::string_view to_string(ReasonCode rc);

}  // namespace mqttd::mqtt
