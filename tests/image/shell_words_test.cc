// Randomised parity of quote() and of the COPY word splitter with the shell-quote package the
// SDK uses: tests/node/shell_quote_parity.js prints shell-quote's results for seeded random
// strings full of quotes, escapes, `$`, globs, operators and non-ASCII characters.
#include <gtest/gtest.h>
#include <cstdio>
#include <filesystem>

#include "cairn/common/json.h"
#include "cairn/image/quote.h"
#include "cairn/testing/status_matchers.h"
#include "js_compat.h"

namespace cairn {
namespace {

const std::string kNodeDir = std::string(CAIRN_SOURCE_DIR) + "/tests/node";

Result<Json> runNode(int seed, int count) {
  std::string cmd = "node " + shellQuote(kNodeDir + "/shell_quote_parity.js") + " " +
                    std::to_string(seed) + " " + std::to_string(count);
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) return internalError("popen failed");
  std::string out;
  char buf[65536];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0)
    out.append(buf, n);
  if (::pclose(pipe) != 0) return internalError("node failed: " + out);
  return parseJson(out, 64);
}

class ShellQuoteParityTest : public ::testing::TestWithParam<int> {};

TEST_P(ShellQuoteParityTest, QuoteAndParseMatchShellQuote) {
  ASSERT_TRUE(std::filesystem::is_directory(kNodeDir + "/node_modules/shell-quote"))
      << kNodeDir << "/node_modules is missing: run scripts/install-deps";
  ASSERT_OK_AND_ASSIGN(Json cases, runNode(GetParam(), 2000));
  ASSERT_EQ(cases.size(), 2000u);
  int mismatches = 0;
  for (const Json& c : cases) {
    const std::string input = c["input"].get<std::string>();
    EXPECT_EQ(shellQuote(input), c["quoted"].get<std::string>()) << "input: " << Json(input).dump();
    if (c["words"].is_null()) continue;  // shell-quote throws ("Bad substitution")
    std::vector<image::js::ShellWord> ours = image::js::parseShellWords(input);
    Json got = Json::array();
    for (const auto& w : ours)
      got.push_back({{"text", w.text}, {"glob", w.glob}});
    if (got != c["words"] && ++mismatches <= 20) {
      ADD_FAILURE() << "input: " << Json(input).dump() << "\n  shell-quote: " << c["words"].dump()
                    << "\n  cairn:       " << got.dump();
    }
  }
  EXPECT_EQ(mismatches, 0);
}

INSTANTIATE_TEST_SUITE_P(Seeds, ShellQuoteParityTest, ::testing::Range(1, 6));

}  // namespace
}  // namespace cairn
