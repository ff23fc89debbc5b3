// OCI image layout directories (image-spec image-layout.md): `oci-layout`, `index.json` and
// `blobs/sha256/<hex>`, the format `skopeo copy oci:DIR:TAG`, `umoci` and buildah read and
// write. Tags live in index.json as the "org.opencontainers.image.ref.name" annotation.
//
//   cairn image export NAME oci:DIR[:TAG]   → exportLayout(store, descriptor, DIR, TAG)
//   cairn image import oci:DIR[:TAG] NAME   → importLayout(store, DIR, TAG, platform)
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "cairn/common/status.h"
#include "cairn/oci/image.h"
#include "cairn/store/blob_store.h"

namespace cairn::oci {

//! "oci:DIR[:TAG]" as skopeo writes it. The directory may itself contain ':' only if a tag
//! follows (the last ':' splits). InvalidArgument for anything not starting with "oci:".
struct LayoutRef {
  std::filesystem::path dir;
  std::string tag;
};
Result<LayoutRef> parseLayoutRef(std::string_view text);

//! Writes the image (a manifest, or an index and every child present in the store) into the
//! layout at `dir`, creating it if needed and keeping the images already there; an entry with
//! the same tag is replaced. Blobs already present are not rewritten. An empty `tag` adds an
//! untagged entry.
Status exportLayout(const store::BlobReader& blobs, const Descriptor& root,
                    const std::filesystem::path& dir, std::string_view tag);

//! Copies the image tagged `tag` (or the only image, when `tag` is empty) from the layout at
//! `dir` into the store, verifying every blob's digest and size, and returns its manifest
//! descriptor. An index entry is resolved to the manifest for `platform`. Errors name the
//! layout path and the blob.
Result<Descriptor> importLayout(store::BlobStore& blobs, const std::filesystem::path& dir,
                                std::string_view tag, const Platform& platform);

}  // namespace cairn::oci
