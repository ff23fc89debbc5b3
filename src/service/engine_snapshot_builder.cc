#include "cairn/service/engine_snapshot_builder.h"

#include <mutex>

#include "cairn/oci/reference.h"
#include "cairn/registry/transfer.h"

namespace cairn::service {

Result<BuiltImage> EngineSnapshotBuilder::describe(const oci::Descriptor& manifest) {
  CAIRN_ASSIGN_OR_RETURN(auto image, oci::loadImage(*options_.blobs, manifest));
  BuiltImage out;
  out.manifest_digest = manifest.digest.str();
  for (const auto& l : image.manifest.layers)
    out.size_bytes += l.size;
  if (image.config.config) {
    const auto& c = *image.config.config;
    if (c.entrypoint) out.entrypoint = *c.entrypoint;
    if (c.cmd) out.entrypoint.insert(out.entrypoint.end(), c.cmd->begin(), c.cmd->end());
  }
  return out;
}

Result<std::optional<BuiltImage>> EngineSnapshotBuilder::findBuilt(
    const std::string& snapshot_ref) {
  CAIRN_ASSIGN_OR_RETURN(auto name, oci::ImageCatalog::normalizeName(snapshot_ref));
  auto entry = options_.catalog->get(name);
  if (!entry.ok()) {
    if (entry.status().code() == StatusCode::kNotFound) return std::optional<BuiltImage>();
    return entry.status();
  }
  auto described = describe(entry->descriptor);
  // A tag whose blobs are gone (interrupted GC) is not "built": build it again.
  if (!described.ok()) return std::optional<BuiltImage>();
  return std::optional<BuiltImage>(std::move(*described));
}

Result<BuiltImage> EngineSnapshotBuilder::build(const SnapshotBuildJob& job, build::LogSink& log) {
  build::BuildRequest request;
  request.dockerfile = job.dockerfile;
  request.context_dir = job.context_dir;
  request.tags = {job.snapshot_ref};
  request.limits = options_.limits;
  request.step_timeout = options_.step_timeout;
  request.cancel = job.cancel;
  Result<build::BuildResult> result = [&] {
    std::shared_lock lock(gc_mu_);
    return options_.builder->build(request, log);
  }();
  if (!result.ok()) return std::move(result).status();
  return describe(result->manifest);
}

Result<std::string> EngineSnapshotBuilder::resolveDigest(const std::string& image_name) {
  if (options_.registry == nullptr) return failedPrecondition("no registry client configured");
  CAIRN_ASSIGN_OR_RETURN(auto ref, oci::Reference::parse(image_name));
  if (!ref.digest().empty()) return ref.digest().str();
  CAIRN_ASSIGN_OR_RETURN(auto fetched, options_.registry->getManifest(ref.withDefaultTag()));
  return fetched.descriptor.digest.str();
}

Result<BuiltImage> EngineSnapshotBuilder::pull(const std::string& image_name,
                                               const std::string& digest, const std::string& tag,
                                               build::LogSink& log) {
  if (options_.registry == nullptr) return failedPrecondition("no registry client configured");
  CAIRN_ASSIGN_OR_RETURN(auto ref, oci::Reference::parse(image_name));
  CAIRN_ASSIGN_OR_RETURN(auto pinned, Digest::parse(digest));
  CAIRN_ASSIGN_OR_RETURN(auto pulled, registry::pullImage(*options_.registry, *options_.blobs,
                                                          ref.withDigest(pinned)));
  log.write("#2 " + std::to_string(pulled.layers_downloaded) + " layers downloaded, " +
            std::to_string(pulled.layers_present) + " already present\n");
  CAIRN_ASSIGN_OR_RETURN(auto name, oci::ImageCatalog::normalizeName(tag));
  CAIRN_RETURN_IF_ERROR(options_.catalog->tag(name, pulled.manifest, "pull " + image_name));
  return describe(pulled.manifest);
}

Status EngineSnapshotBuilder::removeImage(const std::string& tag) {
  CAIRN_ASSIGN_OR_RETURN(auto name, oci::ImageCatalog::normalizeName(tag));
  return options_.catalog->remove(name);
}

Status EngineSnapshotBuilder::collectGarbage() {
  std::unique_lock lock(gc_mu_, std::try_to_lock);
  if (!lock.owns_lock()) return unavailable("garbage collection deferred: builds are running");
  return options_.builder->collectGarbage();
}

Status EngineSnapshotBuilder::recover() {
  return options_.builder->recover();
}

}  // namespace cairn::service
