// `cairn build` (and the other commands that write blobs no tag reaches yet) hold the data
// dir's GC lock shared for their whole run, so a `cairn serve` on the same data dir defers its
// garbage collection; while a GC pass holds the lock, the command waits and says why.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <thread>

#include "cairn/common/fs.h"
#include "cairn/service/store_gc.h"
#include "cairn/testing/status_matchers.h"
#include "run_cairn.h"

namespace cairn::cli {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

TEST(GcGuardTest, BuildWaitsForARunningGcPassAndThenBuilds) {
  ASSERT_OK_AND_ASSIGN(TempDir tmp, TempDir::create("cairn-gc-guard"));
  const fs::path data = tmp.path() / "data";
  fs::create_directories(data);
  const fs::path ctx = tmp.path() / "ctx";
  fs::create_directories(ctx);
  ASSERT_OK(writeFileDurable(ctx / "a.txt", "a\n"));
  ASSERT_OK(writeFileDurable(ctx / "Dockerfile", "FROM scratch\nCOPY a.txt /a.txt\n"));

  // A GC pass in progress (the server's lock, held exclusively), released a second later.
  ASSERT_OK_AND_ASSIGN(service::StoreGcLock pass, service::StoreGcLock::tryExclusive(data));
  std::optional<service::StoreGcLock> held(std::move(pass));
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    held.reset();
  });
  auto r = testing::runCairn(tmp.path(), {"--data-dir", data.string(), "build", "--progress",
                                          "plain", "-t", "guarded:1", ctx.string()});
  release.join();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("waiting for garbage collection on this data directory"));

  // No build is running now: a GC pass gets the lock at once.
  EXPECT_OK(service::StoreGcLock::tryExclusive(data).status());
}

}  // namespace
}  // namespace cairn::cli
