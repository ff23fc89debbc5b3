#include "cairn/api/router.h"

#include <algorithm>

#include "cairn/common/strings.h"

namespace cairn::api {
namespace {

std::vector<std::string_view> splitPath(std::string_view path) {
  std::vector<std::string_view> out;
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  std::size_t pos = 0;
  while (true) {
    std::size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) {
      out.push_back(path.substr(pos));
      break;
    }
    out.push_back(path.substr(pos, slash - pos));
    pos = slash + 1;
  }
  return out;
}

}  // namespace

Status Router::add(std::string method, std::string_view pattern, Handler handler,
                   RouteOptions options) {
  if (pattern.empty() || pattern.front() != '/') {
    return invalidArgument("route pattern must start with '/': \"" + std::string(pattern) + "\"");
  }
  Route route;
  route.method = toUpperAscii(method);
  route.pattern = pattern;
  route.handler = std::move(handler);
  route.options = options;
  std::vector<std::string_view> parts = splitPath(pattern);
  for (std::size_t i = 0; i < parts.size(); ++i) {
    std::string_view p = parts[i];
    if (!p.empty() && p.front() == '{') {
      if (p.size() < 3 || p.back() != '}') {
        return invalidArgument("malformed parameter \"" + std::string(p) + "\" in route \"" +
                               std::string(pattern) + "\"");
      }
      std::string_view name = p.substr(1, p.size() - 2);
      if (name.back() == '+') {
        if (i + 1 != parts.size() || name.size() < 2) {
          return invalidArgument("a rest parameter must be the last segment of route \"" +
                                 std::string(pattern) + "\"");
        }
        route.segments.push_back(
            {Segment::Kind::kRest, std::string(name.substr(0, name.size() - 1))});
      } else {
        route.segments.push_back({Segment::Kind::kParam, std::string(name)});
      }
    } else {
      if (p.find_first_of("{}") != std::string_view::npos) {
        return invalidArgument("malformed segment \"" + std::string(p) + "\" in route \"" +
                               std::string(pattern) + "\"");
      }
      route.segments.push_back({Segment::Kind::kLiteral, std::string(p)});
    }
  }
  routes_.push_back(std::move(route));
  return okStatus();
}

Router::Match Router::match(std::string_view method, std::string_view raw_path,
                            std::map<std::string, std::string>& params) const {
  Match result;
  std::vector<std::string_view> parts = splitPath(raw_path);
  std::vector<std::string> decoded;
  decoded.reserve(parts.size());
  for (std::string_view p : parts) {
    Result<std::string> d = percentDecode(p);
    if (!d.ok()) {
      result.status = 400;
      result.error = d.status().message();
      return result;
    }
    decoded.push_back(std::move(*d));
  }

  // Score: more literal segments first, so "/api/snapshots/{id}/activate" beats a rest route
  // and "/healthz" beats "/{bucket}".
  const Route* best = nullptr;
  int best_score = -1;
  bool path_matched = false;
  std::map<std::string, std::string> best_params;
  for (const Route& route : routes_) {
    std::map<std::string, std::string> got;
    int score = 0;
    bool ok = true;
    std::size_t i = 0;
    for (; i < route.segments.size() && ok; ++i) {
      const Segment& seg = route.segments[i];
      if (seg.kind == Segment::Kind::kRest) {
        if (i >= decoded.size() || (i + 1 == decoded.size() && decoded[i].empty())) {
          ok = false;
          break;
        }
        std::string rest;
        for (std::size_t j = i; j < decoded.size(); ++j) {
          if (j > i) rest.push_back('/');
          rest += decoded[j];
        }
        got[seg.text] = std::move(rest);
        i = decoded.size();
        break;
      }
      if (i >= decoded.size()) {
        ok = false;
        break;
      }
      if (seg.kind == Segment::Kind::kLiteral) {
        if (decoded[i] != seg.text) ok = false;
        score += 2;
      } else {
        if (decoded[i].empty()) ok = false;
        got[seg.text] = decoded[i];
        score += 1;
      }
    }
    if (!ok || i != decoded.size()) continue;
    path_matched = true;
    if (route.method != "*" && route.method != method) continue;
    if (score > best_score) {
      best = &route;
      best_score = score;
      best_params = std::move(got);
    }
  }
  if (!best) {
    result.status = path_matched ? 405 : 404;
    result.error = path_matched ? "Cannot " + std::string(method) + " " + std::string(raw_path)
                                : "Cannot " + std::string(method) + " " + std::string(raw_path);
    return result;
  }
  params = std::move(best_params);
  result.handler = &best->handler;
  result.options = &best->options;
  result.pattern = best->pattern;
  return result;
}

}  // namespace cairn::api
