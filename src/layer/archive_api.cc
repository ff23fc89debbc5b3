#include "cairn/layer/archive_api.h"

#include <dlfcn.h>

#include <mutex>
#include <utility>

namespace cairn::layer {
namespace {

// The soname of libarchive's ABI 13, the one Debian's and Ubuntu's libarchive13 (3.x) provide.
constexpr const char* kArchiveSoname = "libarchive.so.13";

// Looks `name` up in `handle` and stores it in `fn`, typed as the field it fills.
template <typename Fn>
Status resolve(void* handle, const std::string& soname, const char* name, Fn& fn) {
  dlerror();
  void* sym = dlsym(handle, name);
  if (sym == nullptr) {
    const char* why = dlerror();
    // archive_write_open2, the newest function in the table, appeared in libarchive 3.6.0.
    return failedPrecondition(soname + " has no " + name + " (" +
                              (why != nullptr ? why : "null symbol") +
                              "): is it really libarchive 3.6 or later?");
  }
  // POSIX guarantees that a data pointer from dlsym converts to a function pointer.
  fn = reinterpret_cast<Fn>(sym);
  return okStatus();
}

}  // namespace

Result<std::unique_ptr<LoadedArchive>> LoadedArchive::load(const std::string& soname) {
  // RTLD_LOCAL: libarchive's symbols serve only this table, never resolve other libraries'
  // names. RTLD_NODELETE: libxml2 and ICU (libarchive's chain) allocate in their constructors
  // and keep the memory in static data; unmapping them on dlclose would strand it
  // (LeakSanitizer reports it as leaked). Nothing gains from unloading a library a process used.
  void* handle = dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (handle == nullptr) {
    const char* why = dlerror();
    return failedPrecondition(soname + " not found: install libarchive13 (" +
                              (why != nullptr ? why : "dlopen failed") + ")");
  }
  std::unique_ptr<LoadedArchive> loaded(new LoadedArchive());
  loaded->handle_ = handle;
  ArchiveApi& api = loaded->api_;
#define CAIRN_LAYER_ARCHIVE_RESOLVE(name) \
  CAIRN_RETURN_IF_ERROR(resolve(handle, soname, "archive_" #name, api.name));
  CAIRN_LAYER_ARCHIVE_FUNCTIONS(CAIRN_LAYER_ARCHIVE_RESOLVE)
#undef CAIRN_LAYER_ARCHIVE_RESOLVE
  return loaded;
}

LoadedArchive::~LoadedArchive() {
  if (handle_ != nullptr) dlclose(handle_);
}

Result<const ArchiveApi*> archiveApi() {
  // Loaded once and never unloaded: readers, writers and entries may live until exit. The
  // leaked objects are intentional (no destructor runs at exit while another thread still
  // applies a layer).
  static std::once_flag once;
  static LoadedArchive* loaded = nullptr;
  static Status* error = nullptr;
  std::call_once(once, [] {
    auto result = LoadedArchive::load(kArchiveSoname);
    if (!result.ok()) {
      error = new Status(result.status());
      return;
    }
    loaded = result->release();
  });
  if (error != nullptr) return *error;
  return &loaded->api();
}

}  // namespace cairn::layer
