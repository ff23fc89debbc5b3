#include "cairn/oci/tar_image.h"

#include "cairn/common/time.h"

namespace cairn::oci {

ImageConfig defaultConfig() {
  ImageConfig c;
  Platform p = Platform::host();
  c.architecture = p.architecture;
  c.os = p.os;
  c.variant = p.variant;
  c.created = formatRfc3339(std::chrono::system_clock::now());
  ContainerConfig cc;
  cc.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
  cc.cmd = std::vector<std::string>{"bash"};
  c.config = cc;
  return c;
}

Result<Descriptor> createImageFromTar(store::BlobStore& blobs, layer::ByteSource& tar,
                                      ImageConfig config, layer::Compression compression,
                                      std::string_view created_by) {
  if (!config.diff_ids.empty()) {
    return invalidArgument("createImageFromTar makes a one-layer image; config has " +
                           std::to_string(config.diff_ids.size()) + " diff ids already");
  }
  CAIRN_ASSIGN_OR_RETURN(auto writer, blobs.writer());
  layer::FunctionSink sink([&](std::string_view data) { return writer->write(data); });
  layer::LayerEncoder encoder(compression, &sink);
  std::string buf(1 << 20, '\0');
  for (;;) {
    auto n = tar.read(buf.data(), buf.size());
    if (!n.ok()) {
      writer->abort();
      return n.status().withContext("read root filesystem tar");
    }
    if (*n == 0) break;
    if (Status s = encoder.write(std::string_view(buf.data(), *n)); !s.ok()) {
      writer->abort();
      return s;
    }
  }
  auto encoded = encoder.finishLayer();
  if (!encoded.ok()) {
    writer->abort();
    return encoded.status();
  }
  CAIRN_RETURN_IF_ERROR(writer->commit(encoded->size, encoded->digest).status());

  config.diff_ids.push_back(encoded->diff_id);
  HistoryEntry h;
  h.created = config.created;
  h.created_by = std::string(created_by);
  config.history.push_back(h);
  std::string config_bytes = serialize(config);
  CAIRN_RETURN_IF_ERROR(store::writeBlob(blobs, config_bytes).status());

  Manifest m;
  m.config = describe(kMediaTypeOciConfig, config_bytes);
  Descriptor layer_desc;
  layer_desc.media_type = encoded->media_type;
  layer_desc.digest = encoded->digest;
  layer_desc.size = static_cast<std::int64_t>(encoded->size);
  m.layers.push_back(layer_desc);
  std::string manifest_bytes = serialize(m);
  CAIRN_RETURN_IF_ERROR(store::writeBlob(blobs, manifest_bytes).status());
  return describe(kMediaTypeOciManifest, manifest_bytes);
}

}  // namespace cairn::oci
