// UTF-8 and topic validation, and the Variable Byte Integer (see wire.h).
//
// UTF-8 (3.1.1 / 5.0 section 1.5.3, RFC 3629): the well-formed sequences are
//   00..7F | C2..DF 80..BF | E0 A0..BF 80..BF | E1..EC 80..BF 80..BF | ED 80..9F 80..BF
//   | EE..EF 80..BF 80..BF | F0 90..BF 80..BF 80..BF | F1..F3 80..BF{3} | F4 80..8F 80..BF{2}
// which excludes overlong forms, code points above U+10FFFF and the surrogates U+D800..U+DFFF
// (the ED A0..BF range) [MQTT-1.5.3-1]. U+0000 is refused too [MQTT-1.5.3-2]. U+FEFF is kept
// as is and never stripped [MQTT-1.5.3-3]; control characters and non-characters are allowed
// (the standard only says they SHOULD NOT be sent).
#include "mqtt/decoder.h"
#include "mqtt/wire.h"

namespace mqttd::mqtt {

bool valid_utf8(std::string_view s) {
    const auto* p = reinterpret_cast<const uint8_t*>(s.data());
    const uint8_t* end = p + s.size();
    while (p < end) {
        const uint8_t c = *p;
        if (c < 0x80) {
            if (c == 0) {
                return false;
            }
            ++p;
            continue;
        }
        size_t n = 0;
        uint8_t lo = 0x80;
        uint8_t hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
        } else if (c == 0xE0) {
            n = 2;
            lo = 0xA0;
        } else if (c == 0xED) {
            n = 2;
            hi = 0x9F;
        } else if (c >= 0xE1 && c <= 0xEF) {
            n = 2;
        } else if (c == 0xF0) {
            n = 3;
            lo = 0x90;
        } else if (c >= 0xF1 && c <= 0xF3) {
            n = 3;
        } else if (c == 0xF4) {
            n = 3;
            hi = 0x8F;
        } else {
            return false;
        }
        if (static_cast<size_t>(end - p) < n + 1) {
            return false;
        }
        if (p[1] < lo || p[1] > hi) {
            return false;
        }
        for (size_t i = 2; i <= n; ++i) {
            if ((p[i] & 0xC0) != 0x80) {
                return false;
            }
        }
        p += n + 1;
    }
    return true;
}

// Topic Names and Topic Filters are at least one character long [MQTT-4.7.3-1], UTF-8 without
// U+0000 [MQTT-4.7.3-2], and at most 65535 bytes [MQTT-4.7.3-3].
bool valid_topic_name(std::string_view topic) {
    if (topic.empty() || topic.size() > 65535) {
        return false;
    }
    // Wildcard characters MUST NOT be used within a Topic Name [MQTT-3.3.2-2], [MQTT-4.7.1-1].
    if (topic.find_first_of("+#") != std::string_view::npos) {
        return false;
    }
    return valid_utf8(topic);
}

bool valid_topic_filter(std::string_view filter) {
    if (filter.empty() || filter.size() > 65535) {
        return false;
    }
    size_t start = 0;
    for (;;) {
        const size_t slash = filter.find('/', start);
        const bool last = slash == std::string_view::npos;
        const std::string_view level =
                filter.substr(start, last ? std::string_view::npos : slash - start);
        if (level.find_first_of("+#") != std::string_view::npos) {
            // '+' occupies an entire level [MQTT-4.7.1-3]; '#' occupies an entire level and is
            // the last character of the filter [MQTT-4.7.1-2].
            if (level.size() != 1 || (level[0] == '#' && !last)) {
                return false;
            }
        }
        if (last) {
            break;
        }
        start = slash + 1;
    }
    return valid_utf8(filter);
}

namespace detail {

bool Reader::utf8(std::string_view& v) {
    const uint8_t* save = p;
    if (!binary(v) || !valid_utf8(v)) {
        p = save;
        return false;
    }
    return true;
}

bool Reader::varint(uint32_t& v, bool minimal) {
    VarintRead vr = read_varint(p, left());
    if (vr.status != VarintStatus::Ok || (minimal && !vr.minimal)) {
        return false;
    }
    v = vr.value;
    p += vr.length;
    return true;
}

VarintRead read_varint(const uint8_t* p, size_t n) {
    VarintRead r;
    uint32_t multiplier = 1;
    for (uint8_t i = 0; i < 4; ++i) {
        if (i >= n) {
            r.status = VarintStatus::NeedMore;
            return r;
        }
        const uint8_t b = p[i];
        r.value += (b & 0x7Fu) * multiplier;
        multiplier *= 128;
        if ((b & 0x80) == 0) {
            r.status = VarintStatus::Ok;
            r.length = static_cast<uint8_t>(i + 1);
            // A trailing 0x00 after a continuation byte means the value fit in fewer bytes.
            r.minimal = i == 0 || b != 0;
            return r;
        }
    }
    // A fifth byte would be needed: malformed (at most four bytes, 2.2.3 / 1.5.5).
    r.status = VarintStatus::Malformed;
    return r;
}

size_t varint_size(uint32_t v) {
    if (v < 128) {
        return 1;
    }
    if (v < 16'384) {
        return 2;
    }
    if (v < 2'097'152) {
        return 3;
    }
    return 4;
}

void put_varint(std::string& out, uint32_t v) {
    do {
        auto b = static_cast<uint8_t>(v & 0x7F);
        v >>= 7;
        if (v != 0) {
            b |= 0x80;
        }
        out.push_back(static_cast<char>(b));
    } while (v != 0);
}

void put_string(std::string& out, std::string_view s) {
    out.push_back(static_cast<char>((s.size() >> 8) & 0xFF));
    out.push_back(static_cast<char>(s.size() & 0xFF));
    out.append(s);
}

}  // namespace detail
}  // namespace mqttd::mqtt
