// The snapshot API's request side, as the reference server validates it (spec §1.4, §1.5, §4,
// §5.4, §5.5): parsing of the CreateSnapshot body and the list query with class-validator's
// messages, the ordered create checks, the build ref and entrypoint detection. Pure functions:
// no storage, no I/O, so every message can be tested against the spec's text.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/json.h"
#include "cairn/common/status.h"

namespace cairn::service {

struct BuildInfoRequest {
  std::string dockerfile_content;
  std::vector<std::string> context_hashes;
};

//! The CreateSnapshot body (§1.5) after DTO-level validation. Unset optionals were absent (or
//! null) in the JSON; unknown fields are ignored.
struct CreateSnapshotRequest {
  std::string name;
  std::optional<std::string> image_name;
  std::optional<std::vector<std::string>> entrypoint;
  std::optional<double> cpu;
  std::optional<double> gpu;
  std::optional<std::string> gpu_type;  //!< the one element of `gpuType`
  std::optional<double> memory;         //!< GB; the response calls it `mem`
  std::optional<double> disk;           //!< GB
  std::optional<BuildInfoRequest> build_info;
  std::optional<std::string> region_id;
  std::optional<std::string> sandbox_class;
};

//! DTO-level checks (types, ranges, enums): every failure message, joined by ", " as the
//! reference's ValidationPipe does, in one InvalidArgument.
Result<CreateSnapshotRequest> parseCreateSnapshot(const Json& body);

//! The ordered checks of §1.5 that need no state: 1–3 (buildInfo vs imageName/entrypoint),
//! 5 (name format), 6 (image name), 7 (windows). The first failure wins.
Status checkCreateSnapshot(const CreateSnapshotRequest& request);

//! §1.5 step 6 alone, for an imageName.
Status checkImageName(std::string_view image_name);

//! §1.5 step 5: `^[a-zA-Z0-9_.\-:]+(\/[a-zA-Z0-9_.\-:]+)*(@sha256:[a-f0-9]{64})?$`.
bool isValidSnapshotName(std::string_view name);

//! Per-sandbox limits of §4; only non-zero requested values are checked.
struct SandboxLimits {
  double max_cpu = 4;
  double max_memory_gb = 8;
  double max_disk_gb = 10;
  std::string help_line =
      "Need higher resource limits per-sandbox? Contact us at support@daytona.io and let us "
      "know about your use case.";
};
Status checkSandboxLimits(const CreateSnapshotRequest& request, const SandboxLimits& limits);

//! Shortest decimal form, as JavaScript prints numbers: 4, 2.5, 0.1.
std::string formatNumber(double value);

//! §5.4: "daytona-" + sha256(dockerfile + concat(sorted hashes)) + ":daytona".
std::string buildSnapshotRef(std::string_view dockerfile_content,
                             std::vector<std::string> context_hashes);

//! §5.5: the entrypoint a build snapshot gets at create. nullopt means null (all elements were
//! blank): the built image decides later.
std::optional<std::vector<std::string>> detectEntrypoint(std::string_view dockerfile_content);

enum class SnapshotSort { kLastUsedAt, kName, kState, kCreatedAt };

//! GET /snapshots query (§1.4).
struct ListSnapshotsQuery {
  int page = 1;
  int limit = 100;
  std::optional<std::string> name;
  SnapshotSort sort = SnapshotSort::kLastUsedAt;
  bool ascending = false;
  std::optional<std::string> source_sandbox_id;
};

//! `get` returns the raw (already percent-decoded) value of a query parameter, if present.
template <typename Getter>
Result<ListSnapshotsQuery> parseListSnapshotsQuery(Getter&& get);

//! The implementation behind parseListSnapshotsQuery, over optional raw values.
Result<ListSnapshotsQuery> parseListSnapshotsQueryValues(
    const std::optional<std::string>& page, const std::optional<std::string>& limit,
    const std::optional<std::string>& name, const std::optional<std::string>& sort,
    const std::optional<std::string>& order, const std::optional<std::string>& source_sandbox_id);

template <typename Getter>
Result<ListSnapshotsQuery> parseListSnapshotsQuery(Getter&& get) {
  return parseListSnapshotsQueryValues(get("page"), get("limit"), get("name"), get("sort"),
                                       get("order"), get("sourceSandboxId"));
}

}  // namespace cairn::service
