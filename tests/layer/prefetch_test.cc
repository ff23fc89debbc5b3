#include "cairn/layer/prefetch.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>

#include "cairn/testing/status_matchers.h"

namespace cairn::layer {
namespace {

using ::cairn::testing::StatusIs;
using ::testing::HasSubstr;

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  std::uint32_t x = 12345;
  for (auto& c : s) {
    x = x * 1103515245 + 12345;
    c = static_cast<char>(x >> 16);
  }
  return s;
}

// Returns `data` in pieces of varying odd sizes (as a decompressor does), then `end` (an
// error, or OK for a clean end of stream).
class PieceSource final : public ByteSource {
 public:
  PieceSource(std::string data, Status end = okStatus())
      : data_(std::move(data)), end_(std::move(end)) {}
  Result<std::size_t> read(void* buf, std::size_t n) override {
    if (pos_ == data_.size()) {
      if (!end_.ok()) return end_;
      return std::size_t{0};
    }
    std::size_t piece = 1 + (calls_++ * 7919) % 70000;
    std::size_t got = std::min({n, piece, data_.size() - pos_});
    std::memcpy(buf, data_.data() + pos_, got);
    pos_ += got;
    return got;
  }

 private:
  std::string data_;
  Status end_;
  std::size_t pos_ = 0;
  std::size_t calls_ = 0;
};

// Never ends: what a reader that gives up early leaves behind.
class EndlessSource final : public ByteSource {
 public:
  Result<std::size_t> read(void* buf, std::size_t n) override {
    std::memset(buf, 'x', n);
    reads_.fetch_add(1);
    return n;
  }
  std::atomic<int> reads_{0};
};

std::string readAll(ByteSource& source, std::size_t step) {
  std::string out;
  std::string buf(step, '\0');
  for (;;) {
    auto n = source.read(buf.data(), buf.size());
    EXPECT_TRUE(n.ok()) << n.status().message();
    if (!n.ok() || *n == 0) return out;
    out.append(buf.data(), *n);
  }
}

TEST(PrefetchSourceTest, ReturnsEveryByteInOrder) {
  const std::string data = pattern(3 * 1024 * 1024 + 17);
  struct Shape {
    std::size_t chunk, depth, step;
  } shapes[] = {{PrefetchSource::kDefaultChunk, PrefetchSource::kDefaultDepth, 65536},
                {1, 1, 1 << 20},
                {4096, 2, 10},
                {1 << 20, 1, 512 * 1024 + 3}};
  for (const Shape& s : shapes) {
    SCOPED_TRACE(std::to_string(s.chunk) + "/" + std::to_string(s.depth) + "/" +
                 std::to_string(s.step));
    PieceSource inner(s.chunk == 1 ? data.substr(0, 20000) : data);
    PrefetchSource ahead(&inner, s.chunk, s.depth);
    std::string got = readAll(ahead, s.step);
    EXPECT_EQ(got, s.chunk == 1 ? data.substr(0, 20000) : data);
    // The end stays the end.
    char c;
    ASSERT_OK_AND_ASSIGN(std::size_t again, ahead.read(&c, 1));
    EXPECT_EQ(again, 0u);
  }
}

TEST(PrefetchSourceTest, EmptyStream) {
  PieceSource inner("");
  PrefetchSource ahead(&inner);
  char buf[16];
  ASSERT_OK_AND_ASSIGN(std::size_t n, ahead.read(buf, sizeof buf));
  EXPECT_EQ(n, 0u);
}

TEST(PrefetchSourceTest, BytesBeforeAnErrorComeFirstThenTheError) {
  const std::string data = pattern(1000000);
  PieceSource inner(data, invalidArgument("gzip stream corrupt near compressed byte 42"));
  PrefetchSource ahead(&inner, 64 * 1024, 3);
  std::string got;
  char buf[10000];
  Status end;
  for (int i = 0; i < 10000; ++i) {
    auto n = ahead.read(buf, sizeof buf);
    if (!n.ok()) {
      end = n.status();
      break;
    }
    ASSERT_NE(*n, 0u) << "an error must not look like the end of the stream";
    got.append(buf, *n);
  }
  EXPECT_EQ(got, data);
  EXPECT_THAT(end, StatusIs(StatusCode::kInvalidArgument, HasSubstr("near compressed byte 42")));
  // And it stays an error.
  EXPECT_FALSE(ahead.read(buf, sizeof buf).ok());
}

TEST(PrefetchSourceTest, DigestOfTheInnerHashIsCompleteAfterDrain) {
  const std::string data = pattern(2 * 1024 * 1024 + 5);
  PieceSource inner(data);
  HashingSource hashed(&inner);
  PrefetchSource ahead(&hashed);
  char head[1000];
  ASSERT_OK(ahead.read(head, sizeof head).status());  // a reader that stops early...
  ASSERT_OK(drain(ahead));                            // ...then drains
  EXPECT_EQ(hashed.size(), data.size());
  EXPECT_EQ(hashed.digest(), Digest::ofBytes(data));
}

TEST(PrefetchSourceTest, AReaderThatGivesUpDoesNotBlockDestruction) {
  EndlessSource inner;
  {
    PrefetchSource ahead(&inner, 4096, 4);
    char buf[100];
    ASSERT_OK_AND_ASSIGN(std::size_t n, ahead.read(buf, sizeof buf));
    EXPECT_EQ(n, sizeof buf);
  }  // joins the thread, which was waiting for room or in the middle of a read
  int reads = inner.reads_.load();
  EXPECT_GE(reads, 1);
  EXPECT_LE(reads, 6) << "read ahead is bounded by depth";
}

}  // namespace
}  // namespace cairn::layer
