#include "cairn/layer/archive_api.h"

#include <utility>

namespace cairn::layer {
namespace {

// The soname of libarchive's ABI 13, the one Debian's and Ubuntu's libarchive13 (3.x) provide.
constexpr const char* kArchiveSoname = "libarchive.so.13";

}  // namespace

Result<std::unique_ptr<LoadedArchive>> LoadedArchive::load(const std::string& soname) {
  CAIRN_ASSIGN_OR_RETURN(SharedLibrary library, SharedLibrary::open(soname, "libarchive13"));
  std::unique_ptr<LoadedArchive> loaded(new LoadedArchive(std::move(library)));
  const SharedLibrary& lib = loaded->library_;
  ArchiveApi& api = loaded->api_;
  // archive_write_open2, the newest function in the table, appeared in libarchive 3.6.0.
  constexpr std::string_view kHint = ": is it really libarchive 3.6 or later?";
#define CAIRN_LAYER_ARCHIVE_RESOLVE(name) \
  CAIRN_RETURN_IF_ERROR(lib.resolve("archive_" #name, api.name, kHint));
  CAIRN_LAYER_ARCHIVE_FUNCTIONS(CAIRN_LAYER_ARCHIVE_RESOLVE)
#undef CAIRN_LAYER_ARCHIVE_RESOLVE
  return loaded;
}

Result<const ArchiveApi*> archiveApi() {
  // Loaded once (a function-local static: initialized once, thread-safely) and never unloaded:
  // readers, writers and entries may live until exit, so the table is never destroyed either
  // (no destructor runs at exit while another thread still applies a layer).
  static const auto* const loaded =
      new Result<std::unique_ptr<LoadedArchive>>(LoadedArchive::load(kArchiveSoname));
  if (!loaded->ok()) return loaded->status();
  return &(**loaded)->api();
}

}  // namespace cairn::layer
