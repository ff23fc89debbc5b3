#include "cairn/common/curl_api.h"

#include <dlfcn.h>

#include <mutex>
#include <utility>

namespace cairn {
namespace {

// The soname of libcurl's ABI 4, the one every Debian/Ubuntu libcurl4* package provides
// (OpenSSL, GnuTLS and NSS flavours alike).
constexpr const char* kCurlSoname = "libcurl.so.4";

// Looks `name` up in `handle` and stores it in `fn`, typed as the field it fills.
template <typename Fn>
Status resolve(void* handle, const std::string& soname, const char* name, Fn& fn) {
  dlerror();
  void* sym = dlsym(handle, name);
  if (sym == nullptr) {
    const char* why = dlerror();
    return failedPrecondition(soname + " has no " + name + " (" +
                              (why != nullptr ? why : "null symbol") +
                              "): is it really libcurl 7.x or later?");
  }
  // POSIX guarantees that a data pointer from dlsym converts to a function pointer.
  fn = reinterpret_cast<Fn>(sym);
  return okStatus();
}

}  // namespace

Result<std::unique_ptr<LoadedCurl>> LoadedCurl::load(const std::string& soname) {
  // RTLD_LOCAL: libcurl's symbols serve only this table, never resolve other libraries' names.
  // RTLD_NODELETE: libraries of libcurl's chain (gnutls, krb5, ...) allocate in their
  // constructors and keep the memory in static data; unmapping them on dlclose would strand it
  // (LeakSanitizer reports it as leaked). Nothing gains from unloading a library a process used.
  void* handle = dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (handle == nullptr) {
    const char* why = dlerror();
    return failedPrecondition(soname + " not found: install libcurl4 (" +
                              (why != nullptr ? why : "dlopen failed") + ")");
  }
  std::unique_ptr<LoadedCurl> loaded(new LoadedCurl());
  loaded->handle_ = handle;
  CurlApi& api = loaded->api_;
  CAIRN_RETURN_IF_ERROR(resolve(handle, soname, "curl_global_init", api.global_init));
  CAIRN_RETURN_IF_ERROR(resolve(handle, soname, "curl_easy_init", api.easy_init));
  CAIRN_RETURN_IF_ERROR(resolve(handle, soname, "curl_easy_setopt", api.easy_setopt));
  CAIRN_RETURN_IF_ERROR(resolve(handle, soname, "curl_easy_perform", api.easy_perform));
  CAIRN_RETURN_IF_ERROR(resolve(handle, soname, "curl_easy_getinfo", api.easy_getinfo));
  CAIRN_RETURN_IF_ERROR(resolve(handle, soname, "curl_easy_reset", api.easy_reset));
  CAIRN_RETURN_IF_ERROR(resolve(handle, soname, "curl_easy_cleanup", api.easy_cleanup));
  CAIRN_RETURN_IF_ERROR(resolve(handle, soname, "curl_easy_strerror", api.easy_strerror));
  CAIRN_RETURN_IF_ERROR(resolve(handle, soname, "curl_slist_append", api.slist_append));
  CAIRN_RETURN_IF_ERROR(resolve(handle, soname, "curl_slist_free_all", api.slist_free_all));
  CAIRN_RETURN_IF_ERROR(resolve(handle, soname, "curl_version", api.version));
  return loaded;
}

LoadedCurl::~LoadedCurl() {
  if (handle_ != nullptr) dlclose(handle_);
}

Result<const CurlApi*> curlApi() {
  // Loaded once and never unloaded: easy handles may live until exit, and libcurl's global
  // state must not be torn down under them.
  static std::once_flag once;
  static LoadedCurl* loaded = nullptr;
  static Status* error = nullptr;
  std::call_once(once, [] {
    auto result = LoadedCurl::load(kCurlSoname);
    if (!result.ok()) {
      error = new Status(result.status());
      return;
    }
    // curl_global_init is not thread-safe in every libcurl version: call_once serializes it.
    if (CURLcode code = (*result)->api().global_init(CURL_GLOBAL_DEFAULT); code != CURLE_OK) {
      error = new Status(failedPrecondition(std::string("curl_global_init failed: ") +
                                            (*result)->api().easy_strerror(code)));
      return;
    }
    loaded = result->release();
  });
  if (error != nullptr) return *error;
  return &loaded->api();
}

}  // namespace cairn
