#include "cairn/oci/catalog.h"

#include <fcntl.h>
#include <sys/file.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include "cairn/common/fs.h"
#include "cairn/common/time.h"
#include "cairn/oci/reference.h"

namespace cairn::oci {
namespace {

constexpr std::string_view kCatalogFile = "images.json";
constexpr std::string_view kLockFile = "images.lock";

// An exclusive flock held for one read-modify-write of the catalog, across processes.
class FileLock {
 public:
  static Result<FileLock> acquire(const std::filesystem::path& path) {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (!fd.valid()) return errnoStatus(errno, "open " + path.string());
    while (::flock(fd.get(), LOCK_EX) != 0) {
      if (errno != EINTR) return errnoStatus(errno, "flock " + path.string());
    }
    return FileLock(std::move(fd));
  }

 private:
  explicit FileLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;  // closing the descriptor releases the lock
};

}  // namespace

Result<std::unique_ptr<ImageCatalog>> ImageCatalog::open(const std::filesystem::path& data_dir) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return internalError("create data dir " + data_dir.string() + ": " + ec.message());
  auto catalog = std::unique_ptr<ImageCatalog>(new ImageCatalog(data_dir));
  CAIRN_RETURN_IF_ERROR(catalog->load().status());
  return catalog;
}

Result<std::string> ImageCatalog::normalizeName(std::string_view name) {
  CAIRN_ASSIGN_OR_RETURN(Reference ref, Reference::parse(name));
  return ref.withDefaultTag().str();
}

Result<std::vector<CatalogEntry>> ImageCatalog::load() const {
  auto path = dir_ / kCatalogFile;
  auto text = readFile(path);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) return std::vector<CatalogEntry>{};
    return text.status();
  }
  auto fail = [&](const Status& s) { return s.withContext(path.string()); };
  auto j = parseJson(*text);
  if (!j.ok()) return fail(j.status());
  auto images = j->find("images");
  if (!j->is_object() || images == j->end() || !images->is_array()) {
    return fail(invalidArgument("expected {\"images\": [...]}"));
  }
  std::vector<CatalogEntry> out;
  for (std::size_t i = 0; i < images->size(); ++i) {
    const Json& e = (*images)[i];
    std::string where = "images[" + std::to_string(i) + "]";
    if (!e.is_object() || !e.contains("name") || !e["name"].is_string() ||
        !e.contains("descriptor")) {
      return fail(invalidArgument(where + ": expected name and descriptor"));
    }
    CatalogEntry entry;
    entry.name = e["name"].get<std::string>();
    auto d = descriptorFromJson(e["descriptor"], where + ".descriptor");
    if (!d.ok()) return fail(d.status());
    entry.descriptor = *d;
    if (e.contains("createdAt") && e["createdAt"].is_string()) {
      entry.created_at = e["createdAt"].get<std::string>();
    }
    if (e.contains("source") && e["source"].is_string()) {
      entry.source = e["source"].get<std::string>();
    }
    out.push_back(std::move(entry));
  }
  return out;
}

Status ImageCatalog::save(const std::vector<CatalogEntry>& entries) const {
  Json images = Json::array();
  for (const auto& e : entries) {
    Json o = {{"name", e.name}, {"descriptor", toJson(e.descriptor)}};
    if (!e.created_at.empty()) o["createdAt"] = e.created_at;
    if (!e.source.empty()) o["source"] = e.source;
    images.push_back(std::move(o));
  }
  Json doc = {{"images", std::move(images)}};
  return writeFileDurable(dir_ / kCatalogFile, doc.dump(2) + "\n");
}

Result<std::vector<CatalogEntry>> ImageCatalog::list() const {
  std::lock_guard lock(mu_);
  CAIRN_ASSIGN_OR_RETURN(auto entries, load());
  std::sort(entries.begin(), entries.end(),
            [](const CatalogEntry& a, const CatalogEntry& b) { return a.name < b.name; });
  return entries;
}

Result<CatalogEntry> ImageCatalog::get(std::string_view name) const {
  CAIRN_ASSIGN_OR_RETURN(std::string key, normalizeName(name));
  std::lock_guard lock(mu_);
  CAIRN_ASSIGN_OR_RETURN(auto entries, load());
  for (auto& e : entries) {
    if (e.name == key) return e;
  }
  return notFound("image " + key + " not found in the local catalog");
}

Status ImageCatalog::tag(std::string_view name, const Descriptor& descriptor,
                         std::string_view source) {
  if (!isManifestMediaType(descriptor.media_type) && !isIndexMediaType(descriptor.media_type)) {
    return invalidArgument("cannot tag " + descriptor.digest.str() + ": media type \"" +
                           descriptor.media_type + "\" is not a manifest or index");
  }
  CAIRN_ASSIGN_OR_RETURN(std::string key, normalizeName(name));
  std::lock_guard lock(mu_);
  CAIRN_ASSIGN_OR_RETURN(FileLock file_lock, FileLock::acquire(dir_ / kLockFile));
  CAIRN_ASSIGN_OR_RETURN(auto entries, load());
  CatalogEntry entry{key, descriptor, formatRfc3339(std::chrono::system_clock::now()),
                     std::string(source)};
  auto it = std::find_if(entries.begin(), entries.end(),
                         [&](const CatalogEntry& e) { return e.name == key; });
  if (it != entries.end()) {
    *it = std::move(entry);
  } else {
    entries.push_back(std::move(entry));
  }
  return save(entries);
}

Status ImageCatalog::remove(std::string_view name) {
  CAIRN_ASSIGN_OR_RETURN(std::string key, normalizeName(name));
  std::lock_guard lock(mu_);
  CAIRN_ASSIGN_OR_RETURN(FileLock file_lock, FileLock::acquire(dir_ / kLockFile));
  CAIRN_ASSIGN_OR_RETURN(auto entries, load());
  auto it = std::find_if(entries.begin(), entries.end(),
                         [&](const CatalogEntry& e) { return e.name == key; });
  if (it == entries.end()) return notFound("image " + key + " not found in the local catalog");
  entries.erase(it);
  return save(entries);
}

Result<std::vector<Descriptor>> ImageCatalog::roots() const {
  CAIRN_ASSIGN_OR_RETURN(auto entries, list());
  std::vector<Descriptor> out;
  for (auto& e : entries)
    out.push_back(std::move(e.descriptor));
  return out;
}

Result<std::vector<Digest>> reachableBlobs(const store::BlobReader& blobs,
                                           const std::vector<Descriptor>& roots) {
  std::set<Digest> seen;
  std::vector<Descriptor> todo = roots;
  // Indexes may nest; the seen-set and a bound on the work keep hostile graphs finite.
  std::size_t steps = 0;
  while (!todo.empty()) {
    if (++steps > 1'000'000) return resourceExhausted("image graph too large to walk");
    Descriptor d = std::move(todo.back());
    todo.pop_back();
    if (!seen.insert(d.digest).second) continue;
    bool is_manifest = isManifestMediaType(d.media_type);
    bool is_index = isIndexMediaType(d.media_type);
    if (!is_manifest && !is_index) continue;
    if (!blobs.exists(d.digest)) {
      seen.erase(d.digest);
      continue;
    }
    CAIRN_ASSIGN_OR_RETURN(std::string bytes, blobs.readAll(d.digest, kMaxManifestSize));
    if (is_manifest) {
      auto m = parseManifest(bytes);
      if (!m.ok()) return m.status().withContext(d.digest.str());
      todo.push_back(m->config);
      for (auto& l : m->layers)
        todo.push_back(l);
    } else {
      auto i = parseIndex(bytes);
      if (!i.ok()) return i.status().withContext(d.digest.str());
      for (auto& m : i->manifests)
        todo.push_back(m);
    }
  }
  return std::vector<Digest>(seen.begin(), seen.end());
}

Result<LoadedImage> loadImage(const store::BlobReader& blobs, const Descriptor& manifest) {
  if (!isManifestMediaType(manifest.media_type)) {
    return invalidArgument(manifest.digest.str() + " is a " + manifest.media_type +
                           ", not an image manifest");
  }
  LoadedImage out;
  out.descriptor = manifest;
  CAIRN_ASSIGN_OR_RETURN(std::string bytes, blobs.readAll(manifest.digest, kMaxManifestSize));
  auto m = parseManifest(bytes);
  if (!m.ok()) return m.status().withContext("manifest " + manifest.digest.str());
  out.manifest = std::move(*m);
  auto config_bytes = blobs.readAll(out.manifest.config.digest, kMaxManifestSize);
  if (!config_bytes.ok()) {
    return config_bytes.status().withContext("config of " + manifest.digest.str());
  }
  auto c = parseImageConfig(*config_bytes);
  if (!c.ok()) return c.status().withContext("config " + out.manifest.config.digest.str());
  out.config = std::move(*c);
  if (out.config.diff_ids.size() != out.manifest.layers.size()) {
    return invalidArgument("image " + manifest.digest.str() + " has " +
                           std::to_string(out.manifest.layers.size()) + " layers but " +
                           std::to_string(out.config.diff_ids.size()) + " diff ids");
  }
  return out;
}

}  // namespace cairn::oci
