// A small Prometheus registry: counters and histograms with labels, and gauges read through a
// callback when /metrics is scraped. The server records requests by route and status and their
// latency here; other areas add their own series (builds by outcome, queue depth, store size).
//
//   auto& builds = metrics.counter("cairn_builds_total", "Builds by outcome");
//   builds.inc({{"outcome", "success"}});
//   metrics.gauge("cairn_queue_depth", "Jobs waiting", [&] { return double(queue.size()); });
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

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

}  // namespace cairn::api
