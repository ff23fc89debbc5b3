#include "cairn/store/layer_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "cairn/common/crypto.h"
#include "cairn/common/encoding.h"
#include "cairn/common/fs.h"
#include "cairn/common/json.h"
#include "cairn/layer/chain_id.h"
#include "cairn/layer/prefetch.h"

namespace cairn::store {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kStagingPrefix = ".staging-";
constexpr std::string_view kTrashPrefix = ".trash-";
constexpr int kMaxChainLength = 500;  // overlayfs itself stops at 500 lower dirs

Status removeTree(const fs::path& p) {
  std::error_code ec;
  fs::remove_all(p, ec);  // never follows symlinks
  if (ec) return errnoStatus(ec.value(), "remove " + p.string());
  return okStatus();
}

std::string layerJson(const LayerInfo& info) {
  Json j;
  j["chainId"] = info.chain_id.str();
  j["diffId"] = info.diff_id.str();
  j["parent"] = info.parent.str();
  j["size"] = info.size;
  j["createdAt"] = formatRfc3339(info.created_at);
  return j.dump(2) + "\n";
}

Result<LayerInfo> parseLayerJson(std::string_view text, const std::string& where) {
  CAIRN_ASSIGN_OR_RETURN(Json j, parseJson(text));
  auto str = [&](const char* key) -> Result<std::string> {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) {
      return internalError(where + ": field " + key + " missing or not a string");
    }
    return it->get<std::string>();
  };
  LayerInfo info;
  CAIRN_ASSIGN_OR_RETURN(std::string chain, str("chainId"));
  CAIRN_ASSIGN_OR_RETURN(info.chain_id, Digest::parse(chain));
  CAIRN_ASSIGN_OR_RETURN(std::string diff, str("diffId"));
  CAIRN_ASSIGN_OR_RETURN(info.diff_id, Digest::parse(diff));
  CAIRN_ASSIGN_OR_RETURN(std::string parent, str("parent"));
  if (!parent.empty()) {
    CAIRN_ASSIGN_OR_RETURN(info.parent, Digest::parse(parent));
  }
  auto size = j.find("size");
  if (size == j.end() || !size->is_number_unsigned()) {
    return internalError(where + ": field size missing or not a number");
  }
  info.size = size->get<std::uint64_t>();
  CAIRN_ASSIGN_OR_RETURN(std::string created, str("createdAt"));
  CAIRN_ASSIGN_OR_RETURN(info.created_at, parseRfc3339(created));
  return info;
}

}  // namespace

LayerLease& LayerLease::operator=(LayerLease&& o) noexcept {
  if (this != &o) {
    release();
    store_ = o.store_;
    chain_id_ = std::move(o.chain_id_);
    o.store_ = nullptr;
  }
  return *this;
}

void LayerLease::release() {
  if (store_ != nullptr) store_->releaseLease(chain_id_);
  store_ = nullptr;
}

LayerStore::LayerStore(fs::path root) : layers_dir_(std::move(root) / "layers") {}

Result<std::unique_ptr<LayerStore>> LayerStore::open(const fs::path& root) {
  if (root.empty()) return invalidArgument("layer store root must not be empty");
  std::unique_ptr<LayerStore> store(new LayerStore(root));
  std::error_code ec;
  fs::create_directories(store->layers_dir_, ec);
  if (ec) return errnoStatus(ec.value(), "create directory " + store->layers_dir_.string());
  return store;
}

fs::path LayerStore::fsPath(const Digest& chain_id) const {
  return layers_dir_ / chain_id.hex() / "fs";
}

bool LayerStore::exists(const Digest& chain_id) const {
  if (chain_id.empty()) return false;
  struct stat st {};
  return ::stat((layers_dir_ / chain_id.hex() / "layer.json").c_str(), &st) == 0;
}

Result<LayerInfo> LayerStore::info(const Digest& chain_id) const {
  if (chain_id.empty()) return invalidArgument("empty chain id");
  fs::path meta = layers_dir_ / chain_id.hex() / "layer.json";
  auto text = readFile(meta);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) {
      return notFound("layer " + chain_id.str() + " not found");
    }
    return text.status();
  }
  CAIRN_ASSIGN_OR_RETURN(LayerInfo info, parseLayerJson(*text, meta.string()));
  if (info.chain_id != chain_id) {
    return internalError(meta.string() + " describes " + info.chain_id.str());
  }
  return info;
}

Result<std::vector<LayerInfo>> LayerStore::list() const {
  std::vector<LayerInfo> out;
  std::error_code ec;
  for (fs::directory_iterator it(layers_dir_, ec), end; !ec && it != end; it.increment(ec)) {
    auto digest = Digest::fromSha256Hex(it->path().filename().string());
    if (!digest.ok()) continue;  // staging, trash
    auto layer = info(*digest);
    if (layer.status().code() == StatusCode::kNotFound) continue;  // removed meanwhile
    if (!layer.ok()) return layer.status();
    out.push_back(*layer);
  }
  if (ec) return errnoStatus(ec.value(), "list " + layers_dir_.string());
  std::sort(out.begin(), out.end(),
            [](const LayerInfo& a, const LayerInfo& b) { return a.chain_id < b.chain_id; });
  return out;
}

Result<std::vector<fs::path>> LayerStore::lowerDirs(const Digest& top) const {
  std::vector<fs::path> out;
  Digest cur = top;
  while (!cur.empty()) {
    if (out.size() >= kMaxChainLength) {
      return failedPrecondition("layer chain of " + top.str() + " is longer than " +
                                std::to_string(kMaxChainLength) + " layers");
    }
    auto layer = info(cur);
    if (!layer.ok()) return layer.status().withContext("layer chain of " + top.str());
    out.push_back(fsPath(cur));
    cur = layer->parent;
  }
  return out;
}

Result<fs::path> LayerStore::makeStaging() {
  for (int attempt = 0; attempt < 8; ++attempt) {
    fs::path p = layers_dir_ / (std::string(kStagingPrefix) + hexEncode(randomBytes(8)));
    if (::mkdir(p.c_str(), 0700) == 0) return p;
    if (errno != EEXIST) return errnoStatus(errno, "create " + p.string());
  }
  return internalError("could not create a staging directory in " + layers_dir_.string());
}

Result<LayerInfo> LayerStore::getOrCreate(const Digest& parent, const Digest& diff_id,
                                          const FillFn& fill) {
  if (diff_id.empty()) return invalidArgument("empty diff id");
  Digest chain = layer::chainId(parent, diff_id);
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return creating_.count(chain) == 0; });
    if (exists(chain)) return info(chain);
    if (!parent.empty() && !exists(parent)) {
      return failedPrecondition("parent layer " + parent.str() + " of " + chain.str() +
                                " does not exist");
    }
    creating_.insert(chain);
    // The parent must survive GC while we build on it.
    ++leases_[parent];
  }
  struct Done {
    LayerStore* self;
    Digest chain, parent;
    ~Done() {
      std::lock_guard<std::mutex> lock(self->mu_);
      self->creating_.erase(chain);
      if (--self->leases_[parent] <= 0) self->leases_.erase(parent);
      self->cv_.notify_all();
    }
  } done{this, chain, parent};

  CAIRN_ASSIGN_OR_RETURN(fs::path staging, makeStaging());
  auto fail = [&](Status s) {
    (void)removeTree(staging);
    return s.withContext("layer " + chain.str());
  };
  fs::path fs_dir = staging / "fs";
  if (::mkdir(fs_dir.c_str(), 0755) != 0)
    return fail(errnoStatus(errno, "create " + fs_dir.string()));
  auto size = fill(fs_dir);
  if (!size.ok()) return fail(size.status());
  LayerInfo out{chain, diff_id, parent, *size, std::chrono::system_clock::now()};
  {
    // A plain write: the staging dir is private until its rename, and the syncfs below makes
    // this file durable together with the tree (one flush per layer instead of three).
    fs::path json = staging / "layer.json";
    UniqueFd fd(::open(json.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd.valid()) return fail(errnoStatus(errno, "create " + json.string()));
    if (Status s = writeAll(fd.get(), layerJson(out)); !s.ok())
      return fail(s.withContext(json.string()));
  }
  {
    // Everything in the tree reaches the disk before the layer gets its name.
    UniqueFd fd(::open(staging.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid() || ::syncfs(fd.get()) != 0)
      return fail(errnoStatus(errno, "syncfs " + staging.string()));
  }
  fs::path final_dir = layers_dir_ / chain.hex();
  if (::rename(staging.c_str(), final_dir.c_str()) != 0) {
    if (errno == ENOTEMPTY || errno == EEXIST) {
      // Another process published the same layer first: theirs is as good as ours.
      (void)removeTree(staging);
      return info(chain);
    }
    return fail(errnoStatus(errno, "rename " + staging.string() + " to " + final_dir.string()));
  }
  CAIRN_RETURN_IF_ERROR(fsyncDir(layers_dir_));
  return out;
}

Result<LayerInfo> LayerStore::importTar(layer::ByteSource& tar, const Digest& parent,
                                        const Digest& diff_id, const layer::ApplyOptions& options) {
  return getOrCreate(parent, diff_id, [&](const fs::path& fs_dir) -> Result<std::uint64_t> {
    CAIRN_ASSIGN_OR_RETURN(auto plain, layer::makeAutoDecompressor(&tar));
    layer::HashingSource hashed(plain.get());
    // Inflate and hash on a second thread while this one creates the files.
    layer::PrefetchSource ahead(&hashed);
    layer::ApplyOptions o = options;
    o.whiteouts = layer::WhiteoutMode::kOverlay;  // layer dirs are overlay lower dirs
    CAIRN_ASSIGN_OR_RETURN(layer::ApplyReport report, layer::applyLayerTar(ahead, fs_dir, o));
    // The tar reader stops at the end-of-archive blocks; the diff id covers every byte. Once
    // `ahead` reports the end, its thread is done with `hashed`.
    CAIRN_RETURN_IF_ERROR(layer::drain(ahead));
    Digest actual = hashed.digest();
    if (actual != diff_id) {
      return invalidArgument("layer diff id mismatch: expected " + diff_id.str() + ", got " +
                             actual.str());
    }
    return report.bytes;
  });
}

Result<LayerInfo> LayerStore::importBlob(const BlobReader& blobs, const Digest& blob,
                                         const Digest& parent, const Digest& diff_id,
                                         const layer::ApplyOptions& options) {
  Digest chain = layer::chainId(parent, diff_id);
  if (exists(chain)) return info(chain);
  CAIRN_ASSIGN_OR_RETURN(auto stream, blobs.openRead(blob));
  layer::FunctionSource src(
      [&](void* buf, std::size_t n) -> Result<std::size_t> { return stream->read(buf, n); });
  auto r = importTar(src, parent, diff_id, options);
  if (!r.ok()) return r.status().withContext("blob " + blob.str());
  return r;
}

Result<LayerInfo> LayerStore::adoptDir(const Digest& parent, const fs::path& dir,
                                       const layer::DiffOptions& options) {
  layer::NullSink null;
  layer::HashingSink hashed(&null);
  CAIRN_ASSIGN_OR_RETURN(layer::DiffReport report, layer::createLayerTar(dir, hashed, options));
  Digest diff_id = hashed.digest();
  return getOrCreate(parent, diff_id, [&](const fs::path& fs_dir) -> Result<std::uint64_t> {
    if (::rmdir(fs_dir.c_str()) != 0) return errnoStatus(errno, "remove " + fs_dir.string());
    if (::rename(dir.c_str(), fs_dir.c_str()) != 0) {
      return errnoStatus(errno, "move " + dir.string() +
                                    " into the layer store (it must be on "
                                    "the same filesystem)");
    }
    return report.bytes;
  });
}

Result<LayerLease> LayerStore::lease(const Digest& chain_id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!exists(chain_id)) return notFound("layer " + chain_id.str() + " not found");
  ++leases_[chain_id];
  return LayerLease(this, chain_id);
}

int LayerStore::leaseCount(const Digest& chain_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = leases_.find(chain_id);
  return it == leases_.end() ? 0 : it->second;
}

void LayerStore::releaseLease(const Digest& chain_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = leases_.find(chain_id);
  if (it != leases_.end() && --it->second <= 0) leases_.erase(it);
}

Result<LayerGcReport> LayerStore::collectGarbage(const std::vector<Digest>& live) {
  CAIRN_ASSIGN_OR_RETURN(std::vector<LayerInfo> all, list());
  std::map<Digest, Digest> parent_of;
  for (const LayerInfo& l : all)
    parent_of[l.chain_id] = l.parent;

  std::lock_guard<std::mutex> lock(mu_);
  std::set<Digest> keep;
  auto keepChain = [&](Digest d) {
    for (int i = 0; !d.empty() && i < kMaxChainLength && keep.insert(d).second; ++i) {
      auto it = parent_of.find(d);
      if (it == parent_of.end()) break;
      d = it->second;
    }
  };
  for (const Digest& d : live)
    keepChain(d);
  for (const auto& [d, n] : leases_)
    keepChain(d);

  LayerGcReport report;
  for (const LayerInfo& l : all) {
    if (keep.count(l.chain_id) != 0) {
      ++report.kept;
      continue;
    }
    fs::path from = layers_dir_ / l.chain_id.hex();
    fs::path trash = layers_dir_ / (std::string(kTrashPrefix) + hexEncode(randomBytes(8)));
    if (::rename(from.c_str(), trash.c_str()) != 0) {
      if (errno == ENOENT) continue;
      return errnoStatus(errno, "move " + from.string() + " to " + trash.string());
    }
    CAIRN_RETURN_IF_ERROR(removeTree(trash));
    report.removed.push_back(l.chain_id);
  }
  return report;
}

Result<std::size_t> LayerStore::cleanStaging(std::chrono::seconds older_than) {
  std::size_t removed = 0;
  auto now = std::chrono::system_clock::now();
  std::error_code ec;
  std::vector<fs::path> victims;
  for (fs::directory_iterator it(layers_dir_, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.rfind(kStagingPrefix, 0) != 0 && name.rfind(kTrashPrefix, 0) != 0) continue;
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    auto mtime = std::chrono::system_clock::from_time_t(st.st_mtim.tv_sec);
    if (now - mtime < older_than) continue;
    victims.push_back(it->path());
  }
  if (ec) return errnoStatus(ec.value(), "list " + layers_dir_.string());
  for (const fs::path& p : victims) {
    CAIRN_RETURN_IF_ERROR(removeTree(p));
    ++removed;
  }
  return removed;
}

Result<layer::EncodedLayer> exportDirToBlob(const fs::path& dir, BlobIngester& blobs,
                                            layer::Compression compression,
                                            const layer::DiffOptions& diff_options,
                                            const layer::CompressionOptions& comp_options) {
  CAIRN_ASSIGN_OR_RETURN(auto writer, blobs.writer());
  layer::FunctionSink sink([&](std::string_view data) { return writer->write(data); });
  if (compression == layer::Compression::kNone) {
    // The blob is the tar itself: its digest is the diff id, and the writer's own hash (which
    // commit verifies against) is the only one the bytes need.
    CAIRN_RETURN_IF_ERROR(layer::createLayerTar(dir, sink, diff_options).status());
    CAIRN_ASSIGN_OR_RETURN(BlobInfo info, writer->commit());
    layer::EncodedLayer out;
    out.diff_id = info.digest;
    out.tar_size = info.size;
    out.digest = info.digest;
    out.size = info.size;
    out.compression = layer::Compression::kNone;
    out.media_type = layer::ociLayerMediaType(layer::Compression::kNone);
    return out;
  }
  layer::LayerEncoder encoder(compression, &sink, comp_options);
  CAIRN_RETURN_IF_ERROR(layer::createLayerTar(dir, encoder, diff_options).status());
  CAIRN_ASSIGN_OR_RETURN(layer::EncodedLayer out, encoder.finishLayer());
  CAIRN_RETURN_IF_ERROR(writer->commit(out.size, out.digest).status());
  return out;
}

}  // namespace cairn::store
