// archiveApi(): libarchive is mapped on first use only, every function of the table resolves,
// a missing or wrong library is a clear FailedPrecondition, and that error is what applyLayerTar
// and createLayerTar return. This binary deliberately does not link libarchive (unlike
// layer_test, whose TarBuilder does), so the library it sees is the one archiveApi() loads.
#include "cairn/layer/archive_api.h"

#include <dlfcn.h>
#include <link.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "cairn/common/fs.h"
#include "cairn/layer/apply.h"
#include "cairn/layer/diff.h"
#include "cairn/layer/stream.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::layer {
namespace {

using ::cairn::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;
namespace fs = std::filesystem;

constexpr const char* kSoname = "libarchive.so.13";
// Set in the environment of a copy of this binary that BrokenLibrary… starts; see probe().
constexpr const char* kProbeEnv = "CAIRN_ARCHIVE_API_TEST_PROBE";

bool isMapped(const char* soname) {
  void* handle = ::dlopen(soname, RTLD_NOLOAD | RTLD_LAZY);
  if (handle == nullptr) return false;
  ::dlclose(handle);
  return true;
}

// Whether libarchive was mapped before any test ran, recorded during static initialization:
// order-independent proof that linking cairn::layer no longer maps it at program start.
const bool kMappedAtStart = isMapped(kSoname);

// In the copy started by BrokenLibrarySurfacesAsTheOperationsStatus, "libarchive.so.13" is
// another library (LD_LIBRARY_PATH is read by the dynamic loader at exec only, hence a new
// process). It runs both tar operations, prints "<operation> <code> <message>" lines and exits
// before GoogleTest starts.
int probe() {
  if (::getenv(kProbeEnv) == nullptr) return 0;
  char dir_template[] = "/tmp/archive-api-probe-XXXXXX";
  if (::mkdtemp(dir_template) == nullptr) _exit(2);
  fs::path dir = dir_template;
  StringSource empty("");
  Status applied = applyLayerTar(empty, dir).status();
  std::string tar;
  StringSink sink(&tar);
  Status diffed = createLayerTar(dir, sink).status();
  ::rmdir(dir.c_str());
  std::printf("apply %s %s\n", std::string(statusCodeName(applied.code())).c_str(),
              applied.message().c_str());
  std::printf("diff %s %s\n", std::string(statusCodeName(diffed.code())).c_str(),
              diffed.message().c_str());
  std::fflush(stdout);
  _exit(0);
}
[[maybe_unused]] const int kProbed = probe();

TEST(ArchiveApiTest, NotMappedUntilFirstUse) {
  EXPECT_FALSE(kMappedAtStart) << kSoname << " was mapped at program start";
  ASSERT_OK(archiveApi());
  EXPECT_TRUE(isMapped(kSoname));
}

TEST(ArchiveApiTest, ResolvesEveryFunction) {
  ASSERT_OK_AND_ASSIGN(const ArchiveApi* api, archiveApi());
  ASSERT_NE(api, nullptr);
  int resolved = 0;
#define CAIRN_EXPECT_RESOLVED(name)                     \
  EXPECT_NE(api->name, nullptr) << "archive_" << #name; \
  ++resolved;
  CAIRN_LAYER_ARCHIVE_FUNCTIONS(CAIRN_EXPECT_RESOLVED)
#undef CAIRN_EXPECT_RESOLVED
  EXPECT_EQ(resolved, 46);
  EXPECT_THAT(api->version_string(), StartsWith("libarchive 3."));
  // The table calls into a working library, not only non-null pointers.
  struct archive* a = api->write_new();
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(api->write_set_format_pax_restricted(a), ARCHIVE_OK);
  EXPECT_EQ(api->write_free(a), ARCHIVE_OK);
}

TEST(ArchiveApiTest, OneTableForAllThreads) {
  std::vector<const ArchiveApi*> seen(8, nullptr);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < seen.size(); ++i) {
    threads.emplace_back([&seen, i] {
      auto api = archiveApi();
      if (api.ok()) seen[i] = *api;
    });
  }
  for (auto& t : threads)
    t.join();
  ASSERT_OK_AND_ASSIGN(const ArchiveApi* api, archiveApi());
  for (const ArchiveApi* s : seen)
    EXPECT_EQ(s, api);
}

TEST(LoadedArchiveTest, SecondLoadSharesTheMappedCopy) {
  ASSERT_OK_AND_ASSIGN(const ArchiveApi* process_wide, archiveApi());
  ASSERT_OK_AND_ASSIGN(auto loaded, LoadedArchive::load(kSoname));
  EXPECT_NE(&loaded->api(), process_wide);
  // dlopen of a mapped soname returns the same library: the same functions.
  EXPECT_EQ(loaded->api().read_new, process_wide->read_new);
  EXPECT_EQ(loaded->api().entry_xattr_add_entry, process_wide->entry_xattr_add_entry);
}

TEST(LoadedArchiveTest, MissingLibraryIsAClearError) {
  EXPECT_THAT(LoadedArchive::load("libarchive-cairn-test-missing.so.13"),
              StatusIs(StatusCode::kFailedPrecondition,
                       HasSubstr("libarchive-cairn-test-missing.so.13 not found: install "
                                 "libarchive13")));
}

TEST(LoadedArchiveTest, LibraryWithoutTheFunctionsIsAClearError) {
  // zlib is mapped already (cairn::layer links it), and has no archive_* symbols.
  EXPECT_THAT(
      LoadedArchive::load("libz.so.1"),
      StatusIs(StatusCode::kFailedPrecondition, HasSubstr("libz.so.1 has no archive_read_new")));
}

TEST(ArchiveApiTest, LayerRoundTripThroughTheLoadedLibrary) {
  ASSERT_OK_AND_ASSIGN(TempDir tmp, TempDir::create("archive-api-test"));
  fs::path src = tmp.path() / "src";
  fs::path dst = tmp.path() / "dst";
  fs::create_directories(src / "etc");
  fs::create_directories(dst);
  ASSERT_OK(writeFileDurable(src / "etc" / "hostname", "sandbox\n", 0640));
  fs::create_symlink("etc/hostname", src / "name");

  std::string tar;
  StringSink sink(&tar);
  ASSERT_OK_AND_ASSIGN(DiffReport diff, createLayerTar(src, sink));
  EXPECT_EQ(diff.entries, 3u);
  EXPECT_EQ(diff.bytes, 8u);

  StringSource source(tar);
  ApplyOptions options;
  options.preserve_owner = false;
  options.whiteouts = WhiteoutMode::kFlatten;
  ASSERT_OK_AND_ASSIGN(ApplyReport applied, applyLayerTar(source, dst, options));
  EXPECT_EQ(applied.entries, 3u);
  EXPECT_EQ(applied.files, 1u);
  ASSERT_OK_AND_ASSIGN(std::string content, readFile(dst / "etc" / "hostname"));
  EXPECT_EQ(content, "sandbox\n");
  struct stat st {};
  ASSERT_EQ(::stat((dst / "etc" / "hostname").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(fs::read_symlink(dst / "name"), "etc/hostname");
}

// The path of a mapped library, from the dynamic loader's own record of it.
std::string mappedPath(const char* soname) {
  void* handle = ::dlopen(soname, RTLD_NOLOAD | RTLD_LAZY);
  if (handle == nullptr) return "";
  struct link_map* map = nullptr;
  std::string path;
  if (::dlinfo(handle, RTLD_DI_LINKMAP, &map) == 0 && map != nullptr) path = map->l_name;
  ::dlclose(handle);
  return path;
}

TEST(ArchiveApiTest, BrokenLibrarySurfacesAsTheOperationsStatus) {
  ASSERT_OK_AND_ASSIGN(TempDir tmp, TempDir::create("archive-api-test"));
  // "libarchive.so.13" in the child's LD_LIBRARY_PATH is zlib: it loads, but has no archive_*.
  std::string zlib = mappedPath("libz.so.1");
  ASSERT_FALSE(zlib.empty()) << "libz.so.1 is not mapped in this test";
  fs::create_symlink(zlib, tmp.path() / kSoname);
  std::string self = fs::read_symlink("/proc/self/exe");
  std::string command = std::string(kProbeEnv) + "=1 LD_LIBRARY_PATH='" + tmp.path().string() +
                        "' '" + self + "' 2>&1";
  FILE* child = ::popen(command.c_str(), "r");
  ASSERT_NE(child, nullptr);
  std::string output;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, child)) > 0;)
    output.append(buf, n);
  int status = ::pclose(child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;
  std::string expected_error = std::string(kSoname) + " has no archive_read_new";
  EXPECT_THAT(output, HasSubstr("apply FailedPrecondition " + expected_error)) << output;
  EXPECT_THAT(output, HasSubstr("diff FailedPrecondition " + expected_error)) << output;
}

}  // namespace
}  // namespace cairn::layer
