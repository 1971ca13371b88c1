#include "net/http_upgrade.h"

#include <array>
#include <cctype>

#include <openssl/evp.h>
#include <openssl/sha.h>

namespace mqttd::net {

namespace {

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (size_t i = 0; i < a.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(a[i])) !=
            std::tolower(static_cast<unsigned char>(b[i]))) {
            return false;
        }
    }
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

// Calls f(token) for each comma-separated, trimmed, non-empty token of `list`.
template <typename F>
void each_token(std::string_view list, F f) {
    while (!list.empty()) {
        size_t comma = list.find(',');
        std::string_view t = trim(list.substr(0, comma));
        if (!t.empty() && f(t)) {
            return;
        }
        if (comma == std::string_view::npos) {
            return;
        }
        list.remove_prefix(comma + 1);
    }
}

bool has_token(std::string_view list, std::string_view token) {
    bool found = false;
    each_token(list, [&](std::string_view t) { return found = iequals(t, token); });
    return found;
}

UpgradeResult refuse(int status, std::string reason) {
    UpgradeResult r;
    r.status = UpgradeResult::Status::Refuse;
    r.http_status = status;
    r.reason = std::move(reason);
    return r;
}

void append_list(std::string& to, std::string_view value) {
    if (!to.empty()) {
        to += ',';
    }
    to += value;
}

}  // namespace

UpgradeResult parse_upgrade(std::string_view bytes, std::string_view path) {
    size_t end = bytes.find("\r\n\r\n");
    if (end == std::string_view::npos || end + 4 > kMaxUpgradeRequest) {
        if (bytes.size() >= kMaxUpgradeRequest || end != std::string_view::npos) {
            return refuse(431, "upgrade request longer than " + std::to_string(kMaxUpgradeRequest) +
                                       " bytes");
        }
        return {};
    }
    std::string_view head = bytes.substr(0, end + 2);  // each line ends with CRLF
    size_t eol = head.find("\r\n");
    std::string_view line = head.substr(0, eol);
    head.remove_prefix(eol + 2);

    size_t sp1 = line.find(' ');
    size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) {
        return refuse(400, "not an HTTP request line");
    }
    std::string_view method = line.substr(0, sp1);
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string_view version = line.substr(sp2 + 1);
    if (method != "GET" || version != "HTTP/1.1") {
        return refuse(400, "not GET ... HTTP/1.1");
    }
    std::string_view target_path = target.substr(0, target.find('?'));
    if (target_path != path) {
        return refuse(404, "path is not " + std::string(path));
    }

    std::string upgrade;
    std::string connection;
    std::string ws_version;
    std::string key;
    std::string protocols;
    while (!head.empty()) {
        eol = head.find("\r\n");
        line = head.substr(0, eol);
        head.remove_prefix(eol + 2);
        size_t colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0) {
            return refuse(400, "malformed header line");
        }
        std::string_view name = line.substr(0, colon);
        std::string_view value = trim(line.substr(colon + 1));
        if (iequals(name, "Upgrade")) {
            append_list(upgrade, value);
        } else if (iequals(name, "Connection")) {
            append_list(connection, value);
        } else if (iequals(name, "Sec-WebSocket-Version")) {
            append_list(ws_version, value);
        } else if (iequals(name, "Sec-WebSocket-Key")) {
            key = value;
        } else if (iequals(name, "Sec-WebSocket-Protocol")) {
            append_list(protocols, value);
        }
    }
    if (!has_token(upgrade, "websocket") || !has_token(connection, "upgrade")) {
        return refuse(400, "not a WebSocket upgrade");
    }
    if (ws_version != "13") {
        return refuse(426, "Sec-WebSocket-Version is not 13");
    }
    // 16 random bytes in base64 (RFC 6455 4.1): 24 characters.
    if (key.size() != 24) {
        return refuse(400, "Sec-WebSocket-Key is not 16 bytes in base64");
    }
    std::string chosen;
    each_token(protocols, [&](std::string_view t) {
        if (t == "mqtt" || t == "mqttv3.1") {
            chosen = t;
            return true;
        }
        return false;
    });
    if (chosen.empty()) {
        return refuse(400, "no subprotocol mqtt or mqttv3.1 offered");
    }
    UpgradeResult r;
    r.status = UpgradeResult::Status::Accept;
    r.consumed = end + 4;
    r.key = std::move(key);
    r.subprotocol = std::move(chosen);
    return r;
}

std::string websocket_accept(std::string_view key) {
    static constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    std::string text(key);
    text += kGuid;
    std::array<unsigned char, SHA_DIGEST_LENGTH> digest{};
    SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest.data());
    std::array<unsigned char, 4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1> b64{};
    int n = EVP_EncodeBlock(b64.data(), digest.data(), SHA_DIGEST_LENGTH);
    return std::string(reinterpret_cast<const char*>(b64.data()), static_cast<size_t>(n));
}

std::string upgrade_response(const UpgradeResult& r) {
    std::string out =
            "HTTP/1.1 101 Switching Protocols\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Accept: ";
    out += websocket_accept(r.key);
    out += "\r\nSec-WebSocket-Protocol: ";
    out += r.subprotocol;
    out += "\r\n\r\n";
    return out;
}

std::string refusal_response(const UpgradeResult& r) {
    const char* text = "Bad Request";
    switch (r.http_status) {
        case 404:
            text = "Not Found";
            break;
        case 426:
            text = "Upgrade Required";
            break;
        case 431:
            text = "Request Header Fields Too Large";
            break;
        default:
            break;
    }
    std::string out = "HTTP/1.1 " + std::to_string(r.http_status) + " " + text + "\r\n";
    if (r.http_status == 426) {
        out += "Sec-WebSocket-Version: 13\r\n";
    }
    out += "Connection: close\r\nContent-Length: 0\r\n\r\n";
    return out;
}

}  // namespace mqttd::net
