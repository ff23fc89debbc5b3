// The real SnapshotBuilder: cairn::build::Builder for Dockerfile builds, the registry client
// for pulls, the image catalog for "already built" (dedup, §5.3) and image removal.
//
// Images are tagged in the catalog under their snapshot ref ("daytona-<hex>:daytona", which the
// catalog normalises to docker.io/library/daytona-<hex>:daytona). Pulls are content-addressed
// in the blob store, so the same image pulled twice is stored once.
//
// Entrypoint validation (validateEntrypoint) runs the built image in a sandbox through the same
// Executor the builder uses, over the image's unpacked layers (leased, and under the lock that
// keeps garbage collection out), with network none, the snapshot's cpu and memory, and a
// timeout of `stay_up`: a timeout means the entrypoint stayed up (pass; the executor kills the
// container and removes its work dir), an exit 0 passes, anything else fails with the exit
// status and the last output lines. Without an executor and a layer store it does not validate.
//
// recover() first deletes containers a crashed process left running (so that their processes
// stop before their directories go), then the builder's own recovery (build work dirs, staging
// layers) and, for a LocalBlobStore, partial ingest files of an interrupted export.
//
// Garbage collection is the builder's (cache budget, unreferenced layer directories) and, with
// `collect_blobs`, the blob store's (service/store_gc.h): catalog images, cached exports and
// `blob_roots` (the S3 endpoint's objects) are kept, the rest goes. Builds, pulls and entrypoint
// validation hold the gc lock shared, so a GC (exclusive, or deferred with Unavailable) never
// sees a tag half made.
#pragma once

#include <shared_mutex>

#include "cairn/build/builder.h"
#include "cairn/oci/catalog.h"
#include "cairn/registry/client.h"
#include "cairn/runtime/executor.h"
#include "cairn/service/snapshot_service.h"
#include "cairn/service/store_gc.h"
#include "cairn/store/blob_store.h"
#include "cairn/store/layer_store.h"

namespace cairn::service {

struct EngineSnapshotBuilderOptions {
  build::Builder* builder = nullptr;             //!< required
  oci::ImageCatalog* catalog = nullptr;          //!< required
  store::BlobStore* blobs = nullptr;             //!< required
  registry::RegistryClient* registry = nullptr;  //!< required for pulls
  runtime::Executor* executor = nullptr;         //!< for entrypoint validation (optional)
  store::LayerStore* layers = nullptr;           //!< for entrypoint validation (optional)
  runtime::ResourceLimits limits;                //!< per RUN step (§5.2: 4 CPU, 8 GB)
  std::chrono::milliseconds step_timeout{0};
  //! Sweep unreferenced blobs too. Only when every other holder of blobs in `blobs` (e.g. the
  //! S3 object store) is listed in `blob_roots`: anything else would lose its blobs.
  bool collect_blobs = false;
  std::vector<BlobRootSet*> blob_roots;
};

class EngineSnapshotBuilder final : public SnapshotBuilder {
 public:
  explicit EngineSnapshotBuilder(EngineSnapshotBuilderOptions options)
      : options_(std::move(options)) {}

  Result<std::optional<BuiltImage>> findBuilt(const std::string& snapshot_ref) override;
  Result<BuiltImage> build(const SnapshotBuildJob& job, build::LogSink& log) override;
  Result<std::string> resolveDigest(const std::string& image_name) override;
  Result<BuiltImage> pull(const std::string& image_name, const std::string& digest,
                          const std::string& tag, build::LogSink& log) override;
  Status removeImage(const std::string& tag) override;
  Status collectGarbage() override;
  Status recover() override;
  Status validateEntrypoint(const EntrypointCheck& check, build::LogSink& log) override;

 private:
  Result<BuiltImage> describe(const oci::Descriptor& manifest);
  //! <data>/gc.lock, exclusively, for a LocalBlobStore (nullopt for a store with no data dir to
  //! share); Unavailable while a build in another process holds it.
  Result<std::optional<StoreGcLock>> lockDataDir() const;
  EngineSnapshotBuilderOptions options_;
  std::shared_mutex gc_mu_;  // builds share it; a GC (which may drop layers) excludes them
};

}  // namespace cairn::service
