// MQTT encoder: appends wire bytes to a caller-owned buffer (reused per connection, so
// encoding allocates only when that buffer grows). Pure functions; thread-safe.
//
// A PUBLISH for many subscribers is encoded by encode_publish() into each connection's output
// buffer; the payload is copied once per subscriber into that buffer (no heap allocation).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "mqtt/packets.h"

namespace mqttd::mqtt {

// Server -> client
void encode_connack(std::string& out, Version v, const Connack& p);
// `raw_properties` are MQTT 5 wire-encoded PUBLISH properties (ignored for 3.x).
void encode_publish(std::string& out,
                    Version v,
                    std::string_view topic,
                    std::string_view payload,
                    uint8_t qos,
                    bool retain,
                    bool dup,
                    uint16_t packet_id,
                    std::string_view raw_properties = {});
// PUBACK / PUBREC / PUBREL / PUBCOMP. On MQTT 5 a Success reason with no properties is
// written in the short 2-byte form.
void encode_ack(std::string& out, Version v, const Ack& p);
void encode_suback(std::string& out, Version v, const Suback& p);
void encode_unsuback(std::string& out, Version v, const Unsuback& p);
void encode_pingresp(std::string& out);
void encode_disconnect(std::string& out, Version v, const Disconnect& p);  // MQTT 5 only
void encode_auth(std::string& out, const Auth& p);

// Client -> server (tests and tools)
void encode_connect(std::string& out, const Connect& p);
void encode_subscribe(std::string& out, Version v, const Subscribe& p);
void encode_unsubscribe(std::string& out, Version v, const Unsubscribe& p);
void encode_pingreq(std::string& out);
void encode_client_disconnect(std::string& out, Version v);

// MQTT 5 property block (length + properties) as written on the wire.
void encode_properties(std::string& out, const Properties& p);
// The properties alone, without the length: a `raw_properties` block for encode_publish.
void encode_properties_body(std::string& out, const Properties& p);
// MQTT 5 [MQTT-3.3.2-6]: `raw` (a PUBLISH property block without its length, as received)
// re-encoded into `out` with its Message Expiry Interval set to `seconds`. Returns false, and
// leaves `out` alone, when `raw` has no Message Expiry Interval (or does not parse).
bool with_message_expiry(std::string_view raw, uint32_t seconds, std::string& out);
// Appends a Subscription Identifier property to a raw PUBLISH property block.
void append_subscription_identifier(std::string& raw, uint32_t id);
// Appends a Topic Alias property to a raw PUBLISH property block.
void append_topic_alias(std::string& raw, uint16_t alias);

}  // namespace mqttd::mqtt
