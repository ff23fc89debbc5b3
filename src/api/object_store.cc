#include "cairn/api/object_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>

#include "cairn/common/checksum.h"
#include "cairn/common/crypto.h"
#include "cairn/common/encoding.h"
#include "cairn/common/json.h"
#include "cairn/common/uuid.h"

namespace cairn::api {
namespace fs = std::filesystem;
namespace {

constexpr std::size_t kMaxKeyBytes = 1024;
constexpr std::size_t kMaxEncodedSegment = 240;  // below NAME_MAX with the suffix
constexpr std::size_t kCopyBuffer = 1 << 20;

bool plainByte(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

std::string encodeSegment(std::string_view seg) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : seg) {
    auto c = static_cast<unsigned char>(ch);
    if (plainByte(c)) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

std::optional<std::string> decodeSegment(std::string_view enc) {
  std::string out;
  for (std::size_t i = 0; i < enc.size(); ++i) {
    if (enc[i] != '%') {
      out.push_back(enc[i]);
      continue;
    }
    if (i + 2 >= enc.size()) return std::nullopt;
    auto hex = hexDecode(enc.substr(i + 1, 2));
    if (!hex.ok()) return std::nullopt;
    out += *hex;
    i += 2;
  }
  return out;
}

bool isUploadId(std::string_view id) {
  return id.size() == 32 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

Json infoToJson(const ObjectInfo& info) {
  return {{"key", info.key},
          {"size", info.size},
          {"etag", info.etag},
          {"crc32", info.checksum_crc32},
          {"contentType", info.content_type},
          {"lastModified", formatRfc3339(info.last_modified)}};
}

ObjectInfo infoFromJson(const Json& j) {
  ObjectInfo info;
  info.key = j.value("key", "");
  info.size = j.value("size", std::uint64_t{0});
  info.etag = j.value("etag", "");
  info.checksum_crc32 = j.value("crc32", "");
  info.content_type = j.value("contentType", "");
  if (auto t = parseRfc3339(j.value("lastModified", "")); t.ok()) info.last_modified = *t;
  return info;
}

// Hashes a file's content (for a metadata file lost in a crash between two renames).
Result<ObjectInfo> describeFile(const fs::path& path, std::string key) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return errnoStatus(errno, "open " + path.string());
  Md5 md5;
  std::uint32_t crc = 0;
  std::uint64_t size = 0;
  std::string buf(kCopyBuffer, '\0');
  while (true) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errnoStatus(errno, "read " + path.string());
    if (n == 0) break;
    std::string_view chunk(buf.data(), static_cast<std::size_t>(n));
    md5.update(chunk);
    crc = crc32(chunk, crc);
    size += static_cast<std::uint64_t>(n);
  }
  struct stat st {};
  ::fstat(fd.get(), &st);
  ObjectInfo info;
  info.key = std::move(key);
  info.size = size;
  info.etag = md5.finishHex();
  info.checksum_crc32 = crc32Base64(crc);
  info.last_modified = std::chrono::system_clock::from_time_t(st.st_mtime);
  return info;
}

class FsObjectStore final : public ObjectStore {
 public:
  FsObjectStore(fs::path root, const Clock& clock) : root_(std::move(root)), clock_(clock) {}

  Result<ObjectInfo> put(std::string_view bucket, std::string_view key, std::string_view data,
                         const PutOptions& options) override {
    CAIRN_ASSIGN_OR_RETURN(fs::path obj, objectPath(bucket, key));
    ObjectInfo info;
    info.key = key;
    info.size = data.size();
    info.etag = md5Hex(data);
    info.checksum_crc32 = crc32Base64(crc32(data));
    info.content_type = options.content_type;
    info.last_modified = clock_.now();
    CAIRN_ASSIGN_OR_RETURN(fs::path tmp, writeTemp(data));
    return install(tmp, obj, info);
  }

  Result<ObjectReader> get(std::string_view bucket, std::string_view key) override {
    CAIRN_ASSIGN_OR_RETURN(ObjectInfo info, head(bucket, key));
    CAIRN_ASSIGN_OR_RETURN(fs::path obj, objectPath(bucket, key));
    ObjectReader reader;
    reader.fd = UniqueFd(::open(obj.c_str(), O_RDONLY | O_CLOEXEC));
    if (!reader.fd.valid()) {
      if (errno == ENOENT) return notFound("no such key " + std::string(key));
      return errnoStatus(errno, "open object " + std::string(key));
    }
    struct stat st {};
    if (::fstat(reader.fd.get(), &st) != 0) return errnoStatus(errno, "stat object");
    info.size = static_cast<std::uint64_t>(st.st_size);
    reader.info = std::move(info);
    return reader;
  }

  Result<ObjectInfo> head(std::string_view bucket, std::string_view key) override {
    CAIRN_ASSIGN_OR_RETURN(fs::path obj, objectPath(bucket, key));
    return describe(obj, std::string(key));
  }

  Result<ListResult> list(std::string_view bucket, std::string_view prefix, std::size_t max_keys,
                          std::string_view start_after) override {
    CAIRN_RETURN_IF_ERROR(validateBucketName(bucket));
    std::vector<std::pair<std::string, fs::path>> found;
    fs::path base = root_ / "buckets" / std::string(bucket) / "objects";
    std::error_code ec;
    if (fs::is_directory(base, ec)) {
      CAIRN_RETURN_IF_ERROR(walk(base, "", prefix, start_after, found));
    }
    std::sort(found.begin(), found.end());
    ListResult out;
    for (auto& [key, path] : found) {
      if (out.objects.size() == max_keys) {
        out.truncated = true;
        break;
      }
      Result<ObjectInfo> info = describe(path, key);
      if (!info.ok()) {
        if (info.status().code() == StatusCode::kNotFound) continue;  // deleted meanwhile
        return info.status();
      }
      out.objects.push_back(std::move(*info));
    }
    return out;
  }

  Status remove(std::string_view bucket, std::string_view key) override {
    CAIRN_ASSIGN_OR_RETURN(fs::path obj, objectPath(bucket, key));
    std::error_code ec;
    fs::remove(obj, ec);
    if (ec) return errnoStatus(ec.value(), "remove object " + std::string(key));
    fs::remove(metaPathOf(obj), ec);
    return okStatus();
  }

  Result<std::string> createMultipart(std::string_view bucket, std::string_view key,
                                      const PutOptions& options) override {
    CAIRN_RETURN_IF_ERROR(objectPath(bucket, key).status());
    std::string id = hexEncode(randomBytes(16));
    fs::path dir = uploadsDir(bucket) / id;
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return errnoStatus(ec.value(), "create upload directory");
    Json meta = {{"key", std::string(key)}, {"contentType", options.content_type}};
    CAIRN_RETURN_IF_ERROR(writeFileDurable(dir / "upload.json", meta.dump()));
    return id;
  }

  Result<PartInfo> uploadPart(std::string_view bucket, std::string_view key,
                              std::string_view upload_id, int part_number,
                              std::string_view data) override {
    if (part_number < 1 || part_number > 10000) {
      return invalidArgument("part number must be 1..10000, got " + std::to_string(part_number));
    }
    CAIRN_ASSIGN_OR_RETURN(fs::path dir, uploadDir(bucket, key, upload_id));
    PartInfo part;
    part.part_number = part_number;
    part.etag = md5Hex(data);
    part.checksum_crc32 = crc32Base64(crc32(data));
    part.size = data.size();
    CAIRN_ASSIGN_OR_RETURN(fs::path tmp, writeTemp(data));
    std::string name = "part-" + std::to_string(part_number);
    Json meta = {{"etag", part.etag}, {"crc32", part.checksum_crc32}, {"size", part.size}};
    // The part's metadata goes first: a part file is only listed when its metadata exists, and
    // the size check in listParts catches a metadata file that belongs to an older upload.
    CAIRN_RETURN_IF_ERROR(writeFileDurable(dir / (name + ".json"), meta.dump()));
    if (::rename(tmp.c_str(), (dir / name).c_str()) != 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      if (err == ENOENT) return notFound("no such upload " + std::string(upload_id));
      return errnoStatus(err, "store part " + std::to_string(part_number));
    }
    CAIRN_RETURN_IF_ERROR(fsyncDir(dir));
    return part;
  }

  Result<std::vector<PartInfo>> listParts(std::string_view bucket, std::string_view key,
                                          std::string_view upload_id) override {
    CAIRN_ASSIGN_OR_RETURN(fs::path dir, uploadDir(bucket, key, upload_id));
    std::vector<PartInfo> parts;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      std::string name = entry.path().filename().string();
      if (name.rfind("part-", 0) != 0 || name.find('.') != std::string::npos) continue;
      int n = std::atoi(name.c_str() + 5);
      Result<std::string> text = readFile(dir / (name + ".json"));
      if (!text.ok()) continue;
      Result<Json> meta = parseJson(*text);
      if (!meta.ok()) continue;
      PartInfo p;
      p.part_number = n;
      p.etag = meta->value("etag", "");
      p.checksum_crc32 = meta->value("crc32", "");
      p.size = meta->value("size", std::uint64_t{0});
      std::error_code size_ec;
      if (fs::file_size(entry.path(), size_ec) != p.size || size_ec) continue;
      parts.push_back(std::move(p));
    }
    if (ec) return errnoStatus(ec.value(), "list parts of upload " + std::string(upload_id));
    std::sort(parts.begin(), parts.end(),
              [](const PartInfo& a, const PartInfo& b) { return a.part_number < b.part_number; });
    return parts;
  }

  Result<ObjectInfo> completeMultipart(std::string_view bucket, std::string_view key,
                                       std::string_view upload_id,
                                       const std::vector<int>& part_numbers) override {
    CAIRN_ASSIGN_OR_RETURN(fs::path dir, uploadDir(bucket, key, upload_id));
    CAIRN_ASSIGN_OR_RETURN(fs::path obj, objectPath(bucket, key));
    if (part_numbers.empty()) return invalidArgument("a multipart upload needs at least one part");
    Json upload_meta = Json::object();
    if (auto t = readFile(dir / "upload.json"); t.ok()) {
      if (auto j = parseJson(*t); j.ok()) upload_meta = *j;
    }
    fs::path tmp = root_ / "tmp" / ("complete-" + uuidV4());
    UniqueFd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!out.valid()) return errnoStatus(errno, "create " + tmp.string());
    auto cleanup = [&] { ::unlink(tmp.c_str()); };
    Md5 etag_md5;
    std::uint32_t crc = 0;
    std::uint64_t size = 0;
    std::string buf(kCopyBuffer, '\0');
    for (int n : part_numbers) {
      fs::path part = dir / ("part-" + std::to_string(n));
      UniqueFd in(::open(part.c_str(), O_RDONLY | O_CLOEXEC));
      if (!in.valid()) {
        cleanup();
        return errnoStatus(errno, "open part " + std::to_string(n));
      }
      Md5 part_md5;
      while (true) {
        ssize_t r = ::read(in.get(), buf.data(), buf.size());
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
          cleanup();
          return errnoStatus(errno, "read part " + std::to_string(n));
        }
        if (r == 0) break;
        std::string_view chunk(buf.data(), static_cast<std::size_t>(r));
        part_md5.update(chunk);
        crc = crc32(chunk, crc);
        size += static_cast<std::uint64_t>(r);
        if (Status s = writeAll(out.get(), chunk); !s.ok()) {
          cleanup();
          return s;
        }
      }
      Md5Bytes digest = part_md5.finish();
      etag_md5.update(digest.data(), digest.size());
    }
    if (::fsync(out.get()) != 0) {
      int err = errno;
      cleanup();
      return errnoStatus(err, "fsync " + tmp.string());
    }
    out.reset();
    ObjectInfo info;
    info.key = key;
    info.size = size;
    info.etag = etag_md5.finishHex() + "-" + std::to_string(part_numbers.size());
    info.checksum_crc32 = crc32Base64(crc);
    info.content_type = upload_meta.value("contentType", "");
    info.last_modified = clock_.now();
    CAIRN_ASSIGN_OR_RETURN(info, install(tmp, obj, info));
    std::error_code ec;
    fs::remove_all(dir, ec);
    return info;
  }

  Status abortMultipart(std::string_view bucket, std::string_view key,
                        std::string_view upload_id) override {
    CAIRN_ASSIGN_OR_RETURN(fs::path dir, uploadDir(bucket, key, upload_id));
    std::error_code ec;
    fs::remove_all(dir, ec);
    if (ec) return errnoStatus(ec.value(), "remove upload " + std::string(upload_id));
    return okStatus();
  }

  Status init() {
    std::error_code ec;
    fs::create_directories(root_ / "tmp", ec);
    if (ec) return errnoStatus(ec.value(), "create " + (root_ / "tmp").string());
    fs::create_directories(root_ / "buckets", ec);
    if (ec) return errnoStatus(ec.value(), "create " + (root_ / "buckets").string());
    // Leftovers of writes interrupted by a crash.
    for (const auto& e : fs::directory_iterator(root_ / "tmp", ec)) {
      std::error_code ignored;
      fs::remove_all(e.path(), ignored);
    }
    return okStatus();
  }

 private:
  Result<fs::path> objectPath(std::string_view bucket, std::string_view key) const {
    CAIRN_RETURN_IF_ERROR(validateBucketName(bucket));
    CAIRN_RETURN_IF_ERROR(validateObjectKey(key));
    fs::path p = root_ / "buckets" / std::string(bucket) / "objects";
    std::size_t pos = 0;
    while (true) {
      std::size_t slash = key.find('/', pos);
      std::string enc =
          encodeSegment(key.substr(pos, slash == std::string_view::npos ? slash : slash - pos));
      if (enc.size() > kMaxEncodedSegment) {
        return invalidArgument("a segment of key \"" + std::string(key.substr(0, 100)) +
                               "\" is too long");
      }
      if (slash == std::string_view::npos) {
        p /= enc + ".o";
        break;
      }
      p /= enc + ".d";
      pos = slash + 1;
    }
    return p;
  }

  static fs::path metaPathOf(const fs::path& obj) {
    fs::path m = obj;
    m.replace_extension(".m");
    return m;
  }

  fs::path uploadsDir(std::string_view bucket) const {
    return root_ / "buckets" / std::string(bucket) / "uploads";
  }

  Result<fs::path> uploadDir(std::string_view bucket, std::string_view key,
                             std::string_view upload_id) const {
    CAIRN_RETURN_IF_ERROR(objectPath(bucket, key).status());
    if (!isUploadId(upload_id))
      return notFound("no such upload " + std::string(upload_id.substr(0, 64)));
    fs::path dir = uploadsDir(bucket) / std::string(upload_id);
    Result<std::string> meta = readFile(dir / "upload.json");
    if (!meta.ok()) return notFound("no such upload " + std::string(upload_id));
    Result<Json> j = parseJson(*meta);
    if (!j.ok() || j->value("key", "") != key) {
      return notFound("no such upload " + std::string(upload_id) + " for key " + std::string(key));
    }
    return dir;
  }

  Result<fs::path> writeTemp(std::string_view data) {
    fs::path tmp = root_ / "tmp" / ("put-" + uuidV4());
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd.valid()) return errnoStatus(errno, "create " + tmp.string());
    Status s = writeAll(fd.get(), data);
    if (s.ok() && ::fsync(fd.get()) != 0) s = errnoStatus(errno, "fsync " + tmp.string());
    if (!s.ok()) {
      ::unlink(tmp.c_str());
      return s;
    }
    return tmp;
  }

  // Puts a fully written (and fsynced) temporary file in place with its metadata.
  Result<ObjectInfo> install(const fs::path& tmp, const fs::path& obj, const ObjectInfo& info) {
    std::error_code ec;
    fs::create_directories(obj.parent_path(), ec);
    if (ec) {
      ::unlink(tmp.c_str());
      // A key whose directory part is an existing object cannot happen with the suffixes;
      // this is a real I/O failure.
      return errnoStatus(ec.value(), "create directory for key " + info.key);
    }
    Status s = writeFileDurable(metaPathOf(obj), infoToJson(info).dump());
    if (s.ok() && ::rename(tmp.c_str(), obj.c_str()) != 0) {
      s = errnoStatus(errno, "rename into place for key " + info.key);
    }
    if (!s.ok()) {
      ::unlink(tmp.c_str());
      return s;
    }
    CAIRN_RETURN_IF_ERROR(fsyncDir(obj.parent_path()));
    return info;
  }

  Result<ObjectInfo> describe(const fs::path& obj, std::string key) const {
    struct stat st {};
    if (::stat(obj.c_str(), &st) != 0) {
      if (errno == ENOENT || errno == ENOTDIR) return notFound("no such key " + key);
      return errnoStatus(errno, "stat object " + key);
    }
    if (!S_ISREG(st.st_mode)) return notFound("no such key " + key);
    Result<std::string> text = readFile(metaPathOf(obj));
    if (text.ok()) {
      if (Result<Json> j = parseJson(*text); j.ok()) {
        ObjectInfo info = infoFromJson(*j);
        if (info.size == static_cast<std::uint64_t>(st.st_size) && info.key == key) return info;
      }
    }
    // Metadata lost or stale (a crash between the two renames): recompute from the data.
    return describeFile(obj, std::move(key));
  }

  // Collects (key, path) of objects under `dir` whose key starts with `prefix` and sorts after
  // `start_after`, descending only into directories that can hold such keys.
  Status walk(const fs::path& dir, const std::string& key_prefix, std::string_view prefix,
              std::string_view start_after,
              std::vector<std::pair<std::string, fs::path>>& found) const {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      std::string name = entry.path().filename().string();
      if (name.size() < 2) continue;
      std::string_view suffix = std::string_view(name).substr(name.size() - 2);
      std::optional<std::string> seg =
          decodeSegment(std::string_view(name).substr(0, name.size() - 2));
      if (!seg) continue;
      if (suffix == ".d") {
        std::string sub = key_prefix + *seg + "/";
        bool may_match = sub.compare(0, std::min(sub.size(), prefix.size()),
                                     prefix.substr(0, std::min(sub.size(), prefix.size()))) == 0;
        if (may_match) CAIRN_RETURN_IF_ERROR(walk(entry.path(), sub, prefix, start_after, found));
      } else if (suffix == ".o") {
        std::string key = key_prefix + *seg;
        if (key.compare(0, prefix.size(), prefix) == 0 && key > start_after) {
          found.emplace_back(std::move(key), entry.path());
        }
      }
    }
    if (ec) return errnoStatus(ec.value(), "list " + dir.string());
    return okStatus();
  }

  fs::path root_;
  const Clock& clock_;
};

}  // namespace

Status validateBucketName(std::string_view bucket) {
  bool ok =
      bucket.size() >= 3 && bucket.size() <= 63 &&
      std::all_of(bucket.begin(), bucket.end(),
                  [](char c) {
                    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
                  }) &&
      bucket.front() != '.' && bucket.front() != '-' && bucket.back() != '.' &&
      bucket.back() != '-' && bucket.find("..") == std::string_view::npos;
  if (!ok) {
    return invalidArgument("invalid bucket name \"" + std::string(bucket.substr(0, 80)) + "\"");
  }
  return okStatus();
}

Status validateObjectKey(std::string_view key) {
  if (key.empty() || key.size() > kMaxKeyBytes) {
    return invalidArgument("object key must be 1 to 1024 bytes long");
  }
  for (char ch : key) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) {
      return invalidArgument("object key contains a control character");
    }
  }
  return okStatus();
}

Result<std::unique_ptr<ObjectStore>> openFsObjectStore(const fs::path& root, const Clock& clock) {
  auto store = std::make_unique<FsObjectStore>(root, clock);
  CAIRN_RETURN_IF_ERROR(store->init());
  return std::unique_ptr<ObjectStore>(std::move(store));
}

}  // namespace cairn::api
