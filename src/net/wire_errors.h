// How net ends a connection on the wire, decided here and nowhere else (STYLE.md 3). The
// broker and the codec return a reason (broker::ConnectRefusal, mqtt::ReasonCode); these say
// what goes out before the socket closes:
//
//   CONNECT refused by the broker      -> CONNACK with its code (3.1.x return code, MQTT 5
//                                         reason code), then close
//   error in what the client sent:
//     before CONNACK, unsupported level  -> CONNACK 0x01 (3.1.1 [MQTT-3.1.2-2]), then close
//     before CONNACK, anything else      -> close
//     after CONNACK, MQTT 5              -> DISCONNECT with the reason ([MQTT-4.13.1-1]), close
//     after CONNACK, 3.x                 -> close
//
// Thread-safety: stateless.
#pragma once

#include <string>

#include "broker/link.h"
#include "mqtt/packets.h"
#include "mqtt/reason_code.h"

namespace mqttd::net {

// The MQTT 5 reason code of a refusal (the encoder maps it to the 3.1.x return code).
mqtt::ReasonCode reason_of(broker::ConnectRefusal why);

// Appends the CONNACK refusing a CONNECT of version `v`.
void encode_refusal(std::string& out, mqtt::Version v, broker::ConnectRefusal why);

// Appends what precedes the close for an error `rc` in the client's input, if anything;
// `connected` = the broker accepted the CONNECT. Returns whether a packet was appended.
bool encode_failure(std::string& out, bool connected, mqtt::Version v, mqtt::ReasonCode rc);

}  // namespace mqttd::net
