#include "cairn/common/curl_api.h"

#include <utility>

namespace cairn {
namespace {

// The soname of libcurl's ABI 4, the one every Debian/Ubuntu libcurl4* package provides
// (OpenSSL, GnuTLS and NSS flavours alike).
constexpr const char* kCurlSoname = "libcurl.so.4";

}  // namespace

Result<std::unique_ptr<LoadedCurl>> LoadedCurl::load(const std::string& soname) {
  CAIRN_ASSIGN_OR_RETURN(SharedLibrary library, SharedLibrary::open(soname, "libcurl4"));
  std::unique_ptr<LoadedCurl> loaded(new LoadedCurl(std::move(library)));
  const SharedLibrary& lib = loaded->library_;
  CurlApi& api = loaded->api_;
  constexpr std::string_view kHint = ": is it really libcurl 7.x or later?";
  CAIRN_RETURN_IF_ERROR(lib.resolve("curl_global_init", api.global_init, kHint));
  CAIRN_RETURN_IF_ERROR(lib.resolve("curl_easy_init", api.easy_init, kHint));
  CAIRN_RETURN_IF_ERROR(lib.resolve("curl_easy_setopt", api.easy_setopt, kHint));
  CAIRN_RETURN_IF_ERROR(lib.resolve("curl_easy_perform", api.easy_perform, kHint));
  CAIRN_RETURN_IF_ERROR(lib.resolve("curl_easy_getinfo", api.easy_getinfo, kHint));
  CAIRN_RETURN_IF_ERROR(lib.resolve("curl_easy_reset", api.easy_reset, kHint));
  CAIRN_RETURN_IF_ERROR(lib.resolve("curl_easy_cleanup", api.easy_cleanup, kHint));
  CAIRN_RETURN_IF_ERROR(lib.resolve("curl_easy_strerror", api.easy_strerror, kHint));
  CAIRN_RETURN_IF_ERROR(lib.resolve("curl_slist_append", api.slist_append, kHint));
  CAIRN_RETURN_IF_ERROR(lib.resolve("curl_slist_free_all", api.slist_free_all, kHint));
  CAIRN_RETURN_IF_ERROR(lib.resolve("curl_version", api.version, kHint));
  return loaded;
}

Result<const CurlApi*> curlApi() {
  // Loaded and initialized once (a function-local static: initialized once, thread-safely,
  // which also serializes curl_global_init, not thread-safe in every libcurl version) and never
  // unloaded or destroyed: easy handles may live until exit, and libcurl's global state must not
  // be torn down under them.
  static const auto* const loaded =
      new Result<std::unique_ptr<LoadedCurl>>([]() -> Result<std::unique_ptr<LoadedCurl>> {
        CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<LoadedCurl> curl, LoadedCurl::load(kCurlSoname));
        if (CURLcode code = curl->api().global_init(CURL_GLOBAL_DEFAULT); code != CURLE_OK) {
          return failedPrecondition(std::string("curl_global_init failed: ") +
                                    curl->api().easy_strerror(code));
        }
        return curl;
      }());
  if (!loaded->ok()) return loaded->status();
  return &(**loaded)->api();
}

}  // namespace cairn
