// The WAL scan; the format and the torn-tail rule are described in storage/wal_scan.h.
#include "storage/wal_scan.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <string_view>
#include <utility>
#include <vector>

namespace mqttd::storage {
namespace {

constexpr size_t kBlockSize = 32768;
constexpr size_t kHeaderSize = 7;
constexpr size_t kRecyclableHeaderSize = 11;
constexpr size_t kBatchHeaderSize = 12;  // sequence fixed64, count fixed32
constexpr uint32_t kMaskDelta = 0xa282ead8u;

enum class Kind { Full, First, Middle, Last, Meta };

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), one table lookup per byte.
constexpr std::array<uint32_t, 256> make_crc_table() {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
        uint32_t c = i;
        for (int k = 0; k < 8; ++k) {
            c = (c & 1u) != 0 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        }
        t[i] = c;
    }
    return t;
}
constexpr std::array<uint32_t, 256> kCrcTable = make_crc_table();

uint32_t crc32c(std::string_view data) {
    uint32_t c = 0xFFFFFFFFu;
    for (const char ch : data) {
        c = kCrcTable[(c ^ static_cast<uint8_t>(ch)) & 0xFFu] ^ (c >> 8);
    }
    return c ^ 0xFFFFFFFFu;
}

uint32_t unmask(uint32_t masked) {
    const uint32_t rot = masked - kMaskDelta;
    return (rot >> 17) | (rot << 15);
}

uint64_t fixed_le(std::string_view s, size_t pos, size_t width) {
    uint64_t v = 0;
    for (size_t i = 0; i < width; ++i) {
        v |= static_cast<uint64_t>(static_cast<uint8_t>(s[pos + i])) << (8 * i);
    }
    return v;
}

struct Physical {
    Kind kind = Kind::Full;
    size_t size = 0;  // header + payload
    std::string_view payload;
};

// The physical record at `pos` if its header is well formed, it fits in its block and its
// checksum matches.
std::optional<Physical> physical_at(std::string_view data, size_t pos) {
    const size_t block_left = kBlockSize - pos % kBlockSize;
    if (block_left < kHeaderSize || data.size() - pos < kHeaderSize) {
        return std::nullopt;
    }
    const auto type = static_cast<uint8_t>(data[pos + 6]);
    Kind kind = Kind::Full;
    size_t header = kHeaderSize;
    switch (type) {
        case 1:
        case 5:
            kind = Kind::Full;
            break;
        case 2:
        case 6:
            kind = Kind::First;
            break;
        case 3:
        case 7:
            kind = Kind::Middle;
            break;
        case 4:
        case 8:
            kind = Kind::Last;
            break;
        case 9:
            kind = Kind::Meta;
            break;
        default:
            return std::nullopt;  // 0 is what zeroed bytes and preallocated space read as
    }
    if (type >= 5 && type <= 8) {
        header = kRecyclableHeaderSize;
    }
    const size_t len = fixed_le(data, pos + 4, 2);
    if (header + len > block_left || header + len > data.size() - pos) {
        return std::nullopt;
    }
    const auto stored = static_cast<uint32_t>(fixed_le(data, pos, 4));
    if (crc32c(data.substr(pos + 6, header - 6 + len)) != unmask(stored)) {
        return std::nullopt;
    }
    return Physical{kind, header + len, data.substr(pos + header, len)};
}

// The next offset after `pos` where a good physical record starts: every offset up to the end
// of pos's block, then block starts only (each block begins with a header). data.size() when
// none.
size_t resync(std::string_view data, size_t pos) {
    const size_t block_end = std::min(data.size(), (pos / kBlockSize + 1) * kBlockSize);
    for (size_t p = pos + 1; p < block_end; ++p) {
        if (physical_at(data, p)) {
            return p;
        }
    }
    for (size_t p = block_end; p < data.size(); p += kBlockSize) {
        if (physical_at(data, p)) {
            return p;
        }
    }
    return data.size();
}

// Walks one file's logical records. `on_batch(payload, offset)` for each complete logical record;
// `on_damage(offset)` for each damaged place (a bad physical record, a fragment out of order,
// an incomplete record at the end).
template <typename OnBatch, typename OnDamage>
void walk(std::string_view data, OnBatch on_batch, OnDamage on_damage) {
    size_t pos = 0;
    std::string fragments;
    bool in_record = false;
    size_t record_start = 0;
    // After damage, MIDDLE and LAST fragments of the damaged record are skipped quietly.
    bool skipping = false;
    while (pos < data.size()) {
        const size_t block_left = kBlockSize - pos % kBlockSize;
        if (block_left < kHeaderSize) {
            pos += block_left;  // the block's zero trailer
            continue;
        }
        auto r = physical_at(data, pos);
        if (!r) {
            on_damage(in_record ? record_start : pos);
            in_record = false;
            skipping = true;
            pos = resync(data, pos);
            continue;
        }
        switch (r->kind) {
            case Kind::Full:
            case Kind::First:
                if (in_record) {
                    on_damage(record_start);  // FIRST without its LAST
                }
                skipping = false;
                if (r->kind == Kind::Full) {
                    in_record = false;
                    on_batch(r->payload, pos);
                } else {
                    in_record = true;
                    record_start = pos;
                    fragments.assign(r->payload);
                }
                break;
            case Kind::Middle:
            case Kind::Last:
                if (!in_record) {
                    if (!skipping) {
                        on_damage(pos);
                        skipping = true;
                    }
                    break;
                }
                fragments.append(r->payload);
                if (r->kind == Kind::Last) {
                    in_record = false;
                    on_batch(std::string_view(fragments), record_start);
                }
                break;
            case Kind::Meta:
                break;
        }
        pos += r->size;
    }
    if (in_record) {
        on_damage(record_start);
    }
}

bool read_file(const std::filesystem::path& path, std::string& out) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    std::ifstream in(path, std::ios::binary);
    if (ec || !in) {
        return false;
    }
    out.resize(size);
    in.read(out.data(), static_cast<std::streamsize>(size));
    out.resize(static_cast<size_t>(in.gcount()));
    return !in.bad();
}

}  // namespace

WalScan scan_wal(const std::string& dir) {
    namespace fs = std::filesystem;
    WalScan scan;
    std::vector<std::pair<uint64_t, fs::path>> logs;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        const std::string name = entry.path().filename().string();
        if (name.size() <= 4 || !name.ends_with(".log") ||
            !std::all_of(name.begin(), name.end() - 4,
                         [](char c) { return c >= '0' && c <= '9'; })) {
            continue;
        }
        logs.emplace_back(std::stoull(name.substr(0, name.size() - 4)), entry.path());
    }
    if (ec) {
        scan.error = dir + ": " + ec.message();
        return scan;
    }
    std::sort(logs.begin(), logs.end());
    std::string data;
    uint64_t last_seq = 0;
    uint64_t next_seq = 0;  // what the next batch's sequence must be; 0 before the first
    for (const auto& log : logs) {
        const std::filesystem::path& path = log.second;  // a name the lambdas can capture
        if (!read_file(path, data)) {
            scan.error = path.string() + ": cannot read";
            return scan;
        }
        ++scan.files;
        auto on_damage = [&](size_t offset) {
            if (!scan.damage) {
                scan.damage = WalDamage{path.string(), offset, last_seq, 0, 0, 0};
            }
        };
        auto on_batch = [&](std::string_view batch, size_t offset) {
            if (batch.size() < kBatchHeaderSize) {
                on_damage(offset);
                return;
            }
            const uint64_t seq = fixed_le(batch, 0, 8);
            const uint64_t count = fixed_le(batch, 8, 4);
            const uint64_t last = count == 0 ? seq : seq + count - 1;
            // Every write goes through the WAL, so live WAL files hold consecutive sequence
            // numbers: a gap is a lost record (a whole block zeroed, say).
            if (!scan.damage && next_seq != 0 && seq != next_seq) {
                on_damage(offset);
            }
            if (!scan.damage) {
                ++scan.batches;
                last_seq = last;
                next_seq = seq + count;
                return;
            }
            WalDamage& d = *scan.damage;
            if (d.batches_after++ == 0) {
                d.first_seq_after = seq;
            }
            d.first_seq_after = std::min(d.first_seq_after, seq);
            d.last_seq_after = std::max(d.last_seq_after, last);
        };
        walk(data, on_batch, on_damage);
    }
    return scan;
}

std::optional<uint64_t> first_damage_in_log(const std::string& path) {
    std::string data;
    if (!read_file(path, data)) {
        return 0;
    }
    std::optional<uint64_t> first;
    walk(
            data, [](std::string_view, size_t) {},
            [&](size_t offset) {
                if (!first) {
                    first = offset;
                }
            });
    return first;
}

}  // namespace mqttd::storage
