// A one-layer busybox-static image in a data directory's blob store and catalog, for tests that
// build or run on a real base without a registry: `FROM busybox:test` then works in the builder,
// in `cairn run` and in `cairn serve` started on the same data directory.
//
//   ASSERT_OK(cairn::testing::storeBusyboxImage(data_dir, tmp / "rootfs").status());
//   ASSERT_OK_AND_ASSIGN(auto image, cairn::testing::storeBusyboxImage(
//       data_dir, tmp / "rootfs", {.name = "busybox:gz", .compression =
//       layer::Compression::kGzip}));
//
// Header-only: a test that includes it links cairn::store and cairn::oci (which bring layer).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "cairn/common/status.h"
#include "cairn/oci/catalog.h"
#include "cairn/oci/image.h"
#include "cairn/store/layer_store.h"
#include "cairn/store/local_blob_store.h"
#include "cairn/testing/busybox_rootfs.h"

namespace cairn::testing {

//! An image written to a blob store: what a catalog tags, and the bytes a registry would serve.
struct OneLayerImage {
  oci::Descriptor manifest;  //!< the manifest's descriptor (media type, digest, size)
  std::string manifest_json;
  std::string config_json;
  layer::EncodedLayer layer;
};

//! PATH=/bin, CMD ["sh"]: what the busybox images of the tests run by default.
inline oci::ContainerConfig busyboxContainerConfig() {
  oci::ContainerConfig c;
  c.env = {"PATH=/bin"};
  c.cmd = std::vector<std::string>{"sh"};
  return c;
}

//! Writes the config and the manifest of a one-layer image over `layer` (already in `blobs`),
//! for this machine's architecture. Tags nothing.
inline Result<OneLayerImage> writeOneLayerImage(store::BlobIngester& blobs,
                                                const layer::EncodedLayer& layer,
                                                const oci::ContainerConfig& container) {
  OneLayerImage out;
  out.layer = layer;
  oci::ImageConfig config;
  config.architecture = oci::Platform::host().architecture;
  config.os = "linux";
  config.config = container;
  config.diff_ids = {layer.diff_id};
  out.config_json = oci::serialize(oci::toJson(config));
  CAIRN_ASSIGN_OR_RETURN(store::BlobInfo config_blob, store::writeBlob(blobs, out.config_json));
  oci::Manifest m;
  m.config.media_type = std::string(oci::kMediaTypeOciConfig);
  m.config.digest = config_blob.digest;
  m.config.size = static_cast<std::int64_t>(out.config_json.size());
  oci::Descriptor ld;
  ld.media_type = layer.media_type;
  ld.digest = layer.digest;
  ld.size = static_cast<std::int64_t>(layer.size);
  m.layers = {ld};
  out.manifest_json = oci::serialize(m);
  CAIRN_ASSIGN_OR_RETURN(store::BlobInfo manifest_blob, store::writeBlob(blobs, out.manifest_json));
  out.manifest.media_type = std::string(oci::kMediaTypeOciManifest);
  out.manifest.digest = manifest_blob.digest;
  out.manifest.size = static_cast<std::int64_t>(out.manifest_json.size());
  return out;
}

struct BusyboxImageOptions {
  //! The catalog name it is tagged as; empty = written to the blob store only.
  std::string name = "busybox:test";
  oci::ContainerConfig container = busyboxContainerConfig();
  //! Applets linked besides makeBusyboxRootfs's own (e.g. "date", "sha256sum").
  std::vector<std::string> extra_applets = {};
  layer::Compression compression = layer::Compression::kZstd;
  //! Runs on the rootfs before it is exported: extra files, a marker that makes the layer differ.
  std::function<Status(const std::filesystem::path& root)> customize = nullptr;
};

//! Makes the rootfs in `rootfs_dir` (which stays, for the test to inspect or remove), exports it
//! as one layer into `blobs`, writes config and manifest, and tags `options.name` in `catalog`.
inline Result<OneLayerImage> storeBusyboxImage(store::BlobIngester& blobs,
                                               oci::ImageCatalog& catalog,
                                               const std::filesystem::path& rootfs_dir,
                                               const BusyboxImageOptions& options = {}) {
  CAIRN_RETURN_IF_ERROR(makeBusyboxRootfs(rootfs_dir, options.extra_applets));
  if (options.customize) CAIRN_RETURN_IF_ERROR(options.customize(rootfs_dir));
  CAIRN_ASSIGN_OR_RETURN(layer::EncodedLayer layer,
                         store::exportDirToBlob(rootfs_dir, blobs, options.compression));
  CAIRN_ASSIGN_OR_RETURN(OneLayerImage image, writeOneLayerImage(blobs, layer, options.container));
  if (!options.name.empty()) CAIRN_RETURN_IF_ERROR(catalog.tag(options.name, image.manifest));
  return image;
}

//! The same, opening (and closing again) the blob store and the catalog of `data_dir`.
inline Result<OneLayerImage> storeBusyboxImage(const std::filesystem::path& data_dir,
                                               const std::filesystem::path& rootfs_dir,
                                               const BusyboxImageOptions& options = {}) {
  CAIRN_ASSIGN_OR_RETURN(auto blobs, store::LocalBlobStore::open(data_dir));
  CAIRN_ASSIGN_OR_RETURN(auto catalog, oci::ImageCatalog::open(data_dir));
  return storeBusyboxImage(*blobs, *catalog, rootfs_dir, options);
}

}  // namespace cairn::testing
