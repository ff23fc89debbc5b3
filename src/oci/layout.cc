#include "cairn/oci/layout.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "cairn/common/fs.h"
#include "cairn/common/strings.h"
#include "cairn/oci/catalog.h"

namespace cairn::oci {
namespace {

constexpr std::string_view kLayoutVersion = "1.0.0";

std::filesystem::path blobPathIn(const std::filesystem::path& dir, const Digest& d) {
  return dir / "blobs" / d.algorithm() / d.hex();
}

// Copies a store blob to `dest` (temp file, fsync, rename), unless it is already there with
// the right size.
Status copyBlobOut(const store::BlobReader& blobs, const Descriptor& d,
                   const std::filesystem::path& dest) {
  std::error_code ec;
  auto existing = std::filesystem::file_size(dest, ec);
  if (!ec && existing == static_cast<std::uintmax_t>(d.size)) return okStatus();
  auto stream = blobs.openRead(d.digest);
  if (!stream.ok()) return stream.status().withContext("export blob " + d.digest.str());
  auto tmp = dest;
  tmp += ".tmp-" + std::to_string(::getpid());
  UniqueFd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!out.valid()) return errnoStatus(errno, "create " + tmp.string());
  std::string buf(1 << 20, '\0');
  for (;;) {
    auto n = (*stream)->read(buf.data(), buf.size());
    if (!n.ok()) {
      ::unlink(tmp.c_str());
      return n.status().withContext("read blob " + d.digest.str());
    }
    if (*n == 0) break;
    if (Status s = writeAll(out.get(), std::string_view(buf.data(), *n)); !s.ok()) {
      ::unlink(tmp.c_str());
      return s.withContext("write " + tmp.string());
    }
  }
  if (::fsync(out.get()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return errnoStatus(err, "fsync " + tmp.string());
  }
  out.reset();
  if (::rename(tmp.c_str(), dest.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return errnoStatus(err, "rename to " + dest.string());
  }
  return okStatus();
}

// Every descriptor an export must copy, root first; children of an index that the store does
// not hold are left out of the layout's copy of that index's graph (the index blob itself
// still names them, as registries' multi-platform indexes do).
Status collect(const store::BlobReader& blobs, const Descriptor& d, std::vector<Descriptor>& out,
               int depth) {
  if (depth > 8) return invalidArgument("indexes nested deeper than 8 levels");
  out.push_back(d);
  if (isManifestMediaType(d.media_type)) {
    CAIRN_ASSIGN_OR_RETURN(std::string bytes, blobs.readAll(d.digest, kMaxManifestSize));
    auto m = parseManifest(bytes);
    if (!m.ok()) return m.status().withContext(d.digest.str());
    out.push_back(m->config);
    for (const auto& l : m->layers)
      out.push_back(l);
  } else if (isIndexMediaType(d.media_type)) {
    CAIRN_ASSIGN_OR_RETURN(std::string bytes, blobs.readAll(d.digest, kMaxManifestSize));
    auto i = parseIndex(bytes);
    if (!i.ok()) return i.status().withContext(d.digest.str());
    for (const auto& child : i->manifests) {
      if (blobs.exists(child.digest)) CAIRN_RETURN_IF_ERROR(collect(blobs, child, out, depth + 1));
    }
  }
  return okStatus();
}

Result<Index> readLayoutIndex(const std::filesystem::path& dir) {
  auto oci_layout = readFile(dir / "oci-layout");
  if (!oci_layout.ok()) {
    return oci_layout.status().withContext(dir.string() + " is not an OCI image layout");
  }
  auto j = parseJson(*oci_layout);
  if (!j.ok() || !j->is_object() || !j->contains("imageLayoutVersion") ||
      !(*j)["imageLayoutVersion"].is_string()) {
    return invalidArgument((dir / "oci-layout").string() + ": expected {\"imageLayoutVersion\"}");
  }
  if ((*j)["imageLayoutVersion"].get<std::string>() != kLayoutVersion) {
    return invalidArgument((dir / "oci-layout").string() + ": unsupported imageLayoutVersion " +
                           (*j)["imageLayoutVersion"].get<std::string>());
  }
  auto index_bytes = readFile(dir / "index.json");
  if (!index_bytes.ok()) return index_bytes.status().withContext(dir.string());
  auto index = parseIndex(*index_bytes);
  if (!index.ok()) return index.status().withContext((dir / "index.json").string());
  return index;
}

std::string refName(const Descriptor& d) {
  auto it = d.annotations.find(std::string(kAnnotationRefName));
  return it == d.annotations.end() ? std::string() : it->second;
}

// Copies one blob from the layout into the store, verifying size and digest.
Status importBlob(store::BlobStore& blobs, const std::filesystem::path& dir, const Descriptor& d) {
  if (blobs.exists(d.digest)) return okStatus();
  auto path = blobPathIn(dir, d.digest);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return errnoStatus(errno, "open " + path.string());
  auto info = store::writeBlobFromFd(blobs, fd.get(), d.digest);
  if (!info.ok()) return info.status().withContext(path.string());
  if (info->size != static_cast<std::uint64_t>(d.size)) {
    return invalidArgument(path.string() + ": size " + std::to_string(info->size) +
                           " but the descriptor says " + std::to_string(d.size));
  }
  return okStatus();
}

Result<std::string> readLayoutBlob(const std::filesystem::path& dir, const Descriptor& d) {
  if (d.size > static_cast<std::int64_t>(kMaxManifestSize)) {
    return resourceExhausted(d.digest.str() + ": manifest of " + std::to_string(d.size) +
                             " bytes is over the limit");
  }
  auto path = blobPathIn(dir, d.digest);
  CAIRN_ASSIGN_OR_RETURN(std::string bytes, readFile(path));
  if (Digest::ofBytes(bytes) != d.digest) {
    return invalidArgument(path.string() + ": content hashes to " + Digest::ofBytes(bytes).str() +
                           ", not " + d.digest.str());
  }
  return bytes;
}

}  // namespace

Result<LayoutRef> parseLayoutRef(std::string_view text) {
  if (!text.starts_with("oci:")) {
    return invalidArgument("\"" + std::string(text) + "\": expected oci:DIR[:TAG]");
  }
  std::string_view rest = text.substr(4);
  LayoutRef ref;
  auto colon = rest.rfind(':');
  if (colon != std::string_view::npos && rest.find('/', colon) == std::string_view::npos) {
    ref.tag = std::string(rest.substr(colon + 1));
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return invalidArgument("\"" + std::string(text) + "\": missing directory");
  ref.dir = std::string(rest);
  return ref;
}

Status exportLayout(const store::BlobReader& blobs, const Descriptor& root,
                    const std::filesystem::path& dir, std::string_view tag) {
  if (!isManifestMediaType(root.media_type) && !isIndexMediaType(root.media_type)) {
    return invalidArgument("cannot export " + root.digest.str() + " of type " + root.media_type);
  }
  std::vector<Descriptor> all;
  CAIRN_RETURN_IF_ERROR(collect(blobs, root, all, 0));
  std::error_code ec;
  std::filesystem::create_directories(dir / "blobs" / "sha256", ec);
  if (ec) return internalError("create " + (dir / "blobs/sha256").string() + ": " + ec.message());

  Index index;
  if (std::filesystem::exists(dir / "index.json")) {
    CAIRN_ASSIGN_OR_RETURN(index, readLayoutIndex(dir));
  }
  for (const auto& d : all) {
    CAIRN_RETURN_IF_ERROR(copyBlobOut(blobs, d, blobPathIn(dir, d.digest)));
  }
  CAIRN_RETURN_IF_ERROR(writeFileDurable(dir / "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}"));

  Descriptor entry = root;
  entry.annotations.clear();
  entry.platform.reset();
  if (!tag.empty()) entry.annotations[std::string(kAnnotationRefName)] = std::string(tag);
  std::erase_if(index.manifests, [&](const Descriptor& d) {
    return tag.empty() ? (d.digest == root.digest && refName(d).empty()) : refName(d) == tag;
  });
  index.manifests.push_back(entry);
  index.media_type = std::string(kMediaTypeOciIndex);
  return writeFileDurable(dir / "index.json", serialize(index));
}

Result<Descriptor> importLayout(store::BlobStore& blobs, const std::filesystem::path& dir,
                                std::string_view tag, const Platform& platform) {
  CAIRN_ASSIGN_OR_RETURN(Index index, readLayoutIndex(dir));
  std::vector<const Descriptor*> matches;
  std::vector<std::string> names;
  for (const auto& d : index.manifests) {
    std::string name = refName(d);
    names.push_back(name.empty() ? "<untagged " + d.digest.shortStr() + ">" : name);
    if (tag.empty() || name == tag) matches.push_back(&d);
  }
  if (matches.empty()) {
    return notFound("no image tagged \"" + std::string(tag) + "\" in the layout " + dir.string() +
                    " (it has: " + (names.empty() ? "nothing" : joinStrings(names, ", ")) + ")");
  }
  if (matches.size() > 1) {
    return invalidArgument(
        "the layout " + dir.string() + " holds " + std::to_string(matches.size()) +
        " images; name one with oci:DIR:TAG (it has: " + joinStrings(names, ", ") + ")");
  }
  Descriptor chosen = *matches.front();
  // Resolve nested indexes down to the manifest for the wanted platform.
  for (int depth = 0; isIndexMediaType(chosen.media_type); ++depth) {
    if (depth > 8) return invalidArgument(dir.string() + ": indexes nested deeper than 8 levels");
    CAIRN_ASSIGN_OR_RETURN(std::string bytes, readLayoutBlob(dir, chosen));
    auto child_index = parseIndex(bytes);
    if (!child_index.ok()) return child_index.status().withContext(chosen.digest.str());
    CAIRN_ASSIGN_OR_RETURN(chosen, selectPlatform(*child_index, platform));
  }
  if (!isManifestMediaType(chosen.media_type)) {
    return invalidArgument(dir.string() + ": entry " + chosen.digest.str() + " has media type \"" +
                           chosen.media_type + "\", not an image manifest");
  }
  CAIRN_ASSIGN_OR_RETURN(std::string manifest_bytes, readLayoutBlob(dir, chosen));
  auto manifest = parseManifest(manifest_bytes);
  if (!manifest.ok()) return manifest.status().withContext(chosen.digest.str());
  if (chosen.size != static_cast<std::int64_t>(manifest_bytes.size())) {
    return invalidArgument(chosen.digest.str() + ": size " + std::to_string(manifest_bytes.size()) +
                           " but index.json says " + std::to_string(chosen.size));
  }
  // Layers and config first, the manifest last: an image is visible only when complete.
  for (const auto& layer : manifest->layers) {
    CAIRN_RETURN_IF_ERROR(importBlob(blobs, dir, layer));
  }
  CAIRN_RETURN_IF_ERROR(importBlob(blobs, dir, manifest->config));
  auto config_bytes = blobs.readAll(manifest->config.digest, kMaxManifestSize);
  if (!config_bytes.ok()) return config_bytes.status();
  auto config = parseImageConfig(*config_bytes);
  if (!config.ok()) return config.status().withContext(manifest->config.digest.str());
  CAIRN_RETURN_IF_ERROR(importBlob(blobs, dir, chosen));
  Descriptor out = chosen;
  out.annotations.clear();
  if (out.media_type.empty()) out.media_type = manifest->media_type;
  return out;
}

}  // namespace cairn::oci
