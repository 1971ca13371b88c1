// api::StaticFiles in-process: the path rules (no way out of the root), Content-Type by
// extension, the ETag and 304, and the docroot lookup.
#include "api/static_files.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "temp_dir.h"

namespace mqttd::api {
namespace {

std::string header(const Response& r, const std::string& name) {
    for (const auto& [k, v] : r.headers) {
        if (k == name) {
            return v;
        }
    }
    return {};
}

class StaticFilesTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::filesystem::create_directories(root_ + "/js");
        std::ofstream(root_ + "/index.html") << "index";
        std::ofstream(root_ + "/js/app.js") << "js";
        std::ofstream(dir_.path() + "/outside.txt") << "outside";
        std::filesystem::create_symlink(dir_.path() + "/outside.txt", root_ + "/out.txt");
        std::filesystem::create_directory_symlink(dir_.path(), root_ + "/up");
        std::string err;
        files_ = std::make_unique<StaticFiles>(resolve_docroot(root_, err));
        ASSERT_EQ(err, "");
    }
    Response get(const std::string& path, const std::string& tag = "") {
        Request r;
        r.method = "GET";
        r.path = path;
        r.if_none_match = tag;
        return files_->serve(r);
    }

    test::TempDir dir_;
    std::string root_ = dir_.path() + "/www";
    std::unique_ptr<StaticFiles> files_;
};

TEST_F(StaticFilesTest, ServesFilesAndIndex) {
    EXPECT_EQ(get("/").body, "index");
    EXPECT_EQ(get("/").content_type, "text/html; charset=utf-8");
    EXPECT_EQ(get("/js/app.js").body, "js");
    EXPECT_EQ(get("/js/app.js").content_type, "text/javascript; charset=utf-8");
    EXPECT_EQ(get("/j%73/app.js").body, "js");
    EXPECT_EQ(get("/js/").status, 404);  // no index.html there, and no listing
    EXPECT_EQ(get("/js").status, 404);
}

TEST_F(StaticFilesTest, RefusesEveryWayOut) {
    const std::vector<std::string> paths = {"/../outside.txt",
                                            "/%2e%2e/outside.txt",
                                            "/js/%2E%2E/%2e%2e/outside.txt",
                                            "/..%2Foutside.txt",
                                            "/out.txt",
                                            "/up/outside.txt",
                                            "//outside.txt",
                                            "/.%2e/outside.txt",
                                            "/js/./app.js",
                                            "/.",
                                            "/..\\outside.txt",
                                            "/%5c..%5coutside.txt",
                                            "/index.html%00.js",
                                            "outside.txt",
                                            dir_.path() + "/outside.txt"};
    for (const auto& p : paths) {
        auto r = get(p);
        EXPECT_EQ(r.status, 404) << p;
        EXPECT_NE(r.body, "outside") << p;
    }
    EXPECT_EQ(get("/%").status, 400);
    EXPECT_EQ(get("/%g1").status, 400);
}

TEST_F(StaticFilesTest, OnlyGetAndHead) {
    Request r;
    r.method = "PUT";
    r.path = "/index.html";
    auto resp = files_->serve(r);
    EXPECT_EQ(resp.status, 405);
    EXPECT_EQ(header(resp, "Allow"), "GET, HEAD");
    r.method = "HEAD";
    resp = files_->serve(r);
    EXPECT_EQ(resp.status, 200);
    EXPECT_EQ(resp.body, "");
}

TEST_F(StaticFilesTest, RevalidatesWithTheETag) {
    auto first = get("/index.html");
    EXPECT_EQ(header(first, "Cache-Control"), "no-cache");
    std::string tag = header(first, "ETag");
    ASSERT_FALSE(tag.empty());
    auto again = get("/index.html", tag);
    EXPECT_EQ(again.status, 304);
    EXPECT_EQ(again.body, "");
    EXPECT_EQ(get("/index.html", "\"x\"").status, 200);
    std::ofstream(root_ + "/index.html") << "index, longer now";
    EXPECT_EQ(get("/index.html", tag).status, 200);
}

TEST(ContentType, ByExtension) {
    EXPECT_EQ(content_type_of("a.css"), "text/css; charset=utf-8");
    EXPECT_EQ(content_type_of("a.svg"), "image/svg+xml");
    EXPECT_EQ(content_type_of("a.json"), "application/json");
    EXPECT_EQ(content_type_of("a.png"), "image/png");
    EXPECT_EQ(content_type_of("a"), "application/octet-stream");
    EXPECT_EQ(content_type_of(".js"), "application/octet-stream");
    EXPECT_EQ(content_type_of("a.js.gz"), "application/octet-stream");
}

TEST(Docroot, ConfiguredOrNamedInTheError) {
    test::TempDir dir;
    std::string err;
    EXPECT_EQ(resolve_docroot(dir.path(), err), std::filesystem::canonical(dir.path()).string());
    EXPECT_EQ(err, "");
    EXPECT_EQ(resolve_docroot(dir.path() + "/none", err), "");
    EXPECT_NE(err.find(dir.path() + "/none"), std::string::npos) << err;
    EXPECT_NE(err.find("dashboard.docroot"), std::string::npos) << err;
}

}  // namespace
}  // namespace mqttd::api
