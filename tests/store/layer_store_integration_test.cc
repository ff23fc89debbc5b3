// Integration (root): layers imported into the LayerStore stack as real overlayfs lower dirs,
// whiteouts and opaque directories included, and the stack exports back to the same diff ids.
#include <sys/mount.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <set>

#include "../layer/tar_builder.h"
#include "cairn/common/fs.h"
#include "cairn/store/layer_store.h"
#include "cairn/store/local_blob_store.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::store {
namespace {

using ::cairn::layer::testing::TarBuilder;
namespace fs = std::filesystem;

std::set<std::string> tree(const fs::path& root) {
  std::set<std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    out.insert(it->path().lexically_relative(root).string());
  }
  return out;
}

TEST(LayerStoreOverlayTest, ImportedLayersMountAsOverlayLowerDirs) {
  if (::geteuid() != 0) GTEST_SKIP() << "overlay mounts and whiteout devices need root";
  ASSERT_OK_AND_ASSIGN(TempDir tmp, TempDir::create("layer-overlay"));
  ASSERT_OK_AND_ASSIGN(auto layers, LayerStore::open(tmp.path()));
  ASSERT_OK_AND_ASSIGN(auto blobs, LocalBlobStore::open(tmp.path()));

  std::string base = TarBuilder()
                         .dir("etc/")
                         .file("etc/a", "a")
                         .file("etc/b", "b")
                         .dir("var/cache/")
                         .file("var/cache/x", "x")
                         .file("var/cache/y", "y")
                         .build();
  std::string top = TarBuilder()
                        .file("etc/.wh.a", "")
                        .dir("var/cache/")
                        .file("var/cache/.wh..wh..opq", "")
                        .file("var/cache/z", "z")
                        .file("new", "n")
                        .build();
  layer::StringSource s0(base), s1(top);
  ASSERT_OK_AND_ASSIGN(LayerInfo l0, layers->importTar(s0, Digest(), Digest::ofBytes(base)));
  ASSERT_OK_AND_ASSIGN(LayerInfo l1, layers->importTar(s1, l0.chain_id, Digest::ofBytes(top)));
  ASSERT_OK_AND_ASSIGN(auto lowers, layers->lowerDirs(l1.chain_id));
  std::string opts = "lowerdir=";
  for (std::size_t i = 0; i < lowers.size(); ++i) {
    opts += (i ? ":" : "") + lowers[i].string();
  }
  fs::path merged = tmp.path() / "merged";
  fs::create_directories(merged);
  ASSERT_EQ(::mount("overlay", merged.c_str(), "overlay", MS_RDONLY, opts.c_str()), 0)
      << std::strerror(errno);
  std::set<std::string> seen = tree(merged);
  ::umount2(merged.c_str(), MNT_DETACH);
  EXPECT_EQ(seen,
            (std::set<std::string>{"etc", "etc/b", "var", "var/cache", "var/cache/z", "new"}));

  // Exporting the unpacked top layer turns overlay's markers back into OCI whiteouts, and the
  // diff id the encoder reports is the sha256 of the tar inside the blob.
  ASSERT_OK_AND_ASSIGN(layer::EncodedLayer enc, exportDirToBlob(layers->fsPath(l1.chain_id), *blobs,
                                                                layer::Compression::kZstd));
  ASSERT_OK_AND_ASSIGN(std::string round, [&]() -> Result<std::string> {
    CAIRN_ASSIGN_OR_RETURN(auto stream, blobs->openRead(enc.digest));
    std::string out;
    layer::FunctionSource src(
        [&](void* b, std::size_t n) -> Result<std::size_t> { return stream->read(b, n); });
    CAIRN_ASSIGN_OR_RETURN(auto plain, layer::makeAutoDecompressor(&src));
    char buf[65536];
    for (;;) {
      CAIRN_ASSIGN_OR_RETURN(std::size_t n, plain->read(buf, sizeof buf));
      if (n == 0) return out;
      out.append(buf, n);
    }
  }());
  EXPECT_NE(round.find("etc/.wh.a"), std::string::npos);
  EXPECT_NE(round.find("var/cache/.wh..wh..opq"), std::string::npos);
  EXPECT_EQ(Digest::ofBytes(round), enc.diff_id);
}

}  // namespace
}  // namespace cairn::store
