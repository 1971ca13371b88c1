#include "config/command_line.h"

#include <cstddef>

#include <CLI/CLI.hpp>

#include "config/keys.h"

namespace mqttd::config {
namespace {

std::string in_quotes(std::string_view s) {
    // Built by appends: GCC 12 -O3 warns falsely (-Wrestrict) on "lit" + std::string.
    std::string out;
    out.reserve(s.size() + 2);
    out += '"';
    out += s;
    out += '"';
    return out;
}

// The option tree, bound to `cl`. The help text is CLI11's, with the footer below.
struct Bound {  // what CLI11 fills in besides CommandLine's own fields
    std::string data_dir;
    std::string restore;
};

void build(CLI::App& app, CommandLine& cl, Bound& b) {
    app.set_help_flag("-h,--help", "print this help and exit")->disable_flag_override();
    app.add_flag("-v,-V,--version", cl.version, "print the version and exit")
            ->disable_flag_override();
    app.add_option("-c,--config", cl.config_file, "config file")
            ->type_name("FILE")
            ->capture_default_str();
    app.add_option("--data-dir", b.data_dir, "data directory, same as --set node.data_dir=DIR")
            ->type_name("DIR");
    app.add_option("-s,--set",
                   "set a config key; wins over the file and saved values; may be "
                   "repeated")
            ->type_name("KEY=VALUE")
            ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
            ->allow_extra_args(false)
            ->expected(1);
    app.add_flag("--recover", cl.recover,
                 "start on a damaged store knowingly: drop a damaged WAL record and what follows "
                 "it, repair a corrupt table or MANIFEST on a copy (the damaged files are kept)")
            ->disable_flag_override();
    auto* restore = app.add_option("--restore", b.restore,
                                   "copy a backup (made by POST /api/v2/backup) into the data "
                                   "directory's store and exit; the broker must be stopped and "
                                   "the store empty, unless --force")
                            ->type_name("BACKUP");
    app.add_flag("--force", cl.force, "with --restore: replace the store that is there")
            ->disable_flag_override()
            ->needs(restore);
}

std::string footer(std::string_view program) {
    std::string out;
    out += "Precedence: built-in default < config file < value saved through the REST API\n";
    out += "< --set / --data-dir. Options also take the --opt=value form.\n\n";
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

constexpr std::string_view kDescription =
        "mqttd: a durable MQTT broker (MQTT 3.1, 3.1.1, 5.0) with the EMQ 2.x REST API v2.";

}  // namespace

Result<CommandLine, std::string> parse_command_line(int argc, const char* const* argv) {
    CommandLine cl;
    Bound b;
    CLI::App app{std::string(kDescription), "mqttd"};
    build(app, cl, b);
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        cl.help = true;
        return cl;
    } catch (const CLI::ParseError& e) {
        return Err{std::string(e.what()) + " (see --help)"};
    }
    if (cl.config_file.empty()) {
        return Err{std::string("--config needs a file name")};
    }
    cl.config_file_given = app.count("--config") > 0;
    if (app.count("--data-dir") > 0) {
        if (b.data_dir.empty()) {
            return Err{std::string("--data-dir needs a directory")};
        }
        cl.data_dir = b.data_dir;
    }
    if (app.count("--restore") > 0) {
        if (b.restore.empty()) {
            return Err{std::string("--restore needs a backup directory")};
        }
        cl.restore = b.restore;
    }
    // --data-dir, --set and --recover in command line order: a later one wins.
    const CLI::Option* set = app.get_option("--set");
    size_t next_set = 0;
    for (const CLI::Option* opt : app.parse_order()) {
        if (opt == set) {
            const std::string& v = set->results().at(next_set++);
            const size_t eq = v.find('=');
            if (eq == std::string::npos || eq == 0) {
                return Err{"--set needs KEY=VALUE, got " + in_quotes(v)};
            }
            cl.sets.emplace_back(v.substr(0, eq), v.substr(eq + 1));
        } else if (opt->get_name() == "--data-dir") {
            cl.sets.emplace_back("node.data_dir", b.data_dir);
        } else if (opt->get_name() == "--recover") {
            cl.sets.emplace_back("storage.wal_recovery", "point_in_time");
        }
    }
    return cl;
}

std::string usage_text(std::string_view program) {
    CommandLine cl;
    Bound b;
    CLI::App app{std::string(kDescription), std::string(program)};
    build(app, cl, b);
    app.footer(footer(program));
    return app.help();
}

}  // namespace mqttd::config
