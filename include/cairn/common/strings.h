// Small string helpers used across areas.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace cairn {

std::string_view trimSpace(std::string_view s);
std::string_view trimLeftSpace(std::string_view s);
std::string_view trimRightSpace(std::string_view s);
std::vector<std::string> splitString(std::string_view s, char sep);
std::string joinStrings(const std::vector<std::string>& parts, std::string_view sep);
std::string toLowerAscii(std::string_view s);
std::string toUpperAscii(std::string_view s);
bool equalsIgnoreCase(std::string_view a, std::string_view b);
//! Levenshtein distance, for "did you mean …" suggestions.
std::size_t editDistance(std::string_view a, std::string_view b);

}  // namespace cairn
