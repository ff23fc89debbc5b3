#include "cairn/api/metrics.h"

#include <cmath>
#include <cstdio>

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

}  // namespace cairn::api
