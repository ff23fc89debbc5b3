// THE PARITY TEST: every case of parity_cases.json runs through the real TypeScript SDK
// (@daytonaio/sdk@0.218.0, via tests/node/image_parity.js) and through cairn::Image in the same
// directory, and the Dockerfile text, context list, context hashes and context archives (or the
// error class and message) must be identical byte for byte.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <cstdio>
#include <filesystem>

#include "cairn/common/encoding.h"
#include "cairn/common/fs.h"
#include "cairn/common/json.h"
#include "cairn/image/context.h"
#include "cairn/image/image.h"
#include "cairn/image/quote.h"
#include "test_util.h"

namespace cairn {
namespace {

namespace fs = std::filesystem;
using ::cairn::testing::ScopedWorkDir;

const std::string kSourceDir = CAIRN_SOURCE_DIR;
const std::string kCasesFile = kSourceDir + "/tests/image/parity_cases.json";
const std::string kNodeDir = kSourceDir + "/tests/node";

OrderedJson loadCases() {
  Result<std::string> text = readFile(kCasesFile);
  if (!text.ok()) return OrderedJson::array();
  Result<OrderedJson> parsed = parseOrderedJson(*text);
  return parsed.ok() ? *parsed : OrderedJson::array();
}

const OrderedJson& cases() {
  static const OrderedJson kCases = loadCases();
  return kCases;
}

std::vector<std::string> caseNames() {
  std::vector<std::string> names;
  for (const OrderedJson& c : cases())
    names.push_back(c["name"].get<std::string>());
  return names;
}

std::string replaceAll(std::string s, std::string_view from, std::string_view to) {
  for (std::size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

OrderedJson substRoot(const OrderedJson& v, const std::string& root) {
  if (v.is_string()) return replaceAll(v.get<std::string>(), "@ROOT@", root);
  if (v.is_array()) {
    OrderedJson out = OrderedJson::array();
    for (const OrderedJson& x : v)
      out.push_back(substRoot(x, root));
    return out;
  }
  if (v.is_object()) {
    OrderedJson out = OrderedJson::object();
    for (const auto& [k, x] : v.items())
      out[k] = substRoot(x, root);
    return out;
  }
  return v;
}

void createFiles(const OrderedJson& files, const fs::path& root) {
  for (const auto& [rel, spec] : files.items()) {
    fs::path p = root / rel;
    fs::create_directories(p.parent_path());
    if (spec.is_string()) {
      ASSERT_OK(writeFileDurable(p, replaceAll(spec.get<std::string>(), "@ROOT@", root.string())));
      continue;
    }
    if (spec.contains("dir")) {
      fs::create_directories(p);
    } else if (spec.contains("symlink")) {
      ASSERT_EQ(::symlink(spec["symlink"].get<std::string>().c_str(), p.c_str()), 0) << p;
    } else if (spec.contains("hardlink")) {
      ASSERT_EQ(::link((root / spec["hardlink"].get<std::string>()).c_str(), p.c_str()), 0) << p;
    } else {
      std::string content;
      if (spec.contains("size")) {
        std::size_t n = spec["size"].get<std::size_t>();
        for (std::size_t i = 0; i < n; ++i)
          content += static_cast<char>('a' + i % 23);
      } else {
        content = spec["content"].get<std::string>();
      }
      ASSERT_OK(writeFileDurable(p, content));
      if (spec.contains("mode")) {
        ::chmod(p.c_str(),
                static_cast<mode_t>(std::stoul(spec["mode"].get<std::string>(), nullptr, 8)));
      }
      if (spec.contains("mtime")) {
        double t = spec["mtime"].get<double>();
        struct timespec ts[2];
        ts[0].tv_sec = ts[1].tv_sec = static_cast<time_t>(t);
        ts[0].tv_nsec = ts[1].tv_nsec =
            static_cast<long>((t - static_cast<double>(ts[0].tv_sec)) * 1e9);
        ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), ts, AT_SYMLINK_NOFOLLOW), 0);
      }
    }
  }
}

// Runs the SDK side; returns its JSON output.
Result<OrderedJson> runNode(const std::string& name, const fs::path& dir) {
  std::string cmd =
      "cd " + shellQuote(dir.string()) + " && HOME=" + shellQuote((dir / "home").string()) +
      " NODE_NO_WARNINGS=1 node " + shellQuote(kNodeDir + "/image_parity.js") + " " +
      shellQuote(kCasesFile) + " " + shellQuote(name) + " " + shellQuote(dir.string());
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) return internalError("popen failed");
  std::string out;
  char buf[65536];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0)
    out.append(buf, n);
  int rc = ::pclose(pipe);
  if (rc != 0) return internalError("node exited with status " + std::to_string(rc) + ": " + out);
  return parseOrderedJson(out);
}

PipInstallOptions pipOptions(const OrderedJson& o) {
  PipInstallOptions p;
  if (!o.is_object()) return p;
  if (o.contains("findLinks")) p.findLinks = o["findLinks"].get<std::vector<std::string>>();
  if (o.contains("indexUrl")) p.indexUrl = o["indexUrl"].get<std::string>();
  if (o.contains("extraIndexUrls"))
    p.extraIndexUrls = o["extraIndexUrls"].get<std::vector<std::string>>();
  if (o.contains("pre")) p.pre = o["pre"].get<bool>();
  if (o.contains("extraOptions")) p.extraOptions = o["extraOptions"].get<std::string>();
  return p;
}

ContextOptions contextOptions(const OrderedJson& o) {
  ContextOptions c;
  if (o.is_object() && o.contains("strictContext"))
    c.strictContext = o["strictContext"].get<bool>();
  return c;
}

std::string str(const OrderedJson& args, std::size_t i) {
  return i < args.size() && args[i].is_string() ? args[i].get<std::string>() : std::string();
}
OrderedJson arg(const OrderedJson& args, std::size_t i) {
  return i < args.size() ? args[i] : OrderedJson();
}

// Applies one op to *img (or creates it); the C++ mirror of image_parity.js.
void applyOp(const std::string& method, const OrderedJson& args, std::optional<Image>* img) {
  if (method == "base") {
    *img = Image::base(str(args, 0));
  } else if (method == "debianSlim") {
    *img = args.empty() ? Image::debianSlim() : Image::debianSlim(str(args, 0));
  } else if (method == "fromDockerfile") {
    *img = Image::fromDockerfile(str(args, 0), contextOptions(arg(args, 1)));
  } else if (method == "pipInstall") {
    (*img)->pipInstall(JsValue(arg(args, 0)), pipOptions(arg(args, 1)));
  } else if (method == "pipInstallFromRequirements") {
    (*img)->pipInstallFromRequirements(str(args, 0), pipOptions(arg(args, 1)));
  } else if (method == "pipInstallFromPyproject") {
    PyprojectOptions o;
    static_cast<PipInstallOptions&>(o) = pipOptions(arg(args, 1));
    OrderedJson j = arg(args, 1);
    if (j.is_object() && j.contains("optionalDependencies")) {
      o.optionalDependencies = j["optionalDependencies"].get<std::vector<std::string>>();
    }
    (*img)->pipInstallFromPyproject(str(args, 0), o);
  } else if (method == "addLocalFile") {
    (*img)->addLocalFile(str(args, 0), str(args, 1));
  } else if (method == "addLocalDir") {
    (*img)->addLocalDir(str(args, 0), str(args, 1));
  } else if (method == "runCommands") {
    std::vector<RunCommand> commands;
    for (const OrderedJson& c : args) {
      if (c.is_array()) {
        commands.emplace_back(c.get<std::vector<std::string>>());
      } else {
        commands.emplace_back(c.get<std::string>());
      }
    }
    (*img)->runCommands(commands);
  } else if (method == "env") {
    (*img)->env(JsValue(arg(args, 0)));
  } else if (method == "workdir") {
    (*img)->workdir(str(args, 0));
  } else if (method == "entrypoint") {
    (*img)->entrypoint(JsValue(arg(args, 0)));
  } else if (method == "cmd") {
    (*img)->cmd(JsValue(arg(args, 0)));
  } else if (method == "dockerfileCommands") {
    (*img)->dockerfileCommands(arg(args, 0).get<std::vector<std::string>>(), str(args, 1),
                               contextOptions(arg(args, 2)));
  } else {
    FAIL() << "unknown op " << method;
  }
}

std::string firstDifference(const std::string& a, const std::string& b) {
  std::size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i])
    ++i;
  std::size_t from = i / 512 * 512;
  return "sizes " + std::to_string(a.size()) + " vs " + std::to_string(b.size()) +
         ", first difference at byte " + std::to_string(i) + " (block at " + std::to_string(from) +
         ")\n  sdk:   " +
         hexEncode(
             a.substr(from, std::min<std::size_t>(a.size() - std::min(from, a.size()), 512))) +
         "\n  cairn: " +
         hexEncode(b.substr(from, std::min<std::size_t>(b.size() - std::min(from, b.size()), 512)));
}

class ImageParityTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ImageParityTest, MatchesTheTypeScriptSdk) {
  ASSERT_TRUE(fs::is_directory(kNodeDir + "/node_modules/@daytonaio/sdk"))
      << kNodeDir << "/node_modules is missing: run scripts/install-deps (it runs `npm ci` in "
      << "tests/node) before the parity tests";
  const OrderedJson* c = nullptr;
  for (const OrderedJson& x : cases()) {
    if (x["name"] == GetParam()) c = &x;
  }
  ASSERT_NE(c, nullptr);

  ScopedWorkDir wd;
  const std::string root = wd.path().string();
  createFiles((*c)["files"], wd.path());
  if (::testing::Test::HasFatalFailure()) return;

  ASSERT_OK_AND_ASSIGN(OrderedJson sdk, runNode(GetParam(), wd.path()));

  OrderedJson ours = OrderedJson::object();
  std::optional<Image> img;
  try {
    for (const OrderedJson& op : (*c)["ops"]) {
      OrderedJson args = OrderedJson::array();
      for (std::size_t i = 1; i < op.size(); ++i)
        args.push_back(substRoot(op[i], root));
      applyOp(op[0].get<std::string>(), args, &img);
    }
  } catch (const DaytonaNotFoundError& e) {
    ours["error"] = {{"name", "DaytonaNotFoundError"}, {"message", e.what()}};
  } catch (const DaytonaInvalidArgumentError& e) {
    ours["error"] = {{"name", "DaytonaInvalidArgumentError"}, {"message", e.what()}};
  } catch (const DaytonaError& e) {
    ours["error"] = {{"name", "DaytonaError"}, {"message", e.what()}};
  }

  if (sdk.contains("error") || ours.contains("error")) {
    EXPECT_EQ(ours.value("error", OrderedJson()).dump(), sdk.value("error", OrderedJson()).dump());
    return;
  }
  EXPECT_EQ(img->dockerfile(), sdk["dockerfile"].get<std::string>());
  const auto& list = img->contextList();
  ASSERT_EQ(list.size(), sdk["contextList"].size()) << sdk["contextList"].dump();
  for (std::size_t i = 0; i < list.size(); ++i) {
    SCOPED_TRACE("context entry " + std::to_string(i) + ": " + list[i].sourcePath);
    EXPECT_EQ(list[i].sourcePath, sdk["contextList"][i]["sourcePath"].get<std::string>());
    EXPECT_EQ(list[i].archivePath, sdk["contextList"][i]["archivePath"].get<std::string>());
    const OrderedJson& expected = sdk["entries"][i];
    Result<std::string> hash = contextHash(list[i]);
    if (expected.contains("error")) {
      ASSERT_FALSE(hash.ok());
      EXPECT_EQ(hash.status().message(), expected["error"].get<std::string>());
      continue;
    }
    ASSERT_OK(hash);
    EXPECT_EQ(*hash, expected["hash"].get<std::string>());
    if (expected.contains("archiveError")) {
      // The SDK cannot archive this entry (e.g. an archive path that is not a suffix of the
      // source path); Cairn must fail too rather than upload something else.
      EXPECT_FALSE(contextArchive(list[i]).ok()) << expected["archiveError"];
      continue;
    }
    ASSERT_OK_AND_ASSIGN(std::string want, base64Decode(expected["archive"].get<std::string>()));
    ASSERT_OK_AND_ASSIGN(std::string got, contextArchive(list[i]));
    EXPECT_TRUE(got == want) << firstDifference(want, got);
    ASSERT_OK_AND_ASSIGN(std::uint64_t size, contextArchiveSize(list[i]));
    EXPECT_EQ(size, got.size());
  }
}

INSTANTIATE_TEST_SUITE_P(SdkCases, ImageParityTest, ::testing::ValuesIn(caseNames()),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           return param_info.param;
                         });

TEST(ImageParityTableTest, HasAtLeastFortyCases) {
  EXPECT_GE(cases().size(), 40u) << kCasesFile;
}

}  // namespace
}  // namespace cairn
