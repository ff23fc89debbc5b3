#include "cairn/build/plan.h"

#include "cairn/testing/status_matchers.h"

namespace cairn::build {
namespace {

using ::cairn::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

Result<BuildPlan> plan(std::string_view text, PlanOptions options = {}) {
  CAIRN_ASSIGN_OR_RETURN(auto df, dockerfile::parseDockerfileInstructions(text));
  return planBuild(std::move(df), options);
}

TEST(PlanTest, SkipsUnusedStagesAndOrdersDependencies) {
  ASSERT_OK_AND_ASSIGN(auto p, plan("FROM debian:bookworm AS base\n"
                                    "RUN echo base\n"
                                    "FROM base AS unused\n"
                                    "RUN echo never\n"
                                    "FROM alpine:3.19 AS tools\n"
                                    "RUN echo tools\n"
                                    "FROM base\n"
                                    "COPY --from=tools /bin/x /bin/x\n"
                                    "COPY --from=0 /etc/os-release /\n"));
  EXPECT_EQ(p.target, 3);
  EXPECT_THAT(p.order, ElementsAre(0, 2, 3));
  EXPECT_EQ(p.stages[0].base, (StageRef{BaseKind::kImage, -1, "debian:bookworm"}));
  EXPECT_EQ(p.stages[1].base, (StageRef{BaseKind::kStage, 0, ""}));
  EXPECT_THAT(p.stages[3].stage_deps, ElementsAre(0, 2));
}

TEST(PlanTest, TargetSelectsAStage) {
  ASSERT_OK_AND_ASSIGN(auto p, plan("FROM scratch AS a\nFROM a AS B\nFROM scratch\n",
                                    PlanOptions{{}, "b", "linux/amd64", "linux/amd64"}));
  EXPECT_EQ(p.target, 1);
  EXPECT_THAT(p.order, ElementsAre(0, 1));
  EXPECT_EQ(p.stages[0].base.kind, BaseKind::kScratch);
  EXPECT_THAT(plan("FROM scratch AS a\n", PlanOptions{{}, "nope", "linux/amd64", "linux/amd64"}),
              StatusIs(StatusCode::kInvalidArgument, "target stage \"nope\" could not be found"));
}

TEST(PlanTest, MetaArgsExpandFromAndBuildArgsOverride) {
  const char* df = "ARG TAG=3.19\nARG IMAGE=alpine:${TAG}\nFROM ${IMAGE}\nARG TAG\nRUN echo $TAG\n";
  ASSERT_OK_AND_ASSIGN(auto p, plan(df));
  EXPECT_EQ(p.stages[0].base.image, "alpine:3.19");
  PlanOptions options;
  options.build_args = {{"TAG", "3.20"}, {"UNUSED", "x"}, {"HTTP_PROXY", "http://p"}};
  ASSERT_OK_AND_ASSIGN(p, plan(df, options));
  EXPECT_EQ(p.stages[0].base.image, "alpine:3.20");
  EXPECT_THAT(p.unused_build_args, ElementsAre("UNUSED"));
  EXPECT_EQ(p.global_args.at("TARGETARCH"), "amd64");
  ASSERT_OK_AND_ASSIGN(p, plan("FROM --platform=$BUILDPLATFORM debian:${TARGETOS}\n"));
  EXPECT_EQ(p.stages[0].platform, "linux/amd64");
  EXPECT_EQ(p.stages[0].base.image, "debian:linux");
}

TEST(PlanTest, FromFlagsExpandWithStageArgs) {
  ASSERT_OK_AND_ASSIGN(auto p, plan("FROM scratch AS src\n"
                                    "FROM scratch\n"
                                    "ARG FROM_STAGE=src\n"
                                    "COPY --from=$FROM_STAGE / /\n"
                                    "COPY --from=busybox:1.36 /bin/busybox /bin/\n"
                                    "RUN --mount=type=bind,from=src,target=/m true\n"));
  EXPECT_THAT(p.stages[1].stage_deps, ElementsAre(0));
  EXPECT_THAT(p.stages[1].image_deps, ElementsAre("busybox:1.36"));
}

TEST(PlanTest, ErrorsNameTheLine) {
  EXPECT_THAT(plan("ARG X\nFROM ${X}\n"), StatusIs(StatusCode::kInvalidArgument,
                                                   "line 2: base name (${X}) should not be blank"));
  EXPECT_THAT(
      plan("FROM scratch\nCOPY --from=0 / /\n"),
      StatusIs(StatusCode::kInvalidArgument, HasSubstr("line 2: invalid from flag value 0")));
  EXPECT_THAT(
      plan("FROM scratch AS me\nCOPY --from=me / /\n"),
      StatusIs(StatusCode::kInvalidArgument, "line 2: circular dependency detected on stage: me"));
  EXPECT_THAT(plan("FROM scratch AS a\nFROM scratch AS A\n"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("duplicate stage name \"a\"")));
}

TEST(PlanTest, ProxyArgs) {
  EXPECT_TRUE(isPredefinedProxyArg("HTTP_PROXY"));
  EXPECT_TRUE(isPredefinedProxyArg("no_proxy"));
  EXPECT_FALSE(isPredefinedProxyArg("Http_Proxy"));
  EXPECT_FALSE(isPredefinedProxyArg("PROXY"));
}

}  // namespace
}  // namespace cairn::build
