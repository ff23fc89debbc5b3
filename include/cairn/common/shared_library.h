// A shared library opened at run time, for dependencies loaded on first use rather than at
// program start (libcurl, libarchive, libcrypto: see curl_api.h, layer/archive_api.h,
// crypto.cc). Linking them makes every start of `cairn` map and relocate them and their
// dependency chains, which short commands such as `cairn run` pay without using them.
//
//   CAIRN_ASSIGN_OR_RETURN(SharedLibrary lib, SharedLibrary::open("libz.so.1", "zlib1g"));
//   const char* (*version)() = nullptr;
//   CAIRN_RETURN_IF_ERROR(lib.resolve("zlibVersion", version));
//
// The library is opened RTLD_LOCAL (its symbols serve only the caller's table, never resolve
// other libraries' names) and RTLD_NODELETE: libraries allocate in their constructors and keep
// the memory in static data (libcurl's TLS chain, libxml2 and ICU under libarchive), so
// unmapping them would strand it, and LeakSanitizer would report it. The handle itself is
// closed with the object; a soname already loaded (linked by the program, or opened before)
// gives that same copy.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "cairn/common/status.h"

namespace cairn {

class SharedLibrary {
 public:
  //! dlopen()s `soname`. FailedPrecondition "<soname> not found: install <package> (<why>)".
  [[nodiscard]] static Result<SharedLibrary> open(const std::string& soname,
                                                  std::string_view package);

  SharedLibrary(SharedLibrary&& other) noexcept;
  SharedLibrary& operator=(SharedLibrary&& other) noexcept;
  SharedLibrary(const SharedLibrary&) = delete;
  SharedLibrary& operator=(const SharedLibrary&) = delete;
  ~SharedLibrary();

  //! The address of `name`. FailedPrecondition "<soname> has no <name> (<why>)<hint>", where a
  //! hint such as ": is it really libarchive 3.6 or later?" says what an old copy lacks.
  [[nodiscard]] Result<void*> symbol(const char* name, std::string_view hint = {}) const;

  //! symbol(), stored in `fn` typed as the field it fills.
  template <typename Fn>
  [[nodiscard]] Status resolve(const char* name, Fn& fn, std::string_view hint = {}) const {
    CAIRN_ASSIGN_OR_RETURN(void* sym, symbol(name, hint));
    // POSIX guarantees that an address from dlsym converts to a function pointer.
    fn = reinterpret_cast<Fn>(sym);
    return okStatus();
  }

  const std::string& soname() const { return soname_; }

 private:
  SharedLibrary(void* handle, std::string soname) : handle_(handle), soname_(std::move(soname)) {}
  void* handle_ = nullptr;
  std::string soname_;
};

}  // namespace cairn
