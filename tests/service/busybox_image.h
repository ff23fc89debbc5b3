// A one-layer busybox image in a data directory's blob store and catalog, for tests that build
// on a real base without a registry: `FROM busybox:test` then works in the builder and in
// `cairn serve` started on the same data directory.
#pragma once

#include <filesystem>
#include <string>

#include "../runtime/busybox_rootfs.h"
#include "cairn/common/fs.h"
#include "cairn/oci/catalog.h"
#include "cairn/oci/image.h"
#include "cairn/store/layer_store.h"
#include "cairn/store/local_blob_store.h"

namespace cairn::service::testing {

//! Tags `name` (default "busybox:test") in the catalog of `data_dir`: busybox-static with its
//! applets, PATH=/bin, CMD ["sh"]. `scratch` is a directory the rootfs is made in.
inline Status importBusyboxImage(store::BlobStore& blobs, oci::ImageCatalog& catalog,
                                 const std::filesystem::path& scratch,
                                 const std::string& name = "busybox:test") {
  std::filesystem::path root = scratch / "busybox-rootfs";
  CAIRN_RETURN_IF_ERROR(runtime::testing::makeBusyboxRootfs(root));
  CAIRN_ASSIGN_OR_RETURN(layer::EncodedLayer layer,
                         store::exportDirToBlob(root, blobs, layer::Compression::kZstd));
  oci::ImageConfig config;
  config.architecture = "amd64";
  config.os = "linux";
  config.config = oci::ContainerConfig{};
  config.config->env = {"PATH=/bin"};
  config.config->cmd = std::vector<std::string>{"sh"};
  config.diff_ids = {layer.diff_id};
  std::string config_json = oci::toJson(config).dump();
  CAIRN_ASSIGN_OR_RETURN(auto config_blob, store::writeBlob(blobs, config_json));
  oci::Manifest m;
  m.config.media_type = std::string(oci::kMediaTypeOciConfig);
  m.config.digest = config_blob.digest;
  m.config.size = static_cast<std::int64_t>(config_json.size());
  oci::Descriptor ld;
  ld.media_type = layer.media_type;
  ld.digest = layer.digest;
  ld.size = static_cast<std::int64_t>(layer.size);
  m.layers = {ld};
  std::string mj = oci::toJson(m).dump();
  CAIRN_ASSIGN_OR_RETURN(auto mb, store::writeBlob(blobs, mj));
  oci::Descriptor md;
  md.media_type = std::string(oci::kMediaTypeOciManifest);
  md.digest = mb.digest;
  md.size = static_cast<std::int64_t>(mj.size());
  return catalog.tag(name, md);
}

//! The same, opening (and closing again) the stores of `data_dir`.
inline Status importBusyboxImage(const std::filesystem::path& data_dir,
                                 const std::filesystem::path& scratch,
                                 const std::string& name = "busybox:test") {
  CAIRN_ASSIGN_OR_RETURN(auto blobs, store::LocalBlobStore::open(data_dir));
  CAIRN_ASSIGN_OR_RETURN(auto catalog, oci::ImageCatalog::open(data_dir));
  return importBusyboxImage(*blobs, *catalog, scratch, name);
}

}  // namespace cairn::service::testing
