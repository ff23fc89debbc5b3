// The build engine: a Dockerfile and a context directory in, a tagged OCI image out.
//
//   parse (dockerfile/) → plan stages (plan.h) → for each needed stage, each step:
//     cache key → hit: reuse the layer directory (no copy, no tar)
//               → miss: RUN under the OCI runtime on overlayfs / COPY into an overlay,
//                       the upper dir becomes the layer (LayerStore::adoptDir)
//     (a layer the image will contain is tarred once, when its step is committed: that pass
//     gives its diff id and its zstd blob, remembered by diff id in the cache index)
//   → export: config + manifest (+ any layer still without a blob) into the blob store → tag
//     in the image catalog.
//
// Logs go to a LogSink in BuildKit's plain-progress style. A failed build returns a Status
// whose message names the Dockerfile line, the instruction, the exit code and the last output
// lines — the server uses it as the snapshot's errorReason.
//
//   ASSIGN_OR_RETURN(auto builder, Builder::open(options));
//   RETURN_IF_ERROR(builder->recover());  // at process start: unmount/remove stale work
//   ASSIGN_OR_RETURN(BuildResult r, builder->build(request, sink));
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cairn/build/cache_index.h"
#include "cairn/build/progress.h"
#include "cairn/common/status.h"
#include "cairn/layer/compression.h"
#include "cairn/oci/catalog.h"
#include "cairn/oci/image.h"
#include "cairn/runtime/container_spec.h"
#include "cairn/runtime/executor.h"
#include "cairn/store/blob_store.h"
#include "cairn/store/layer_store.h"

namespace cairn::build {

//! A build secret (`cairn build --secret id=X,src=FILE` or `id=X,env=VAR`), mounted by
//! `RUN --mount=type=secret,id=X`. Its bytes never reach a layer, the image config, its history
//! or a cache key (only the id does), as with BuildKit.
struct BuildSecret {
  std::filesystem::path file;  //!< read when a step mounts it; empty: `value` is used
  std::string value;
};

//! Parses docker buildx's `--secret` value: `id=X[,src|source=FILE]`, `id=X,env=VAR`,
//! `type=file|env`. Without src and env, the environment variable named X is used when it is
//! set, else the file X. An env secret is read now; a missing file is an error now.
Result<std::pair<std::string, BuildSecret>> parseSecretFlag(std::string_view flag);

//! Parses a memory limit for `cairn build --memory`: docker's units ("512m", "2g", "1.5GiB",
//! "300000k", "1073741824b") or a bare number of gigabytes ("0.5"), as `cairn run --memory`.
//! Below 6 MiB (docker's minimum) or malformed is InvalidArgument.
Result<std::int64_t> parseMemoryLimit(std::string_view text);

//! Parses `cairn build --ssh` as docker buildx: `default` (the agent at $SSH_AUTH_SOCK) or
//! `ID=SOCKET`. Key files are not supported (add them to an agent); the socket must exist.
Result<std::pair<std::string, std::filesystem::path>> parseSshFlag(std::string_view flag);

//! Fetches an image that is not in the catalog (a registry pull) into the blob store and
//! returns its manifest descriptor. Optional: without it, a missing base image is NotFound.
using ImageFetcher =
    std::function<Result<oci::Descriptor>(const std::string& reference, Progress& progress)>;

struct BuilderOptions {
  std::filesystem::path data_dir;
  store::BlobStore* blobs = nullptr;      //!< required
  store::LayerStore* layers = nullptr;    //!< required
  oci::ImageCatalog* catalog = nullptr;   //!< required
  runtime::Executor* executor = nullptr;  //!< required for RUN steps
  ImageFetcher fetch;
  std::uint64_t cache_budget_bytes = 20ull << 30;
};

struct BuildRequest {
  std::string dockerfile;                      //!< the Dockerfile text
  std::string dockerfile_name = "Dockerfile";  //!< for messages
  std::filesystem::path context_dir;           //!< may be empty for Dockerfiles without COPY/ADD
  std::map<std::string, std::string> build_args;
  std::string target;
  bool no_cache = false;
  runtime::NetworkMode network = runtime::NetworkMode::kDefault;
  runtime::ResourceLimits limits;             //!< per RUN step
  std::chrono::milliseconds step_timeout{0};  //!< per RUN step; 0 = none
  std::vector<std::string> tags;              //!< names to tag the result with in the catalog
  const runtime::CancelToken* cancel = nullptr;
  //! Independent stages (no path between them in the stage DAG) build at the same time, at
  //! most this many; 1 builds one stage after the other. The first failing stage cancels the
  //! others (their running RUN steps are killed) and is the build's error.
  int max_parallel_stages = 3;
  std::map<std::string, BuildSecret> secrets;  //!< by id
  //! SSH agents for `RUN --mount=type=ssh[,id=…]`, by id ("default" unless the mount names
  //! one): the agent's socket. The step sees a forwarding socket of its own.
  std::map<std::string, std::filesystem::path> ssh_agents;
};

struct BuildResult {
  oci::Descriptor manifest;
  oci::ImageConfig config;
  std::uint64_t size_bytes = 0;  //!< sum of the image's compressed layer sizes
  int steps = 0;
  int cached_steps = 0;
};

class Builder {
 public:
  static Result<std::unique_ptr<Builder>> open(BuilderOptions options);
  ~Builder();

  //! Builds and tags. On failure the Status says what failed where; nothing stays mounted and
  //! the build's work directory is removed.
  Result<BuildResult> build(const BuildRequest& request, LogSink& log);

  //! Cleans what a crashed process left: mounts and work dirs under <data>/work/builds,
  //! staging layers, the executor's stale containers.
  Status recover();

  //! Evicts cache entries over the budget and collects layers nothing references any more
  //! (neither the cache nor a catalog image). Returns the layer store's report.
  Result<store::LayerGcReport> collectGarbage();

  CacheIndex& cache() { return *cache_; }

 private:
  explicit Builder(BuilderOptions options) : options_(std::move(options)) {}
  struct Run;
  friend struct Run;
  BuilderOptions options_;
  std::unique_ptr<CacheIndex> cache_;
};

}  // namespace cairn::build
