// Builds tar archives in memory with libarchive's writer, for tests that need exact (and
// hostile) entries: `..` paths, absolute paths, symlinks followed by writes through them, ...
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace cairn::layer::testing {

class TarBuilder {
 public:
  struct Entry {
    std::string path;
    mode_t type = AE_IFREG;
    mode_t perm = 0644;
    std::string content;
    std::string link;  // symlink target or hardlink target
    bool hardlink = false;
    unsigned uid = 0, gid = 0;
    long mtime = 1700000000;
    unsigned rdev_major = 0, rdev_minor = 0;
    std::map<std::string, std::string> xattrs;
  };

  TarBuilder& file(std::string path, std::string content, mode_t perm = 0644) {
    Entry e;
    e.path = std::move(path);
    e.content = std::move(content);
    e.perm = perm;
    entries_.push_back(std::move(e));
    return *this;
  }
  TarBuilder& dir(std::string path, mode_t perm = 0755) {
    Entry e;
    e.path = std::move(path);
    e.type = AE_IFDIR;
    e.perm = perm;
    entries_.push_back(std::move(e));
    return *this;
  }
  TarBuilder& symlink(std::string path, std::string target) {
    Entry e;
    e.path = std::move(path);
    e.type = AE_IFLNK;
    e.perm = 0777;
    e.link = std::move(target);
    entries_.push_back(std::move(e));
    return *this;
  }
  TarBuilder& hardlink(std::string path, std::string target) {
    Entry e;
    e.path = std::move(path);
    e.link = std::move(target);
    e.hardlink = true;
    entries_.push_back(std::move(e));
    return *this;
  }
  TarBuilder& device(std::string path, mode_t type, unsigned maj, unsigned min) {
    Entry e;
    e.path = std::move(path);
    e.type = type;
    e.rdev_major = maj;
    e.rdev_minor = min;
    entries_.push_back(std::move(e));
    return *this;
  }
  TarBuilder& add(Entry e) {
    entries_.push_back(std::move(e));
    return *this;
  }

  std::string build() const {
    std::string out;
    struct archive* a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_set_bytes_in_last_block(a, 1);
    archive_write_open2(a, &out, nullptr, &TarBuilder::writeCb, nullptr, nullptr);
    for (const Entry& e : entries_) {
      struct archive_entry* ae = archive_entry_new();
      archive_entry_set_pathname(ae, e.path.c_str());
      archive_entry_set_filetype(ae, e.type);
      archive_entry_set_perm(ae, e.perm);
      archive_entry_set_uid(ae, e.uid);
      archive_entry_set_gid(ae, e.gid);
      archive_entry_set_mtime(ae, e.mtime, 0);
      for (const auto& [k, v] : e.xattrs) {
        archive_entry_xattr_add_entry(ae, k.c_str(), v.data(), v.size());
      }
      if (e.hardlink) {
        archive_entry_set_hardlink(ae, e.link.c_str());
        archive_entry_set_size(ae, 0);
      } else if (e.type == AE_IFLNK) {
        archive_entry_set_symlink(ae, e.link.c_str());
      } else if (e.type == AE_IFCHR || e.type == AE_IFBLK) {
        archive_entry_set_rdevmajor(ae, e.rdev_major);
        archive_entry_set_rdevminor(ae, e.rdev_minor);
      } else if (e.type == AE_IFREG) {
        archive_entry_set_size(ae, static_cast<la_int64_t>(e.content.size()));
      }
      archive_write_header(a, ae);
      if (e.type == AE_IFREG && !e.hardlink && !e.content.empty()) {
        archive_write_data(a, e.content.data(), e.content.size());
      }
      archive_entry_free(ae);
    }
    archive_write_close(a);
    archive_write_free(a);
    return out;
  }

 private:
  static la_ssize_t writeCb(struct archive*, void* client, const void* buf, size_t n) {
    static_cast<std::string*>(client)->append(static_cast<const char*>(buf), n);
    return static_cast<la_ssize_t>(n);
  }
  std::vector<Entry> entries_;
};

}  // namespace cairn::layer::testing
