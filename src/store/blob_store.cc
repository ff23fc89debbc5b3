#include "cairn/store/blob_store.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <unordered_set>

#include "cairn/layer/diff.h"
#include "cairn/layer/stream.h"

namespace cairn::store {

Result<BlobInfo> BlobIngester::putLayerTar(const std::filesystem::path& dir, const Digest& digest,
                                           std::uint64_t size) {
  CAIRN_ASSIGN_OR_RETURN(auto w, writer());
  layer::FunctionSink sink([&](std::string_view data) { return w->write(data); });
  if (Status s = layer::createLayerTar(dir, sink).status(); !s.ok()) {
    w->abort();
    return s.withContext("layer tar of " + dir.string());
  }
  auto info = w->commit(size, digest);
  if (!info.ok()) return info.status().withContext("layer tar of " + dir.string());
  return info;
}

Result<std::string> BlobReader::readAll(const Digest& digest, std::uint64_t max_size) const {
  CAIRN_ASSIGN_OR_RETURN(auto stream, openRead(digest));
  if (stream->size() > max_size) {
    return resourceExhausted("blob " + digest.str() + " is " + std::to_string(stream->size()) +
                             " bytes, more than the limit of " + std::to_string(max_size));
  }
  std::string out(static_cast<std::size_t>(stream->size()), '\0');
  std::size_t have = 0;
  while (have < out.size()) {
    CAIRN_ASSIGN_OR_RETURN(std::size_t n, stream->read(out.data() + have, out.size() - have));
    if (n == 0) break;
    have += n;
  }
  if (have != out.size()) {
    return internalError("blob " + digest.str() + ": short read, " + std::to_string(have) + " of " +
                         std::to_string(out.size()) + " bytes");
  }
  return out;
}

Result<std::vector<BlobInfo>> BlobManager::list() const {
  std::vector<BlobInfo> out;
  CAIRN_RETURN_IF_ERROR(walk([&](const BlobInfo& info) {
    out.push_back(info);
    return okStatus();
  }));
  std::sort(out.begin(), out.end(),
            [](const BlobInfo& a, const BlobInfo& b) { return a.digest < b.digest; });
  return out;
}

Result<BlobInfo> writeBlob(BlobIngester& ingester, std::string_view data,
                           std::optional<Digest> expected_digest) {
  CAIRN_ASSIGN_OR_RETURN(auto w, ingester.writer());
  if (Status s = w->write(data); !s.ok()) {
    w->abort();
    return s;
  }
  return w->commit(data.size(), std::move(expected_digest));
}

Result<BlobInfo> writeBlobFromFd(BlobIngester& ingester, int fd,
                                 std::optional<Digest> expected_digest) {
  CAIRN_ASSIGN_OR_RETURN(auto w, ingester.writer());
  std::string buf(1 << 20, '\0');
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      Status s = errnoStatus(errno, "read blob source");
      w->abort();
      return s;
    }
    if (n == 0) break;
    if (Status s = w->write(std::string_view(buf.data(), static_cast<std::size_t>(n))); !s.ok()) {
      w->abort();
      return s;
    }
  }
  return w->commit(std::nullopt, std::move(expected_digest));
}

Result<GcReport> collectGarbage(BlobStore& store, const std::vector<Digest>& live,
                                std::optional<SystemTime> not_after) {
  std::unordered_set<Digest> keep(live.begin(), live.end());
  std::vector<BlobInfo> candidates;
  GcReport report;
  CAIRN_RETURN_IF_ERROR(store.walk([&](const BlobInfo& info) {
    if (keep.count(info.digest) != 0 || (not_after && info.committed_at > *not_after)) {
      ++report.kept;
    } else {
      candidates.push_back(info);
    }
    return okStatus();
  }));
  std::sort(candidates.begin(), candidates.end(),
            [](const BlobInfo& a, const BlobInfo& b) { return a.digest < b.digest; });
  for (const BlobInfo& info : candidates) {
    Status s = store.remove(info.digest);
    if (s.code() == StatusCode::kNotFound) continue;  // someone else removed it: fine
    if (!s.ok()) return s.withContext("garbage collection");
    report.removed.push_back(info.digest);
    report.removed_bytes += info.size;
  }
  return report;
}

}  // namespace cairn::store
