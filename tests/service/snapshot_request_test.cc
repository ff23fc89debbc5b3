#include "cairn/service/snapshot_request.h"

#include <map>

#include "cairn/common/crypto.h"

#include "cairn/testing/status_matchers.h"

namespace cairn::service {
namespace {

using ::cairn::testing::IsOk;
using ::cairn::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Optional;

Status createStatus(const char* json) {
  auto body = parseJson(json);
  EXPECT_TRUE(body.ok());
  auto r = parseCreateSnapshot(*body);
  if (!r.ok()) return r.status();
  return checkCreateSnapshot(*r);
}

TEST(CreateSnapshotTest, ParsesEveryField) {
  auto body = parseJson(R"({"name":"my-snap","imageName":"ubuntu:22.04","entrypoint":["a","b"],
    "cpu":2,"gpu":0.5,"gpuType":"H100","memory":4,"disk":10,"regionId":"us",
    "sandboxClass":"container","unknownField":{"x":1}})");
  ASSERT_OK_AND_ASSIGN(CreateSnapshotRequest r, parseCreateSnapshot(*body));
  EXPECT_EQ(r.name, "my-snap");
  EXPECT_THAT(r.image_name, Optional(std::string("ubuntu:22.04")));
  EXPECT_THAT(r.entrypoint, Optional(ElementsAre("a", "b")));
  EXPECT_THAT(r.cpu, Optional(2.0));
  EXPECT_THAT(r.gpu, Optional(0.5));
  EXPECT_THAT(r.gpu_type, Optional(std::string("H100")));
  EXPECT_THAT(r.memory, Optional(4.0));
  EXPECT_THAT(r.region_id, Optional(std::string("us")));
  EXPECT_OK(checkCreateSnapshot(r));
}

TEST(CreateSnapshotTest, DtoMessagesAreJoined) {
  auto body = parseJson(R"({"name":5,"cpu":-1,"gpu":2,"memory":"x","gpuType":["H100","H200"]})");
  EXPECT_THAT(parseCreateSnapshot(*body),
              StatusIs(StatusCode::kInvalidArgument,
                       "name must be a string, cpu must not be less than 0, gpu must not be "
                       "greater than 1, memory must be a number conforming to the specified "
                       "constraints, gpuType must contain no more than 1 elements"));
  EXPECT_THAT(
      parseCreateSnapshot(*parseJson(R"({"name":"a","gpuType":"T4"})")),
      StatusIs(StatusCode::kInvalidArgument,
               HasSubstr("each value in gpuType must be one of the following values: H100")));
  EXPECT_THAT(parseCreateSnapshot(*parseJson(R"({"name":"a","sandboxClass":"vm"})")),
              StatusIs(StatusCode::kInvalidArgument,
                       "sandboxClass must be one of the following values: linux-vm, container, "
                       "android, windows"));
  EXPECT_THAT(
      parseCreateSnapshot(*parseJson(R"({"name":"a","buildInfo":{"dockerfileContent":""}})")),
      StatusIs(StatusCode::kInvalidArgument, "buildInfo.dockerfileContent should not be empty"));
  EXPECT_THAT(parseCreateSnapshot(*parseJson("[1]")), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(parseCreateSnapshot(*parseJson(R"({"name":"<b>x</b>","imageName":"a:1"})")),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("HTML tags")));
}

TEST(CreateSnapshotTest, EmptyGpuTypeListIsAbsent) {
  ASSERT_OK_AND_ASSIGN(auto r, parseCreateSnapshot(*parseJson(R"({"name":"a","gpuType":[]})")));
  EXPECT_FALSE(r.gpu_type.has_value());
}

TEST(CreateSnapshotTest, ChecksRunInSpecOrder) {
  EXPECT_THAT(
      createStatus(R"({"name":"a","imageName":"x:1","buildInfo":{"dockerfileContent":"FROM a"}})"),
      StatusIs(StatusCode::kInvalidArgument,
               "Cannot specify an image name when using a build info entry"));
  EXPECT_THAT(
      createStatus(R"({"name":"a","entrypoint":["x"],"buildInfo":{"dockerfileContent":"FROM a"}})"),
      StatusIs(StatusCode::kInvalidArgument,
               "Cannot specify an entrypoint when using a build info entry"));
  EXPECT_THAT(createStatus(R"({"name":"a"})"),
              StatusIs(StatusCode::kInvalidArgument,
                       "Must specify an image name when not using a build info entry"));
  EXPECT_THAT(createStatus(R"({"name":"bad name","imageName":"x"})"),
              StatusIs(StatusCode::kInvalidArgument,
                       "Invalid snapshot name format. May contain letters, digits, dots, colons, "
                       "and dashes"));
  EXPECT_THAT(
      createStatus(
          R"({"name":"a","buildInfo":{"dockerfileContent":"FROM a"},"sandboxClass":"windows"})"),
      StatusIs(StatusCode::kInvalidArgument, HasSubstr("Windows snapshots cannot")));
  std::string digest_name = R"({"name":"team/app:v1@sha256:)" + std::string(64, 'a') +
                            R"(","buildInfo":{"dockerfileContent":"FROM a"}})";
  EXPECT_OK(createStatus(digest_name.c_str()));
}

TEST(CreateSnapshotTest, SnapshotNames) {
  EXPECT_TRUE(isValidSnapshotName("my-snap"));
  EXPECT_TRUE(isValidSnapshotName("org/app:1.0"));
  EXPECT_TRUE(isValidSnapshotName("a@sha256:" + std::string(64, 'f')));
  EXPECT_FALSE(isValidSnapshotName(""));
  EXPECT_FALSE(isValidSnapshotName("a//b"));
  EXPECT_FALSE(isValidSnapshotName("a b"));
  EXPECT_FALSE(isValidSnapshotName("a@sha256:" + std::string(64, 'F')));
}

TEST(CreateSnapshotTest, ImageNameRules) {
  const std::string tag =
      "Image name must include a tag (e.g., ubuntu:22.04) or digest (@sha256:...)";
  const std::string digest = "Invalid digest format. Must be image@sha256:64_hex_characters";
  const std::string format =
      "Invalid image name format. Must be lowercase, may contain digits, "
      "dots, dashes, and single slashes between components";
  std::map<std::string, std::string> cases = {
      {"ubuntu:22.04", ""},
      {"python:3.12.10-slim-bookworm", ""},
      {"localhost:5000/team/app:v1", ""},
      {"ubuntu@sha256:" + std::string(64, 'a'), ""},
      {"ubuntu@sha256:abc", digest},
      {"@sha256:" + std::string(64, 'a'), digest},
      {"ubuntu", tag},
      {"ubuntu:", tag},
      {"ubuntu:  ", tag},
      {"ubuntu:latest", "Images with tag \":latest\" are not allowed"},
      {"Ubuntu:22.04", format},
      {"ubuntu//x:1", format},
  };
  for (const auto& [image, message] : cases) {
    if (message.empty()) {
      EXPECT_OK(checkImageName(image)) << image;
    } else {
      EXPECT_THAT(checkImageName(image), StatusIs(StatusCode::kInvalidArgument, message)) << image;
    }
  }
}

TEST(CreateSnapshotTest, SandboxLimits) {
  CreateSnapshotRequest r;
  SandboxLimits limits;
  r.cpu = 4;
  r.memory = 8;
  r.disk = 10;
  EXPECT_OK(checkSandboxLimits(r, limits));
  r.cpu = 4.5;
  EXPECT_THAT(checkSandboxLimits(r, limits),
              StatusIs(StatusCode::kInvalidArgument,
                       "CPU request 4.5 exceeds maximum allowed per sandbox (4).\nNeed higher "
                       "resource limits per-sandbox? Contact us at support@daytona.io and let "
                       "us know about your use case."));
  r.cpu = 0;
  r.memory = 16;
  EXPECT_THAT(
      checkSandboxLimits(r, limits),
      StatusIs(StatusCode::kInvalidArgument,
               HasSubstr("Memory request 16GB exceeds maximum allowed per sandbox (8GB).\n")));
  r.memory = 2.5;
  r.disk = 11;
  EXPECT_THAT(checkSandboxLimits(r, limits),
              StatusIs(StatusCode::kInvalidArgument,
                       HasSubstr("Disk request 11GB exceeds maximum allowed per sandbox (10GB).")));
}

TEST(BuildRefTest, SpecVectors) {
  const std::string df = "FROM alpine:3.19\nRUN echo hi\n";
  EXPECT_EQ(buildSnapshotRef(df, {}),
            "daytona-69a5124d7f362ef7fdfd04928ceacfd1efc5f509d5c974d8fe48a969b9a88156:daytona");
  EXPECT_EQ(buildSnapshotRef(
                df, {"e026aab578f367af7a8e2966089ef514", "ce59da7c62f89381d47e17c745ff7194"}),
            "daytona-96e3fed8a5defd2dd6d616c4f4f1094d36efc8b04a1274264560e52d633a23b9:daytona");
  const std::string e2e =
      "FROM python:3.13.3-slim-bookworm\n"
      "RUN apt-get update\n"
      "RUN apt-get install -y gcc gfortran build-essential\n"
      "RUN pip install --upgrade pip\n"
      "RUN echo 'debconf debconf/frontend select Noninteractive' | debconf-set-selections\n"
      "COPY requirements.txt /.requirements.txt\n"
      "RUN python -m pip install -r /.requirements.txt\n";
  EXPECT_EQ(buildSnapshotRef(e2e, {"ce59da7c62f89381d47e17c745ff7194"}),
            "daytona-f307306c4205f957ee18ad4a92ae623f96384cf7d0b328a8f1ecd39786667e14:daytona");
}

TEST(BuildRefTest, SortsByUtf16CodeUnits) {
  // U+FF5E (3 UTF-8 bytes EF BD 9E) sorts after U+1F600 (F0 9F 98 80) in UTF-8 byte order but
  // before it in UTF-16 (FF5E > D83D is false: D83D < FF5E), so JavaScript puts the emoji first.
  std::string fullwidth = "\xEF\xBD\x9E";
  std::string emoji = "\xF0\x9F\x98\x80";
  EXPECT_EQ(buildSnapshotRef("x", {fullwidth, emoji}), buildSnapshotRef("x", {emoji, fullwidth}));
  Sha256 h;
  h.update("x");
  h.update(emoji);
  h.update(fullwidth);
  EXPECT_EQ(buildSnapshotRef("x", {fullwidth, emoji}), "daytona-" + h.finishHex() + ":daytona");
}

TEST(EntrypointTest, SpecTable) {
  using V = std::vector<std::string>;
  EXPECT_THAT(detectEntrypoint("FROM a\nRUN x\n"), Optional(V{"sleep", "infinity"}));
  EXPECT_THAT(detectEntrypoint("FROM a\nENTRYPOINT [\"/bin/bash\", \"-c\"]\n"),
              Optional(V{"/bin/bash", "-c"}));
  EXPECT_THAT(detectEntrypoint("FROM a\nENTRYPOINT /start.sh --x 'y'\n"),
              Optional(V{"/start.sh --x y"}));
  EXPECT_THAT(detectEntrypoint("FROM a\nENTRYPOINT {\"a\":1}\n"), Optional(V{"sleep", "infinity"}));
  // The last match wins, even inside a RUN line or a comment.
  EXPECT_THAT(detectEntrypoint("ENTRYPOINT [\"a\"]\n# ENTRYPOINT [\"b\"]\n"), Optional(V{"b"}));
  // Blank elements are dropped; none left → null.
  EXPECT_EQ(detectEntrypoint("ENTRYPOINT [\"\", \" \"]\n"), std::nullopt);
  EXPECT_THAT(detectEntrypoint("ENTRYPOINT [\"x\", \"\"]\n"), Optional(V{"x"}));
}

TEST(ListQueryTest, DefaultsAndMessages) {
  using O = std::optional<std::string>;
  ASSERT_OK_AND_ASSIGN(auto q, parseListSnapshotsQueryValues(O{}, O{}, O{}, O{}, O{}, O{}));
  EXPECT_EQ(q.page, 1);
  EXPECT_EQ(q.limit, 100);
  EXPECT_EQ(q.sort, SnapshotSort::kLastUsedAt);
  EXPECT_FALSE(q.ascending);
  EXPECT_THAT(parseListSnapshotsQueryValues(O{}, O{"201"}, O{}, O{}, O{}, O{}),
              StatusIs(StatusCode::kInvalidArgument, "limit must not be greater than 200"));
  EXPECT_THAT(parseListSnapshotsQueryValues(O{}, O{"0"}, O{}, O{}, O{}, O{}),
              StatusIs(StatusCode::kInvalidArgument, "limit must not be less than 1"));
  EXPECT_THAT(parseListSnapshotsQueryValues(O{"x"}, O{"1.5"}, O{}, O{}, O{}, O{}),
              StatusIs(StatusCode::kInvalidArgument,
                       "page must be an integer number, limit must be an integer number"));
  EXPECT_THAT(parseListSnapshotsQueryValues(O{}, O{}, O{}, O{"size"}, O{"up"}, O{}),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("order must be one of")));
  ASSERT_OK_AND_ASSIGN(
      q, parseListSnapshotsQueryValues(O{"3"}, O{"200"}, O{"Web"}, O{"name"}, O{"asc"}, O{}));
  EXPECT_EQ(q.page, 3);
  EXPECT_EQ(q.limit, 200);
  EXPECT_THAT(q.name, Optional(std::string("Web")));
  EXPECT_EQ(q.sort, SnapshotSort::kName);
  EXPECT_TRUE(q.ascending);
}

}  // namespace
}  // namespace cairn::service
