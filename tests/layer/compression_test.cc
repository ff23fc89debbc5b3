#include "cairn/layer/compression.h"

#include <random>

#include "cairn/common/crypto.h"
#include "cairn/layer/chain_id.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::layer {
namespace {

using ::cairn::testing::StatusIs;
using ::testing::HasSubstr;

std::string sampleData(std::size_t n) {
  // Compressible but not trivial: words from a small vocabulary, deterministic.
  static const char* kWords[] = {"layer ", "blob ", "sha256 ", "overlay ", "tar ", "\n", "zstd "};
  std::mt19937 rng(42);
  std::string out;
  while (out.size() < n)
    out += kWords[rng() % 7];
  out.resize(n);
  return out;
}

Result<std::string> compress(Compression c, std::string_view data, CompressionOptions o = {}) {
  std::string out;
  StringSink sink(&out);
  CAIRN_ASSIGN_OR_RETURN(auto comp, makeCompressor(c, &sink, o));
  // Uneven chunks exercise the streaming paths.
  for (std::size_t off = 0; off < data.size(); off += 7919) {
    CAIRN_RETURN_IF_ERROR(comp->write(data.substr(off, 7919)));
  }
  CAIRN_RETURN_IF_ERROR(comp->finish());
  return out;
}

Result<std::string> decompressAll(ByteSource& src) {
  std::string out;
  char buf[5000];
  for (;;) {
    CAIRN_ASSIGN_OR_RETURN(std::size_t n, src.read(buf, sizeof buf));
    if (n == 0) return out;
    out.append(buf, n);
  }
}

Result<std::string> decompress(Compression c, std::string_view data) {
  StringSource in(data);
  CAIRN_ASSIGN_OR_RETURN(auto d, makeDecompressor(c, &in));
  return decompressAll(*d);
}

class RoundTrip : public ::testing::TestWithParam<Compression> {};

TEST_P(RoundTrip, CompressThenDecompressGivesTheInput) {
  std::string data = sampleData(3 << 20);
  ASSERT_OK_AND_ASSIGN(std::string packed, compress(GetParam(), data));
  if (GetParam() != Compression::kNone) {
    EXPECT_LT(packed.size(), data.size() / 2);
  }
  EXPECT_EQ(detectCompression(packed), GetParam());
  ASSERT_OK_AND_ASSIGN(std::string back, decompress(GetParam(), packed));
  EXPECT_EQ(back, data);
  StringSource in(packed);
  ASSERT_OK_AND_ASSIGN(auto autod, makeAutoDecompressor(&in));
  ASSERT_OK_AND_ASSIGN(back, decompressAll(*autod));
  EXPECT_EQ(back, data);
}

TEST_P(RoundTrip, EmptyInput) {
  ASSERT_OK_AND_ASSIGN(std::string packed, compress(GetParam(), ""));
  ASSERT_OK_AND_ASSIGN(std::string back, decompress(GetParam(), packed));
  EXPECT_EQ(back, "");
}

class Framed : public ::testing::TestWithParam<Compression> {};

TEST_P(Framed, TruncatedStreamIsAnError) {
  std::string data = sampleData(200000);
  ASSERT_OK_AND_ASSIGN(std::string packed, compress(GetParam(), data));
  packed.resize(packed.size() / 2);
  EXPECT_THAT(decompress(GetParam(), packed),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("truncated")));
}

TEST_P(Framed, CorruptStreamIsAnError) {
  std::string data = sampleData(200000);
  ASSERT_OK_AND_ASSIGN(std::string packed, compress(GetParam(), data));
  for (std::size_t i = 20; i < packed.size(); i += 97)
    packed[i] = static_cast<char>(packed[i] ^ 0x5a);
  auto r = decompress(GetParam(), packed);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr(std::string(compressionName(GetParam()))));
}

TEST_P(RoundTrip, WorkerCountDoesNotChangeTheBytes) {
  std::string data = sampleData(1 << 20);
  ASSERT_OK_AND_ASSIGN(std::string a, compress(GetParam(), data, {.level = 0, .threads = 1}));
  ASSERT_OK_AND_ASSIGN(std::string b, compress(GetParam(), data, {.level = 0, .threads = 2}));
  EXPECT_EQ(Digest::ofBytes(a), Digest::ofBytes(b));
}

INSTANTIATE_TEST_SUITE_P(All, RoundTrip,
                         ::testing::Values(Compression::kNone, Compression::kGzip,
                                           Compression::kZstd),
                         [](const ::testing::TestParamInfo<Compression>& p) {
                           return std::string(compressionName(p.param));
                         });

INSTANTIATE_TEST_SUITE_P(Compressed, Framed,
                         ::testing::Values(Compression::kGzip, Compression::kZstd),
                         [](const ::testing::TestParamInfo<Compression>& p) {
                           return std::string(compressionName(p.param));
                         });

TEST(CompressionTest, ConcatenatedGzipMembersReadAsOneStream) {
  ASSERT_OK_AND_ASSIGN(std::string a, compress(Compression::kGzip, "first,"));
  ASSERT_OK_AND_ASSIGN(std::string b, compress(Compression::kGzip, "second"));
  ASSERT_OK_AND_ASSIGN(std::string back, decompress(Compression::kGzip, a + b));
  EXPECT_EQ(back, "first,second");
}

TEST(CompressionTest, ConcatenatedZstdFramesReadAsOneStream) {
  ASSERT_OK_AND_ASSIGN(std::string a, compress(Compression::kZstd, "first,"));
  ASSERT_OK_AND_ASSIGN(std::string b, compress(Compression::kZstd, "second"));
  ASSERT_OK_AND_ASSIGN(std::string back, decompress(Compression::kZstd, a + b));
  EXPECT_EQ(back, "first,second");
}

TEST(CompressionTest, DetectionFromMagicBytes) {
  EXPECT_EQ(detectCompression("\x1f\x8b\x08"), Compression::kGzip);
  EXPECT_EQ(detectCompression("\x28\xb5\x2f\xfd"), Compression::kZstd);
  EXPECT_EQ(detectCompression("\x28\xb5\x2f"), Compression::kNone);
  EXPECT_EQ(detectCompression("ustar"), Compression::kNone);
  EXPECT_EQ(detectCompression(""), Compression::kNone);
}

TEST(CompressionTest, MediaTypes) {
  EXPECT_EQ(*compressionFromMediaType("application/vnd.oci.image.layer.v1.tar"),
            Compression::kNone);
  EXPECT_EQ(*compressionFromMediaType("application/vnd.oci.image.layer.v1.tar+gzip"),
            Compression::kGzip);
  EXPECT_EQ(*compressionFromMediaType("application/vnd.oci.image.layer.v1.tar+zstd"),
            Compression::kZstd);
  EXPECT_EQ(*compressionFromMediaType("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            Compression::kGzip);
  EXPECT_EQ(*compressionFromMediaType("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"),
            Compression::kGzip);
  EXPECT_EQ(
      *compressionFromMediaType("application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"),
      Compression::kZstd);
  EXPECT_THAT(compressionFromMediaType("application/vnd.oci.image.config.v1+json"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("not a layer media type")));
  EXPECT_EQ(ociLayerMediaType(Compression::kZstd), "application/vnd.oci.image.layer.v1.tar+zstd");
  EXPECT_EQ(*parseCompression("gzip"), Compression::kGzip);
  EXPECT_THAT(parseCompression("lz4"), StatusIs(StatusCode::kInvalidArgument, HasSubstr("lz4")));
}

TEST(CompressionTest, BadLevelsAreRejected) {
  std::string out;
  StringSink sink(&out);
  EXPECT_THAT(makeCompressor(Compression::kGzip, &sink, {.level = 12}),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("gzip level 12")));
}

TEST(LayerEncoderTest, OnePassGivesDiffIdAndDigest) {
  std::string tar = sampleData(1 << 20);
  for (Compression c : {Compression::kNone, Compression::kGzip, Compression::kZstd}) {
    std::string blob;
    StringSink sink(&blob);
    LayerEncoder enc(c, &sink);
    for (std::size_t off = 0; off < tar.size(); off += 65536) {
      ASSERT_OK(enc.write(std::string_view(tar).substr(off, 65536)));
    }
    ASSERT_OK_AND_ASSIGN(EncodedLayer layer, enc.finishLayer());
    EXPECT_EQ(layer.diff_id, Digest::ofBytes(tar));
    EXPECT_EQ(layer.tar_size, tar.size());
    EXPECT_EQ(layer.digest, Digest::ofBytes(blob));
    EXPECT_EQ(layer.size, blob.size());
    EXPECT_EQ(layer.media_type, ociLayerMediaType(c));
    if (c == Compression::kNone) {
      EXPECT_EQ(layer.digest, layer.diff_id);
    }
    ASSERT_OK_AND_ASSIGN(std::string back, decompress(c, blob));
    EXPECT_EQ(back, tar);
    EXPECT_THAT(enc.write("more"), StatusIs(StatusCode::kFailedPrecondition));
  }
}

TEST(ChainIdTest, FollowsTheImageSpec) {
  Digest a = Digest::ofBytes("a"), b = Digest::ofBytes("b"), c = Digest::ofBytes("c");
  std::vector<Digest> ids = chainIds({a, b, c});
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[0], a);
  EXPECT_EQ(ids[1].hex(), sha256Hex(a.str() + " " + b.str()));
  EXPECT_EQ(ids[2].hex(), sha256Hex(ids[1].str() + " " + c.str()));
  EXPECT_EQ(chainId(Digest(), a), a);
  EXPECT_TRUE(chainIds({}).empty());
}

}  // namespace
}  // namespace cairn::layer
