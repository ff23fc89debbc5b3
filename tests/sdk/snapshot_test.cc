#include "cairn/sdk/snapshot.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cairn/common/time.h"
#include "cairn/testing/status_matchers.h"

namespace cairn {
namespace {

using ::cairn::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The spec's example DTO (§1.6), plus a field no version of the API has.
constexpr const char* kExample = R"({"id":"6f1c2a9e-8b7d-4c5e-9f10-2a3b4c5d6e7f",
 "organizationId":"0b7c2d4e-1f2a-4b3c-8d9e-0f1a2b3c4d5e","general":false,"name":"my-snap","imageName":"",
 "state":"pending","size":null,"entrypoint":["sleep","infinity"],"cpu":1,"gpu":0,"mem":1,"disk":3,"errorReason":null,
 "createdAt":"2026-01-15T09:30:12.345Z","updatedAt":"2026-01-15T09:30:13.000Z","lastUsedAt":null,
 "buildInfo":{"dockerfileContent":"FROM alpine:3.19\nRUN echo hi\n","contextHashes":[],"createdAt":"2026-01-15T09:30:12.345Z","updatedAt":"2026-01-15T09:30:12.345Z",
   "snapshotRef":"daytona-69a5124d7f362ef7fdfd04928ceacfd1efc5f509d5c974d8fe48a969b9a88156:daytona"},
 "regionIds":["r1"],
 "ref":"registry:6000/daytona/daytona-69a5124d7f362ef7fdfd04928ceacfd1efc5f509d5c974d8fe48a969b9a88156:daytona",
 "sandboxClass":"container","sourceSandboxId":null,"brandNewField":{"x":1}})";

TEST(SnapshotTest, ParsesEveryField) {
  ASSERT_OK_AND_ASSIGN(Json json, parseJson(kExample));
  ASSERT_OK_AND_ASSIGN(Snapshot s, parseSnapshot(json));
  EXPECT_EQ(s.id, "6f1c2a9e-8b7d-4c5e-9f10-2a3b4c5d6e7f");
  EXPECT_EQ(s.organizationId, "0b7c2d4e-1f2a-4b3c-8d9e-0f1a2b3c4d5e");
  EXPECT_FALSE(s.general);
  EXPECT_EQ(s.name, "my-snap");
  EXPECT_EQ(s.imageName, "");
  EXPECT_TRUE(s.state == SnapshotState::Kind::kPending);
  EXPECT_FALSE(s.state.isTerminal());
  EXPECT_FALSE(s.size.has_value());
  ASSERT_TRUE(s.entrypoint.has_value());
  EXPECT_THAT(*s.entrypoint, ElementsAre("sleep", "infinity"));
  EXPECT_EQ(s.cpu, 1);
  EXPECT_EQ(s.gpu, 0);
  EXPECT_EQ(s.mem, 1);
  EXPECT_EQ(s.disk, 3);
  EXPECT_FALSE(s.errorReason.has_value());
  EXPECT_EQ(formatRfc3339(s.createdAt), "2026-01-15T09:30:12.345Z");
  EXPECT_EQ(formatRfc3339(s.updatedAt), "2026-01-15T09:30:13.000Z");
  EXPECT_FALSE(s.lastUsedAt.has_value());
  ASSERT_TRUE(s.buildInfo.has_value());
  EXPECT_EQ(s.buildInfo->dockerfileContent, "FROM alpine:3.19\nRUN echo hi\n");
  EXPECT_TRUE(s.buildInfo->contextHashes.empty());
  EXPECT_EQ(s.buildInfo->snapshotRef,
            "daytona-69a5124d7f362ef7fdfd04928ceacfd1efc5f509d5c974d8fe48a969b9a88156:daytona");
  EXPECT_THAT(s.regionIds, ElementsAre("r1"));
  EXPECT_EQ(s.ref.value_or(""),
            "registry:6000/daytona/"
            "daytona-69a5124d7f362ef7fdfd04928ceacfd1efc5f509d5c974d8fe48a969b9a88156:daytona");
  EXPECT_EQ(s.sandboxClass, "container");
  EXPECT_FALSE(s.sourceSandboxId.has_value());
  EXPECT_FALSE(s.gpuType.has_value());
  EXPECT_FALSE(s.initialRunnerId.has_value());
  Resources r = s.resources();
  EXPECT_EQ(r.memory, 1);
}

TEST(SnapshotTest, RoundTripsThroughJson) {
  ASSERT_OK_AND_ASSIGN(Json json, parseJson(kExample));
  ASSERT_OK_AND_ASSIGN(Snapshot s, parseSnapshot(json));
  Json back = snapshotToJson(s);
  ASSERT_OK_AND_ASSIGN(Snapshot again, parseSnapshot(back));
  EXPECT_EQ(snapshotToJson(again), back);
  EXPECT_EQ(back["mem"], 1);
  EXPECT_TRUE(back["size"].is_null());
  EXPECT_EQ(back["createdAt"], "2026-01-15T09:30:12.345Z");
}

TEST(SnapshotTest, MinimalAndNullFieldsAreFine) {
  ASSERT_OK_AND_ASSIGN(Snapshot s, parseSnapshot(Json{{"id", "i"},
                                                      {"name", "n"},
                                                      {"state", "active"},
                                                      {"size", 1.5},
                                                      {"organizationId", nullptr},
                                                      {"lastUsedAt", "2026-02-01T00:00:00Z"},
                                                      {"gpuType", "H100"}}));
  EXPECT_TRUE(s.state.isTerminal());
  EXPECT_EQ(s.size, 1.5);
  EXPECT_FALSE(s.organizationId.has_value());
  EXPECT_TRUE(s.lastUsedAt.has_value());
  EXPECT_EQ(s.gpuType, "H100");
  EXPECT_EQ(s.cpu, 1);  // server defaults when absent
  EXPECT_EQ(s.disk, 3);
}

TEST(SnapshotTest, UnknownStateKeepsItsString) {
  SnapshotState st = SnapshotState::fromString("hibernating");
  EXPECT_TRUE(st == SnapshotState::Kind::kUnknown);
  EXPECT_EQ(st.str(), "hibernating");
  EXPECT_FALSE(st.isTerminal());
  EXPECT_EQ(SnapshotState::fromString("build_failed").kind(), SnapshotState::Kind::kBuildFailed);
  EXPECT_TRUE(SnapshotState::fromString("build_failed").isTerminal());
  EXPECT_TRUE(SnapshotState::fromString("error").isTerminal());
  EXPECT_EQ(SnapshotState(SnapshotState::Kind::kSnapshotting).str(), "snapshotting");
}

TEST(SnapshotTest, BadInputNamesTheField) {
  EXPECT_THAT(parseSnapshot(Json::array()), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(parseSnapshot(Json{{"name", "n"}, {"state", "active"}}),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("'id' is missing")));
  EXPECT_THAT(parseSnapshot(Json{{"id", "i"}, {"name", "n"}, {"state", "active"}, {"cpu", "2"}}),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("'cpu': expected a number")));
  EXPECT_THAT(parseSnapshot(Json{
                  {"id", "i"}, {"name", "n"}, {"state", "active"}, {"createdAt", "yesterday"}}),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("'createdAt'")));
  EXPECT_THAT(parseSnapshot(
                  Json{{"id", "i"}, {"name", "n"}, {"state", "active"}, {"entrypoint", {"a", 1}}}),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("'entrypoint'")));
  EXPECT_THAT(parseSnapshot(Json{{"id", "i"},
                                 {"name", "n"},
                                 {"state", "active"},
                                 {"buildInfo", {{"contextHashes", "x"}}}}),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("buildInfo")));
}

TEST(SnapshotTest, ParsesPaginatedList) {
  Json j = {{"items", Json::array({Json{{"id", "a"}, {"name", "a"}, {"state", "active"}},
                                   Json{{"id", "b"}, {"name", "b"}, {"state", "error"}}})},
            {"total", 7},
            {"page", 2},
            {"totalPages", 4}};
  ASSERT_OK_AND_ASSIGN(PaginatedSnapshots p, parsePaginatedSnapshots(j));
  ASSERT_EQ(p.items.size(), 2u);
  EXPECT_EQ(p.items[1].name, "b");
  EXPECT_EQ(p.total, 7);
  EXPECT_EQ(p.page, 2);
  EXPECT_EQ(p.totalPages, 4);
  EXPECT_THAT(parsePaginatedSnapshots(Json{{"total", 1}}),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("items")));
  j["items"][1].erase("id");
  EXPECT_THAT(parsePaginatedSnapshots(j),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("item 1")));
}

}  // namespace
}  // namespace cairn
