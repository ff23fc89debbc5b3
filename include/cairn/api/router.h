// Routes a request to a handler by method and path pattern.
//
// Patterns are literal segments and parameters: "/api/snapshots/{idOrName}" matches one
// segment, percent-decoded on its own, so "%2F" inside it is part of the value, not a separator
// ("ubuntu%2Fpython%3A3.12" → "ubuntu/python:3.12"). A last parameter written "{key+}" takes
// the rest of the path (slashes included, each segment decoded): S3 object keys. Literal
// segments win over parameters. No match → 404; a path matching only under other methods → 405.
//
//   router.add("GET", "/api/snapshots/{idOrName}", [&](Request& r) {
//     return getSnapshot(r.param("idOrName"));
//   });
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/api/http.h"

namespace cairn::api {

using Handler = std::function<Response(Request&)>;

//! Builds the body of an error the server itself raises for a matched route (413 for a body
//! over the limit, 400 for a bad query string), for routes whose clients expect something other
//! than the Daytona JSON error (the S3 endpoint answers with S3 XML).
using ErrorFormatter =
    std::function<Response(const Request& request, int status, std::string_view message)>;

struct RouteOptions {
  RouteOptions() = default;
  explicit RouteOptions(std::size_t max_body) : max_body_bytes(max_body) {}

  //! Largest request body this route accepts (413 beyond it); 0 = the server's default.
  std::size_t max_body_bytes = 0;
  //! Empty = errorResponse() (the Daytona JSON body).
  ErrorFormatter error_formatter;
};

class Router {
 public:
  //! Registers a route; a malformed pattern ("{x" or a "{x+}" not at the end) is
  //! InvalidArgument. Method "*" matches any method.
  Status add(std::string method, std::string_view pattern, Handler handler,
             RouteOptions options = {});

  struct Match {
    const Handler* handler = nullptr;
    const RouteOptions* options = nullptr;
    std::string pattern;
    int status = 0;  // 0 on success, else 400 (bad escape), 404 or 405
    std::string error;
  };
  //! Matches a raw (percent-encoded) path and fills `params` with decoded values.
  Match match(std::string_view method, std::string_view raw_path,
              std::map<std::string, std::string>& params) const;

 private:
  struct Segment {
    enum class Kind { kLiteral, kParam, kRest } kind;
    std::string text;  // literal text or parameter name
  };
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<Segment> segments;
    Handler handler;
    RouteOptions options;
  };
  std::vector<Route> routes_;
};

}  // namespace cairn::api
