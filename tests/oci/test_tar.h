// Builds small tar layers in memory with libarchive, for tests of the image format, the
// layout import/export and the registry client.
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include <string>
#include <vector>

#include "cairn/layer/compression.h"

namespace cairn::oci::testing {

struct TarEntry {
  enum class Type { kFile, kDir, kSymlink };
  std::string path;
  Type type = Type::kFile;
  std::string data;  //!< file content, or symlink target
  int mode = 0644;
  int uid = 0;
  int gid = 0;
};

inline std::string makeTar(const std::vector<TarEntry>& entries,
                           layer::Compression compression = layer::Compression::kNone) {
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (compression == layer::Compression::kGzip) archive_write_add_filter_gzip(a);
  if (compression == layer::Compression::kZstd) archive_write_add_filter_zstd(a);
  archive_write_set_bytes_in_last_block(a, 1);
  archive_write_open(
      a, &out, nullptr,
      [](archive*, void* client, const void* buf, size_t n) -> la_ssize_t {
        static_cast<std::string*>(client)->append(static_cast<const char*>(buf), n);
        return static_cast<la_ssize_t>(n);
      },
      nullptr);
  for (const auto& e : entries) {
    archive_entry* ae = archive_entry_new();
    archive_entry_set_pathname(ae, e.path.c_str());
    archive_entry_set_uid(ae, e.uid);
    archive_entry_set_gid(ae, e.gid);
    archive_entry_set_mtime(ae, 1700000000, 0);
    switch (e.type) {
      case TarEntry::Type::kFile:
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_size(ae, static_cast<la_int64_t>(e.data.size()));
        break;
      case TarEntry::Type::kDir:
        archive_entry_set_filetype(ae, AE_IFDIR);
        break;
      case TarEntry::Type::kSymlink:
        archive_entry_set_filetype(ae, AE_IFLNK);
        archive_entry_set_symlink(ae, e.data.c_str());
        break;
    }
    archive_entry_set_perm(ae, static_cast<mode_t>(e.mode));
    archive_write_header(a, ae);
    if (e.type == TarEntry::Type::kFile) archive_write_data(a, e.data.data(), e.data.size());
    archive_entry_free(ae);
  }
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

}  // namespace cairn::oci::testing
