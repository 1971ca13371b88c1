// WAL scan (internal to storage/): reads RocksDB's write-ahead log files before the store is
// opened, to tell a torn tail from damage that acknowledged data follows.
//
// The format is LevelDB's log format, kept by RocksDB (db/log_format.h): the file is a run of
// 32 KiB blocks; a block holds physical records, each a 7-byte header (masked CRC-32C of type
// and payload, fixed32; payload length, fixed16; type) and its payload, with 11 bytes (plus the
// log number) for the recyclable types 5-8; fewer than 7 bytes left in a block are zero
// padding. A logical record (one WriteBatch: sequence fixed64, count fixed32, then its ops) is
// one FULL record or FIRST, MIDDLE..., LAST fragments in consecutive blocks. Type 9 records
// (compression settings) carry no batch.
//
// Why our own reader: RocksDB's point-in-time recovery stops replay at the first bad record and
// says nothing, so acknowledged records after it are dropped silently; its stricter modes fail
// on a torn tail too (a checksum mismatch in the last record), which a power cut leaves. The
// log reader is not a public header. Every block begins with a header, so after damage the
// scan resynchronises byte by byte to the end of the damaged block, then at block starts.
//
// A torn tail: no complete write batch follows the first damaged byte. Each group commit is one
// DB::Write (one logical record) written after the previous one returned, so a torn write can
// only damage the last one; a complete batch after the damage proves that the damaged record
// was written, and acknowledged, before it.
//
// Thread-safety: pure functions of the files.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace mqttd::storage {

struct WalDamage {
    std::string file;     // path of the WAL file holding the first damaged byte
    uint64_t offset = 0;  // offset of that byte's record (or of the torn bytes) in the file
    // Last sequence number of the last good batch before the damage (0: none).
    uint64_t last_good_seq = 0;
    // Complete write batches after the damage (in this file and later ones), and their
    // sequence range; batches_after == 0 is a torn tail.
    uint64_t batches_after = 0;
    uint64_t first_seq_after = 0;
    uint64_t last_seq_after = 0;
    bool torn_tail() const { return batches_after == 0; }
};

struct WalScan {
    uint64_t files = 0;    // WAL files read
    uint64_t batches = 0;  // complete, good write batches before the damage
    std::optional<WalDamage> damage;
    std::string error;  // a file that could not be read; empty when all were
};

// Scans every "<number>.log" file of `dir`, in number order.
WalScan scan_wal(const std::string& dir);

// Scans one file in the log format (a WAL or a MANIFEST); the offset of the first damaged byte,
// nullopt when the whole file reads cleanly (an unreadable file is damage at 0).
std::optional<uint64_t> first_damage_in_log(const std::string& path);

}  // namespace mqttd::storage
