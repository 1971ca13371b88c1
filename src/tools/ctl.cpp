// `mqttd ctl` (src/tools/ctl.h): the command tree (CLI11), one REST request per command
// (libcurl), and the printers: a table for a list of objects (the columns of the first
// object), "key  value" lines for an object, one line per string.
#include "tools/ctl.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <curl/curl.h>
#include <nlohmann/json.hpp>

namespace mqttd::tools {
namespace {

using Json = nlohmann::json;

enum Exit : int { kDone = 0, kApiError = 1, kUsage = 2, kUnreachable = 3, kRefused = 4 };

// One REST request: method, path under /api/v2/, JSON body (empty for none).
struct Request {
    Request(std::string m, std::string p, std::string b = {})
        : method(std::move(m)), path(std::move(p)), body(std::move(b)) {}
    std::string method;
    std::string path;
    std::string body;
};

struct Options {
    std::string api = "http://127.0.0.1:8080";
    std::string user;
    std::string password;
    std::string password_file;
    std::string node;
    bool json = false;
};

// Percent-encodes everything but RFC 3986's unreserved characters (and '/' when `keep_slash`).
std::string encode(const std::string& s, bool keep_slash = false) {
    std::string out;
    for (unsigned char c : s) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/')) {
            out += static_cast<char>(c);
        } else {
            char buf[4];
            std::snprintf(buf, sizeof buf, "%%%02X", c);
            out += buf;
        }
    }
    return out;
}

size_t collect(char* data, size_t size, size_t n, void* out) {
    static_cast<std::string*>(out)->append(data, size * n);
    return size * n;
}

struct HttpAnswer {
    long status = 0;
    std::string body;
    std::string error;  // non-empty: no answer
};

HttpAnswer http(const Options& o, const Request& r) {
    HttpAnswer a;
    CURL* curl = curl_easy_init();
    if (curl == nullptr) {
        a.error = "cannot initialise libcurl";
        return a;
    }
    std::string url = o.api;
    while (!url.empty() && url.back() == '/') {
        url.pop_back();
    }
    url += "/api/v2/" + r.path;
    const std::string credentials = o.user + ":" + o.password;
    curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, r.method.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
    curl_easy_setopt(curl, CURLOPT_USERPWD, credentials.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &a.body);
    if (!r.body.empty()) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, r.body.c_str());
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(r.body.size()));
    }
    const CURLcode rc = curl_easy_perform(curl);
    if (rc != CURLE_OK) {
        a.error = std::string(curl_easy_strerror(rc)) + " (" + url + ")";
    } else {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &a.status);
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return a;
}

std::string cell(const Json& v) {
    if (v.is_string()) {
        return v.get<std::string>();
    }
    if (v.is_null()) {
        return "";
    }
    return v.dump();
}

void print_table(const Json& rows) {
    std::vector<std::string> columns;
    for (const auto& [k, v] : rows[0].items()) {
        columns.push_back(k);
    }
    std::vector<std::vector<std::string>> cells{columns};
    for (const auto& r : rows) {
        std::vector<std::string> line;
        for (const auto& c : columns) {
            line.push_back(r.contains(c) ? cell(r[c]) : "");
        }
        cells.push_back(std::move(line));
    }
    std::vector<size_t> width(columns.size(), 0);
    for (const auto& line : cells) {
        for (size_t i = 0; i < line.size(); ++i) {
            width[i] = std::max(width[i], line[i].size());
        }
    }
    for (const auto& line : cells) {
        std::string out;
        for (size_t i = 0; i < line.size(); ++i) {
            out += line[i];
            if (i + 1 < line.size()) {
                out.append(width[i] - line[i].size() + 2, ' ');
            }
        }
        std::printf("%s\n", out.c_str());
    }
}

void print_human(const Json& result) {
    if (result.is_object() && result.contains("objects") && result["objects"].is_array()) {
        // The spec's paging envelope.
        print_human(result["objects"]);
        std::printf("page %s, %s in all\n", cell(result.value("current_page", Json())).c_str(),
                    cell(result.value("total_num", Json())).c_str());
        return;
    }
    if (result.is_array()) {
        if (!result.empty() && result[0].is_object()) {
            print_table(result);
        } else {
            for (const auto& v : result) {
                std::printf("%s\n", cell(v).c_str());
            }
        }
        return;
    }
    if (result.is_object()) {
        size_t width = 0;
        for (const auto& [k, v] : result.items()) {
            width = std::max(width, k.size());
        }
        for (const auto& [k, v] : result.items()) {
            if (v.is_array() && !v.empty() && v[0].is_object()) {
                std::printf("%s:\n", k.c_str());
                print_table(v);
            } else {
                std::printf("%s%s  %s\n", k.c_str(), std::string(width - k.size(), ' ').c_str(),
                            cell(v).c_str());
            }
        }
        return;
    }
    std::printf("%s\n", cell(result).c_str());
}

// Runs `r`; returns the exit status and sets `result` to the answer's result.
int call(const Options& o, const Request& r, Json& result) {
    HttpAnswer a = http(o, r);
    if (!a.error.empty()) {
        std::fprintf(stderr, "mqttd ctl: cannot reach the API: %s\n", a.error.c_str());
        return kUnreachable;
    }
    if (a.status == 401) {
        std::fprintf(stderr, "mqttd ctl: the API refused the credentials of %s\n", o.user.c_str());
        return kRefused;
    }
    Json j = Json::parse(a.body, nullptr, false);
    if (a.status != 200 || j.is_discarded() || !j.is_object()) {
        std::fprintf(stderr, "mqttd ctl: %s %s: HTTP %ld: %s\n", r.method.c_str(), r.path.c_str(),
                     a.status, a.body.substr(0, 200).c_str());
        return kUnreachable;
    }
    const int code = j.value("code", -1);
    if (code != 0) {
        std::fprintf(stderr, "mqttd ctl: error %d: %s\n", code,
                     j.value("message", std::string("(no message)")).c_str());
        return kApiError;
    }
    result = j.contains("result") ? j["result"] : Json::array();
    return kDone;
}

// The node name, from --node or management/nodes.
std::optional<std::string> node_of(const Options& o, int& status) {
    if (!o.node.empty()) {
        return o.node;
    }
    Json nodes;
    status = call(o, Request{"GET", "management/nodes", ""}, nodes);
    if (status != kDone) {
        return std::nullopt;
    }
    if (!nodes.is_array() || nodes.empty() || !nodes[0].contains("name")) {
        std::fprintf(stderr, "mqttd ctl: management/nodes named no node\n");
        status = kApiError;
        return std::nullopt;
    }
    return nodes[0]["name"].get<std::string>();
}

// Fills in the password from the environment or the file; an error line or empty.
std::string resolve_credentials(Options& o) {
    if (o.user.empty()) {
        const char* u = std::getenv("MQTTD_API_USER");
        o.user = u != nullptr && *u != '\0' ? u : "admin";
    }
    if (!o.password.empty()) {
        return {};
    }
    if (const char* p = std::getenv("MQTTD_API_PASSWORD"); p != nullptr && *p != '\0') {
        o.password = p;
        return {};
    }
    if (o.password_file.empty()) {
        return "no password: give --password, MQTTD_API_PASSWORD or --password-file";
    }
    struct stat st {};
    if (::stat(o.password_file.c_str(), &st) != 0) {
        return "cannot read " + o.password_file;
    }
    if ((st.st_mode & 077) != 0) {
        return o.password_file + " is readable by others: chmod 600 it";
    }
    std::ifstream in(o.password_file);
    std::getline(in, o.password);
    if (o.password.empty()) {
        return o.password_file + " holds no password";
    }
    return {};
}

// Appends the case arms of the bash completion: `path` (words after `mqttd`) -> the words
// that may follow it.
void completion_cases(CLI::App* a, const std::string& path, std::string& out) {
    std::string words;
    for (CLI::App* sub : a->get_subcommands([](CLI::App*) { return true; })) {
        words += (words.empty() ? "" : " ") + sub->get_name();
        completion_cases(sub, path + " " + sub->get_name(), out);
    }
    if (!words.empty()) {
        out += "        \"" + path + "\") words=\"" + words + "\" ;;\n";
    }
}

// A bash completion script for `mqttd ctl` (and `mqttd inspect`'s commands), generated from
// the command tree: `source <(mqttd ctl completion)`.
std::string bash_completion(CLI::App& app) {
    std::string cases;
    completion_cases(&app, "ctl", cases);
    return "# bash completion for mqttd: source <(mqttd ctl completion)\n"
           "_mqttd() {\n"
           "    local cur=\"${COMP_WORDS[COMP_CWORD]}\" path=\"\" words=\"\" i\n"
           "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
           "        case \"${COMP_WORDS[i]}\" in\n"
           "            --api|--user|--password|--password-file|--node|--data-dir|--limit|"
           "--page|--page-size|-c|--config|--set|--restore) ((i++)) ;;\n"
           "            -*) ;;\n"
           "            *) path=\"${path:+$path }${COMP_WORDS[i]}\" ;;\n"
           "        esac\n"
           "    done\n"
           "    case \"$path\" in\n"
           "        \"\") words=\"ctl inspect\" ;;\n"
           "        \"inspect\") words=\"sessions session queue retained config stats\" ;;\n" +
           cases +
           "    esac\n"
           "    if [[ $cur == -* && -z $path ]]; then\n"
           "        words=\"--config --data-dir --set --recover --restore --force --version "
           "--help\"\n"
           "    elif [[ $cur == -* ]]; then\n"
           "        words=\"--api --user --password --password-file --node --json --help "
           "--data-dir --limit\"\n"
           "    fi\n"
           "    COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
           "}\n"
           "complete -F _mqttd mqttd\n";
}

}  // namespace

int ctl_main(int argc, const char* const* argv) {
    Options o;
    CLI::App app{"Manage a running mqttd over its REST API v2.", "mqttd ctl"};
    app.add_option("--api", o.api, "base URL of the API")->capture_default_str();
    app.add_option("--user", o.user, "API user (default MQTTD_API_USER, else admin)");
    app.add_option("--password", o.password, "API password (default MQTTD_API_PASSWORD)");
    app.add_option("--password-file", o.password_file, "file holding the password (mode 0600)");
    app.add_option("--node", o.node, "node name (default: asked of the API)");
    app.add_flag("--json", o.json, "print the API's result as JSON");
    app.require_subcommand(1);

    // What the chosen command does: its request, given the node name when `needs_node`.
    std::function<Request(const std::string& node)> make;
    bool needs_node = false;
    auto on = [&](CLI::App* sub, bool node, std::function<Request(const std::string&)> fn) {
        sub->callback([&make, &needs_node, node, fn] {
            make = fn;
            needs_node = node;
        });
    };
    std::string a1;
    std::string a2;
    std::string a3;
    int page = 1;
    int page_size = 100;
    auto paged = [&](CLI::App* sub) {
        sub->add_option("--page", page, "page number")->check(CLI::PositiveNumber);
        sub->add_option("--page-size", page_size, "entries per page")->check(CLI::Range(1, 10000));
    };
    auto paging = [&] {
        return "curr_page=" + std::to_string(page) + "&page_size=" + std::to_string(page_size);
    };

    on(app.add_subcommand("status", "the node: version, uptime, clients, memory"), true,
       [](const std::string& node) {
           return Request{"GET", "management/nodes/" + encode(node)};
       });

    auto* clients = app.add_subcommand("clients", "connected clients")->require_subcommand(1);
    auto* cl = clients->add_subcommand("list", "list the connected clients");
    paged(cl);
    on(cl, true, [&](const std::string& node) {
        return Request{"GET", "nodes/" + encode(node) + "/clients?" + paging()};
    });
    auto* cs = clients->add_subcommand("show", "one client");
    cs->add_option("client_id", a1)->required();
    on(cs, false, [&](const std::string&) { return Request{"GET", "clients/" + encode(a1)}; });
    auto* ck = clients->add_subcommand("kick", "disconnect a client (its will is published)");
    ck->add_option("client_id", a1)->required();
    on(ck, false, [&](const std::string&) { return Request{"DELETE", "clients/" + encode(a1)}; });

    auto* sessions = app.add_subcommand("sessions", "sessions")->require_subcommand(1);
    auto* sl = sessions->add_subcommand("list", "list the sessions");
    paged(sl);
    on(sl, true, [&](const std::string& node) {
        return Request{"GET", "nodes/" + encode(node) + "/sessions?" + paging()};
    });
    auto* ss = sessions->add_subcommand("show", "one session");
    ss->add_option("client_id", a1)->required();
    on(ss, false, [&](const std::string&) { return Request{"GET", "sessions/" + encode(a1)}; });
    auto* sq = sessions->add_subcommand("queue", "the queued messages of a persistent session");
    sq->add_option("client_id", a1)->required();
    paged(sq);
    on(sq, false, [&](const std::string&) {
        return Request{"GET", "sessions/" + encode(a1) + "/mqueue?" + paging()};
    });
    auto* sd = sessions->add_subcommand(
            "delete", "end an offline session: its subscriptions, queue and stored record");
    sd->add_option("client_id", a1)->required();
    on(sd, false, [&](const std::string&) { return Request{"DELETE", "sessions/" + encode(a1)}; });

    auto* subs = app.add_subcommand("subscriptions", "the subscriptions of a client, or all");
    subs->add_option("client_id", a1);
    paged(subs);
    on(subs, true, [&](const std::string& node) {
        return a1.empty() ? Request{"GET", "nodes/" + encode(node) + "/subscriptions?" + paging()}
                          : Request{"GET", "subscriptions/" + encode(a1)};
    });

    auto* routes = app.add_subcommand("routes", "the routes, or the route of a topic");
    routes->add_option("topic", a1);
    paged(routes);
    on(routes, false, [&](const std::string&) {
        return a1.empty() ? Request{"GET", "routes?" + paging()}
                          : Request{"GET", "routes/" + encode(a1, true)};
    });

    auto* retained = app.add_subcommand("retained", "retained messages")->require_subcommand(1);
    auto* rl = retained->add_subcommand("list", "those matching a filter (default #)");
    rl->add_option("filter", a1);
    paged(rl);
    on(rl, false, [&](const std::string&) {
        return Request{"GET", "retained?topic=" + encode(a1.empty() ? "#" : a1) + "&" + paging()};
    });
    auto* rd = retained->add_subcommand("delete", "delete the retained message of a topic");
    rd->add_option("topic", a1)->required();
    on(rd, false, [&](const std::string&) {
        return Request{"DELETE", "retained/" + encode(a1, true)};
    });

    auto* plugins = app.add_subcommand("plugins", "plugins")->require_subcommand(1);
    on(plugins->add_subcommand("list", "list the plugins"), true, [](const std::string& node) {
        return Request{"GET", "nodes/" + encode(node) + "/plugins"};
    });
    for (const auto& [verb, active] : {std::pair{"load", true}, std::pair{"unload", false}}) {
        auto* p = plugins->add_subcommand(verb, active ? "start a plugin" : "stop a plugin");
        p->add_option("name", a1)->required();
        const bool on_off = active;
        on(p, true, [&a1, on_off](const std::string& node) {
            return Request{"PUT", "nodes/" + encode(node) + "/plugins/" + encode(a1),
                           Json{{"active", on_off}}.dump()};
        });
    }

    auto* configs = app.add_subcommand("configs", "hot configuration")->require_subcommand(1);
    on(configs->add_subcommand("get", "the modifiable keys and their values"), true,
       [](const std::string& node) {
           return Request{"GET", "nodes/" + encode(node) + "/configs"};
       });
    auto* cset = configs->add_subcommand("set", "change a key (saved in the store)");
    cset->add_option("key", a1)->required();
    cset->add_option("value", a2)->required();
    on(cset, false, [&](const std::string&) {
        return Request{"PUT", "configs/emqttd", Json{{"key", a1}, {"value", a2}}.dump()};
    });

    auto* users = app.add_subcommand("users", "REST API users")->require_subcommand(1);
    on(users->add_subcommand("list", "list the users"), false, [](const std::string&) {
        return Request{"GET", "users"};
    });
    auto* ua = users->add_subcommand("add", "add a user");
    ua->add_option("username", a1)->required();
    ua->add_option("password", a2)->required();
    on(ua, false, [&](const std::string&) {
        return Request{"POST", "users", Json{{"username", a1}, {"password", a2}}.dump()};
    });
    auto* up = users->add_subcommand("passwd", "change a user's password");
    up->add_option("username", a1)->required();
    up->add_option("old_password", a2)->required();
    up->add_option("new_password", a3)->required();
    on(up, false, [&](const std::string&) {
        return Request{"PUT", "change_pwd/" + encode(a1),
                       Json{{"old_pwd", a2}, {"new_pwd", a3}}.dump()};
    });
    auto* ud = users->add_subcommand("del", "delete a user");
    ud->add_option("username", a1)->required();
    on(ud, false, [&](const std::string&) { return Request{"DELETE", "users/" + encode(a1)}; });

    auto* acl = app.add_subcommand("acl", "the ACL file")->require_subcommand(1);
    on(acl->add_subcommand("reload", "re-read mqtt.acl_file"), false, [](const std::string&) {
        return Request{"PUT", "acl/reload"};
    });

    auto* backup = app.add_subcommand("backup", "backups of the store (default: take one)");
    backup->require_subcommand(0, 1);
    // CLI11 runs a subcommand's callback before its parent's: `backup` alone takes one.
    backup->callback([&] {
        if (!make) {
            make = [](const std::string&) {
                return Request{"POST", "backup", ""};
            };
            needs_node = false;
        }
    });
    auto* bc = backup->add_subcommand("create", "take a backup");
    bc->add_option("name", a1, "backup name (default: from the time)");
    on(bc, false, [&](const std::string&) {
        return Request{"POST", "backup", a1.empty() ? "" : Json{{"name", a1}}.dump()};
    });
    on(backup->add_subcommand("list", "list the backups"), false, [](const std::string&) {
        return Request{"GET", "backup"};
    });
    auto* bd = backup->add_subcommand("delete", "delete a backup");
    bd->add_option("name", a1)->required();
    on(bd, false, [&](const std::string&) { return Request{"DELETE", "backup/" + encode(a1)}; });

    bool print_completion = false;
    app.add_subcommand("completion",
                       "print a bash completion script: source <(mqttd ctl "
                       "completion)")
            ->callback([&] { print_completion = true; });

    // The global options (--json, --api, ...) may also come after the command words.
    std::function<void(CLI::App*)> fall_through = [&](CLI::App* a) {
        for (CLI::App* sub : a->get_subcommands([](CLI::App*) { return true; })) {
            sub->fallthrough();
            fall_through(sub);
        }
    };
    fall_through(&app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int rc = app.exit(e);
        return rc == 0 ? kDone : kUsage;
    }
    if (print_completion) {
        std::fputs(bash_completion(app).c_str(), stdout);
        return kDone;
    }
    if (!make) {
        std::fputs(app.help().c_str(), stderr);
        return kUsage;
    }
    if (auto err = resolve_credentials(o); !err.empty()) {
        std::fprintf(stderr, "mqttd ctl: %s\n", err.c_str());
        return kUsage;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int status = kDone;
    std::string node;
    if (needs_node) {
        auto n = node_of(o, status);
        if (!n) {
            return status;
        }
        node = *n;
    }
    Json result;
    status = call(o, make(node), result);
    if (status == kDone) {
        if (o.json) {
            std::printf("%s\n", result.dump(2).c_str());
        } else {
            print_human(result);
        }
    }
    curl_global_cleanup();
    return status;
}

}  // namespace mqttd::tools
