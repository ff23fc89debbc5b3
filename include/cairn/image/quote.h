// Shell quoting exactly as the `shell-quote` package's quote() (releases >= 1.11) does it, which
// is what the TypeScript SDK puts into `pipInstall`, `env` and `workdir` lines (spec §3.6).
//
//   shellQuote("requests>=2.0")  // requests\>\=2.0
//   shellQuote("it's!")          // 'it'"'"'s!'
//   shellQuote({"a b", "c"})     // 'a b' c
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace cairn {

//! One string, quoted so that a POSIX shell reads it back as one word.
std::string shellQuote(std::string_view s);

//! Each item quoted, joined by single spaces (quote([...]) in JavaScript).
std::string shellQuote(const std::vector<std::string>& items);

}  // namespace cairn
