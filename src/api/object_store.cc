#include "cairn/api/object_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <mutex>
#include <set>
#include <shared_mutex>

#include "cairn/common/checksum.h"
#include "cairn/common/crypto.h"
#include "cairn/common/encoding.h"
#include "cairn/common/json.h"
#include "cairn/common/log.h"
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

// Where an object lives under `objects_dir` (<root>/buckets/<bucket>/objects): each
// '/'-separated segment escaped and suffixed. Both stores validate keys through it, so they
// accept exactly the same keys and data moves between them without loss.
Result<fs::path> keyPath(const fs::path& objects_dir, std::string_view bucket,
                         std::string_view key) {
  CAIRN_RETURN_IF_ERROR(validateBucketName(bucket));
  CAIRN_RETURN_IF_ERROR(validateObjectKey(key));
  fs::path p = objects_dir;
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

Result<fs::path> writeTempFile(const fs::path& tmp_dir, std::string_view data) {
  fs::path tmp = tmp_dir / ("put-" + uuidV4());
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

// What joining the parts of a multipart upload produced.
struct JoinedObject {
  std::uint64_t size = 0;
  std::string etag;  // "<md5 of the part md5s>-<number of parts>"
  std::string checksum_crc32;
  std::string content_type;  // given at createMultipart
};

// Multipart uploads staged as files, <root>/buckets/<bucket>/uploads/<id>/{upload.json, part-N,
// part-N.json}, until they are completed or aborted. Shared by both stores.
class Uploads {
 public:
  explicit Uploads(fs::path root) : root_(std::move(root)) {}

  Result<std::string> create(std::string_view bucket, std::string_view key,
                             const PutOptions& options) {
    CAIRN_RETURN_IF_ERROR(keyPath(root_, bucket, key).status());
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
                              std::string_view upload_id, int part_number, std::string_view data) {
    if (part_number < 1 || part_number > 10000) {
      return invalidArgument("part number must be 1..10000, got " + std::to_string(part_number));
    }
    CAIRN_ASSIGN_OR_RETURN(fs::path dir, uploadDir(bucket, key, upload_id));
    PartInfo part;
    part.part_number = part_number;
    part.etag = md5Hex(data);
    part.checksum_crc32 = crc32Base64(crc32(data));
    part.size = data.size();
    CAIRN_ASSIGN_OR_RETURN(fs::path tmp, writeTempFile(root_ / "tmp", data));
    std::string name = "part-" + std::to_string(part_number);
    Json meta = {{"etag", part.etag}, {"crc32", part.checksum_crc32}, {"size", part.size}};
    // The part's metadata goes first: a part file is only listed when its metadata exists, and
    // the size check in listParts catches a metadata file that belongs to an older upload.
    if (Status s = writeFileDurable(dir / (name + ".json"), meta.dump()); !s.ok()) {
      ::unlink(tmp.c_str());
      return s;
    }
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
                                          std::string_view upload_id) {
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

  // Streams the parts, in the given order, into `sink`, hashing as it goes. The upload stays
  // until remove(): the caller removes it once the object is in place.
  Result<JoinedObject> join(std::string_view bucket, std::string_view key,
                            std::string_view upload_id, const std::vector<int>& part_numbers,
                            const std::function<Status(std::string_view)>& sink) {
    CAIRN_ASSIGN_OR_RETURN(fs::path dir, uploadDir(bucket, key, upload_id));
    if (part_numbers.empty()) return invalidArgument("a multipart upload needs at least one part");
    JoinedObject out;
    if (auto t = readFile(dir / "upload.json"); t.ok()) {
      if (auto j = parseJson(*t); j.ok()) out.content_type = j->value("contentType", "");
    }
    Md5 etag_md5;
    std::uint32_t crc = 0;
    std::string buf(kCopyBuffer, '\0');
    for (int n : part_numbers) {
      fs::path part = dir / ("part-" + std::to_string(n));
      UniqueFd in(::open(part.c_str(), O_RDONLY | O_CLOEXEC));
      if (!in.valid()) return errnoStatus(errno, "open part " + std::to_string(n));
      Md5 part_md5;
      while (true) {
        ssize_t r = ::read(in.get(), buf.data(), buf.size());
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return errnoStatus(errno, "read part " + std::to_string(n));
        if (r == 0) break;
        std::string_view chunk(buf.data(), static_cast<std::size_t>(r));
        part_md5.update(chunk);
        crc = crc32(chunk, crc);
        out.size += static_cast<std::uint64_t>(r);
        CAIRN_RETURN_IF_ERROR(sink(chunk));
      }
      Md5Bytes digest = part_md5.finish();
      etag_md5.update(digest.data(), digest.size());
    }
    out.etag = etag_md5.finishHex() + "-" + std::to_string(part_numbers.size());
    out.checksum_crc32 = crc32Base64(crc);
    return out;
  }

  Status remove(std::string_view bucket, std::string_view key, std::string_view upload_id) {
    CAIRN_ASSIGN_OR_RETURN(fs::path dir, uploadDir(bucket, key, upload_id));
    std::error_code ec;
    fs::remove_all(dir, ec);
    if (ec) return errnoStatus(ec.value(), "remove upload " + std::string(upload_id));
    return okStatus();
  }

  // Removes uploads whose directory has not changed (no part added) since `before`: clients
  // that died mid-upload never complete or abort them. Returns how many went.
  Result<std::size_t> removeIdleSince(SystemTime before) {
    std::size_t removed = 0;
    std::error_code ec;
    for (const auto& bucket : fs::directory_iterator(root_ / "buckets", ec)) {
      std::error_code up_ec;
      for (const auto& upload : fs::directory_iterator(bucket.path() / "uploads", up_ec)) {
        if (!isUploadId(upload.path().filename().string())) continue;
        struct stat st {};
        if (::stat(upload.path().c_str(), &st) != 0) continue;
        SystemTime changed = std::chrono::system_clock::from_time_t(st.st_mtime);
        if (changed >= before) continue;
        std::error_code rm_ec;
        fs::remove_all(upload.path(), rm_ec);
        if (rm_ec) return errnoStatus(rm_ec.value(), "remove upload " + upload.path().string());
        ++removed;
      }
    }
    if (ec) return errnoStatus(ec.value(), "list " + (root_ / "buckets").string());
    return removed;
  }

  // Creates <root>/tmp and <root>/buckets and drops leftovers of writes a crash interrupted.
  Status init() {
    std::error_code ec;
    fs::create_directories(root_ / "tmp", ec);
    if (ec) return errnoStatus(ec.value(), "create " + (root_ / "tmp").string());
    fs::create_directories(root_ / "buckets", ec);
    if (ec) return errnoStatus(ec.value(), "create " + (root_ / "buckets").string());
    for (const auto& e : fs::directory_iterator(root_ / "tmp", ec)) {
      std::error_code ignored;
      fs::remove_all(e.path(), ignored);
    }
    return okStatus();
  }

 private:
  fs::path uploadsDir(std::string_view bucket) const {
    return root_ / "buckets" / std::string(bucket) / "uploads";
  }

  Result<fs::path> uploadDir(std::string_view bucket, std::string_view key,
                             std::string_view upload_id) const {
    CAIRN_RETURN_IF_ERROR(keyPath(root_, bucket, key).status());
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

  fs::path root_;
};

class FsObjectStore final : public ObjectStore {
 public:
  FsObjectStore(fs::path root, const Clock& clock)
      : root_(std::move(root)), clock_(clock), uploads_(root_) {}

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
    CAIRN_ASSIGN_OR_RETURN(fs::path tmp, writeTempFile(root_ / "tmp", data));
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
    fs::path base = objectsDir(bucket);
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
    return uploads_.create(bucket, key, options);
  }

  Result<PartInfo> uploadPart(std::string_view bucket, std::string_view key,
                              std::string_view upload_id, int part_number,
                              std::string_view data) override {
    return uploads_.uploadPart(bucket, key, upload_id, part_number, data);
  }

  Result<std::vector<PartInfo>> listParts(std::string_view bucket, std::string_view key,
                                          std::string_view upload_id) override {
    return uploads_.listParts(bucket, key, upload_id);
  }

  Result<ObjectInfo> completeMultipart(std::string_view bucket, std::string_view key,
                                       std::string_view upload_id,
                                       const std::vector<int>& part_numbers) override {
    CAIRN_ASSIGN_OR_RETURN(fs::path obj, objectPath(bucket, key));
    fs::path tmp = root_ / "tmp" / ("complete-" + uuidV4());
    UniqueFd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!out.valid()) return errnoStatus(errno, "create " + tmp.string());
    Result<JoinedObject> joined =
        uploads_.join(bucket, key, upload_id, part_numbers,
                      [&](std::string_view chunk) { return writeAll(out.get(), chunk); });
    Status s = joined.status();
    if (s.ok() && ::fsync(out.get()) != 0) s = errnoStatus(errno, "fsync " + tmp.string());
    out.reset();
    if (!s.ok()) {
      ::unlink(tmp.c_str());
      return s;
    }
    ObjectInfo info;
    info.key = key;
    info.size = joined->size;
    info.etag = joined->etag;
    info.checksum_crc32 = joined->checksum_crc32;
    info.content_type = joined->content_type;
    info.last_modified = clock_.now();
    CAIRN_ASSIGN_OR_RETURN(info, install(tmp, obj, info));
    (void)uploads_.remove(bucket, key, upload_id);
    return info;
  }

  Status abortMultipart(std::string_view bucket, std::string_view key,
                        std::string_view upload_id) override {
    return uploads_.remove(bucket, key, upload_id);
  }

  Status init() { return uploads_.init(); }

  //! The buckets that have an objects directory (for migration).
  std::vector<std::string> buckets() const {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(root_ / "buckets", ec)) {
      std::string name = e.path().filename().string();
      std::error_code dir_ec;
      if (validateBucketName(name).ok() && fs::is_directory(e.path() / "objects", dir_ec)) {
        out.push_back(name);
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  fs::path objectsDir(std::string_view bucket) const {
    return root_ / "buckets" / std::string(bucket) / "objects";
  }

 private:
  Result<fs::path> objectPath(std::string_view bucket, std::string_view key) const {
    return keyPath(objectsDir(bucket), bucket, key);
  }

  static fs::path metaPathOf(const fs::path& obj) {
    fs::path m = obj;
    m.replace_extension(".m");
    return m;
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
  Uploads uploads_;
};

// --- the blob-backed store --------------------------------------------------------------------

struct Stmt {
  sqlite3_stmt* s = nullptr;
  ~Stmt() { sqlite3_finalize(s); }
};

std::int64_t toMicros(SystemTime t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

SystemTime fromMicros(std::int64_t us) {
  return SystemTime(
      std::chrono::duration_cast<SystemTime::duration>(std::chrono::microseconds(us)));
}

std::string textColumn(sqlite3_stmt* s, int i) {
  const unsigned char* t = sqlite3_column_text(s, i);
  return t ? std::string(reinterpret_cast<const char*>(t),
                         static_cast<std::size_t>(sqlite3_column_bytes(s, i)))
           : std::string();
}

std::string blobColumn(sqlite3_stmt* s, int i) {
  const void* b = sqlite3_column_blob(s, i);
  return b ? std::string(static_cast<const char*>(b),
                         static_cast<std::size_t>(sqlite3_column_bytes(s, i)))
           : std::string();
}

// Columns: key, digest, size, etag, crc32, content_type, mtime_us.
constexpr const char* kColumns = "key, digest, size, etag, crc32, content_type, mtime_us";

struct IndexRow {
  ObjectInfo info;
  Digest digest;
};

Result<IndexRow> rowFrom(sqlite3_stmt* s) {
  IndexRow row;
  row.info.key = blobColumn(s, 0);
  std::string digest = textColumn(s, 1);
  Result<Digest> d = Digest::parse(digest);
  if (!d.ok()) {
    return internalError("object index: key \"" + row.info.key.substr(0, 100) +
                         "\" has a bad digest \"" + digest + "\"");
  }
  row.digest = *d;
  row.info.size = static_cast<std::uint64_t>(sqlite3_column_int64(s, 2));
  row.info.etag = textColumn(s, 3);
  row.info.checksum_crc32 = textColumn(s, 4);
  row.info.content_type = textColumn(s, 5);
  row.info.last_modified = fromMicros(sqlite3_column_int64(s, 6));
  return row;
}

// A file descriptor for a blob's bytes, positioned at 0: a dup of the store's own fd (local
// store), or an anonymous copy for stores without one (the in-memory test double).
Result<UniqueFd> blobFd(const store::BlobReader& blobs, const Digest& digest) {
  CAIRN_ASSIGN_OR_RETURN(auto stream, blobs.openRead(digest));
  if (stream->fd() >= 0) {
    // The local stream reads with pread, so the shared file offset is still at 0.
    UniqueFd fd(::fcntl(stream->fd(), F_DUPFD_CLOEXEC, 0));
    if (!fd.valid()) return errnoStatus(errno, "dup blob " + digest.str());
    if (::lseek(fd.get(), 0, SEEK_SET) < 0) return errnoStatus(errno, "seek blob " + digest.str());
    return fd;
  }
  UniqueFd fd(::memfd_create("cairn-object", MFD_CLOEXEC));
  if (!fd.valid()) return errnoStatus(errno, "memfd_create for blob " + digest.str());
  std::string buf(kCopyBuffer, '\0');
  while (true) {
    CAIRN_ASSIGN_OR_RETURN(std::size_t n, stream->read(buf.data(), buf.size()));
    if (n == 0) break;
    CAIRN_RETURN_IF_ERROR(writeAll(fd.get(), std::string_view(buf.data(), n)));
  }
  if (::lseek(fd.get(), 0, SEEK_SET) < 0) return errnoStatus(errno, "seek blob " + digest.str());
  return fd;
}

class BlobObjectStoreImpl final : public BlobObjectStore {
 public:
  BlobObjectStoreImpl(fs::path root, store::BlobStore& blobs, const Clock& clock)
      : root_(std::move(root)), blobs_(blobs), clock_(clock), uploads_(root_) {}
  ~BlobObjectStoreImpl() override { sqlite3_close(db_); }

  Result<ObjectInfo> put(std::string_view bucket, std::string_view key, std::string_view data,
                         const PutOptions& options) override {
    CAIRN_RETURN_IF_ERROR(keyPath(root_, bucket, key).status());
    ObjectInfo info;
    info.key = key;
    info.size = data.size();
    info.etag = md5Hex(data);
    info.checksum_crc32 = crc32Base64(crc32(data));
    info.content_type = options.content_type;
    CAIRN_ASSIGN_OR_RETURN(auto writer, blobs_.writer());
    if (Status s = writer->write(data); !s.ok()) {
      writer->abort();
      return s.withContext("store object " + std::string(key.substr(0, 100)));
    }
    return commit(bucket, std::move(info), *writer);
  }

  Result<ObjectReader> get(std::string_view bucket, std::string_view key) override {
    // A concurrent overwrite or delete can swap the body (and GC sweep the old one) between the
    // index lookup and the open: look again, a few times, before calling it lost.
    for (int attempt = 0;; ++attempt) {
      CAIRN_ASSIGN_OR_RETURN(IndexRow row, lookup(bucket, key));
      Result<UniqueFd> fd = blobFd(blobs_, row.digest);
      if (fd.ok()) {
        ObjectReader reader;
        reader.info = std::move(row.info);
        reader.fd = std::move(*fd);
        return reader;
      }
      if (fd.status().code() != StatusCode::kNotFound) return fd.status();
      CAIRN_ASSIGN_OR_RETURN(IndexRow again, lookup(bucket, key));
      if (again.digest == row.digest || attempt == 3) {
        return internalError("object \"" + row.info.key.substr(0, 100) + "\": its body blob " +
                             row.digest.str() + " is missing from the blob store");
      }
    }
  }

  Result<ObjectInfo> head(std::string_view bucket, std::string_view key) override {
    CAIRN_ASSIGN_OR_RETURN(IndexRow row, lookup(bucket, key));
    return std::move(row.info);
  }

  Result<ListResult> list(std::string_view bucket, std::string_view prefix, std::size_t max_keys,
                          std::string_view start_after) override {
    CAIRN_RETURN_IF_ERROR(validateBucketName(bucket));
    // Keys are BLOBs, so SQLite orders them bytewise, as S3 does. Every key that starts with
    // `prefix` sorts at or after it, and they are contiguous: stop at the first one that does not.
    std::string sql =
        std::string("SELECT ") + kColumns +
        " FROM objects WHERE bucket = ? AND key >= ? AND key > ? ORDER BY key LIMIT ?";
    std::lock_guard lock(db_mu_);
    Stmt q;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &q.s, nullptr) != SQLITE_OK)
      return sqlError("list");
    bindText(q.s, 1, bucket);
    bindBlob(q.s, 2, prefix);
    bindBlob(q.s, 3, start_after);
    sqlite3_bind_int64(q.s, 4,
                       static_cast<sqlite3_int64>(std::min<std::size_t>(max_keys, 1 << 20)) + 1);
    ListResult out;
    int rc;
    while ((rc = sqlite3_step(q.s)) == SQLITE_ROW) {
      CAIRN_ASSIGN_OR_RETURN(IndexRow row, rowFrom(q.s));
      if (row.info.key.compare(0, prefix.size(), prefix) != 0) break;
      if (out.objects.size() == max_keys) {
        out.truncated = true;
        break;
      }
      out.objects.push_back(std::move(row.info));
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return sqlError("list");
    return out;
  }

  Status remove(std::string_view bucket, std::string_view key) override {
    CAIRN_RETURN_IF_ERROR(keyPath(root_, bucket, key).status());
    // The body blob stays until the store's GC finds nothing else uses it.
    std::lock_guard lock(db_mu_);
    Stmt q;
    if (sqlite3_prepare_v2(db_, "DELETE FROM objects WHERE bucket = ? AND key = ?", -1, &q.s,
                           nullptr) != SQLITE_OK) {
      return sqlError("remove");
    }
    bindText(q.s, 1, bucket);
    bindBlob(q.s, 2, key);
    if (sqlite3_step(q.s) != SQLITE_DONE) return sqlError("remove");
    return okStatus();
  }

  Result<std::string> createMultipart(std::string_view bucket, std::string_view key,
                                      const PutOptions& options) override {
    return uploads_.create(bucket, key, options);
  }

  Result<PartInfo> uploadPart(std::string_view bucket, std::string_view key,
                              std::string_view upload_id, int part_number,
                              std::string_view data) override {
    return uploads_.uploadPart(bucket, key, upload_id, part_number, data);
  }

  Result<std::vector<PartInfo>> listParts(std::string_view bucket, std::string_view key,
                                          std::string_view upload_id) override {
    return uploads_.listParts(bucket, key, upload_id);
  }

  Result<ObjectInfo> completeMultipart(std::string_view bucket, std::string_view key,
                                       std::string_view upload_id,
                                       const std::vector<int>& part_numbers) override {
    CAIRN_RETURN_IF_ERROR(keyPath(root_, bucket, key).status());
    CAIRN_ASSIGN_OR_RETURN(auto writer, blobs_.writer());
    Result<JoinedObject> joined =
        uploads_.join(bucket, key, upload_id, part_numbers,
                      [&](std::string_view chunk) { return writer->write(chunk); });
    if (!joined.ok()) {
      writer->abort();
      return joined.status();
    }
    ObjectInfo info;
    info.key = key;
    info.size = joined->size;
    info.etag = joined->etag;
    info.checksum_crc32 = joined->checksum_crc32;
    info.content_type = joined->content_type;
    CAIRN_ASSIGN_OR_RETURN(info, commit(bucket, std::move(info), *writer));
    (void)uploads_.remove(bucket, key, upload_id);
    return info;
  }

  Status abortMultipart(std::string_view bucket, std::string_view key,
                        std::string_view upload_id) override {
    return uploads_.remove(bucket, key, upload_id);
  }

  Status withFrozenRoots(
      const std::function<Status(const std::vector<Digest>& roots)>& sweep) override {
    std::unique_lock freeze(freeze_mu_);
    std::vector<Digest> roots;
    {
      std::lock_guard lock(db_mu_);
      Stmt q;
      if (sqlite3_prepare_v2(db_, "SELECT DISTINCT digest FROM objects", -1, &q.s, nullptr) !=
          SQLITE_OK) {
        return sqlError("list digests");
      }
      int rc;
      while ((rc = sqlite3_step(q.s)) == SQLITE_ROW) {
        std::string text = textColumn(q.s, 0);
        Result<Digest> d = Digest::parse(text);
        // A row that cannot name its blob cannot keep one alive; sweeping anyway could lose a
        // body the row meant, so stop instead.
        if (!d.ok()) return internalError("object index: bad digest \"" + text + "\"");
        roots.push_back(*d);
      }
      if (rc != SQLITE_DONE) return sqlError("list digests");
    }
    return sweep(roots);
  }

  Result<std::vector<ObjectInfo>> listModifiedBefore(std::string_view bucket,
                                                     SystemTime before) override {
    CAIRN_RETURN_IF_ERROR(validateBucketName(bucket));
    std::string sql = std::string("SELECT ") + kColumns +
                      " FROM objects WHERE bucket = ? AND mtime_us < ? ORDER BY key";
    std::lock_guard lock(db_mu_);
    Stmt q;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &q.s, nullptr) != SQLITE_OK) {
      return sqlError("list modified before");
    }
    bindText(q.s, 1, bucket);
    sqlite3_bind_int64(q.s, 2, toMicros(before));
    std::vector<ObjectInfo> out;
    int rc;
    while ((rc = sqlite3_step(q.s)) == SQLITE_ROW) {
      CAIRN_ASSIGN_OR_RETURN(IndexRow row, rowFrom(q.s));
      out.push_back(std::move(row.info));
    }
    if (rc != SQLITE_DONE) return sqlError("list modified before");
    return out;
  }

  Result<std::vector<ObjectInfo>> expire(
      std::string_view bucket, SystemTime before,
      const std::function<bool(const ObjectInfo&)>& keep) override {
    CAIRN_ASSIGN_OR_RETURN(std::vector<ObjectInfo> old, listModifiedBefore(bucket, before));
    std::vector<ObjectInfo> removed;
    for (ObjectInfo& info : old) {
      if (keep(info)) continue;
      std::lock_guard lock(db_mu_);
      Stmt q;
      if (sqlite3_prepare_v2(db_,
                             "DELETE FROM objects WHERE bucket = ? AND key = ? AND mtime_us < ?",
                             -1, &q.s, nullptr) != SQLITE_OK) {
        return sqlError("expire");
      }
      bindText(q.s, 1, bucket);
      bindBlob(q.s, 2, info.key);
      sqlite3_bind_int64(q.s, 3, toMicros(before));
      if (sqlite3_step(q.s) != SQLITE_DONE) return sqlError("expire");
      if (sqlite3_changes(db_) > 0) removed.push_back(std::move(info));
    }
    return removed;
  }

  Result<std::size_t> abortUploadsIdleSince(SystemTime before) override {
    return uploads_.removeIdleSince(before);
  }

  Status init() {
    CAIRN_RETURN_IF_ERROR(uploads_.init());
    fs::path db_path = root_ / "index.db";
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(db_path.c_str(), &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                             nullptr);
    if (rc != SQLITE_OK) {
      Status s = internalError("open object index " + db_path.string() + ": " +
                               (db ? sqlite3_errmsg(db) : "out of memory"));
      sqlite3_close(db);
      return s;
    }
    db_ = db;
    sqlite3_busy_timeout(db_, 10000);
    // synchronous=FULL: an object a client was told is stored survives a power cut.
    CAIRN_RETURN_IF_ERROR(exec("PRAGMA journal_mode=WAL"));
    CAIRN_RETURN_IF_ERROR(exec("PRAGMA synchronous=FULL"));
    CAIRN_RETURN_IF_ERROR(
        exec("CREATE TABLE IF NOT EXISTS objects(bucket TEXT NOT NULL, key BLOB NOT NULL, "
             "digest TEXT NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL, "
             "crc32 TEXT NOT NULL, content_type TEXT NOT NULL, mtime_us INTEGER NOT NULL, "
             "PRIMARY KEY(bucket, key)) WITHOUT ROWID"));
    return migrateFsObjects();
  }

 private:
  // Publishes the writer's blob and points the key at it, as one step against the GC: between
  // the commit and the index row a sweep could otherwise remove a blob that already existed
  // (committed long ago, unreferenced until now).
  Result<ObjectInfo> commit(std::string_view bucket, ObjectInfo info, store::BlobWriter& writer) {
    std::shared_lock freeze(freeze_mu_);
    Result<store::BlobInfo> blob = writer.commit(info.size);
    if (!blob.ok()) return blob.status().withContext("store object " + info.key.substr(0, 100));
    info.last_modified = clock_.now();
    CAIRN_RETURN_IF_ERROR(upsert(bucket, info, blob->digest));
    return info;
  }

  Status upsert(std::string_view bucket, const ObjectInfo& info, const Digest& digest) {
    std::lock_guard lock(db_mu_);
    Stmt q;
    if (sqlite3_prepare_v2(db_,
                           "INSERT OR REPLACE INTO objects(bucket, key, digest, size, etag, crc32, "
                           "content_type, mtime_us) VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
                           -1, &q.s, nullptr) != SQLITE_OK) {
      return sqlError("store key");
    }
    bindText(q.s, 1, bucket);
    bindBlob(q.s, 2, info.key);
    bindText(q.s, 3, digest.str());
    sqlite3_bind_int64(q.s, 4, static_cast<sqlite3_int64>(info.size));
    bindText(q.s, 5, info.etag);
    bindText(q.s, 6, info.checksum_crc32);
    bindText(q.s, 7, info.content_type);
    sqlite3_bind_int64(q.s, 8, toMicros(info.last_modified));
    if (sqlite3_step(q.s) != SQLITE_DONE) return sqlError("store key");
    return okStatus();
  }

  Result<IndexRow> lookup(std::string_view bucket, std::string_view key) {
    CAIRN_RETURN_IF_ERROR(keyPath(root_, bucket, key).status());
    std::string sql =
        std::string("SELECT ") + kColumns + " FROM objects WHERE bucket = ? AND key = ?";
    std::lock_guard lock(db_mu_);
    Stmt q;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &q.s, nullptr) != SQLITE_OK) {
      return sqlError("look up key");
    }
    bindText(q.s, 1, bucket);
    bindBlob(q.s, 2, key);
    int rc = sqlite3_step(q.s);
    if (rc == SQLITE_DONE) return notFound("no such key " + std::string(key));
    if (rc != SQLITE_ROW) return sqlError("look up key");
    return rowFrom(q.s);
  }

  // Objects a FsObjectStore left under the same root (<root>/buckets/<b>/objects) move into the
  // blob store once, at open: each is copied into a blob and indexed (keeping its etag, crc32,
  // content type and time) before its file is removed, so a crash midway loses nothing and the
  // next open carries on. A key already in the index is newer than its file.
  Status migrateFsObjects() {
    FsObjectStore fs_store(root_, clock_);
    std::size_t moved = 0;
    for (const std::string& bucket : fs_store.buckets()) {
      std::string after;
      while (true) {
        CAIRN_ASSIGN_OR_RETURN(ListResult page, fs_store.list(bucket, "", 1000, after));
        for (const ObjectInfo& old : page.objects) {
          after = old.key;
          Result<IndexRow> existing = lookup(bucket, old.key);
          if (!existing.ok() && existing.status().code() != StatusCode::kNotFound) {
            return existing.status();
          }
          if (!existing.ok()) {
            CAIRN_ASSIGN_OR_RETURN(ObjectReader reader, fs_store.get(bucket, old.key));
            std::shared_lock freeze(freeze_mu_);
            Result<store::BlobInfo> blob = store::writeBlobFromFd(blobs_, reader.fd.get());
            if (!blob.ok()) {
              return blob.status().withContext("migrate object " + old.key.substr(0, 100));
            }
            CAIRN_RETURN_IF_ERROR(upsert(bucket, reader.info, blob->digest));
            ++moved;
          }
          CAIRN_RETURN_IF_ERROR(fs_store.remove(bucket, old.key));
        }
        if (!page.truncated) break;
      }
      std::error_code ec;
      fs::remove_all(fs_store.objectsDir(bucket), ec);
    }
    if (moved > 0) {
      spdlog::info("object store: moved {} object(s) from {} into the blob store", moved,
                   (root_ / "buckets").string());
    }
    return okStatus();
  }

  // A null data pointer (a default std::string_view) would bind SQL NULL, which compares as
  // unknown: bind an empty value instead.
  static void bindText(sqlite3_stmt* s, int i, std::string_view v) {
    sqlite3_bind_text(s, i, v.data() != nullptr ? v.data() : "", static_cast<int>(v.size()),
                      SQLITE_TRANSIENT);
  }
  // Keys bind as BLOBs: compared bytewise, and any byte sequence is kept as it is.
  static void bindBlob(sqlite3_stmt* s, int i, std::string_view v) {
    if (v.data() == nullptr) {
      sqlite3_bind_zeroblob(s, i, 0);
    } else {
      sqlite3_bind_blob(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    }
  }

  Status exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string message = err ? err : "unknown error";
      sqlite3_free(err);
      return internalError("object index: " + message);
    }
    return okStatus();
  }

  Status sqlError(const std::string& what) const {
    return internalError("object index: " + what + ": " + sqlite3_errmsg(db_));
  }

  fs::path root_;
  store::BlobStore& blobs_;
  const Clock& clock_;
  Uploads uploads_;
  sqlite3* db_ = nullptr;
  std::mutex db_mu_;
  // Writers hold it shared from blob commit to index row; withFrozenRoots holds it exclusively.
  std::shared_mutex freeze_mu_;
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

Result<std::size_t> expireBuildContexts(BlobObjectStore& store, meta::MetaStore& meta,
                                        std::string_view bucket, SystemTime before) {
  // The snapshots are read before the objects: a create after this query either uploaded its
  // context just now (newer than `before`: it stays) or found an old one listed and skipped the
  // upload; removing that one races the create, the window expiry accepts (the build then fails
  // naming the missing context, and a retry uploads it again).
  meta::SnapshotFilter filter;
  filter.states = {meta::SnapshotState::kPending, meta::SnapshotState::kBuilding};
  filter.limit = 1'000'000;
  CAIRN_ASSIGN_OR_RETURN(std::vector<meta::Snapshot> waiting, meta.findSnapshots(filter));
  std::set<std::string> needed;
  for (const meta::Snapshot& s : waiting) {
    if (!s.build_info) continue;
    for (const std::string& hash : s.build_info->context_hashes) {
      needed.insert(s.organization_id.value_or("") + "/" + hash + "/context.tar");
    }
  }
  CAIRN_ASSIGN_OR_RETURN(std::vector<ObjectInfo> removed,
                         store.expire(bucket, before, [&](const ObjectInfo& info) {
                           return needed.count(info.key) != 0;
                         }));
  if (!removed.empty()) {
    spdlog::info("object store: expired {} build context(s) in {}", removed.size(), bucket);
  }
  return removed.size();
}

ContextExpiry::ContextExpiry(BlobObjectStore& store, meta::MetaStore& meta, Options options)
    : store_(store), meta_(meta), options_(std::move(options)) {
  thread_ = std::thread([this] { loop(); });
}

ContextExpiry::~ContextExpiry() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

Result<std::size_t> ContextExpiry::runOnce() {
  const Clock& clock = options_.clock != nullptr ? *options_.clock : RealClock::instance();
  // Multipart uploads left by clients that died: idle for a whole ttl, they are dead too.
  CAIRN_ASSIGN_OR_RETURN(std::size_t aborted,
                         store_.abortUploadsIdleSince(clock.now() - options_.ttl));
  if (aborted > 0) spdlog::info("object store: removed {} abandoned multipart upload(s)", aborted);
  CAIRN_ASSIGN_OR_RETURN(std::size_t n, expireBuildContexts(store_, meta_, options_.bucket,
                                                            clock.now() - options_.ttl));
  if (n > 0 && options_.after_expired) options_.after_expired();
  return n;
}

void ContextExpiry::loop() {
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, options_.interval, [this] { return stop_; })) {
    lock.unlock();
    Result<std::size_t> n = runOnce();
    if (!n.ok()) spdlog::warn("build context expiry: {}", n.status().message());
    lock.lock();
  }
}

Result<std::unique_ptr<BlobObjectStore>> BlobObjectStore::open(const fs::path& root,
                                                               store::BlobStore& blobs,
                                                               const Clock& clock) {
  auto store = std::make_unique<BlobObjectStoreImpl>(root, blobs, clock);
  CAIRN_RETURN_IF_ERROR(store->init());
  return std::unique_ptr<BlobObjectStore>(std::move(store));
}

}  // namespace cairn::api
