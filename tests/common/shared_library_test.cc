#include "cairn/common/shared_library.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <utility>

#include "cairn/testing/status_matchers.h"

namespace cairn {
namespace {

using ::cairn::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// zlib is linked by common itself, so opening it gives the copy already mapped.
TEST(SharedLibraryTest, ResolvesAFunctionThatWorks) {
  ASSERT_OK_AND_ASSIGN(SharedLibrary lib, SharedLibrary::open("libz.so.1", "zlib1g"));
  EXPECT_EQ(lib.soname(), "libz.so.1");
  const char* (*version)() = nullptr;
  ASSERT_OK(lib.resolve("zlibVersion", version));
  ASSERT_NE(version, nullptr);
  EXPECT_EQ(version()[0], '1') << version();
}

TEST(SharedLibraryTest, AMissingLibraryNamesThePackageToInstall) {
  EXPECT_THAT(SharedLibrary::open("libcairn-no-such-library.so.7", "cairn-nothing7").status(),
              StatusIs(StatusCode::kFailedPrecondition,
                       StartsWith("libcairn-no-such-library.so.7 not found: install "
                                  "cairn-nothing7 (")));
}

TEST(SharedLibraryTest, AMissingSymbolNamesItAndTheHint) {
  ASSERT_OK_AND_ASSIGN(SharedLibrary lib, SharedLibrary::open("libz.so.1", "zlib1g"));
  void (*fn)() = nullptr;
  EXPECT_THAT(lib.resolve("archive_read_new", fn, ": is it really libarchive?"),
              StatusIs(StatusCode::kFailedPrecondition,
                       AllOf(StartsWith("libz.so.1 has no archive_read_new ("),
                             HasSubstr("): is it really libarchive?"))));
  EXPECT_EQ(fn, nullptr) << "a failed lookup leaves the field alone";
}

TEST(SharedLibraryTest, AMovedFromLibraryIsClosedNotDangling) {
  ASSERT_OK_AND_ASSIGN(SharedLibrary lib, SharedLibrary::open("libz.so.1", "zlib1g"));
  SharedLibrary moved = std::move(lib);
  const char* (*version)() = nullptr;
  ASSERT_OK(moved.resolve("zlibVersion", version));
  EXPECT_THAT(lib.symbol("zlibVersion").status(),  // NOLINT(bugprone-use-after-move)
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("is not open")));
  ASSERT_OK_AND_ASSIGN(SharedLibrary other, SharedLibrary::open("libz.so.1", "zlib1g"));
  other = std::move(moved);
  ASSERT_OK(other.resolve("zlibVersion", version));
  EXPECT_EQ(std::strncmp(version(), "1.", 2), 0);
}

}  // namespace
}  // namespace cairn
