// JSON is nlohmann::json; parsing untrusted text goes through parseJson, which never throws.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

#include "cairn/common/status.h"

namespace cairn {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

//! InvalidArgument with the parser's position on malformed input; nesting deeper than
//! `max_depth` is rejected too (untrusted input must not exhaust the stack).
Result<Json> parseJson(std::string_view text, int max_depth = 256);
Result<OrderedJson> parseOrderedJson(std::string_view text, int max_depth = 256);

}  // namespace cairn
