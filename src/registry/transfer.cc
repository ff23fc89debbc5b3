#include "cairn/registry/transfer.h"

#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "cairn/common/fs.h"
#include "cairn/layer/compression.h"
#include "cairn/layer/prefetch.h"
#include "cairn/oci/catalog.h"

namespace cairn::registry {
namespace {

Status pullCancelled() {
  return cancelled("pull cancelled after another layer failed");
}

// Reads a store blob as a ByteSource.
class BlobSource final : public layer::ByteSource {
 public:
  explicit BlobSource(std::unique_ptr<store::BlobReadStream> s) : stream_(std::move(s)) {}
  Result<std::size_t> read(void* buf, std::size_t n) override { return stream_->read(buf, n); }

 private:
  std::unique_ptr<store::BlobReadStream> stream_;
};

// Runs the unpacker for one layer on its own thread, fed through a socketpair (bounded by the
// socket buffer; MSG_NOSIGNAL so a reader that gives up makes writes fail instead of killing
// the process with SIGPIPE).
class StreamingUnpack {
 public:
  static Result<std::unique_ptr<StreamingUnpack>> start(const LayerUnpacker& unpack,
                                                        std::size_t index,
                                                        const oci::Descriptor& layer,
                                                        const Digest& diff_id) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
      return errnoStatus(errno, "socketpair");
    }
    auto s =
        std::unique_ptr<StreamingUnpack>(new StreamingUnpack(UniqueFd(fds[0]), UniqueFd(fds[1])));
    int one_mib = 1 << 20;
    (void)::setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &one_mib, sizeof one_mib);
    s->thread_ = std::thread([raw = s.get(), &unpack, index, layer, diff_id] {
      layer::FdSource source(raw->read_.get());
      Status st = unpack(index, layer, diff_id, source);
      // Read to the end so the writer never blocks on a reader that stopped early (trailing
      // bytes after the tar's end-of-archive blocks).
      if (st.ok()) st = layer::drain(source);
      raw->status_ = st;
      raw->read_.reset();
    });
    return s;
  }

  Status write(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(write_.get(), data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        return unavailable("layer unpacker stopped reading");
      }
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return okStatus();
  }

  //! Ends the stream and waits for the unpacker; its error, if any.
  Status finish() {
    write_.reset();
    if (thread_.joinable()) thread_.join();
    return status_;
  }

  ~StreamingUnpack() { (void)finish(); }

 private:
  StreamingUnpack(UniqueFd w, UniqueFd r) : write_(std::move(w)), read_(std::move(r)) {}
  UniqueFd write_;
  UniqueFd read_;
  std::thread thread_;
  Status status_;
};

Status fetchSmallBlob(RegistryClient& client, store::BlobStore& blobs, const oci::Reference& repo,
                      const oci::Descriptor& d) {
  if (blobs.exists(d.digest)) return okStatus();
  if (d.size < 0 || static_cast<std::uint64_t>(d.size) > oci::kMaxManifestSize) {
    return resourceExhausted("config " + d.digest.str() + " of " + std::to_string(d.size) +
                             " bytes is over the 4 MiB limit");
  }
  std::string bytes;
  CAIRN_RETURN_IF_ERROR(client.getBlob(repo, d, [&](std::string_view data) {
    bytes.append(data);
    return okStatus();
  }));
  return store::writeBlob(blobs, bytes, d.digest).status();
}

constexpr std::size_t kBatchBytes = 1 << 20;

struct LayerOutcome {
  bool downloaded = false;
  std::uint64_t bytes = 0;
};

Result<LayerOutcome> fetchLayer(RegistryClient& client, store::BlobStore& blobs,
                                const oci::Reference& repo, std::size_t index,
                                const oci::Descriptor& layer, const Digest& diff_id,
                                const LayerUnpacker& unpack, const std::atomic<bool>& cancelled) {
  LayerOutcome out;
  if (blobs.exists(layer.digest)) {
    if (unpack) {
      CAIRN_ASSIGN_OR_RETURN(auto stream, blobs.openRead(layer.digest));
      BlobSource source(std::move(stream));
      CAIRN_RETURN_IF_ERROR(unpack(index, layer, diff_id, source));
    }
    return out;
  }
  CAIRN_ASSIGN_OR_RETURN(auto writer, blobs.writer());
  std::unique_ptr<StreamingUnpack> streaming;
  if (unpack) {
    CAIRN_ASSIGN_OR_RETURN(streaming, StreamingUnpack::start(unpack, index, layer, diff_id));
  }
  // The body arrives in pieces of whatever the socket had (often 16-32 KiB); handing them on
  // in 1 MiB batches makes 30x fewer blob-file writes and unpack-pipe sends.
  std::string batch;
  batch.reserve(kBatchBytes);
  auto flush = [&]() -> Status {
    if (batch.empty()) return okStatus();
    CAIRN_RETURN_IF_ERROR(writer->write(batch));
    if (streaming) CAIRN_RETURN_IF_ERROR(streaming->write(batch));
    batch.clear();
    return okStatus();
  };
  Status got = client.getBlob(
      repo, layer,
      [&](std::string_view data) -> Status {
        if (cancelled.load()) return pullCancelled();
        if (batch.size() + data.size() > kBatchBytes) CAIRN_RETURN_IF_ERROR(flush());
        if (data.size() >= kBatchBytes) {
          CAIRN_RETURN_IF_ERROR(writer->write(data));
          if (streaming) CAIRN_RETURN_IF_ERROR(streaming->write(data));
          return okStatus();
        }
        batch.append(data);
        return okStatus();
      },
      /*sink_verifies_digest=*/true);  // writer->commit checks it: one sha256 pass, not two
  if (got.ok()) got = flush();
  Status unpacked = streaming ? streaming->finish() : okStatus();
  if (!got.ok() || !unpacked.ok()) {
    writer->abort();
    // The unpacker's own error explains a "stopped reading" failure of the download.
    if (!unpacked.ok()) return unpacked.withContext("unpack layer " + layer.digest.str());
    return got;
  }
  auto info = writer->commit(static_cast<std::uint64_t>(layer.size), layer.digest);
  if (!info.ok()) return info.status().withContext("layer " + layer.digest.str());
  out.downloaded = true;
  out.bytes = static_cast<std::uint64_t>(layer.size);
  return out;
}

}  // namespace

Result<PullResult> pullImage(RegistryClient& client, store::BlobStore& blobs,
                             const oci::Reference& ref, const PullOptions& options) {
  const oci::Platform platform = options.platform.value_or(client.config().platform);
  PullResult result;
  CAIRN_ASSIGN_OR_RETURN(FetchedManifest top, client.getManifest(ref));
  FetchedManifest manifest = top;
  if (oci::isIndexMediaType(top.descriptor.media_type)) {
    auto index = oci::parseIndex(top.bytes);
    if (!index.ok()) return index.status().withContext(ref.str());
    auto chosen = oci::selectPlatform(*index, platform);
    if (!chosen.ok()) return chosen.status().withContext(ref.familiar());
    result.index = top.descriptor;
    CAIRN_ASSIGN_OR_RETURN(manifest, client.getManifest(ref.withDigest(chosen->digest)));
    if (!oci::isManifestMediaType(manifest.descriptor.media_type)) {
      return invalidArgument(ref.familiar() + ": index entry " + chosen->digest.str() +
                             " is not an image manifest");
    }
  }
  auto parsed = oci::parseManifest(manifest.bytes);
  if (!parsed.ok()) return parsed.status().withContext(ref.familiar());
  CAIRN_RETURN_IF_ERROR(fetchSmallBlob(client, blobs, ref, parsed->config));
  CAIRN_ASSIGN_OR_RETURN(std::string config_bytes,
                         blobs.readAll(parsed->config.digest, oci::kMaxManifestSize));
  auto config = oci::parseImageConfig(config_bytes);
  if (!config.ok()) return config.status().withContext(ref.familiar());
  if (config->diff_ids.size() != parsed->layers.size()) {
    return invalidArgument(ref.familiar() + ": " + std::to_string(parsed->layers.size()) +
                           " layers but " + std::to_string(config->diff_ids.size()) +
                           " diff ids in the config");
  }
  for (const auto& l : parsed->layers) {
    auto c = layer::compressionFromMediaType(l.media_type);
    if (!c.ok()) return c.status().withContext(ref.familiar() + " layer " + l.digest.str());
  }

  // Layers: a small pool of workers takes them in order; the first error stops the rest.
  const std::size_t n = parsed->layers.size();
  std::vector<Result<LayerOutcome>> outcomes(n, Result<LayerOutcome>(cancelled("not started")));
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  auto worker = [&] {
    for (;;) {
      std::size_t i = next.fetch_add(1);
      if (i >= n || failed.load()) return;
      outcomes[i] = fetchLayer(client, blobs, ref, i, parsed->layers[i], config->diff_ids[i],
                               options.unpack, failed);
      if (!outcomes[i].ok()) failed.store(true);
    }
  };
  std::size_t workers = std::min<std::size_t>(
      n, static_cast<std::size_t>(std::max(1, client.config().parallel_downloads)));
  std::vector<std::thread> threads;
  for (std::size_t w = 1; w < workers; ++w)
    threads.emplace_back(worker);
  if (workers > 0) worker();
  for (auto& t : threads)
    t.join();
  // Report the first real error (not the "cancelled" of layers stopped because of it).
  Status first_cancelled;
  for (std::size_t i = 0; i < n; ++i) {
    if (outcomes[i].ok()) {
      if (outcomes[i]->downloaded) {
        ++result.layers_downloaded;
        result.downloaded_bytes += outcomes[i]->bytes;
      } else {
        ++result.layers_present;
      }
      continue;
    }
    if (outcomes[i].status().code() == StatusCode::kCancelled) {
      if (first_cancelled.ok()) first_cancelled = outcomes[i].status();
      continue;
    }
    return outcomes[i].status();
  }
  if (!first_cancelled.ok()) return first_cancelled;

  if (result.index) {
    CAIRN_RETURN_IF_ERROR(store::writeBlob(blobs, top.bytes, top.descriptor.digest).status());
  }
  CAIRN_RETURN_IF_ERROR(
      store::writeBlob(blobs, manifest.bytes, manifest.descriptor.digest).status());
  result.manifest = manifest.descriptor;
  result.resolved = ref.withDigest(manifest.descriptor.digest);
  return result;
}

Result<PushResult> pushImage(RegistryClient& client, const store::BlobReader& blobs,
                             const oci::Descriptor& root, const oci::Reference& dest,
                             const BlobPushOptions& options) {
  PushResult result;
  auto count = [&](BlobPushOutcome o) {
    if (o == BlobPushOutcome::kUploaded) ++result.uploaded;
    if (o == BlobPushOutcome::kExisted) ++result.existed;
    if (o == BlobPushOutcome::kMounted) ++result.mounted;
  };
  auto pushManifestTree = [&](const oci::Descriptor& m, std::string_view reference) -> Status {
    CAIRN_ASSIGN_OR_RETURN(std::string bytes, blobs.readAll(m.digest, oci::kMaxManifestSize));
    auto parsed = oci::parseManifest(bytes);
    if (!parsed.ok()) return parsed.status().withContext(m.digest.str());
    for (const auto& l : parsed->layers) {
      CAIRN_ASSIGN_OR_RETURN(BlobPushOutcome o, client.pushBlob(dest, l, blobs, options));
      count(o);
    }
    CAIRN_ASSIGN_OR_RETURN(BlobPushOutcome o,
                           client.pushBlob(dest, parsed->config, blobs, options));
    count(o);
    return client.putManifest(dest, reference, m.media_type, bytes).status();
  };

  std::string reference = !dest.tag().empty()      ? dest.tag()
                          : !dest.digest().empty() ? dest.digest().str()
                                                   : std::string(oci::kDefaultTag);
  if (oci::isManifestMediaType(root.media_type)) {
    CAIRN_RETURN_IF_ERROR(pushManifestTree(root, reference));
  } else if (oci::isIndexMediaType(root.media_type)) {
    CAIRN_ASSIGN_OR_RETURN(std::string bytes, blobs.readAll(root.digest, oci::kMaxManifestSize));
    auto index = oci::parseIndex(bytes);
    if (!index.ok()) return index.status().withContext(root.digest.str());
    for (const auto& child : index->manifests) {
      if (!blobs.exists(child.digest)) {
        return failedPrecondition("cannot push index " + root.digest.str() + ": child " +
                                  child.digest.str() + " (" +
                                  (child.platform ? child.platform->str() : "no platform") +
                                  ") is not in the local store");
      }
      CAIRN_RETURN_IF_ERROR(pushManifestTree(child, child.digest.str()));
    }
    CAIRN_RETURN_IF_ERROR(client.putManifest(dest, reference, root.media_type, bytes).status());
  } else {
    return invalidArgument("cannot push " + root.digest.str() + " of type " + root.media_type);
  }
  result.manifest = root;
  return result;
}

namespace {

std::string compressedLayerMediaType(std::string_view manifest_media_type, layer::Compression c) {
  if (manifest_media_type == oci::kMediaTypeDockerManifest) {
    if (c == layer::Compression::kGzip) return std::string(oci::kMediaTypeDockerLayerGzip);
    if (c == layer::Compression::kZstd) return "application/vnd.docker.image.rootfs.diff.tar.zstd";
    return "application/vnd.docker.image.rootfs.diff.tar";
  }
  return layer::ociLayerMediaType(c);
}

// The uncompressed layer `tar` (whose digest is its diff id) compressed in `c` into a new blob.
Result<oci::Descriptor> compressLayer(store::BlobStore& blobs, const oci::Descriptor& tar,
                                      const Digest& diff_id, layer::Compression c,
                                      std::string_view manifest_media_type,
                                      const layer::CompressionOptions& options) {
  CAIRN_ASSIGN_OR_RETURN(auto stream, blobs.openRead(tar.digest));
  CAIRN_ASSIGN_OR_RETURN(auto writer, blobs.writer());
  layer::FunctionSink sink([&](std::string_view data) { return writer->write(data); });
  layer::LayerEncoder encoder(c, &sink, options);
  std::string buf(1 << 20, '\0');
  for (;;) {
    CAIRN_ASSIGN_OR_RETURN(std::size_t n, stream->read(buf.data(), buf.size()));
    if (n == 0) break;
    CAIRN_RETURN_IF_ERROR(encoder.write(std::string_view(buf.data(), n)));
  }
  CAIRN_ASSIGN_OR_RETURN(layer::EncodedLayer enc, encoder.finishLayer());
  if (enc.diff_id != diff_id) {
    return invalidArgument("its tar hashes to " + enc.diff_id.str() +
                           " but the config's diff id is " + diff_id.str());
  }
  CAIRN_RETURN_IF_ERROR(writer->commit(enc.size, enc.digest).status());
  oci::Descriptor out = tar;
  out.media_type = compressedLayerMediaType(manifest_media_type, c);
  out.digest = enc.digest;
  out.size = static_cast<std::int64_t>(enc.size);
  out.urls.clear();
  return out;
}

struct CompressCounts {
  std::size_t compressed = 0;
  std::size_t reused = 0;
};

Result<oci::Descriptor> compressManifest(store::BlobStore& blobs, const oci::Descriptor& root,
                                         layer::Compression c, const PushImageOptions& options,
                                         CompressCounts& counts) {
  CAIRN_ASSIGN_OR_RETURN(oci::LoadedImage image, oci::loadImage(blobs, root));
  if (image.config.diff_ids.size() != image.manifest.layers.size()) {
    return invalidArgument("image " + root.digest.str() + " has " +
                           std::to_string(image.manifest.layers.size()) + " layers but " +
                           std::to_string(image.config.diff_ids.size()) + " diff ids");
  }
  oci::Manifest m = image.manifest;
  const std::string media_type =
      m.media_type.empty() ? std::string(oci::kMediaTypeOciManifest) : m.media_type;
  bool changed = false;
  for (std::size_t i = 0; i < m.layers.size(); ++i) {
    oci::Descriptor& l = m.layers[i];
    auto from = layer::compressionFromMediaType(l.media_type);
    if (!from.ok()) return from.status().withContext("layer " + l.digest.str());
    if (*from != layer::Compression::kNone) continue;
    const Digest& diff_id = image.config.diff_ids[i];
    if (options.memo) {
      if (auto known = options.memo->find(diff_id, c); known && blobs.exists(known->digest)) {
        oci::Descriptor d = l;
        d.media_type = compressedLayerMediaType(media_type, c);
        d.digest = known->digest;
        d.size = known->size;
        d.urls.clear();
        l = d;
        changed = true;
        ++counts.reused;
        continue;
      }
    }
    auto copy = compressLayer(blobs, l, diff_id, c, media_type, options.compression_options);
    if (!copy.ok()) {
      return copy.status().withContext("compress layer " + std::to_string(i) + " (" +
                                       l.digest.str() + ") to " +
                                       std::string(layer::compressionName(c)));
    }
    if (options.memo) options.memo->remember(diff_id, c, *copy);
    l = *copy;
    changed = true;
    ++counts.compressed;
  }
  if (!changed) return root;
  std::string bytes = oci::serialize(m);
  CAIRN_RETURN_IF_ERROR(store::writeBlob(blobs, bytes).status());
  oci::Descriptor out = oci::describe(media_type, bytes);
  out.platform = root.platform;
  out.annotations = root.annotations;
  return out;
}

}  // namespace

Result<oci::Descriptor> compressUncompressedLayers(store::BlobStore& blobs,
                                                   const oci::Descriptor& root,
                                                   const PushImageOptions& options,
                                                   std::size_t* compressed, std::size_t* reused) {
  CompressCounts counts;
  oci::Descriptor out = root;
  if (options.compression && *options.compression != layer::Compression::kNone) {
    const layer::Compression c = *options.compression;
    if (oci::isManifestMediaType(root.media_type)) {
      CAIRN_ASSIGN_OR_RETURN(out, compressManifest(blobs, root, c, options, counts));
    } else if (oci::isIndexMediaType(root.media_type)) {
      CAIRN_ASSIGN_OR_RETURN(std::string bytes, blobs.readAll(root.digest, oci::kMaxManifestSize));
      auto index = oci::parseIndex(bytes);
      if (!index.ok()) return index.status().withContext(root.digest.str());
      bool changed = false;
      for (oci::Descriptor& child : index->manifests) {
        // Children the store does not hold cannot be pushed anyway; pushImage says so.
        if (!oci::isManifestMediaType(child.media_type) || !blobs.exists(child.digest)) continue;
        CAIRN_ASSIGN_OR_RETURN(oci::Descriptor converted,
                               compressManifest(blobs, child, c, options, counts));
        if (converted.digest != child.digest) {
          child = converted;
          changed = true;
        }
      }
      if (changed) {
        std::string index_bytes = oci::serialize(*index);
        CAIRN_RETURN_IF_ERROR(store::writeBlob(blobs, index_bytes).status());
        out = oci::describe(root.media_type, index_bytes);
      }
    }
  }
  if (compressed) *compressed = counts.compressed;
  if (reused) *reused = counts.reused;
  return out;
}

Result<CompressedPush> pushImage(RegistryClient& client, store::BlobStore& blobs,
                                 const oci::Descriptor& root, const oci::Reference& dest,
                                 const PushImageOptions& options) {
  CompressedPush out;
  CAIRN_ASSIGN_OR_RETURN(
      oci::Descriptor to_push,
      compressUncompressedLayers(blobs, root, options, &out.compressed, &out.reused));
  CAIRN_ASSIGN_OR_RETURN(out.push, pushImage(client, static_cast<const store::BlobReader&>(blobs),
                                             to_push, dest, options.blob));
  return out;
}

namespace {

// Runs `apply` for layer i only after layer i-1 succeeded; a failure cancels the later ones.
class LayerOrder {
 public:
  Status run(std::size_t index, const std::function<Status()>& apply) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return done_ == index || failed_; });
      if (failed_) return cancelled("an earlier layer failed to unpack");
    }
    Status st = apply();
    {
      std::lock_guard lock(mu_);
      if (st.ok()) {
        ++done_;
      } else {
        failed_ = true;
      }
    }
    cv_.notify_all();
    return st;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::size_t done_ = 0;  // layers 0..done_-1 applied
  bool failed_ = false;
};

}  // namespace

LayerUnpacker makeRootfsUnpacker(const std::filesystem::path& rootfs, layer::ApplyOptions options) {
  options.whiteouts = layer::WhiteoutMode::kFlatten;
  auto order = std::make_shared<LayerOrder>();
  return [rootfs, options, order](std::size_t index, const oci::Descriptor& layer_desc,
                                  const Digest&, layer::ByteSource& compressed) -> Status {
    return order->run(index, [&]() -> Status {
      CAIRN_ASSIGN_OR_RETURN(layer::Compression c,
                             layer::compressionFromMediaType(layer_desc.media_type));
      CAIRN_ASSIGN_OR_RETURN(auto tar, layer::makeDecompressor(c, &compressed));
      layer::PrefetchSource ahead(tar.get());  // inflate while the files are created
      auto report = layer::applyLayerTar(ahead, rootfs, options);
      if (!report.ok()) return report.status().withContext("layer " + layer_desc.digest.str());
      return layer::drain(ahead);
    });
  };
}

LayerUnpacker makeLayerStoreUnpacker(store::LayerStore& layers, layer::ApplyOptions options) {
  struct State {
    LayerOrder order;
    std::mutex mu;
    std::vector<Digest> chain;  // chain ids of the layers done so far
  };
  auto state = std::make_shared<State>();
  return [&layers, options, state](std::size_t index, const oci::Descriptor& layer_desc,
                                   const Digest& diff_id, layer::ByteSource& compressed) -> Status {
    return state->order.run(index, [&]() -> Status {
      Digest parent;
      {
        std::lock_guard lock(state->mu);
        if (index > 0) parent = state->chain[index - 1];
      }
      auto info = layers.importTar(compressed, parent, diff_id, options);
      if (!info.ok()) return info.status().withContext("layer " + layer_desc.digest.str());
      std::lock_guard lock(state->mu);
      state->chain.resize(index + 1);
      state->chain[index] = info->chain_id;
      return okStatus();
    });
  };
}

Status unpackImage(const store::BlobReader& blobs, const oci::Manifest& manifest,
                   const oci::ImageConfig& config, const std::filesystem::path& rootfs,
                   layer::ApplyOptions options) {
  if (config.diff_ids.size() != manifest.layers.size()) {
    return invalidArgument("manifest has " + std::to_string(manifest.layers.size()) +
                           " layers but the config " + std::to_string(config.diff_ids.size()) +
                           " diff ids");
  }
  LayerUnpacker unpack = makeRootfsUnpacker(rootfs, options);
  for (std::size_t i = 0; i < manifest.layers.size(); ++i) {
    CAIRN_ASSIGN_OR_RETURN(auto stream, blobs.openRead(manifest.layers[i].digest));
    BlobSource source(std::move(stream));
    CAIRN_RETURN_IF_ERROR(unpack(i, manifest.layers[i], config.diff_ids[i], source));
  }
  return okStatus();
}

}  // namespace cairn::registry
