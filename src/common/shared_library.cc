#include "cairn/common/shared_library.h"

#include <dlfcn.h>

#include <utility>

namespace cairn {

Result<SharedLibrary> SharedLibrary::open(const std::string& soname, std::string_view package) {
  void* handle = dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (handle == nullptr) {
    const char* why = dlerror();
    return failedPrecondition(soname + " not found: install " + std::string(package) + " (" +
                              (why != nullptr ? why : "dlopen failed") + ")");
  }
  return SharedLibrary(handle, soname);
}

SharedLibrary::SharedLibrary(SharedLibrary&& other) noexcept
    : handle_(std::exchange(other.handle_, nullptr)), soname_(std::move(other.soname_)) {}

SharedLibrary& SharedLibrary::operator=(SharedLibrary&& other) noexcept {
  if (this != &other) {
    if (handle_ != nullptr) dlclose(handle_);
    handle_ = std::exchange(other.handle_, nullptr);
    soname_ = std::move(other.soname_);
  }
  return *this;
}

SharedLibrary::~SharedLibrary() {
  if (handle_ != nullptr) dlclose(handle_);
}

Result<void*> SharedLibrary::symbol(const char* name, std::string_view hint) const {
  if (handle_ == nullptr) return failedPrecondition(soname_ + " is not open");
  dlerror();
  void* sym = dlsym(handle_, name);
  if (sym == nullptr) {
    const char* why = dlerror();
    return failedPrecondition(soname_ + " has no " + name + " (" +
                              (why != nullptr ? why : "null symbol") + ")" + std::string(hint));
  }
  return sym;
}

}  // namespace cairn
