// Round trips against real peers: Debian's docker-registry (distribution 2.8), skopeo and
// umoci. Each test starts its own registry on 127.0.0.1 with a free port and temp storage.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <thread>

#include "../oci/test_tar.h"
#include "cairn/common/fs.h"
#include "cairn/common/json.h"
#include "cairn/layer/diff.h"
#include "cairn/layer/stream.h"
#include "cairn/oci/catalog.h"
#include "cairn/oci/layout.h"
#include "cairn/registry/client.h"
#include "cairn/registry/transfer.h"
#include "cairn/store/local_blob_store.h"
#include "cairn/testing/status_matchers.h"
#include "peer_tools.h"

namespace cairn::registry {
namespace {

namespace fs = std::filesystem;
using ::cairn::oci::testing::makeTar;
using ::cairn::oci::testing::TarEntry;
using ::cairn::registry::peer::DockerRegistry;
using ::cairn::registry::peer::haveTool;
using ::cairn::registry::peer::run;
using ::testing::HasSubstr;
using ::testing::Not;

RegistryConfig testConfig() {
  RegistryConfig c;
  c.initial_backoff = std::chrono::milliseconds(10);
  c.platform = *oci::Platform::parse("linux/amd64");
  return c;
}

// Files with varied modes, owners and links, spread over a gzip and a zstd layer, with a
// whiteout in the second layer.
struct PeerImage {
  oci::Descriptor manifest;
};

PeerImage makePeerImage(store::BlobStore& blobs, layer::Compression second) {
  std::vector<TarEntry> first = {
      {"etc/", TarEntry::Type::kDir, "", 0755},
      {"etc/hostname", TarEntry::Type::kFile, "cairn\n", 0644},
      {"etc/secret", TarEntry::Type::kFile, "s3cret", 0600, 1000, 1000},
      {"usr/", TarEntry::Type::kDir, "", 0755},
      {"usr/bin/", TarEntry::Type::kDir, "", 0755},
      {"usr/bin/tool", TarEntry::Type::kFile, "#!/bin/sh\necho hi\n", 04755},
      {"tmp/", TarEntry::Type::kDir, "", 01777},
      {"gone.txt", TarEntry::Type::kFile, "to be deleted", 0644},
      {"bin", TarEntry::Type::kSymlink, "usr/bin"},
  };
  std::vector<TarEntry> upper = {
      {"etc/", TarEntry::Type::kDir, "", 0755},
      {"etc/hostname", TarEntry::Type::kFile, "changed\n", 0640, 0, 42},
      {".wh.gone.txt", TarEntry::Type::kFile, "", 0644},
      {"home/", TarEntry::Type::kDir, "", 0750, 1000, 1000},
      {"home/user/", TarEntry::Type::kDir, "", 0700, 1000, 1000},
      {"home/user/notes", TarEntry::Type::kFile, std::string(100000, 'n'), 0640, 1000, 1000},
      {"home/user/link", TarEntry::Type::kSymlink, "../../etc/hostname", 0777, 1000, 1000},
  };
  oci::ImageConfig config;
  config.architecture = "amd64";
  config.os = "linux";
  config.created = "2026-01-01T00:00:00Z";
  config.config = oci::ContainerConfig{};
  config.config->cmd = std::vector<std::string>{"/bin/sh"};
  config.config->env = {"PATH=/usr/bin:/bin"};
  config.diff_ids = {Digest::ofBytes(makeTar(first)), Digest::ofBytes(makeTar(upper))};
  std::string l1 = makeTar(first, layer::Compression::kGzip);
  std::string l2 = makeTar(upper, second);
  oci::Manifest m;
  m.layers = {oci::describe(oci::kMediaTypeOciLayerGzip, l1),
              oci::describe(layer::ociLayerMediaType(second), l2)};
  std::string config_bytes = oci::serialize(config);
  m.config = oci::describe(oci::kMediaTypeOciConfig, config_bytes);
  std::string manifest_bytes = oci::serialize(m);
  for (const auto& b : {l1, l2, config_bytes, manifest_bytes}) {
    EXPECT_OK(store::writeBlob(blobs, b).status());
  }
  return {oci::describe(oci::kMediaTypeOciManifest, manifest_bytes)};
}

struct Node {
  std::string type;  // f, d, l
  mode_t mode = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string content;  // file content or link target
  bool operator==(const Node&) const = default;
};

std::map<std::string, Node> snapshotTree(const fs::path& root) {
  std::map<std::string, Node> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    struct stat st {};
    ::lstat(it->path().c_str(), &st);
    Node n;
    n.mode = st.st_mode & 07777;
    n.uid = st.st_uid;
    n.gid = st.st_gid;
    if (S_ISDIR(st.st_mode)) {
      n.type = "d";
    } else if (S_ISLNK(st.st_mode)) {
      n.type = "l";
      n.mode = 0;  // symlink modes are meaningless on Linux
      n.content = fs::read_symlink(it->path()).string();
    } else {
      n.type = "f";
      n.content = readFile(it->path()).valueOr("<unreadable>");
    }
    out[fs::relative(it->path(), root).string()] = n;
  }
  return out;
}

class PeerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* tool : {"docker-registry", "skopeo", "umoci", "curl"}) {
      if (!haveTool(tool)) GTEST_SKIP() << tool << " is not installed (scripts/install-deps)";
    }
    ASSERT_OK_AND_ASSIGN(tmp_, TempDir::create("peer"));
    ASSERT_OK_AND_ASSIGN(registry_, DockerRegistry::start());
    ASSERT_OK_AND_ASSIGN(blobs_, store::LocalBlobStore::open(tmp_->path() / "data"));
  }
  std::optional<TempDir> tmp_ = std::nullopt;
  std::unique_ptr<DockerRegistry> registry_;
  std::unique_ptr<store::LocalBlobStore> blobs_;
};

TEST_F(PeerTest, OurPushIsReadBySkopeo) {
  PeerImage img = makePeerImage(*blobs_, layer::Compression::kZstd);
  RegistryClient client(testConfig());
  auto dest = *oci::Reference::parse(registry_->host() + "/cairn/peer:v1");
  BlobPushOptions chunked;
  chunked.chunk_size = 16 * 1024;  // exercise PATCH uploads against the real registry
  ASSERT_OK(pushImage(client, *blobs_, img.manifest, dest, chunked).status());

  auto inspect = run({"skopeo", "inspect", "--tls-verify=false", "docker://" + dest.str()});
  ASSERT_EQ(inspect.exit_code, 0) << inspect.output;
  ASSERT_OK_AND_ASSIGN(Json j, parseJson(inspect.output));
  EXPECT_EQ(j["Digest"], img.manifest.digest.str());
  EXPECT_EQ(j["Layers"].size(), 2u);
  EXPECT_EQ(j["Architecture"], "amd64");

  // skopeo copies it into a layout; we import that and get the same manifest back.
  auto layout = tmp_->path() / "skopeo-layout";
  auto copy = run({"skopeo", "copy", "--src-tls-verify=false", "docker://" + dest.str(),
                   "oci:" + layout.string() + ":copied"});
  ASSERT_EQ(copy.exit_code, 0) << copy.output;
  ASSERT_OK_AND_ASSIGN(auto other, store::LocalBlobStore::open(tmp_->path() / "other"));
  ASSERT_OK_AND_ASSIGN(oci::Descriptor back,
                       oci::importLayout(*other, layout, "copied", oci::Platform::host()));
  EXPECT_EQ(back.digest, img.manifest.digest);

  // A second repository on the same registry: blobs are mounted, not uploaded.
  auto second = *oci::Reference::parse(registry_->host() + "/cairn/other:v1");
  BlobPushOptions mount;
  mount.mount_from = "cairn/peer";
  ASSERT_OK_AND_ASSIGN(PushResult mounted, pushImage(client, *blobs_, img.manifest, second, mount));
  EXPECT_EQ(mounted.mounted, 3u);
  EXPECT_EQ(mounted.uploaded, 0u);
}

TEST_F(PeerTest, SkopeoPushIsPulledByUs) {
  // Build a layout with our exporter, let skopeo push it as Docker schema2 (gzip), pull it.
  PeerImage img = makePeerImage(*blobs_, layer::Compression::kGzip);
  auto layout = tmp_->path() / "layout";
  ASSERT_OK(oci::exportLayout(*blobs_, img.manifest, layout, "src"));
  auto dest = *oci::Reference::parse(registry_->host() + "/peer/docker:v2s2");
  auto push = run({"skopeo", "copy", "--dest-tls-verify=false", "--format", "v2s2",
                   "oci:" + layout.string() + ":src", "docker://" + dest.str()});
  ASSERT_EQ(push.exit_code, 0) << push.output;
  auto inspect =
      run({"skopeo", "inspect", "--raw", "--tls-verify=false", "docker://" + dest.str()});
  ASSERT_EQ(inspect.exit_code, 0) << inspect.output;
  EXPECT_THAT(inspect.output, HasSubstr(std::string(oci::kMediaTypeDockerManifest)));

  ASSERT_OK_AND_ASSIGN(auto dst, store::LocalBlobStore::open(tmp_->path() / "pulled"));
  auto rootfs = tmp_->path() / "rootfs";
  fs::create_directories(rootfs);
  RegistryClient client(testConfig());
  PullOptions opts;
  opts.unpack = makeRootfsUnpacker(rootfs);
  ASSERT_OK_AND_ASSIGN(PullResult pulled, pullImage(client, *dst, dest, opts));
  EXPECT_EQ(pulled.manifest.media_type, oci::kMediaTypeDockerManifest);
  EXPECT_EQ(pulled.manifest.digest, Digest::ofBytes(inspect.output));
  EXPECT_EQ(readFile(rootfs / "etc/hostname").valueOr(""), "changed\n");
  EXPECT_FALSE(fs::exists(rootfs / "gone.txt"));
}

TEST_F(PeerTest, UmociUnpackOfOurExportMatchesOurUnpack) {
  // Debian's umoci 0.4.7 reads gzip and uncompressed layers only ("blob is not correct
  // mediatype: …+zstd"); zstd layers are checked against skopeo in OurPushIsReadBySkopeo.
  for (layer::Compression c : {layer::Compression::kGzip, layer::Compression::kNone}) {
    SCOPED_TRACE(std::string(layer::compressionName(c)));
    PeerImage img = makePeerImage(*blobs_, c);
    std::string name(layer::compressionName(c));
    auto layout = tmp_->path() / ("layout-" + name);
    ASSERT_OK(oci::exportLayout(*blobs_, img.manifest, layout, "t"));
    auto bundle = tmp_->path() / ("bundle-" + name);
    auto unpack = run({"umoci", "unpack", "--image", layout.string() + ":t", bundle.string()});
    ASSERT_EQ(unpack.exit_code, 0) << unpack.output;

    auto ours = tmp_->path() / ("ours-" + name);
    fs::create_directories(ours);
    ASSERT_OK_AND_ASSIGN(oci::LoadedImage loaded, oci::loadImage(*blobs_, img.manifest));
    ASSERT_OK(unpackImage(*blobs_, loaded.manifest, loaded.config, ours));

    auto theirs_tree = snapshotTree(bundle / "rootfs");
    auto ours_tree = snapshotTree(ours);
    // umoci creates the rootfs directory itself; compare what is inside.
    EXPECT_EQ(ours_tree.size(), theirs_tree.size());
    for (const auto& [path, node] : theirs_tree) {
      auto it = ours_tree.find(path);
      if (it == ours_tree.end()) {
        ADD_FAILURE() << "missing in our unpack: " << path;
        continue;
      }
      EXPECT_EQ(it->second.type, node.type) << path;
      EXPECT_EQ(it->second.mode, node.mode) << path;
      EXPECT_EQ(it->second.uid, node.uid) << path;
      EXPECT_EQ(it->second.gid, node.gid) << path;
      EXPECT_EQ(it->second.content, node.content) << path;
    }
    EXPECT_EQ(ours_tree.at("usr/bin/tool").mode, 04755u);
    EXPECT_EQ(ours_tree.at("tmp").mode, 01777u);
    EXPECT_EQ(ours_tree.at("home/user/notes").uid, 1000u);
    EXPECT_FALSE(ours_tree.contains("gone.txt"));
  }
}

TEST_F(PeerTest, WeImportWhatUmociWrites) {
  auto layout = tmp_->path() / "umoci";
  ASSERT_EQ(run({"umoci", "init", "--layout", layout.string()}).exit_code, 0);
  ASSERT_EQ(run({"umoci", "new", "--image", layout.string() + ":base"}).exit_code, 0);
  auto bundle = tmp_->path() / "bundle";
  ASSERT_EQ(
      run({"umoci", "unpack", "--image", layout.string() + ":base", bundle.string()}).exit_code, 0);
  ASSERT_OK(writeFileDurable(bundle / "rootfs/hello.txt", "from umoci"));
  auto repack = run({"umoci", "repack", "--image", layout.string() + ":base", bundle.string()});
  ASSERT_EQ(repack.exit_code, 0) << repack.output;
  auto config = run({"umoci", "config", "--image", layout.string() + ":base",
                     "--config.cmd=/bin/echo", "--config.env=A=1"});
  ASSERT_EQ(config.exit_code, 0) << config.output;

  ASSERT_OK_AND_ASSIGN(oci::Descriptor d,
                       oci::importLayout(*blobs_, layout, "base", oci::Platform::host()));
  ASSERT_OK_AND_ASSIGN(oci::LoadedImage img, oci::loadImage(*blobs_, d));
  ASSERT_TRUE(img.config.config.has_value());
  EXPECT_EQ(img.config.config->cmd, (std::vector<std::string>{"/bin/echo"}));
  EXPECT_THAT(img.config.config->env, ::testing::Contains("A=1"));
  auto rootfs = tmp_->path() / "rootfs";
  fs::create_directories(rootfs);
  ASSERT_OK(unpackImage(*blobs_, img.manifest, img.config, rootfs));
  EXPECT_EQ(readFile(rootfs / "hello.txt").valueOr(""), "from umoci");
}

// The CLI forms scripts rely on, end to end against the registry.
TEST_F(PeerTest, CliRoundTrip) {
  std::string cairn = std::string(CAIRN_BINARY_DIR) + "/src/cli/cairn";
  if (!fs::exists(cairn)) GTEST_SKIP() << "the cairn binary is not built (" << cairn << ")";
  PeerImage img = makePeerImage(*blobs_, layer::Compression::kGzip);  // umoci reads it below
  auto layout = tmp_->path() / "cli-layout";
  ASSERT_OK(oci::exportLayout(*blobs_, img.manifest, layout, "v1"));
  std::string data = (tmp_->path() / "cli-data").string();
  auto cli = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {cairn, "--data-dir", data});
    return run(args);
  };
  auto imported = cli({"image", "import", "oci:" + layout.string() + ":v1", "local/app:v1"});
  ASSERT_EQ(imported.exit_code, 0) << imported.output;
  EXPECT_THAT(imported.output, HasSubstr(img.manifest.digest.str()));

  std::string remote = registry_->host() + "/cli/app:v1";
  auto pushed = cli({"image", "push", "local/app:v1", remote});
  ASSERT_EQ(pushed.exit_code, 0) << pushed.output;

  auto pulled = cli({"image", "pull", remote});
  ASSERT_EQ(pulled.exit_code, 0) << pulled.output;
  EXPECT_THAT(pulled.output, HasSubstr(img.manifest.digest.str()));

  auto list = cli({"image", "list", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.output;
  ASSERT_OK_AND_ASSIGN(Json entries, parseJson(list.output));
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0]["name"], remote);  // sorted by name
  EXPECT_EQ(entries[1]["name"], "docker.io/local/app:v1");

  auto inspect = cli({"image", "inspect", remote});
  ASSERT_EQ(inspect.exit_code, 0) << inspect.output;
  ASSERT_OK_AND_ASSIGN(Json doc, parseJson(inspect.output));
  EXPECT_EQ(doc["config"]["config"]["Cmd"][0], "/bin/sh");

  auto out_layout = tmp_->path() / "cli-export";
  auto exported = cli({"image", "export", remote, "oci:" + out_layout.string()});
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  auto bundle = tmp_->path() / "cli-bundle";
  auto umoci = run({"umoci", "unpack", "--image", out_layout.string() + ":v1", bundle.string()});
  ASSERT_EQ(umoci.exit_code, 0) << umoci.output;
  EXPECT_EQ(readFile(bundle / "rootfs/etc/hostname").valueOr(""), "changed\n");

  auto removed = cli({"image", "rm", "local/app:v1"});
  ASSERT_EQ(removed.exit_code, 0) << removed.output;
  auto missing = cli({"image", "inspect", "local/app:v1"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.output, HasSubstr("not found"));
  auto bad = cli({"image", "pull", "Bad:Ref:x"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.output, HasSubstr("invalid image reference"));
  auto usage = cli({"image", "export", remote});
  EXPECT_EQ(usage.exit_code, 2);
}

// Pulled zstd layers cannot be read by Debian's umoci 0.4.7: `image export` writes gzip by
// default, and the stored layers as they are with --compression keep.
TEST_F(PeerTest, CliExportWritesGzipLayersThatUmociReads) {
  std::string cairn = std::string(CAIRN_BINARY_DIR) + "/src/cli/cairn";
  if (!fs::exists(cairn)) GTEST_SKIP() << "the cairn binary is not built (" << cairn << ")";
  PeerImage img = makePeerImage(*blobs_, layer::Compression::kZstd);
  auto src = tmp_->path() / "zstd-layout";
  ASSERT_OK(oci::exportLayout(*blobs_, img.manifest, src, "v1"));
  std::string data = (tmp_->path() / "export-data").string();
  auto cli = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {cairn, "--data-dir", data});
    return run(args);
  };
  ASSERT_EQ(cli({"image", "import", "oci:" + src.string() + ":v1", "local/z:v1"}).exit_code, 0);

  auto out = tmp_->path() / "gzip-out";
  auto exported = cli({"image", "export", "local/z:v1", "oci:" + out.string()});
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  EXPECT_THAT(exported.output, HasSubstr("Recompressed 1 layer to gzip"));
  auto bundle = tmp_->path() / "gzip-bundle";
  auto umoci = run({"umoci", "unpack", "--image", out.string() + ":v1", bundle.string()});
  ASSERT_EQ(umoci.exit_code, 0) << umoci.output;
  EXPECT_EQ(readFile(bundle / "rootfs/etc/hostname").valueOr(""), "changed\n");
  EXPECT_EQ(readFile(bundle / "rootfs/home/user/notes").valueOr(""), std::string(100000, 'n'));

  // What the layout holds: gzip layers, the same config (diff ids) as the zstd original.
  ASSERT_OK_AND_ASSIGN(auto other, store::LocalBlobStore::open(tmp_->path() / "export-check"));
  ASSERT_OK_AND_ASSIGN(oci::Descriptor d,
                       oci::importLayout(*other, out, "v1", oci::Platform::host()));
  ASSERT_OK_AND_ASSIGN(oci::LoadedImage gz, oci::loadImage(*other, d));
  ASSERT_OK_AND_ASSIGN(oci::LoadedImage orig, oci::loadImage(*blobs_, img.manifest));
  ASSERT_EQ(gz.manifest.layers.size(), 2u);
  for (const auto& l : gz.manifest.layers)
    EXPECT_EQ(l.media_type, oci::kMediaTypeOciLayerGzip);
  EXPECT_EQ(gz.manifest.config.digest, orig.manifest.config.digest);

  // --compression keep: the zstd layer as stored (and the original manifest digest).
  auto kept = tmp_->path() / "kept-out";
  auto keep =
      cli({"image", "export", "--compression", "keep", "local/z:v1", "oci:" + kept.string()});
  ASSERT_EQ(keep.exit_code, 0) << keep.output;
  EXPECT_THAT(keep.output, Not(HasSubstr("Recompressed")));
  ASSERT_OK_AND_ASSIGN(auto third, store::LocalBlobStore::open(tmp_->path() / "kept-check"));
  ASSERT_OK_AND_ASSIGN(oci::Descriptor k,
                       oci::importLayout(*third, kept, "v1", oci::Platform::host()));
  EXPECT_EQ(k.digest, img.manifest.digest);

  auto bad = cli({"image", "export", "--compression", "lz4", "local/z:v1", "oci:" + kept.string()});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.output, HasSubstr("want gzip (default), zstd, none or keep"));
}

// A Cairn build stores its layers as uncompressed tars made from the layer directories
// (LocalBlobStore::putLayerTar). Pushed, they go as gzip (what every client reads) with the
// config's diff ids; skopeo and umoci read the result, and `cairn image export` writes what
// --compression says.
TEST_F(PeerTest, ABuiltImageIsPushedAndExportedCompressed) {
  std::string cairn = std::string(CAIRN_BINARY_DIR) + "/src/cli/cairn";
  if (!fs::exists(cairn)) GTEST_SKIP() << "the cairn binary is not built (" << cairn << ")";
  fs::path data = tmp_->path() / "built-data";
  ASSERT_OK_AND_ASSIGN(auto blobs, store::LocalBlobStore::open(data));
  fs::path dir = data / "layers" / "l1" / "fs";
  fs::create_directories(dir / "etc");
  ASSERT_OK(writeFileDurable(dir / "etc" / "hostname", "built\n"));
  ASSERT_OK(writeFileDurable(dir / "big.txt", std::string(200000, 'b')));
  std::string tar;
  layer::StringSink sink(&tar);
  ASSERT_OK(layer::createLayerTar(dir, sink).status());
  Digest diff_id = Digest::ofBytes(tar);
  ASSERT_OK(blobs->putLayerTar(dir, diff_id, tar.size()).status());
  oci::ImageConfig config;
  config.architecture = "amd64";
  config.os = "linux";
  config.diff_ids = {diff_id};
  std::string config_bytes = oci::serialize(config);
  ASSERT_OK(store::writeBlob(*blobs, config_bytes).status());
  oci::Manifest m;
  m.config = oci::describe(oci::kMediaTypeOciConfig, config_bytes);
  oci::Descriptor l;
  l.media_type = std::string(oci::kMediaTypeOciLayer);
  l.digest = diff_id;
  l.size = static_cast<std::int64_t>(tar.size());
  m.layers = {l};
  std::string manifest_bytes = oci::serialize(m);
  ASSERT_OK(store::writeBlob(*blobs, manifest_bytes).status());
  oci::Descriptor built = oci::describe(oci::kMediaTypeOciManifest, manifest_bytes);
  ASSERT_OK_AND_ASSIGN(auto catalog, oci::ImageCatalog::open(data));
  ASSERT_OK(catalog->tag("local/built:v1", built, "build"));

  auto cli = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {cairn, "--data-dir", data.string()});
    return run(args);
  };
  std::string remote = registry_->host() + "/cairn/built:v1";
  auto pushed = cli({"image", "push", "local/built:v1", remote});
  ASSERT_EQ(pushed.exit_code, 0) << pushed.output;
  EXPECT_THAT(pushed.output, HasSubstr("Compressed 1 layers to gzip"));
  auto raw = run({"skopeo", "inspect", "--raw", "--tls-verify=false", "docker://" + remote});
  ASSERT_EQ(raw.exit_code, 0) << raw.output;
  ASSERT_OK_AND_ASSIGN(oci::Manifest remote_manifest, oci::parseManifest(raw.output));
  ASSERT_EQ(remote_manifest.layers.size(), 1u);
  EXPECT_EQ(remote_manifest.layers[0].media_type, oci::kMediaTypeOciLayerGzip);
  EXPECT_EQ(remote_manifest.config.digest, m.config.digest);  // same config, same diff ids
  // skopeo copies it (checking every blob's digest) and umoci unpacks it (checking diff ids).
  auto layout = tmp_->path() / "built-copy";
  auto copy = run({"skopeo", "copy", "--src-tls-verify=false", "docker://" + remote,
                   "oci:" + layout.string() + ":v1"});
  ASSERT_EQ(copy.exit_code, 0) << copy.output;
  auto bundle = tmp_->path() / "built-bundle";
  auto unpack = run({"umoci", "unpack", "--image", layout.string() + ":v1", bundle.string()});
  ASSERT_EQ(unpack.exit_code, 0) << unpack.output;
  EXPECT_EQ(readFile(bundle / "rootfs/etc/hostname").valueOr(""), "built\n");
  // A second push compresses nothing: the copy is remembered in the build cache index.
  auto again = cli({"image", "push", "local/built:v1", registry_->host() + "/cairn/built:v2"});
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_THAT(again.output, HasSubstr("Compressed 0 layers to gzip (1 more reused"));
  auto bad = cli({"image", "push", "--compression", "lz4", "local/built:v1", remote});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.output, HasSubstr("want gzip, zstd or none"));

  // Export: each --compression gives its media type; the config stays.
  const std::map<std::string, std::string> want = {
      {"gzip", std::string(oci::kMediaTypeOciLayerGzip)},
      {"zstd", std::string(oci::kMediaTypeOciLayerZstd)},
      {"none", std::string(oci::kMediaTypeOciLayer)},
      {"keep", std::string(oci::kMediaTypeOciLayer)}};
  for (const auto& [flag, media_type] : want) {
    SCOPED_TRACE(flag);
    auto out = tmp_->path() / ("built-export-" + flag);
    auto exported = cli({"image", "export", "--compression", flag, "local/built:v1",
                         "oci:" + out.string() + ":v1"});
    ASSERT_EQ(exported.exit_code, 0) << exported.output;
    ASSERT_OK_AND_ASSIGN(auto check, store::LocalBlobStore::open(tmp_->path() / ("check-" + flag)));
    ASSERT_OK_AND_ASSIGN(oci::Descriptor d,
                         oci::importLayout(*check, out, "v1", oci::Platform::host()));
    ASSERT_OK_AND_ASSIGN(oci::LoadedImage img, oci::loadImage(*check, d));
    ASSERT_EQ(img.manifest.layers.size(), 1u);
    EXPECT_EQ(img.manifest.layers[0].media_type, media_type);
    EXPECT_EQ(img.manifest.config.digest, m.config.digest);
  }
}

}  // namespace
}  // namespace cairn::registry
