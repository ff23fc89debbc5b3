#include "cairn/service/snapshot_request.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <regex>

#include "cairn/common/strings.h"
#include "cairn/image/context.h"

namespace cairn::service {
namespace {

constexpr const char* kGpuTypes[] = {"H100",     "H200",     "B300",  "RTX-PRO-6000",
                                     "RTX-4090", "RTX-5090", "MI355X"};
constexpr const char* kSandboxClasses[] = {"linux-vm", "container", "android", "windows"};

std::string joinedValues(const auto& values) {
  std::string out;
  for (const char* v : values) {
    if (!out.empty()) out += ", ";
    out += v;
  }
  return out;
}

bool oneOf(const std::string& v, const auto& values) {
  return std::any_of(std::begin(values), std::end(values),
                     [&](const char* candidate) { return v == candidate; });
}

// class-validator's message set for one optional numeric property with bounds.
void checkNumber(const Json& body, const char* key, std::optional<double>& out, double min,
                 std::optional<double> max, std::vector<std::string>& errors) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return;
  if (!it->is_number()) {
    errors.push_back(std::string(key) +
                     " must be a number conforming to the specified constraints");
    return;
  }
  double v = it->get<double>();
  if (!std::isfinite(v)) {
    errors.push_back(std::string(key) +
                     " must be a number conforming to the specified constraints");
    return;
  }
  if (v < min) errors.push_back(std::string(key) + " must not be less than " + formatNumber(min));
  if (max && v > *max) {
    errors.push_back(std::string(key) + " must not be greater than " + formatNumber(*max));
  }
  out = v;
}

void checkString(const Json& body, const char* key, std::optional<std::string>& out,
                 std::vector<std::string>& errors) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return;
  if (!it->is_string()) {
    errors.push_back(std::string(key) + " must be a string");
    return;
  }
  out = it->get<std::string>();
}

std::optional<std::vector<std::string>> stringArray(const Json& value, const std::string& key,
                                                    std::vector<std::string>& errors) {
  if (!value.is_array()) {
    errors.push_back(key + " must be an array");
    return std::nullopt;
  }
  std::vector<std::string> out;
  for (const auto& e : value) {
    if (!e.is_string()) {
      errors.push_back("each value in " + key + " must be a string");
      return std::nullopt;
    }
    out.push_back(e.get<std::string>());
  }
  return out;
}

// The "safe display string" check of the reference DTO: no control characters, HTML tags or
// URLs in a name that will be shown in dashboards and logs.
bool isSafeDisplayString(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return false;
  }
  static const std::regex kTag("<[^>]*>");
  static const std::regex kUrl("[a-zA-Z][a-zA-Z0-9+.-]*://");
  std::string text(s);
  return !std::regex_search(text, kTag) && !std::regex_search(text, kUrl);
}

}  // namespace

std::string formatNumber(double value) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  if (ec != std::errc()) return std::to_string(value);
  return std::string(buf, end);
}

Result<CreateSnapshotRequest> parseCreateSnapshot(const Json& body) {
  if (!body.is_object()) return invalidArgument("request body must be a JSON object");
  CreateSnapshotRequest r;
  std::vector<std::string> errors;

  auto name = body.find("name");
  if (name == body.end() || !name->is_string()) {
    errors.emplace_back("name must be a string");
  } else {
    r.name = name->get<std::string>();
    if (r.name.empty())
      errors.emplace_back("name should not be empty");
    else if (!isSafeDisplayString(r.name)) {
      errors.emplace_back("name must not contain HTML tags, URLs or control characters");
    }
  }
  checkString(body, "imageName", r.image_name, errors);
  if (auto it = body.find("entrypoint"); it != body.end() && !it->is_null()) {
    r.entrypoint = stringArray(*it, "entrypoint", errors);
  }
  checkNumber(body, "cpu", r.cpu, 0, std::nullopt, errors);
  checkNumber(body, "gpu", r.gpu, 0, 1, errors);
  checkNumber(body, "memory", r.memory, 0, std::nullopt, errors);
  checkNumber(body, "disk", r.disk, 0, std::nullopt, errors);

  if (auto it = body.find("gpuType"); it != body.end() && !it->is_null()) {
    // A scalar is coerced to [scalar]; [] means absent; otherwise exactly one element.
    Json list = it->is_array() ? *it : Json::array({*it});
    if (list.size() > 1) {
      errors.emplace_back("gpuType must contain no more than 1 elements");
    } else if (list.size() == 1) {
      if (!list[0].is_string() || !oneOf(list[0].get<std::string>(), kGpuTypes)) {
        errors.push_back("each value in gpuType must be one of the following values: " +
                         joinedValues(kGpuTypes));
      } else {
        r.gpu_type = list[0].get<std::string>();
      }
    }
  }

  if (auto it = body.find("buildInfo"); it != body.end() && !it->is_null()) {
    if (!it->is_object()) {
      errors.emplace_back("buildInfo must be an object");
    } else {
      BuildInfoRequest info;
      auto content = it->find("dockerfileContent");
      if (content == it->end() || !content->is_string()) {
        errors.emplace_back("buildInfo.dockerfileContent must be a string");
      } else if (content->get<std::string>().empty()) {
        errors.emplace_back("buildInfo.dockerfileContent should not be empty");
      } else {
        info.dockerfile_content = content->get<std::string>();
      }
      if (auto hashes = it->find("contextHashes"); hashes != it->end() && !hashes->is_null()) {
        if (auto list = stringArray(*hashes, "buildInfo.contextHashes", errors)) {
          info.context_hashes = std::move(*list);
        }
      }
      r.build_info = std::move(info);
    }
  }
  checkString(body, "regionId", r.region_id, errors);
  checkString(body, "sandboxClass", r.sandbox_class, errors);
  if (r.sandbox_class && !oneOf(*r.sandbox_class, kSandboxClasses)) {
    errors.push_back("sandboxClass must be one of the following values: " +
                     joinedValues(kSandboxClasses));
  }
  if (!errors.empty()) return invalidArgument(joinStrings(errors, ", "));
  return r;
}

bool isValidSnapshotName(std::string_view name) {
  static const std::regex kName(
      R"(^[a-zA-Z0-9_.\-:]+(/[a-zA-Z0-9_.\-:]+)*(@sha256:[a-f0-9]{64})?$)");
  return std::regex_match(name.begin(), name.end(), kName);
}

Status checkImageName(std::string_view image_name) {
  std::string name(image_name);
  if (auto at = name.find("@sha256:"); at != std::string::npos) {
    std::string digest = name.substr(at + 8);
    static const std::regex kHex("^[a-f0-9]{64}$");
    if (at == 0 || !std::regex_match(digest, kHex)) {
      return invalidArgument("Invalid digest format. Must be image@sha256:64_hex_characters");
    }
    return okStatus();
  }
  std::string_view trimmed = trimRightSpace(name);
  if (name.find(':') == std::string::npos || (!trimmed.empty() && trimmed.back() == ':')) {
    return invalidArgument(
        "Image name must include a tag (e.g., ubuntu:22.04) or digest (@sha256:...)");
  }
  if (name.size() >= 7 && name.compare(name.size() - 7, 7, ":latest") == 0) {
    return invalidArgument("Images with tag \":latest\" are not allowed");
  }
  // [registry[:port]/]component(/component)*:tag, components lowercase as Docker requires.
  static const std::regex kImage(
      R"(^(?:[a-zA-Z0-9]+(?:[.-][a-zA-Z0-9]+)*(?::[0-9]+)?/)?)"
      R"([a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
      R"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$)");
  if (!std::regex_match(name, kImage)) {
    return invalidArgument(
        "Invalid image name format. Must be lowercase, may contain digits, dots, dashes, and "
        "single slashes between components");
  }
  return okStatus();
}

Status checkCreateSnapshot(const CreateSnapshotRequest& r) {
  if (r.build_info && r.image_name) {
    return invalidArgument("Cannot specify an image name when using a build info entry");
  }
  if (r.build_info && r.entrypoint) {
    return invalidArgument("Cannot specify an entrypoint when using a build info entry");
  }
  if (!r.build_info && !r.image_name) {
    return invalidArgument("Must specify an image name when not using a build info entry");
  }
  if (!isValidSnapshotName(r.name)) {
    return invalidArgument(
        "Invalid snapshot name format. May contain letters, digits, dots, colons, and dashes");
  }
  if (!r.build_info) CAIRN_RETURN_IF_ERROR(checkImageName(*r.image_name));
  if (r.sandbox_class && *r.sandbox_class == "windows") {
    return invalidArgument(
        "Windows snapshots cannot be created via this endpoint; they are produced by "
        "snapshot-from-sandbox flows.");
  }
  return okStatus();
}

Status checkSandboxLimits(const CreateSnapshotRequest& r, const SandboxLimits& limits) {
  if (r.cpu && *r.cpu > 0 && *r.cpu > limits.max_cpu) {
    return invalidArgument("CPU request " + formatNumber(*r.cpu) +
                           " exceeds maximum allowed per sandbox (" + formatNumber(limits.max_cpu) +
                           ").\n" + limits.help_line);
  }
  if (r.memory && *r.memory > 0 && *r.memory > limits.max_memory_gb) {
    return invalidArgument("Memory request " + formatNumber(*r.memory) +
                           "GB exceeds maximum allowed per sandbox (" +
                           formatNumber(limits.max_memory_gb) + "GB).\n" + limits.help_line);
  }
  if (r.disk && *r.disk > 0 && *r.disk > limits.max_disk_gb) {
    return invalidArgument("Disk request " + formatNumber(*r.disk) +
                           "GB exceeds maximum allowed per sandbox (" +
                           formatNumber(limits.max_disk_gb) + "GB).\n" + limits.help_line);
  }
  return okStatus();
}

std::string buildSnapshotRef(std::string_view dockerfile_content,
                             std::vector<std::string> context_hashes) {
  // One implementation of §5.4 for the SDK side (image/) and the server.
  return daytonaSnapshotRef(dockerfile_content, std::move(context_hashes));
}

std::optional<std::vector<std::string>> detectEntrypoint(std::string_view dockerfile_content) {
  const std::vector<std::string> kDefault = {"sleep", "infinity"};
  // JavaScript's /ENTRYPOINT\s+(.*)/: \s may cross lines, '.' stops at \n and \r.
  static const std::regex kEntrypoint(R"(ENTRYPOINT\s+([^\n\r]*))");
  std::string text(dockerfile_content);
  std::optional<std::string> last;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), kEntrypoint);
       it != std::sregex_iterator(); ++it) {
    last = (*it)[1].str();
  }
  if (!last) return kDefault;
  std::string value(trimSpace(*last));
  std::vector<std::string> args;
  Json parsed = Json::parse(value, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_discarded()) {
    if (!parsed.is_array()) return kDefault;
    for (const auto& e : parsed)
      args.push_back(e.is_string() ? e.get<std::string>() : e.dump());
  } else {
    value.erase(
        std::remove_if(value.begin(), value.end(), [](char c) { return c == '"' || c == '\''; }),
        value.end());
    args.push_back(value);
  }
  std::erase_if(args, [](const std::string& a) { return trimSpace(a).empty(); });
  if (args.empty()) return std::nullopt;
  return args;
}

Result<ListSnapshotsQuery> parseListSnapshotsQueryValues(
    const std::optional<std::string>& page, const std::optional<std::string>& limit,
    const std::optional<std::string>& name, const std::optional<std::string>& sort,
    const std::optional<std::string>& order, const std::optional<std::string>& source_sandbox_id) {
  ListSnapshotsQuery q;
  std::vector<std::string> errors;
  auto integer = [&](const std::optional<std::string>& raw, const char* key, int min,
                     std::optional<int> max, int& out) {
    if (!raw) return;
    std::string_view s = trimSpace(*raw);
    long long v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size()) {
      errors.push_back(std::string(key) + " must be an integer number");
      return;
    }
    if (v < min) {
      errors.push_back(std::string(key) + " must not be less than " + std::to_string(min));
      return;
    }
    if (max && v > *max) {
      errors.push_back(std::string(key) + " must not be greater than " + std::to_string(*max));
      return;
    }
    if (v > 1'000'000'000) v = 1'000'000'000;
    out = static_cast<int>(v);
  };
  integer(page, "page", 1, std::nullopt, q.page);
  integer(limit, "limit", 1, 200, q.limit);
  if (name && !name->empty()) q.name = *name;
  if (sort) {
    if (*sort == "name")
      q.sort = SnapshotSort::kName;
    else if (*sort == "state")
      q.sort = SnapshotSort::kState;
    else if (*sort == "lastUsedAt")
      q.sort = SnapshotSort::kLastUsedAt;
    else if (*sort == "createdAt")
      q.sort = SnapshotSort::kCreatedAt;
    else
      errors.emplace_back(
          "sort must be one of the following values: name, state, lastUsedAt, createdAt");
  }
  if (order) {
    if (*order == "asc")
      q.ascending = true;
    else if (*order == "desc")
      q.ascending = false;
    else
      errors.emplace_back("order must be one of the following values: asc, desc");
  }
  if (source_sandbox_id && !source_sandbox_id->empty()) q.source_sandbox_id = *source_sandbox_id;
  if (!errors.empty()) return invalidArgument(joinStrings(errors, ", "));
  return q;
}

}  // namespace cairn::service
