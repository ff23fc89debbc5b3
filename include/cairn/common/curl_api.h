// libcurl, loaded on first use instead of at program start.
//
// Linking libcurl makes every start of the `cairn` binary map it and its dependency chain (TLS,
// Kerberos, LDAP, RTMP, SSH, …): about 3 ms of a 6 ms `cairn version`, paid by commands such as
// `cairn run` that never make an HTTP request. Code that does make one asks for the functions
// here; the first call dlopen()s "libcurl.so.4" once (thread-safe) and runs curl_global_init.
// Only the include directories of libcurl are needed at build time, not the library.
//
//   CAIRN_ASSIGN_OR_RETURN(const cairn::CurlApi* curl, cairn::curlApi());
//   CURL* h = curl->easy_init();
//   curl->easy_setopt(h, CURLOPT_URL, url.c_str());  // arguments typed as libcurl documents
//
// easy_setopt and easy_getinfo are C variadic functions, so libcurl's compile-time option type
// checks do not apply: pass long for numeric options, curl_off_t for *_LARGE ones, as with
// curl_easy_setopt.
#pragma once

#include <curl/curl.h>

#include <memory>
#include <string>

#include "cairn/common/shared_library.h"
#include "cairn/common/status.h"

namespace cairn {

//! The libcurl functions Cairn uses, resolved from one loaded copy of the library.
struct CurlApi {
  CURLcode (*global_init)(long flags) = nullptr;
  CURL* (*easy_init)() = nullptr;
  CURLcode (*easy_setopt)(CURL* handle, CURLoption option, ...) = nullptr;
  CURLcode (*easy_perform)(CURL* handle) = nullptr;
  CURLcode (*easy_getinfo)(CURL* handle, CURLINFO info, ...) = nullptr;
  void (*easy_reset)(CURL* handle) = nullptr;
  void (*easy_cleanup)(CURL* handle) = nullptr;
  const char* (*easy_strerror)(CURLcode code) = nullptr;
  curl_slist* (*slist_append)(curl_slist* list, const char* value) = nullptr;
  void (*slist_free_all)(curl_slist* list) = nullptr;
  char* (*version)() = nullptr;
};

//! The process-wide libcurl: loaded ("libcurl.so.4") and globally initialized on the first call,
//! from any thread; later calls return the same table, or the same error if loading failed
//! ("libcurl.so.4 not found: install libcurl4 (…)" — FailedPrecondition).
[[nodiscard]] Result<const CurlApi*> curlApi();

//! A separately loaded copy of a libcurl shared object, for tests and diagnostics. `soname` is
//! passed to dlopen as is. Does not call global_init. The library stays mapped for the rest of
//! the process (RTLD_NODELETE): its dependencies keep allocations in their static data.
class LoadedCurl {
 public:
  [[nodiscard]] static Result<std::unique_ptr<LoadedCurl>> load(const std::string& soname);
  LoadedCurl(const LoadedCurl&) = delete;
  LoadedCurl& operator=(const LoadedCurl&) = delete;

  const CurlApi& api() const { return api_; }

 private:
  explicit LoadedCurl(SharedLibrary library) : library_(std::move(library)) {}
  SharedLibrary library_;
  CurlApi api_;
};

}  // namespace cairn
