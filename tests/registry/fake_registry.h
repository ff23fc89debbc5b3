// An in-memory OCI distribution registry for hermetic tests (Boost.Beast, 127.0.0.1, port 0),
// with the knobs real registries do not offer: bearer-token or basic auth, injected 5xx
// replies, connections cut half-way through a blob, servers that ignore Range.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace cairn::registry::testing {

class FakeRegistry {
 public:
  enum class Auth { kNone, kBearer, kBasic };
  struct Options {
    Auth auth = Auth::kNone;
    std::string username = "user";
    std::string password = "pass";
    //! With kBearer: whether the token endpoint hands out tokens without credentials.
    bool anonymous_tokens = false;
  };

  explicit FakeRegistry(Options options);
  FakeRegistry() : FakeRegistry(Options{}) {}
  ~FakeRegistry();

  //! "127.0.0.1:PORT".
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }

  // Fault injection (counts are consumed by blob GETs).
  std::atomic<int> fail_blob_gets{0};      //!< reply 503 this many times
  std::atomic<int> cut_blob_gets{0};       //!< send half of the blob, then close
  std::atomic<bool> ignore_range{false};   //!< answer Range requests with the whole blob
  std::atomic<int> fail_manifest_gets{0};  //!< reply 500 this many times

  // What happened.
  std::atomic<int> token_requests{0};
  std::atomic<int> patch_requests{0};
  std::atomic<int> mounts{0};
  std::atomic<int> range_requests{0};
  std::atomic<int> blob_gets{0};

  //! Adds a blob visible in every repository.
  void putBlob(const std::string& bytes);
  //! Serves `bytes` under a digest they do not hash to (a corrupt registry).
  void putBlobAs(const std::string& digest, const std::string& bytes);
  bool hasBlobIn(const std::string& repo, const std::string& digest) const;
  void putManifest(const std::string& repo, const std::string& ref, const std::string& media_type,
                   const std::string& bytes);
  bool hasBlob(const std::string& digest) const;
  //! The manifest bytes under repo:ref (tag or digest), or "" if absent.
  std::string manifest(const std::string& repo, const std::string& ref) const;

  struct Impl;

 private:
  Options options_;
  int port_ = 0;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::registry::testing
