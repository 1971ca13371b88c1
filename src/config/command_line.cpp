#include "config/command_line.h"

#include <cstddef>

#include "config/keys.h"

namespace mqttd::config {
namespace {

std::string quoted(std::string_view s) {
    // Built by appends: GCC 12 -O3 warns falsely (-Wrestrict) on "lit" + std::string.
    std::string out;
    out.reserve(s.size() + 2);
    out += '"';
    out += s;
    out += '"';
    return out;
}

}  // namespace

Result<CommandLine, std::string> parse_command_line(int argc, const char* const* argv) {
    CommandLine cl;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        std::string_view name = arg;
        std::optional<std::string_view> inline_value;
        if (arg.starts_with("--")) {
            if (const size_t eq = arg.find('='); eq != std::string_view::npos) {
                name = arg.substr(0, eq);
                inline_value = arg.substr(eq + 1);
            }
        }
        // The option's argument: after '=' or the next word.
        auto take_value = [&]() -> Result<std::string, std::string> {
            if (inline_value) {
                return std::string(*inline_value);
            }
            if (i + 1 >= argc) {
                return Err{std::string(name) + " needs a value (see --help)"};
            }
            return std::string(argv[++i]);
        };
        auto no_value = [&]() -> Result<bool, std::string> {
            if (inline_value) {
                return Err{std::string(name) + " takes no value"};
            }
            return true;
        };

        if (name == "-h" || name == "--help") {
            if (auto r = no_value(); !r) {
                return Err{r.error()};
            }
            cl.help = true;
        } else if (name == "-v" || name == "-V" || name == "--version") {
            if (auto r = no_value(); !r) {
                return Err{r.error()};
            }
            cl.version = true;
        } else if (name == "-c" || name == "--config") {
            auto v = take_value();
            if (!v) {
                return Err{v.error()};
            }
            if (v->empty()) {
                return Err{std::string(name) + " needs a file name"};
            }
            cl.config_file = std::move(v).value();
            cl.config_file_given = true;
        } else if (name == "--data-dir") {
            auto v = take_value();
            if (!v) {
                return Err{v.error()};
            }
            if (v->empty()) {
                return Err{std::string("--data-dir needs a directory")};
            }
            cl.data_dir = *v;
            cl.sets.emplace_back("node.data_dir", std::move(v).value());
        } else if (name == "--recover") {
            if (auto r = no_value(); !r) {
                return Err{r.error()};
            }
            cl.recover = true;
            cl.sets.emplace_back("storage.wal_recovery", "point_in_time");
        } else if (name == "--restore") {
            auto v = take_value();
            if (!v) {
                return Err{v.error()};
            }
            if (v->empty()) {
                return Err{std::string("--restore needs a backup directory")};
            }
            cl.restore = std::move(v).value();
        } else if (name == "--force") {
            if (auto r = no_value(); !r) {
                return Err{r.error()};
            }
            cl.force = true;
        } else if (name == "--set" || name == "-s") {
            auto v = take_value();
            if (!v) {
                return Err{v.error()};
            }
            const size_t eq = v->find('=');
            if (eq == std::string::npos || eq == 0) {
                return Err{"--set needs KEY=VALUE, got " + quoted(*v)};
            }
            cl.sets.emplace_back(v->substr(0, eq), v->substr(eq + 1));
        } else if (arg.starts_with("-")) {
            return Err{"unknown option " + quoted(arg) + " (see --help)"};
        } else {
            return Err{"unexpected argument " + quoted(arg) + " (see --help)"};
        }
    }
    if (cl.force && !cl.restore) {
        return Err{std::string("--force is for --restore (see --help)")};
    }
    return cl;
}

std::string usage_text(std::string_view program) {
    std::string out;
    out += "Usage: ";
    out += program;
    out += " [options]\n\n";
    out += "mqttd: a durable MQTT broker (MQTT 3.1, 3.1.1, 5.0) with the EMQ 2.x REST API v2.\n\n";
    out += "Options:\n";
    out += "  -c, --config FILE      config file (default ";
    out += kDefaultConfigFile;
    out += ")\n";
    out += "      --data-dir DIR     data directory, same as --set node.data_dir=DIR\n";
    out += "  -s, --set KEY=VALUE    set a config key; wins over the file and saved values;\n";
    out += "                         may be repeated\n";
    out += "      --recover          start on a damaged store knowingly: drop a damaged WAL\n";
    out += "                         record and what follows it, repair a corrupt table or\n";
    out += "                         MANIFEST on a copy (the damaged files are kept)\n";
    out += "      --restore BACKUP   copy a backup (made by POST /api/v2/backup) into the\n";
    out += "                         data directory's store and exit; the broker must be\n";
    out += "                         stopped and the store empty, unless --force\n";
    out += "      --force            with --restore: replace the store that is there\n";
    out += "  -v, --version          print the version and exit\n";
    out += "  -h, --help             print this help and exit\n\n";
    out += "Precedence: built-in default < config file < value saved through the REST API\n";
    out += "< --set / --data-dir.\n\n";
    out += "Inspect a store read-only, also while its broker runs (see `inspect --help`):\n";
    out += "  ";
    out += program;
    out += " inspect --data-dir DIR [--json]\n";
    out += "        sessions | session ID | queue ID | retained FILTER | config | stats\n";
    out += "Manage a running broker over its REST API (see `ctl --help`):\n";
    out += "  ";
    out += program;
    out += " ctl [--api URL] status | clients | sessions | retained | plugins | configs | ...\n\n";
    out += "Keys (default; * = can be changed at run time through the REST API):\n";
    for (const KeyDef& def : all_keys()) {
        out += "  ";
        out += def.name;
        out += " = ";
        out += def.default_text.empty() ? "\"\"" : def.default_text;
        out += def.hot ? "  *\n" : "\n";
        out += "      ";
        out += def.description;
        out += "\n";
    }
    return out;
}

}  // namespace mqttd::config
