// Image references, normalised exactly as Docker does (distribution/reference's
// ParseNormalizedNamed): "ubuntu:22.04" → "docker.io/library/ubuntu:22.04",
// "localhost:5000/a/b@sha256:…", "name:tag@digest" (both kept; the digest wins for pulls).
//
// It lives in oci/ rather than registry/ because the local image catalog (oci/catalog.h) keys
// images by normalised name, and oci/ sits below registry/ in the dependency order.
#pragma once

#include <string>
#include <string_view>

#include "cairn/common/digest.h"
#include "cairn/common/status.h"

namespace cairn::oci {

inline constexpr std::string_view kDefaultDomain = "docker.io";
inline constexpr std::string_view kDefaultTag = "latest";

class Reference {
 public:
  //! Parses and normalises. Bad input is InvalidArgument saying what is wrong: uppercase
  //! repository names, bad tags, bad digests, empty components, names over 255 characters.
  //! No tag and no digest leaves both empty (see withDefaultTag).
  static Result<Reference> parse(std::string_view text);

  //! "docker.io", "localhost:5000", "[::1]:5000".
  const std::string& domain() const { return domain_; }
  //! The path inside the registry: "library/ubuntu".
  const std::string& path() const { return path_; }
  const std::string& tag() const { return tag_; }
  const Digest& digest() const { return digest_; }

  //! "docker.io/library/ubuntu".
  std::string name() const { return domain_ + "/" + path_; }
  //! The full normalised form: name[:tag][@digest].
  std::string str() const;
  //! What Docker prints: "ubuntu:22.04" for docker.io/library/ubuntu:22.04.
  std::string familiar() const;
  //! The tag or digest to ask the registry for: the digest if there is one, else the tag,
  //! else "latest".
  std::string manifestReference() const;

  //! This reference with tag "latest" when it has neither tag nor digest.
  Reference withDefaultTag() const;
  Reference withTag(std::string tag) const;
  Reference withDigest(Digest digest) const;
  Reference withDomain(std::string domain) const;

  friend bool operator==(const Reference&, const Reference&) = default;

 private:
  std::string domain_;
  std::string path_;
  std::string tag_;
  Digest digest_;
};

//! True for a valid tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}).
bool isValidTag(std::string_view tag);

//! True for localhost, 127.0.0.0/8 and [::1] hosts, with or without a port: registries that
//! Docker (and Cairn) talk to over plain HTTP by default.
bool isLoopbackHost(std::string_view domain);

}  // namespace cairn::oci
