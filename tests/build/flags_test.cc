// The parsers behind `cairn build`'s --secret, --ssh and --memory flags.
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstdio>

#include <filesystem>
#include <fstream>

#include "cairn/build/builder.h"
#include "cairn/common/fs.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::build {
namespace {

namespace fs = std::filesystem;
using ::cairn::testing::StatusIs;
using ::testing::HasSubstr;

TEST(BuildFlagsTest, ParseSecretFlagAsBuildx) {
  ASSERT_OK_AND_ASSIGN(TempDir tmp, TempDir::create("flags"));
  fs::path file = tmp.path() / "f.txt";
  std::ofstream(file) << "x";
  ASSERT_OK_AND_ASSIGN(auto a, parseSecretFlag("id=a,src=" + file.string()));
  EXPECT_EQ(a.first, "a");
  EXPECT_EQ(a.second.file, file);
  ::setenv("CAIRN_TEST_SECRET", "from-env", 1);
  ASSERT_OK_AND_ASSIGN(auto b, parseSecretFlag("id=b,env=CAIRN_TEST_SECRET"));
  EXPECT_EQ(b.second.value, "from-env");
  ASSERT_OK_AND_ASSIGN(auto c, parseSecretFlag("type=env,id=c,src=CAIRN_TEST_SECRET"));
  EXPECT_EQ(c.second.value, "from-env");
  ASSERT_OK_AND_ASSIGN(auto d, parseSecretFlag("id=CAIRN_TEST_SECRET"));
  EXPECT_EQ(d.second.value, "from-env");
  EXPECT_THAT(parseSecretFlag("src=" + file.string()),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("id=")));
  EXPECT_THAT(parseSecretFlag("id=x,bogus=1"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("unexpected key")));
  EXPECT_THAT(parseSecretFlag("id=x,type=ssh"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("unsupported secret type")));
  EXPECT_THAT(parseSecretFlag("id=x,env=CAIRN_TEST_UNSET_VARIABLE"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("is not set")));
  EXPECT_THAT(parseSecretFlag("id=x,src=/nonexistent/file"), StatusIs(StatusCode::kNotFound));
  ::unsetenv("CAIRN_TEST_SECRET");
}

TEST(BuildFlagsTest, ParseSshFlagAsBuildx) {
  ASSERT_OK_AND_ASSIGN(TempDir tmp, TempDir::create("ssh-flags"));
  fs::path sock = tmp.path() / "agent.sock";
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(sock.native().size(), sizeof addr.sun_path);
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock.c_str());
  ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);

  ASSERT_OK_AND_ASSIGN(auto deploy, parseSshFlag("deploy=" + sock.string()));
  EXPECT_EQ(deploy.first, "deploy");
  EXPECT_EQ(deploy.second, sock);
  ::setenv("SSH_AUTH_SOCK", sock.c_str(), 1);
  ASSERT_OK_AND_ASSIGN(auto def, parseSshFlag("default"));
  EXPECT_EQ(def.first, "default");
  EXPECT_EQ(def.second, sock);
  ::unsetenv("SSH_AUTH_SOCK");
  EXPECT_THAT(parseSshFlag("default"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("SSH_AUTH_SOCK is not set")));
  std::ofstream(tmp.path() / "id_ed25519") << "key";
  EXPECT_THAT(parseSshFlag("default=" + (tmp.path() / "id_ed25519").string()),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("not an agent socket")));
  EXPECT_THAT(parseSshFlag("a=" + sock.string() + "," + sock.string()),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("only one agent socket")));
  EXPECT_THAT(parseSshFlag("=x"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(parseSshFlag("x=/nonexistent/agent.sock"), StatusIs(StatusCode::kNotFound));
}

TEST(BuildFlagsTest, ParseMemoryLimit) {
  constexpr std::int64_t kMiB = 1024 * 1024;
  EXPECT_EQ(*parseMemoryLimit("512m"), 512 * kMiB);
  EXPECT_EQ(*parseMemoryLimit("512MiB"), 512 * kMiB);
  EXPECT_EQ(*parseMemoryLimit("2g"), 2048 * kMiB);
  EXPECT_EQ(*parseMemoryLimit("2GB"), 2048 * kMiB);
  EXPECT_EQ(*parseMemoryLimit("0.5"), 512 * kMiB);  // bare: gigabytes, as `cairn run`
  EXPECT_EQ(*parseMemoryLimit("10240k"), 10 * kMiB);
  EXPECT_EQ(*parseMemoryLimit("1073741824b"), 1024 * kMiB);
  EXPECT_THAT(parseMemoryLimit(""), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(parseMemoryLimit("lots"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(parseMemoryLimit("1.2.3g"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(parseMemoryLimit("12x"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("unknown unit \"x\"")));
  EXPECT_THAT(parseMemoryLimit("1m"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("minimum is 6 MiB")));
  EXPECT_THAT(parseMemoryLimit("-1g"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(parseMemoryLimit("99999999999999t"), StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace cairn::build
