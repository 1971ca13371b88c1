// api::StaticFiles: the dashboard's files (data/www) from one directory, for GET and HEAD.
// A request path is percent-decoded once, then split on '/'; a segment that is empty (except a
// trailing one: "/" and "dir/" mean index.html), starts with '.' ("..", ".", hidden files) or
// holds a '\' or a NUL answers 404, as does anything whose real path (symbolic links resolved)
// is not inside the real path of the root. A malformed escape answers 400. Only regular files
// are served; there is no directory listing.
//
// Caching: every answer carries `Cache-Control: no-cache` and an ETag (size and modification
// time), so the browser revalidates each file and gets 304 while it is unchanged: the files are
// not fingerprinted, and after an upgrade the pages must never mix old and new modules.
//
// Thread-safety: const after construction; serve() may run on several threads at once.
#pragma once

#include <string>
#include <string_view>

#include "api/http.h"

namespace mqttd::api {

class StaticFiles {
public:
    // `root` must be an existing directory (resolve_docroot()).
    explicit StaticFiles(std::string root) : root_(std::move(root)) {}

    Response serve(const Request& req) const;
    const std::string& root() const { return root_; }

private:
    std::string root_;  // real path, no trailing '/'
};

// The Content-Type of a file name by its extension ("application/octet-stream" when unknown).
std::string_view content_type_of(std::string_view file_name);

// The directory the dashboard serves: `configured` (dashboard.docroot) when not empty, else
// <binary dir>/../share/mqttd/www (installed), else <binary dir>/www (the build tree, where
// CMake links it to data/www). Returns its real path, or an empty string and `error` set to one
// line naming what was tried.
std::string resolve_docroot(const std::string& configured, std::string& error);

}  // namespace mqttd::api
