#include "cairn/registry/config.h"

#include <cstdlib>

#include "cairn/common/encoding.h"
#include "cairn/common/fs.h"
#include "cairn/common/json.h"
#include "cairn/oci/reference.h"

namespace cairn::registry {
namespace {

// Docker config keys are "https://index.docker.io/v1/", "registry:5000", "https://host/..."
std::string normalizeDockerConfigHost(std::string key) {
  for (std::string_view prefix : {"https://", "http://"}) {
    if (key.starts_with(prefix)) key = key.substr(prefix.size());
  }
  key = key.substr(0, key.find('/'));
  if (key == "index.docker.io" || key == "registry-1.docker.io") key = "docker.io";
  return key;
}

}  // namespace

Result<RegistryConfig> RegistryConfig::parse(std::string_view text) {
  CAIRN_ASSIGN_OR_RETURN(Json j, parseJson(text));
  RegistryConfig config;
  if (!j.is_object()) return invalidArgument("registry config: expected a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "registries") continue;
    if (it.key() == "platform" && it->is_string()) {
      CAIRN_ASSIGN_OR_RETURN(config.platform, oci::Platform::parse(it->get<std::string>()));
      continue;
    }
    if (it.key() == "parallelDownloads" && it->is_number_integer()) {
      config.parallel_downloads = std::max(1, std::min(16, it->get<int>()));
      continue;
    }
    return invalidArgument("registry config: unknown or mistyped key \"" + it.key() + "\"");
  }
  auto regs = j.find("registries");
  if (regs == j.end()) return config;
  if (!regs->is_object()) return invalidArgument("registry config: registries must be an object");
  for (auto r = regs->begin(); r != regs->end(); ++r) {
    std::string where = "registry config: registries." + r.key();
    if (!r->is_object()) return invalidArgument(where + ": expected an object");
    HostConfig host;
    for (auto f = r->begin(); f != r->end(); ++f) {
      const std::string& k = f.key();
      if (k == "insecure" && f->is_boolean()) {
        host.insecure = f->get<bool>();
      } else if (k == "skipTlsVerify" && f->is_boolean()) {
        host.skip_tls_verify = f->get<bool>();
      } else if (k == "mirrors" && f->is_array()) {
        for (const auto& m : *f) {
          if (!m.is_string()) return invalidArgument(where + ".mirrors: expected strings");
          host.mirrors.push_back(m.get<std::string>());
        }
      } else if (k == "username" && f->is_string()) {
        host.credentials.username = f->get<std::string>();
      } else if (k == "password" && f->is_string()) {
        host.credentials.password = f->get<std::string>();
      } else if (k == "identityToken" && f->is_string()) {
        host.credentials.identity_token = f->get<std::string>();
      } else {
        return invalidArgument(where + ": unknown or mistyped key \"" + k + "\"");
      }
    }
    std::string key = r.key() == "index.docker.io" ? "docker.io" : r.key();
    config.hosts[key] = std::move(host);
  }
  return config;
}

Result<RegistryConfig> RegistryConfig::load(const std::filesystem::path& path) {
  CAIRN_ASSIGN_OR_RETURN(std::string text, readFile(path));
  auto config = parse(text);
  if (!config.ok()) return config.status().withContext(path.string());
  return config;
}

Status RegistryConfig::addDockerConfig(const std::filesystem::path& path) {
  auto text = readFile(path);
  if (!text.ok()) {
    return text.status().code() == StatusCode::kNotFound ? okStatus() : text.status();
  }
  auto j = parseJson(*text);
  if (!j.ok()) return j.status().withContext(path.string());
  if (!j->is_object()) return invalidArgument(path.string() + ": expected a JSON object");
  auto auths = j->find("auths");
  if (auths == j->end() || !auths->is_object()) return okStatus();
  for (auto a = auths->begin(); a != auths->end(); ++a) {
    if (!a->is_object()) continue;
    Credentials c;
    if (auto auth = a->find("auth"); auth != a->end() && auth->is_string()) {
      auto decoded = base64Decode(auth->get<std::string>());
      if (!decoded.ok()) {
        return invalidArgument(path.string() + ": auths." + a.key() + ".auth is not base64");
      }
      auto colon = decoded->find(':');
      if (colon == std::string::npos) {
        return invalidArgument(path.string() + ": auths." + a.key() +
                               ".auth is not base64(user:password)");
      }
      c.username = decoded->substr(0, colon);
      c.password = decoded->substr(colon + 1);
    }
    if (auto u = a->find("username"); u != a->end() && u->is_string()) c.username = *u;
    if (auto p = a->find("password"); p != a->end() && p->is_string()) c.password = *p;
    if (auto t = a->find("identitytoken"); t != a->end() && t->is_string()) c.identity_token = *t;
    if (!c.empty()) docker_credentials[normalizeDockerConfigHost(a.key())] = std::move(c);
  }
  return okStatus();
}

Result<RegistryConfig> RegistryConfig::loadDefault(const std::filesystem::path& data_dir,
                                                   const std::filesystem::path& explicit_path) {
  RegistryConfig config;
  if (!explicit_path.empty()) {
    CAIRN_ASSIGN_OR_RETURN(config, load(explicit_path));
  } else if (std::filesystem::exists(data_dir / "registries.json")) {
    CAIRN_ASSIGN_OR_RETURN(config, load(data_dir / "registries.json"));
  }
  auto docker = defaultDockerConfigPath();
  if (!docker.empty()) CAIRN_RETURN_IF_ERROR(config.addDockerConfig(docker));
  return config;
}

std::filesystem::path RegistryConfig::defaultDockerConfigPath() {
  if (const char* d = std::getenv("DOCKER_CONFIG"); d && *d) {
    return std::filesystem::path(d) / "config.json";
  }
  if (const char* h = std::getenv("HOME"); h && *h) {
    return std::filesystem::path(h) / ".docker" / "config.json";
  }
  return {};
}

std::string RegistryConfig::schemeFor(std::string_view host) const {
  auto it = hosts.find(std::string(host));
  if (it != hosts.end() && it->second.insecure.has_value()) {
    return *it->second.insecure ? "http" : "https";
  }
  return oci::isLoopbackHost(host) ? "http" : "https";
}

bool RegistryConfig::verifyTlsFor(std::string_view host) const {
  auto it = hosts.find(std::string(host));
  return it == hosts.end() || !it->second.skip_tls_verify;
}

Credentials RegistryConfig::credentialsFor(std::string_view host) const {
  auto it = hosts.find(std::string(host));
  if (it != hosts.end() && !it->second.credentials.empty()) return it->second.credentials;
  auto d = docker_credentials.find(std::string(host));
  if (d != docker_credentials.end()) return d->second;
  return {};
}

std::vector<std::string> RegistryConfig::mirrorsFor(std::string_view host) const {
  auto it = hosts.find(std::string(host));
  if (it == hosts.end()) return {};
  std::vector<std::string> out;
  for (std::string m : it->second.mirrors) {
    while (m.ends_with('/'))
      m.pop_back();
    if (!m.starts_with("http://") && !m.starts_with("https://")) {
      m = (oci::isLoopbackHost(m) ? "http://" : "https://") + m;
    }
    out.push_back(std::move(m));
  }
  return out;
}

std::string RegistryConfig::apiHost(std::string_view host) {
  return host == "docker.io" ? "registry-1.docker.io" : std::string(host);
}

}  // namespace cairn::registry
