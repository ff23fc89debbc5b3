#include "cairn/oci/recompress.h"

#include "cairn/layer/stream.h"
#include "cairn/oci/catalog.h"

namespace cairn::oci {
namespace {

std::string layerMediaType(std::string_view manifest_media_type, layer::Compression c) {
  if (manifest_media_type == kMediaTypeDockerManifest) {
    switch (c) {
      case layer::Compression::kNone:
        return "application/vnd.docker.image.rootfs.diff.tar";
      case layer::Compression::kGzip:
        return std::string(kMediaTypeDockerLayerGzip);
      case layer::Compression::kZstd:
        return "application/vnd.docker.image.rootfs.diff.tar.zstd";
    }
  }
  return layer::ociLayerMediaType(c);
}

// One layer blob → decompress → compress in `target` → a new blob. Checks the diff id.
Result<Descriptor> convertLayer(store::BlobStore& blobs, const Descriptor& layer,
                                layer::Compression from, const Digest& diff_id,
                                layer::Compression target, std::string_view manifest_media_type,
                                const layer::CompressionOptions& options) {
  CAIRN_ASSIGN_OR_RETURN(auto stream, blobs.openRead(layer.digest));
  layer::FunctionSource compressed(
      [&](void* buf, std::size_t n) -> Result<std::size_t> { return stream->read(buf, n); });
  CAIRN_ASSIGN_OR_RETURN(auto tar, layer::makeDecompressor(from, &compressed));
  CAIRN_ASSIGN_OR_RETURN(auto writer, blobs.writer());
  layer::FunctionSink sink([&](std::string_view data) { return writer->write(data); });
  layer::LayerEncoder encoder(target, &sink, options);
  std::string buf(1 << 20, '\0');
  auto fail = [&](Status s) {
    writer->abort();
    return s;
  };
  for (;;) {
    auto n = tar->read(buf.data(), buf.size());
    if (!n.ok()) return fail(n.status());
    if (*n == 0) break;
    if (Status s = encoder.write(std::string_view(buf.data(), *n)); !s.ok()) return fail(s);
  }
  auto encoded = encoder.finishLayer();
  if (!encoded.ok()) return fail(encoded.status());
  if (encoded->diff_id != diff_id) {
    return fail(invalidArgument("its tar hashes to " + encoded->diff_id.str() +
                                " but the config's diff id is " + diff_id.str()));
  }
  CAIRN_RETURN_IF_ERROR(writer->commit(encoded->size, encoded->digest).status());
  Descriptor out = layer;
  out.media_type = layerMediaType(manifest_media_type, target);
  out.digest = encoded->digest;
  out.size = static_cast<std::int64_t>(encoded->size);
  out.urls.clear();
  return out;
}

}  // namespace

Result<Recompressed> recompressImage(store::BlobStore& blobs, const Descriptor& manifest,
                                     layer::Compression target,
                                     const layer::CompressionOptions& options) {
  if (!isManifestMediaType(manifest.media_type)) {
    return failedPrecondition("cannot change the layer compression of " + manifest.digest.str() +
                              " (" + manifest.media_type +
                              "): only single-platform image manifests are converted");
  }
  CAIRN_ASSIGN_OR_RETURN(LoadedImage image, loadImage(blobs, manifest));
  if (image.config.diff_ids.size() != image.manifest.layers.size()) {
    return invalidArgument("image " + manifest.digest.str() + " has " +
                           std::to_string(image.manifest.layers.size()) + " layers but " +
                           std::to_string(image.config.diff_ids.size()) + " diff ids");
  }
  Recompressed out;
  Manifest m = image.manifest;
  const std::string media_type =
      m.media_type.empty() ? std::string(kMediaTypeOciManifest) : m.media_type;
  for (std::size_t i = 0; i < m.layers.size(); ++i) {
    Descriptor& l = m.layers[i];
    auto from = layer::compressionFromMediaType(l.media_type);
    if (!from.ok()) return from.status().withContext("layer " + l.digest.str());
    if (*from == target) {
      ++out.kept;
      continue;
    }
    auto converted =
        convertLayer(blobs, l, *from, image.config.diff_ids[i], target, media_type, options);
    if (!converted.ok()) {
      return converted.status().withContext("recompress layer " + std::to_string(i) + " (" +
                                            l.digest.str() + ") to " +
                                            std::string(layer::compressionName(target)));
    }
    l = *converted;
    ++out.converted;
  }
  if (out.converted == 0) {
    out.manifest = manifest;
    return out;
  }
  std::string bytes = serialize(m);
  CAIRN_RETURN_IF_ERROR(store::writeBlob(blobs, bytes).status());
  out.manifest = describe(media_type, bytes);
  return out;
}

}  // namespace cairn::oci
