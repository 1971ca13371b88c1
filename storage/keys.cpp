#include "storage/keys.h"

#include <cstring>

#include "common/byte_order.h"

namespace mqttd::storage::keys {

bool valid_component(std::string_view s) {
    return s.find(kSep) == std::string_view::npos;
}

std::string client_prefix(std::string_view client_id) {
    std::string k;
    k.reserve(client_id.size() + 1);
    k.append(client_id);
    k.push_back(kSep);
    return k;
}

std::string subscription(std::string_view client_id, std::string_view topic_filter) {
    std::string k = client_prefix(client_id);
    k.append(topic_filter);
    return k;
}

std::optional<std::pair<std::string, std::string>> parse_subscription(std::string_view key) {
    size_t sep = key.find(kSep);
    if (sep == std::string_view::npos) {
        return std::nullopt;
    }
    return std::pair{std::string(key.substr(0, sep)), std::string(key.substr(sep + 1))};
}

std::string message(uint64_t id) {
    std::string k;
    k.reserve(8);
    put_be64(k, id);
    return k;
}

std::optional<uint64_t> parse_message(std::string_view key) {
    if (key.size() != 8) {
        return std::nullopt;
    }
    return get_be64(bytes_of(key));
}

std::string queue(std::string_view client_id, uint64_t seq) {
    std::string k;
    k.reserve(client_id.size() + 9);
    append_queue(k, client_id, seq);
    return k;
}

void append_queue(std::string& out, std::string_view client_id, uint64_t seq) {
    out.append(client_id);
    out.push_back(kSep);
    put_be64(out, seq);
}

std::optional<std::pair<std::string, uint64_t>> parse_queue(std::string_view key) {
    if (key.size() < 9 || key[key.size() - 9] != kSep) {
        return std::nullopt;
    }
    return std::pair{std::string(key.substr(0, key.size() - 9)),
                     get_be64(bytes_of(key.substr(key.size() - 8)))};
}

std::string inflight(std::string_view client_id, Direction d, uint16_t packet_id) {
    std::string k;
    k.reserve(client_id.size() + 4);
    k.append(client_id);
    k.push_back(kSep);
    k.push_back(static_cast<char>(d));
    put_be16(k, packet_id);
    return k;
}

std::optional<InflightRecord> parse_inflight(std::string_view key) {
    if (key.size() < 4 || key[key.size() - 4] != kSep) {
        return std::nullopt;
    }
    char d = key[key.size() - 3];
    if (d != static_cast<char>(Direction::Inbound) && d != static_cast<char>(Direction::Outbound)) {
        return std::nullopt;
    }
    InflightRecord r;
    r.client_id = std::string(key.substr(0, key.size() - 4));
    r.direction = static_cast<Direction>(d);
    r.packet_id = get_be16(bytes_of(key.substr(key.size() - 2)));
    return r;
}

std::string retained(std::string_view topic) {
    std::string k(topic);
    for (char& c : k) {
        if (c == '/') {
            c = kSep;
        }
    }
    return k;
}

std::string retained_topic(std::string_view key) {
    std::string t(key);
    for (char& c : t) {
        if (c == kSep) {
            c = '/';
        }
    }
    return t;
}

std::string count(uint8_t counted) {
    std::string k = "count/";
    k.push_back(static_cast<char>(counted));
    return k;
}

std::string session_counts(std::string_view client_id) {
    std::string k = "sc/";
    k.append(client_id);
    return k;
}

std::string refcount(uint64_t message_id) {
    std::string k = "rc/";
    put_be64(k, message_id);
    return k;
}

std::string prefix_end(std::string_view prefix) {
    std::string end(prefix);
    while (!end.empty()) {
        auto& last = reinterpret_cast<unsigned char&>(end.back());
        if (last != 0xff) {
            ++last;
            return end;
        }
        end.pop_back();
    }
    return end;
}

std::string to_cursor(std::string_view key) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(key.size() * 2);
    for (unsigned char c : key) {
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xf]);
    }
    return out;
}

namespace {
int hex_digit(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}
}  // namespace

std::optional<std::string> from_cursor(std::string_view cursor) {
    if (cursor.size() % 2 != 0) {
        return std::nullopt;
    }
    std::string out;
    out.reserve(cursor.size() / 2);
    for (size_t i = 0; i < cursor.size(); i += 2) {
        int hi = hex_digit(cursor[i]);
        int lo = hex_digit(cursor[i + 1]);
        if (hi < 0 || lo < 0) {
            return std::nullopt;
        }
        out.push_back(static_cast<char>((hi << 4) | lo));
    }
    return out;
}

}  // namespace mqttd::storage::keys
