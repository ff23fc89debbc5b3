#include "cairn/common/json.h"

namespace cairn {
namespace {

// Rejects documents nested deeper than max_depth before nlohmann recurses into them.
bool depthWithin(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"')
      in_string = true;
    else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

template <typename J>
Result<J> parseImpl(std::string_view text, int max_depth) {
  if (!depthWithin(text, max_depth)) {
    return invalidArgument("JSON nested deeper than " + std::to_string(max_depth) + " levels");
  }
  J j = J::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    // Parse again with exceptions to get the parser's position and reason.
    try {
      J ignored = J::parse(text.begin(), text.end());
      (void)ignored;
    } catch (const nlohmann::json::exception& e) {
      // parse_error, but also out_of_range for numbers like 1e400 (found by
      // oci_manifest_fuzz): hostile input must never escape as an exception.
      std::string what = e.what();
      auto pos = what.find("parse error");
      return invalidArgument("invalid JSON: " +
                             (pos == std::string::npos ? what : what.substr(pos)));
    }
    return invalidArgument("invalid JSON");
  }
  return j;
}

}  // namespace

Result<Json> parseJson(std::string_view text, int max_depth) {
  return parseImpl<Json>(text, max_depth);
}
Result<OrderedJson> parseOrderedJson(std::string_view text, int max_depth) {
  return parseImpl<OrderedJson>(text, max_depth);
}

}  // namespace cairn
