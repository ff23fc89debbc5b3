// Images made from a root filesystem tar (e.g. mmdebstrap's output for `cairn base bootstrap`):
// the tar is compressed and hashed in one streaming pass into the blob store and becomes the
// single layer of a new image whose config the caller describes.
//
//   oci::ImageConfig cfg = oci::defaultConfig();      // host platform, PATH, Cmd ["bash"]
//   CAIRN_ASSIGN_OR_RETURN(oci::Descriptor m,
//       oci::createImageFromTar(blobs, tar_source, cfg, layer::Compression::kZstd, "mmdebstrap"));
#pragma once

#include <string_view>

#include "cairn/common/status.h"
#include "cairn/layer/compression.h"
#include "cairn/layer/stream.h"
#include "cairn/oci/image.h"
#include "cairn/store/blob_store.h"

namespace cairn::oci {

//! linux/<host arch>, Env PATH=/usr/local/sbin:…, Cmd ["bash"], created now.
ImageConfig defaultConfig();

//! Reads an uncompressed tar from `tar`, stores it as one compressed layer, then the config
//! (with the layer's diff id appended and a history entry "created_by") and the manifest.
//! Returns the manifest descriptor. `config.diff_ids` may already list lower layers' ids only
//! if the caller also adds their descriptors; here it must be empty.
Result<Descriptor> createImageFromTar(store::BlobStore& blobs, layer::ByteSource& tar,
                                      ImageConfig config, layer::Compression compression,
                                      std::string_view created_by);

}  // namespace cairn::oci
