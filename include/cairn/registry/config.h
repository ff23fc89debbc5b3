// How Cairn reaches registries: per-host plain-HTTP/TLS settings, mirrors and credentials.
//
// A config file (JSON; `cairn --registry-config FILE`, else <data>/registries.json) looks like
//
//   {"registries": {
//      "docker.io":        {"mirrors": ["http://127.0.0.1:5000"]},
//      "registry.internal:5000": {"insecure": true, "username": "ci", "password": "secret"},
//      "ghcr.io":          {"skipTlsVerify": false}}}
//
// and ~/.docker/config.json ("auths": {"host": {"auth": base64(user:pass)}}) adds credentials
// for hosts the file does not name. Loopback registries (localhost, 127.0.0.0/8, [::1]) use
// plain HTTP unless configured otherwise, as Docker does.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/status.h"
#include "cairn/oci/image.h"

namespace cairn::registry {

struct Credentials {
  std::string username;
  std::string password;
  //! An OAuth2 refresh token (docker config "identitytoken"); sent as the password of a
  //! bearer token request if set.
  std::string identity_token;
  bool empty() const { return username.empty() && password.empty() && identity_token.empty(); }
};

struct HostConfig {
  //! Plain HTTP (no TLS). Defaults to true for loopback hosts, false otherwise.
  std::optional<bool> insecure;
  bool skip_tls_verify = false;
  //! Base URLs ("http://127.0.0.1:5000", "https://mirror.example") tried in order before the
  //! origin for pulls. Without a scheme, https (http for loopback hosts) is assumed.
  std::vector<std::string> mirrors;
  Credentials credentials;
};

struct RegistryConfig {
  std::map<std::string, HostConfig> hosts;
  //! From ~/.docker/config.json, keyed by normalised host.
  std::map<std::string, Credentials> docker_credentials;
  oci::Platform platform = oci::Platform::host();
  int parallel_downloads = 3;
  int max_attempts = 5;  //!< per request, for 5xx/429 and connection resets
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{5000};

  //! Parses the JSON form above. Unknown keys are InvalidArgument (a typo must not silently
  //! turn TLS off or a mirror off).
  static Result<RegistryConfig> parse(std::string_view json);
  static Result<RegistryConfig> load(const std::filesystem::path& path);
  //! Adds credentials from a Docker client config file. A missing file is OK.
  Status addDockerConfig(const std::filesystem::path& path);
  //! What the CLI and the server use: `explicit_path` if given (must exist), else
  //! <data_dir>/registries.json if it exists, else defaults; plus the Docker client config.
  static Result<RegistryConfig> loadDefault(const std::filesystem::path& data_dir,
                                            const std::filesystem::path& explicit_path = {});
  //! $DOCKER_CONFIG/config.json, else ~/.docker/config.json (empty if $HOME is unset).
  static std::filesystem::path defaultDockerConfigPath();

  //! "http" or "https" for a registry host.
  std::string schemeFor(std::string_view host) const;
  bool verifyTlsFor(std::string_view host) const;
  Credentials credentialsFor(std::string_view host) const;
  std::vector<std::string> mirrorsFor(std::string_view host) const;
  //! The API endpoint of a host: docker.io is served by registry-1.docker.io.
  static std::string apiHost(std::string_view host);
};

}  // namespace cairn::registry
