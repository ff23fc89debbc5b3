// A small Prometheus registry: counters and histograms with labels, and gauges read through a
// callback when /metrics is scraped. The server records requests by route and status and their
// latency here; other areas add their own series (builds by outcome, queue depth, store size).
//
//   auto& builds = metrics.counter("cairn_builds_total", "Builds by outcome");
//   builds.inc({{"outcome", "success"}});
//   metrics.gauge("cairn_queue_depth", "Jobs waiting", [&] { return double(queue.size()); });
//
// exportSnapshotMetrics() adds the series `cairn serve` reports about its snapshot service.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace cairn::meta {
class MetaStore;
}

namespace cairn::api {

using Labels = std::map<std::string, std::string>;

class Counter {
 public:
  void inc(const Labels& labels = {}, double by = 1);
  double value(const Labels& labels = {}) const;

 private:
  friend class MetricsRegistry;
  mutable std::mutex mu_;
  std::map<Labels, double> values_;
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {}
  void observe(double value, const Labels& labels = {});
  std::uint64_t count(const Labels& labels = {}) const;

 private:
  friend class MetricsRegistry;
  struct Series {
    std::vector<std::uint64_t> buckets;  // per bound, not cumulative
    std::uint64_t count = 0;
    double sum = 0;
  };
  std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::map<Labels, Series> series_;
};

class MetricsRegistry {
 public:
  //! Returns the counter of that name, creating it on first use. Names follow Prometheus rules.
  Counter& counter(const std::string& name, const std::string& help);
  //! Bounds in seconds (or whatever unit the name says); a "+Inf" bucket is implied.
  Histogram& histogram(const std::string& name, const std::string& help,
                       std::vector<double> bounds);
  //! A gauge whose value is read at scrape time. Re-registering a name replaces the callback.
  void gauge(const std::string& name, const std::string& help, std::function<double()> read);

  //! The text exposition format (version 0.0.4).
  std::string render() const;

 private:
  struct Family {
    std::string help;
    std::string type;
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Histogram> histogram;
    std::function<double()> gauge;
  };
  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
};

//! Wraps `read` so that it runs at most once per `max_age`: in between, and while another
//! thread is running it, callers get the last value (0 before the first reading). For gauges
//! too costly to compute on every scrape. `max_age` 0 reads every time.
std::function<double()> cachedReading(std::function<double()> read,
                                      std::chrono::milliseconds max_age);

//! Bytes of the regular files under `dirs` (symlinks below them are not followed; a missing
//! directory counts 0; files that vanish during the walk are skipped). A stat per file: about
//! 2-7 µs each on this project's machines, so 10k blobs cost 20-70 ms.
std::uint64_t directoryBytes(const std::vector<std::filesystem::path>& dirs);

struct SnapshotMetricsOptions {
  std::filesystem::path data_dir;  //!< cairn_store_bytes sums its blobs/ and objects/
  //! cairn_store_bytes is a directory walk: done at most this often, on the scrape that finds
  //! the last value older than this (an idle server walks nothing).
  std::chrono::milliseconds store_size_max_age = std::chrono::seconds(30);
};

//! Called by the snapshot service when a build or pull ends (ServiceOptions::on_build_finished).
using BuildOutcomeRecorder = std::function<void(std::string_view kind, std::string_view outcome)>;

//! Registers on `metrics`:
//!   cairn_builds_total{kind="build"|"pull",outcome=…}  counter, fed by the returned recorder;
//!       the outcomes succeeded, failed, timed_out and cancelled start at 0
//!   cairn_queue_depth          jobs waiting for a worker (counted in `store` at scrape time)
//!   cairn_jobs_running         jobs being worked on
//!   cairn_snapshots_in_error   snapshots in error or build_failed
//!   cairn_store_bytes          bytes under <data_dir>/blobs and <data_dir>/objects (cached)
//! A gauge whose store query fails reads -1. `store` must outlive the registry's scrapes.
BuildOutcomeRecorder exportSnapshotMetrics(std::shared_ptr<MetricsRegistry> metrics,
                                           meta::MetaStore& store,
                                           const SnapshotMetricsOptions& options);

}  // namespace cairn::api
