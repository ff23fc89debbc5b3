#include "cairn/registry/client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "../oci/test_tar.h"
#include "cairn/common/encoding.h"
#include "cairn/common/fs.h"
#include "cairn/layer/chain_id.h"
#include "cairn/layer/compression.h"
#include "cairn/layer/diff.h"
#include "cairn/oci/catalog.h"
#include "cairn/registry/transfer.h"
#include "cairn/store/layer_store.h"
#include "cairn/store/local_blob_store.h"
#include "cairn/store/memory_blob_store.h"
#include "cairn/testing/status_matchers.h"
#include "fake_registry.h"

namespace cairn::registry {
namespace {

using ::cairn::oci::testing::makeTar;
using ::cairn::oci::testing::TarEntry;
using ::cairn::registry::testing::FakeRegistry;
using ::cairn::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

RegistryConfig fastConfig() {
  RegistryConfig c;
  c.initial_backoff = std::chrono::milliseconds(1);
  c.max_backoff = std::chrono::milliseconds(5);
  c.platform = *oci::Platform::parse("linux/amd64");
  return c;
}

struct TestImage {
  oci::Descriptor manifest;
  std::vector<std::string> layers;  // compressed bytes
};

// A two-layer image (gzip + zstd) in `blobs`; `big` makes the second layer ~300 KiB so that
// cut connections and chunked uploads have something to cut.
TestImage makeImage(store::BlobStore& blobs, const std::string& marker, bool big = false) {
  TestImage img;
  std::string payload = marker;
  if (big) {
    // Incompressible, so the compressed layer stays large.
    payload = randomBytes(300 * 1024);
  }
  std::vector<TarEntry> first = {{"etc/", TarEntry::Type::kDir, "", 0755},
                                 {"etc/marker", TarEntry::Type::kFile, marker, 0644},
                                 {"link", TarEntry::Type::kSymlink, "etc/marker"}};
  std::vector<TarEntry> second = {{"data.bin", TarEntry::Type::kFile, payload, 0600}};
  oci::ImageConfig config;
  config.architecture = "amd64";
  config.os = "linux";
  config.config = oci::ContainerConfig{};
  config.config->cmd = std::vector<std::string>{"/bin/sh"};
  config.diff_ids = {Digest::ofBytes(makeTar(first)), Digest::ofBytes(makeTar(second))};
  oci::Manifest m;
  // Build the compressed blobs from the same entries.
  std::vector<std::string> compressed = {makeTar(first, layer::Compression::kGzip),
                                         makeTar(second, layer::Compression::kZstd)};
  m.layers.push_back(oci::describe(oci::kMediaTypeOciLayerGzip, compressed[0]));
  m.layers.push_back(oci::describe(oci::kMediaTypeOciLayerZstd, compressed[1]));
  for (auto& c : compressed)
    EXPECT_OK(store::writeBlob(blobs, c).status());
  img.layers = compressed;
  std::string config_bytes = oci::serialize(config);
  EXPECT_OK(store::writeBlob(blobs, config_bytes).status());
  m.config = oci::describe(oci::kMediaTypeOciConfig, config_bytes);
  std::string manifest_bytes = oci::serialize(m);
  EXPECT_OK(store::writeBlob(blobs, manifest_bytes).status());
  img.manifest = oci::describe(oci::kMediaTypeOciManifest, manifest_bytes);
  return img;
}

oci::Reference ref(const FakeRegistry& reg, const std::string& rest) {
  return *oci::Reference::parse(reg.host() + "/" + rest);
}

TEST(ConfigTest, ParsesHostsMirrorsCredentials) {
  ASSERT_OK_AND_ASSIGN(RegistryConfig c, RegistryConfig::parse(R"({
    "platform": "linux/arm64",
    "registries": {
      "docker.io": {"mirrors": ["127.0.0.1:5000/", "https://mirror.example"]},
      "reg.internal:5000": {"insecure": true, "username": "u", "password": "p"},
      "localhost:6000": {"insecure": false, "skipTlsVerify": true}}})"));
  EXPECT_EQ(c.platform.str(), "linux/arm64");
  EXPECT_EQ(c.mirrorsFor("docker.io"),
            (std::vector<std::string>{"http://127.0.0.1:5000", "https://mirror.example"}));
  EXPECT_EQ(c.schemeFor("reg.internal:5000"), "http");
  EXPECT_EQ(c.schemeFor("ghcr.io"), "https");
  EXPECT_EQ(c.schemeFor("127.0.0.1:41000"), "http");
  EXPECT_EQ(c.schemeFor("localhost:6000"), "https");
  EXPECT_FALSE(c.verifyTlsFor("localhost:6000"));
  EXPECT_EQ(c.credentialsFor("reg.internal:5000").username, "u");
  EXPECT_TRUE(c.credentialsFor("ghcr.io").empty());
  EXPECT_EQ(RegistryConfig::apiHost("docker.io"), "registry-1.docker.io");
}

TEST(ConfigTest, RejectsTyposClearly) {
  EXPECT_THAT(RegistryConfig::parse(R"({"registries":{"x":{"insecrue":true}}})"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("\"insecrue\"")));
  EXPECT_THAT(RegistryConfig::parse(R"({"registry":{}})"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("\"registry\"")));
  EXPECT_THAT(RegistryConfig::parse("nope"), StatusIs(StatusCode::kInvalidArgument));
}

TEST(ConfigTest, ReadsDockerConfig) {
  ASSERT_OK_AND_ASSIGN(TempDir dir, TempDir::create("dockercfg"));
  ASSERT_OK(writeFileDurable(
      dir.path() / "config.json",
      R"({"auths":{"https://index.docker.io/v1/":{"auth":")" + base64Encode("alice:s3cret") +
          R"("},"reg.example:5000":{"auth":")" + base64Encode("bob:pw") + R"("}}})"));
  RegistryConfig c;
  ASSERT_OK(c.addDockerConfig(dir.path() / "config.json"));
  EXPECT_EQ(c.credentialsFor("docker.io").username, "alice");
  EXPECT_EQ(c.credentialsFor("docker.io").password, "s3cret");
  EXPECT_EQ(c.credentialsFor("reg.example:5000").username, "bob");
  EXPECT_OK(c.addDockerConfig(dir.path() / "missing.json"));
  ASSERT_OK(writeFileDurable(dir.path() / "bad.json", R"({"auths":{"x":{"auth":"!!"}}})"));
  EXPECT_THAT(c.addDockerConfig(dir.path() / "bad.json"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("not base64")));
}

TEST(ChallengeTest, ParsesBearerAndBasic) {
  ASSERT_OK_AND_ASSIGN(
      Challenge c,
      parseChallenge(
          R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull,push")"));
  EXPECT_EQ(c.scheme, "bearer");
  EXPECT_EQ(c.params["realm"], "https://auth.docker.io/token");
  EXPECT_EQ(c.params["service"], "registry.docker.io");
  EXPECT_EQ(c.params["scope"], "repository:library/ubuntu:pull,push");
  ASSERT_OK_AND_ASSIGN(Challenge b, parseChallenge("Basic realm=fake"));
  EXPECT_EQ(b.scheme, "basic");
  EXPECT_EQ(b.params["realm"], "fake");
  EXPECT_THAT(parseChallenge(R"(Bearer realm="unterminated)"),
              StatusIs(StatusCode::kInvalidArgument));
}

TEST(StatusFromHttpTest, MapsCodesAndRegistryErrors) {
  Status s =
      statusFromHttp("GET x", 404, R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"nope"}]})");
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("MANIFEST_UNKNOWN: nope"));
  EXPECT_EQ(statusFromHttp("x", 401, "").code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(statusFromHttp("x", 403, "").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(statusFromHttp("x", 429, "").code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(statusFromHttp("x", 502, "").code(), StatusCode::kUnavailable);
  EXPECT_EQ(statusFromHttp("x", 400, "").code(), StatusCode::kInvalidArgument);
}

TEST(TransferTest, PushThenPullRoundTrips) {
  FakeRegistry reg;
  store::MemoryBlobStore src;
  TestImage img = makeImage(src, "hello");
  RegistryClient client(fastConfig());
  ASSERT_OK_AND_ASSIGN(PushResult pushed,
                       pushImage(client, src, img.manifest, ref(reg, "team/app:v1")));
  EXPECT_EQ(pushed.uploaded, 3u);
  EXPECT_FALSE(reg.manifest("team/app", "v1").empty());

  // Pushing again uploads nothing.
  ASSERT_OK_AND_ASSIGN(PushResult again,
                       pushImage(client, src, img.manifest, ref(reg, "team/app:v1")));
  EXPECT_EQ(again.uploaded, 0u);
  EXPECT_EQ(again.existed, 3u);

  store::MemoryBlobStore dst;
  ASSERT_OK_AND_ASSIGN(PullResult pulled, pullImage(client, dst, ref(reg, "team/app:v1")));
  EXPECT_EQ(pulled.manifest, img.manifest);
  EXPECT_EQ(pulled.layers_downloaded, 2u);
  EXPECT_EQ(pulled.resolved.digest(), img.manifest.digest);
  for (const auto& l : img.layers)
    EXPECT_TRUE(dst.exists(Digest::ofBytes(l)));
  EXPECT_TRUE(dst.exists(img.manifest.digest));

  // A second pull finds everything local.
  ASSERT_OK_AND_ASSIGN(PullResult second, pullImage(client, dst, ref(reg, "team/app:v1")));
  EXPECT_EQ(second.layers_present, 2u);
  EXPECT_EQ(second.layers_downloaded, 0u);
}

TEST(TransferTest, ChunkedPushAndCrossRepoMount) {
  FakeRegistry reg;
  store::MemoryBlobStore src;
  TestImage img = makeImage(src, "chunky", /*big=*/true);
  RegistryClient client(fastConfig());
  BlobPushOptions chunked;
  chunked.chunk_size = 64 * 1024;
  ASSERT_OK(pushImage(client, src, img.manifest, ref(reg, "a/one:v1"), chunked).status());
  EXPECT_GE(reg.patch_requests.load(), 5);

  BlobPushOptions mount;
  mount.mount_from = "a/one";
  ASSERT_OK_AND_ASSIGN(PushResult r,
                       pushImage(client, src, img.manifest, ref(reg, "b/two:v1"), mount));
  EXPECT_EQ(r.mounted, 3u);
  EXPECT_EQ(r.uploaded, 0u);
  EXPECT_TRUE(reg.hasBlobIn("b/two", img.manifest.digest.str()) ||
              reg.hasBlobIn("b/two", Digest::ofBytes(img.layers[1]).str()));

  store::MemoryBlobStore dst;
  ASSERT_OK(pullImage(client, dst, ref(reg, "b/two:v1")).status());
  EXPECT_TRUE(dst.exists(Digest::ofBytes(img.layers[1])));
}

TEST(TransferTest, RetriesServerErrorsAndResumesCutDownloads) {
  FakeRegistry reg;
  store::MemoryBlobStore src;
  TestImage img = makeImage(src, "flaky", /*big=*/true);
  RegistryClient client(fastConfig());
  ASSERT_OK(pushImage(client, src, img.manifest, ref(reg, "x/y:v1")).status());

  reg.fail_manifest_gets = 1;
  reg.fail_blob_gets = 2;
  reg.cut_blob_gets = 2;
  store::MemoryBlobStore dst;
  ASSERT_OK_AND_ASSIGN(PullResult pulled, pullImage(client, dst, ref(reg, "x/y:v1")));
  EXPECT_EQ(pulled.manifest.digest, img.manifest.digest);
  EXPECT_GE(client.retries(), 3u);
  EXPECT_GE(client.resumes(), 1u);
  EXPECT_GE(reg.range_requests.load(), 1);
}

TEST(TransferTest, ResumeWorksWhenServerIgnoresRange) {
  FakeRegistry reg;
  store::MemoryBlobStore src;
  TestImage img = makeImage(src, "norange", /*big=*/true);
  RegistryClient client(fastConfig());
  ASSERT_OK(pushImage(client, src, img.manifest, ref(reg, "x/y:v1")).status());
  reg.cut_blob_gets = 1;
  reg.ignore_range = true;
  store::MemoryBlobStore dst;
  ASSERT_OK(pullImage(client, dst, ref(reg, "x/y:v1")).status());
  EXPECT_TRUE(dst.exists(Digest::ofBytes(img.layers[1])));
}

TEST(TransferTest, CorruptBlobIsRejectedAndNothingIsPublished) {
  FakeRegistry reg;
  store::MemoryBlobStore src;
  TestImage img = makeImage(src, "corrupt");
  RegistryClient client(fastConfig());
  ASSERT_OK(pushImage(client, src, img.manifest, ref(reg, "x/y:v1")).status());
  // Replace the gzip layer's content with other bytes of the same size.
  std::string evil(img.layers[0].size(), 'x');
  reg.putBlobAs(Digest::ofBytes(img.layers[0]).str(), evil);
  store::MemoryBlobStore dst;
  // The store writer's commit is what checks a layer's digest (one hash pass per blob); its
  // error names both digests.
  EXPECT_THAT(
      pullImage(client, dst, ref(reg, "x/y:v1")),
      StatusIs(StatusCode::kInvalidArgument,
               AllOf(HasSubstr("digest mismatch"), HasSubstr(Digest::ofBytes(img.layers[0]).str()),
                     HasSubstr(Digest::ofBytes(evil).str()))));
  EXPECT_FALSE(dst.exists(img.manifest.digest));
  EXPECT_FALSE(dst.exists(Digest::ofBytes(img.layers[0])));
}

TEST(TransferTest, GetBlobChecksTheDigestUnlessTheSinkDoes) {
  FakeRegistry reg;
  RegistryClient client(fastConfig());
  std::string good = "the real blob";
  std::string evil(good.size(), 'x');
  Digest digest = Digest::ofBytes(good);
  reg.putBlobAs(digest.str(), evil);
  oci::Descriptor d{
      "application/octet-stream", digest, static_cast<std::int64_t>(good.size()), {}, {}, {}, {}};
  std::string got;
  auto sink = [&](std::string_view data) {
    got.append(data);
    return okStatus();
  };
  EXPECT_THAT(client.getBlob(ref(reg, "x/y"), d, sink),
              StatusIs(StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("content hashes to " + Digest::ofBytes(evil).str()),
                             HasSubstr(digest.str()))));
  got.clear();
  // A sink that verifies (the blob store writer's commit) gets the bytes and the job.
  EXPECT_OK(client.getBlob(ref(reg, "x/y"), d, sink, /*sink_verifies_digest=*/true));
  EXPECT_EQ(got, evil);
  // The size is checked either way.
  reg.putBlobAs(digest.str(), evil + "more");
  EXPECT_THAT(client.getBlob(ref(reg, "x/y"), d, sink, /*sink_verifies_digest=*/true),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("more than the descriptor's")));
}

TEST(TransferTest, MissingImageIsNotFound) {
  FakeRegistry reg;
  RegistryClient client(fastConfig());
  store::MemoryBlobStore dst;
  EXPECT_THAT(pullImage(client, dst, ref(reg, "no/such:tag")),
              StatusIs(StatusCode::kNotFound, HasSubstr("MANIFEST_UNKNOWN")));
}

TEST(TransferTest, SelectsPlatformFromIndex) {
  FakeRegistry reg;
  store::MemoryBlobStore src;
  TestImage amd = makeImage(src, "amd");
  TestImage arm = makeImage(src, "arm");
  RegistryClient client(fastConfig());
  ASSERT_OK(pushImage(client, src, amd.manifest, ref(reg, "multi/img:amd")).status());
  ASSERT_OK(pushImage(client, src, arm.manifest, ref(reg, "multi/img:arm")).status());
  oci::Index index;
  oci::Descriptor a = amd.manifest, b = arm.manifest;
  a.platform = oci::Platform{"amd64", "linux", "", "", {}};
  b.platform = oci::Platform{"arm64", "linux", "v8", "", {}};
  index.manifests = {b, a};
  std::string index_bytes = oci::serialize(index);
  reg.putManifest("multi/img", "latest", std::string(oci::kMediaTypeOciIndex), index_bytes);

  store::MemoryBlobStore dst;
  ASSERT_OK_AND_ASSIGN(PullResult pulled, pullImage(client, dst, ref(reg, "multi/img")));
  EXPECT_EQ(pulled.manifest.digest, amd.manifest.digest);
  ASSERT_TRUE(pulled.index.has_value());
  EXPECT_EQ(pulled.index->digest, Digest::ofBytes(index_bytes));

  PullOptions arm_opts;
  arm_opts.platform = *oci::Platform::parse("linux/arm64");
  ASSERT_OK_AND_ASSIGN(PullResult pulled_arm,
                       pullImage(client, dst, ref(reg, "multi/img"), arm_opts));
  EXPECT_EQ(pulled_arm.manifest.digest, arm.manifest.digest);

  PullOptions s390;
  s390.platform = *oci::Platform::parse("linux/s390x");
  EXPECT_THAT(pullImage(client, dst, ref(reg, "multi/img"), s390),
              StatusIs(StatusCode::kNotFound, HasSubstr("linux/s390x")));
}

TEST(AuthTest, BearerTokenWithCredentials) {
  FakeRegistry reg({FakeRegistry::Auth::kBearer, "user", "pass", false});
  store::MemoryBlobStore src;
  TestImage img = makeImage(src, "secret");
  RegistryConfig config = fastConfig();
  config.hosts[reg.host()].credentials = {"user", "pass", ""};
  RegistryClient client(config);
  ASSERT_OK(pushImage(client, src, img.manifest, ref(reg, "priv/app:v1")).status());
  store::MemoryBlobStore dst;
  ASSERT_OK(pullImage(client, dst, ref(reg, "priv/app:v1")).status());
  EXPECT_GE(reg.token_requests.load(), 2);  // a push scope and a pull scope
  // Tokens are cached: another pull asks for none.
  int before = reg.token_requests.load();
  store::MemoryBlobStore dst2;
  ASSERT_OK(pullImage(client, dst2, ref(reg, "priv/app:v1")).status());
  EXPECT_EQ(reg.token_requests.load(), before);

  RegistryClient anonymous(fastConfig());
  store::MemoryBlobStore dst3;
  EXPECT_THAT(pullImage(anonymous, dst3, ref(reg, "priv/app:v1")),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("no credentials configured")));
  RegistryConfig wrong = fastConfig();
  wrong.hosts[reg.host()].credentials = {"user", "nope", ""};
  RegistryClient bad(wrong);
  EXPECT_THAT(pullImage(bad, dst3, ref(reg, "priv/app:v1")),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("credentials rejected")));
}

TEST(AuthTest, AnonymousBearerToken) {
  FakeRegistry reg({FakeRegistry::Auth::kBearer, "user", "pass", true});
  store::MemoryBlobStore src;
  TestImage img = makeImage(src, "public");
  reg.putBlob(img.layers[0]);
  reg.putBlob(img.layers[1]);
  ASSERT_OK_AND_ASSIGN(oci::LoadedImage loaded, oci::loadImage(src, img.manifest));
  reg.putBlob(oci::serialize(loaded.config));
  ASSERT_OK_AND_ASSIGN(std::string mbytes, src.readAll(img.manifest.digest, 1 << 20));
  reg.putManifest("pub/app", "latest", img.manifest.media_type, mbytes);
  RegistryClient client(fastConfig());
  store::MemoryBlobStore dst;
  ASSERT_OK(pullImage(client, dst, ref(reg, "pub/app")).status());
  EXPECT_GE(reg.token_requests.load(), 1);
}

TEST(AuthTest, BasicAuth) {
  FakeRegistry reg({FakeRegistry::Auth::kBasic, "u", "p", false});
  store::MemoryBlobStore src;
  TestImage img = makeImage(src, "basic");
  RegistryConfig config = fastConfig();
  config.hosts[reg.host()].credentials = {"u", "p", ""};
  RegistryClient client(config);
  ASSERT_OK(pushImage(client, src, img.manifest, ref(reg, "b/app:v1")).status());
  RegistryClient none(fastConfig());
  store::MemoryBlobStore dst;
  EXPECT_THAT(pullImage(none, dst, ref(reg, "b/app:v1")),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("Basic auth")));
}

TEST(MirrorTest, PullsFromMirrorAndFallsBackToOrigin) {
  FakeRegistry origin;
  FakeRegistry mirror;
  store::MemoryBlobStore src;
  TestImage img = makeImage(src, "mirrored");
  TestImage only_origin = makeImage(src, "origin-only");
  RegistryClient direct(fastConfig());
  ASSERT_OK(pushImage(direct, src, img.manifest, ref(mirror, "lib/app:v1")).status());
  ASSERT_OK(pushImage(direct, src, only_origin.manifest, ref(origin, "lib/app:v2")).status());

  RegistryConfig config = fastConfig();
  config.hosts[origin.host()].mirrors = {"http://" + mirror.host()};
  RegistryClient client(config);
  store::MemoryBlobStore dst;
  ASSERT_OK(pullImage(client, dst, ref(origin, "lib/app:v1")).status());
  EXPECT_EQ(origin.blob_gets.load(), 0);
  EXPECT_GT(mirror.blob_gets.load(), 0);

  ASSERT_OK_AND_ASSIGN(PullResult fallback, pullImage(client, dst, ref(origin, "lib/app:v2")));
  EXPECT_EQ(fallback.manifest.digest, only_origin.manifest.digest);
  EXPECT_GT(origin.blob_gets.load(), 0);
}

TEST(UnpackTest, PullUnpacksWhileStreaming) {
  FakeRegistry reg;
  store::MemoryBlobStore src;
  TestImage img = makeImage(src, "unpacked");
  RegistryClient client(fastConfig());
  ASSERT_OK(pushImage(client, src, img.manifest, ref(reg, "u/app:v1")).status());
  ASSERT_OK_AND_ASSIGN(TempDir rootfs, TempDir::create("rootfs"));
  layer::ApplyOptions apply;
  apply.preserve_owner = false;
  PullOptions options;
  options.unpack = makeRootfsUnpacker(rootfs.path(), apply);
  store::MemoryBlobStore dst;
  ASSERT_OK(pullImage(client, dst, ref(reg, "u/app:v1"), options).status());
  ASSERT_OK_AND_ASSIGN(std::string marker, readFile(rootfs.path() / "etc/marker"));
  EXPECT_EQ(marker, "unpacked");
  EXPECT_EQ(std::filesystem::read_symlink(rootfs.path() / "link"), "etc/marker");
  EXPECT_TRUE(std::filesystem::exists(rootfs.path() / "data.bin"));

  // Unpacking from the store (layers already local) gives the same tree.
  ASSERT_OK_AND_ASSIGN(TempDir again, TempDir::create("rootfs"));
  ASSERT_OK_AND_ASSIGN(oci::LoadedImage loaded, oci::loadImage(dst, img.manifest));
  ASSERT_OK(unpackImage(dst, loaded.manifest, loaded.config, again.path(), apply));
  ASSERT_OK_AND_ASSIGN(std::string marker2, readFile(again.path() / "etc/marker"));
  EXPECT_EQ(marker2, "unpacked");
}

}  // namespace
}  // namespace cairn::registry

namespace cairn::registry {
namespace {

TEST(UnpackTest, PullImportsLayersIntoTheLayerStore) {
  FakeRegistry reg;
  store::MemoryBlobStore src;
  TestImage img = makeImage(src, "layered", /*big=*/true);
  RegistryClient client(fastConfig());
  ASSERT_OK(pushImage(client, src, img.manifest, ref(reg, "l/app:v1")).status());
  ASSERT_OK_AND_ASSIGN(TempDir data, TempDir::create("layers"));
  ASSERT_OK_AND_ASSIGN(auto layers, store::LayerStore::open(data.path()));
  layer::ApplyOptions apply;
  apply.preserve_owner = false;
  PullOptions options;
  options.unpack = makeLayerStoreUnpacker(*layers, apply);
  store::MemoryBlobStore dst;
  ASSERT_OK(pullImage(client, dst, ref(reg, "l/app:v1"), options).status());
  ASSERT_OK_AND_ASSIGN(oci::LoadedImage loaded, oci::loadImage(dst, img.manifest));
  std::vector<Digest> chain = layer::chainIds(loaded.config.diff_ids);
  ASSERT_EQ(chain.size(), 2u);
  ASSERT_TRUE(layers->exists(chain[0]));
  ASSERT_TRUE(layers->exists(chain[1]));
  ASSERT_OK_AND_ASSIGN(std::string marker, readFile(layers->fsPath(chain[0]) / "etc/marker"));
  EXPECT_EQ(marker, "layered");
  EXPECT_EQ(std::filesystem::file_size(layers->fsPath(chain[1]) / "data.bin"), 300u * 1024);
  ASSERT_OK_AND_ASSIGN(auto lowers, layers->lowerDirs(chain[1]));
  EXPECT_EQ(lowers.size(), 2u);
}

}  // namespace
}  // namespace cairn::registry

// ---- pushing a Cairn build's image: uncompressed layers are compressed on the way out ----

namespace cairn::registry {
namespace {

namespace fs = std::filesystem;
using ::cairn::oci::testing::makeTar;
using ::cairn::oci::testing::TarEntry;
using ::cairn::registry::testing::FakeRegistry;
using ::cairn::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

class MapMemo final : public CompressedLayerMemo {
 public:
  std::optional<oci::Descriptor> find(const Digest& diff_id, layer::Compression c) override {
    ++finds;
    auto it = copies.find({diff_id.str(), std::string(layer::compressionName(c))});
    if (it == copies.end()) return std::nullopt;
    return it->second;
  }
  void remember(const Digest& diff_id, layer::Compression c, const oci::Descriptor& d) override {
    copies[{diff_id.str(), std::string(layer::compressionName(c))}] = d;
  }
  std::map<std::pair<std::string, std::string>, oci::Descriptor> copies;
  int finds = 0;
};

// An image as `cairn build` leaves it: the first layer is an uncompressed tar published from a
// layer directory (LocalBlobStore::putLayerTar), the second a zstd layer as pulled.
struct BuiltImage {
  oci::Descriptor manifest;
  oci::ImageConfig config;
  std::string tar;  // the first layer's tar
};

BuiltImage makeBuiltImage(store::LocalBlobStore& blobs, const fs::path& layer_dir) {
  BuiltImage img;
  fs::create_directories(layer_dir / "etc");
  EXPECT_OK(writeFileDurable(layer_dir / "etc" / "built", "by cairn\n"));
  layer::StringSink sink(&img.tar);
  EXPECT_OK(layer::createLayerTar(layer_dir, sink).status());
  Digest tar_digest = Digest::ofBytes(img.tar);
  EXPECT_OK(blobs.putLayerTar(layer_dir, tar_digest, img.tar.size()).status());
  std::vector<TarEntry> second = {{"data.txt", TarEntry::Type::kFile, "second\n", 0644}};
  std::string zstd = makeTar(second, layer::Compression::kZstd);
  EXPECT_OK(store::writeBlob(blobs, zstd).status());
  img.config.architecture = "amd64";
  img.config.os = "linux";
  img.config.diff_ids = {tar_digest, Digest::ofBytes(makeTar(second))};
  std::string config_bytes = oci::serialize(img.config);
  EXPECT_OK(store::writeBlob(blobs, config_bytes).status());
  oci::Manifest m;
  m.config = oci::describe(oci::kMediaTypeOciConfig, config_bytes);
  oci::Descriptor tar_layer;
  tar_layer.media_type = std::string(oci::kMediaTypeOciLayer);
  tar_layer.digest = tar_digest;
  tar_layer.size = static_cast<std::int64_t>(img.tar.size());
  m.layers = {tar_layer, oci::describe(oci::kMediaTypeOciLayerZstd, zstd)};
  std::string manifest_bytes = oci::serialize(m);
  EXPECT_OK(store::writeBlob(blobs, manifest_bytes).status());
  img.manifest = oci::describe(oci::kMediaTypeOciManifest, manifest_bytes);
  return img;
}

TEST(CompressedPushTest, UncompressedLayersGoAsGzipWithTheSameDiffIdsAndAreCompressedOnce) {
  FakeRegistry reg;
  ASSERT_OK_AND_ASSIGN(TempDir tmp, TempDir::create("compressed-push"));
  ASSERT_OK_AND_ASSIGN(auto blobs, store::LocalBlobStore::open(tmp.path()));
  BuiltImage img = makeBuiltImage(*blobs, tmp.path() / "layers" / "l1" / "fs");
  RegistryClient client(fastConfig());
  MapMemo memo;
  PushImageOptions options;  // gzip by default
  options.memo = &memo;
  ASSERT_OK_AND_ASSIGN(CompressedPush pushed,
                       pushImage(client, *blobs, img.manifest, ref(reg, "built/app:v1"), options));
  EXPECT_EQ(pushed.compressed, 1u);
  EXPECT_EQ(pushed.reused, 0u);
  EXPECT_NE(pushed.push.manifest.digest, img.manifest.digest);  // rewritten layer descriptors
  EXPECT_EQ(pushed.push.uploaded, 3u);

  // What the registry has: a gzip first layer, the zstd one untouched, the same config.
  ASSERT_OK_AND_ASSIGN(oci::Manifest remote, oci::parseManifest(reg.manifest("built/app", "v1")));
  ASSERT_EQ(remote.layers.size(), 2u);
  EXPECT_EQ(remote.layers[0].media_type, std::string(oci::kMediaTypeOciLayerGzip));
  ASSERT_OK_AND_ASSIGN(oci::LoadedImage local, oci::loadImage(*blobs, img.manifest));
  EXPECT_EQ(remote.layers[1], local.manifest.layers[1]);
  EXPECT_EQ(remote.config, local.manifest.config);

  // Pulled back into a layer store: every layer unpacks and matches its diff id.
  ASSERT_OK_AND_ASSIGN(TempDir other, TempDir::create("compressed-pull"));
  ASSERT_OK_AND_ASSIGN(auto dst, store::LocalBlobStore::open(other.path()));
  ASSERT_OK_AND_ASSIGN(auto layers, store::LayerStore::open(other.path()));
  PullOptions pull;
  pull.unpack = makeLayerStoreUnpacker(*layers);
  ASSERT_OK_AND_ASSIGN(PullResult pulled, pullImage(client, *dst, ref(reg, "built/app:v1"), pull));
  EXPECT_EQ(pulled.manifest.digest, pushed.push.manifest.digest);
  ASSERT_OK_AND_ASSIGN(oci::LoadedImage back, oci::loadImage(*dst, pulled.manifest));
  EXPECT_EQ(back.config.diff_ids, img.config.diff_ids);
  Digest top =
      layer::chainId(layer::chainId(Digest(), img.config.diff_ids[0]), img.config.diff_ids[1]);
  EXPECT_TRUE(layers->exists(top));
  EXPECT_EQ(
      *readFile(layers->fsPath(layer::chainId(Digest(), img.config.diff_ids[0])) / "etc" / "built"),
      "by cairn\n");

  // The next push (another tag) reuses the remembered gzip copy: nothing compressed again.
  ASSERT_OK_AND_ASSIGN(CompressedPush again,
                       pushImage(client, *blobs, img.manifest, ref(reg, "built/app:v2"), options));
  EXPECT_EQ(again.compressed, 0u);
  EXPECT_EQ(again.reused, 1u);
  EXPECT_EQ(again.push.manifest.digest, pushed.push.manifest.digest);
  EXPECT_EQ(again.push.uploaded, 0u);

  // A remembered copy the store GC removed is simply made again, with the same bytes.
  ASSERT_OK(blobs->remove(remote.layers[0].digest));
  ASSERT_OK_AND_ASSIGN(CompressedPush third,
                       pushImage(client, *blobs, img.manifest, ref(reg, "built/app:v3"), options));
  EXPECT_EQ(third.compressed, 1u);
  EXPECT_EQ(third.push.manifest.digest, pushed.push.manifest.digest);
}

TEST(CompressedPushTest, ZstdOnRequestAndNoneKeepsTheTar) {
  FakeRegistry reg;
  ASSERT_OK_AND_ASSIGN(TempDir tmp, TempDir::create("compressed-push"));
  ASSERT_OK_AND_ASSIGN(auto blobs, store::LocalBlobStore::open(tmp.path()));
  BuiltImage img = makeBuiltImage(*blobs, tmp.path() / "layers" / "l1" / "fs");
  RegistryClient client(fastConfig());
  PushImageOptions zstd;
  zstd.compression = layer::Compression::kZstd;
  ASSERT_OK_AND_ASSIGN(CompressedPush z,
                       pushImage(client, *blobs, img.manifest, ref(reg, "built/z:v1"), zstd));
  EXPECT_EQ(z.compressed, 1u);
  ASSERT_OK_AND_ASSIGN(oci::Manifest remote, oci::parseManifest(reg.manifest("built/z", "v1")));
  EXPECT_EQ(remote.layers[0].media_type, std::string(oci::kMediaTypeOciLayerZstd));

  PushImageOptions none;
  none.compression = std::nullopt;
  ASSERT_OK_AND_ASSIGN(CompressedPush n,
                       pushImage(client, *blobs, img.manifest, ref(reg, "built/n:v1"), none));
  EXPECT_EQ(n.compressed, 0u);
  EXPECT_EQ(n.push.manifest, img.manifest);  // pushed as stored
  ASSERT_OK_AND_ASSIGN(remote, oci::parseManifest(reg.manifest("built/n", "v1")));
  EXPECT_EQ(remote.layers[0].media_type, std::string(oci::kMediaTypeOciLayer));
  EXPECT_EQ(remote.layers[0].digest, img.config.diff_ids[0]);
}

TEST(CompressedPushTest, ALayerThatIsNotItsDiffIdIsRefusedBeforeAnythingIsPushed) {
  FakeRegistry reg;
  ASSERT_OK_AND_ASSIGN(TempDir tmp, TempDir::create("compressed-push"));
  ASSERT_OK_AND_ASSIGN(auto blobs, store::LocalBlobStore::open(tmp.path()));
  BuiltImage img = makeBuiltImage(*blobs, tmp.path() / "layers" / "l1" / "fs");
  // A config whose first diff id names other content.
  oci::ImageConfig bad = img.config;
  bad.diff_ids[0] = Digest::ofBytes("something else");
  std::string config_bytes = oci::serialize(bad);
  ASSERT_OK(store::writeBlob(*blobs, config_bytes).status());
  ASSERT_OK_AND_ASSIGN(oci::LoadedImage local, oci::loadImage(*blobs, img.manifest));
  oci::Manifest m = local.manifest;
  m.config = oci::describe(oci::kMediaTypeOciConfig, config_bytes);
  std::string manifest_bytes = oci::serialize(m);
  ASSERT_OK(store::writeBlob(*blobs, manifest_bytes).status());
  RegistryClient client(fastConfig());
  EXPECT_THAT(pushImage(client, *blobs, oci::describe(oci::kMediaTypeOciManifest, manifest_bytes),
                        ref(reg, "built/bad:v1"), PushImageOptions{}),
              StatusIs(StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("compress layer 0"), HasSubstr("config's diff id"))));
  EXPECT_TRUE(reg.manifest("built/bad", "v1").empty());
}

}  // namespace
}  // namespace cairn::registry
