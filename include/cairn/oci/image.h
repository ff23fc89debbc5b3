// OCI image-spec v1.1 types (descriptor, manifest, index, image config) and their JSON forms,
// plus reading Docker's schema2 manifests and manifest lists, which share the OCI shapes.
//
// Parsing takes untrusted bytes (registry replies, OCI layout directories) and never throws:
// every type or shape error is an InvalidArgument naming the JSON field ("layers[2].digest").
// Serialising gives canonical JSON (keys sorted, no whitespace), so the digest of what we
// write is reproducible.
//
//   CAIRN_ASSIGN_OR_RETURN(oci::Manifest m, oci::parseManifest(bytes));
//   for (const oci::Descriptor& layer : m.layers) fetch(layer.digest);
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/digest.h"
#include "cairn/common/json.h"
#include "cairn/common/status.h"

namespace cairn::oci {

// Media types, OCI and Docker schema2.
inline constexpr std::string_view kMediaTypeOciManifest =
    "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kMediaTypeOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kMediaTypeOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kMediaTypeOciLayer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kMediaTypeOciLayerGzip =
    "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kMediaTypeOciLayerZstd =
    "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view kMediaTypeOciEmpty = "application/vnd.oci.empty.v1+json";
inline constexpr std::string_view kMediaTypeDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kMediaTypeDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kMediaTypeDockerConfig =
    "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kMediaTypeDockerLayerGzip =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr std::string_view kMediaTypeDockerSchema1Signed =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";

//! Annotation an OCI layout's index.json uses for the tag of a manifest.
inline constexpr std::string_view kAnnotationRefName = "org.opencontainers.image.ref.name";

bool isManifestMediaType(std::string_view media_type);
bool isIndexMediaType(std::string_view media_type);

// Layer compressions and their media types are layer/compression.h's (Compression,
// compressionFromMediaType, ociLayerMediaType).

struct Platform {
  std::string architecture;
  std::string os;
  std::string variant;
  std::string os_version;
  std::vector<std::string> os_features;

  //! "linux/amd64", "linux/arm64/v8".
  std::string str() const;
  //! Parses "os/arch[/variant]"; InvalidArgument otherwise.
  static Result<Platform> parse(std::string_view text);
  //! The platform this process runs on, as OCI names it (amd64, arm64, ...).
  static Platform host();
  //! Same os and architecture, and same variant when `wanted` names one (arm64's empty variant
  //! also matches "v8").
  bool matches(const Platform& wanted) const;
  friend bool operator==(const Platform&, const Platform&) = default;
};

struct Descriptor {
  std::string media_type;
  Digest digest;
  std::int64_t size = 0;
  std::vector<std::string> urls;
  std::map<std::string, std::string> annotations;
  std::optional<Platform> platform;
  std::string artifact_type;

  friend bool operator==(const Descriptor&, const Descriptor&) = default;
};

struct Manifest {
  int schema_version = 2;
  std::string media_type = std::string(kMediaTypeOciManifest);
  std::string artifact_type;
  Descriptor config;
  std::vector<Descriptor> layers;
  std::optional<Descriptor> subject;
  std::map<std::string, std::string> annotations;

  friend bool operator==(const Manifest&, const Manifest&) = default;
};

struct Index {
  int schema_version = 2;
  std::string media_type = std::string(kMediaTypeOciIndex);
  std::string artifact_type;
  std::vector<Descriptor> manifests;
  std::optional<Descriptor> subject;
  std::map<std::string, std::string> annotations;

  friend bool operator==(const Index&, const Index&) = default;
};

//! Durations are nanoseconds, as in the image-spec (Go's time.Duration).
struct Healthcheck {
  std::vector<std::string> test;
  std::int64_t interval = 0;
  std::int64_t timeout = 0;
  std::int64_t start_period = 0;
  std::int64_t start_interval = 0;
  int retries = 0;

  friend bool operator==(const Healthcheck&, const Healthcheck&) = default;
};

//! The "config" object of an image config: how to run a container from the image.
//! Entrypoint and Cmd are optional because "absent" and "[]" differ (an empty Entrypoint
//! resets the parent's).
struct ContainerConfig {
  std::string user;
  std::set<std::string> exposed_ports;  //!< "80/tcp"
  std::vector<std::string> env;         //!< "KEY=value"
  std::optional<std::vector<std::string>> entrypoint;
  std::optional<std::vector<std::string>> cmd;
  std::set<std::string> volumes;
  std::string working_dir;
  std::map<std::string, std::string> labels;
  std::string stop_signal;
  std::optional<Healthcheck> healthcheck;
  std::optional<std::vector<std::string>> shell;  //!< Docker extension (SHELL)
  std::vector<std::string> on_build;              //!< Docker extension (ONBUILD)
  bool args_escaped = false;                      //!< Docker extension, kept for round trips

  friend bool operator==(const ContainerConfig&, const ContainerConfig&) = default;
};

struct HistoryEntry {
  std::string created;  //!< RFC 3339, kept as written
  std::string created_by;
  std::string author;
  std::string comment;
  bool empty_layer = false;

  friend bool operator==(const HistoryEntry&, const HistoryEntry&) = default;
};

struct ImageConfig {
  std::string created;  //!< RFC 3339, kept as written
  std::string author;
  std::string architecture;
  std::string os;
  std::string variant;
  std::string os_version;
  std::vector<std::string> os_features;
  std::optional<ContainerConfig> config;
  std::string rootfs_type = "layers";
  std::vector<Digest> diff_ids;
  std::vector<HistoryEntry> history;
  //! Top-level members we do not model (Docker's "container_config", "docker_version", ...),
  //! written back unchanged so that editing a config does not lose them.
  Json extra = Json::object();

  Platform platform() const { return {architecture, os, variant, os_version, os_features}; }
  friend bool operator==(const ImageConfig&, const ImageConfig&) = default;
};

// JSON conversion. The to* functions give the spec's JSON; serialize* gives canonical bytes.
Json toJson(const Platform& p);
Json toJson(const Descriptor& d);
Json toJson(const Manifest& m);
Json toJson(const Index& i);
Json toJson(const ImageConfig& c);

Result<Platform> platformFromJson(const Json& j, std::string_view where = "platform");
Result<Descriptor> descriptorFromJson(const Json& j, std::string_view where = "descriptor");
Result<Manifest> manifestFromJson(const Json& j);
Result<Index> indexFromJson(const Json& j);
Result<ImageConfig> imageConfigFromJson(const Json& j);

//! Canonical JSON text: sorted keys, no insignificant whitespace.
std::string serialize(const Json& j);
inline std::string serialize(const Manifest& m) {
  return serialize(toJson(m));
}
inline std::string serialize(const Index& i) {
  return serialize(toJson(i));
}
inline std::string serialize(const ImageConfig& c) {
  return serialize(toJson(c));
}

//! An OCI image manifest or a Docker schema2 manifest. Docker schema1 is rejected with a
//! message saying so.
Result<Manifest> parseManifest(std::string_view bytes);
//! An OCI image index or a Docker manifest list.
Result<Index> parseIndex(std::string_view bytes);
Result<ImageConfig> parseImageConfig(std::string_view bytes);

//! What a manifest GET returned, decided from the document's own mediaType, else the HTTP
//! Content-Type, else its shape ("manifests" vs "layers").
enum class ManifestKind { kManifest, kIndex };
Result<ManifestKind> detectManifestKind(std::string_view bytes, std::string_view content_type = {});

//! The descriptor in `index` for `platform`; NotFound lists the platforms the index offers.
Result<Descriptor> selectPlatform(const Index& index, const Platform& platform);

//! A descriptor for bytes: media type, sha256 digest and size.
Descriptor describe(std::string_view media_type, std::string_view bytes);

}  // namespace cairn::oci
