// The real SnapshotBuilder: cairn::build::Builder for Dockerfile builds, the registry client
// for pulls, the image catalog for "already built" (dedup, §5.3) and image removal.
//
// Images are tagged in the catalog under their snapshot ref ("daytona-<hex>:daytona", which the
// catalog normalises to docker.io/library/daytona-<hex>:daytona). Pulls are content-addressed
// in the blob store, so the same image pulled twice is stored once.
//
// Garbage collection here is the builder's (cache budget, unreferenced layer directories); the
// blob store is not swept because it also holds S3 objects (build contexts) that no image
// references.
#pragma once

#include <shared_mutex>

#include "cairn/build/builder.h"
#include "cairn/oci/catalog.h"
#include "cairn/registry/client.h"
#include "cairn/service/snapshot_service.h"
#include "cairn/store/blob_store.h"

namespace cairn::service {

struct EngineSnapshotBuilderOptions {
  build::Builder* builder = nullptr;             //!< required
  oci::ImageCatalog* catalog = nullptr;          //!< required
  store::BlobStore* blobs = nullptr;             //!< required
  registry::RegistryClient* registry = nullptr;  //!< required for pulls
  runtime::ResourceLimits limits;                //!< per RUN step (§5.2: 4 CPU, 8 GB)
  std::chrono::milliseconds step_timeout{0};
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

 private:
  Result<BuiltImage> describe(const oci::Descriptor& manifest);
  EngineSnapshotBuilderOptions options_;
  std::shared_mutex gc_mu_;  // builds share it; a GC (which may drop layers) excludes them
};

}  // namespace cairn::service
