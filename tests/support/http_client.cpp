#include "http_client.h"

#include <cctype>
#include <cstdlib>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "sockets.h"

namespace mqttd::test {
namespace {

std::string lower(std::string s) {
    for (auto& ch : s) {
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    }
    return s;
}

std::string base64(const std::string& in) {
    std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(in.data()),
                            static_cast<int>(in.size()));
    out.resize(static_cast<size_t>(n));
    return out;
}

int hex_value(char ch) {
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    if (ch >= 'A' && ch <= 'F') {
        return ch - 'A' + 10;
    }
    return -1;
}

std::string trim(std::string v) {
    v.erase(0, v.find_first_not_of(' '));
    while (!v.empty() && (v.back() == '\r' || v.back() == ' ')) {
        v.pop_back();
    }
    return v;
}

// The body of a chunked reply; what is complete of it when the reply was cut short.
std::string dechunk(const std::string& payload, bool* complete) {
    std::string out;
    size_t pos = 0;
    *complete = false;
    while (pos < payload.size()) {
        size_t le = payload.find("\r\n", pos);
        if (le == std::string::npos) {
            break;
        }
        size_t n = std::strtoul(payload.substr(pos, le - pos).c_str(), nullptr, 16);
        if (n == 0) {
            *complete = true;
            break;
        }
        if (le + 2 + n > payload.size()) {
            break;
        }
        out += payload.substr(le + 2, n);
        pos = le + 2 + n + 2;
    }
    return out;
}

// True once `raw` holds a whole reply (headers and the body its framing announces).
bool reply_complete(const std::string& raw) {
    size_t end = raw.find("\r\n\r\n");
    if (end == std::string::npos) {
        return false;
    }
    std::string head = lower(raw.substr(0, end));
    if (head.find("transfer-encoding: chunked") != std::string::npos) {
        bool complete = false;
        dechunk(raw.substr(end + 4), &complete);
        return complete;
    }
    size_t cl = head.find("content-length:");
    return cl != std::string::npos &&
           raw.size() - end - 4 >= std::strtoul(head.c_str() + cl + 15, nullptr, 10);
}

}  // namespace

std::string HttpReply::header(const std::string& lower_name) const {
    for (const auto& [k, v] : headers) {
        if (k == lower_name) {
            return v;
        }
    }
    return {};
}

HttpReply http(uint16_t port,
               const std::string& method,
               const std::string& path,
               const std::string& body,
               const std::string& auth,
               std::chrono::milliseconds timeout) {
    return http_with_headers(port, method, path, "", body, auth, timeout);
}

HttpReply http_with_headers(uint16_t port,
                            const std::string& method,
                            const std::string& path,
                            const std::string& headers,
                            const std::string& body,
                            const std::string& auth,
                            std::chrono::milliseconds timeout) {
    HttpReply reply;
    int fd = connect_loopback(port);
    if (fd < 0) {
        return reply;
    }
    std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
    if (!auth.empty()) {
        req += "Authorization: Basic " + base64(auth) + "\r\n";
    }
    req += headers;
    if (!body.empty() || method == "POST" || method == "PUT") {
        req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
               "\r\n";
    }
    req += "\r\n" + body;
    send_all(fd, req);  // the server may refuse early (413) and close: read what it said
    std::string raw;
    char buf[65536];
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 200) <= 0) {
            continue;
        }
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
            break;
        }
        raw.append(buf, static_cast<size_t>(n));
        if (reply_complete(raw)) {  // the server may keep the connection open
            break;
        }
    }
    ::close(fd);
    size_t end = raw.find("\r\n\r\n");
    size_t sp = raw.find(' ');
    if (end == std::string::npos || sp == std::string::npos || sp > end) {
        return reply;
    }
    reply.status = std::atoi(raw.c_str() + sp + 1);
    std::string head = raw.substr(0, end);
    for (size_t pos = head.find("\r\n"); pos != std::string::npos && pos < head.size();) {
        size_t e = head.find("\r\n", pos + 2);
        std::string line = head.substr(pos + 2, e == std::string::npos ? e : e - pos - 2);
        if (size_t colon = line.find(':'); colon != std::string::npos) {
            reply.headers.emplace_back(lower(line.substr(0, colon)), trim(line.substr(colon + 1)));
        }
        pos = e;
    }
    reply.body = raw.substr(end + 4);
    if (lower(reply.header("transfer-encoding")) == "chunked") {
        bool complete = false;
        reply.body = dechunk(reply.body, &complete);
    }
    return reply;
}

std::string percent_decode(const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '+') {
            out += ' ';
        } else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 &&
                   hex_value(s[i + 2]) >= 0) {
            out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

std::string url_encode(const std::string& s) {
    static const char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char ch : s) {
        if (std::isalnum(ch) != 0 || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            out += static_cast<char>(ch);
        } else {
            out += '%';
            out += kHex[ch >> 4];
            out += kHex[ch & 15];
        }
    }
    return out;
}

}  // namespace mqttd::test
