#include "cairn/api/metrics.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <optional>

#include "cairn/meta/meta_store.h"

namespace cairn::api {
namespace {

std::string escapeLabel(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string labelText(const Labels& labels, const std::string& extra_key = {},
                      const std::string& extra_value = {}) {
  if (labels.empty() && extra_key.empty()) return "";
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out.push_back(',');
    first = false;
    out += k + "=\"" + escapeLabel(v) + "\"";
  }
  if (!extra_key.empty()) {
    if (!first) out.push_back(',');
    out += extra_key + "=\"" + extra_value + "\"";
  }
  out.push_back('}');
  return out;
}

std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

}  // namespace

void Counter::inc(const Labels& labels, double by) {
  std::lock_guard lock(mu_);
  values_[labels] += by;
}

double Counter::value(const Labels& labels) const {
  std::lock_guard lock(mu_);
  auto it = values_.find(labels);
  return it == values_.end() ? 0 : it->second;
}

void Histogram::observe(double value, const Labels& labels) {
  std::lock_guard lock(mu_);
  Series& s = series_[labels];
  if (s.buckets.empty()) s.buckets.assign(bounds_.size(), 0);
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    if (value <= bounds_[i]) {
      ++s.buckets[i];
      break;
    }
  }
  ++s.count;
  s.sum += value;
}

std::uint64_t Histogram::count(const Labels& labels) const {
  std::lock_guard lock(mu_);
  auto it = series_.find(labels);
  return it == series_.end() ? 0 : it->second.count;
}

Counter& MetricsRegistry::counter(const std::string& name, const std::string& help) {
  std::lock_guard lock(mu_);
  Family& f = families_[name];
  if (!f.counter) {
    f.help = help;
    f.type = "counter";
    f.counter = std::make_unique<Counter>();
  }
  return *f.counter;
}

Histogram& MetricsRegistry::histogram(const std::string& name, const std::string& help,
                                      std::vector<double> bounds) {
  std::lock_guard lock(mu_);
  Family& f = families_[name];
  if (!f.histogram) {
    f.help = help;
    f.type = "histogram";
    f.histogram = std::make_unique<Histogram>(std::move(bounds));
  }
  return *f.histogram;
}

void MetricsRegistry::gauge(const std::string& name, const std::string& help,
                            std::function<double()> read) {
  std::lock_guard lock(mu_);
  Family& f = families_[name];
  f.help = help;
  f.type = "gauge";
  f.gauge = std::move(read);
}

std::string MetricsRegistry::render() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    out += "# HELP " + name + " " + f.help + "\n";
    out += "# TYPE " + name + " " + f.type + "\n";
    if (f.counter) {
      std::lock_guard l2(f.counter->mu_);
      for (const auto& [labels, v] : f.counter->values_) {
        out += name + labelText(labels) + " " + number(v) + "\n";
      }
    } else if (f.histogram) {
      const Histogram& h = *f.histogram;
      std::lock_guard l2(h.mu_);
      for (const auto& [labels, s] : h.series_) {
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i < h.bounds_.size(); ++i) {
          cumulative += s.buckets[i];
          out += name + "_bucket" + labelText(labels, "le", number(h.bounds_[i])) + " " +
                 std::to_string(cumulative) + "\n";
        }
        out += name + "_bucket" + labelText(labels, "le", "+Inf") + " " + std::to_string(s.count) +
               "\n";
        out += name + "_sum" + labelText(labels) + " " + number(s.sum) + "\n";
        out += name + "_count" + labelText(labels) + " " + std::to_string(s.count) + "\n";
      }
    } else if (f.gauge) {
      out += name + " " + number(f.gauge()) + "\n";
    }
  }
  return out;
}

std::function<double()> cachedReading(std::function<double()> read,
                                      std::chrono::milliseconds max_age) {
  struct Cache {
    std::function<double()> read;
    std::chrono::milliseconds max_age;
    std::mutex compute_mu;  // one reading at a time; others take the last value meanwhile
    std::mutex value_mu;
    double value = 0;
    std::optional<std::chrono::steady_clock::time_point> read_at;
  };
  auto cache = std::make_shared<Cache>();
  cache->read = std::move(read);
  cache->max_age = max_age;
  return [cache] {
    auto fresh = [&] {
      std::lock_guard lock(cache->value_mu);
      return cache->read_at && std::chrono::steady_clock::now() - *cache->read_at < cache->max_age;
    };
    auto last = [&] {
      std::lock_guard lock(cache->value_mu);
      return cache->value;
    };
    if (fresh()) return last();
    std::unique_lock compute(cache->compute_mu, std::try_to_lock);
    if (!compute.owns_lock()) return last();
    double v = cache->read();
    std::lock_guard lock(cache->value_mu);
    cache->value = v;
    cache->read_at = std::chrono::steady_clock::now();
    return v;
  };
}

// One open() per directory and an fstatat() relative to it per entry (no path resolution per
// file), breadth first with one directory open at a time: object keys may nest deeply. About
// 3x faster than std::filesystem's iterator here (10k blobs: 20-70 ms against 90-290 ms).
std::uint64_t directoryBytes(const std::vector<std::filesystem::path>& dirs) {
  std::uint64_t total = 0;
  std::vector<std::filesystem::path> pending(dirs.rbegin(), dirs.rend());
  while (!pending.empty()) {
    std::filesystem::path dir = std::move(pending.back());
    pending.pop_back();
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) continue;  // missing, or removed during the walk
    DIR* d = ::fdopendir(fd);
    if (d == nullptr) {
      ::close(fd);
      continue;
    }
    while (const dirent* e = ::readdir(d)) {
      std::string_view name = e->d_name;
      if (name == "." || name == "..") continue;
      unsigned char type = e->d_type;
      if (type == DT_REG || type == DT_UNKNOWN) {
        struct stat st {};
        if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        if (S_ISREG(st.st_mode)) {
          total += static_cast<std::uint64_t>(st.st_size);
          continue;
        }
        if (S_ISDIR(st.st_mode)) type = DT_DIR;
      }
      if (type == DT_DIR) pending.push_back(dir / e->d_name);  // symlinks are not followed
    }
    ::closedir(d);
  }
  return total;
}

BuildOutcomeRecorder exportSnapshotMetrics(std::shared_ptr<MetricsRegistry> metrics,
                                           meta::MetaStore& store,
                                           const SnapshotMetricsOptions& options) {
  meta::MetaStore* s = &store;
  metrics->gauge("cairn_queue_depth", "Jobs waiting for a worker", [s] {
    Result<std::int64_t> n = s->countJobs(meta::JobState::kQueued);
    return n.ok() ? static_cast<double>(*n) : -1.0;
  });
  metrics->gauge("cairn_jobs_running", "Jobs being worked on", [s] {
    Result<std::int64_t> n = s->countJobs(meta::JobState::kRunning);
    return n.ok() ? static_cast<double>(*n) : -1.0;
  });
  metrics->gauge("cairn_snapshots_in_error", "Snapshots in the error state", [s] {
    meta::SnapshotFilter filter;
    filter.states = {meta::SnapshotState::kError, meta::SnapshotState::kBuildFailed};
    filter.limit = 1000000;
    Result<std::vector<meta::Snapshot>> found = s->findSnapshots(filter);
    return found.ok() ? static_cast<double>(found->size()) : -1.0;
  });
  std::vector<std::filesystem::path> dirs = {options.data_dir / "blobs",
                                             options.data_dir / "objects"};
  metrics->gauge("cairn_store_bytes",
                 "Bytes under the data directory's blobs/ and objects/ (walked at most every " +
                     std::to_string(options.store_size_max_age.count()) + " ms)",
                 cachedReading([dirs] { return static_cast<double>(directoryBytes(dirs)); },
                               options.store_size_max_age));

  Counter& builds =
      metrics->counter("cairn_builds_total", "Snapshot builds and pulls by how they ended");
  for (const char* kind : {"build", "pull"}) {
    for (const char* outcome : {"succeeded", "failed", "timed_out", "cancelled"}) {
      builds.inc({{"kind", kind}, {"outcome", outcome}}, 0);
    }
  }
  // The recorder keeps the registry (and so the counter) alive as long as the service has it.
  return [metrics, &builds](std::string_view kind, std::string_view outcome) {
    builds.inc({{"kind", std::string(kind)}, {"outcome", std::string(outcome)}});
  };
}

}  // namespace cairn::api
