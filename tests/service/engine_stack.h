// The engine a SnapshotService runs on in `cairn serve`, opened over a temp data directory for
// the service's engine tests: blob store, layer store, image catalog, executor, build::Builder,
// EngineSnapshotBuilder and the SQLite meta store, wired as serve_command.cc wires them. What
// differs between tests (a seeded catalog, a cache budget, entrypoint validation, blob GC roots)
// goes through the Options hooks, which run with the members opened so far.
//
// A fixture inherits it beside ::testing::Test and opens it in SetUp (the engine mounts
// overlayfs, so the fixture skips first when not root):
//
//   class MyTest : public ::testing::Test, protected EngineStack {
//     void SetUp() override {
//       ASSERT_OK(openEngineStack({.temp_name = "my-test"}));
//       service_ = std::make_unique<SnapshotService>(options, *store_, *engine_, …);
//     }
//   };
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "cairn/build/builder.h"
#include "cairn/common/fs.h"
#include "cairn/common/status.h"
#include "cairn/common/time.h"
#include "cairn/meta/sqlite_meta_store.h"
#include "cairn/oci/catalog.h"
#include "cairn/runtime/executor.h"
#include "cairn/service/engine_snapshot_builder.h"
#include "cairn/store/layer_store.h"
#include "cairn/store/local_blob_store.h"

namespace cairn::service {

class EngineStack {
 protected:
  struct Options {
    std::string temp_name = "engine-stack";  //!< prefix of the temp dir
    //! The runtime's state under <tmp>/state instead of the shared /run/cairn (and its seccomp
    //! filter cache under <tmp>/seccomp-cache), so a test can check that no container of its
    //! own was left.
    bool private_state_root = false;
    //! Runs once the stores are open, before the executor and the builder: seeds the catalog.
    std::function<Status()> seed = nullptr;
    //! Adjusts the builder's options (builder, blobs, layers, catalog, executor are set).
    std::function<void(build::BuilderOptions&)> builder = nullptr;
    //! Adjusts the engine's options (builder, catalog and blobs are set).
    std::function<void(EngineSnapshotBuilderOptions&)> engine = nullptr;
  };

  //! Opens everything under a new temp dir, data in <tmp>/data. Members stay null on error.
  Status openEngineStack(const Options& options) {
    CAIRN_ASSIGN_OR_RETURN(TempDir dir, TempDir::create(options.temp_name));
    tmp_ = std::make_unique<TempDir>(std::move(dir));
    data_ = tmp_->path() / "data";
    std::filesystem::create_directories(data_);
    CAIRN_ASSIGN_OR_RETURN(blobs_, store::LocalBlobStore::open(data_));
    CAIRN_ASSIGN_OR_RETURN(layers_, store::LayerStore::open(data_));
    CAIRN_ASSIGN_OR_RETURN(catalog_, oci::ImageCatalog::open(data_));
    if (options.seed) CAIRN_RETURN_IF_ERROR(options.seed());
    runtime::ExecutorOptions eo;
    eo.work_root = data_ / "work" / "run";
    if (options.private_state_root) {
      eo.state_root = tmp_->path() / "state";
      // Beside it, not in it (the default): the state root then holds containers only.
      eo.seccomp_cache_dir = tmp_->path() / "seccomp-cache";
    }
    CAIRN_ASSIGN_OR_RETURN(executor_, runtime::Executor::create(eo));
    build::BuilderOptions bo;
    bo.data_dir = data_;
    bo.blobs = blobs_.get();
    bo.layers = layers_.get();
    bo.catalog = catalog_.get();
    bo.executor = executor_.get();
    if (options.builder) options.builder(bo);
    CAIRN_ASSIGN_OR_RETURN(builder_, build::Builder::open(bo));
    EngineSnapshotBuilderOptions so;
    so.builder = builder_.get();
    so.catalog = catalog_.get();
    so.blobs = blobs_.get();
    if (options.engine) options.engine(so);
    engine_ = std::make_unique<EngineSnapshotBuilder>(so);
    CAIRN_ASSIGN_OR_RETURN(store_,
                           meta::SqliteMetaStore::open(data_ / "meta.db", RealClock::instance()));
    return okStatus();
  }

  // Declared in the order they are opened, so they close in reverse (the temp dir last).
  std::unique_ptr<TempDir> tmp_;
  std::filesystem::path data_;
  std::unique_ptr<store::LocalBlobStore> blobs_;
  std::unique_ptr<store::LayerStore> layers_;
  std::unique_ptr<oci::ImageCatalog> catalog_;
  std::unique_ptr<runtime::Executor> executor_;
  std::unique_ptr<build::Builder> builder_;
  std::unique_ptr<EngineSnapshotBuilder> engine_;
  std::unique_ptr<meta::SqliteMetaStore> store_;
};

}  // namespace cairn::service
