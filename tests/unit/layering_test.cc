// The layering rule of README.md ("How it is built"), checked on every #include of src/**
// and include/uringrpc/*.h: a failure names the file, the line and the rule it breaks.
// Part of unit-tests, so `make test` runs it; it reads the tree from the working directory.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

// The layers, bottom first. A layer may include any layer at or below its own rank
// (skipping down is fine), never one above. server → rpc → http2 → transport → loop → base.
const std::vector<std::string> kLayers = {"base", "loop", "transport", "http2", "rpc", "server"};
// Folders of src/ that sit on top of the library and use only the public API, as a user would.
const std::set<std::string> kPublicApiOnly = {"services", "codegen"};

// Public headers with parts defined out of line, and the file (under src/) that defines
// them: its folder is the header's layer. A layer may include a public header only if
// everything it declares is defined at or below it; a public header also inherits the
// layers of the public headers it includes. A header not listed is header-only and any
// layer may include it. The test checks that each file named here exists.
const std::map<std::string, std::string> kPublicDefinedIn = {
    {"bytes.h", "base/bytes.cc"},
    {"frame_pool.h", "base/small_pool.cc"},  // frame_allocate
    {"task.h", "rpc/server_context.cc"},     // throw_returned_status
    {"async.h", "loop/async.cc"},      // sleep_for, offload
    {"tls.h", "transport/tls_context.cc"},
    {"status.h", "rpc/status.cc"},
    {"server_context.h", "rpc/server_context.cc"},
    {"server.h", "server/server.cc"},
    {"reflection.h", "services/reflection_service.cc"},  // on top: no layer may include it
    {"notify.h", "loop/notifier.cc"},
    {"wake.h", "loop/wake.cc"},  // ShardRef, Event, Promise, Channel, from_callback
    {"health.h", "services/health_service.cc"},  // on top, like reflection.h
    {"systemd.h", "server/systemd_sockets.cc"},
    {"interceptor.h", "rpc/interceptor_chain.cc"},
};

struct Include {
  int line;
  std::string path;  // as written between the quotes or angle brackets
};

struct Violation {
  std::string file;
  int line;
  std::string rule;
};

// The path of an #include line ("x/y.h" or <x/y.h>), or "" for any other line. Parsed by
// hand: <regex> trips g++ 12's -Wmaybe-uninitialized under the sanitizer flags.
std::string included_path(const std::string& line) {
  size_t at = line.find_first_not_of(" \t");
  if (at == std::string::npos || line[at] != '#') return "";
  at = line.find_first_not_of(" \t", at + 1);
  if (at == std::string::npos || line.compare(at, 7, "include") != 0) return "";
  at = line.find_first_not_of(" \t", at + 7);
  if (at == std::string::npos || (line[at] != '"' && line[at] != '<')) return "";
  size_t end = line.find(line[at] == '"' ? '"' : '>', at + 1);
  if (end == std::string::npos || end == at + 1) return "";
  return line.substr(at + 1, end - at - 1);
}

std::vector<Include> includes_of(const std::string& text) {
  std::vector<Include> out;
  std::istringstream in(text);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    std::string path = included_path(line);
    if (!path.empty()) out.push_back({n, path});
  }
  return out;
}

std::string first_component(const std::string& path) {
  auto slash = path.find('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

int rank_of(const std::string& layer) {
  for (size_t i = 0; i < kLayers.size(); ++i) {
    if (kLayers[i] == layer) return static_cast<int>(i);
  }
  return -1;
}

// The rank of the folder that defines a public header: a layer's, or one above them all
// for src/services/ (a header defined there is for users, not for the library's layers).
int definer_rank(const std::string& folder) {
  return kPublicApiOnly.count(folder) ? static_cast<int>(kLayers.size()) : rank_of(folder);
}

// The checker, given every public header's text (name → contents) for the owners'
// closure; pure, so the tests below can feed it a tree that breaks the rule.
class Checker {
 public:
  explicit Checker(std::map<std::string, std::string> public_headers) : public_(std::move(public_headers)) {}

  // Rank of the highest layer whose definitions a public header needs (-1: header-only).
  int public_rank(const std::string& name) {
    if (auto it = memo_.find(name); it != memo_.end()) return it->second;
    memo_[name] = -1;  // a cycle of public includes adds nothing
    int r = -1;
    if (auto it = kPublicDefinedIn.find(name); it != kPublicDefinedIn.end()) r = definer_rank(first_component(it->second));
    if (auto it = public_.find(name); it != public_.end()) {
      for (const auto& inc : includes_of(it->second)) {
        if (first_component(inc.path) == "uringrpc") r = std::max(r, public_rank(inc.path.substr(9)));
      }
    }
    return memo_[name] = r;
  }

  std::string owner_of(const std::string& name) {
    int r = public_rank(name);
    if (r >= static_cast<int>(kLayers.size())) return "src/services (on top of the library)";
    return r < 0 ? std::string("no layer") : kLayers[r];
  }

  // path is relative to the repository root ("src/loop/shard.h", "include/uringrpc/task.h").
  std::vector<Violation> check(const std::string& path, const std::string& text) {
    std::vector<Violation> out;
    auto add = [&](int line, std::string rule) { out.push_back({path, line, std::move(rule)}); };
    const bool is_public = path.rfind("include/uringrpc/", 0) == 0;
    std::string layer;
    if (!is_public) {
      layer = first_component(path.substr(4));  // after "src/"
      if (rank_of(layer) < 0 && !kPublicApiOnly.count(layer)) {
        add(1, "src/" + layer + "/ is not a layer of server > rpc > http2 > transport > loop > base; "
               "add it to the rule (README.md, tests/unit/layering_test.cc)");
        return out;
      }
    }
    for (const auto& inc : includes_of(text)) {
      const std::string top = first_component(inc.path);
      if (inc.path.find("..") != std::string::npos) {
        add(inc.line, "\"" + inc.path + "\": include by layer path (\"loop/shard.h\"), never by a relative ../ path");
        continue;
      }
      const bool to_layer = rank_of(top) >= 0 || kPublicApiOnly.count(top);
      if (is_public) {
        if (to_layer) {
          add(inc.line, "public header includes \"" + inc.path +
                            "\": public headers may include only public headers (uringrpc/...), never src/");
        }
        continue;
      }
      if (kPublicApiOnly.count(layer)) {
        if (to_layer && top != layer) {  // its own folder's headers are its own business
          add(inc.line, "src/" + layer + "/ includes \"" + inc.path + "\": it may use only the public API (uringrpc/...)");
        }
        continue;
      }
      if (top == "uringrpc") {
        int r = public_rank(inc.path.substr(9));
        if (r > rank_of(layer)) {
          add(inc.line, layer + " includes \"" + inc.path + "\", which is defined in " + owner_of(inc.path.substr(9)) +
                            ", a layer above " + layer + ": an arrow between layers only points down");
        }
      } else if (rank_of(top) > rank_of(layer)) {
        add(inc.line, layer + " includes \"" + inc.path + "\" of " + top + ", a layer above " + layer +
                          ": an arrow between layers only points down (make the upward call a callback registered from above)");
      } else if (kPublicApiOnly.count(top)) {
        add(inc.line, layer + " includes \"" + inc.path + "\": src/" + top + "/ sits on top of the library");
      }
    }
    return out;
  }

 private:
  std::map<std::string, std::string> public_;
  std::map<std::string, int> memo_;
};

std::string read_all(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The repository root: the working directory under `make test`, or one above it.
std::optional<fs::path> find_root() {
  for (fs::path d = fs::current_path(); !d.empty(); d = d.parent_path()) {
    if (fs::is_directory(d / "src") && fs::is_directory(d / "include/uringrpc")) return d;
    if (d == d.parent_path()) break;
  }
  return std::nullopt;
}

std::map<std::string, std::string> public_headers_of(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::directory_iterator(root / "include/uringrpc")) {
    if (e.path().extension() == ".h") out[e.path().filename().string()] = read_all(e.path());
  }
  return out;
}

std::string describe(const std::vector<Violation>& v) {
  std::string s;
  for (const auto& x : v) s += x.file + ":" + std::to_string(x.line) + ": " + x.rule + "\n";
  return s;
}

TEST(Layering, SourceTreeIncludesPointOnlyDown) {
  auto root = find_root();
  ASSERT_TRUE(root) << "run from the repository root (no src/ and include/uringrpc/ above "
                    << fs::current_path() << ")";
  auto headers = public_headers_of(*root);
  Checker checker(headers);
  for (const auto& [name, file] : kPublicDefinedIn) {
    EXPECT_TRUE(headers.count(name)) << "tests/unit/layering_test.cc: kPublicDefinedIn names uringrpc/" << name
                                     << ", which no longer exists";
    EXPECT_TRUE(fs::is_regular_file(*root / "src" / file))
        << "tests/unit/layering_test.cc: kPublicDefinedIn says uringrpc/" << name << " is defined in src/" << file
        << ", which does not exist: say where it moved";
    EXPECT_GE(definer_rank(first_component(file)), 0) << "kPublicDefinedIn: src/" << file << " is not in a layer";
  }
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(*root / "src")) {
    auto ext = e.path().extension();
    if (e.is_regular_file() && (ext == ".h" || ext == ".cc")) files.push_back(e.path());
  }
  for (const auto& [name, text] : headers) files.push_back(*root / "include/uringrpc" / name);
  ASSERT_GT(files.size(), 20u) << "found too few sources under " << *root;
  std::vector<Violation> all;
  for (const auto& f : files) {
    auto v = checker.check(fs::relative(f, *root).string(), read_all(f));
    all.insert(all.end(), v.begin(), v.end());
  }
  for (const auto& v : all) ADD_FAILURE_AT(v.file.c_str(), v.line) << v.file << ":" << v.line << ": " << v.rule;
  EXPECT_TRUE(all.empty()) << all.size() << " include(s) break the layering rule (each listed above)";
}

// The checker itself must be able to fail: each rule on a tree that breaks it.
Checker synthetic_checker() {
  return Checker({{"bytes.h", "#pragma once\n"},
                  {"status.h", "#pragma once\n"},
                  {"server_context.h", "#include \"uringrpc/bytes.h\"\n#include \"uringrpc/status.h\"\n"},
                  {"stream.h", "#include \"uringrpc/server_context.h\"\n"},
                  {"errors.h", "#pragma once\n"}});
}

TEST(Layering, FlagsAnIncludeThatPointsUp) {
  auto v = synthetic_checker().check("src/loop/shard.h", "#pragma once\n\n#include \"loop/ring.h\"\n#include \"rpc/call.h\"\n");
  ASSERT_EQ(v.size(), 1u) << describe(v);
  EXPECT_EQ(v[0].file, "src/loop/shard.h");
  EXPECT_EQ(v[0].line, 4);
  EXPECT_NE(v[0].rule.find("loop includes \"rpc/call.h\" of rpc, a layer above loop"), std::string::npos) << v[0].rule;
}

TEST(Layering, AllowsSkippingDownALayer) {
  auto v = synthetic_checker().check("src/rpc/call.h", "#include \"loop/shard.h\"\n#include \"base/log.h\"\n"
                                                       "#include \"uringrpc/errors.h\"\n#include \"call_state.h\"\n");
  EXPECT_TRUE(v.empty()) << describe(v);
}

TEST(Layering, FlagsAPublicHeaderDefinedAboveTheIncluder) {
  Checker c = synthetic_checker();
  auto v = c.check("src/transport/connection.h", "#include \"uringrpc/bytes.h\"\n#include \"uringrpc/stream.h\"\n");
  ASSERT_EQ(v.size(), 1u) << describe(v);  // stream.h needs rpc through server_context.h
  EXPECT_EQ(v[0].line, 2);
  EXPECT_NE(v[0].rule.find("defined in rpc"), std::string::npos) << v[0].rule;
}

TEST(Layering, FlagsALayerIncludingAHeaderDefinedInServices) {
  Checker c({{"reflection.h", "#pragma once\n"}, {"errors.h", "#pragma once\n"}});
  auto v = c.check("src/server/server.cc", "#include \"uringrpc/errors.h\"\n#include \"uringrpc/reflection.h\"\n");
  ASSERT_EQ(v.size(), 1u) << describe(v);
  EXPECT_EQ(v[0].line, 2);
  EXPECT_NE(v[0].rule.find("defined in src/services"), std::string::npos) << v[0].rule;
  EXPECT_TRUE(c.check("src/services/health.cc", "#include \"uringrpc/reflection.h\"\n").empty());
}

TEST(Layering, FlagsALayerThatIncludesABuiltInServiceHeader) {
  Checker c({{"health.h", "#pragma once\n"}, {"uringrpc.h", "#include \"uringrpc/health.h\"\n"}});
  auto v = c.check("src/server/server.cc", "#include \"uringrpc/uringrpc.h\"\n");
  ASSERT_EQ(v.size(), 1u) << describe(v);
  EXPECT_NE(v[0].rule.find("defined in src/services"), std::string::npos) << v[0].rule;
  EXPECT_TRUE(c.check("src/services/health_service.cc", "#include \"uringrpc/health.h\"\n").empty());
}

TEST(Layering, FlagsAPublicHeaderThatIncludesSrc) {
  auto v = synthetic_checker().check("include/uringrpc/bytes.h", "#pragma once\n#include \"base/small_pool.h\"\n");
  ASSERT_EQ(v.size(), 1u) << describe(v);
  EXPECT_EQ(v[0].line, 2);
  EXPECT_NE(v[0].rule.find("public headers may include only public headers"), std::string::npos) << v[0].rule;
}

TEST(Layering, FlagsRelativePathsAndUnknownFolders) {
  Checker c = synthetic_checker();
  auto v = c.check("src/http2/session.cc", "#include \"../rpc/call.h\"\n");
  ASSERT_EQ(v.size(), 1u) << describe(v);
  EXPECT_NE(v[0].rule.find("relative"), std::string::npos) << v[0].rule;
  v = c.check("src/misc/thing.cc", "#include \"base/log.h\"\n");
  ASSERT_EQ(v.size(), 1u) << describe(v);
  EXPECT_NE(v[0].rule.find("not a layer"), std::string::npos) << v[0].rule;
  v = c.check("src/services/health.cc", "#include \"uringrpc/errors.h\"\n#include \"rpc/call.h\"\n");
  ASSERT_EQ(v.size(), 1u) << describe(v);
  EXPECT_EQ(v[0].line, 2);
}

}  // namespace
