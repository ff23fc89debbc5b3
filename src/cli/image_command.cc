// `cairn image …`: the local image catalog and its registry transfers. Scripts outside the
// project rely on these exact forms:
//
//   cairn image pull REF                     pull (index → this platform), unpack layers
//   cairn image push NAME [REF]              push a local image (to REF, default NAME; a
//                                            build's tar layers as gzip unless --compression)
//   cairn image export NAME oci:DIR[:TAG]    write an OCI image layout (TAG: NAME's tag;
//                                            gzip layers unless --compression zstd|none|keep)
//   cairn image import oci:DIR[:TAG] NAME    read one
//   cairn image list [--json]
//   cairn image inspect NAME                 manifest + config as JSON
//   cairn image rm NAME                      untag (blobs go with the store's GC)
//
// Registry settings: --registry-config FILE (env CAIRN_REGISTRY_CONFIG), else
// <data>/registries.json, plus ~/.docker/config.json credentials.
#include <unistd.h>

#include <iomanip>
#include <iostream>
#include <optional>

#include "cairn/api/object_store.h"
#include "cairn/build/builder.h"
#include "cairn/build/cache_index.h"
#include "cairn/cli/command.h"
#include "cairn/cli/gc_guard.h"
#include "cairn/common/json.h"
#include "cairn/oci/catalog.h"
#include "cairn/oci/layout.h"
#include "cairn/oci/recompress.h"
#include "cairn/oci/reference.h"
#include "cairn/registry/client.h"
#include "cairn/registry/config.h"
#include "cairn/registry/transfer.h"
#include "cairn/service/snapshot_service.h"
#include "cairn/service/store_gc.h"
#include "cairn/store/layer_store.h"
#include "cairn/store/local_blob_store.h"

namespace {

namespace fs = std::filesystem;
using cairn::Result;
using cairn::Status;

struct ImageFlags {
  std::string registry_config;
  std::string platform;
  std::string name;
  std::string target;
  bool json = false;
  bool no_unpack = false;
  std::string compression = "gzip";
  std::uint64_t chunk_size = 0;
  double keep_cache_gb = 20;
};

int fail(const Status& s) {
  std::cerr << "error: " << s.message() << "\n";
  return 1;
}

struct Local {
  std::unique_ptr<cairn::store::LocalBlobStore> blobs;
  std::unique_ptr<cairn::oci::ImageCatalog> catalog;
  fs::path data_dir;
};

Result<Local> openLocal(const cairn::cli::GlobalOptions& options) {
  Local l;
  l.data_dir = cairn::cli::resolvedDataDir(options);
  CAIRN_ASSIGN_OR_RETURN(l.blobs, cairn::store::LocalBlobStore::open(l.data_dir));
  CAIRN_ASSIGN_OR_RETURN(l.catalog, cairn::oci::ImageCatalog::open(l.data_dir));
  return l;
}

Result<cairn::registry::RegistryConfig> registryConfig(const Local& local,
                                                       const ImageFlags& flags) {
  CAIRN_ASSIGN_OR_RETURN(auto config, cairn::registry::RegistryConfig::loadDefault(
                                          local.data_dir, flags.registry_config));
  if (!flags.platform.empty()) {
    CAIRN_ASSIGN_OR_RETURN(config.platform, cairn::oci::Platform::parse(flags.platform));
  }
  return config;
}

std::int64_t imageSize(const cairn::store::BlobReader& blobs, const cairn::oci::Descriptor& d) {
  auto img = cairn::oci::loadImage(blobs, d);
  if (!img.ok()) return d.size;
  std::int64_t total = img->manifest.config.size + d.size;
  for (const auto& l : img->manifest.layers)
    total += l.size;
  return total;
}

std::string humanSize(std::int64_t bytes) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  std::ostringstream os;
  os << std::fixed << std::setprecision(u == 0 ? 0 : 1) << v << units[u];
  return os.str();
}

Status doPull(const cairn::cli::GlobalOptions& options, const ImageFlags& flags) {
  CAIRN_ASSIGN_OR_RETURN(Local local, openLocal(options));
  CAIRN_ASSIGN_OR_RETURN(auto gc_guard, cairn::cli::deferStoreGc(local.data_dir));
  CAIRN_ASSIGN_OR_RETURN(auto config, registryConfig(local, flags));
  CAIRN_ASSIGN_OR_RETURN(cairn::oci::Reference ref, cairn::oci::Reference::parse(flags.name));
  ref = ref.withDefaultTag();
  cairn::registry::RegistryClient client(config);
  cairn::registry::PullOptions pull;
  std::unique_ptr<cairn::store::LayerStore> layers;
  if (!flags.no_unpack) {
    CAIRN_ASSIGN_OR_RETURN(layers, cairn::store::LayerStore::open(local.data_dir));
    cairn::layer::ApplyOptions apply;
    apply.preserve_owner = ::geteuid() == 0;
    pull.unpack = cairn::registry::makeLayerStoreUnpacker(*layers, apply);
  }
  CAIRN_ASSIGN_OR_RETURN(auto result, cairn::registry::pullImage(client, *local.blobs, ref, pull));
  CAIRN_RETURN_IF_ERROR(local.catalog->tag(ref.str(), result.manifest, "pull " + ref.str()));
  std::cout << "Pulled " << ref.str() << "\n"
            << "Digest: " << result.manifest.digest.str() << "\n"
            << "Layers: " << result.layers_downloaded << " downloaded, " << result.layers_present
            << " already present (" << humanSize(static_cast<std::int64_t>(result.downloaded_bytes))
            << ")\n";
  return cairn::okStatus();
}

// The build cache index keeps the compressed copies a push makes of a build's uncompressed
// layers, so pushing the next tag or the next build with the same layers does not compress
// them again.
class CacheMemo final : public cairn::registry::CompressedLayerMemo {
 public:
  explicit CacheMemo(cairn::build::CacheIndex& cache) : cache_(cache) {}
  std::optional<cairn::oci::Descriptor> find(const cairn::Digest& diff_id,
                                             cairn::layer::Compression c) override {
    auto known = cache_.compressedCopy(diff_id, cairn::layer::compressionName(c));
    if (!known.ok() || !*known) return std::nullopt;
    cairn::oci::Descriptor d;
    d.media_type = (*known)->media_type;
    d.digest = (*known)->digest;
    d.size = static_cast<std::int64_t>((*known)->size);
    return d;
  }
  void remember(const cairn::Digest& diff_id, cairn::layer::Compression c,
                const cairn::oci::Descriptor& blob) override {
    // A copy that is not remembered is only made again next time.
    (void)cache_.putCompressedCopy(
        diff_id, cairn::layer::compressionName(c),
        {blob.digest, static_cast<std::uint64_t>(blob.size), blob.media_type});
  }

 private:
  cairn::build::CacheIndex& cache_;
};

Status doPush(const cairn::cli::GlobalOptions& options, const ImageFlags& flags) {
  CAIRN_ASSIGN_OR_RETURN(Local local, openLocal(options));
  CAIRN_ASSIGN_OR_RETURN(auto gc_guard, cairn::cli::deferStoreGc(local.data_dir));
  CAIRN_ASSIGN_OR_RETURN(auto config, registryConfig(local, flags));
  CAIRN_ASSIGN_OR_RETURN(auto entry, local.catalog->get(flags.name));
  std::string dest_text = flags.target.empty() ? entry.name : flags.target;
  CAIRN_ASSIGN_OR_RETURN(cairn::oci::Reference dest, cairn::oci::Reference::parse(dest_text));
  dest = dest.withDefaultTag();
  cairn::registry::BlobPushOptions push;
  push.chunk_size = flags.chunk_size;
  // An image pulled from another repository of the same registry can be mounted, not uploaded.
  if (entry.source.starts_with("pull ")) {
    auto from = cairn::oci::Reference::parse(entry.source.substr(5));
    if (from.ok() && from->domain() == dest.domain() && from->path() != dest.path()) {
      push.mount_from = from->path();
    }
  }
  cairn::registry::PushImageOptions push_options;
  push_options.blob = push;
  // A built image's layers are stored as tars: they are compressed now, on the way out.
  if (flags.compression == "keep" || flags.compression == "none") {
    push_options.compression.reset();
  } else {
    auto c = cairn::layer::parseCompression(flags.compression);
    if (!c.ok()) {
      return cairn::invalidArgument("--compression \"" + flags.compression +
                                    "\": want gzip, zstd or none");
    }
    push_options.compression = *c;
  }
  CAIRN_ASSIGN_OR_RETURN(auto cache,
                         cairn::build::CacheIndex::open(local.data_dir / "cache" / "index.db"));
  CacheMemo memo(*cache);
  push_options.memo = &memo;
  cairn::registry::RegistryClient client(config);
  CAIRN_ASSIGN_OR_RETURN(
      auto result,
      cairn::registry::pushImage(client, *local.blobs, entry.descriptor, dest, push_options));
  if (result.compressed + result.reused > 0) {
    std::cout << "Compressed " << result.compressed << " layers to "
              << cairn::layer::compressionName(*push_options.compression) << " (" << result.reused
              << " more reused from an earlier push)\n";
  }
  std::cout << "Pushed " << dest.str() << "\n"
            << "Digest: " << result.push.manifest.digest.str() << "\n"
            << "Blobs: " << result.push.uploaded << " uploaded, " << result.push.mounted
            << " mounted, " << result.push.existed << " already there\n";
  return cairn::okStatus();
}

// Export writes gzip layers by default: every OCI tool reads them (Debian's umoci 0.4.7 and
// Docker before 23 do not read zstd). A build's layers are stored as uncompressed tars and are
// compressed here; pulled zstd layers are recompressed (the diff ids and config stay; the
// manifest digest changes); "keep" writes the layers as stored.
Status doExport(const cairn::cli::GlobalOptions& options, const ImageFlags& flags) {
  CAIRN_ASSIGN_OR_RETURN(Local local, openLocal(options));
  CAIRN_ASSIGN_OR_RETURN(auto entry, local.catalog->get(flags.name));
  CAIRN_ASSIGN_OR_RETURN(auto layout, cairn::oci::parseLayoutRef(flags.target));
  std::optional<cairn::layer::Compression> compression;
  if (flags.compression != "keep") {
    auto c = cairn::layer::parseCompression(flags.compression);
    if (!c.ok()) {
      return cairn::invalidArgument("--compression \"" + flags.compression +
                                    "\": want gzip (default), zstd, none or keep");
    }
    compression = *c;
  }
  std::string tag = layout.tag;
  if (tag.empty()) {
    CAIRN_ASSIGN_OR_RETURN(auto ref, cairn::oci::Reference::parse(entry.name));
    tag = ref.tag().empty() ? std::string(cairn::oci::kDefaultTag) : ref.tag();
  }
  cairn::oci::Descriptor root = entry.descriptor;
  if (compression && cairn::oci::isManifestMediaType(root.media_type)) {
    CAIRN_ASSIGN_OR_RETURN(auto converted,
                           cairn::oci::recompressImage(*local.blobs, root, *compression));
    if (converted.converted > 0) {
      std::cout << "Recompressed " << converted.converted << " layer"
                << (converted.converted == 1 ? "" : "s") << " to "
                << cairn::layer::compressionName(*compression) << " (digest "
                << converted.manifest.digest.str() << ")\n";
    }
    root = converted.manifest;
  }
  CAIRN_RETURN_IF_ERROR(cairn::oci::exportLayout(*local.blobs, root, layout.dir, tag));
  std::cout << "Exported " << entry.name << " to oci:" << layout.dir.string() << ":" << tag << "\n";
  return cairn::okStatus();
}

Status doImport(const cairn::cli::GlobalOptions& options, const ImageFlags& flags) {
  CAIRN_ASSIGN_OR_RETURN(Local local, openLocal(options));
  CAIRN_ASSIGN_OR_RETURN(auto gc_guard, cairn::cli::deferStoreGc(local.data_dir));
  CAIRN_ASSIGN_OR_RETURN(auto layout, cairn::oci::parseLayoutRef(flags.target));
  CAIRN_ASSIGN_OR_RETURN(std::string name, cairn::oci::ImageCatalog::normalizeName(flags.name));
  cairn::oci::Platform platform = cairn::oci::Platform::host();
  if (!flags.platform.empty()) {
    CAIRN_ASSIGN_OR_RETURN(platform, cairn::oci::Platform::parse(flags.platform));
  }
  CAIRN_ASSIGN_OR_RETURN(auto d,
                         cairn::oci::importLayout(*local.blobs, layout.dir, layout.tag, platform));
  CAIRN_RETURN_IF_ERROR(local.catalog->tag(name, d, "import " + flags.target));
  std::cout << "Imported " << name << "\nDigest: " << d.digest.str() << "\n";
  return cairn::okStatus();
}

Status doList(const cairn::cli::GlobalOptions& options, const ImageFlags& flags) {
  CAIRN_ASSIGN_OR_RETURN(Local local, openLocal(options));
  CAIRN_ASSIGN_OR_RETURN(auto entries, local.catalog->list());
  if (flags.json) {
    cairn::Json out = cairn::Json::array();
    for (const auto& e : entries) {
      out.push_back({{"name", e.name},
                     {"digest", e.descriptor.digest.str()},
                     {"mediaType", e.descriptor.media_type},
                     {"size", imageSize(*local.blobs, e.descriptor)},
                     {"createdAt", e.created_at},
                     {"source", e.source}});
    }
    std::cout << out.dump(2) << "\n";
    return cairn::okStatus();
  }
  std::cout << std::left << std::setw(60) << "NAME" << std::setw(22) << "DIGEST" << std::setw(10)
            << "SIZE"
            << "CREATED\n";
  for (const auto& e : entries) {
    std::cout << std::left << std::setw(60) << e.name << std::setw(22)
              << e.descriptor.digest.shortStr() << std::setw(10)
              << humanSize(imageSize(*local.blobs, e.descriptor)) << e.created_at << "\n";
  }
  return cairn::okStatus();
}

Status doInspect(const cairn::cli::GlobalOptions& options, const ImageFlags& flags) {
  CAIRN_ASSIGN_OR_RETURN(Local local, openLocal(options));
  CAIRN_ASSIGN_OR_RETURN(auto entry, local.catalog->get(flags.name));
  cairn::Json out = {{"name", entry.name},
                     {"descriptor", cairn::oci::toJson(entry.descriptor)},
                     {"createdAt", entry.created_at},
                     {"source", entry.source}};
  if (cairn::oci::isManifestMediaType(entry.descriptor.media_type)) {
    CAIRN_ASSIGN_OR_RETURN(auto img, cairn::oci::loadImage(*local.blobs, entry.descriptor));
    out["manifest"] = cairn::oci::toJson(img.manifest);
    out["config"] = cairn::oci::toJson(img.config);
  } else {
    CAIRN_ASSIGN_OR_RETURN(std::string bytes, local.blobs->readAll(entry.descriptor.digest,
                                                                   cairn::oci::kMaxManifestSize));
    CAIRN_ASSIGN_OR_RETURN(auto index, cairn::oci::parseIndex(bytes));
    out["index"] = cairn::oci::toJson(index);
  }
  std::cout << out.dump(2) << "\n";
  return cairn::okStatus();
}

Status doRemove(const cairn::cli::GlobalOptions& options, const ImageFlags& flags) {
  CAIRN_ASSIGN_OR_RETURN(Local local, openLocal(options));
  CAIRN_ASSIGN_OR_RETURN(std::string name, cairn::oci::ImageCatalog::normalizeName(flags.name));
  CAIRN_RETURN_IF_ERROR(local.catalog->remove(name));
  std::cout << "Untagged: " << name << "\n";
  return cairn::okStatus();
}

// `cairn image prune`: what `cairn serve` does after deletes, for a data dir used from the CLI
// alone — the build cache evicted down to --keep-cache, layers no image or cached step uses, and
// blobs no image, cached step or S3 object reaches.
Status doPrune(const cairn::cli::GlobalOptions& options, const ImageFlags& flags) {
  if (flags.keep_cache_gb < 0) return cairn::invalidArgument("--keep-cache-gb must be >= 0");
  CAIRN_ASSIGN_OR_RETURN(Local local, openLocal(options));
  if (cairn::service::serviceRunsOn(local.data_dir)) {
    return cairn::failedPrecondition("cairn serve is running on " + local.data_dir.string() +
                                     ": it collects garbage itself after deletes");
  }
  auto lock = cairn::service::StoreGcLock::tryExclusive(local.data_dir);
  if (!lock.ok() && lock.status().code() == cairn::StatusCode::kUnavailable) {
    return cairn::unavailable("a build, pull or push is running on " + local.data_dir.string() +
                              "; prune again when it has finished");
  }
  CAIRN_RETURN_IF_ERROR(lock.status());
  CAIRN_ASSIGN_OR_RETURN(auto layers, cairn::store::LayerStore::open(local.data_dir));
  cairn::build::BuilderOptions bo;
  bo.data_dir = local.data_dir;
  bo.blobs = local.blobs.get();
  bo.layers = layers.get();
  bo.catalog = local.catalog.get();
  bo.cache_budget_bytes = static_cast<std::uint64_t>(flags.keep_cache_gb * 1e9);
  CAIRN_ASSIGN_OR_RETURN(auto builder, cairn::build::Builder::open(bo));
  CAIRN_ASSIGN_OR_RETURN(cairn::store::LayerGcReport layer_report, builder->collectGarbage());
  // The S3 endpoint's object bodies are blobs too: they stay.
  CAIRN_ASSIGN_OR_RETURN(
      auto objects, cairn::api::BlobObjectStore::open(local.data_dir / "objects", *local.blobs));
  cairn::service::StoreGcOptions gc;
  gc.blobs = local.blobs.get();
  gc.catalog = local.catalog.get();
  gc.cache = &builder->cache();
  gc.layers = layers.get();
  gc.roots = {objects.get()};
  gc.lock_data_dir = false;  // held above
  CAIRN_ASSIGN_OR_RETURN(auto report, cairn::service::collectStoreGarbage(gc));
  std::cout << "Removed " << layer_report.removed.size() << " layers and "
            << report.blobs.removed.size() << " blobs ("
            << humanSize(static_cast<std::int64_t>(report.blobs.removed_bytes)) << "); kept "
            << layer_report.kept << " layers and " << report.blobs.kept << " blobs\n";
  return cairn::okStatus();
}

void registerImage(CLI::App& command, cairn::cli::GlobalOptions& options) {
  auto* image = &command;
  image->require_subcommand(1);
  auto flags = std::make_shared<ImageFlags>();
  image
      ->add_option("--registry-config", flags->registry_config,
                   "Registry config JSON (default <data>/registries.json)")
      ->envname("CAIRN_REGISTRY_CONFIG");
  auto run = [&options, flags](Status (*fn)(const cairn::cli::GlobalOptions&, const ImageFlags&)) {
    return [&options, flags, fn] {
      Status s = fn(options, *flags);
      if (!s.ok()) cairn::cli::setExitCode(fail(s));
    };
  };

  auto* pull = image->add_subcommand("pull", "Pull an image from a registry");
  pull->add_option("REF", flags->name, "Image reference, e.g. python:3.12-slim")->required();
  pull->add_option("--platform", flags->platform, "os/arch[/variant] (default: this machine)");
  pull->add_flag("--no-unpack", flags->no_unpack, "Only fetch blobs; do not unpack layers");
  pull->callback(run(doPull));

  auto* push = image->add_subcommand("push", "Push a local image to a registry");
  push->add_option("NAME", flags->name, "Local image name")->required();
  push->add_option("REF", flags->target, "Destination reference (default: NAME)");
  push->add_option("--chunk-size", flags->chunk_size,
                   "Upload in chunks of this many bytes (default: one request per blob)");
  push->add_option("--compression", flags->compression,
                   "How uncompressed layers (a build's) are compressed for the registry: gzip "
                   "(default; what every client reads), zstd, or none (as stored)");
  push->callback(run(doPush));

  auto* exp = image->add_subcommand("export", "Write an image to an OCI image layout");
  exp->add_option("NAME", flags->name, "Local image name")->required();
  exp->add_option("DEST", flags->target, "oci:DIR[:TAG] (TAG defaults to NAME's tag)")->required();
  exp->add_option("--compression", flags->compression,
                  "Layer compression in the layout: gzip (default; what every OCI tool reads), "
                  "zstd, none, or keep (as stored)");
  exp->callback(run(doExport));

  auto* imp = image->add_subcommand("import", "Read an image from an OCI image layout");
  imp->add_option("SOURCE", flags->target, "oci:DIR[:TAG]")->required();
  imp->add_option("NAME", flags->name, "Local name to give it")->required();
  imp->add_option("--platform", flags->platform, "os/arch[/variant] for multi-platform layouts");
  imp->callback(run(doImport));

  auto* list = image->add_subcommand("list", "List local images");
  list->alias("ls");
  list->add_flag("--json", flags->json, "JSON output");
  list->callback(run(doList));

  auto* inspect = image->add_subcommand("inspect", "Show an image's manifest and config");
  inspect->add_option("NAME", flags->name, "Local image name")->required();
  inspect->callback(run(doInspect));

  auto* rm = image->add_subcommand("rm", "Remove a local image name");
  rm->add_option("NAME", flags->name, "Local image name")->required();
  rm->callback(run(doRemove));

  auto* prune = image->add_subcommand(
      "prune", "Remove untagged images' blobs and layers, and evict the build cache to a budget");
  prune->add_option("--keep-cache-gb", flags->keep_cache_gb,
                    "Build cache to keep, in GB (least recently used steps go first; 0 = none)");
  prune->callback(run(doPrune));
}

CAIRN_REGISTER_SUBCOMMAND(300, "image", "Pull, push, import, export and list images",
                          registerImage);

}  // namespace
