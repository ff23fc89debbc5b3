// `cairn serve`: the Daytona-compatible API, the S3-compatible context endpoint and the build
// workers in one process, with embedded defaults (SQLite and files in the data directory).
//
// Settings come from flags, then CAIRN_* environment variables, then a TOML file (--config,
// CAIRN_CONFIG, or <data-dir>/config.toml when it exists), then the defaults below:
//
//   listen = "127.0.0.1:3000"        # CAIRN_LISTEN
//   public_url = "https://cairn.example"   # CAIRN_PUBLIC_URL (build-logs-url, storageUrl)
//   io_threads = 4                   # CAIRN_IO_THREADS
//   s3_region = "us-east-1"          # CAIRN_S3_REGION
//   max_concurrent_builds = 2        # CAIRN_MAX_CONCURRENT_BUILDS
//   max_snapshots = 30               # CAIRN_MAX_SNAPSHOTS (per-organization default quota)
//   context_ttl_days = 7             # CAIRN_CONTEXT_TTL_DAYS: build contexts older than this
//                                    # are deleted unless a pending build needs them; 0 = never
//   entrypoint_check = 1.5           # CAIRN_ENTRYPOINT_CHECK: seconds a built snapshot's
//                                    # entrypoint must stay up before `active`; 0 = no check
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <toml++/toml.h>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>

#include "cairn/api/metrics.h"
#include "cairn/api/s3.h"
#include "cairn/api/server.h"
#include "cairn/api/snapshot_routes.h"
#include "cairn/build/builder.h"
#include "cairn/cli/command.h"
#include "cairn/common/fs.h"
#include "cairn/common/time.h"
#include "cairn/meta/api_key.h"
#include "cairn/meta/sqlite_meta_store.h"
#include "cairn/oci/catalog.h"
#include "cairn/registry/client.h"
#include "cairn/registry/config.h"
#include "cairn/runtime/executor.h"
#include "cairn/service/engine_snapshot_builder.h"
#include "cairn/service/snapshot_service.h"
#include "cairn/service/store_gc.h"
#include "cairn/store/layer_store.h"
#include "cairn/store/local_blob_store.h"

namespace {

using namespace cairn;

struct ServeFlags {
  std::string listen;
  std::string public_url;
  std::string config;
  int io_threads = 0;
  std::string s3_region;
  int max_concurrent_builds = 0;
  int max_snapshots = 0;
  int context_ttl_days = -1;
  std::string entrypoint_check;
};

struct ServeConfig {
  std::string host = "127.0.0.1";
  std::uint16_t port = 3000;
  std::string public_url;
  int io_threads = 4;
  std::string s3_region = "us-east-1";
  int max_concurrent_builds = 2;
  //! Default per-organization snapshot quota (§6); an organization's own limit wins.
  int max_snapshots = 30;
  int context_ttl_days = 7;  //!< 0: build contexts are kept forever
  double entrypoint_check_s = 1.5;
};

std::optional<std::string> env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

Status parseListen(std::string_view text, ServeConfig& config) {
  std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) {
    return invalidArgument("--listen must be HOST:PORT, got \"" + std::string(text) + "\"");
  }
  std::string host(text.substr(0, colon));
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  unsigned long port = 0;
  for (char c : text.substr(colon + 1)) {
    if (c < '0' || c > '9' || port > 65535) {
      return invalidArgument("--listen port must be 0..65535, got \"" + std::string(text) + "\"");
    }
    port = port * 10 + static_cast<unsigned long>(c - '0');
  }
  if (port > 65535) {
    return invalidArgument("--listen port must be 0..65535, got \"" + std::string(text) + "\"");
  }
  config.host = host;
  config.port = static_cast<std::uint16_t>(port);
  return okStatus();
}

Result<int> parsePositive(std::string_view what, std::string_view text) {
  int value = 0;
  for (char c : text) {
    if (c < '0' || c > '9' || value > 10000000) {
      return invalidArgument(std::string(what) + " must be a positive integer, got \"" +
                             std::string(text) + "\"");
    }
    value = value * 10 + (c - '0');
  }
  if (value <= 0) {
    return invalidArgument(std::string(what) + " must be a positive integer, got \"" +
                           std::string(text) + "\"");
  }
  return value;
}

//! Seconds for --entrypoint-check: 0 (no check) up to 600.
Result<double> parseCheckSeconds(std::string_view what, double value) {
  if (!(value >= 0 && value <= 600)) {
    return invalidArgument(std::string(what) + " must be 0..600 seconds, got " +
                           std::to_string(value));
  }
  return value;
}
Result<double> parseCheckSeconds(std::string_view what, const std::string& text) {
  char* end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (text.empty() || end == nullptr || *end != '\0') {
    return invalidArgument(std::string(what) + " must be a number of seconds, got \"" + text +
                           "\"");
  }
  return parseCheckSeconds(what, value);
}

//! Lowest precedence first: the TOML file, then the environment, then flags.
Result<ServeConfig> resolveConfig(const ServeFlags& flags, const std::filesystem::path& data_dir) {
  ServeConfig config;
  std::filesystem::path file;
  if (!flags.config.empty()) {
    file = flags.config;
  } else if (auto e = env("CAIRN_CONFIG")) {
    file = *e;
  } else if (std::error_code ec; std::filesystem::exists(data_dir / "config.toml", ec)) {
    file = data_dir / "config.toml";
  }
  if (!file.empty()) {
    try {
      toml::table table = toml::parse_file(file.string());
      if (auto v = table["listen"].value<std::string>()) {
        CAIRN_RETURN_IF_ERROR(parseListen(*v, config));
      }
      if (auto v = table["public_url"].value<std::string>()) config.public_url = *v;
      if (auto v = table["io_threads"].value<std::int64_t>()) {
        if (*v <= 0 || *v > 256)
          return invalidArgument(file.string() + ": io_threads out of range");
        config.io_threads = static_cast<int>(*v);
      }
      if (auto v = table["s3_region"].value<std::string>()) config.s3_region = *v;
      if (auto v = table["max_snapshots"].value<std::int64_t>()) {
        if (*v <= 0 || *v > 100000000) {
          return invalidArgument(file.string() + ": max_snapshots out of range");
        }
        config.max_snapshots = static_cast<int>(*v);
      }
      if (auto v = table["max_concurrent_builds"].value<std::int64_t>()) {
        if (*v <= 0 || *v > 256) {
          return invalidArgument(file.string() + ": max_concurrent_builds out of range");
        }
        config.max_concurrent_builds = static_cast<int>(*v);
      }
      if (auto v = table["context_ttl_days"].value<std::int64_t>()) {
        if (*v < 0 || *v > 36500) {
          return invalidArgument(file.string() + ": context_ttl_days out of range (0..36500)");
        }
        config.context_ttl_days = static_cast<int>(*v);
      }
      if (auto v = table["entrypoint_check"].value<double>()) {
        CAIRN_ASSIGN_OR_RETURN(config.entrypoint_check_s,
                               parseCheckSeconds(file.string() + ": entrypoint_check", *v));
      }
    } catch (const toml::parse_error& e) {
      return invalidArgument("config file " + file.string() + ": " + std::string(e.description()) +
                             " at line " + std::to_string(e.source().begin.line));
    } catch (const std::exception& e) {
      return invalidArgument("config file " + file.string() + ": " + e.what());
    }
  }
  if (auto v = env("CAIRN_LISTEN")) CAIRN_RETURN_IF_ERROR(parseListen(*v, config));
  if (auto v = env("CAIRN_PUBLIC_URL")) config.public_url = *v;
  if (auto v = env("CAIRN_IO_THREADS")) {
    CAIRN_ASSIGN_OR_RETURN(config.io_threads, parsePositive("CAIRN_IO_THREADS", *v));
  }
  if (auto v = env("CAIRN_S3_REGION")) config.s3_region = *v;
  if (auto v = env("CAIRN_MAX_SNAPSHOTS")) {
    CAIRN_ASSIGN_OR_RETURN(config.max_snapshots, parsePositive("CAIRN_MAX_SNAPSHOTS", *v));
  }
  if (auto v = env("CAIRN_MAX_CONCURRENT_BUILDS")) {
    CAIRN_ASSIGN_OR_RETURN(config.max_concurrent_builds,
                           parsePositive("CAIRN_MAX_CONCURRENT_BUILDS", *v));
  }
  if (auto v = env("CAIRN_ENTRYPOINT_CHECK")) {
    CAIRN_ASSIGN_OR_RETURN(config.entrypoint_check_s,
                           parseCheckSeconds("CAIRN_ENTRYPOINT_CHECK", *v));
  }
  if (auto v = env("CAIRN_CONTEXT_TTL_DAYS")) {
    if (*v == "0") {
      config.context_ttl_days = 0;
    } else {
      CAIRN_ASSIGN_OR_RETURN(config.context_ttl_days, parsePositive("CAIRN_CONTEXT_TTL_DAYS", *v));
    }
  }
  if (!flags.listen.empty()) CAIRN_RETURN_IF_ERROR(parseListen(flags.listen, config));
  if (!flags.public_url.empty()) config.public_url = flags.public_url;
  if (flags.io_threads > 0) config.io_threads = flags.io_threads;
  if (!flags.s3_region.empty()) config.s3_region = flags.s3_region;
  if (flags.max_concurrent_builds > 0) config.max_concurrent_builds = flags.max_concurrent_builds;
  if (flags.max_snapshots > 0) config.max_snapshots = flags.max_snapshots;
  if (flags.context_ttl_days > 36500) {
    return invalidArgument("--context-ttl-days must be 0..36500, got " +
                           std::to_string(flags.context_ttl_days));
  }
  if (flags.context_ttl_days >= 0) config.context_ttl_days = flags.context_ttl_days;
  if (!flags.entrypoint_check.empty()) {
    CAIRN_ASSIGN_OR_RETURN(config.entrypoint_check_s,
                           parseCheckSeconds("--entrypoint-check", flags.entrypoint_check));
  }
  return config;
}

//! Stands in for the engine when no OCI runtime is usable: every build and pull fails with this
//! reason, so snapshots reach `error` (never hang in pending).
class NoEngineBuilder final : public service::SnapshotBuilder {
 public:
  static constexpr const char* kReason =
      "this cairn server has no usable OCI runtime (crun or runc, as root); builds and pulls "
      "are unavailable";
  Result<std::optional<service::BuiltImage>> findBuilt(const std::string&) override {
    return std::optional<service::BuiltImage>();
  }
  Result<service::BuiltImage> build(const service::SnapshotBuildJob&,
                                    build::LogSink& log) override {
    log.write(std::string("ERROR: ") + kReason + "\n");
    return unavailable(kReason);
  }
  Result<std::string> resolveDigest(const std::string&) override { return unavailable(kReason); }
  Result<service::BuiltImage> pull(const std::string&, const std::string&, const std::string&,
                                   build::LogSink&) override {
    return unavailable(kReason);
  }
  Status removeImage(const std::string&) override { return okStatus(); }
  Status collectGarbage() override { return okStatus(); }
  Status recover() override { return okStatus(); }
};

Status writeInitialKey(const std::filesystem::path& path, const std::string& key) {
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd.valid()) return errnoStatus(errno, "create " + tmp.string());
  std::string line = key + "\n";
  if (::write(fd.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size()) ||
      ::fsync(fd.get()) != 0) {
    return errnoStatus(errno, "write " + tmp.string());
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    return errnoStatus(errno, "rename to " + path.string());
  return okStatus();
}

Status serve(const cli::GlobalOptions& global, const ServeFlags& flags) {
  std::filesystem::path data_dir = cli::resolvedDataDir(global);
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec)
    return internalError("cannot create data directory " + data_dir.string() + ": " + ec.message());
  CAIRN_ASSIGN_OR_RETURN(ServeConfig config, resolveConfig(flags, data_dir));

  // Block the stop signals in every thread started from here on; main waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const Clock& clock = RealClock::instance();
  CAIRN_ASSIGN_OR_RETURN(auto store, meta::SqliteMetaStore::open(data_dir / "meta.db", clock));
  CAIRN_ASSIGN_OR_RETURN(std::optional<meta::IssuedApiKey> initial,
                         meta::bootstrapInitialApiKey(*store, "default"));
  if (initial) {
    CAIRN_RETURN_IF_ERROR(writeInitialKey(data_dir / "initial-api-key", initial->key));
    std::cout << "initial API key (shown once; also in " << (data_dir / "initial-api-key").string()
              << "): " << initial->key << std::endl;
  }

  // The S3 endpoint's object bodies are blobs too (deduplicated with everything else); objects
  // an older server kept as files under <data>/objects are moved in here.
  CAIRN_ASSIGN_OR_RETURN(auto blobs, store::LocalBlobStore::open(data_dir));
  CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<api::BlobObjectStore> objects_owned,
                         api::BlobObjectStore::open(data_dir / "objects", *blobs));
  api::BlobObjectStore* object_roots = objects_owned.get();
  std::shared_ptr<api::ObjectStore> objects = std::move(objects_owned);
  api::S3Options s3_options;
  s3_options.region = config.s3_region;
  api::ObjectStoreContextReader contexts(objects, s3_options.buckets.front());

  // The build engine over the local stores. Without an OCI runtime (not root, no crun or
  // runc) the server still serves the API; builds and pulls then fail with a clear reason.
  CAIRN_ASSIGN_OR_RETURN(auto layers, store::LayerStore::open(data_dir));
  CAIRN_ASSIGN_OR_RETURN(auto catalog, oci::ImageCatalog::open(data_dir));
  CAIRN_ASSIGN_OR_RETURN(auto registry_config, registry::RegistryConfig::loadDefault(data_dir, ""));
  registry::RegistryClient registry_client(registry_config);
  runtime::ExecutorOptions executor_options;
  executor_options.work_root = data_dir / "work" / "run";
  // Builds and entrypoint checks are background work: under their own top-level cgroup at a
  // fifth of an ordinary process's CPU weight, they yield to the API when both want the CPU (two
  // spinning builds had put its p99 at ~200 ms on 2 CPUs). `cairn run` keeps /cairn, unweighted.
  executor_options.cgroup_parent = "/cairn-serve";
  executor_options.cgroup_cpu_weight = 20;
  auto executor = runtime::Executor::create(executor_options);
  std::unique_ptr<build::Builder> engine;
  std::unique_ptr<service::SnapshotBuilder> engine_adapter;
  NoEngineBuilder no_engine;
  service::SnapshotBuilder* builder = &no_engine;
  if (!executor.ok()) {
    std::cerr << "warning: no OCI runtime, builds are disabled: " << executor.status().message()
              << std::endl;
  } else {
    build::BuilderOptions bo;
    bo.data_dir = data_dir;
    bo.blobs = blobs.get();
    bo.layers = layers.get();
    bo.catalog = catalog.get();
    bo.executor = executor->get();
    CAIRN_ASSIGN_OR_RETURN(engine, build::Builder::open(bo));
    service::EngineSnapshotBuilderOptions eo;
    eo.builder = engine.get();
    eo.catalog = catalog.get();
    eo.blobs = blobs.get();
    eo.registry = &registry_client;
    eo.executor = executor->get();  // entrypoint validation before `active`
    eo.layers = layers.get();
    eo.collect_blobs = true;  // the object store is the blob store's only other user
    eo.blob_roots = {object_roots};
    engine_adapter = std::make_unique<service::EngineSnapshotBuilder>(eo);
    builder = engine_adapter.get();
  }
  // /metrics: the service's series (builds by outcome, queue depth, store size; see
  // cairn/api/metrics.h); the server adds its HTTP series.
  auto metrics = std::make_shared<api::MetricsRegistry>();
  service::ServiceOptions service_options;
  service_options.data_dir = data_dir;
  service_options.max_concurrent_builds = config.max_concurrent_builds;
  service_options.max_snapshots = config.max_snapshots;
  service_options.entrypoint_stay_up =
      std::chrono::milliseconds(static_cast<std::int64_t>(config.entrypoint_check_s * 1000));
  service_options.on_build_finished = api::exportSnapshotMetrics(metrics, *store, {data_dir});
  service::SnapshotService service(service_options, *store, *builder, &contexts, clock);
  CAIRN_RETURN_IF_ERROR(service.start());
  // Old build contexts go (their bodies at the blob GC that follows); stopped before the stores.
  std::unique_ptr<api::ContextExpiry> context_expiry;
  if (config.context_ttl_days > 0) {
    api::ContextExpiry::Options expiry;
    expiry.bucket = s3_options.buckets.front();
    expiry.ttl = std::chrono::hours(24) * config.context_ttl_days;
    expiry.after_expired = [builder, &no_engine, &blobs, &catalog, object_roots] {
      if (builder != &no_engine) {
        (void)builder->collectGarbage();  // deferred while builds run; the next pass retries
        return;
      }
      // Without an engine nothing builds or pulls, so no lock is needed to sweep directly.
      service::StoreGcOptions gc;
      gc.blobs = blobs.get();
      gc.catalog = catalog.get();
      gc.roots = {object_roots};
      (void)service::collectStoreGarbage(gc);
    };
    context_expiry = std::make_unique<api::ContextExpiry>(*object_roots, *store, expiry);
  }

  auto minter = std::make_shared<api::CredentialMinter>(clock);
  api::Router router;
  api::SnapshotRoutesOptions routes_options;
  routes_options.public_url = config.public_url;
  routes_options.region = config.s3_region;
  routes_options.bucket = s3_options.buckets.front();
  routes_options.s3_prefix = s3_options.prefix;
  Status mounted =
      api::mountSnapshotRoutes(router, {*store, service, minter, clock}, routes_options);
  if (mounted.ok()) mounted = api::mountS3(router, s3_options, objects, minter);
  if (!mounted.ok()) {
    service.stop();
    return mounted;
  }
  api::ServerOptions server_options;
  server_options.host = config.host;
  server_options.port = config.port;
  server_options.io_threads = config.io_threads;
  server_options.openapi_json = api::snapshotOpenApiJson();
  Result<std::unique_ptr<api::Server>> server =
      api::Server::start(server_options, std::move(router), metrics);
  if (!server.ok()) {
    service.stop();
    return server.status();
  }
  std::cout << "listening on http://" << (*server)->address() << std::endl;

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  std::cerr << "cairn serve: signal " << signal_number
            << ", stopping (in-flight requests finish; running builds are recovered on restart)"
            << std::endl;
  (*server)->stop();
  server->reset();
  service.stop();
  return okStatus();
}

void registerServe(CLI::App& command, cli::GlobalOptions& options) {
  auto flags = std::make_shared<ServeFlags>();
  auto* cmd = &command;
  cmd->add_option("--listen", flags->listen,
                  "HOST:PORT (env CAIRN_LISTEN; default 127.0.0.1:3000)");
  cmd->add_option("--public-url", flags->public_url,
                  "Base URL clients reach the server at (env CAIRN_PUBLIC_URL)");
  cmd->add_option("--config", flags->config, "TOML config file (env CAIRN_CONFIG)");
  cmd->add_option("--io-threads", flags->io_threads, "HTTP I/O threads (env CAIRN_IO_THREADS)");
  cmd->add_option("--s3-region", flags->s3_region,
                  "Region of the S3 endpoint (env CAIRN_S3_REGION)");
  cmd->add_option("--max-snapshots", flags->max_snapshots,
                  "Default snapshot quota per organization (env CAIRN_MAX_SNAPSHOTS)");
  cmd->add_option("--max-concurrent-builds", flags->max_concurrent_builds,
                  "Builds run at once (env CAIRN_MAX_CONCURRENT_BUILDS)");
  cmd->add_option("--context-ttl-days", flags->context_ttl_days,
                  "Delete uploaded build contexts older than this many days; 0 = never (env "
                  "CAIRN_CONTEXT_TTL_DAYS; default 7)");
  cmd->add_option("--entrypoint-check", flags->entrypoint_check,
                  "Seconds a built snapshot's entrypoint must stay up in a sandbox before it is "
                  "active; 0 = no check (env CAIRN_ENTRYPOINT_CHECK; default 1.5)");
  cmd->callback([&options, flags] {
    Status s = serve(options, *flags);
    if (!s.ok()) {
      std::cerr << "cairn serve: " << s.message() << std::endl;
      cli::setExitCode(s.code() == StatusCode::kInvalidArgument ? 2 : 1);
    }
  });
}

CAIRN_REGISTER_SUBCOMMAND(100, "serve", "Run the Daytona-compatible snapshot server",
                          registerServe);

}  // namespace
