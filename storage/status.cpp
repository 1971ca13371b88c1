#include "storage/status.h"

namespace mqttd::storage {

std::string Status::to_string() const {
    const char* name = "OK";
    switch (code_) {
        case Code::Ok:
            return "OK";
        case Code::NotFound:
            name = "NotFound";
            break;
        case Code::Corruption:
            name = "Corruption";
            break;
        case Code::IoError:
            name = "IO error";
            break;
        case Code::InvalidArgument:
            name = "Invalid argument";
            break;
        case Code::Busy:
            name = "Busy";
            break;
        case Code::Stopped:
            name = "Stopped";
            break;
        case Code::NoSpace:
            name = "No space";
            break;
    }
    if (msg_.empty()) {
        return name;
    }
    return std::string(name) + ": " + msg_;
}

}  // namespace mqttd::storage
