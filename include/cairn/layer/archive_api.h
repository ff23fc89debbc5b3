// libarchive, loaded on first use instead of at program start.
//
// Linking libarchive makes every start of the `cairn` binary map it and its dependency chain
// (nettle, acl, lzma, lz4, bz2, xml2, icuuc, icudata): about 0.8 ms of each start, paid by
// commands such as `cairn run` or `cairn version` that never read or write a tar. The code that
// does (applyLayerTar, createLayerTar) asks for the functions here; the first call dlopen()s
// "libarchive.so.13" once (thread-safe). Only libarchive's headers are needed at build time.
// The same pattern as libcurl's (cairn/common/curl_api.h).
//
//   CAIRN_ASSIGN_OR_RETURN(const cairn::layer::ArchiveApi* ar, cairn::layer::archiveApi());
//   struct archive* a = ar->read_new();
//   ar->read_support_format_tar(a);  // field `x` is libarchive's `archive_x`, same signature
//
// A binary that also links libarchive itself (tests that build tars) gets the same copy:
// dlopen of an already loaded soname returns it.
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include <memory>
#include <string>

#include "cairn/common/shared_library.h"
#include "cairn/common/status.h"

namespace cairn::layer {

// Every libarchive function Cairn calls, without the "archive_" prefix. One list drives the
// table's fields, the symbol lookups and the tests, so a function cannot be added to one and
// forgotten in another. Reading tars:
#define CAIRN_LAYER_ARCHIVE_READ_FUNCTIONS(X) \
  X(read_new)                                 \
  X(read_free)                                \
  X(read_support_format_tar)                  \
  X(read_support_format_empty)                \
  X(read_open)                                \
  X(read_next_header)                         \
  X(read_data_block)
// Writing tars:
#define CAIRN_LAYER_ARCHIVE_WRITE_FUNCTIONS(X) \
  X(write_new)                                 \
  X(write_free)                                \
  X(write_set_format_pax_restricted)           \
  X(write_set_bytes_in_last_block)             \
  X(write_open2)                               \
  X(write_header)                              \
  X(write_data)                                \
  X(write_close)
// Entries (archive_entry.h), errors and the version:
#define CAIRN_LAYER_ARCHIVE_ENTRY_FUNCTIONS(X) \
  X(entry_new)                                 \
  X(entry_free)                                \
  X(entry_pathname)                            \
  X(entry_filetype)                            \
  X(entry_hardlink)                            \
  X(entry_symlink)                             \
  X(entry_size)                                \
  X(entry_uid)                                 \
  X(entry_gid)                                 \
  X(entry_perm)                                \
  X(entry_mtime)                               \
  X(entry_mtime_nsec)                          \
  X(entry_rdevmajor)                           \
  X(entry_rdevminor)                           \
  X(entry_xattr_reset)                         \
  X(entry_xattr_next)                          \
  X(entry_set_pathname)                        \
  X(entry_set_filetype)                        \
  X(entry_set_hardlink)                        \
  X(entry_set_symlink)                         \
  X(entry_set_size)                            \
  X(entry_set_uid)                             \
  X(entry_set_gid)                             \
  X(entry_set_mode)                            \
  X(entry_set_perm)                            \
  X(entry_set_mtime)                           \
  X(entry_set_rdevmajor)                       \
  X(entry_set_rdevminor)                       \
  X(entry_xattr_add_entry)                     \
  X(error_string)                              \
  X(version_string)
#define CAIRN_LAYER_ARCHIVE_FUNCTIONS(X) \
  CAIRN_LAYER_ARCHIVE_READ_FUNCTIONS(X)  \
  CAIRN_LAYER_ARCHIVE_WRITE_FUNCTIONS(X) \
  CAIRN_LAYER_ARCHIVE_ENTRY_FUNCTIONS(X)

//! The libarchive functions Cairn uses, resolved from one loaded copy of the library. Each field
//! has the type of libarchive's own declaration (decltype of it: the headers cannot disagree
//! with the table), and is never null in a table handed out by archiveApi() or LoadedArchive.
struct ArchiveApi {
#define CAIRN_LAYER_ARCHIVE_FIELD(name) decltype(&::archive_##name) name = nullptr;
  CAIRN_LAYER_ARCHIVE_FUNCTIONS(CAIRN_LAYER_ARCHIVE_FIELD)
#undef CAIRN_LAYER_ARCHIVE_FIELD
};

//! The process-wide libarchive: loaded ("libarchive.so.13") on the first call, from any thread;
//! later calls return the same table, or the same error if loading failed
//! ("libarchive.so.13 not found: install libarchive13 (…)" — FailedPrecondition).
[[nodiscard]] Result<const ArchiveApi*> archiveApi();

//! A separately loaded copy of a libarchive shared object, for tests and diagnostics. `soname`
//! is passed to dlopen as is. The library stays mapped for the rest of the process
//! (RTLD_NODELETE): its dependencies keep allocations in their static data.
class LoadedArchive {
 public:
  [[nodiscard]] static Result<std::unique_ptr<LoadedArchive>> load(const std::string& soname);
  LoadedArchive(const LoadedArchive&) = delete;
  LoadedArchive& operator=(const LoadedArchive&) = delete;

  const ArchiveApi& api() const { return api_; }

 private:
  explicit LoadedArchive(SharedLibrary library) : library_(std::move(library)) {}
  SharedLibrary library_;
  ArchiveApi api_;
};

}  // namespace cairn::layer
