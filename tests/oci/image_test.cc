#include "cairn/oci/image.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "cairn/common/fs.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::oci {
namespace {

using ::cairn::testing::IsOk;
using ::cairn::testing::StatusIs;
using ::testing::HasSubstr;

const std::string kHexA(64, 'a');
const std::string kHexB(64, 'b');
const std::string kHexC(64, 'c');

Digest digestOf(const std::string& hex) {
  return *Digest::fromSha256Hex(hex);
}

Manifest sampleManifest() {
  Manifest m;
  m.config = {std::string(kMediaTypeOciConfig), digestOf(kHexA), 1234, {}, {}, {}, {}};
  m.layers.push_back({std::string(kMediaTypeOciLayerZstd), digestOf(kHexB), 99, {}, {}, {}, {}});
  m.layers.push_back({std::string(kMediaTypeOciLayerGzip),
                      digestOf(kHexC),
                      7,
                      {"https://example.com/layer"},
                      {{"org.example", "x"}},
                      {},
                      {}});
  m.annotations["org.opencontainers.image.created"] = "2026-01-01T00:00:00Z";
  return m;
}

ImageConfig sampleConfig() {
  ImageConfig c;
  c.created = "2026-01-15T09:30:12.345Z";
  c.author = "cairn";
  c.architecture = "amd64";
  c.os = "linux";
  ContainerConfig cc;
  cc.user = "1000:1000";
  cc.exposed_ports = {"80/tcp", "53/udp"};
  cc.env = {"PATH=/usr/bin:/bin", "FOO=bar"};
  cc.entrypoint = std::vector<std::string>{"/bin/sh", "-c"};
  cc.cmd = std::vector<std::string>{};
  cc.volumes = {"/data"};
  cc.working_dir = "/app";
  cc.labels = {{"a", "b"}};
  cc.stop_signal = "SIGTERM";
  cc.healthcheck = Healthcheck{{"CMD", "true"}, 30'000'000'000, 5'000'000'000, 0, 0, 3};
  c.config = cc;
  c.diff_ids = {digestOf(kHexB), digestOf(kHexC)};
  c.history.push_back({"2026-01-15T09:30:12Z", "RUN true", "", "", false});
  c.history.push_back({"2026-01-15T09:30:13Z", "ENV FOO=bar", "", "", true});
  return c;
}

// Runs the python3-jsonschema validator over `doc` against one of the image-spec schemas.
int validateWithSchema(const std::string& schema_file, const std::string& doc,
                       std::string* output) {
  auto dir = TempDir::create("oci-schema");
  if (!dir.ok()) return -1;
  auto path = dir->path() / "doc.json";
  if (!writeFileDurable(path, doc).ok()) return -1;
  std::string cmd = std::string("python3 ") + CAIRN_SOURCE_DIR +
                    "/tests/oci/validate_oci_schema.py " + CAIRN_SHARED_DIR +
                    "/testdata/oci-image-spec-schema " + schema_file + " " + path.string() +
                    " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0)
    output->append(buf, n);
  int rc = pclose(p);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

TEST(ManifestTest, RoundTripsThroughJson) {
  Manifest m = sampleManifest();
  std::string bytes = serialize(m);
  ASSERT_OK_AND_ASSIGN(Manifest back, parseManifest(bytes));
  EXPECT_EQ(back, m);
  EXPECT_EQ(serialize(back), bytes);
}

TEST(ManifestTest, SerializationIsCanonical) {
  std::string bytes = serialize(sampleManifest());
  EXPECT_EQ(bytes.find('\n'), std::string::npos);
  EXPECT_EQ(bytes.find(": "), std::string::npos);
  // Keys are sorted: "annotations" < "config" < "layers" < "mediaType" < "schemaVersion".
  EXPECT_LT(bytes.find("\"annotations\""), bytes.find("\"config\""));
  EXPECT_LT(bytes.find("\"layers\""), bytes.find("\"schemaVersion\""));
}

TEST(ManifestTest, ValidatesAgainstTheImageSpecSchema) {
  std::string out;
  EXPECT_EQ(validateWithSchema("image-manifest-schema.json", serialize(sampleManifest()), &out), 0)
      << out;
}

TEST(ManifestTest, SchemaValidatorRejectsBrokenManifest) {
  // Proves the schema check is real: a manifest without layers fails it.
  Manifest m = sampleManifest();
  m.layers.clear();
  std::string out;
  EXPECT_EQ(validateWithSchema("image-manifest-schema.json", serialize(m), &out), 1);
  EXPECT_THAT(out, HasSubstr("layers"));
}

TEST(IndexTest, RoundTripsAndValidates) {
  Index i;
  Descriptor amd = {std::string(kMediaTypeOciManifest), digestOf(kHexA), 500, {}, {}, {}, {}};
  amd.platform = Platform{"amd64", "linux", "", "", {}};
  Descriptor arm = {std::string(kMediaTypeOciManifest), digestOf(kHexB), 501, {}, {}, {}, {}};
  arm.platform = Platform{"arm64", "linux", "v8", "", {}};
  i.manifests = {amd, arm};
  i.annotations["x"] = "y";
  std::string bytes = serialize(i);
  ASSERT_OK_AND_ASSIGN(Index back, parseIndex(bytes));
  EXPECT_EQ(back, i);
  std::string out;
  EXPECT_EQ(validateWithSchema("image-index-schema.json", bytes, &out), 0) << out;
}

TEST(ImageConfigTest, RoundTripsAndValidates) {
  ImageConfig c = sampleConfig();
  std::string bytes = serialize(c);
  ASSERT_OK_AND_ASSIGN(ImageConfig back, parseImageConfig(bytes));
  EXPECT_EQ(back, c);
  EXPECT_EQ(serialize(back), bytes);
  std::string out;
  EXPECT_EQ(validateWithSchema("config-schema.json", bytes, &out), 0) << out;
}

TEST(ImageConfigTest, EmptyEntrypointDiffersFromAbsent) {
  ImageConfig c = sampleConfig();
  c.config->entrypoint = std::vector<std::string>{};
  c.config->cmd.reset();
  ASSERT_OK_AND_ASSIGN(ImageConfig back, parseImageConfig(serialize(c)));
  ASSERT_TRUE(back.config->entrypoint.has_value());
  EXPECT_TRUE(back.config->entrypoint->empty());
  EXPECT_FALSE(back.config->cmd.has_value());
}

TEST(ImageConfigTest, KeepsUnknownDockerFields) {
  std::string docker = R"({"architecture":"amd64","os":"linux","docker_version":"20.10.24",
    "container_config":{"Hostname":"abc"},"config":{"Env":["A=1"],"Cmd":null,
    "Image":"sha256:x"},"rootfs":{"type":"layers","diff_ids":["sha256:)" +
                       kHexA + R"("]}})";
  ASSERT_OK_AND_ASSIGN(ImageConfig c, parseImageConfig(docker));
  EXPECT_EQ(c.config->env, std::vector<std::string>{"A=1"});
  EXPECT_FALSE(c.config->cmd.has_value());
  EXPECT_EQ(c.extra["docker_version"], "20.10.24");
  std::string again = serialize(c);
  EXPECT_THAT(again, HasSubstr("\"container_config\":{\"Hostname\":\"abc\"}"));
}

TEST(ImageConfigTest, RejectsBadDiffId) {
  std::string bad = R"({"architecture":"amd64","os":"linux",
    "rootfs":{"type":"layers","diff_ids":["sha256:short"]}})";
  EXPECT_THAT(parseImageConfig(bad),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("diff_ids[0]")));
  EXPECT_THAT(parseImageConfig(R"({"architecture":"amd64","os":"linux"})"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("rootfs")));
}

TEST(DockerSchema2Test, ReadsManifestAndList) {
  std::string manifest = R"({
   "schemaVersion": 2,
   "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
   "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
              "size": 1469, "digest": "sha256:)" +
                         kHexA + R"("},
   "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
               "size": 29124181, "digest": "sha256:)" +
                         kHexB + R"("}]})";
  ASSERT_OK_AND_ASSIGN(ManifestKind kind, detectManifestKind(manifest));
  EXPECT_EQ(kind, ManifestKind::kManifest);
  ASSERT_OK_AND_ASSIGN(Manifest m, parseManifest(manifest));
  EXPECT_EQ(m.media_type, kMediaTypeDockerManifest);
  ASSERT_EQ(m.layers.size(), 1u);
  EXPECT_EQ(m.layers[0].size, 29124181);
  EXPECT_EQ(m.layers[0].media_type, kMediaTypeDockerLayerGzip);

  std::string list = R"({"schemaVersion":2,
   "mediaType":"application/vnd.docker.distribution.manifest.list.v2+json",
   "manifests":[
    {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":1,
     "digest":"sha256:)" +
                     kHexA +
                     R"(","platform":{"architecture":"arm","os":"linux","variant":"v7"}},
    {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":2,
     "digest":"sha256:)" +
                     kHexB +
                     R"(","platform":{"architecture":"amd64","os":"linux"}},
    {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":3,
     "digest":"sha256:)" +
                     kHexC + R"(","platform":{"architecture":"arm64","os":"linux"}}]})";
  ASSERT_OK_AND_ASSIGN(ManifestKind list_kind, detectManifestKind(list));
  EXPECT_EQ(list_kind, ManifestKind::kIndex);
  ASSERT_OK_AND_ASSIGN(Index index, parseIndex(list));
  ASSERT_OK_AND_ASSIGN(Descriptor amd64, selectPlatform(index, *Platform::parse("linux/amd64")));
  EXPECT_EQ(amd64.digest.hex(), kHexB);
  ASSERT_OK_AND_ASSIGN(Descriptor arm64, selectPlatform(index, *Platform::parse("linux/arm64/v8")));
  EXPECT_EQ(arm64.digest.hex(), kHexC);
  EXPECT_THAT(selectPlatform(index, *Platform::parse("linux/s390x")),
              StatusIs(StatusCode::kNotFound, HasSubstr("linux/arm/v7, linux/amd64")));
}

TEST(DockerSchema2Test, DetectsKindFromContentTypeWhenDocumentHasNone) {
  std::string bare = R"({"schemaVersion":2,"manifests":[]})";
  ASSERT_OK_AND_ASSIGN(ManifestKind k,
                       detectManifestKind(bare, "application/vnd.oci.image.index.v1+json"));
  EXPECT_EQ(k, ManifestKind::kIndex);
  ASSERT_OK_AND_ASSIGN(
      ManifestKind k2,
      detectManifestKind(R"({"schemaVersion":2,"config":{},"layers":[]})",
                         "application/vnd.docker.distribution.manifest.v2+json; charset=x"));
  EXPECT_EQ(k2, ManifestKind::kManifest);
}

TEST(DockerSchema2Test, RejectsSchema1WithClearError) {
  std::string s1 = R"({"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]})";
  EXPECT_THAT(parseManifest(s1), StatusIs(StatusCode::kInvalidArgument, HasSubstr("schema1")));
  EXPECT_THAT(detectManifestKind("{}", "application/vnd.docker.distribution.manifest.v1+prettyjws"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("schema1")));
}

TEST(ParseTest, HostileInputGetsErrorsNamingTheField) {
  struct Case {
    std::string text;
    std::string message;
  } cases[] = {
      {"", "invalid JSON"},
      {"[]", "expected an object"},
      {"{\"schemaVersion\":\"2\"}", "schemaVersion"},
      {"{\"schemaVersion\":3}", "unsupported value 3"},
      {"{\"schemaVersion\":2}", "config: missing"},
      {"{\"schemaVersion\":2,\"config\":5,\"layers\":[]}", "config: expected an object"},
      {"{\"schemaVersion\":2,\"config\":{\"digest\":\"sha256:" + kHexA +
           "\",\"size\":-5},\"layers\":[]}",
       "config.size: negative"},
      {"{\"schemaVersion\":2,\"config\":{\"digest\":\"md5:abc\",\"size\":1},\"layers\":[]}",
       "config.digest"},
      {"{\"schemaVersion\":2,\"config\":{\"digest\":\"sha256:" + kHexA +
           "\",\"size\":1},\"layers\":[{\"digest\":7}]}",
       "layers[0].digest: expected a string"},
      {"{\"schemaVersion\":2,\"config\":{\"digest\":\"sha256:" + kHexA +
           "\",\"size\":1},\"layers\":{}}",
       "layers: expected an array"},
      {"{\"schemaVersion\":2,\"config\":{\"digest\":\"sha256:" + kHexA +
           "\",\"size\":1.5},\"layers\":[]}",
       "config.size: expected an integer"},
      {"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\"}",
       "is not an image manifest"},
      {std::string(10000, '['), "nested deeper"},
      // Numbers nlohmann cannot hold threw out_of_range past parseJson (oci_manifest_fuzz).
      {"{\"schemaVersion\":2,\"config\":{\"size\":1e400}}", "number overflow"},
      {"{\"schemaVersion\":2,\"layers\":[-1e999]}", "number overflow"},
  };
  for (const auto& c : cases) {
    EXPECT_THAT(parseManifest(c.text), StatusIs(StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.text.substr(0, 80);
  }
}

TEST(ParseTest, TruncatedAndMutatedDocumentsNeverCrash) {
  // Every prefix, and every single-byte mutation, of valid documents parses to a value or an
  // error; nothing throws or crashes (the fuzzer does the same at scale).
  std::string docs[] = {serialize(sampleManifest()), serialize(sampleConfig())};
  int errors = 0;
  for (const std::string& doc : docs) {
    for (std::size_t n = 0; n < doc.size(); ++n) {
      std::string prefix = doc.substr(0, n);
      errors += !parseManifest(prefix).ok();
      errors += !parseImageConfig(prefix).ok();
      std::string mutated = doc;
      mutated[n] = static_cast<char>(mutated[n] ^ 0x5a);
      (void)parseManifest(mutated);
      (void)parseImageConfig(mutated);
      (void)parseIndex(mutated);
      (void)detectManifestKind(mutated, "");
    }
  }
  EXPECT_GT(errors, 0);
}

TEST(MediaTypeTest, ManifestAndIndexTypes) {
  EXPECT_TRUE(isManifestMediaType(kMediaTypeDockerManifest));
  EXPECT_TRUE(isManifestMediaType(kMediaTypeOciManifest));
  EXPECT_FALSE(isManifestMediaType(kMediaTypeOciIndex));
  EXPECT_TRUE(isIndexMediaType(kMediaTypeDockerManifestList));
  EXPECT_FALSE(isIndexMediaType(kMediaTypeOciConfig));
}

TEST(PlatformTest, ParseAndMatch) {
  ASSERT_OK_AND_ASSIGN(Platform p, Platform::parse("linux/arm64/v8"));
  EXPECT_EQ(p.str(), "linux/arm64/v8");
  EXPECT_TRUE((Platform{"arm64", "linux", "", "", {}}).matches(p));
  EXPECT_FALSE((Platform{"amd64", "linux", "", "", {}}).matches(p));
  EXPECT_THAT(Platform::parse("linux"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(Platform::parse("linux//x"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_FALSE(Platform::host().architecture.empty());
}

TEST(DescribeTest, DigestAndSize) {
  Descriptor d = describe(kMediaTypeOciConfig, "abc");
  EXPECT_EQ(d.digest.hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(d.size, 3);
}

}  // namespace
}  // namespace cairn::oci
