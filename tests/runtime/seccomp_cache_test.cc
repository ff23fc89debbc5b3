// The executor's cache of compiled seccomp filters (root, crun, busybox-static; CI runs as
// root): the filter of the first container of a profile is kept (compiled by crun through
// `create`, or by Cairn itself with compileSeccompFilter; the tests accept either); later ones
// get it precompiled (run.oci.seccomp_bpf_data) and are confined exactly as before.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>

#include <map>

#include "cairn/common/encoding.h"
#include "cairn/common/fs.h"
#include "cairn/common/json.h"
#include "cairn/runtime/container_spec.h"
#include "cairn/runtime/executor.h"
#include "cairn/runtime/seccomp_cache.h"
#include "cairn/runtime/seccomp_profile.h"
#include "cairn/testing/status_matchers.h"
#include "probe_rootfs.h"
#include "seccomp_bpf_eval.h"

namespace cairn::runtime {
namespace {

namespace fs = std::filesystem;
using ::cairn::testing::IsOk;

std::string cachedFilter(const fs::path& file) {
  auto data = readFile(file);
  if (!data.ok()) return "";
  auto parsed = parseSeccompCacheFile(*data);
  return parsed ? parsed->filter : "";
}

class SeccompCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to mount overlays and create containers";
    ASSERT_OK_AND_ASSIGN(dir_, TempDir::create("cairn-seccomp-cache"));
    rootfs_ = dir_->path() / "rootfs";
    ASSERT_OK(makeProbeRootfs(rootfs_));
    ExecutorOptions options;
    options.work_root = dir_->path() / "work";
    options.state_root = dir_->path() / "state";
    // Keeps each run's bundle (as .trash-<id>) so the test can read the config crun got.
    options.defer_ephemeral_removal = true;
    ASSERT_OK_AND_ASSIGN(executor_, Executor::create(options));
    cache_ = executor_->options().seccomp_cache_dir;
  }

  struct Run {
    std::map<std::string, int> errnos;  // "<probe>=<errno>" lines of the probe
    bool precompiled = false;           // the config carried run.oci.seccomp_bpf_data
    std::string filter;                 // ... and this program
  };

  // The probe under `seccomp`, attached (`cairn run`'s path) or captured (a build step's).
  Run probe(std::string_view seccomp, bool attached = false) {
    ContainerSpec s;
    s.rootfs.lower_dirs = {rootfs_};
    s.process.args = {"/bin/probe", "keyctl", "clone3", "fork"};
    s.network = NetworkMode::kNone;
    auto option = parseSeccompOption(seccomp);
    EXPECT_THAT(option.status(), IsOk());
    if (option.ok()) s.seccomp = *option;
    Run r;
    RunIo io;
    std::string out_path = (dir_->path() / "attached.out").string();
    UniqueFd out_fd;
    if (attached) {
      // An attached run writes to this process's stdout: point fd 1 at a file meanwhile.
      out_fd.reset(open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
      io.attach = true;
    }
    std::vector<std::string> lines;
    io.on_line = [&lines](OutputStream stream, std::string_view line) {
      if (stream == OutputStream::kStdout) lines.emplace_back(line);
    };
    int saved_stdout = attached ? dup(1) : -1;
    if (attached) dup2(out_fd.get(), 1);
    auto result = executor_->run(s, io);
    if (attached) {
      fflush(stdout);
      dup2(saved_stdout, 1);
      close(saved_stdout);
      auto text = readFile(out_path);
      if (text.ok()) {
        for (std::size_t start = 0, nl; (nl = text->find('\n', start)) != std::string::npos;
             start = nl + 1)
          lines.push_back(text->substr(start, nl - start));
      }
    }
    EXPECT_THAT(result.status(), IsOk());
    if (!result.ok()) return r;
    EXPECT_EQ(result->status.exit_code, 0);
    for (const std::string& line : lines) {
      auto eq = line.find('=');
      if (eq != std::string::npos) r.errnos[line.substr(0, eq)] = std::stoi(line.substr(eq + 1));
    }
    fs::path config =
        executor_->options().work_root / (".trash-" + result->container_id) / "config.json";
    auto text = readFile(config);
    EXPECT_THAT(text.status(), IsOk()) << config;
    if (text.ok()) {
      auto json = parseJson(*text);
      EXPECT_THAT(json.status(), IsOk());
      if (json.ok() && json->contains("annotations") &&
          (*json)["annotations"].contains("run.oci.seccomp_bpf_data")) {
        r.precompiled = true;
        auto filter =
            base64Decode((*json)["annotations"]["run.oci.seccomp_bpf_data"].get<std::string>());
        EXPECT_THAT(filter.status(), IsOk());
        if (filter.ok()) r.filter = std::move(*filter);
      }
    }
    return r;
  }

  std::vector<fs::path> cacheFiles() {
    std::vector<fs::path> files;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(cache_, ec))
      files.push_back(e.path());
    return files;
  }

  std::optional<TempDir> dir_;
  fs::path rootfs_;
  fs::path cache_;
  std::unique_ptr<Executor> executor_;
};

TEST_F(SeccompCacheTest, TheSecondContainerGetsTheFilterPrecompiledAndIsConfinedAlike) {
  EXPECT_TRUE(cacheFiles().empty());
  Run first = probe("default");
  ASSERT_EQ(cacheFiles().size(), 1u);
  const std::string cached = cachedFilter(cacheFiles().front());
  // Cairn compiled the profile for the first run already (crun compiles nothing) and cached it.
  EXPECT_TRUE(first.precompiled);
  EXPECT_EQ(first.filter, cached);
  for (bool attached : {false, true}) {
    Run again = probe("default", attached);
    EXPECT_TRUE(again.precompiled) << "attached=" << attached;
    EXPECT_EQ(again.filter, cached) << "attached=" << attached;
    EXPECT_EQ(again.errnos["keyctl"], EPERM);
    EXPECT_EQ(again.errnos["clone3"], ENOSYS);
    EXPECT_EQ(again.errnos["fork"], 0);
    EXPECT_EQ(again.errnos, first.errnos);
  }
  EXPECT_EQ(cacheFiles().size(), 1u);
}

TEST_F(SeccompCacheTest, EachProfileHasItsOwnFilter) {
  fs::path profile = dir_->path() / "allow-keyctl.json";
  ASSERT_OK(writeFileDurable(profile, R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
    {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]})"));
  Run confined = probe("default");
  ASSERT_EQ(cacheFiles().size(), 1u);
  const std::string default_filter = cachedFilter(cacheFiles().front());
  Run custom = probe(profile.string());
  // A new profile is compiled, not served another's filter.
  EXPECT_TRUE(custom.precompiled);
  EXPECT_NE(custom.filter, default_filter);
  EXPECT_EQ(cacheFiles().size(), 2u);
  Run custom_again = probe(profile.string());
  EXPECT_TRUE(custom_again.precompiled);
  EXPECT_NE(custom_again.filter, default_filter);
  EXPECT_EQ(custom_again.errnos["keyctl"], 0);  // the custom profile allows what default denies
  EXPECT_EQ(confined.errnos["keyctl"], EPERM);
  // Unconfined has no filter at all, so nothing to cache.
  Run unconfined = probe("unconfined");
  EXPECT_FALSE(unconfined.precompiled);
  EXPECT_EQ(unconfined.errnos["keyctl"], 0);
  EXPECT_EQ(cacheFiles().size(), 2u);
}

TEST_F(SeccompCacheTest, ADamagedCacheFileIsAMissNotAFilter) {
  probe("default");
  ASSERT_EQ(cacheFiles().size(), 1u);
  const fs::path file = cacheFiles().front();
  ASSERT_OK_AND_ASSIGN(std::string good, readFile(file));
  for (const std::string& damaged :
       {good.substr(0, good.size() - 3), good.substr(0, good.size() / 2), std::string("junk"),
        std::string()}) {
    ASSERT_OK(writeFileDurable(file, damaged));
    Run r = probe("default");
    // Never the damaged bytes: Cairn compiled the profile again.
    EXPECT_TRUE(r.precompiled);
    EXPECT_EQ(r.filter, cachedFilter(file)) << damaged.size() << " bytes";
    EXPECT_EQ(r.errnos["keyctl"], EPERM);
    // The miss compiled it again and rewrote the entry whole.
    EXPECT_EQ(readFile(file).valueOr(""), good);
  }
}

// compileSeccompFilter against the real thing: the filter in the cache (compiled from the
// default profile's section by crun, or by Cairn) answers every call as Cairn's own compile
// does, in either layout; and crun, handed the binary-tree layout, confines the container alike.
TEST_F(SeccompCacheTest, CompileSeccompFilterMatchesCrunsFilterAndCrunRunsTheTreeLayout) {
  Run first = probe("default");
  ASSERT_EQ(cacheFiles().size(), 1u);
  const fs::path file = cacheFiles().front();
  ASSERT_OK_AND_ASSIGN(std::string data, readFile(file));
  std::optional<SeccompCacheFile> cached = parseSeccompCacheFile(data);
  ASSERT_TRUE(cached.has_value());
  // Compiled by this libseccomp, and keyed by it: another version may resolve more names.
  ASSERT_OK_AND_ASSIGN(std::string compiler, seccompCompilerVersion());
  EXPECT_THAT(cached->key, ::testing::HasSubstr("cairn-tree " + compiler + "\n"));
  OrderedJson section = defaultSeccompSection(defaultCapabilities());
  ASSERT_OK_AND_ASSIGN(std::string linear,
                       compileSeccompFilter(section, SeccompFilterLayout::kLinear));
  ASSERT_OK_AND_ASSIGN(std::string tree,
                       compileSeccompFilter(section, SeccompFilterLayout::kBinaryTree));
  std::vector<std::string> report;
  EXPECT_EQ(countDifferences(cached->filter, linear, &report), 0u);
  EXPECT_EQ(countDifferences(cached->filter, tree, &report), 0u);
  for (const std::string& line : report)
    ADD_FAILURE() << line;

  ASSERT_OK(writeFileDurable(file, formatSeccompCacheFile(cached->key, tree)));
  for (bool attached : {false, true}) {
    Run again = probe("default", attached);
    EXPECT_TRUE(again.precompiled) << "attached=" << attached;
    EXPECT_EQ(again.filter, tree) << "attached=" << attached;
    EXPECT_EQ(again.errnos["keyctl"], EPERM);
    EXPECT_EQ(again.errnos["clone3"], ENOSYS);
    EXPECT_EQ(again.errnos["fork"], 0);
    EXPECT_EQ(again.errnos, first.errnos);
  }
}

}  // namespace
}  // namespace cairn::runtime
