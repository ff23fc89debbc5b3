// Arbitrary bytes → (auto-detected gzip/zstd/plain) tar → applyLayerTar into a temp dir. Beyond
// "no crash, no sanitizer report", the oracle is that nothing ever appears outside the target:
// a sibling directory and its sentinel file must stay exactly as they were.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "cairn/common/fs.h"
#include "cairn/layer/apply.h"
#include "cairn/layer/compression.h"

namespace fs = std::filesystem;
using namespace cairn;

namespace {

struct Env {
  fs::path base, root, outside;
};

Env& env() {
  static Env e = [] {
    char tmpl[] = "/tmp/layer-fuzz-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) std::abort();
    Env x{tmpl, fs::path(tmpl) / "root", fs::path(tmpl) / "outside"};
    fs::create_directories(x.outside);
    if (!writeFileDurable(x.outside / "sentinel", "untouched").ok()) std::abort();
    // A plain array: it outlives the static Env, whose destructor runs before this handler.
    static char base_copy[sizeof tmpl];
    std::memcpy(base_copy, tmpl, sizeof tmpl);
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(base_copy, ec);
    });
    return x;
  }();
  return e;
}

void checkNothingEscaped(const Env& e) {
  for (const auto& entry : fs::directory_iterator(e.base)) {
    std::string name = entry.path().filename().string();
    if (name != "root" && name != "outside") {
      std::fprintf(stderr, "ESCAPE: %s appeared beside the target\n", entry.path().c_str());
      std::abort();
    }
  }
  int n = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(e.outside))
    ++n;
  auto content = readFile(e.outside / "sentinel");
  if (n != 1 || !content.ok() || *content != "untouched") {
    std::fprintf(stderr, "ESCAPE: the sentinel directory was modified\n");
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Env& e = env();
  std::error_code ec;
  fs::remove_all(e.root, ec);
  fs::create_directories(e.root);

  layer::ApplyOptions options;
  std::uint8_t mode = size > 0 ? data[0] : 0;
  options.whiteouts = (mode & 1) ? layer::WhiteoutMode::kFlatten : layer::WhiteoutMode::kOverlay;
  options.devices = (mode & 2) ? layer::DevicePolicy::kAllow : layer::DevicePolicy::kSkip;
  options.preserve_owner = ::geteuid() == 0;
  options.max_entries = 2000;
  options.max_total_bytes = 4 << 20;
  options.max_path_length = 1024;

  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (size > 0) bytes.remove_prefix(1);
  layer::StringSource raw(bytes);
  auto tar = layer::makeAutoDecompressor(&raw);
  if (tar.ok()) (void)layer::applyLayerTar(**tar, e.root, options);
  checkNothingEscaped(e);
  // libFuzzer may leave through _Exit (no atexit): keep what is left behind tiny.
  fs::remove_all(e.root, ec);
  return 0;
}
