#include "cairn/sdk/snapshot.h"

#include <array>
#include <utility>

#include "cairn/common/time.h"

namespace cairn {
namespace {

using Kind = SnapshotState::Kind;

constexpr std::array<std::pair<Kind, std::string_view>, 9> kStateNames = {{
    {Kind::kPending, "pending"},
    {Kind::kBuilding, "building"},
    {Kind::kPulling, "pulling"},
    {Kind::kActive, "active"},
    {Kind::kInactive, "inactive"},
    {Kind::kError, "error"},
    {Kind::kBuildFailed, "build_failed"},
    {Kind::kRemoving, "removing"},
    {Kind::kSnapshotting, "snapshotting"},
}};

// Field accessors: a missing or null field is "absent"; a present field of the wrong type is an
// error naming it.
const Json* field(const Json& obj, std::string_view name) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

Status typeError(std::string_view name, std::string_view expected, const Json& value) {
  return invalidArgument("snapshot field '" + std::string(name) + "': expected " +
                         std::string(expected) + ", got " + value.type_name());
}

Status getString(const Json& obj, std::string_view name, std::optional<std::string>* out) {
  const Json* v = field(obj, name);
  if (v == nullptr) return okStatus();
  if (!v->is_string()) return typeError(name, "a string", *v);
  *out = v->get<std::string>();
  return okStatus();
}

Status getRequiredString(const Json& obj, std::string_view name, std::string* out) {
  std::optional<std::string> v;
  CAIRN_RETURN_IF_ERROR(getString(obj, name, &v));
  if (!v) return invalidArgument("snapshot field '" + std::string(name) + "' is missing");
  *out = std::move(*v);
  return okStatus();
}

Status getNumber(const Json& obj, std::string_view name, std::optional<double>* out) {
  const Json* v = field(obj, name);
  if (v == nullptr) return okStatus();
  if (!v->is_number()) return typeError(name, "a number", *v);
  *out = v->get<double>();
  return okStatus();
}

Status getNumberOr(const Json& obj, std::string_view name, double* out) {
  std::optional<double> v;
  CAIRN_RETURN_IF_ERROR(getNumber(obj, name, &v));
  if (v) *out = *v;
  return okStatus();
}

Status getStrings(const Json& obj, std::string_view name,
                  std::optional<std::vector<std::string>>* out) {
  const Json* v = field(obj, name);
  if (v == nullptr) return okStatus();
  if (!v->is_array()) return typeError(name, "an array of strings", *v);
  std::vector<std::string> items;
  for (const Json& item : *v) {
    if (!item.is_string()) return typeError(name, "an array of strings", item);
    items.push_back(item.get<std::string>());
  }
  *out = std::move(items);
  return okStatus();
}

Status getTime(const Json& obj, std::string_view name,
               std::optional<std::chrono::system_clock::time_point>* out) {
  std::optional<std::string> text;
  CAIRN_RETURN_IF_ERROR(getString(obj, name, &text));
  if (!text) return okStatus();
  Result<SystemTime> t = parseRfc3339(*text);
  if (!t.ok()) {
    return invalidArgument("snapshot field '" + std::string(name) + "': " + t.status().message());
  }
  *out = *t;
  return okStatus();
}

Result<BuildInfo> parseBuildInfo(const Json& json) {
  BuildInfo info;
  std::optional<std::string> s;
  CAIRN_RETURN_IF_ERROR(getString(json, "dockerfileContent", &s));
  info.dockerfileContent = s.value_or("");
  s.reset();
  CAIRN_RETURN_IF_ERROR(getString(json, "snapshotRef", &s));
  info.snapshotRef = s.value_or("");
  std::optional<std::vector<std::string>> hashes;
  CAIRN_RETURN_IF_ERROR(getStrings(json, "contextHashes", &hashes));
  info.contextHashes = hashes.value_or(std::vector<std::string>{});
  CAIRN_RETURN_IF_ERROR(getTime(json, "createdAt", &info.createdAt));
  CAIRN_RETURN_IF_ERROR(getTime(json, "updatedAt", &info.updatedAt));
  return info;
}

Json optionalToJson(const std::optional<std::string>& v) {
  return v ? Json(*v) : Json(nullptr);
}

}  // namespace

SnapshotState::SnapshotState(Kind kind) : kind_(kind) {
  for (const auto& [k, name] : kStateNames) {
    if (k == kind) text_ = std::string(name);
  }
  if (text_.empty()) text_ = "unknown";
}

SnapshotState SnapshotState::fromString(std::string_view text) {
  for (const auto& [k, name] : kStateNames) {
    if (name == text) return SnapshotState(k, std::string(text));
  }
  return SnapshotState(Kind::kUnknown, std::string(text));
}

Result<Snapshot> parseSnapshot(const Json& json) {
  if (!json.is_object()) {
    return invalidArgument(std::string("snapshot: expected a JSON object, got ") +
                           json.type_name());
  }
  Snapshot s;
  CAIRN_RETURN_IF_ERROR(getRequiredString(json, "id", &s.id));
  CAIRN_RETURN_IF_ERROR(getRequiredString(json, "name", &s.name));
  std::string state;
  CAIRN_RETURN_IF_ERROR(getRequiredString(json, "state", &state));
  s.state = SnapshotState::fromString(state);
  CAIRN_RETURN_IF_ERROR(getString(json, "organizationId", &s.organizationId));
  if (const Json* v = field(json, "general")) {
    if (!v->is_boolean()) return typeError("general", "a boolean", *v);
    s.general = v->get<bool>();
  }
  std::optional<std::string> image_name;
  CAIRN_RETURN_IF_ERROR(getString(json, "imageName", &image_name));
  s.imageName = image_name.value_or("");
  CAIRN_RETURN_IF_ERROR(getNumber(json, "size", &s.size));
  CAIRN_RETURN_IF_ERROR(getStrings(json, "entrypoint", &s.entrypoint));
  CAIRN_RETURN_IF_ERROR(getNumberOr(json, "cpu", &s.cpu));
  CAIRN_RETURN_IF_ERROR(getNumberOr(json, "gpu", &s.gpu));
  CAIRN_RETURN_IF_ERROR(getString(json, "gpuType", &s.gpuType));
  CAIRN_RETURN_IF_ERROR(getNumberOr(json, "mem", &s.mem));
  CAIRN_RETURN_IF_ERROR(getNumberOr(json, "disk", &s.disk));
  CAIRN_RETURN_IF_ERROR(getString(json, "errorReason", &s.errorReason));
  std::optional<SystemTime> t;
  CAIRN_RETURN_IF_ERROR(getTime(json, "createdAt", &t));
  if (t) s.createdAt = *t;
  t.reset();
  CAIRN_RETURN_IF_ERROR(getTime(json, "updatedAt", &t));
  if (t) s.updatedAt = *t;
  CAIRN_RETURN_IF_ERROR(getTime(json, "lastUsedAt", &s.lastUsedAt));
  if (const Json* v = field(json, "buildInfo")) {
    if (!v->is_object()) return typeError("buildInfo", "an object", *v);
    Result<BuildInfo> info = parseBuildInfo(*v);
    if (!info.ok()) return info.status().withContext("buildInfo");
    s.buildInfo = std::move(*info);
  }
  std::optional<std::vector<std::string>> regions;
  CAIRN_RETURN_IF_ERROR(getStrings(json, "regionIds", &regions));
  s.regionIds = regions.value_or(std::vector<std::string>{});
  CAIRN_RETURN_IF_ERROR(getString(json, "initialRunnerId", &s.initialRunnerId));
  CAIRN_RETURN_IF_ERROR(getString(json, "ref", &s.ref));
  CAIRN_RETURN_IF_ERROR(getString(json, "sandboxClass", &s.sandboxClass));
  CAIRN_RETURN_IF_ERROR(getString(json, "sourceSandboxId", &s.sourceSandboxId));
  return s;
}

Result<PaginatedSnapshots> parsePaginatedSnapshots(const Json& json) {
  if (!json.is_object()) {
    return invalidArgument(std::string("snapshot list: expected a JSON object, got ") +
                           json.type_name());
  }
  PaginatedSnapshots page;
  const Json* items = field(json, "items");
  if (items == nullptr || !items->is_array()) {
    return invalidArgument("snapshot list: field 'items' must be an array");
  }
  for (std::size_t i = 0; i < items->size(); ++i) {
    Result<Snapshot> s = parseSnapshot((*items)[i]);
    if (!s.ok()) return s.status().withContext("snapshot list item " + std::to_string(i));
    page.items.push_back(std::move(*s));
  }
  for (auto [name, out] : {std::pair<std::string_view, long*>{"total", &page.total},
                           {"page", &page.page},
                           {"totalPages", &page.totalPages}}) {
    std::optional<double> v;
    Status st = getNumber(json, name, &v);
    if (!st.ok()) return st.withContext("snapshot list");
    if (v) *out = static_cast<long>(*v);
  }
  return page;
}

Json snapshotToJson(const Snapshot& s) {
  Json j = Json::object();
  j["id"] = s.id;
  j["organizationId"] = optionalToJson(s.organizationId);
  j["general"] = s.general;
  j["name"] = s.name;
  j["imageName"] = s.imageName;
  j["state"] = s.state.str();
  j["size"] = s.size ? Json(*s.size) : Json(nullptr);
  j["entrypoint"] = s.entrypoint ? Json(*s.entrypoint) : Json(nullptr);
  j["cpu"] = s.cpu;
  j["gpu"] = s.gpu;
  if (s.gpuType) j["gpuType"] = *s.gpuType;
  j["mem"] = s.mem;
  j["disk"] = s.disk;
  j["errorReason"] = optionalToJson(s.errorReason);
  j["createdAt"] = formatRfc3339(s.createdAt);
  j["updatedAt"] = formatRfc3339(s.updatedAt);
  j["lastUsedAt"] = s.lastUsedAt ? Json(formatRfc3339(*s.lastUsedAt)) : Json(nullptr);
  if (s.buildInfo) {
    Json b = Json::object();
    b["dockerfileContent"] = s.buildInfo->dockerfileContent;
    b["contextHashes"] = s.buildInfo->contextHashes;
    if (s.buildInfo->createdAt) b["createdAt"] = formatRfc3339(*s.buildInfo->createdAt);
    if (s.buildInfo->updatedAt) b["updatedAt"] = formatRfc3339(*s.buildInfo->updatedAt);
    b["snapshotRef"] = s.buildInfo->snapshotRef;
    j["buildInfo"] = std::move(b);
  }
  j["regionIds"] = s.regionIds;
  if (s.initialRunnerId) j["initialRunnerId"] = *s.initialRunnerId;
  if (s.ref) j["ref"] = *s.ref;
  if (s.sandboxClass) j["sandboxClass"] = *s.sandboxClass;
  j["sourceSandboxId"] = optionalToJson(s.sourceSandboxId);
  return j;
}

}  // namespace cairn
