// storage::Status: the must-check result of every store operation (like LevelDB's Status;
// the checking comes from [[nodiscard]]). OK carries no allocation. Value type; thread-safe to
// copy between threads.
#pragma once

#include <string>
#include <utility>

namespace mqttd::storage {

class [[nodiscard]] Status {
public:
    enum class Code { Ok, NotFound, Corruption, IoError, InvalidArgument, Busy, Stopped, NoSpace };

    Status() = default;
    static Status ok() { return {}; }
    static Status not_found(std::string msg = {}) { return {Code::NotFound, std::move(msg)}; }
    static Status corruption(std::string msg) { return {Code::Corruption, std::move(msg)}; }
    static Status io_error(std::string msg) { return {Code::IoError, std::move(msg)}; }
    static Status invalid_argument(std::string msg) {
        return {Code::InvalidArgument, std::move(msg)};
    }
    static Status busy(std::string msg) { return {Code::Busy, std::move(msg)}; }
    // The store refuses writes after a failed write or sync (sticky error), or after close().
    static Status stopped(std::string msg) { return {Code::Stopped, std::move(msg)}; }
    // The file system of the store is full (ENOSPC): the write failed, or was refused while the
    // store waits for space; not sticky, the store resumes by itself (store.h, StoreHealth).
    static Status no_space(std::string msg) { return {Code::NoSpace, std::move(msg)}; }

    bool is_ok() const { return code_ == Code::Ok; }
    bool is_not_found() const { return code_ == Code::NotFound; }
    bool is_corruption() const { return code_ == Code::Corruption; }
    bool is_no_space() const { return code_ == Code::NoSpace; }
    Code code() const { return code_; }
    const std::string& message() const { return msg_; }
    std::string to_string() const;

    // Makes dropping a Status visible in the code.
    void ignore() const {}

private:
    Status(Code c, std::string m) : code_(c), msg_(std::move(m)) {}
    Code code_ = Code::Ok;
    std::string msg_;
};

}  // namespace mqttd::storage
