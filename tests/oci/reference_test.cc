#include "cairn/oci/reference.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cairn/testing/status_matchers.h"

namespace cairn::oci {
namespace {

using ::cairn::testing::StatusIs;
using ::testing::HasSubstr;

const std::string kHex(64, 'e');

TEST(ReferenceTest, NormalizesLikeDocker) {
  struct Case {
    std::string in, str, familiar, domain, path;
  } cases[] = {
      {"ubuntu", "docker.io/library/ubuntu", "ubuntu", "docker.io", "library/ubuntu"},
      {"ubuntu:22.04", "docker.io/library/ubuntu:22.04", "ubuntu:22.04", "docker.io",
       "library/ubuntu"},
      {"python:3.12.10-slim-bookworm", "docker.io/library/python:3.12.10-slim-bookworm",
       "python:3.12.10-slim-bookworm", "docker.io", "library/python"},
      {"user/app:v1", "docker.io/user/app:v1", "user/app:v1", "docker.io", "user/app"},
      {"docker.io/library/busybox", "docker.io/library/busybox", "busybox", "docker.io",
       "library/busybox"},
      {"index.docker.io/foo", "docker.io/library/foo", "foo", "docker.io", "library/foo"},
      {"localhost/foo", "localhost/foo", "localhost/foo", "localhost", "foo"},
      {"localhost:5000/a/b:t", "localhost:5000/a/b:t", "localhost:5000/a/b:t", "localhost:5000",
       "a/b"},
      {"127.0.0.1:41234/x/y__z.w-v", "127.0.0.1:41234/x/y__z.w-v", "127.0.0.1:41234/x/y__z.w-v",
       "127.0.0.1:41234", "x/y__z.w-v"},
      {"[::1]:5000/img", "[::1]:5000/img", "[::1]:5000/img", "[::1]:5000", "img"},
      {"Registry/foo", "Registry/foo", "Registry/foo", "Registry", "foo"},
      {"ghcr.io/org/team/app@sha256:" + kHex, "ghcr.io/org/team/app@sha256:" + kHex,
       "ghcr.io/org/team/app@sha256:" + kHex, "ghcr.io", "org/team/app"},
      {"localhost:5000", "docker.io/library/localhost:5000", "localhost:5000", "docker.io",
       "library/localhost"},
  };
  for (const auto& c : cases) {
    ASSERT_OK_AND_ASSIGN(Reference r, Reference::parse(c.in));
    EXPECT_EQ(r.str(), c.str) << c.in;
    EXPECT_EQ(r.familiar(), c.familiar) << c.in;
    EXPECT_EQ(r.domain(), c.domain) << c.in;
    EXPECT_EQ(r.path(), c.path) << c.in;
  }
}

TEST(ReferenceTest, TagAndDigestTogether) {
  ASSERT_OK_AND_ASSIGN(Reference r, Reference::parse("busybox:1.36@sha256:" + kHex));
  EXPECT_EQ(r.tag(), "1.36");
  EXPECT_EQ(r.digest().hex(), kHex);
  EXPECT_EQ(r.manifestReference(), "sha256:" + kHex);
  EXPECT_EQ(r.str(), "docker.io/library/busybox:1.36@sha256:" + kHex);
}

TEST(ReferenceTest, DefaultTag) {
  ASSERT_OK_AND_ASSIGN(Reference r, Reference::parse("busybox"));
  EXPECT_EQ(r.tag(), "");
  EXPECT_EQ(r.manifestReference(), "latest");
  EXPECT_EQ(r.withDefaultTag().str(), "docker.io/library/busybox:latest");
  ASSERT_OK_AND_ASSIGN(Reference d, Reference::parse("busybox@sha256:" + kHex));
  EXPECT_EQ(d.withDefaultTag().tag(), "");
}

TEST(ReferenceTest, BadReferencesHaveClearErrors) {
  struct Case {
    std::string in, message;
  } cases[] = {
      {"", "empty"},
      {"Ubuntu", "must be lowercase"},
      {"docker.io/Library/ubuntu", "must be lowercase"},
      {"ubuntu:", "bad tag"},
      {"ubuntu:-x", "bad tag"},
      {"ubuntu:" + std::string(129, 'a'), "bad tag"},
      {"ubuntu@sha256:abc", "bad digest"},
      {"ubuntu@", "bad digest"},
      {"a//b", "empty path component"},
      {"a/b/", "empty path component"},
      {"-a", "bad path component"},
      {"a..b", "bad path component"},
      {"a_-b", "bad path component"},
      {"exa mple.com/a", "bad registry host"},
      {"example.com:abc/a", "bad registry host"},
      {"-bad.com/a", "bad registry host"},
      {"example.com/", "missing repository name"},
      {kHex, "64-byte hexadecimal"},
      {"example.com/" + std::string(250, 'a'), "longer than 255"},
  };
  for (const auto& c : cases) {
    EXPECT_THAT(Reference::parse(c.in),
                StatusIs(StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.in;
  }
}

TEST(ReferenceTest, LoopbackHosts) {
  EXPECT_TRUE(isLoopbackHost("localhost"));
  EXPECT_TRUE(isLoopbackHost("localhost:5000"));
  EXPECT_TRUE(isLoopbackHost("127.0.0.1:41234"));
  EXPECT_TRUE(isLoopbackHost("127.1.2.3"));
  EXPECT_TRUE(isLoopbackHost("[::1]:5000"));
  EXPECT_FALSE(isLoopbackHost("127.0.0.1.example.com"));
  EXPECT_FALSE(isLoopbackHost("docker.io"));
  EXPECT_FALSE(isLoopbackHost("128.0.0.1"));
  EXPECT_FALSE(isLoopbackHost("127.0.0.256"));
}

TEST(ReferenceTest, TagValidation) {
  EXPECT_TRUE(isValidTag("latest"));
  EXPECT_TRUE(isValidTag("_x.Y-1"));
  EXPECT_FALSE(isValidTag(".x"));
  EXPECT_FALSE(isValidTag("a/b"));
}

}  // namespace
}  // namespace cairn::oci
