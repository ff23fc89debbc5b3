// A content digest "sha256:<64 lowercase hex>" (OCI image-spec descriptor digests).
#pragma once

#include <compare>
#include <functional>
#include <string>
#include <string_view>

#include "cairn/common/status.h"

namespace cairn {

class Digest {
 public:
  Digest() = default;
  //! Parses "sha256:<64 hex>" (lowercase only, as the OCI spec requires for sha256).
  static Result<Digest> parse(std::string_view text);
  //! From a raw hex sha256, which must be 64 lowercase hex characters.
  static Result<Digest> fromSha256Hex(std::string_view hex);
  //! sha256 of the given bytes.
  static Digest ofBytes(std::string_view bytes);

  bool empty() const { return hex_.empty(); }
  const std::string& algorithm() const { return algorithm_; }
  const std::string& hex() const { return hex_; }
  std::string str() const { return empty() ? std::string() : algorithm_ + ":" + hex_; }
  //! "sha256:0123456789ab" — for log lines.
  std::string shortStr() const { return algorithm_ + ":" + hex_.substr(0, 12); }

  auto operator<=>(const Digest&) const = default;

 private:
  Digest(std::string algorithm, std::string hex)
      : algorithm_(std::move(algorithm)), hex_(std::move(hex)) {}
  std::string algorithm_ = "sha256";
  std::string hex_;
};

}  // namespace cairn

template <>
struct std::hash<cairn::Digest> {
  std::size_t operator()(const cairn::Digest& d) const noexcept {
    return std::hash<std::string>()(d.hex());
  }
};
