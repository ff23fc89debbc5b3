// The build engine end to end on a busybox image made by the test: RUN under crun on overlayfs,
// COPY from the context and from stages, metadata, the step cache, failures. Needs root (CI is
// root), crun or runc, and busybox-static.
#include "cairn/build/builder.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "../runtime/busybox_rootfs.h"
#include "cairn/common/crypto.h"
#include "cairn/common/encoding.h"
#include "cairn/common/strings.h"
#include "cairn/registry/transfer.h"
#include "cairn/runtime/process.h"
#include "cairn/store/local_blob_store.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::build {
namespace {

namespace fs = std::filesystem;
using ::cairn::testing::StatusIs;
using ::testing::Contains;
using ::testing::HasSubstr;

class BuilderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0)
      GTEST_SKIP() << "the build engine mounts overlayfs: needs root (CI is root)";
    auto dir = TempDir::create("builder");
    ASSERT_OK(dir);
    tmp_ = std::make_unique<TempDir>(std::move(*dir));
    data_ = tmp_->path() / "data";
    ctx_ = tmp_->path() / "ctx";
    fs::create_directories(ctx_);
    ASSERT_OK_AND_ASSIGN(blobs_, store::LocalBlobStore::open(data_));
    ASSERT_OK_AND_ASSIGN(layers_, store::LayerStore::open(data_));
    ASSERT_OK_AND_ASSIGN(catalog_, oci::ImageCatalog::open(data_));
    runtime::ExecutorOptions eo;
    eo.work_root = data_ / "work" / "run";
    ASSERT_OK_AND_ASSIGN(executor_, runtime::Executor::create(eo));
    BuilderOptions bo;
    bo.data_dir = data_;
    bo.blobs = blobs_.get();
    bo.layers = layers_.get();
    bo.catalog = catalog_.get();
    bo.executor = executor_.get();
    ASSERT_OK_AND_ASSIGN(builder_, Builder::open(bo));
    ASSERT_OK(builder_->recover());
    importBusybox();
  }

  // A one-layer busybox image tagged "busybox:test".
  void importBusybox() {
    fs::path root = tmp_->path() / "busybox";
    ASSERT_OK(runtime::testing::makeBusyboxRootfs(root));
    ASSERT_OK_AND_ASSIGN(layer::EncodedLayer layer,
                         store::exportDirToBlob(root, *blobs_, layer::Compression::kZstd));
    oci::ImageConfig config;
    config.architecture = "amd64";
    config.os = "linux";
    config.config = oci::ContainerConfig{};
    config.config->env = {"PATH=/bin"};
    config.config->cmd = std::vector<std::string>{"sh"};
    config.diff_ids = {layer.diff_id};
    std::string config_json = oci::toJson(config).dump();
    ASSERT_OK_AND_ASSIGN(auto config_blob, store::writeBlob(*blobs_, config_json));
    oci::Manifest m;
    m.config.media_type = std::string(oci::kMediaTypeOciConfig);
    m.config.digest = config_blob.digest;
    m.config.size = static_cast<std::int64_t>(config_json.size());
    oci::Descriptor ld;
    ld.media_type = layer.media_type;
    ld.digest = layer.digest;
    ld.size = static_cast<std::int64_t>(layer.size);
    m.layers = {ld};
    std::string mj = oci::toJson(m).dump();
    ASSERT_OK_AND_ASSIGN(auto mb, store::writeBlob(*blobs_, mj));
    oci::Descriptor md;
    md.media_type = std::string(oci::kMediaTypeOciManifest);
    md.digest = mb.digest;
    md.size = static_cast<std::int64_t>(mj.size());
    ASSERT_OK(catalog_->tag("busybox:test", md));
  }

  void write(const std::string& rel, const std::string& content) {
    fs::create_directories((ctx_ / rel).parent_path());
    std::ofstream(ctx_ / rel) << content;
  }

  BuildRequest request(const std::string& dockerfile, const std::string& tag = "out:test") {
    BuildRequest req;
    req.dockerfile = dockerfile;
    req.context_dir = ctx_;
    req.tags = {tag};
    req.network = runtime::NetworkMode::kNone;
    return req;
  }

  Result<BuildResult> build(const BuildRequest& req) {
    log_ = std::make_unique<MemoryLogSink>();
    return builder_->build(req, *log_);
  }

  Result<BuildResult> build(const std::string& dockerfile, const std::string& tag = "out:test",
                            bool no_cache = false) {
    BuildRequest req = request(dockerfile, tag);
    req.no_cache = no_cache;
    return build(req);
  }

  // The host directory behind `RUN --mount=type=cache,id=<id>`: concurrent steps leave
  // markers there for each other and for the test.
  fs::path cacheMountDir(const std::string& id) const {
    return data_ / "cache" / "mounts" / hexEncode(sha256(id));
  }

  // Flattens the built image into a directory to look at its files.
  fs::path unpack(const BuildResult& r) {
    fs::path root = tmp_->path() / ("rootfs-" + std::to_string(++unpacked_));
    fs::create_directories(root);
    auto image = oci::loadImage(*blobs_, r.manifest);
    EXPECT_OK(image);
    EXPECT_OK(registry::unpackImage(*blobs_, image->manifest, image->config, root));
    return root;
  }

  std::string log() const { return log_ ? log_->contents() : ""; }

  std::unique_ptr<TempDir> tmp_;
  fs::path data_, ctx_;
  std::unique_ptr<store::LocalBlobStore> blobs_;
  std::unique_ptr<store::LayerStore> layers_;
  std::unique_ptr<oci::ImageCatalog> catalog_;
  std::unique_ptr<runtime::Executor> executor_;
  std::unique_ptr<Builder> builder_;
  std::unique_ptr<MemoryLogSink> log_;
  int unpacked_ = 0;
};

const char* kDockerfile =
    "FROM busybox:test\n"
    "RUN echo built > /built.txt && mkdir -p /gone && echo x > /gone/f\n"
    "ENV GREETING=hello\n"
    "WORKDIR /app\n"
    "COPY a.txt ./\n"
    "COPY src/ /app/src/\n"
    "RUN rm -rf /gone && echo \"$GREETING\" > /app/env.txt\n"
    "USER app\n"
    "EXPOSE 8080\n"
    "LABEL org.example=yes\n"
    "ENTRYPOINT [\"sh\", \"-c\"]\n"
    "CMD [\"echo hi\"]\n";

TEST_F(BuilderTest, BuildsFilesAndConfig) {
  write("a.txt", "A\n");
  write("src/main.sh", "echo main\n");
  ASSERT_OK_AND_ASSIGN(BuildResult r, build(kDockerfile));
  fs::path root = unpack(r);
  EXPECT_EQ(*readFile(root / "built.txt"), "built\n");
  EXPECT_EQ(*readFile(root / "app/a.txt"), "A\n");
  EXPECT_EQ(*readFile(root / "app/src/main.sh"), "echo main\n");
  EXPECT_EQ(*readFile(root / "app/env.txt"), "hello\n");
  EXPECT_FALSE(fs::exists(root / "gone"));  // a whiteout from the later RUN
  const auto& c = *r.config.config;
  EXPECT_THAT(c.env, Contains("GREETING=hello"));
  EXPECT_EQ(c.working_dir, "/app");
  EXPECT_EQ(c.user, "app");
  EXPECT_THAT(c.exposed_ports, Contains("8080/tcp"));
  EXPECT_EQ(c.labels.at("org.example"), "yes");
  EXPECT_EQ(*c.entrypoint, (std::vector<std::string>{"sh", "-c"}));
  EXPECT_EQ(*c.cmd, (std::vector<std::string>{"echo hi"}));
  EXPECT_EQ(r.config.diff_ids.size(), 6u);  // base + RUN + WORKDIR + 2 COPY + RUN
  EXPECT_THAT(log(), HasSubstr("[2/12] RUN echo built"));
  EXPECT_THAT(log(), HasSubstr("DONE"));
  ASSERT_OK_AND_ASSIGN(auto entry, catalog_->get("out:test"));
  EXPECT_EQ(entry.descriptor.digest, r.manifest.digest);
}

TEST_F(BuilderTest, RebuildIsFullyCachedAndAContentChangeRerunsFromThere) {
  write("a.txt", "A\n");
  write("src/main.sh", "echo main\n");
  ASSERT_OK_AND_ASSIGN(BuildResult first, build(kDockerfile));
  EXPECT_EQ(first.cached_steps, 0);

  ASSERT_OK_AND_ASSIGN(BuildResult again, build(kDockerfile));
  EXPECT_EQ(again.cached_steps, 5);  // every filesystem step
  EXPECT_EQ(again.config.diff_ids, first.config.diff_ids);
  EXPECT_EQ(again.manifest.digest, first.manifest.digest);  // the same image, byte for byte
  EXPECT_THAT(log(), HasSubstr("CACHED"));

  // Only the mtime changes: still cached.
  struct timespec times[2] = {{12345, 0}, {12345, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (ctx_ / "a.txt").c_str(), times, 0), 0);
  ASSERT_OK_AND_ASSIGN(BuildResult touched, build(kDockerfile));
  EXPECT_EQ(touched.cached_steps, 5);

  // New content: that COPY and everything after it run again.
  write("a.txt", "B\n");
  ASSERT_OK_AND_ASSIGN(BuildResult changed, build(kDockerfile));
  EXPECT_EQ(changed.cached_steps, 2);  // RUN + WORKDIR before the COPY
  EXPECT_EQ(*readFile(unpack(changed) / "app/a.txt"), "B\n");

  // A new Builder on the same data dir (a restart) still hits the cache.
  BuilderOptions bo;
  bo.data_dir = data_;
  bo.blobs = blobs_.get();
  bo.layers = layers_.get();
  bo.catalog = catalog_.get();
  bo.executor = executor_.get();
  ASSERT_OK_AND_ASSIGN(builder_, Builder::open(bo));
  ASSERT_OK_AND_ASSIGN(BuildResult restarted, build(kDockerfile));
  EXPECT_EQ(restarted.cached_steps, 5);

  ASSERT_OK_AND_ASSIGN(BuildResult nocache, build(kDockerfile, "out:test", /*no_cache=*/true));
  EXPECT_EQ(nocache.cached_steps, 0);
}

TEST_F(BuilderTest, MultiStageCopiesFromAnEarlierStage) {
  ASSERT_OK_AND_ASSIGN(BuildResult r, build("FROM busybox:test AS builder\n"
                                            "RUN mkdir /out && echo artifact > /out/bin\n"
                                            "FROM busybox:test AS unused\n"
                                            "RUN false\n"
                                            "FROM busybox:test\n"
                                            "COPY --from=builder /out/bin /usr/local/bin/tool\n"));
  EXPECT_EQ(*readFile(unpack(r) / "usr/local/bin/tool"), "artifact\n");
  EXPECT_THAT(log(), ::testing::Not(HasSubstr("RUN false")));  // unused stage skipped
}

TEST_F(BuilderTest, FailingStepNamesLineExitCodeAndOutput) {
  auto r = build("FROM busybox:test\nRUN echo first\nRUN echo oops-output && exit 3\n");
  EXPECT_THAT(r, StatusIs(StatusCode::kFailedPrecondition,
                          AllOf(HasSubstr("line 3"), HasSubstr("RUN"), HasSubstr("exit code 3"))));
  // The step's last output lines are in the error (they become errorReason), not "first".
  EXPECT_THAT(r.status().message(),
              HasSubstr("exit code 3\nlast 1 lines of output:\n  oops-output"));
  EXPECT_THAT(r.status().message(), Not(HasSubstr("first")));
  EXPECT_THAT(log(), HasSubstr("oops-output"));
  EXPECT_THAT(log(), HasSubstr("ERROR: "));
  // The log's closing line is the error's first line only: the output is above it already.
  EXPECT_THAT(log(), Not(HasSubstr("lines of output")));
  // Nothing is left mounted or in the work dir.
  EXPECT_TRUE(!fs::exists(data_ / "work" / "builds") || fs::is_empty(data_ / "work" / "builds"));
}

TEST_F(BuilderTest, BadInputGetsClearErrors) {
  EXPECT_THAT(build("FROM busybox:test\nCPY a b\n"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("did you mean COPY")));
  EXPECT_THAT(build("FROM nothere:1\n"),
              StatusIs(StatusCode::kNotFound, HasSubstr("line 1: FROM")));
  EXPECT_THAT(build("FROM busybox:test\nCOPY missing.txt /\n"),
              StatusIs(StatusCode::kNotFound, HasSubstr("line 2: COPY")));
}

TEST_F(BuilderTest, HeredocsRunAndCopyAsBuildKitDocuments) {
  ASSERT_OK_AND_ASSIGN(BuildResult r, build("FROM busybox:test\n"
                                            "ARG NAME=world\n"
                                            "RUN <<EOF\n"
                                            "echo \"hello $NAME\" > /greeting\n"
                                            "EOF\n"
                                            "COPY <<EOF /etc/motd\n"
                                            "say \"hi\" to ${NAME}\n"
                                            "EOF\n"));
  fs::path root = unpack(r);
  EXPECT_EQ(*readFile(root / "greeting"), "hello world\n");
  EXPECT_EQ(*readFile(root / "etc/motd"), "say \"hi\" to world\n");
}

TEST_F(BuilderTest, MetadataStepBetweenRunsKeepsTheCache) {
  const char* df = "FROM busybox:test\nRUN echo one > /one\nENV FOO=bar\nRUN echo two > /two\n";
  ASSERT_OK(build(df));
  ASSERT_OK_AND_ASSIGN(BuildResult again, build(df));
  EXPECT_EQ(again.cached_steps, 2);
}

TEST_F(BuilderTest, HeredocWithShebangRunsAsAScript) {
  ASSERT_OK_AND_ASSIGN(BuildResult r, build("FROM busybox:test\n"
                                            "RUN <<EOF\n"
                                            "#!/bin/sh\n"
                                            "echo \"script $0\" > /script-ran\n"
                                            "EOF\n"));
  EXPECT_EQ(*readFile(unpack(r) / "script-ran"), "script /dev/pipes/EOF\n");
}

TEST_F(BuilderTest, RunWithSeveralHeredocsHandsThemToTheShell) {
  ASSERT_OK_AND_ASSIGN(BuildResult r, build("FROM busybox:test\n"
                                            "RUN <<A cat > /two-a && <<B cat > /two-b\n"
                                            "first\n"
                                            "A\n"
                                            "second\n"
                                            "B\n"));
  fs::path root = unpack(r);
  EXPECT_EQ(*readFile(root / "two-a"), "first\n");
  EXPECT_EQ(*readFile(root / "two-b"), "second\n");
}

TEST_F(BuilderTest, OnbuildTriggersFireInAStageBuiltFromIt) {
  ASSERT_OK_AND_ASSIGN(BuildResult r, build("FROM busybox:test AS base\n"
                                            "ONBUILD RUN echo triggered > /onbuild\n"
                                            "FROM base\n"
                                            "RUN cat /onbuild\n"));
  EXPECT_EQ(*readFile(unpack(r) / "onbuild"), "triggered\n");
  EXPECT_TRUE(r.config.config->on_build.empty());
}

TEST_F(BuilderTest, ChownByNameAndWorkdirOwner) {
  write("f.txt", "f");
  ASSERT_OK_AND_ASSIGN(BuildResult r, build("FROM busybox:test\n"
                                            "COPY --chown=app:staff f.txt /data/f.txt\n"
                                            "USER app\n"
                                            "WORKDIR /home/app/work\n"));
  fs::path root = unpack(r);
  struct stat st {};
  ASSERT_EQ(::stat((root / "data/f.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(st.st_gid, 50u);
  ASSERT_EQ(::stat((root / "home/app/work").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1000u);
}

// A one-shot HTTP server on 127.0.0.1 answering every request with `body`.
class TinyHttpServer {
 public:
  explicit TinyHttpServer(std::string body) : body_(std::move(body)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(fd_, 4);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      for (int i = 0; i < 4; ++i) {  // bounded: a test makes at most a few requests
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        char buf[4096];
        (void)::recv(c, buf, sizeof buf, 0);
        std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body_.size()) +
                           "\r\nConnection: close\r\n\r\n" + body_;
        (void)::send(c, resp.data(), resp.size(), MSG_NOSIGNAL);
        ::close(c);
      }
    });
  }
  ~TinyHttpServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

 private:
  std::string body_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

TEST_F(BuilderTest, AddUrlWithChecksum) {
  TinyHttpServer server("downloaded\n");
  std::string sum = "sha256:" + sha256Hex("downloaded\n");
  ASSERT_OK_AND_ASSIGN(BuildResult r, build("FROM busybox:test\nADD --checksum=" + sum + " " +
                                            server.url("/files/data.txt") + " /dl/\n"));
  fs::path root = unpack(r);
  EXPECT_EQ(*readFile(root / "dl/data.txt"), "downloaded\n");
  struct stat st {};
  ASSERT_EQ(::stat((root / "dl/data.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_THAT(build("FROM busybox:test\nADD --checksum=sha256:" + std::string(64, '0') + " " +
                    server.url("/x.txt") + " /x\n"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("checksum mismatch")));
}

// A shell loop (bounded: 60 s) that waits until `path` exists, else exits with `code`.
std::string waitFor(const std::string& path, int code) {
  return "i=0; while [ ! -e " + path + " ]; do i=$((i+1)); [ $i -lt 600 ] || exit " +
         std::to_string(code) + "; sleep 0.1; done";
}

// Every line of a plain progress log is a vertex line ("#N …" for a vertex already started),
// a blank separator, a warning or the final error — also when stages interleave.
void expectWellFormed(const std::string& log) {
  std::set<int> started;
  std::istringstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line.starts_with("ERROR: ") || line.starts_with("[Warning]")) continue;
    ASSERT_TRUE(line.starts_with("#")) << line;
    auto space = line.find(' ');
    ASSERT_NE(space, std::string::npos) << line;
    int id = std::stoi(line.substr(1, space - 1));
    if (!started.count(id)) {
      // The first line of a vertex is its name, right after a blank line (or at the start).
      EXPECT_EQ(id, static_cast<int>(started.size()) + 1) << line;
      started.insert(id);
    }
  }
  EXPECT_FALSE(started.empty());
}

TEST_F(BuilderTest, IndependentStagesBuildAtTheSameTime) {
  // Each stage's RUN waits for the other's marker in a shared cache mount: built one after
  // the other, the first one would give up after 60 s and fail the build.
  std::string df =
      "FROM busybox:test AS left\n"
      "RUN --mount=type=cache,id=rendezvous,target=/rv touch /rv/left && " +
      waitFor("/rv/right", 7) +
      " && echo left > /left\n"
      "FROM busybox:test AS right\n"
      "RUN --mount=type=cache,id=rendezvous,target=/rv touch /rv/right && " +
      waitFor("/rv/left", 8) +
      " && echo right > /right\n"
      "FROM busybox:test\n"
      "COPY --from=left /left /left\n"
      "COPY --from=right /right /right\n";
  BuildRequest req = request(df);
  req.max_parallel_stages = 2;
  ASSERT_OK_AND_ASSIGN(BuildResult r, build(req));
  fs::path root = unpack(r);
  EXPECT_EQ(*readFile(root / "left"), "left\n");
  EXPECT_EQ(*readFile(root / "right"), "right\n");
  expectWellFormed(log());
  EXPECT_THAT(log(), HasSubstr("[left 2/2] RUN"));
  EXPECT_THAT(log(), HasSubstr("[right 2/2] RUN"));

  // Rebuilt, everything is cached, in parallel or not.
  req.max_parallel_stages = 1;
  ASSERT_OK_AND_ASSIGN(BuildResult again, build(req));
  EXPECT_EQ(again.manifest.digest, r.manifest.digest);
  EXPECT_EQ(again.cached_steps, 4);
}

TEST_F(BuilderTest, OneStageAtATimeWhenAskedTo) {
  // max_parallel_stages = 1: the stages still build, one after the other, in DAG order.
  BuildRequest req = request(
      "FROM busybox:test AS a\nRUN echo a > /a\n"
      "FROM a AS b\nRUN cat /a > /b && echo b >> /b\n"
      "FROM busybox:test AS c\nRUN echo c > /c\n"
      "FROM busybox:test\nCOPY --from=b /b /b\nCOPY --from=c /c /c\n");
  req.max_parallel_stages = 1;
  ASSERT_OK_AND_ASSIGN(BuildResult r, build(req));
  fs::path root = unpack(r);
  EXPECT_EQ(*readFile(root / "b"), "a\nb\n");
  EXPECT_EQ(*readFile(root / "c"), "c\n");
  expectWellFormed(log());
}

TEST_F(BuilderTest, FirstFailureCancelsTheOtherStages) {
  // "slow" is inside its sleep when "bad" fails (bad waits for slow's marker first); the
  // build must report bad's failure and kill slow's sleep, which would otherwise leave
  // slow-finished behind after 120 s.
  std::string df =
      "FROM busybox:test AS slow\n"
      "RUN --mount=type=cache,id=cancel,target=/rv touch /rv/slow-started && sleep "
      "120 && touch /rv/slow-finished\n"
      "FROM busybox:test AS bad\n"
      "RUN --mount=type=cache,id=cancel,target=/rv " +
      waitFor("/rv/slow-started", 9) +
      "; echo bad-output; exit 3\n"
      "FROM busybox:test\n"
      "COPY --from=slow /etc/passwd /a\n"
      "COPY --from=bad /etc/passwd /b\n";
  BuildRequest req = request(df);
  req.max_parallel_stages = 4;
  auto r = build(req);
  EXPECT_THAT(r, StatusIs(StatusCode::kFailedPrecondition,
                          AllOf(HasSubstr("line 4"), HasSubstr("exit code 3"))));
  EXPECT_TRUE(fs::exists(cacheMountDir("cancel") / "slow-started"));
  EXPECT_FALSE(fs::exists(cacheMountDir("cancel") / "slow-finished"));
  EXPECT_THAT(log(), HasSubstr("bad-output"));
  EXPECT_THAT(log(), HasSubstr(" CANCELED\n"));
  EXPECT_THAT(log(), HasSubstr("ERROR: failed to solve: line 4: RUN"));
  expectWellFormed(log());
  EXPECT_TRUE(!fs::exists(data_ / "work" / "builds") || fs::is_empty(data_ / "work" / "builds"));
}

TEST_F(BuilderTest, CallerCancelStopsEveryStage) {
  std::string df =
      "FROM busybox:test AS one\n"
      "RUN --mount=type=cache,id=ext,target=/rv touch /rv/one && sleep 120 && touch /rv/done1\n"
      "FROM busybox:test AS two\n"
      "RUN --mount=type=cache,id=ext,target=/rv touch /rv/two && sleep 120 && touch /rv/done2\n"
      "FROM busybox:test\n"
      "COPY --from=one /etc/passwd /a\n"
      "COPY --from=two /etc/passwd /b\n";
  runtime::CancelToken token;
  BuildRequest req = request(df);
  req.cancel = &token;
  std::thread canceller([&] {
    // Bounded wait for both sleeps to have started, then cancel.
    for (int i = 0; i < 600; ++i) {
      if (fs::exists(cacheMountDir("ext") / "one") && fs::exists(cacheMountDir("ext") / "two"))
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    token.cancel();
  });
  auto r = build(req);
  canceller.join();
  EXPECT_THAT(r, StatusIs(StatusCode::kCancelled));
  EXPECT_FALSE(fs::exists(cacheMountDir("ext") / "done1"));
  EXPECT_FALSE(fs::exists(cacheMountDir("ext") / "done2"));
  expectWellFormed(log());
}

// Every file under `root` whose contents contain `needle` (the secret must be in none).
std::vector<std::string> filesContaining(const fs::path& root, const std::string& needle) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (!it->is_regular_file() || it->is_symlink()) continue;
    auto text = readFile(it->path());
    if (text.ok() && text->find(needle) != std::string::npos) out.push_back(it->path().string());
  }
  return out;
}

TEST_F(BuilderTest, SecretIsReadableInTheStepAndNowhereInTheImage) {
  const std::string value = "s3cr3t-t0ken-value";
  fs::path secret_file = tmp_->path() / "token.txt";
  std::ofstream(secret_file) << value;
  // The Dockerfile names the secret by its digest only, so that the value's absence below
  // means something.
  const std::string digest = sha256Hex(value) + "  -";
  const std::string df =
      "FROM busybox:test\n"
      "RUN --mount=type=secret,id=token test \"$(busybox sha256sum < /run/secrets/token)\" = "
      "\"" +
      digest +
      "\" && stat -c '%a %u' /run/secrets/token > /default-stat\n"
      "RUN --mount=type=secret,id=token,target=/etc/tok,mode=0440,uid=1000,gid=50 "
      "stat -c '%a %u %g' /etc/tok > /custom-stat && wc -c < /etc/tok > /size\n"
      "RUN --mount=type=secret,id=token,env=TOKEN test \"$(printf %s \"$TOKEN\" | busybox "
      "sha256sum)\" = \"" +
      digest +
      "\" && echo env-ok > /env-ok\n"
      "RUN --mount=type=secret,id=absent test ! -e /run/secrets/absent && echo skipped > /opt\n";
  BuildRequest req = request(df);
  req.secrets["token"] = BuildSecret{secret_file, ""};
  ASSERT_OK_AND_ASSIGN(BuildResult r, build(req));
  fs::path root = unpack(r);
  EXPECT_EQ(*readFile(root / "default-stat"), "400 0\n");
  EXPECT_EQ(*readFile(root / "custom-stat"), "440 1000 50\n");
  EXPECT_EQ(*readFile(root / "size"), std::to_string(value.size()) + "\n");
  EXPECT_EQ(*readFile(root / "env-ok"), "env-ok\n");
  EXPECT_EQ(*readFile(root / "opt"), "skipped\n");
  // Not in any layer: no mount stubs, no file with the value; not in the config or history.
  EXPECT_FALSE(fs::exists(root / "run"));
  EXPECT_FALSE(fs::exists(root / "etc/tok"));
  EXPECT_THAT(filesContaining(root, value), ::testing::IsEmpty());
  std::string config_json = oci::toJson(r.config).dump();
  EXPECT_EQ(config_json.find(value), std::string::npos);
  for (const auto& h : r.config.history)
    EXPECT_EQ(h.created_by.find(value), std::string::npos) << h.created_by;
  EXPECT_EQ(log().find(value), std::string::npos);
  // Nor in the blobs on disk, or in the cache index: only the id is keyed.
  EXPECT_THAT(filesContaining(data_ / "blobs", value), ::testing::IsEmpty());
  EXPECT_THAT(filesContaining(data_ / "layers", value), ::testing::IsEmpty());
  EXPECT_THAT(filesContaining(data_ / "cache", value), ::testing::IsEmpty());

  // A new value with the same id keeps the cache, as with BuildKit.
  req.secrets["token"] = BuildSecret{{}, "another-value"};
  ASSERT_OK_AND_ASSIGN(BuildResult again, build(req));
  EXPECT_EQ(again.cached_steps, 4);
  EXPECT_EQ(again.manifest.digest, r.manifest.digest);
}

TEST_F(BuilderTest, SecretErrors) {
  EXPECT_THAT(build("FROM busybox:test\nRUN --mount=type=secret,id=key,required true\n"),
              StatusIs(StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("line 2: RUN"), HasSubstr("secret \"key\" is required"))));
  BuildRequest req = request("FROM busybox:test\nRUN --mount=type=secret,id=big true\n");
  req.secrets["big"] = BuildSecret{{}, std::string(600 * 1024, 'x')};
  EXPECT_THAT(build(req), StatusIs(StatusCode::kInvalidArgument,
                                   AllOf(HasSubstr("line 2"), HasSubstr("at most 500 KiB"))));
  req.secrets["big"] = BuildSecret{tmp_->path() / "no-such-file", ""};
  EXPECT_THAT(build(req), StatusIs(StatusCode::kNotFound, HasSubstr("secret \"big\"")));
}

TEST_F(BuilderTest, BindMountsFromContextAndStage) {
  write("ctxdir/file", "from-context\n");
  write("ctxdir/ignored.txt", "ignored\n");
  write("a.txt", "A\n");
  write(".dockerignore", "ctxdir/ignored.txt\n");
  const std::string df =
      "FROM busybox:test AS tools\n"
      "RUN mkdir -p /opt/tool && echo tool-data > /opt/tool/data\n"
      "FROM busybox:test\n"
      "RUN --mount=type=bind,source=ctxdir,target=/mnt/ctx cat /mnt/ctx/file > /from-ctx && "
      "test ! -e /mnt/ctx/ignored.txt && stat -c %u /mnt/ctx/file > /ctx-owner\n"
      "RUN --mount=type=bind,from=tools,source=/opt/tool,target=/mnt/t cat /mnt/t/data > "
      "/from-stage\n"
      "WORKDIR /w\n"
      "RUN --mount=type=bind,target=rw,rw echo scribble > rw/new && rm rw/a.txt && "
      "cat rw/new > /rw-saw\n"
      "RUN --mount=type=bind,target=/mnt/again test ! -e /mnt/again/new && cat "
      "/mnt/again/a.txt > /again\n"
      "RUN --mount=type=bind,from=tools,source=/opt,target=/mnt/opt,rw "
      "echo x > /mnt/opt/tool/data && echo stage-rw > /stage-rw\n"
      "RUN --mount=type=bind,from=tools,target=/mnt/tools cat /mnt/tools/opt/tool/data > "
      "/stage-after\n"
      "RUN --mount=type=bind,from=busybox:test,source=/etc/group,target=/mnt/group "
      "cat /mnt/group > /from-image\n";
  ASSERT_OK_AND_ASSIGN(BuildResult r, build(df));
  fs::path root = unpack(r);
  EXPECT_EQ(*readFile(root / "from-ctx"), "from-context\n");
  EXPECT_EQ(*readFile(root / "ctx-owner"), "0\n");  // context files are root's, as in BuildKit
  EXPECT_EQ(*readFile(root / "from-stage"), "tool-data\n");
  EXPECT_EQ(*readFile(root / "rw-saw"), "scribble\n");
  EXPECT_EQ(*readFile(root / "again"), "A\n");                // the rw step's writes were discarded
  EXPECT_EQ(*readFile(root / "stage-after"), "tool-data\n");  // also for a stage's tree
  EXPECT_THAT(*readFile(root / "from-image"), HasSubstr("staff:x:50"));  // an image's file
  // The host context is untouched and no mount point is left in the image.
  EXPECT_EQ(*readFile(ctx_ / "a.txt"), "A\n");
  EXPECT_FALSE(fs::exists(ctx_ / "new"));
  EXPECT_FALSE(fs::exists(root / "mnt"));
  EXPECT_TRUE(fs::is_empty(root / "w"));

  // The bound content is part of the step's key: a change re-runs the steps that bind it.
  ASSERT_OK_AND_ASSIGN(BuildResult cached, build(df));
  EXPECT_EQ(cached.cached_steps, 9);
  write("ctxdir/file", "changed\n");
  ASSERT_OK_AND_ASSIGN(BuildResult changed, build(df));
  EXPECT_EQ(*readFile(unpack(changed) / "from-ctx"), "changed\n");
  EXPECT_LT(changed.cached_steps, cached.cached_steps);
}

TEST_F(BuilderTest, BindMountErrors) {
  write("a.txt", "A\n");
  // Read-only by default.
  EXPECT_THAT(build("FROM busybox:test\nRUN --mount=type=bind,target=/c touch /c/x\n"),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("line 2: RUN")));
  EXPECT_THAT(build("FROM busybox:test\nRUN --mount=type=bind,source=nope,target=/c true\n"),
              StatusIs(StatusCode::kNotFound, AllOf(HasSubstr("line 2"), HasSubstr("nope"))));
  EXPECT_THAT(build("FROM busybox:test AS s\nFROM busybox:test\n"
                    "RUN --mount=type=bind,from=s,source=/nope,target=/c true\n"),
              StatusIs(StatusCode::kNotFound, AllOf(HasSubstr("line 3"), HasSubstr("\"/nope\""))));
  // A symlink in a stage cannot lead the bind out of the stage's tree.
  ASSERT_OK_AND_ASSIGN(
      BuildResult r,
      build("FROM busybox:test AS s\nRUN busybox ln -s /../../../../etc /escape\n"
            "FROM busybox:test\n"
            "RUN --mount=type=bind,from=s,source=/escape,target=/c cat /c/passwd > /p\n"));
  EXPECT_THAT(*readFile(unpack(r) / "p"), HasSubstr("app:x:1000"));  // busybox's passwd
}

TEST_F(BuilderTest, LockedCacheMountsAreUsedOneStepAtATime) {
  // Two concurrent stages share a sharing=locked cache: each leaves a marker while it holds
  // the cache and records what it saw; neither may see the other's marker.
  auto stage = [](const std::string& name) {
    return "FROM busybox:test AS " + name +
           "\nRUN --mount=type=cache,id=locked,target=/c,sharing=locked touch /c/" + name +
           "-in && sleep 0.5 && ls /c > /seen && rm /c/" + name + "-in\n";
  };
  BuildRequest req = request(stage("one") + stage("two") +
                             "FROM busybox:test\n"
                             "COPY --from=one /seen /seen-one\n"
                             "COPY --from=two /seen /seen-two\n");
  req.max_parallel_stages = 2;
  ASSERT_OK_AND_ASSIGN(BuildResult r, build(req));
  fs::path root = unpack(r);
  EXPECT_EQ(*readFile(root / "seen-one"), "one-in\n");
  EXPECT_EQ(*readFile(root / "seen-two"), "two-in\n");
}

TEST_F(BuilderTest, CacheMountSharingModesWaitOrStepAside) {
  // The test holds the cache's lock itself, as another build would.
  fs::path dir = cacheMountDir("held");
  fs::create_directories(dir);
  std::ofstream(dir / "marker") << "m";
  UniqueFd lock(::open((dir.string() + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  ASSERT_TRUE(lock.valid());
  ASSERT_EQ(::flock(lock.get(), LOCK_EX), 0);

  // private: the step gets an empty directory of its own instead of waiting.
  ASSERT_OK_AND_ASSIGN(
      BuildResult priv,
      build("FROM busybox:test\n"
            "RUN --mount=type=cache,id=held,target=/c,sharing=private test ! -e /c/marker && "
            "touch /c/private-write && echo private > /private\n"));
  EXPECT_EQ(*readFile(unpack(priv) / "private"), "private\n");
  EXPECT_FALSE(fs::exists(dir / "private-write"));

  // locked: the step waits until the lock is released; the releaser writes "released" first,
  // so the step seeing it proves it ran after the release.
  std::thread releaser([&] {
    for (int i = 0; i < 600 && !fs::exists(data_ / "work" / "builds"); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    std::ofstream(dir / "released") << "r";
    ::flock(lock.get(), LOCK_UN);
  });
  auto locked = build(
      "FROM busybox:test\n"
      "RUN --mount=type=cache,id=held,target=/c,sharing=locked cat /c/released > /after\n");
  releaser.join();
  ASSERT_OK(locked);
  EXPECT_EQ(*readFile(unpack(*locked) / "after"), "r");

  EXPECT_THAT(build("FROM busybox:test AS s\nFROM busybox:test\n"
                    "RUN --mount=type=cache,from=s,target=/c true\n"),
              StatusIs(StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("line 3"), HasSubstr("not supported"))));
}

// A stand-in SSH agent: a unix socket answering every read with "pong:" + what it read.
class FakeAgent {
 public:
  explicit FakeAgent(fs::path path) : path_(std::move(path)) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(fd_, 4);
    thread_ = std::thread([this] {
      for (int i = 0; i < 4; ++i) {  // bounded: the test connects once or twice
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        char buf[256];
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n > 0) {
          std::string reply = "pong:" + std::string(buf, static_cast<std::size_t>(n));
          (void)::send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
        }
        ::close(c);
      }
    });
  }
  ~FakeAgent() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }

 private:
  fs::path path_;
  int fd_ = -1;
  std::thread thread_;
};

// Sends `message` to the unix socket at `path` and returns the reply ("" on failure).
std::string askSocket(const fs::path& path, const std::string& message) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.native().size() >= sizeof addr.sun_path) return "";
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return "";
  if (::send(fd.get(), message.data(), message.size(), MSG_NOSIGNAL) < 0) return "";
  char buf[256];
  ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
}

TEST_F(BuilderTest, SshAgentIsForwardedThroughASocketOfTheStep) {
  FakeAgent agent(tmp_->path() / "agent.sock");
  // The step waits (bounded) until the test has talked to the agent through the step's
  // socket, so the forward is checked while the step runs.
  std::string df =
      "FROM busybox:test\n"
      "RUN --mount=type=ssh,uid=1000,mode=0660 --mount=type=cache,id=ssh,target=/c "
      "test -S \"$SSH_AUTH_SOCK\" && stat -c '%a %u' \"$SSH_AUTH_SOCK\" > /sockstat && "
      "echo \"$SSH_AUTH_SOCK\" > /sockpath && " +
      waitFor("/c/checked", 5) + "\n";
  BuildRequest req = request(df);
  req.ssh_agents["default"] = tmp_->path() / "agent.sock";
  std::string reply;
  std::thread checker([&] {
    for (int i = 0; i < 600 && reply.empty(); ++i) {
      std::error_code ec;
      for (auto it = fs::recursive_directory_iterator(data_ / "work" / "builds", ec);
           !ec && it != fs::end(it); it.increment(ec)) {
        if (it->path().filename() == "agent.sock") reply = askSocket(it->path(), "ping");
      }
      if (reply.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    fs::create_directories(cacheMountDir("ssh"));
    std::ofstream(cacheMountDir("ssh") / "checked") << "x";
  });
  auto r = build(req);
  checker.join();
  ASSERT_OK(r);
  EXPECT_EQ(reply, "pong:ping");
  fs::path root = unpack(*r);
  EXPECT_EQ(*readFile(root / "sockstat"), "660 1000\n");
  EXPECT_EQ(*readFile(root / "sockpath"), "/run/buildkit/ssh_agent.0\n");
  EXPECT_FALSE(fs::exists(root / "run"));  // the socket's mount point is not in the layer
}

TEST_F(BuilderTest, SshMountWithoutAnAgent) {
  // Optional (BuildKit's default): the step runs without a socket.
  ASSERT_OK_AND_ASSIGN(BuildResult r,
                       build("FROM busybox:test\n"
                             "RUN --mount=type=ssh test -z \"$SSH_AUTH_SOCK\" && "
                             "test ! -e /run/buildkit/ssh_agent.0 && echo ok > /ok\n"));
  EXPECT_EQ(*readFile(unpack(r) / "ok"), "ok\n");
  EXPECT_THAT(build("FROM busybox:test\nRUN --mount=type=ssh,id=deploy,required true\n"),
              StatusIs(StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("line 2: RUN"), HasSubstr("ssh agent \"deploy\""),
                             HasSubstr("cairn build --ssh deploy"))));
}

// ---- the layer export at commit time ----------------------------------------------------

// A blob store that hands every call to a LocalBlobStore, and lets a test act on the first
// write of a blob (cancel the build, fail the write) to see what an interrupted export leaves.
class InterceptingBlobStore final : public store::BlobStore {
 public:
  explicit InterceptingBlobStore(store::BlobStore* inner) : inner_(inner) {}
  std::function<Status()> on_write;  //!< called on every write; non-OK fails it
  std::function<void()> on_writer;   //!< called when a writer is opened
  std::vector<Digest> committed;     //!< what writers committed, in order

  Result<store::BlobInfo> info(const Digest& d) const override { return inner_->info(d); }
  Result<std::unique_ptr<store::BlobReadStream>> openRead(const Digest& d) const override {
    return inner_->openRead(d);
  }
  Status walk(const std::function<Status(const store::BlobInfo&)>& fn) const override {
    return inner_->walk(fn);
  }
  Status remove(const Digest& d) override { return inner_->remove(d); }
  Result<std::unique_ptr<store::BlobWriter>> writer() override {
    if (on_writer) on_writer();
    CAIRN_ASSIGN_OR_RETURN(auto w, inner_->writer());
    return std::unique_ptr<store::BlobWriter>(new Writer(std::move(w), this));
  }
  Result<store::BlobInfo> putLayerTar(const fs::path& dir, const Digest& digest,
                                      std::uint64_t size) override {
    if (on_put_layer_tar) CAIRN_RETURN_IF_ERROR(on_put_layer_tar(digest));
    auto info = inner_->putLayerTar(dir, digest, size);
    if (info.ok()) linked.push_back(digest);
    return info;
  }
  std::function<Status(const Digest&)> on_put_layer_tar;  //!< non-OK fails the call
  std::vector<Digest> linked;                             //!< layer tars published, in order

 private:
  class Writer final : public store::BlobWriter {
   public:
    Writer(std::unique_ptr<store::BlobWriter> inner, InterceptingBlobStore* store)
        : inner_(std::move(inner)), store_(store) {}
    Status write(std::string_view data) override {
      if (store_->on_write) CAIRN_RETURN_IF_ERROR(store_->on_write());
      return inner_->write(data);
    }
    std::uint64_t offset() const override { return inner_->offset(); }
    Result<store::BlobInfo> commit(std::optional<std::uint64_t> size,
                                   std::optional<Digest> digest) override {
      auto info = inner_->commit(size, digest);
      if (info.ok()) store_->committed.push_back(info->digest);
      return info;
    }
    void abort() override { inner_->abort(); }

   private:
    std::unique_ptr<store::BlobWriter> inner_;
    InterceptingBlobStore* store_;
  };
  store::BlobStore* inner_;
};

std::set<std::string> blobNames(const fs::path& data) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(data / "blobs" / "sha256"))
    out.insert("sha256:" + e.path().filename().string());
  return out;
}

// Layer-tar notes: the image layers a build published without writing their bytes.
std::set<std::string> noteNames(const fs::path& data) {
  std::set<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(data / "blobs" / "layer-tars", ec)) {
    std::string name = e.path().filename().string();
    if (name.size() == 64) out.insert("sha256:" + name);
  }
  return out;
}

std::set<std::string> addedTo(const std::set<std::string>& now,
                              const std::set<std::string>& before) {
  std::set<std::string> out;
  for (const auto& name : now)
    if (!before.count(name)) out.insert(name);
  return out;
}

std::size_t entriesIn(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return 0;
  return static_cast<std::size_t>(
      std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

// The process's threads by name: an export that left a zstd worker (or any thread of the
// build) running shows here.
std::multiset<std::string> threadNames() {
  std::multiset<std::string> out;
  for (const auto& e : fs::directory_iterator("/proc/self/task")) {
    auto comm = readFile(e.path() / "comm");
    out.insert(comm.ok() ? std::string(trimSpace(*comm)) : "?");
  }
  return out;
}

std::string randomBytesOf(std::size_t n) {
  std::string out(n, '\0');
  std::uint64_t x = 0x9e3779b97f4a7c15ull;
  for (char& c : out) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  return out;
}

TEST_F(BuilderTest, ImageLayersAreTheirLayerDirsUncompressedAndOtherStagesGetNoBlob) {
  write("a.txt", "from the builder stage\n");
  write("b.txt", "B\n");
  std::set<std::string> before = blobNames(data_);
  std::set<std::string> notes_before = noteNames(data_);
  const std::string dockerfile =
      "FROM busybox:test AS builder\n"
      "COPY a.txt /a.txt\n"
      "FROM busybox:test AS base\n"
      "COPY b.txt /b.txt\n"
      "FROM base\n"
      "COPY --from=builder /a.txt /c.txt\n";
  ASSERT_OK_AND_ASSIGN(BuildResult r, build(dockerfile));
  ASSERT_OK_AND_ASSIGN(oci::LoadedImage image, oci::loadImage(*blobs_, r.manifest));
  ASSERT_EQ(image.manifest.layers.size(), 3u);  // busybox + base's COPY + the target's COPY
  // Blob files written: the config and the manifest only. The image's two new layers (the base
  // stage's one too) are notes naming their layer dirs, whose tars are made when read; the
  // builder stage's layer is not in the image and has neither.
  EXPECT_EQ(addedTo(blobNames(data_), before),
            (std::set<std::string>{image.manifest.config.digest.str(), r.manifest.digest.str()}));
  EXPECT_EQ(addedTo(noteNames(data_), notes_before),
            (std::set<std::string>{image.manifest.layers[1].digest.str(),
                                   image.manifest.layers[2].digest.str()}));
  for (std::size_t i = 1; i < 3; ++i) {
    const oci::Descriptor& l = image.manifest.layers[i];
    // Uncompressed: the blob is the layer tar, so its digest is the diff id.
    EXPECT_EQ(l.media_type, "application/vnd.oci.image.layer.v1.tar");
    EXPECT_EQ(l.digest, image.config.diff_ids[i]);
    ASSERT_OK_AND_ASSIGN(store::BlobInfo info, blobs_->info(l.digest));
    EXPECT_EQ(static_cast<std::int64_t>(info.size), l.size);
    // Remembered by diff id, so a later build (or a cache hit) reuses the blob.
    ASSERT_OK_AND_ASSIGN(auto known, builder_->cache().exported(image.config.diff_ids[i]));
    ASSERT_TRUE(known.has_value());
    EXPECT_EQ(known->digest, l.digest);
  }
  // The blobs hold the layers the config names (unpacking reads them and checks every diff id).
  fs::path root = unpack(r);
  EXPECT_EQ(*readFile(root / "b.txt"), "B\n");
  EXPECT_EQ(*readFile(root / "c.txt"), "from the builder stage\n");
  EXPECT_EQ(entriesIn(data_ / "ingest"), 0u);

  // A fully cached rebuild is the same image, byte for byte, and stores nothing new.
  std::set<std::string> after_first = blobNames(data_);
  std::set<std::string> notes_after_first = noteNames(data_);
  ASSERT_OK_AND_ASSIGN(BuildResult again, build(dockerfile));
  EXPECT_EQ(again.cached_steps, 3);
  EXPECT_EQ(again.manifest.digest, r.manifest.digest);
  EXPECT_EQ(blobNames(data_), after_first);
  EXPECT_EQ(noteNames(data_), notes_after_first);
}

TEST_F(BuilderTest, FailingStepAfterACommittedLayerLeavesNoPartialBlobsOrThreads) {
  write("big.bin", randomBytesOf(4 << 20));
  std::set<std::string> before = blobNames(data_);
  std::set<std::string> notes_before = noteNames(data_);
  // The process-wide child reaper starts with the first RUN and stays: not the build's.
  (void)runtime::ChildReaper::instance();
  std::multiset<std::string> threads = threadNames();
  auto r = build("FROM busybox:test\nCOPY big.bin /big.bin\nRUN echo failing && exit 7\n");
  EXPECT_THAT(r, StatusIs(StatusCode::kFailedPrecondition,
                          AllOf(HasSubstr("line 3"), HasSubstr("exit code 7"))));
  // The COPY layer was committed, so its blob is published (a note on its layer dir, known by
  // diff id for the next try); no blob file was written, nothing half-written stays in ingest/,
  // no thread of the build is left running.
  EXPECT_EQ(blobNames(data_), before);
  std::set<std::string> added = addedTo(noteNames(data_), notes_before);
  ASSERT_EQ(added.size(), 1u);
  ASSERT_OK_AND_ASSIGN(store::BlobInfo info, blobs_->info(Digest::parse(*added.begin()).value()));
  EXPECT_GT(info.size, 4u << 20);  // the tar of the 4 MiB file
  EXPECT_EQ(entriesIn(data_ / "ingest"), 0u);
  EXPECT_EQ(entriesIn(data_ / "work" / "builds"), 0u);
  EXPECT_EQ(threadNames(), threads);

  // The retry reuses the committed layer and its blob.
  ASSERT_OK_AND_ASSIGN(BuildResult ok, build("FROM busybox:test\nCOPY big.bin /big.bin\n"));
  EXPECT_EQ(ok.cached_steps, 1);
  ASSERT_OK_AND_ASSIGN(oci::LoadedImage image, oci::loadImage(*blobs_, ok.manifest));
  EXPECT_EQ(image.manifest.layers.back().digest.str(), *added.begin());
}

class InterruptedExportTest : public BuilderTest {
 protected:
  void SetUp() override {
    BuilderTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    intercept_ = std::make_unique<InterceptingBlobStore>(blobs_.get());
    BuilderOptions bo;
    bo.data_dir = data_;
    bo.blobs = intercept_.get();
    bo.layers = layers_.get();
    bo.catalog = catalog_.get();
    bo.executor = executor_.get();
    ASSERT_OK_AND_ASSIGN(builder_, Builder::open(bo));
    write("big.bin", randomBytesOf(8 << 20));  // a layer worth hashing
  }

  // What an interrupted build must leave: no new blob file, no ingest file, no work dir, no
  // thread; `cached` steps of the retry were committed before the interruption.
  void expectNothingLeft(const std::set<std::string>& blobs_before,
                         const std::multiset<std::string>& threads_before, int cached) {
    EXPECT_EQ(blobNames(data_), blobs_before);
    EXPECT_EQ(entriesIn(data_ / "ingest"), 0u);
    EXPECT_EQ(entriesIn(data_ / "work" / "builds"), 0u);
    EXPECT_EQ(threadNames(), threads_before);
    intercept_->on_put_layer_tar = nullptr;
    ASSERT_OK_AND_ASSIGN(BuildResult again,
                         build("FROM busybox:test\nCOPY big.bin /big.bin\n", "out:test"));
    EXPECT_EQ(again.cached_steps, cached);
    EXPECT_EQ(*readFile(unpack(again) / "big.bin"), *readFile(ctx_ / "big.bin"));
  }

  std::unique_ptr<InterceptingBlobStore> intercept_;
};

TEST_F(InterruptedExportTest, CancelRightAfterALayerIsPublishedStopsTheBuild) {
  std::set<std::string> before = blobNames(data_);
  std::multiset<std::string> threads = threadNames();
  runtime::CancelToken token;
  intercept_->on_put_layer_tar = [&](const Digest&) -> Status {
    token.cancel();  // the first layer is committed: cancel the build now
    return okStatus();
  };
  BuildRequest req = request("FROM busybox:test\nCOPY big.bin /big.bin\nCOPY big.bin /again\n");
  req.cancel = &token;
  auto r = build(req);
  EXPECT_THAT(r, StatusIs(StatusCode::kCancelled));
  EXPECT_EQ(intercept_->linked.size(), 1u);  // the second COPY never got to its commit
  expectNothingLeft(before, threads, 1);
}

TEST_F(InterruptedExportTest, APublishErrorFailsTheStepAndCachesNothing) {
  std::set<std::string> before = blobNames(data_);
  std::multiset<std::string> threads = threadNames();
  intercept_->on_put_layer_tar = [&](const Digest&) -> Status {
    return Status(StatusCode::kResourceExhausted, "disk full (test)");
  };
  auto r = build("FROM busybox:test\nCOPY big.bin /big.bin\n");
  EXPECT_THAT(r, StatusIs(StatusCode::kResourceExhausted,
                          AllOf(HasSubstr("line 2"), HasSubstr("disk full (test)"))));
  EXPECT_THAT(log(), HasSubstr("ERROR: "));
  EXPECT_TRUE(intercept_->linked.empty());
  // The step is not cached: a cache hit would name a blob that was never published.
  expectNothingLeft(before, threads, 0);
}

TEST_F(InterruptedExportTest, ABlobRemovedAfterItsCommitIsPublishedAgainAtTheEnd) {
  // A store GC that did not see the build removes the first step's blob while the second step
  // is committed: the image must still be complete, with the same layer digest.
  write("a.txt", "A\n");
  intercept_->on_put_layer_tar = [&](const Digest&) -> Status {
    if (intercept_->linked.size() == 1)
      CAIRN_RETURN_IF_ERROR(blobs_->remove(intercept_->linked[0]));
    return okStatus();
  };
  ASSERT_OK_AND_ASSIGN(BuildResult r,
                       build("FROM busybox:test\nCOPY a.txt /a.txt\nCOPY big.bin /big.bin\n"));
  // Two layers at commit, the removed one again at the end.
  ASSERT_EQ(intercept_->linked.size(), 3u);
  EXPECT_EQ(intercept_->linked[2], intercept_->linked[0]);
  ASSERT_OK_AND_ASSIGN(oci::LoadedImage image, oci::loadImage(*blobs_, r.manifest));
  ASSERT_EQ(image.manifest.layers.size(), 3u);
  EXPECT_EQ(image.manifest.layers[1].digest, intercept_->linked[0]);  // the same bytes again
  EXPECT_TRUE(blobs_->exists(intercept_->linked[0]));
  fs::path root = unpack(r);
  EXPECT_EQ(*readFile(root / "a.txt"), "A\n");
  EXPECT_EQ(*readFile(root / "big.bin"), *readFile(ctx_ / "big.bin"));
}

}  // namespace
}  // namespace cairn::build
