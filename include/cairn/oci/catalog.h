// The local image catalog: which images this data directory holds, by normalised name
// ("docker.io/library/python:3.12"), each pointing at a manifest (or index) descriptor whose
// blobs live in the blob store. It is the set of roots for the store's garbage collection.
//
// Persisted as <data>/images.json, rewritten with writeFileDurable under an flock on
// <data>/images.lock, so a CLI process and a server sharing the data directory never lose
// each other's updates and readers never see a half-written file.
//
//   CAIRN_ASSIGN_OR_RETURN(auto catalog, oci::ImageCatalog::open(data_dir));
//   CAIRN_RETURN_IF_ERROR(catalog->tag("python:3.12", manifest_descriptor));
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/status.h"
#include "cairn/oci/image.h"
#include "cairn/store/blob_store.h"

namespace cairn::oci {

struct CatalogEntry {
  std::string name;  //!< normalised reference, e.g. docker.io/library/busybox:latest
  Descriptor descriptor;
  std::string created_at;  //!< RFC 3339, when the name was (last) set
  std::string source;      //!< where it came from: "pull REF", "import oci:DIR", "build"
};

class ImageCatalog {
 public:
  static Result<std::unique_ptr<ImageCatalog>> open(const std::filesystem::path& data_dir);

  //! The normalised key for a user-given name: Docker normalisation plus ":latest" when the
  //! name has neither tag nor digest. InvalidArgument for names Docker would reject.
  static Result<std::string> normalizeName(std::string_view name);

  //! All entries, sorted by name.
  Result<std::vector<CatalogEntry>> list() const;
  //! NotFound naming the image if absent.
  Result<CatalogEntry> get(std::string_view name) const;
  //! Sets (or moves) `name` to point at `descriptor`.
  Status tag(std::string_view name, const Descriptor& descriptor, std::string_view source = {});
  //! NotFound if absent. The blobs stay until the store's GC runs.
  Status remove(std::string_view name);
  //! The descriptors every entry points at (GC roots; feed them to reachableBlobs).
  Result<std::vector<Descriptor>> roots() const;

 private:
  explicit ImageCatalog(std::filesystem::path data_dir) : dir_(std::move(data_dir)) {}
  Result<std::vector<CatalogEntry>> load() const;
  Status save(const std::vector<CatalogEntry>& entries) const;
  std::filesystem::path dir_;
  mutable std::mutex mu_;
};

//! Every blob reachable from `roots`: the manifests and indexes themselves, their children,
//! configs and layers. Blobs that are referenced but absent are skipped (a pull in progress,
//! or an index whose other platforms were never fetched).
Result<std::vector<Digest>> reachableBlobs(const store::BlobReader& blobs,
                                           const std::vector<Descriptor>& roots);

//! Reads and parses a manifest (never an index) and its config from the store.
struct LoadedImage {
  Descriptor descriptor;
  Manifest manifest;
  ImageConfig config;
};
Result<LoadedImage> loadImage(const store::BlobReader& blobs, const Descriptor& manifest);

//! Size cap for manifests, indexes and configs read from the store or a registry.
inline constexpr std::uint64_t kMaxManifestSize = 4 << 20;

}  // namespace cairn::oci
