#include "cairn/oci/image.h"

#include <sys/utsname.h>

#include <utility>

#include "cairn/common/strings.h"

namespace cairn::oci {
namespace {

// Readers for untrusted JSON: each checks the type before converting, so nlohmann never
// throws, and names the field on error.
Status typeError(std::string_view where, std::string_view want) {
  return invalidArgument(std::string(where) + ": expected " + std::string(want));
}

std::string field(std::string_view where, std::string_view key) {
  return std::string(where) + "." + std::string(key);
}

Status readString(const Json& obj, std::string_view key, std::string_view where, std::string& out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return okStatus();
  if (!it->is_string()) return typeError(field(where, key), "a string");
  out = it->get<std::string>();
  return okStatus();
}

Status readInt64(const Json& obj, std::string_view key, std::string_view where, std::int64_t& out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return okStatus();
  if (!it->is_number_integer()) return typeError(field(where, key), "an integer");
  out = it->get<std::int64_t>();
  return okStatus();
}

Status readBool(const Json& obj, std::string_view key, std::string_view where, bool& out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return okStatus();
  if (!it->is_boolean()) return typeError(field(where, key), "a boolean");
  out = it->get<bool>();
  return okStatus();
}

Status readStringList(const Json& obj, std::string_view key, std::string_view where,
                      std::vector<std::string>& out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return okStatus();
  if (!it->is_array()) return typeError(field(where, key), "an array of strings");
  out.clear();
  for (std::size_t i = 0; i < it->size(); ++i) {
    const Json& e = (*it)[i];
    if (!e.is_string()) {
      return typeError(field(where, key) + "[" + std::to_string(i) + "]", "a string");
    }
    out.push_back(e.get<std::string>());
  }
  return okStatus();
}

Status readOptionalStringList(const Json& obj, std::string_view key, std::string_view where,
                              std::optional<std::vector<std::string>>& out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return okStatus();
  std::vector<std::string> v;
  CAIRN_RETURN_IF_ERROR(readStringList(obj, key, where, v));
  out = std::move(v);
  return okStatus();
}

Status readStringMap(const Json& obj, std::string_view key, std::string_view where,
                     std::map<std::string, std::string>& out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return okStatus();
  if (!it->is_object()) return typeError(field(where, key), "an object of strings");
  for (auto e = it->begin(); e != it->end(); ++e) {
    if (!e.value().is_string()) return typeError(field(where, key) + "." + e.key(), "a string");
    out[e.key()] = e.value().get<std::string>();
  }
  return okStatus();
}

// {"80/tcp": {}} sets (ExposedPorts, Volumes): only the keys matter.
Status readKeySet(const Json& obj, std::string_view key, std::string_view where,
                  std::set<std::string>& out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return okStatus();
  if (!it->is_object()) return typeError(field(where, key), "an object");
  for (auto e = it->begin(); e != it->end(); ++e)
    out.insert(e.key());
  return okStatus();
}

Status requireObject(const Json& j, std::string_view where) {
  if (!j.is_object()) return typeError(where, "an object");
  return okStatus();
}

Status readSchemaVersion(const Json& j, int& out) {
  auto it = j.find("schemaVersion");
  if (it == j.end()) return invalidArgument("schemaVersion: missing");
  if (!it->is_number_integer()) return typeError("schemaVersion", "an integer");
  std::int64_t v = it->get<std::int64_t>();
  if (v == 1) {
    return invalidArgument(
        "schemaVersion 1 (Docker schema1) manifests are not supported; push the image again "
        "with a current client");
  }
  if (v != 2) return invalidArgument("schemaVersion: unsupported value " + std::to_string(v));
  out = 2;
  return okStatus();
}

void putString(Json& j, std::string_view key, const std::string& v) {
  if (!v.empty()) j[std::string(key)] = v;
}

void putMap(Json& j, std::string_view key, const std::map<std::string, std::string>& m) {
  if (m.empty()) return;
  Json o = Json::object();
  for (const auto& [k, v] : m)
    o[k] = v;
  j[std::string(key)] = std::move(o);
}

void putKeySet(Json& j, std::string_view key, const std::set<std::string>& s) {
  if (s.empty()) return;
  Json o = Json::object();
  for (const auto& k : s)
    o[k] = Json::object();
  j[std::string(key)] = std::move(o);
}

Json toJson(const Healthcheck& h) {
  Json j = Json::object();
  j["Test"] = h.test;
  if (h.interval) j["Interval"] = h.interval;
  if (h.timeout) j["Timeout"] = h.timeout;
  if (h.start_period) j["StartPeriod"] = h.start_period;
  if (h.start_interval) j["StartInterval"] = h.start_interval;
  if (h.retries) j["Retries"] = h.retries;
  return j;
}

Json toJson(const ContainerConfig& c) {
  Json j = Json::object();
  putString(j, "User", c.user);
  putKeySet(j, "ExposedPorts", c.exposed_ports);
  if (!c.env.empty()) j["Env"] = c.env;
  if (c.entrypoint) j["Entrypoint"] = *c.entrypoint;
  if (c.cmd) j["Cmd"] = *c.cmd;
  putKeySet(j, "Volumes", c.volumes);
  putString(j, "WorkingDir", c.working_dir);
  putMap(j, "Labels", c.labels);
  putString(j, "StopSignal", c.stop_signal);
  if (c.healthcheck) j["Healthcheck"] = toJson(*c.healthcheck);
  if (c.shell) j["Shell"] = *c.shell;
  if (!c.on_build.empty()) j["OnBuild"] = c.on_build;
  if (c.args_escaped) j["ArgsEscaped"] = true;
  return j;
}

Result<Healthcheck> healthcheckFromJson(const Json& j, std::string_view where) {
  CAIRN_RETURN_IF_ERROR(requireObject(j, where));
  Healthcheck h;
  CAIRN_RETURN_IF_ERROR(readStringList(j, "Test", where, h.test));
  CAIRN_RETURN_IF_ERROR(readInt64(j, "Interval", where, h.interval));
  CAIRN_RETURN_IF_ERROR(readInt64(j, "Timeout", where, h.timeout));
  CAIRN_RETURN_IF_ERROR(readInt64(j, "StartPeriod", where, h.start_period));
  CAIRN_RETURN_IF_ERROR(readInt64(j, "StartInterval", where, h.start_interval));
  std::int64_t retries = 0;
  CAIRN_RETURN_IF_ERROR(readInt64(j, "Retries", where, retries));
  if (retries < 0 || retries > 1'000'000) {
    return invalidArgument(field(where, "Retries") + ": out of range");
  }
  h.retries = static_cast<int>(retries);
  return h;
}

Result<ContainerConfig> containerConfigFromJson(const Json& j, std::string_view where) {
  CAIRN_RETURN_IF_ERROR(requireObject(j, where));
  ContainerConfig c;
  CAIRN_RETURN_IF_ERROR(readString(j, "User", where, c.user));
  CAIRN_RETURN_IF_ERROR(readKeySet(j, "ExposedPorts", where, c.exposed_ports));
  CAIRN_RETURN_IF_ERROR(readStringList(j, "Env", where, c.env));
  CAIRN_RETURN_IF_ERROR(readOptionalStringList(j, "Entrypoint", where, c.entrypoint));
  CAIRN_RETURN_IF_ERROR(readOptionalStringList(j, "Cmd", where, c.cmd));
  CAIRN_RETURN_IF_ERROR(readKeySet(j, "Volumes", where, c.volumes));
  CAIRN_RETURN_IF_ERROR(readString(j, "WorkingDir", where, c.working_dir));
  CAIRN_RETURN_IF_ERROR(readStringMap(j, "Labels", where, c.labels));
  CAIRN_RETURN_IF_ERROR(readString(j, "StopSignal", where, c.stop_signal));
  if (auto it = j.find("Healthcheck"); it != j.end() && !it->is_null()) {
    CAIRN_ASSIGN_OR_RETURN(c.healthcheck, healthcheckFromJson(*it, field(where, "Healthcheck")));
  }
  CAIRN_RETURN_IF_ERROR(readOptionalStringList(j, "Shell", where, c.shell));
  CAIRN_RETURN_IF_ERROR(readStringList(j, "OnBuild", where, c.on_build));
  CAIRN_RETURN_IF_ERROR(readBool(j, "ArgsEscaped", where, c.args_escaped));
  return c;
}

Result<std::vector<Descriptor>> descriptorList(const Json& j, std::string_view key, bool required) {
  std::vector<Descriptor> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) return invalidArgument(std::string(key) + ": missing");
    return out;
  }
  if (!it->is_array()) return typeError(key, "an array");
  for (std::size_t i = 0; i < it->size(); ++i) {
    CAIRN_ASSIGN_OR_RETURN(Descriptor d, descriptorFromJson((*it)[i], std::string(key) + "[" +
                                                                          std::to_string(i) + "]"));
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace

bool isManifestMediaType(std::string_view t) {
  return t == kMediaTypeOciManifest || t == kMediaTypeDockerManifest;
}
bool isIndexMediaType(std::string_view t) {
  return t == kMediaTypeOciIndex || t == kMediaTypeDockerManifestList;
}

std::string Platform::str() const {
  std::string s = os + "/" + architecture;
  if (!variant.empty()) s += "/" + variant;
  return s;
}

Result<Platform> Platform::parse(std::string_view text) {
  std::vector<std::string> parts = splitString(text, '/');
  if (parts.size() < 2 || parts.size() > 3) {
    return invalidArgument("platform \"" + std::string(text) +
                           "\": expected os/architecture[/variant], e.g. linux/amd64");
  }
  for (const auto& p : parts) {
    if (p.empty()) {
      return invalidArgument("platform \"" + std::string(text) + "\": empty component");
    }
  }
  Platform p;
  p.os = toLowerAscii(parts[0]);
  p.architecture = toLowerAscii(parts[1]);
  if (parts.size() == 3) p.variant = toLowerAscii(parts[2]);
  return p;
}

Platform Platform::host() {
  Platform p;
  p.os = "linux";
  struct utsname u {};
  std::string machine = uname(&u) == 0 ? u.machine : "x86_64";
  if (machine == "x86_64") {
    p.architecture = "amd64";
  } else if (machine == "aarch64" || machine == "arm64") {
    p.architecture = "arm64";
  } else if (machine == "i686" || machine == "i386") {
    p.architecture = "386";
  } else if (machine.starts_with("armv7")) {
    p.architecture = "arm";
    p.variant = "v7";
  } else {
    p.architecture = machine;
  }
  return p;
}

bool Platform::matches(const Platform& wanted) const {
  if (os != wanted.os || architecture != wanted.architecture) return false;
  if (wanted.variant.empty()) return true;
  if (variant == wanted.variant) return true;
  return architecture == "arm64" && variant.empty() && wanted.variant == "v8";
}

Json toJson(const Platform& p) {
  Json j = Json::object();
  j["architecture"] = p.architecture;
  j["os"] = p.os;
  putString(j, "variant", p.variant);
  putString(j, "os.version", p.os_version);
  if (!p.os_features.empty()) j["os.features"] = p.os_features;
  return j;
}

Json toJson(const Descriptor& d) {
  Json j = Json::object();
  j["mediaType"] = d.media_type;
  j["digest"] = d.digest.str();
  j["size"] = d.size;
  if (!d.urls.empty()) j["urls"] = d.urls;
  putMap(j, "annotations", d.annotations);
  if (d.platform) j["platform"] = toJson(*d.platform);
  putString(j, "artifactType", d.artifact_type);
  return j;
}

Json toJson(const Manifest& m) {
  Json j = Json::object();
  j["schemaVersion"] = m.schema_version;
  putString(j, "mediaType", m.media_type);
  putString(j, "artifactType", m.artifact_type);
  j["config"] = toJson(m.config);
  Json layers = Json::array();
  for (const auto& l : m.layers)
    layers.push_back(toJson(l));
  j["layers"] = std::move(layers);
  if (m.subject) j["subject"] = toJson(*m.subject);
  putMap(j, "annotations", m.annotations);
  return j;
}

Json toJson(const Index& i) {
  Json j = Json::object();
  j["schemaVersion"] = i.schema_version;
  putString(j, "mediaType", i.media_type);
  putString(j, "artifactType", i.artifact_type);
  Json ms = Json::array();
  for (const auto& m : i.manifests)
    ms.push_back(toJson(m));
  j["manifests"] = std::move(ms);
  if (i.subject) j["subject"] = toJson(*i.subject);
  putMap(j, "annotations", i.annotations);
  return j;
}

Json toJson(const ImageConfig& c) {
  Json j = c.extra.is_object() ? c.extra : Json::object();
  putString(j, "created", c.created);
  putString(j, "author", c.author);
  j["architecture"] = c.architecture;
  j["os"] = c.os;
  putString(j, "variant", c.variant);
  putString(j, "os.version", c.os_version);
  if (!c.os_features.empty()) j["os.features"] = c.os_features;
  if (c.config) j["config"] = toJson(*c.config);
  Json diff_ids = Json::array();
  for (const auto& d : c.diff_ids)
    diff_ids.push_back(d.str());
  j["rootfs"] = Json{{"type", c.rootfs_type}, {"diff_ids", std::move(diff_ids)}};
  if (!c.history.empty()) {
    Json h = Json::array();
    for (const auto& e : c.history) {
      Json o = Json::object();
      putString(o, "created", e.created);
      putString(o, "created_by", e.created_by);
      putString(o, "author", e.author);
      putString(o, "comment", e.comment);
      if (e.empty_layer) o["empty_layer"] = true;
      h.push_back(std::move(o));
    }
    j["history"] = std::move(h);
  }
  return j;
}

Result<Platform> platformFromJson(const Json& j, std::string_view where) {
  CAIRN_RETURN_IF_ERROR(requireObject(j, where));
  Platform p;
  CAIRN_RETURN_IF_ERROR(readString(j, "architecture", where, p.architecture));
  CAIRN_RETURN_IF_ERROR(readString(j, "os", where, p.os));
  CAIRN_RETURN_IF_ERROR(readString(j, "variant", where, p.variant));
  CAIRN_RETURN_IF_ERROR(readString(j, "os.version", where, p.os_version));
  CAIRN_RETURN_IF_ERROR(readStringList(j, "os.features", where, p.os_features));
  return p;
}

Result<Descriptor> descriptorFromJson(const Json& j, std::string_view where) {
  CAIRN_RETURN_IF_ERROR(requireObject(j, where));
  Descriptor d;
  CAIRN_RETURN_IF_ERROR(readString(j, "mediaType", where, d.media_type));
  std::string digest;
  CAIRN_RETURN_IF_ERROR(readString(j, "digest", where, digest));
  if (digest.empty()) return invalidArgument(field(where, "digest") + ": missing");
  auto parsed = Digest::parse(digest);
  if (!parsed.ok()) return parsed.status().withContext(field(where, "digest"));
  d.digest = *parsed;
  auto size = j.find("size");
  if (size == j.end()) return invalidArgument(field(where, "size") + ": missing");
  CAIRN_RETURN_IF_ERROR(readInt64(j, "size", where, d.size));
  if (d.size < 0) return invalidArgument(field(where, "size") + ": negative");
  CAIRN_RETURN_IF_ERROR(readStringList(j, "urls", where, d.urls));
  CAIRN_RETURN_IF_ERROR(readStringMap(j, "annotations", where, d.annotations));
  if (auto it = j.find("platform"); it != j.end() && !it->is_null()) {
    CAIRN_ASSIGN_OR_RETURN(d.platform, platformFromJson(*it, field(where, "platform")));
  }
  CAIRN_RETURN_IF_ERROR(readString(j, "artifactType", where, d.artifact_type));
  return d;
}

Result<Manifest> manifestFromJson(const Json& j) {
  CAIRN_RETURN_IF_ERROR(requireObject(j, "manifest"));
  Manifest m;
  CAIRN_RETURN_IF_ERROR(readSchemaVersion(j, m.schema_version));
  m.media_type.clear();
  CAIRN_RETURN_IF_ERROR(readString(j, "mediaType", "manifest", m.media_type));
  if (!m.media_type.empty() && !isManifestMediaType(m.media_type)) {
    return invalidArgument("mediaType \"" + m.media_type + "\" is not an image manifest");
  }
  CAIRN_RETURN_IF_ERROR(readString(j, "artifactType", "manifest", m.artifact_type));
  auto config = j.find("config");
  if (config == j.end()) return invalidArgument("config: missing");
  CAIRN_ASSIGN_OR_RETURN(m.config, descriptorFromJson(*config, "config"));
  CAIRN_ASSIGN_OR_RETURN(m.layers, descriptorList(j, "layers", /*required=*/true));
  if (auto it = j.find("subject"); it != j.end() && !it->is_null()) {
    CAIRN_ASSIGN_OR_RETURN(m.subject, descriptorFromJson(*it, "subject"));
  }
  CAIRN_RETURN_IF_ERROR(readStringMap(j, "annotations", "manifest", m.annotations));
  return m;
}

Result<Index> indexFromJson(const Json& j) {
  CAIRN_RETURN_IF_ERROR(requireObject(j, "index"));
  Index i;
  CAIRN_RETURN_IF_ERROR(readSchemaVersion(j, i.schema_version));
  i.media_type.clear();
  CAIRN_RETURN_IF_ERROR(readString(j, "mediaType", "index", i.media_type));
  if (!i.media_type.empty() && !isIndexMediaType(i.media_type)) {
    return invalidArgument("mediaType \"" + i.media_type + "\" is not an image index");
  }
  CAIRN_RETURN_IF_ERROR(readString(j, "artifactType", "index", i.artifact_type));
  CAIRN_ASSIGN_OR_RETURN(i.manifests, descriptorList(j, "manifests", /*required=*/true));
  if (auto it = j.find("subject"); it != j.end() && !it->is_null()) {
    CAIRN_ASSIGN_OR_RETURN(i.subject, descriptorFromJson(*it, "subject"));
  }
  CAIRN_RETURN_IF_ERROR(readStringMap(j, "annotations", "index", i.annotations));
  return i;
}

Result<ImageConfig> imageConfigFromJson(const Json& j) {
  CAIRN_RETURN_IF_ERROR(requireObject(j, "image config"));
  constexpr std::string_view w = "config";
  ImageConfig c;
  CAIRN_RETURN_IF_ERROR(readString(j, "created", w, c.created));
  CAIRN_RETURN_IF_ERROR(readString(j, "author", w, c.author));
  CAIRN_RETURN_IF_ERROR(readString(j, "architecture", w, c.architecture));
  CAIRN_RETURN_IF_ERROR(readString(j, "os", w, c.os));
  CAIRN_RETURN_IF_ERROR(readString(j, "variant", w, c.variant));
  CAIRN_RETURN_IF_ERROR(readString(j, "os.version", w, c.os_version));
  CAIRN_RETURN_IF_ERROR(readStringList(j, "os.features", w, c.os_features));
  if (auto it = j.find("config"); it != j.end() && !it->is_null()) {
    CAIRN_ASSIGN_OR_RETURN(c.config, containerConfigFromJson(*it, "config.config"));
  }
  auto rootfs = j.find("rootfs");
  if (rootfs == j.end()) return invalidArgument("config.rootfs: missing");
  CAIRN_RETURN_IF_ERROR(requireObject(*rootfs, "config.rootfs"));
  CAIRN_RETURN_IF_ERROR(readString(*rootfs, "type", "config.rootfs", c.rootfs_type));
  if (c.rootfs_type != "layers") {
    return invalidArgument("config.rootfs.type: must be \"layers\", got \"" + c.rootfs_type + "\"");
  }
  std::vector<std::string> diff_ids;
  CAIRN_RETURN_IF_ERROR(readStringList(*rootfs, "diff_ids", "config.rootfs", diff_ids));
  for (std::size_t i = 0; i < diff_ids.size(); ++i) {
    auto d = Digest::parse(diff_ids[i]);
    if (!d.ok()) {
      return d.status().withContext("config.rootfs.diff_ids[" + std::to_string(i) + "]");
    }
    c.diff_ids.push_back(*d);
  }
  if (auto it = j.find("history"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) return typeError("config.history", "an array");
    for (std::size_t i = 0; i < it->size(); ++i) {
      std::string where = "config.history[" + std::to_string(i) + "]";
      const Json& e = (*it)[i];
      CAIRN_RETURN_IF_ERROR(requireObject(e, where));
      HistoryEntry h;
      CAIRN_RETURN_IF_ERROR(readString(e, "created", where, h.created));
      CAIRN_RETURN_IF_ERROR(readString(e, "created_by", where, h.created_by));
      CAIRN_RETURN_IF_ERROR(readString(e, "author", where, h.author));
      CAIRN_RETURN_IF_ERROR(readString(e, "comment", where, h.comment));
      CAIRN_RETURN_IF_ERROR(readBool(e, "empty_layer", where, h.empty_layer));
      c.history.push_back(std::move(h));
    }
  }
  static const std::set<std::string> kKnown = {"created", "author",     "architecture", "os",
                                               "variant", "os.version", "os.features",  "config",
                                               "rootfs",  "history"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!kKnown.contains(it.key())) c.extra[it.key()] = it.value();
  }
  return c;
}

std::string serialize(const Json& j) {
  // nlohmann::json keeps object keys sorted; dump() without indent has no whitespace. Invalid
  // UTF-8 in a string is replaced rather than thrown on (it can only come from untrusted input
  // that we round-trip).
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Result<Manifest> parseManifest(std::string_view bytes) {
  CAIRN_ASSIGN_OR_RETURN(Json j, parseJson(bytes, 64));
  auto m = manifestFromJson(j);
  if (!m.ok()) return m.status().withContext("image manifest");
  return m;
}

Result<Index> parseIndex(std::string_view bytes) {
  CAIRN_ASSIGN_OR_RETURN(Json j, parseJson(bytes, 64));
  auto i = indexFromJson(j);
  if (!i.ok()) return i.status().withContext("image index");
  return i;
}

Result<ImageConfig> parseImageConfig(std::string_view bytes) {
  CAIRN_ASSIGN_OR_RETURN(Json j, parseJson(bytes, 128));
  auto c = imageConfigFromJson(j);
  if (!c.ok()) return c.status().withContext("image config");
  return c;
}

Result<ManifestKind> detectManifestKind(std::string_view bytes, std::string_view content_type) {
  CAIRN_ASSIGN_OR_RETURN(Json j, parseJson(bytes, 64));
  if (!j.is_object()) return invalidArgument("manifest: expected a JSON object");
  std::string media_type;
  CAIRN_RETURN_IF_ERROR(readString(j, "mediaType", "manifest", media_type));
  if (media_type.empty()) {
    // Content-Type may carry parameters ("...; charset=utf-8").
    media_type = std::string(trimSpace(content_type.substr(0, content_type.find(';'))));
  }
  if (isManifestMediaType(media_type)) return ManifestKind::kManifest;
  if (isIndexMediaType(media_type)) return ManifestKind::kIndex;
  if (media_type == kMediaTypeDockerSchema1Signed ||
      media_type == "application/vnd.docker.distribution.manifest.v1+json") {
    return invalidArgument("Docker schema1 manifests are not supported");
  }
  if (j.contains("manifests")) return ManifestKind::kIndex;
  if (j.contains("layers") || j.contains("config")) return ManifestKind::kManifest;
  return invalidArgument("not an image manifest or index (mediaType \"" + media_type + "\")");
}

Result<Descriptor> selectPlatform(const Index& index, const Platform& platform) {
  std::vector<std::string> offered;
  for (const auto& d : index.manifests) {
    if (!d.platform) continue;
    if (d.platform->matches(platform) && isManifestMediaType(d.media_type)) return d;
    offered.push_back(d.platform->str());
  }
  // An index whose single entry has no platform (as some tools write) is the image itself.
  if (index.manifests.size() == 1 && !index.manifests[0].platform) return index.manifests[0];
  return notFound("no manifest for platform " + platform.str() + " in the index (it has: " +
                  (offered.empty() ? std::string("none") : joinStrings(offered, ", ")) + ")");
}

Descriptor describe(std::string_view media_type, std::string_view bytes) {
  Descriptor d;
  d.media_type = std::string(media_type);
  d.digest = Digest::ofBytes(bytes);
  d.size = static_cast<std::int64_t>(bytes.size());
  return d;
}

}  // namespace cairn::oci
