#include "cairn/build/builder.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "cairn/build/copy.h"
#include "cairn/build/plan.h"
#include "cairn/build/rooted_fs.h"
#include "cairn/common/crypto.h"
#include "cairn/common/curl_api.h"
#include "cairn/common/encoding.h"
#include "cairn/common/fs.h"
#include "cairn/common/json.h"
#include "cairn/common/strings.h"
#include "cairn/common/time.h"
#include "cairn/common/uuid.h"
#include "cairn/dockerfile/dockerignore.h"
#include "cairn/dockerfile/instructions.h"
#include "cairn/dockerfile/shell_lexer.h"
#include "cairn/layer/apply.h"
#include "cairn/layer/compression.h"
#include "cairn/layer/diff.h"
#include "cairn/layer/stream.h"
#include "cairn/oci/reference.h"
#include "cairn/runtime/overlay.h"

namespace cairn::build {
namespace {

namespace fs = std::filesystem;
using dockerfile::Command;
using dockerfile::EnvMap;

//! One layer of an image being built.
struct LayerRef {
  Digest chain_id;
  Digest diff_id;
  std::optional<oci::Descriptor> blob;  //!< known blob (base image layers, exported at commit)
  bool exported_at_commit = false;      //!< `blob` was made from this layer's dir by a build
};

//! What a stage has built so far.
struct StageState {
  std::string key;  //!< cache key of the last step
  std::vector<LayerRef> layers;
  oci::ImageConfig config;
  EnvMap args;                                //!< ARGs declared in this stage, with their values
  std::vector<std::string> onbuild_triggers;  //!< from the base image, to run first
  SystemTime last_created{};                  //!< time of the newest step so far
  bool last_step_cached = false;              //!< set by a cache hit, read by the step
  //! The stage's layers end up in the built image (it is the target or one of the stages the
  //! target is built FROM): each new layer is compressed into a blob when it is committed.
  bool exports_layers = false;
};

// Bumped whenever what a step writes changes for the same inputs, so that layers made by an
// older engine are not reused (e.g. context files lost their xattrs in version 2).
constexpr std::string_view kCacheVersion = "cairn-build-cache-v2";

std::string hashKey(std::initializer_list<std::string_view> parts) {
  Sha256 h;
  h.update(kCacheVersion);
  for (std::string_view p : parts) {
    h.update(std::to_string(p.size()));
    h.update(":");
    h.update(p);
  }
  return h.finishHex();
}

Digest topChain(const StageState& s) {
  return s.layers.empty() ? Digest() : s.layers.back().chain_id;
}

oci::ContainerConfig& cfg(StageState& s) {
  if (!s.config.config) s.config.config = oci::ContainerConfig{};
  return *s.config.config;
}

EnvMap envMapOf(const std::vector<std::string>& env) {
  EnvMap out;
  for (const auto& kv : env) {
    auto eq = kv.find('=');
    if (eq == std::string::npos)
      out[kv] = "";
    else
      out[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return out;
}

void setEnv(std::vector<std::string>& env, const std::string& key, const std::string& value) {
  for (auto& kv : env) {
    if (kv.compare(0, key.size() + 1, key + "=") == 0) {
      kv = key + "=" + value;
      return;
    }
  }
  env.push_back(key + "=" + value);
}

//! The environment words are expanded in: build args, overridden by ENV (as BuildKit does).
EnvMap expansionEnv(StageState& s) {
  EnvMap env = s.args;
  for (auto& [k, v] : envMapOf(cfg(s).env))
    env[k] = v;
  return env;
}

std::string joinPath(const std::string& base, const std::string& p) {
  if (!p.empty() && p[0] == '/') return p;
  return (base.empty() ? std::string("/") : base) + (base.ends_with("/") ? "" : "/") + p;
}

//! How many of a failed step's last output lines its error carries.
constexpr std::size_t kErrorTailLines = 20;

Status lineError(const Command& c, const Status& s) {
  return Status(s.code(),
                "line " + std::to_string(c.start_line) + ": " + c.name + ": " + s.message());
}

//! Copies etc/passwd and etc/group of a layer stack (newest layer that has them) into `dir`,
//! so that names can be resolved without mounting.
Status materializeEtc(const std::vector<fs::path>& lowers_newest_first, const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir / "etc", ec);
  for (const char* name : {"passwd", "group"}) {
    for (const auto& lower : lowers_newest_first) {
      fs::path f = lower / "etc" / name;
      struct stat st {};
      if (::lstat(f.c_str(), &st) == 0) {
        if (S_ISREG(st.st_mode))
          fs::copy_file(f, dir / "etc" / name, fs::copy_options::overwrite_existing, ec);
        break;  // a whiteout (char device) or anything else hides lower copies
      }
    }
  }
  return okStatus();
}

//! A mounted overlay that is unmounted (and its dirs removed) when it goes away.
class ScopedMount {
 public:
  ScopedMount() = default;
  explicit ScopedMount(fs::path target) : target_(std::move(target)) {}
  ScopedMount(ScopedMount&& o) noexcept : target_(std::move(o.target_)) { o.target_.clear(); }
  ScopedMount& operator=(ScopedMount&& o) noexcept {
    release();
    target_ = std::move(o.target_);
    o.target_.clear();
    return *this;
  }
  ~ScopedMount() { release(); }
  const fs::path& path() const { return target_; }

 private:
  void release() {
    if (target_.empty()) return;
    (void)runtime::unmountReliably(target_);
    std::error_code ec;
    fs::remove(target_, ec);
    target_.clear();
  }
  fs::path target_;
};

// Forwards connections to an SSH agent: a socket in `dir` (bind-mounted into a RUN step)
// whose every connection is relayed to the agent's socket, both ways, by one thread. Stopped
// (connections closed, thread joined) when it goes away.
class AgentProxy {
 public:
  static Result<std::unique_ptr<AgentProxy>> start(const fs::path& dir, const fs::path& agent,
                                                   uid_t uid, gid_t gid, mode_t mode) {
    std::unique_ptr<AgentProxy> p(new AgentProxy(agent));
    p->path_ = dir / "agent.sock";
    UniqueFd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir_fd.valid()) return errnoStatus(errno, "open " + dir.string());
    p->listen_ = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!p->listen_.valid()) return errnoStatus(errno, "socket for the ssh agent forward");
    // Through the directory's fd: sun_path is short whatever the data dir's path is.
    CAIRN_RETURN_IF_ERROR(
        fillAddress(p->addr_, "/proc/self/fd/" + std::to_string(dir_fd.get()) + "/agent.sock"));
    if (::bind(p->listen_.get(), reinterpret_cast<const sockaddr*>(&p->addr_), sizeof p->addr_) !=
        0) {
      return errnoStatus(errno, "bind " + p->path_.string());
    }
    if (::chown(p->path_.c_str(), uid, gid) != 0 || ::chmod(p->path_.c_str(), mode & 07777) != 0) {
      return errnoStatus(errno, "set the owner and mode of " + p->path_.string());
    }
    if (::listen(p->listen_.get(), 16) != 0) return errnoStatus(errno, "listen");
    p->stop_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!p->stop_.valid()) return errnoStatus(errno, "eventfd");
    try {
      p->thread_ = std::thread([raw = p.get()] { raw->loop(); });
    } catch (const std::system_error& e) {
      return internalError(std::string("start the ssh agent forward: ") + e.what());
    }
    return p;
  }

  ~AgentProxy() {
    std::uint64_t one = 1;
    if (stop_.valid()) (void)!::write(stop_.get(), &one, sizeof one);
    if (thread_.joinable()) thread_.join();
  }

  const fs::path& socketPath() const { return path_; }

 private:
  explicit AgentProxy(fs::path agent) : agent_(std::move(agent)) {}

  static Status fillAddress(sockaddr_un& addr, const std::string& path) {
    addr = {};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path)
      return invalidArgument("socket path too long: " + path);
    std::copy(path.begin(), path.end(), addr.sun_path);
    return okStatus();
  }

  static bool relay(int from, int to) {
    char buf[16384];
    ssize_t n = ::recv(from, buf, sizeof buf, 0);
    if (n <= 0) return false;
    return writeAll(to, std::string_view(buf, static_cast<std::size_t>(n))).ok();
  }

  void loop() {
    struct Pair {
      UniqueFd client, agent;
    };
    std::vector<Pair> pairs;
    for (;;) {
      std::vector<pollfd> pfds = {{stop_.get(), POLLIN, 0}, {listen_.get(), POLLIN, 0}};
      for (const auto& p : pairs) {
        pfds.push_back({p.client.get(), POLLIN, 0});
        pfds.push_back({p.agent.get(), POLLIN, 0});
      }
      if (::poll(pfds.data(), pfds.size(), -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (pfds[0].revents != 0) return;
      std::vector<bool> closed(pairs.size(), false);
      for (std::size_t i = 0; i < pairs.size(); ++i) {
        short c = pfds[2 + 2 * i].revents, a = pfds[3 + 2 * i].revents;
        if ((c != 0 && !relay(pairs[i].client.get(), pairs[i].agent.get())) ||
            (a != 0 && !relay(pairs[i].agent.get(), pairs[i].client.get()))) {
          closed[i] = true;
        }
      }
      for (std::size_t i = pairs.size(); i-- > 0;) {
        if (closed[i]) pairs.erase(pairs.begin() + static_cast<std::ptrdiff_t>(i));
      }
      if (pfds[1].revents != 0) {
        UniqueFd client(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!client.valid()) continue;
        UniqueFd upstream(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_un addr{};
        if (!upstream.valid() || !fillAddress(addr, agent_.string()).ok() ||
            ::connect(upstream.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
          continue;  // the agent is gone: the client sees its connection closed
        }
        pairs.push_back({std::move(client), std::move(upstream)});
      }
    }
  }

  fs::path agent_;
  fs::path path_;
  sockaddr_un addr_{};
  UniqueFd listen_;
  UniqueFd stop_;
  std::thread thread_;
};

std::string commandDisplay(const Command& c) {
  std::string s = c.original;
  auto nl = s.find('\n');
  if (nl != std::string::npos) s = s.substr(0, nl);
  return std::string(trimSpace(s));
}

}  // namespace

// One build: holds the per-build state (work dir, progress, stage results).
struct Builder::Run {
  Builder& b;
  const BuildRequest& req;
  Progress progress;
  fs::path work;
  BuildPlan plan;
  std::optional<dockerfile::DockerIgnore> ignore;
  UniqueFd context_fd;
  std::atomic<int> steps{0};
  std::atomic<int> cached{0};
  std::atomic<int> mount_seq{0};
  // Cancelled by the caller's token (forwarded by the scheduler) or by the first failing
  // stage; every RUN step of the build watches it, so one cancel kills them all.
  runtime::CancelToken cancel_token;

  // Stages run on several threads; a stage reads only the results of stages it depends on,
  // which are complete before it starts.
  std::mutex done_mu;
  std::map<int, StageState> done;  // finished stages by index
  // The target and the stages it is built FROM (transitively): their layers are the image's.
  std::set<int> image_stages;
  std::mutex sched_mu;
  Status first_error;                                // the build's error: the first failure
  std::vector<std::pair<int, Status>> finished_now;  // stages finished since the last look

  // Base images are loaded once per build, also when several stages start from one.
  struct ImageSlot {
    std::mutex mu;
    std::optional<Result<StageState>> state;
  };
  std::mutex images_mu;
  std::map<std::string, std::shared_ptr<ImageSlot>> images;

  Run(Builder& builder, const BuildRequest& request, LogSink& log)
      : b(builder), req(request), progress(log) {}

  ~Run() {
    if (!work.empty()) {
      (void)runtime::unmountAllUnder(work);
      std::error_code ec;
      fs::remove_all(work, ec);
    }
  }

  bool cancelled() const { return cancel_token.cancelled(); }

  Result<StageState> finishedStage(int index) {
    std::lock_guard lock(done_mu);
    auto it = done.find(index);
    // The plan orders stages by the references it sees; one that only resolves at run time
    // (an ARG the plan could not expand) is not waited for.
    if (it == done.end()) {
      return failedPrecondition("stage " + std::to_string(index) +
                                " is used before it is built (a --from the planner could not "
                                "resolve)");
    }
    return it->second;
  }

  Result<fs::path> newDir(const std::string& name) {
    fs::path p = work / (name + "-" + std::to_string(++mount_seq));
    std::error_code ec;
    fs::create_directories(p, ec);
    if (ec) return internalError("create " + p.string() + ": " + ec.message());
    return p;
  }

  // Mounts the stage's layers read-only (or with an upper for writing) and returns the mount.
  Result<ScopedMount> mountLayers(const StageState& s, const fs::path& upper, const fs::path& wd) {
    std::vector<fs::path> lowers;
    if (!s.layers.empty()) {
      CAIRN_ASSIGN_OR_RETURN(lowers, b.options_.layers->lowerDirs(topChain(s)));
    }
    if (lowers.empty() || (upper.empty() && lowers.size() < 2)) {
      CAIRN_ASSIGN_OR_RETURN(fs::path empty, newDir("empty"));
      lowers.push_back(empty);
    }
    CAIRN_ASSIGN_OR_RETURN(lowers,
                           runtime::flattenLowers(lowers, b.options_.data_dir / "merged-lowers"));
    CAIRN_ASSIGN_OR_RETURN(fs::path target, newDir("mnt"));
    runtime::OverlayMount m{lowers, upper, wd};
    CAIRN_RETURN_IF_ERROR(runtime::mountOverlay(m, target));
    return ScopedMount(target);
  }

  // ---- bases --------------------------------------------------------------------------

  Result<StageState> imageState(const std::string& reference) {
    std::shared_ptr<ImageSlot> slot;
    {
      std::lock_guard lock(images_mu);
      auto& p = images[reference];
      if (!p) p = std::make_shared<ImageSlot>();
      slot = p;
    }
    std::lock_guard lock(slot->mu);
    if (!slot->state) slot->state = loadImageState(reference);
    return *slot->state;
  }

  Result<StageState> loadImageState(const std::string& reference) {
    auto entry = b.options_.catalog->get(reference);
    oci::Descriptor manifest_desc;
    if (entry.ok()) {
      manifest_desc = entry->descriptor;
    } else if (b.options_.fetch) {
      CAIRN_ASSIGN_OR_RETURN(manifest_desc, b.options_.fetch(reference, progress));
    } else {
      return notFound("image \"" + reference +
                      "\" is not in the local store (pull it with `cairn image pull` or import "
                      "one with `cairn base bootstrap`)");
    }
    CAIRN_ASSIGN_OR_RETURN(oci::LoadedImage image,
                           oci::loadImage(*b.options_.blobs, manifest_desc));
    if (image.config.diff_ids.size() != image.manifest.layers.size()) {
      return invalidArgument("image \"" + reference + "\": config has " +
                             std::to_string(image.config.diff_ids.size()) + " diff ids for " +
                             std::to_string(image.manifest.layers.size()) + " layers");
    }
    StageState s;
    s.config = image.config;
    s.key = hashKey({"image", manifest_desc.digest.str()});
    Digest parent;
    for (std::size_t i = 0; i < image.manifest.layers.size(); ++i) {
      const auto& layer = image.manifest.layers[i];
      const Digest& diff = image.config.diff_ids[i];
      Digest chain = parent.empty() ? diff : Digest::ofBytes(parent.str() + " " + diff.str());
      if (!b.options_.layers->info(chain).ok()) {
        CAIRN_ASSIGN_OR_RETURN(
            store::LayerInfo info,
            b.options_.layers->importBlob(*b.options_.blobs, layer.digest, parent, diff));
        chain = info.chain_id;
      }
      s.layers.push_back({chain, diff, layer, false});
      parent = chain;
    }
    if (auto created = parseRfc3339(s.config.created); created.ok()) s.last_created = *created;
    if (s.config.config) {
      s.onbuild_triggers = s.config.config->on_build;
      s.config.config->on_build.clear();
    }
    return s;
  }

  Result<StageState> baseState(const PlannedStage& p) {
    switch (p.base.kind) {
      case BaseKind::kScratch: {
        StageState s;
        s.config.architecture = "amd64";
        s.config.os = "linux";
        s.config.config = oci::ContainerConfig{};
        s.config.config->env = {
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
        s.key = hashKey({"scratch"});
        return s;
      }
      case BaseKind::kStage: {
        CAIRN_ASSIGN_OR_RETURN(StageState s, finishedStage(p.base.stage));
        s.args.clear();
        // ONBUILD triggers recorded in a stage fire when another stage builds FROM it.
        if (s.config.config) {
          s.onbuild_triggers = s.config.config->on_build;
          s.config.config->on_build.clear();
        }
        return s;
      }
      case BaseKind::kImage:
        return imageState(p.base.image);
    }
    return internalError("unknown base kind");
  }

  // ---- steps --------------------------------------------------------------------------

  // Makes a finished step's upper dir the step's layer (renamed into the layer store, no copy).
  // A layer that will be in the image is also its blob, uncompressed and not copied: the one
  // hash pass over the tar gives the diff id (which names the layer) and the tar's size, and
  // the blob store records the layer dir as the blob's source (putLayerTar), making the tar
  // only when the blob is read. Compression waits until the image leaves the machine (export,
  // push). Layers of stages the image does not contain get the same pass and no blob.
  Status commitLayer(StageState& s, const std::string& key, const fs::path& upper) {
    CAIRN_ASSIGN_OR_RETURN(HashedTree tree, hashTree(upper));
    CAIRN_ASSIGN_OR_RETURN(
        store::LayerInfo info,
        b.options_.layers->getOrCreate(
            topChain(s), tree.diff_id, [&](const fs::path& fs_dir) -> Result<std::uint64_t> {
              if (::rmdir(fs_dir.c_str()) != 0)
                return errnoStatus(errno, "remove " + fs_dir.string());
              if (::rename(upper.c_str(), fs_dir.c_str()) != 0)
                return errnoStatus(errno, "move " + upper.string() + " to " + fs_dir.string());
              return tree.report.bytes;
            }));
    std::optional<oci::Descriptor> blob;
    if (s.exports_layers) {
      CAIRN_ASSIGN_OR_RETURN(blob, linkLayerBlob(info.chain_id, tree.diff_id, tree.tar_size));
    }
    s.layers.push_back({info.chain_id, info.diff_id, blob, blob.has_value()});
    s.key = key;
    if (!req.no_cache) {
      CAIRN_RETURN_IF_ERROR(b.cache_->put(key, {info.chain_id, info.diff_id, info.size}));
    }
    return okStatus();
  }

  struct HashedTree {
    layer::DiffReport report;
    Digest diff_id;
    std::uint64_t tar_size = 0;
  };

  // The tar pass without the tar: diff id and size of `dir`'s layer tar. A cancelled build
  // stops it between writes.
  Result<HashedTree> hashTree(const fs::path& dir) {
    layer::FunctionSink stop([&](std::string_view) -> Status {
      // The caller's token too: the scheduler forwards it to cancel_token only when it wakes.
      if (cancelled() || (req.cancel && req.cancel->cancelled())) return cancelled_status();
      return okStatus();
    });
    layer::HashingSink hashed(&stop);
    auto report = layer::createLayerTar(dir, hashed);
    if (!report.ok()) return report.status().withContext("hash the layer of " + dir.string());
    HashedTree out;
    out.report = *report;
    out.tar_size = hashed.size();
    out.diff_id = hashed.digest();
    return out;
  }

  // Publishes layer `chain_id`'s dir as its uncompressed blob (digest = diff id) and records it
  // by diff id in the cache index at once: the index's exported blobs are roots for the store's
  // GC, and a later build with this layer cached reuses the same descriptor, so a fully cached
  // rebuild gives the same manifest.
  Result<oci::Descriptor> linkLayerBlob(const Digest& chain_id, const Digest& diff_id,
                                        std::uint64_t tar_size) {
    CAIRN_RETURN_IF_ERROR(
        b.options_.blobs->putLayerTar(b.options_.layers->fsPath(chain_id), diff_id, tar_size)
            .status()
            .withContext("layer " + chain_id.str()));
    oci::Descriptor d;
    d.media_type = layer::ociLayerMediaType(layer::Compression::kNone);
    d.digest = diff_id;
    d.size = static_cast<std::int64_t>(tar_size);
    (void)b.cache_->putExported(diff_id, {d.digest, tar_size, d.media_type});
    return d;
  }

  // A cache hit: the layer exists and is reused as is.
  Result<bool> tryCache(StageState& s, const std::string& key, Progress::VertexId v) {
    if (req.no_cache) return false;
    CAIRN_ASSIGN_OR_RETURN(auto entry, b.cache_->lookup(key));
    if (!entry) return false;
    auto info = b.options_.layers->info(entry->chain_id);
    if (!info.ok() || info->parent != topChain(s)) {
      (void)b.cache_->remove(key);
      return false;
    }
    s.layers.push_back({entry->chain_id, entry->diff_id, std::nullopt, false});
    s.key = key;
    progress.cached(v);
    s.last_step_cached = true;
    ++cached;
    return true;
  }

  // History times come from the layers (when a step's layer was first made), so a fully
  // cached rebuild produces the same config and the same image digest, as with BuildKit.
  void history(StageState& s, const std::string& created_by, bool empty_layer) {
    if (!empty_layer && !s.layers.empty()) {
      if (auto info = b.options_.layers->info(s.layers.back().chain_id); info.ok()) {
        s.last_created = info->created_at;
      }
    }
    oci::HistoryEntry h;
    h.created = formatRfc3339(s.last_created);
    h.created_by = created_by;
    h.comment = "buildkit.dockerfile.v0";
    h.empty_layer = empty_layer;
    s.config.history.push_back(std::move(h));
  }

  Result<runtime::ResolvedUser> resolveUserIn(const StageState& s, const std::string& user) {
    if (user.empty()) return runtime::ResolvedUser{};
    std::vector<fs::path> lowers;
    if (!s.layers.empty()) {
      CAIRN_ASSIGN_OR_RETURN(lowers, b.options_.layers->lowerDirs(topChain(s)));
    }
    CAIRN_ASSIGN_OR_RETURN(fs::path etc, newDir("etc"));
    CAIRN_RETURN_IF_ERROR(materializeEtc(lowers, etc));
    return runtime::resolveUser(etc, user);
  }

  // ---- RUN --mount ----------------------------------------------------------------------

  // One --mount of a RUN step: checked and keyed before the cache lookup, prepared (host
  // paths, secret files, read-only or throwaway-writable trees) only when the step runs.
  struct StepMount {
    dockerfile::RunMount m;                //!< with from, source, target and id expanded
    std::string destination;               //!< absolute, in the container
    std::string key;                       //!< its part of the step's cache key
    std::optional<StageState> from;        //!< bind from= a stage or an image
    std::vector<SelectedSource> selected;  //!< bind from the context
    const BuildSecret* secret = nullptr;   //!< secret: given by the caller (else skipped)
    const fs::path* agent = nullptr;       //!< ssh: the forwarded agent (else skipped)
  };

  // What prepared mounts hold while the step runs; released when the step ends.
  struct PreparedMounts {
    std::vector<runtime::MountSpec> specs;
    std::vector<std::pair<std::string, std::string>> env;  //!< secrets exposed with env=
    std::vector<ScopedMount> trees;
    std::vector<fs::path> remove;  //!< secret files, writable copies, throwaway uppers
    std::vector<UniqueFd> locks;   //!< flocks of sharing=locked|private cache mounts
    std::vector<std::unique_ptr<AgentProxy>> agents;  //!< ssh agent forwards
    std::string ssh_auth_sock;                        //!< the first ssh mount's socket
    PreparedMounts() = default;
    PreparedMounts(PreparedMounts&&) = default;
    ~PreparedMounts() {
      agents.clear();
      trees.clear();  // unmount first: a throwaway upper is busy while mounted
      std::error_code ec;
      for (const auto& p : remove)
        fs::remove_all(p, ec);
    }
  };

  // BuildKit refuses secrets over 500 KB (its MaxSecretSize); they are meant to be tokens.
  static constexpr std::size_t kMaxSecretBytes = 500 * 1024;

  std::mutex secrets_mu;
  fs::path secrets_dir;  // a tmpfs under the work dir, mounted on first use
  std::mutex context_binds_mu;
  std::map<std::string, fs::path> context_binds;  // read-only context copies by source path

  Result<std::vector<StepMount>> planMounts(int stage_index, const dockerfile::RunCommand& run,
                                            const EnvMap& env, const std::string& cwd, int line) {
    dockerfile::ShellLexer lexer(plan.dockerfile.escape);
    auto expand = [&](std::string& field) -> Status {
      if (field.empty()) return okStatus();
      CAIRN_ASSIGN_OR_RETURN(field, lexer.processWord(field, env));
      return okStatus();
    };
    std::vector<StepMount> out;
    std::set<std::string> destinations;
    int ssh_index = 0;
    for (const auto& raw : run.mounts) {
      StepMount sm;
      sm.m = raw;
      auto& m = sm.m;
      const std::string type(dockerfile::mountTypeName(m.type));
      for (std::string* f : {&m.from, &m.source, &m.target, &m.cache_id})
        CAIRN_RETURN_IF_ERROR(expand(*f));
      // BuildKit's default socket paths, numbered in the order of the step's ssh mounts.
      if (m.type == dockerfile::MountType::kSsh && m.target.empty()) {
        m.target = "/run/buildkit/ssh_agent." + std::to_string(ssh_index);
      }
      if (m.type == dockerfile::MountType::kSsh) ++ssh_index;
      if (!m.target.empty()) sm.destination = cleanAbsolutePath(joinPath(cwd, m.target));
      if (!sm.destination.empty() && !destinations.insert(sm.destination).second) {
        return invalidArgument("two --mount flags have the same target " + sm.destination);
      }
      if (sm.destination == "/") {
        return invalidArgument("--mount=type=" + type + " cannot be mounted over /");
      }
      std::string key = type + "\x1f" + sm.destination;
      switch (m.type) {
        case dockerfile::MountType::kCache:
          if (!m.from.empty() || !m.source.empty()) {
            return invalidArgument(
                "RUN --mount=type=cache with from= or source= (seeding a cache from another "
                "stage) is not supported");
          }
          key += "\x1f" + m.cache_id;
          break;
        case dockerfile::MountType::kTmpfs:
          key += "\x1f" + std::to_string(m.size_bytes.value_or(0));
          break;
        case dockerfile::MountType::kSecret: {
          // The id and how it is mounted, never the content: changing a secret's value keeps
          // the cache (as with BuildKit), and no digest of it is ever written down.
          key += "\x1f" + m.cache_id + "\x1f" + m.env + "\x1f" + (m.required ? "1" : "0") + "\x1f" +
                 std::to_string(m.mode.value_or(0400)) + "\x1f" +
                 std::to_string(m.uid.value_or(0)) + ":" + std::to_string(m.gid.value_or(0));
          if (auto it = req.secrets.find(m.cache_id); it != req.secrets.end()) {
            sm.secret = &it->second;
          } else if (m.required) {
            return failedPrecondition("secret \"" + m.cache_id +
                                      "\" is required but was not given (cairn build --secret "
                                      "id=" +
                                      m.cache_id + ",src=FILE)");
          }
          break;
        }
        case dockerfile::MountType::kBind: {
          std::string source = m.source.empty() ? "." : m.source;
          key += "\x1f" + source + "\x1f" + (m.read_only ? "ro" : "rw");
          if (m.from.empty()) {
            if (!context_fd.valid()) {
              return failedPrecondition("this build has no context directory to bind from");
            }
            CopySourceRoot root{context_fd.get(), ignore ? &*ignore : nullptr, true};
            CAIRN_ASSIGN_OR_RETURN(sm.selected, selectSources(root, {source}));
            if (sm.selected.size() != 1) {
              return invalidArgument("bind mount source \"" + source + "\" matches " +
                                     std::to_string(sm.selected.size()) + " paths, not one");
            }
            CAIRN_ASSIGN_OR_RETURN(std::string digest, digestSources(root, sm.selected));
            key +=
                "\x1f"
                "context\x1f" +
                digest;
          } else {
            CAIRN_ASSIGN_OR_RETURN(StageRef ref,
                                   resolveFromReference(plan, stage_index, m.from, line));
            StageState src;
            if (ref.kind == BaseKind::kStage) {
              CAIRN_ASSIGN_OR_RETURN(src, finishedStage(ref.stage));
            } else if (ref.kind == BaseKind::kImage) {
              CAIRN_ASSIGN_OR_RETURN(src, imageState(ref.image));
            } else {
              src.key = hashKey({"scratch"});
            }
            // A stage's key names its whole filesystem, so it stands for the content.
            key +=
                "\x1f"
                "from\x1f" +
                src.key;
            sm.from = std::move(src);
          }
          break;
        }
        case dockerfile::MountType::kSsh: {
          // Like a secret: the id and how it is mounted, never which agent or which keys.
          key += "\x1f" + m.cache_id + "\x1f" + (m.required ? "1" : "0") + "\x1f" +
                 std::to_string(m.mode.value_or(0600)) + "\x1f" +
                 std::to_string(m.uid.value_or(0)) + ":" + std::to_string(m.gid.value_or(0));
          if (auto it = req.ssh_agents.find(m.cache_id); it != req.ssh_agents.end()) {
            sm.agent = &it->second;
          } else if (m.required) {
            return failedPrecondition("ssh agent \"" + m.cache_id +
                                      "\" is required but was not forwarded (cairn build --ssh " +
                                      m.cache_id + ")");
          }
          break;
        }
      }
      sm.key = std::move(key);
      out.push_back(std::move(sm));
    }
    return out;
  }

  // The build's secrets tmpfs: secret bytes never touch the disk. Unmounted with the rest of
  // the work dir at the end of the build.
  Result<fs::path> secretsDir() {
    std::lock_guard lock(secrets_mu);
    if (!secrets_dir.empty()) return secrets_dir;
    fs::path dir = work / "secrets";
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return internalError("create " + dir.string() + ": " + ec.message());
    if (::mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                "mode=0700,size=64m") != 0) {
      return errnoStatus(errno, "mount a tmpfs for build secrets at " + dir.string());
    }
    secrets_dir = dir;
    return secrets_dir;
  }

  // The host path of `source` inside the tree at `root`, resolved as a process chrooted there
  // would see it (symlinks cannot leave the tree).
  static Result<fs::path> resolveInTree(const fs::path& root, const std::string& source) {
    UniqueFd dir(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir.valid()) return errnoStatus(errno, "open " + root.string());
    auto fd = openInRoot(dir.get(), source, O_PATH);
    if (!fd.ok()) {
      return Status(fd.status().code(),
                    "bind mount source \"" + source + "\": " + fd.status().message());
    }
    char buf[PATH_MAX + 1];
    std::string link = "/proc/self/fd/" + std::to_string(fd->get());
    ssize_t n = ::readlink(link.c_str(), buf, PATH_MAX);
    if (n <= 0) return errnoStatus(errno, "readlink " + link);
    fs::path resolved(std::string(buf, static_cast<std::size_t>(n)));
    std::string prefix = root.string();
    if (resolved != root && !resolved.string().starts_with(prefix + "/")) {
      return internalError("bind mount source \"" + source + "\" resolved outside its tree");
    }
    return resolved;
  }

  // A copy of a context path made through COPY's machinery: .dockerignore applies and files
  // are owned by root, as in BuildKit's transferred context.
  Result<fs::path> copyOfContext(const SelectedSource& selected) {
    CAIRN_ASSIGN_OR_RETURN(fs::path dir, newDir("bind-context"));
    UniqueFd dest(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dest.valid()) return errnoStatus(errno, "open " + dir.string());
    CopySourceRoot root{context_fd.get(), ignore ? &*ignore : nullptr, true};
    CAIRN_RETURN_IF_ERROR(copySources(root, {selected}, dest.get(), "/content", {}).status());
    return dir / "content";
  }

  // The directory behind a cache mount, shared by every build of this data dir. The sharing
  // mode works as BuildKit's: shared (default) lets steps use it at once; locked makes a step
  // wait until no other step (of any build or process: flock) holds it; private gives a step
  // an empty throwaway directory while another holds it. A new directory gets the mount's
  // mode, uid and gid (0755, 0:0 by default).
  Result<std::string> cacheMountDir(const dockerfile::RunMount& m, PreparedMounts& out) {
    fs::path dir = b.options_.data_dir / "cache" / "mounts" /
                   hexEncode(sha256(m.cache_id.empty() ? m.target : m.cache_id));
    std::error_code ec;
    if (fs::create_directories(dir, ec)) {
      if (::chown(dir.c_str(), m.uid.value_or(0), m.gid.value_or(0)) != 0 ||
          ::chmod(dir.c_str(), m.mode.value_or(0755) & 07777) != 0) {
        return errnoStatus(errno, "set the owner and mode of cache mount " + dir.string());
      }
    } else if (ec) {
      return internalError("create cache mount " + dir.string() + ": " + ec.message());
    }
    if (m.sharing == dockerfile::CacheSharing::kShared) return dir.string();
    fs::path lock_path = dir.string() + ".lock";
    UniqueFd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!lock.valid()) return errnoStatus(errno, "open " + lock_path.string());
    for (;;) {
      if (::flock(lock.get(), LOCK_EX | LOCK_NB) == 0) {
        out.locks.push_back(std::move(lock));
        return dir.string();
      }
      if (errno != EWOULDBLOCK && errno != EINTR) {
        return errnoStatus(errno, "flock " + lock_path.string());
      }
      if (m.sharing == dockerfile::CacheSharing::kPrivate) {
        CAIRN_ASSIGN_OR_RETURN(fs::path own, newDir("cache-private"));
        out.remove.push_back(own);
        return own.string();
      }
      // locked: wait for the holder, waking at once when the build is cancelled.
      pollfd pfd{cancel_token.fd(), POLLIN, 0};
      (void)::poll(&pfd, 1, 50);
      if (cancelled()) return cancelled_status();
    }
  }

  Result<PreparedMounts> prepareMounts(const std::vector<StepMount>& mounts) {
    PreparedMounts out;
    for (const StepMount& sm : mounts) {
      const auto& m = sm.m;
      runtime::MountSpec ms;
      ms.destination = sm.destination;
      switch (m.type) {
        case dockerfile::MountType::kCache: {
          CAIRN_ASSIGN_OR_RETURN(ms.source, cacheMountDir(m, out));
          ms.options = {"rbind", "rw"};
          break;
        }
        case dockerfile::MountType::kTmpfs:
          ms.type = "tmpfs";
          ms.source = "tmpfs";
          ms.options = {"nosuid", "nodev"};
          if (m.size_bytes) ms.options.push_back("size=" + std::to_string(*m.size_bytes));
          break;
        case dockerfile::MountType::kSecret: {
          if (!sm.secret) continue;  // optional and not given: the step runs without it
          std::string value;
          if (sm.secret->file.empty()) {
            value = sm.secret->value;
          } else {
            auto text = readFile(sm.secret->file);
            if (!text.ok()) {
              return Status(text.status().code(),
                            "secret \"" + m.cache_id + "\": " + text.status().message());
            }
            value = std::move(*text);
          }
          if (value.size() > kMaxSecretBytes) {
            return invalidArgument("secret \"" + m.cache_id + "\" is " +
                                   std::to_string(value.size()) +
                                   " bytes; secrets may be at most 500 KiB");
          }
          if (!m.env.empty()) out.env.emplace_back(m.env, value);
          if (sm.destination.empty()) continue;  // env only
          CAIRN_ASSIGN_OR_RETURN(fs::path dir, secretsDir());
          fs::path file = dir / ("secret-" + std::to_string(++mount_seq));
          out.remove.push_back(file);
          UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
          if (!fd.valid()) return errnoStatus(errno, "create " + file.string());
          CAIRN_RETURN_IF_ERROR(writeAll(fd.get(), value));
          if (::fchown(fd.get(), m.uid.value_or(0), m.gid.value_or(0)) != 0 ||
              ::fchmod(fd.get(), m.mode.value_or(0400) & 07777) != 0) {
            return errnoStatus(errno, "set the owner and mode of secret \"" + m.cache_id + "\"");
          }
          ms.source = file.string();
          ms.options = {"rbind", "ro", "nosuid", "nodev", "noexec"};
          break;
        }
        case dockerfile::MountType::kBind: {
          std::string source = m.source.empty() ? "/" : m.source;
          if (!sm.from) {
            if (m.read_only) {
              // One read-only copy per context path and build, shared by its steps.
              std::lock_guard lock(context_binds_mu);
              auto& copy = context_binds[sm.selected[0].path];
              if (copy.empty()) {
                CAIRN_ASSIGN_OR_RETURN(copy, copyOfContext(sm.selected[0]));
              }
              ms.source = copy.string();
            } else {
              // rw: a copy of its own, thrown away after the step.
              CAIRN_ASSIGN_OR_RETURN(fs::path copy, copyOfContext(sm.selected[0]));
              out.remove.push_back(copy.parent_path());
              ms.source = copy.string();
            }
          } else {
            // Another stage or image: its layers mounted read-only, or over a throwaway upper.
            fs::path upper, wd;
            if (!m.read_only) {
              CAIRN_ASSIGN_OR_RETURN(upper, newDir("bind-upper"));
              CAIRN_ASSIGN_OR_RETURN(wd, newDir("bind-work"));
              out.remove.push_back(upper);
              out.remove.push_back(wd);
            }
            CAIRN_ASSIGN_OR_RETURN(ScopedMount tree, mountLayers(*sm.from, upper, wd));
            CAIRN_ASSIGN_OR_RETURN(fs::path host, resolveInTree(tree.path(), source));
            out.trees.push_back(std::move(tree));
            ms.source = host.string();
          }
          ms.options = {"rbind", m.read_only ? "ro" : "rw"};
          break;
        }
        case dockerfile::MountType::kSsh: {
          if (!sm.agent) continue;  // optional and not forwarded: the step runs without it
          // The step gets a socket of its own, with the mount's owner and mode (BuildKit's
          // 0600 root by default), forwarding each connection to the agent; the agent's own
          // socket and its path stay outside.
          CAIRN_ASSIGN_OR_RETURN(fs::path dir, newDir("ssh"));
          out.remove.push_back(dir);
          CAIRN_ASSIGN_OR_RETURN(
              auto proxy, AgentProxy::start(dir, *sm.agent, m.uid.value_or(0), m.gid.value_or(0),
                                            m.mode.value_or(0600)));
          ms.source = proxy->socketPath().string();
          ms.options = {"rbind", "ro", "nosuid", "nodev", "noexec"};
          out.agents.push_back(std::move(proxy));
          if (out.ssh_auth_sock.empty()) out.ssh_auth_sock = sm.destination;
          break;
        }
      }
      out.specs.push_back(std::move(ms));
    }
    return out;
  }

  Status runStep(StageState& s, int stage_index, const dockerfile::RunCommand& run,
                 const Command& c, Progress::VertexId v) {
    EnvMap env = expansionEnv(s);
    std::vector<std::string> args;
    std::string created_by;
    std::optional<dockerfile::InlineFile> script;
    const auto& shell = cfg(s).shell ? *cfg(s).shell : std::vector<std::string>{"/bin/sh", "-c"};
    if (run.cmd.prepend_shell) {
      std::string line = run.cmd.args.empty() ? "" : run.cmd.args[0];
      if (!run.cmd.files.empty()) {
        // BuildKit's rule: a command that is exactly one heredoc word runs the body as the
        // script; anything else gets the heredocs put back after the line, for the shell.
        std::string word = std::string(trimSpace(line));
        bool single = run.cmd.files.size() == 1 && word.starts_with("<<") &&
                      word.find_first_of(" \t") == std::string::npos;
        if (single && run.cmd.files[0].data.starts_with("#!")) {
          // A script with a shebang is mounted as a file and executed (BuildKit's /dev/pipes).
          script = run.cmd.files[0];
        } else if (single) {
          line = run.cmd.files[0].data;
        } else {
          for (const auto& f : run.cmd.files)
            line += "\n" + f.data + f.name;
        }
      }
      if (script) {
        args = {"/dev/pipes/" + script->name};
      } else {
        args = shell;
        args.push_back(line);
      }
      created_by = "RUN " + joinStrings(args, " ") + " # buildkit";
    } else {
      args = run.cmd.args;
      created_by = "RUN " + joinStrings(args, " ") + " # buildkit";
    }
    if (args.empty()) return invalidArgument("RUN needs a command");

    // The process environment: the image's ENV plus the build args ENV does not override.
    std::vector<std::string> proc_env = cfg(s).env;
    EnvMap image_env = envMapOf(cfg(s).env);
    for (const auto& [k, val] : s.args) {
      if (!image_env.count(k)) proc_env.push_back(k + "=" + val);
    }
    runtime::NetworkMode network = req.network;
    if (run.network == dockerfile::NetworkMode::kNone) network = runtime::NetworkMode::kNone;
    if (run.network == dockerfile::NetworkMode::kHost) network = runtime::NetworkMode::kHost;

    const std::string cwd = cfg(s).working_dir.empty() ? "/" : cfg(s).working_dir;
    CAIRN_ASSIGN_OR_RETURN(std::vector<StepMount> mounts,
                           planMounts(stage_index, run, env, cwd, c.start_line));
    std::string mounts_key;
    for (const auto& m : mounts)
      mounts_key += m.key + ";";
    std::string key = hashKey({"run", s.key, joinStrings(args, "\x1f"),
                               joinStrings(proc_env, "\x1f"), cfg(s).working_dir, cfg(s).user,
                               script ? std::string_view(script->data) : std::string_view(),
                               std::string(runtime::networkModeName(network)), mounts_key});
    CAIRN_ASSIGN_OR_RETURN(bool hit, tryCache(s, key, v));
    if (hit) {
      history(s, created_by, false);
      return okStatus();
    }

    CAIRN_ASSIGN_OR_RETURN(runtime::ResolvedUser user, resolveUserIn(s, cfg(s).user));
    CAIRN_ASSIGN_OR_RETURN(fs::path upper, newDir("upper"));
    CAIRN_ASSIGN_OR_RETURN(fs::path wd, newDir("overlay-work"));
    runtime::ContainerSpec spec;
    if (!s.layers.empty()) {
      CAIRN_ASSIGN_OR_RETURN(spec.rootfs.lower_dirs, b.options_.layers->lowerDirs(topChain(s)));
    } else {
      CAIRN_ASSIGN_OR_RETURN(fs::path empty, newDir("empty"));
      spec.rootfs.lower_dirs = {empty};
    }
    spec.rootfs.upper_dir = upper;
    spec.rootfs.work_dir = wd;
    spec.process.args = args;
    if (script) {
      CAIRN_ASSIGN_OR_RETURN(fs::path dir, newDir("pipes"));
      fs::path file = dir / "script";
      CAIRN_RETURN_IF_ERROR(writeFileDurable(file, script->data, 0755));
      spec.mounts.push_back({"/dev/pipes/" + script->name, "bind", file.string(), {"rbind", "ro"}});
    }
    spec.process.env = proc_env;
    spec.process.cwd = cwd;
    spec.process.uid = user.uid;
    spec.process.gid = user.gid;
    spec.process.additional_gids = user.additional_gids;
    spec.network = network;
    spec.limits = req.limits;
    spec.timeout = req.step_timeout;
    // Secrets reach the process only here: not in the key above, not in the history.
    CAIRN_ASSIGN_OR_RETURN(PreparedMounts prepared, prepareMounts(mounts));
    spec.mounts.insert(spec.mounts.end(), prepared.specs.begin(), prepared.specs.end());
    for (const auto& [name, value] : prepared.env)
      setEnv(spec.process.env, name, value);
    // As BuildKit: SSH_AUTH_SOCK names the first agent socket unless the step's env sets it.
    if (!prepared.ssh_auth_sock.empty() && !envMapOf(spec.process.env).count("SSH_AUTH_SOCK")) {
      spec.process.env.push_back("SSH_AUTH_SOCK=" + prepared.ssh_auth_sock);
    }

    runtime::RunIo io;
    io.on_line = [&](runtime::OutputStream, std::string_view line) {
      progress.output(v, std::string(line) + "\n");
    };
    io.cancel = &cancel_token;
    if (!b.options_.executor) return failedPrecondition("no OCI runtime configured for RUN steps");
    auto result = b.options_.executor->run(spec, io);
    if (!result.ok()) {
      std::error_code ec;
      fs::remove_all(upper, ec);
      return result.status();
    }
    Status outcome = result->toStatus();
    if (!outcome.ok()) {
      std::error_code ec;
      fs::remove_all(upper, ec);
      std::string what = "process \"" + joinStrings(args, " ") +
                         "\" did not complete successfully: " + outcome.message();
      return Status(outcome.code() == StatusCode::kInternal ? StatusCode::kFailedPrecondition
                                                            : outcome.code(),
                    what);
    }
    CAIRN_RETURN_IF_ERROR(commitLayer(s, key, upper));
    history(s, created_by, false);
    return okStatus();
  }

  // The source tree of a COPY: the context, another stage, or an image.
  struct SourceTree {
    CopySourceRoot root;
    ScopedMount mount;
    UniqueFd fd;
    std::string identity;  //!< for the cache key: "context" or the source's cache key
  };

  Result<SourceTree> sourceTree(const StageState& s, int stage_index, const std::string& from,
                                const Command& c) {
    (void)s;
    SourceTree t;
    if (from.empty()) {
      if (!context_fd.valid()) {
        return failedPrecondition("this build has no context directory to copy from");
      }
      t.root = CopySourceRoot{context_fd.get(), ignore ? &*ignore : nullptr, true};
      t.identity = "context";
      return t;
    }
    CAIRN_ASSIGN_OR_RETURN(StageRef ref,
                           resolveFromReference(plan, stage_index, from, c.start_line));
    StageState src;
    if (ref.kind == BaseKind::kStage) {
      CAIRN_ASSIGN_OR_RETURN(src, finishedStage(ref.stage));
    } else if (ref.kind == BaseKind::kImage) {
      CAIRN_ASSIGN_OR_RETURN(src, imageState(ref.image));
    }
    CAIRN_ASSIGN_OR_RETURN(t.mount, mountLayers(src, {}, {}));
    t.fd = UniqueFd(::open(t.mount.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!t.fd.valid()) return errnoStatus(errno, "open " + t.mount.path().string());
    t.root = CopySourceRoot{t.fd.get(), nullptr, false};
    t.identity = src.key;
    return t;
  }

  // Downloads `url` into `dir` (name from the URL's last path segment), verifying
  // `checksum` ("sha256:<hex>") when given. Returns the file name.
  Result<std::string> downloadUrl(const std::string& url, const std::string& checksum,
                                  const fs::path& dir) {
    std::string path = url.substr(url.find("://") + 3);
    auto slash = path.find('/');
    path = slash == std::string::npos ? "" : path.substr(slash);
    path = path.substr(0, path.find_first_of("?#"));
    std::string name = path.substr(path.rfind('/') + 1);
    if (name.empty()) name = "index.html";
    fs::path file = dir / name;
    std::FILE* out = std::fopen(file.c_str(), "wbx");
    if (!out) return errnoStatus(errno, "create " + file.string());
    auto api = curlApi();
    if (!api.ok()) {
      std::fclose(out);
      return api.status().withContext("download " + url);
    }
    const CurlApi& c = **api;
    CURL* curl = c.easy_init();
    if (!curl) {
      std::fclose(out);
      return internalError("curl_easy_init failed");
    }
    char errbuf[CURL_ERROR_SIZE] = {};
    // easy_setopt is variadic through the table: numbers go as long, as libcurl expects.
    c.easy_setopt(curl, CURLOPT_URL, url.c_str());
    c.easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    c.easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
    c.easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
    c.easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
    c.easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    c.easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
    c.easy_setopt(curl, CURLOPT_WRITEDATA, out);
    c.easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode rc = c.easy_perform(curl);
    c.easy_cleanup(curl);
    std::fclose(out);
    if (rc != CURLE_OK) {
      return unavailable("failed to download " + url + ": " +
                         (errbuf[0] ? std::string(errbuf) : c.easy_strerror(rc)));
    }
    ::chmod(file.c_str(), 0600);
    if (!checksum.empty()) {
      if (!checksum.starts_with("sha256:")) {
        return invalidArgument("unsupported --checksum \"" + checksum + "\": want sha256:<hex>");
      }
      CAIRN_ASSIGN_OR_RETURN(std::string data, readFile(file));
      std::string got = "sha256:" + sha256Hex(data);
      if (got != checksum) {
        return invalidArgument("checksum mismatch for " + url + ": expected " + checksum +
                               ", got " + got);
      }
    }
    return name;
  }

  Status copyStep(StageState& s, int stage_index, const Command& c,
                  const dockerfile::CopyCommand& copy, Progress::VertexId v) {
    EnvMap env = expansionEnv(s);
    dockerfile::ShellLexer lexer(plan.dockerfile.escape);
    std::vector<std::string> sources;
    std::vector<std::string> urls;
    for (const auto& src : copy.sources) {
      CAIRN_ASSIGN_OR_RETURN(std::string e, lexer.processWord(src, env));
      if (copy.is_add && e.starts_with("git@")) {
        return invalidArgument("ADD of git repositories is not supported: " + e);
      }
      if (copy.is_add && (e.starts_with("http://") || e.starts_with("https://"))) {
        urls.push_back(e);
      } else {
        sources.push_back(e);
      }
    }
    // ADD <url>: downloaded (checksum verified) into a directory of its own, then copied like
    // a context file, with mode 0600 as Docker gives downloads.
    std::optional<SourceTree> downloads;
    if (!urls.empty()) {
      if (!sources.empty()) {
        return invalidArgument("ADD cannot mix URL and local sources in one instruction");
      }
      CAIRN_ASSIGN_OR_RETURN(fs::path dir, newDir("download"));
      for (const auto& url : urls) {
        CAIRN_ASSIGN_OR_RETURN(std::string name, downloadUrl(url, copy.checksum, dir));
        sources.push_back(name);
      }
      downloads.emplace();
      downloads->fd = UniqueFd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!downloads->fd.valid()) return errnoStatus(errno, "open " + dir.string());
      downloads->root = CopySourceRoot{downloads->fd.get(), nullptr, true};
      downloads->identity = "url";
    } else if (!copy.checksum.empty()) {
      return invalidArgument("--checksum can only be used with HTTP(S) sources");
    }
    CAIRN_ASSIGN_OR_RETURN(std::string dest_raw, lexer.processWord(copy.dest, env));
    std::string workdir = cfg(s).working_dir.empty() ? "/" : cfg(s).working_dir;
    std::string dest = joinPath(workdir, dest_raw);
    if ((dest_raw.ends_with("/") || dest_raw == "." || dest_raw.ends_with("/.")) &&
        !dest.ends_with("/")) {
      dest += "/";
    }
    std::string from;
    if (!copy.from.empty()) {
      CAIRN_ASSIGN_OR_RETURN(from, lexer.processWord(copy.from, env));
    }

    CopyOptions options;
    options.excludes = copy.excludes;
    std::string chown;
    if (!copy.chown.empty()) {
      CAIRN_ASSIGN_OR_RETURN(chown, lexer.processWord(copy.chown, env));
      CAIRN_ASSIGN_OR_RETURN(runtime::ResolvedUser u, resolveUserIn(s, chown));
      options.chown = Ownership{u.uid, u.gid};
    }
    if (!copy.chmod.empty()) {
      CAIRN_ASSIGN_OR_RETURN(options.chmod, parseChmod(copy.chmod));
    }

    SourceTree tree;
    if (downloads) {
      tree = std::move(*downloads);
    } else {
      CAIRN_ASSIGN_OR_RETURN(tree, sourceTree(s, stage_index, from, c));
    }
    std::vector<SelectedSource> selected;
    std::string content;
    std::vector<std::pair<std::string, std::string>> inline_files;
    if (!copy.source_contents.empty()) {
      for (const auto& f : copy.source_contents) {
        // Heredoc bodies are scripts: expanded, but their quotes are not Dockerfile quotes.
        CAIRN_ASSIGN_OR_RETURN(std::string data, dockerfile::expandInlineFile(f, env));
        inline_files.emplace_back(f.name, data);
        content += f.name + "\x1f" + data + "\x1e";
      }
    }
    if (!sources.empty()) {
      CAIRN_ASSIGN_OR_RETURN(selected, selectSources(tree.root, sources, copy.excludes));
      CAIRN_ASSIGN_OR_RETURN(content, digestSources(tree.root, selected, copy.excludes));
    }
    std::string verb = copy.is_add ? "ADD" : "COPY";
    std::string key = hashKey({"copy", s.key, verb, tree.identity, content, dest, chown, copy.chmod,
                               joinStrings(copy.excludes, "\x1f")});
    std::string created_by =
        verb + " " + joinStrings(sources, " ") + " " + dest_raw + " # buildkit";
    CAIRN_ASSIGN_OR_RETURN(bool hit, tryCache(s, key, v));
    if (hit) {
      history(s, created_by, false);
      return okStatus();
    }

    CAIRN_ASSIGN_OR_RETURN(fs::path upper, newDir("upper"));
    CAIRN_ASSIGN_OR_RETURN(fs::path wd, newDir("overlay-work"));
    Status st = [&]() -> Status {
      CAIRN_ASSIGN_OR_RETURN(ScopedMount mnt, mountLayers(s, upper, wd));
      UniqueFd dest_fd(::open(mnt.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!dest_fd.valid()) return errnoStatus(errno, "open " + mnt.path().string());
      if (!selected.empty()) {
        if (copy.is_add && selected.size() == 1 && !selected[0].is_dir) {
          // ADD of a local archive extracts it; other files are copied like COPY.
          auto extracted = maybeExtract(tree.root, selected[0], dest_fd.get(), dest, options);
          if (!extracted.ok()) return extracted.status();
          if (*extracted) return okStatus();
        }
        CAIRN_RETURN_IF_ERROR(
            copySources(tree.root, selected, dest_fd.get(), dest, options).status());
      }
      for (const auto& [name, data] : inline_files) {
        std::string path = dest.ends_with("/") || inline_files.size() > 1 ? dest + name : dest;
        auto [parent, leaf] = splitParent(cleanAbsolutePath(path));
        CAIRN_ASSIGN_OR_RETURN(UniqueFd dir,
                               mkdirAllInRoot(dest_fd.get(), parent, 0755, options.chown));
        UniqueFd out(::openat(dir.get(), leaf.c_str(),
                              O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644));
        if (!out.valid()) return errnoStatus(errno, "create " + path);
        CAIRN_RETURN_IF_ERROR(writeAll(out.get(), data));
        if (options.chown) (void)::fchown(out.get(), options.chown->uid, options.chown->gid);
        (void)::fchmod(out.get(), options.chmod.value_or(0644));
      }
      return okStatus();
    }();
    if (!st.ok()) {
      std::error_code ec;
      fs::remove_all(upper, ec);
      return st;
    }
    CAIRN_RETURN_IF_ERROR(commitLayer(s, key, upper));
    history(s, created_by, false);
    return okStatus();
  }

  // ADD's archive rule: a local tar (plain, gzip, zstd, …) is extracted into dest.
  Result<bool> maybeExtract(const CopySourceRoot& root, const SelectedSource& src, int dest_root_fd,
                            const std::string& dest, const CopyOptions& options) {
    CAIRN_ASSIGN_OR_RETURN(UniqueFd in, openInRoot(root.dir_fd, src.path, O_RDONLY));
    char magic[512] = {};
    ssize_t n = ::pread(in.get(), magic, sizeof magic, 0);
    if (n <= 0) return false;
    std::string_view head(magic, static_cast<std::size_t>(n));
    bool compressed = head.starts_with("\x1f\x8b") || head.starts_with("\x28\xb5\x2f\xfd") ||
                      head.starts_with(
                          "\xfd"
                          "7zXZ") ||
                      head.starts_with("BZh");
    bool tar = n >= 262 && std::string_view(magic + 257, 5) == "ustar";
    if (!compressed && !tar) return false;
    CAIRN_ASSIGN_OR_RETURN(UniqueFd dir, mkdirAllInRoot(dest_root_fd, dest, 0755, options.chown));
    layer::FdSource source(in.get());
    auto decompressed = layer::makeAutoDecompressor(&source);
    if (!decompressed.ok()) return false;
    layer::ApplyOptions apply;
    apply.whiteouts = layer::WhiteoutMode::kFlatten;
    apply.devices = layer::DevicePolicy::kSkip;
    auto report =
        layer::applyLayerTar(**decompressed, "/proc/self/fd/" + std::to_string(dir.get()), apply);
    if (!report.ok()) {
      // Not a tar after all (a gzip'd single file): ADD copies it as is.
      if (tar) return report.status();
      return false;
    }
    return true;
  }

  Status workdirStep(StageState& s, const Command& c, const dockerfile::WorkdirCommand& w,
                     Progress::VertexId v) {
    (void)c;
    dockerfile::ShellLexer lexer(plan.dockerfile.escape);
    CAIRN_ASSIGN_OR_RETURN(std::string path, lexer.processWord(w.path, expansionEnv(s)));
    std::string wd =
        cleanAbsolutePath(joinPath(cfg(s).working_dir.empty() ? "/" : cfg(s).working_dir, path));
    cfg(s).working_dir = wd;
    // WORKDIR creates the directory (owned by the current USER), as a layer, like BuildKit.
    std::string key = hashKey({"workdir", s.key, wd, cfg(s).user});
    CAIRN_ASSIGN_OR_RETURN(bool hit, tryCache(s, key, v));
    if (hit) {
      history(s, "WORKDIR " + wd, false);
      return okStatus();
    }
    CAIRN_ASSIGN_OR_RETURN(runtime::ResolvedUser user, resolveUserIn(s, cfg(s).user));
    CAIRN_ASSIGN_OR_RETURN(fs::path upper, newDir("upper"));
    CAIRN_ASSIGN_OR_RETURN(fs::path wdir, newDir("overlay-work"));
    Status st = [&]() -> Status {
      CAIRN_ASSIGN_OR_RETURN(ScopedMount mnt, mountLayers(s, upper, wdir));
      UniqueFd root(::open(mnt.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!root.valid()) return errnoStatus(errno, "open " + mnt.path().string());
      if (openInRoot(root.get(), wd, O_RDONLY | O_DIRECTORY).ok()) return okStatus();
      std::optional<Ownership> owner;
      if (!cfg(s).user.empty()) owner = Ownership{user.uid, user.gid};
      return mkdirAllInRoot(root.get(), wd, 0755, owner).status();
    }();
    if (!st.ok()) {
      std::error_code ec;
      fs::remove_all(upper, ec);
      return st;
    }
    CAIRN_RETURN_IF_ERROR(commitLayer(s, key, upper));
    history(s, "WORKDIR " + wd, false);
    return okStatus();
  }

  // Metadata instructions change the config only.
  Status metaStep(StageState& s, const Command& c) {
    dockerfile::ShellLexer lexer(plan.dockerfile.escape);
    EnvMap env = expansionEnv(s);
    auto expand = [&](const std::string& w) { return lexer.processWord(w, env); };
    std::string created_by = commandDisplay(c);
    auto& config = cfg(s);
    if (const auto* e = std::get_if<dockerfile::EnvCommand>(&c.cmd)) {
      std::string shown;
      for (const auto& kv : e->env) {
        CAIRN_ASSIGN_OR_RETURN(std::string value, lexer.processWord(kv.value, env));
        setEnv(config.env, kv.key, value);
        env[kv.key] = value;
        shown += (shown.empty() ? "" : " ") + kv.key + "=" + value;
      }
      created_by = "ENV " + shown;
    } else if (const auto* a = std::get_if<dockerfile::ArgCommand>(&c.cmd)) {
      for (const auto& arg : a->args) {
        std::optional<std::string> value;
        if (auto it = req.build_args.find(arg.key); it != req.build_args.end()) {
          value = it->second;
        } else if (arg.value) {
          CAIRN_ASSIGN_OR_RETURN(std::string v, expand(*arg.value));
          value = v;
        } else if (auto g = plan.global_args.find(arg.key); g != plan.global_args.end()) {
          value = g->second;
        }
        if (value) s.args[arg.key] = *value;
      }
      s.key = hashKey({"arg", s.key, created_by,
                       joinStrings(
                           [&] {
                             std::vector<std::string> v;
                             for (auto& [k, val] : s.args)
                               v.push_back(k + "=" + val);
                             return v;
                           }(),
                           "\x1f")});
      return okStatus();  // ARG leaves no history entry in BuildKit images
    } else if (const auto* l = std::get_if<dockerfile::LabelCommand>(&c.cmd)) {
      for (const auto& kv : l->labels) {
        CAIRN_ASSIGN_OR_RETURN(std::string k, expand(kv.key));
        CAIRN_ASSIGN_OR_RETURN(std::string val, expand(kv.value));
        config.labels[k] = val;
      }
    } else if (const auto* u = std::get_if<dockerfile::UserCommand>(&c.cmd)) {
      CAIRN_ASSIGN_OR_RETURN(config.user, expand(u->user));
    } else if (const auto* x = std::get_if<dockerfile::ExposeCommand>(&c.cmd)) {
      for (const auto& p : x->ports) {
        CAIRN_ASSIGN_OR_RETURN(std::string port, expand(p));
        for (const auto& one : splitString(port, ' ')) {
          if (one.empty()) continue;
          config.exposed_ports.insert(one.find('/') == std::string::npos ? one + "/tcp"
                                                                         : toLowerAscii(one));
        }
      }
    } else if (const auto* vol = std::get_if<dockerfile::VolumeCommand>(&c.cmd)) {
      for (const auto& p : vol->volumes) {
        CAIRN_ASSIGN_OR_RETURN(std::string path, expand(p));
        if (trimSpace(path).empty())
          return invalidArgument("VOLUME specified can not be an empty string");
        config.volumes.insert(path);
      }
    } else if (const auto* ep = std::get_if<dockerfile::EntrypointCommand>(&c.cmd)) {
      std::vector<std::string> args = ep->cmd.args;
      if (ep->cmd.prepend_shell) {
        std::vector<std::string> sh =
            config.shell ? *config.shell : std::vector<std::string>{"/bin/sh", "-c"};
        sh.insert(sh.end(), args.begin(), args.end());
        args = sh;
      }
      config.entrypoint = args;
      config.cmd.reset();  // ENTRYPOINT resets CMD inherited from the base, as Docker does
    } else if (const auto* cm = std::get_if<dockerfile::CmdCommand>(&c.cmd)) {
      std::vector<std::string> args = cm->cmd.args;
      if (cm->cmd.prepend_shell) {
        std::vector<std::string> sh =
            config.shell ? *config.shell : std::vector<std::string>{"/bin/sh", "-c"};
        sh.insert(sh.end(), args.begin(), args.end());
        args = sh;
      }
      config.cmd = args;
    } else if (const auto* sh = std::get_if<dockerfile::ShellCommand>(&c.cmd)) {
      config.shell = sh->shell;
    } else if (const auto* sig = std::get_if<dockerfile::StopSignalCommand>(&c.cmd)) {
      CAIRN_ASSIGN_OR_RETURN(config.stop_signal, expand(sig->signal));
    } else if (const auto* hc = std::get_if<dockerfile::HealthcheckCommand>(&c.cmd)) {
      oci::Healthcheck h;
      h.test = hc->test;
      h.interval = hc->interval_ns;
      h.timeout = hc->timeout_ns;
      h.start_period = hc->start_period_ns;
      h.start_interval = hc->start_interval_ns;
      h.retries = hc->retries;
      config.healthcheck = h;
    } else if (const auto* ob = std::get_if<dockerfile::OnbuildCommand>(&c.cmd)) {
      config.on_build.push_back(ob->expression);
    } else if (const auto* m = std::get_if<dockerfile::MaintainerCommand>(&c.cmd)) {
      s.config.author = m->maintainer;
    }
    // The key covers what the step changed (the config), never the history's timestamps.
    oci::ImageConfig keyed = s.config;
    keyed.history.clear();
    keyed.created.clear();
    s.key = hashKey({"meta", s.key, c.name, toJson(keyed).dump()});
    history(s, created_by, true);
    return okStatus();
  }

  Status step(StageState& s, int stage_index, const Command& c, const std::string& label) {
    if (cancelled()) return cancelled_status();
    Progress::VertexId v = progress.start(label);
    ++steps;
    s.last_step_cached = false;
    Status st;
    if (const auto* run = std::get_if<dockerfile::RunCommand>(&c.cmd)) {
      st = runStep(s, stage_index, *run, c, v);
    } else if (const auto* copy = std::get_if<dockerfile::CopyCommand>(&c.cmd)) {
      st = copyStep(s, stage_index, c, *copy, v);
    } else if (const auto* w = std::get_if<dockerfile::WorkdirCommand>(&c.cmd)) {
      st = workdirStep(s, c, *w, v);
    } else {
      st = metaStep(s, c);
      if (st.ok()) progress.done(v);
      return st.ok() ? st : lineError(c, st);
    }
    if (!st.ok()) {
      if (st.code() == StatusCode::kCancelled && cancelled()) {
        progress.canceled(v);
        return st;
      }
      progress.error(v, st.message());
      // The step's last output lines travel with the error: they become the snapshot's
      // errorReason, which is all a user of the API sees of a failed build.
      std::string message = lineError(c, st).message();
      auto lines = progress.tail(v, kErrorTailLines);
      if (!lines.empty()) {
        message += "\nlast " + std::to_string(lines.size()) + " lines of output:";
        for (const auto& l : lines)
          message += "\n  " + l;
      }
      return Status(st.code(), std::move(message));
    }
    // A cache hit printed CACHED already; BuildKit prints no DONE after it.
    if (!s.last_step_cached) progress.done(v);
    return okStatus();
  }

  static Status cancelled_status() { return ::cairn::cancelled("build cancelled"); }

  Status buildStage(int index) {
    const PlannedStage& p = plan.stages[static_cast<std::size_t>(index)];
    const auto& stage = plan.dockerfile.stages[static_cast<std::size_t>(index)];
    std::string prefix = stage.name.empty() ? "" : p.name + " ";
    int total = static_cast<int>(stage.commands.size()) + 1;
    Progress::VertexId from_v = progress.start("[" + prefix + "1/" + std::to_string(total) + "] " +
                                               std::string(trimSpace(stage.original)));
    auto base = baseState(p);
    if (!base.ok()) {
      progress.error(from_v, base.status().message());
      return Status(base.status().code(), "line " + std::to_string(stage.start_line) +
                                              ": FROM: " + base.status().message());
    }
    StageState s = std::move(*base);
    s.exports_layers = image_stages.count(index) > 0;
    progress.done(from_v);
    // ONBUILD triggers of the base image run first, in order.
    for (const std::string& trigger : s.onbuild_triggers) {
      auto parsed = dockerfile::parseDockerfileInstructions("FROM scratch\n" + trigger + "\n");
      if (!parsed.ok() || parsed->stages.empty() || parsed->stages[0].commands.empty()) {
        return invalidArgument("line " + std::to_string(stage.start_line) +
                               ": invalid ONBUILD trigger in the base image: " + trigger);
      }
      Command c = parsed->stages[0].commands[0];
      c.start_line = stage.start_line;
      CAIRN_RETURN_IF_ERROR(step(s, index, c, "[" + prefix + "ONBUILD] " + trigger));
    }
    s.onbuild_triggers.clear();
    int n = 1;
    for (const Command& c : stage.commands) {
      ++n;
      std::string label =
          "[" + prefix + std::to_string(n) + "/" + std::to_string(total) + "] " + commandDisplay(c);
      CAIRN_RETURN_IF_ERROR(step(s, index, c, label));
    }
    std::lock_guard lock(done_mu);
    done[index] = std::move(s);
    return okStatus();
  }

  // ---- scheduling ---------------------------------------------------------------------

  // A stage ended with `st`; the first failure becomes the build's error and cancels the
  // other stages (a stage cancelled because of it fails with kCancelled, which is not kept).
  void stageFinished(int index, Status st, int wake_fd) {
    bool failed = !st.ok();
    {
      std::lock_guard lock(sched_mu);
      if (failed && first_error.ok()) first_error = st;
      finished_now.emplace_back(index, std::move(st));
    }
    if (failed) cancel_token.cancel();
    std::uint64_t one = 1;
    (void)!::write(wake_fd, &one, sizeof one);
  }

  // Builds the planned stages as a DAG on at most max_parallel_stages threads: a stage starts
  // once every stage it depends on (FROM, COPY --from, RUN --mount from) is built.
  Status buildStages() {
    const std::size_t limit = static_cast<std::size_t>(std::max(1, req.max_parallel_stages));
    UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wake.valid()) return errnoStatus(errno, "eventfd for the stage scheduler");
    std::map<int, std::thread> running;
    std::set<int> started, built;
    for (;;) {
      if (req.cancel && req.cancel->cancelled()) cancel_token.cancel();
      std::vector<std::pair<int, Status>> finished;
      {
        std::lock_guard lock(sched_mu);
        finished.swap(finished_now);
      }
      for (auto& [index, st] : finished) {
        if (auto it = running.find(index); it != running.end()) {
          it->second.join();
          running.erase(it);
        }
        if (st.ok()) built.insert(index);
      }
      if (!cancel_token.cancelled()) {
        for (int index : plan.order) {
          if (running.size() >= limit) break;
          if (started.count(index)) continue;
          const auto& deps = plan.stages[static_cast<std::size_t>(index)].stage_deps;
          if (!std::all_of(deps.begin(), deps.end(), [&](int d) { return built.count(d) > 0; }))
            continue;
          started.insert(index);
          try {
            running.emplace(
                index, std::thread([this, index, fd = wake.get()] {
                  Status st;
                  try {
                    st = buildStage(index);
                  } catch (const std::exception& e) {
                    st = internalError("stage " + std::to_string(index) + ": " + e.what());
                  }
                  stageFinished(index, std::move(st), fd);
                }));
          } catch (const std::system_error& e) {
            // No thread for this stage: fail the build as if the stage had failed.
            stageFinished(index, internalError(std::string("start a stage thread: ") + e.what()),
                          wake.get());
            break;
          }
        }
      }
      if (running.empty()) {
        std::lock_guard lock(sched_mu);
        if (!finished_now.empty()) continue;  // a stage that could not start
        break;
      }
      pollfd pfds[2] = {{wake.get(), POLLIN, 0}, {req.cancel ? req.cancel->fd() : -1, POLLIN, 0}};
      // Once cancelled, the caller's eventfd stays readable; only the wake fd matters then.
      if (cancel_token.cancelled()) pfds[1].fd = -1;
      if (::poll(pfds, 2, -1) < 0 && errno != EINTR) {
        // Cannot wait: stop everything, but still join the threads before returning.
        const int err = errno;
        cancel_token.cancel();
        for (auto& [index, t] : running)
          t.join();
        return errnoStatus(err, "poll in the stage scheduler");
      }
      std::uint64_t count = 0;
      (void)!::read(wake.get(), &count, sizeof count);
    }
    std::lock_guard lock(sched_mu);
    if (!first_error.ok()) return first_error;
    if (req.cancel && req.cancel->cancelled()) return cancelled_status();
    if (built.size() != plan.order.size()) return internalError("stages left unbuilt");
    return okStatus();
  }

  Result<BuildResult> exportImage(StageState& s) {
    Progress::VertexId v = progress.start("exporting to image");
    oci::Manifest manifest;
    s.config.diff_ids.clear();
    std::uint64_t size = 0;
    for (auto& layer : s.layers) {
      s.config.diff_ids.push_back(layer.diff_id);
      // A blob made at commit that is gone by now (removed by a store GC that did not see the
      // build) is made again from the layer's dir below.
      if (layer.exported_at_commit && layer.blob && !b.options_.blobs->exists(layer.blob->digest))
        layer.blob.reset();
      if (!layer.blob) {
        auto known = b.cache_->exported(layer.diff_id);
        if (known.ok() && *known && (*known)->digest == layer.diff_id) {
          // An uncompressed layer blob: make sure it names this layer's dir as a source (a
          // no-op when it does), so it lives as long as this image's layers do.
          CAIRN_ASSIGN_OR_RETURN(layer.blob,
                                 linkLayerBlob(layer.chain_id, layer.diff_id, (*known)->size));
        } else if (known.ok() && *known && b.options_.blobs->info((*known)->digest).ok()) {
          oci::Descriptor d;
          d.media_type = (*known)->media_type;
          d.digest = (*known)->digest;
          d.size = static_cast<std::int64_t>((*known)->size);
          layer.blob = d;
        } else {
          // No blob known for this layer (an older cache, or one a store GC removed): one pass
          // over its dir gives the tar's size and checks the diff id, then the dir is linked.
          CAIRN_ASSIGN_OR_RETURN(HashedTree tree,
                                 hashTree(b.options_.layers->fsPath(layer.chain_id)));
          if (tree.diff_id != layer.diff_id) {
            return internalError("layer " + layer.chain_id.str() + " hashes to diff id " +
                                 tree.diff_id.str() + ", expected " + layer.diff_id.str());
          }
          CAIRN_ASSIGN_OR_RETURN(layer.blob,
                                 linkLayerBlob(layer.chain_id, layer.diff_id, tree.tar_size));
        }
      }
      manifest.layers.push_back(*layer.blob);
      size += static_cast<std::uint64_t>(layer.blob->size);
    }
    s.config.created = formatRfc3339(s.last_created);
    if (s.config.architecture.empty()) s.config.architecture = "amd64";
    if (s.config.os.empty()) s.config.os = "linux";
    std::string config_json = toJson(s.config).dump();
    CAIRN_ASSIGN_OR_RETURN(store::BlobInfo config_blob,
                           store::writeBlob(*b.options_.blobs, config_json));
    const Digest& config_digest = config_blob.digest;
    manifest.config.media_type = std::string(oci::kMediaTypeOciConfig);
    manifest.config.digest = config_digest;
    manifest.config.size = static_cast<std::int64_t>(config_json.size());
    std::string manifest_json = toJson(manifest).dump();
    CAIRN_ASSIGN_OR_RETURN(store::BlobInfo manifest_blob,
                           store::writeBlob(*b.options_.blobs, manifest_json));
    const Digest& manifest_digest = manifest_blob.digest;
    oci::Descriptor desc;
    desc.media_type = std::string(oci::kMediaTypeOciManifest);
    desc.digest = manifest_digest;
    desc.size = static_cast<std::int64_t>(manifest_json.size());
    for (const auto& tag : req.tags) {
      CAIRN_RETURN_IF_ERROR(b.options_.catalog->tag(tag, desc, "build"));
    }
    progress.info(v, "writing image " + manifest_digest.str() + " done");
    for (const auto& tag : req.tags)
      progress.info(v, "naming to " + tag + " done");
    progress.done(v);
    BuildResult r;
    r.manifest = desc;
    r.config = s.config;
    r.size_bytes = size;
    return r;
  }

  Result<BuildResult> execute() {
    std::string build_id = uuidV4();
    work = b.options_.data_dir / "work" / "builds" / build_id;
    std::error_code ec;
    fs::create_directories(work, ec);
    if (ec) return internalError("create " + work.string() + ": " + ec.message());

    Progress::VertexId def =
        progress.start("[internal] load build definition from " + req.dockerfile_name);
    progress.info(def,
                  "transferring dockerfile: " + std::to_string(req.dockerfile.size()) + "B done");
    auto parsed = dockerfile::parseDockerfileInstructions(req.dockerfile);
    if (!parsed.ok()) {
      progress.error(def, parsed.status().message());
      return parsed.status().withContext(req.dockerfile_name);
    }
    progress.done(def);
    PlanOptions po;
    po.build_args = req.build_args;
    po.target = req.target;
    auto planned = planBuild(std::move(*parsed), po);
    if (!planned.ok()) return planned.status().withContext(req.dockerfile_name);
    plan = std::move(*planned);
    for (int i = plan.target; i >= 0 && image_stages.insert(i).second;) {
      const StageRef& base = plan.stages[static_cast<std::size_t>(i)].base;
      i = base.kind == BaseKind::kStage ? base.stage : -1;
    }
    if (!plan.unused_build_args.empty()) {
      progress.line(
          "[Warning] One or more build-args [" +
          joinStrings({plan.unused_build_args.begin(), plan.unused_build_args.end()}, " ") +
          "] were not consumed");
    }

    if (!req.context_dir.empty()) {
      Progress::VertexId ctx = progress.start("[internal] load .dockerignore");
      context_fd = UniqueFd(::open(req.context_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!context_fd.valid()) {
        progress.error(ctx, "cannot open the build context");
        return errnoStatus(errno, "build context " + req.context_dir.string());
      }
      auto text = readFile(req.context_dir / ".dockerignore");
      if (text.ok()) {
        auto parsedIgnore = dockerfile::DockerIgnore::parse(*text);
        if (!parsedIgnore.ok()) return parsedIgnore.status().withContext(".dockerignore");
        ignore = std::move(*parsedIgnore);
      }
      progress.done(ctx);
    }

    CAIRN_RETURN_IF_ERROR(buildStages());
    BuildResult r;
    CAIRN_ASSIGN_OR_RETURN(r, exportImage(done[plan.target]));
    r.steps = steps;
    r.cached_steps = cached;
    return r;
  }
};

Result<std::int64_t> parseMemoryLimit(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return invalidArgument("memory limit \"" + std::string(text) + "\": " + why);
  };
  std::size_t i = 0;
  bool dot = false;
  while (i < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[i])) || (text[i] == '.' && !dot))) {
    dot = dot || text[i] == '.';
    ++i;
  }
  std::string number(text.substr(0, i));
  if (number.empty() || number == ".") return bad("expected a number with an optional unit");
  std::string unit = toLowerAscii(text.substr(i));
  double mult = 0;
  static const std::pair<const char*, double> kUnits[] = {
      {"", 1024.0 * 1024 * 1024},  // a bare number is gigabytes, as `cairn run --memory`
      {"b", 1},
      {"k", 1024.0},
      {"kb", 1024.0},
      {"kib", 1024.0},
      {"m", 1024.0 * 1024},
      {"mb", 1024.0 * 1024},
      {"mib", 1024.0 * 1024},
      {"g", 1024.0 * 1024 * 1024},
      {"gb", 1024.0 * 1024 * 1024},
      {"gib", 1024.0 * 1024 * 1024},
      {"t", 1024.0 * 1024 * 1024 * 1024},
      {"tb", 1024.0 * 1024 * 1024 * 1024},
      {"tib", 1024.0 * 1024 * 1024 * 1024},
  };
  for (const auto& [name, m] : kUnits) {
    if (unit == name) mult = m;
  }
  if (mult == 0) return bad("unknown unit \"" + unit + "\" (b, k, m, g, t)");
  double bytes = std::strtod(number.c_str(), nullptr) * mult;
  if (bytes > 9.2e18) return bad("too large");
  if (bytes < 6.0 * 1024 * 1024) return bad("the minimum is 6 MiB");
  return static_cast<std::int64_t>(bytes);
}

Result<std::pair<std::string, BuildSecret>> parseSecretFlag(std::string_view flag) {
  auto bad = [&](const std::string& why) {
    return invalidArgument("--secret " + std::string(flag) + ": " + why);
  };
  std::string id, src, env, type;
  for (const std::string& field : splitString(flag, ',')) {
    auto eq = field.find('=');
    if (eq == std::string::npos) return bad("\"" + field + "\" is not a key=value pair");
    std::string key = toLowerAscii(field.substr(0, eq));
    std::string value = field.substr(eq + 1);
    if (key == "type") {
      if (value != "file" && value != "env") {
        return bad("unsupported secret type \"" + value + "\" (file or env)");
      }
      type = value;
    } else if (key == "id") {
      id = value;
    } else if (key == "src" || key == "source") {
      src = value;
    } else if (key == "env") {
      env = value;
    } else {
      return bad("unexpected key \"" + key + "\" (id, src, env, type)");
    }
  }
  if (id.empty()) return bad("id=… is required");
  if (type == "env" && env.empty()) std::swap(env, src);
  if (env.empty() && src.empty()) {
    // As buildx: an environment variable named like the id, else a file of that name.
    if (std::getenv(id.c_str()) != nullptr) {
      env = id;
    } else {
      src = id;
    }
  }
  BuildSecret secret;
  if (!env.empty()) {
    const char* value = std::getenv(env.c_str());
    if (value == nullptr) return bad("environment variable " + env + " is not set");
    secret.value = value;
  } else {
    struct stat st {};
    if (::stat(src.c_str(), &st) != 0) return errnoStatus(errno, "--secret " + id + ": " + src);
    if (!S_ISREG(st.st_mode)) return bad(src + " is not a regular file");
    secret.file = fs::absolute(src);
  }
  return std::make_pair(id, std::move(secret));
}

Result<std::pair<std::string, std::filesystem::path>> parseSshFlag(std::string_view flag) {
  std::string text(flag);
  auto eq = text.find('=');
  std::string id = text.substr(0, eq);
  std::string path = eq == std::string::npos ? "" : text.substr(eq + 1);
  if (id.empty()) return invalidArgument("--ssh " + text + ": an id is required (e.g. default)");
  if (path.empty()) {
    const char* sock = std::getenv("SSH_AUTH_SOCK");
    if (sock == nullptr || *sock == '\0') {
      return invalidArgument("--ssh " + text +
                             ": SSH_AUTH_SOCK is not set (start ssh-agent, or give a socket "
                             "path: --ssh " +
                             id + "=/path/to/agent.sock)");
    }
    path = sock;
  }
  if (path.find(',') != std::string::npos) {
    return invalidArgument("--ssh " + text +
                           ": only one agent socket per id (key files are not supported: "
                           "ssh-add them to an agent)");
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return errnoStatus(errno, "--ssh " + id + ": " + path);
  if (!S_ISSOCK(st.st_mode)) {
    return invalidArgument("--ssh " + id + ": " + path +
                           " is not an agent socket (key files are not supported: run "
                           "ssh-agent and ssh-add the key)");
  }
  return std::make_pair(id, fs::absolute(path));
}

Result<std::unique_ptr<Builder>> Builder::open(BuilderOptions options) {
  if (!options.blobs || !options.layers || !options.catalog) {
    return invalidArgument("Builder needs a blob store, a layer store and a catalog");
  }
  // Overlay options and runtime specs need absolute paths; `--data-dir ./d` must work too.
  options.data_dir = std::filesystem::absolute(options.data_dir);
  std::unique_ptr<Builder> b(new Builder(std::move(options)));
  CAIRN_ASSIGN_OR_RETURN(b->cache_, CacheIndex::open(b->options_.data_dir / "cache" / "index.db"));
  return b;
}

Builder::~Builder() = default;

Result<BuildResult> Builder::build(const BuildRequest& request, LogSink& log) {
  Run run(*this, request, log);
  auto result = run.execute();
  if (!result.ok()) {
    // BuildKit's closing line; the Status itself carries the details for errorReason.
    // Only the first line: the output lines that follow it in the Status are in the log already.
    std::string message = result.status().message();
    run.progress.line("ERROR: failed to solve: " + message.substr(0, message.find('\n')));
    return result.status();
  }
  return result;
}

Status Builder::recover() {
  fs::path builds = options_.data_dir / "work" / "builds";
  std::error_code ec;
  if (fs::exists(builds, ec)) {
    CAIRN_RETURN_IF_ERROR(runtime::unmountAllUnder(builds));
    fs::remove_all(builds, ec);
    if (ec) return internalError("remove " + builds.string() + ": " + ec.message());
  }
  (void)options_.layers->cleanStaging(std::chrono::seconds(0));
  if (options_.executor) CAIRN_RETURN_IF_ERROR(options_.executor->cleanupStale());
  return okStatus();
}

Result<store::LayerGcReport> Builder::collectGarbage() {
  CAIRN_RETURN_IF_ERROR(cache_->evict(options_.cache_budget_bytes).status());
  CAIRN_ASSIGN_OR_RETURN(std::vector<Digest> live, cache_->liveChainIds());
  CAIRN_ASSIGN_OR_RETURN(auto roots, options_.catalog->roots());
  for (const auto& root : roots) {
    auto image = oci::loadImage(*options_.blobs, root);
    if (!image.ok()) continue;
    Digest parent;
    for (const auto& diff : image->config.diff_ids) {
      parent = parent.empty() ? diff : Digest::ofBytes(parent.str() + " " + diff.str());
    }
    if (!parent.empty()) live.push_back(parent);
  }
  return options_.layers->collectGarbage(live);
}

}  // namespace cairn::build
