// `cairn base bootstrap` end to end: the real command runs mmdebstrap (bookworm minbase plus
// two tiny packages, from this machine's Debian mirror) into a temp data dir and pushes the
// image to a docker-registry the test starts. mmdebstrap takes 20-60 s and CTest runs every
// case in its own process, so one case runs the bootstrap once and checks everything about
// its result, in independent groups (a failing group does not hide the others).
#include <sys/stat.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <optional>

#include "cairn/common/crypto.h"
#include "cairn/common/fs.h"
#include "cairn/common/json.h"
#include "cairn/layer/compression.h"
#include "cairn/layer/stream.h"
#include "cairn/oci/catalog.h"
#include "cairn/registry/transfer.h"
#include "cairn/store/local_blob_store.h"
#include "cairn/testing/status_matchers.h"
#include "peer_tools.h"

namespace cairn::registry {
namespace {

namespace fs = std::filesystem;
using ::cairn::registry::peer::CommandResult;
using ::cairn::registry::peer::DockerRegistry;
using ::cairn::registry::peer::haveTool;
using ::cairn::registry::peer::run;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

const std::string kName = "test/debian-hello:bookworm";
const std::string kNormalized = "docker.io/test/debian-hello:bookworm";
// hello and netbase: small, no dependencies beyond minbase, and each leaves a file to look for.
const std::string kInclude = "hello,netbase";
// Generous: mmdebstrap downloads ~40 MB from the mirror; on a loaded machine it has taken 60 s.
constexpr std::chrono::seconds kBootstrapTimeout{900};

std::string cairnBinary() {
  return std::string(CAIRN_BINARY_DIR) + "/src/cli/cairn";
}

// What is missing for these tests to run at all (empty: nothing).
std::string missingPrerequisite() {
  if (::geteuid() != 0) return "mmdebstrap needs root here (CI runs as root)";
  for (const char* tool : {"mmdebstrap", "docker-registry", "skopeo", "curl"}) {
    if (!haveTool(tool)) return std::string(tool) + " is not installed (scripts/install-deps)";
  }
  if (!fs::exists(cairnBinary())) return "the cairn binary is not built (" + cairnBinary() + ")";
  return "";
}

class BootstrapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string missing = missingPrerequisite(); !missing.empty()) GTEST_SKIP() << missing;
    ASSERT_OK_AND_ASSIGN(auto tmp, TempDir::create("bootstrap"));
    tmp_.emplace(std::move(tmp));
    ASSERT_OK_AND_ASSIGN(registry_, DockerRegistry::start());
    remote_ = registry_->host() + "/test/debian-hello:bookworm";
    result_ = run({cairnBinary(), "--data-dir", dataDir().string(), "base", "bootstrap", "--suite",
                   "bookworm", "--variant", "minbase", "--include", kInclude, "--tag", kName,
                   "--push", remote_},
                  kBootstrapTimeout);
    ASSERT_EQ(result_.exit_code, 0) << result_.output;
    ASSERT_OK_AND_ASSIGN(blobs_, store::LocalBlobStore::open(dataDir()));
    ASSERT_OK_AND_ASSIGN(auto catalog, oci::ImageCatalog::open(dataDir()));
    ASSERT_OK_AND_ASSIGN(entry_, catalog->get(kName));
    ASSERT_OK_AND_ASSIGN(image_, oci::loadImage(*blobs_, entry_.descriptor));
  }

  fs::path dataDir() const { return tmp_->path() / "data"; }

  void checkCatalogHasOneLayerImage() {
    EXPECT_EQ(entry_.name, kNormalized);
    EXPECT_THAT(result_.output, HasSubstr("Created " + kNormalized));
    EXPECT_THAT(result_.output, HasSubstr("Digest: " + entry_.descriptor.digest.str()));
    EXPECT_EQ(entry_.descriptor.media_type, oci::kMediaTypeOciManifest);
    ASSERT_EQ(image_.manifest.layers.size(), 1u);
    EXPECT_EQ(image_.manifest.layers[0].media_type, oci::kMediaTypeOciLayerZstd);  // default
    EXPECT_EQ(image_.config.os, "linux");
    EXPECT_EQ(image_.config.architecture, oci::Platform::host().architecture);
    ASSERT_TRUE(image_.config.config.has_value());
    EXPECT_EQ(image_.config.config->labels["org.opencontainers.image.base.name"],
              "debian:bookworm");
    EXPECT_EQ(image_.config.config->labels["dev.cairn.base.include"], kInclude);
    ASSERT_EQ(image_.config.history.size(), 1u);
    EXPECT_THAT(image_.config.history[0].created_by, HasSubstr("--include " + kInclude));

    // The CLI sees the same image.
    auto list = run({cairnBinary(), "--data-dir", dataDir().string(), "image", "list", "--json"});
    ASSERT_EQ(list.exit_code, 0) << list.output;
    ASSERT_OK_AND_ASSIGN(Json entries, parseJson(list.output));
    ASSERT_EQ(entries.size(), 1u);
    EXPECT_EQ(entries[0]["name"], kNormalized);
    EXPECT_EQ(entries[0]["digest"], entry_.descriptor.digest.str());
  }

  void checkDiffIdIsTheLayersUncompressedDigest() {
    ASSERT_EQ(image_.config.rootfs_type, "layers");
    ASSERT_EQ(image_.config.diff_ids.size(), 1u);
    ASSERT_EQ(image_.manifest.layers.size(), 1u);
    const oci::Descriptor& layer = image_.manifest.layers[0];
    ASSERT_OK_AND_ASSIGN(store::BlobInfo info, blobs_->info(layer.digest));
    EXPECT_EQ(static_cast<std::int64_t>(info.size), layer.size);

    // Decompress the stored blob and hash the tar: that is the diff id.
    ASSERT_OK_AND_ASSIGN(auto stream, blobs_->openRead(layer.digest));
    layer::FunctionSource compressed(
        [&](void* buf, std::size_t n) -> Result<std::size_t> { return stream->read(buf, n); });
    layer::HashingSource hashed_blob(&compressed);
    ASSERT_OK_AND_ASSIGN(auto tar, layer::makeAutoDecompressor(&hashed_blob));
    layer::HashingSource hashed_tar(tar.get());
    ASSERT_OK(layer::drain(hashed_tar));
    EXPECT_EQ(hashed_blob.digest(), layer.digest);
    EXPECT_EQ(hashed_tar.digest(), image_.config.diff_ids[0]);
    EXPECT_GT(hashed_tar.size(), 50u << 20) << "a minbase tar is > 100 MB";
  }

  void checkUnpackedLayerIsBookwormWithTheIncludedPackages() {
    fs::path rootfs = tmp_->path() / "rootfs";
    fs::create_directories(rootfs);
    layer::ApplyOptions options;
    options.preserve_owner = true;
    ASSERT_OK(unpackImage(*blobs_, image_.manifest, image_.config, rootfs, options));

    ASSERT_OK_AND_ASSIGN(std::string version, readFile(rootfs / "etc/debian_version"));
    EXPECT_THAT(version, StartsWith("12.")) << "bookworm is Debian 12";
    ASSERT_OK_AND_ASSIGN(std::string status, readFile(rootfs / "var/lib/dpkg/status"));
    EXPECT_THAT(status, HasSubstr("Package: hello\n"));
    EXPECT_THAT(status, HasSubstr("Package: netbase\n"));
    EXPECT_THAT(status, HasSubstr("Package: apt\n")) << "minbase's own packages";
    EXPECT_THAT(status, Not(HasSubstr("Package: python3\n"))) << "minbase stays minimal";
    struct stat st {};
    ASSERT_EQ(::stat((rootfs / "usr/bin/hello").c_str(), &st), 0) << "hello's binary";
    EXPECT_TRUE(S_ISREG(st.st_mode));
    EXPECT_NE(st.st_mode & 0111, 0u);
    EXPECT_TRUE(fs::exists(rootfs / "etc/protocols")) << "netbase's file";
    EXPECT_TRUE(fs::is_symlink(rootfs / "bin")) << "bookworm has a merged /usr";
    ASSERT_EQ(::stat((rootfs / "etc/passwd").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 0u);
  }

  void checkPushRoundTripsThroughTheRegistry() {
    EXPECT_THAT(result_.output, HasSubstr("Pushed " + remote_));
    auto inspect = run({"skopeo", "inspect", "--tls-verify=false", "docker://" + remote_});
    ASSERT_EQ(inspect.exit_code, 0) << inspect.output;
    ASSERT_OK_AND_ASSIGN(Json j, parseJson(inspect.output));
    EXPECT_EQ(j["Digest"], entry_.descriptor.digest.str());
    ASSERT_EQ(j["Layers"].size(), 1u);
    ASSERT_EQ(image_.manifest.layers.size(), 1u);
    EXPECT_EQ(j["Layers"][0], image_.manifest.layers[0].digest.str());
    EXPECT_EQ(j["Os"], "linux");

    auto config =
        run({"skopeo", "inspect", "--config", "--tls-verify=false", "docker://" + remote_});
    ASSERT_EQ(config.exit_code, 0) << config.output;
    ASSERT_OK_AND_ASSIGN(Json c, parseJson(config.output));
    ASSERT_EQ(image_.config.diff_ids.size(), 1u);
    EXPECT_EQ(c["rootfs"]["diff_ids"][0], image_.config.diff_ids[0].str());

    // And back: a fresh data dir pulls the same manifest.
    std::string other = (tmp_->path() / "pulled").string();
    auto pulled =
        run({cairnBinary(), "--data-dir", other, "image", "pull", "--no-unpack", remote_});
    ASSERT_EQ(pulled.exit_code, 0) << pulled.output;
    EXPECT_THAT(pulled.output, HasSubstr("Digest: " + entry_.descriptor.digest.str()));
  }

  std::optional<TempDir> tmp_;
  std::unique_ptr<DockerRegistry> registry_;
  std::string remote_;
  CommandResult result_;
  std::unique_ptr<store::LocalBlobStore> blobs_;
  oci::CatalogEntry entry_;
  oci::LoadedImage image_;
};

TEST_F(BootstrapTest, MakesAOneLayerDebianImageAndPushesIt) {
  {
    SCOPED_TRACE("catalog");
    checkCatalogHasOneLayerImage();
  }
  {
    SCOPED_TRACE("diff id");
    checkDiffIdIsTheLayersUncompressedDigest();
  }
  {
    SCOPED_TRACE("unpacked layer");
    checkUnpackedLayerIsBookwormWithTheIncludedPackages();
  }
  {
    SCOPED_TRACE("push");
    checkPushRoundTripsThroughTheRegistry();
  }
}

// Bad flags: clear errors, nothing tagged. Cheap: only the last case starts mmdebstrap, which
// fails within seconds on a suite the mirror does not have.
TEST(BootstrapFlagsTest, BadSuiteVariantOrPackagesGetClearErrors) {
  if (std::string missing = missingPrerequisite(); !missing.empty()) GTEST_SKIP() << missing;
  ASSERT_OK_AND_ASSIGN(TempDir tmp, TempDir::create("bootstrap-flags"));
  std::string data = (tmp.path() / "data").string();
  auto bootstrap = [&](std::vector<std::string> flags) {
    std::vector<std::string> argv = {cairnBinary(), "--data-dir", data,        "base",
                                     "bootstrap",   "--tag",      "test/bad:x"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    return run(argv, std::chrono::seconds(300));
  };
  struct Case {
    std::vector<std::string> flags;
    std::string message;
  } cases[] = {
      {{"--suite", "Book Worm"}, "--suite \"Book Worm\" is not a Debian suite name"},
      {{"--suite", "../../etc"}, "is not a Debian suite name"},
      {{"--variant", "minimal"}, "--variant \"minimal\" is not an mmdebstrap variant (one of: "},
      {{"--include", "python3 curl"}, "must be a comma-separated list of package names"},
      {{"--compression", "lz4"}, "unknown compression \"lz4\""},
      {{"--suite", "nosuchsuite"}, "does the mirror have a suite \"nosuchsuite\"?"},
  };
  for (const Case& c : cases) {
    auto r = bootstrap(c.flags);
    EXPECT_EQ(r.exit_code, 1) << c.flags[0] << " " << c.flags[1] << ": " << r.output;
    EXPECT_THAT(r.output, HasSubstr("error: ")) << r.output;
    EXPECT_THAT(r.output, HasSubstr(c.message)) << r.output;
  }
  auto missing_tag = run({cairnBinary(), "--data-dir", data, "base", "bootstrap"});
  EXPECT_EQ(missing_tag.exit_code, 2) << missing_tag.output;  // CLI11 usage error
  EXPECT_THAT(missing_tag.output, HasSubstr("--tag"));

  auto list = run({cairnBinary(), "--data-dir", data, "image", "list", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.output;
  ASSERT_OK_AND_ASSIGN(Json entries, parseJson(list.output));
  EXPECT_TRUE(entries.empty()) << list.output;
  // The failed run left no work directory behind.
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::path(data) / "work", ec)) {
    ADD_FAILURE() << "left behind: " << e.path();
  }
}

}  // namespace
}  // namespace cairn::registry
