#include "cairn/oci/reference.h"

#include <cctype>

#include "cairn/common/strings.h"

namespace cairn::oci {
namespace {

constexpr std::size_t kNameTotalLengthMax = 255;

bool isLowerAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
bool isAlnum(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0;
}

// path-component := [a-z0-9]+ (separator [a-z0-9]+)*, separator := [_.] | __ | [-]+
bool isValidPathComponent(std::string_view c) {
  if (c.empty() || !isLowerAlnum(c.front()) || !isLowerAlnum(c.back())) return false;
  std::size_t i = 0;
  while (i < c.size()) {
    if (isLowerAlnum(c[i])) {
      ++i;
      continue;
    }
    std::size_t start = i;
    while (i < c.size() && !isLowerAlnum(c[i]))
      ++i;
    std::string_view sep = c.substr(start, i - start);
    bool all_dash = sep.find_first_not_of('-') == std::string_view::npos;
    if (!(sep == "." || sep == "_" || sep == "__" || all_dash)) return false;
  }
  return true;
}

// domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
bool isValidDomainComponent(std::string_view c) {
  if (c.empty() || !isAlnum(c.front()) || !isAlnum(c.back())) return false;
  for (char ch : c) {
    if (!isAlnum(ch) && ch != '-') return false;
  }
  return true;
}

bool isValidPort(std::string_view p) {
  if (p.empty() || p.size() > 5) return false;
  for (char c : p) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

bool isValidDomain(std::string_view d) {
  std::string_view host = d;
  if (!d.empty() && d.front() == '[') {
    auto close = d.find(']');
    if (close == std::string_view::npos) return false;
    std::string_view ip = d.substr(1, close - 1);
    if (ip.empty()) return false;
    for (char c : ip) {
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':') return false;
    }
    std::string_view rest = d.substr(close + 1);
    if (rest.empty()) return true;
    return rest.front() == ':' && isValidPort(rest.substr(1));
  }
  auto colon = d.find(':');
  if (colon != std::string_view::npos) {
    if (!isValidPort(d.substr(colon + 1))) return false;
    host = d.substr(0, colon);
  }
  for (const auto& part : splitString(host, '.')) {
    if (!isValidDomainComponent(part)) return false;
  }
  return true;
}

bool isAllHex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Status bad(std::string_view text, std::string_view why) {
  return invalidArgument("invalid image reference \"" + std::string(text) +
                         "\": " + std::string(why));
}

}  // namespace

bool isValidTag(std::string_view tag) {
  if (tag.empty() || tag.size() > 128) return false;
  auto word = [](char c) { return isAlnum(c) || c == '_'; };
  if (!word(tag.front())) return false;
  for (char c : tag) {
    if (!word(c) && c != '.' && c != '-') return false;
  }
  return true;
}

bool isLoopbackHost(std::string_view domain) {
  std::string_view host = domain;
  if (!host.empty() && host.front() == '[') {
    auto close = host.find(']');
    return close != std::string_view::npos && host.substr(1, close - 1) == "::1";
  }
  host = host.substr(0, host.find(':'));
  if (host == "localhost") return true;
  if (!host.starts_with("127.")) return false;
  auto parts = splitString(host, '.');
  if (parts.size() != 4) return false;
  for (const auto& p : parts) {
    if (p.empty() || p.size() > 3 || p.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(p) > 255) {
      return false;
    }
  }
  return true;
}

Result<Reference> Reference::parse(std::string_view text) {
  if (text.empty()) return bad(text, "empty");
  if (text.size() > 4096) return invalidArgument("invalid image reference: longer than 4096");
  Reference r;
  std::string_view rest = text;
  if (auto at = rest.find('@'); at != std::string_view::npos) {
    auto d = Digest::parse(rest.substr(at + 1));
    if (!d.ok()) return bad(text, "bad digest: " + d.status().message());
    r.digest_ = *d;
    rest = rest.substr(0, at);
  }
  auto last_slash = rest.rfind('/');
  auto colon = rest.rfind(':');
  if (colon != std::string_view::npos &&
      (last_slash == std::string_view::npos || colon > last_slash)) {
    std::string_view tag = rest.substr(colon + 1);
    if (!isValidTag(tag)) {
      return bad(text,
                 "bad tag \"" + std::string(tag) + "\" (want [A-Za-z0-9_][A-Za-z0-9_.-]{0,127})");
    }
    r.tag_ = std::string(tag);
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return bad(text, "missing repository name");
  if (isAllHex64(rest)) {
    return bad(text, "cannot specify 64-byte hexadecimal strings as a repository name");
  }

  // Docker's splitDockerDomain: the first component is a registry host only if it looks like
  // one (has '.' or ':', is "localhost", or has uppercase letters).
  std::string_view remainder = rest;
  auto slash = rest.find('/');
  if (slash == std::string_view::npos) {
    r.domain_ = std::string(kDefaultDomain);
  } else {
    std::string_view first = rest.substr(0, slash);
    bool is_domain = first.find_first_of(".:") != std::string_view::npos || first == "localhost" ||
                     toLowerAscii(first) != first;
    if (is_domain) {
      if (!isValidDomain(first))
        return bad(text, "bad registry host \"" + std::string(first) + "\"");
      r.domain_ = std::string(first);
      remainder = rest.substr(slash + 1);
    } else {
      r.domain_ = std::string(kDefaultDomain);
    }
  }
  if (r.domain_ == "index.docker.io") r.domain_ = std::string(kDefaultDomain);
  if (remainder.empty()) return bad(text, "missing repository name");
  if (toLowerAscii(remainder) != remainder) return bad(text, "repository name must be lowercase");
  for (const auto& component : splitString(remainder, '/')) {
    if (component.empty()) return bad(text, "empty path component");
    if (!isValidPathComponent(component)) {
      return bad(text, "bad path component \"" + component +
                           "\" (lowercase letters, digits and single separators . _ __ -)");
    }
  }
  r.path_ = std::string(remainder);
  if (r.domain_ == kDefaultDomain && r.path_.find('/') == std::string::npos) {
    r.path_ = "library/" + r.path_;
  }
  if (r.name().size() > kNameTotalLengthMax) {
    return bad(text, "repository name longer than 255 characters");
  }
  return r;
}

std::string Reference::str() const {
  std::string s = name();
  if (!tag_.empty()) s += ":" + tag_;
  if (!digest_.empty()) s += "@" + digest_.str();
  return s;
}

std::string Reference::familiar() const {
  std::string s;
  if (domain_ == kDefaultDomain) {
    s = path_.starts_with("library/") && path_.find('/', 8) == std::string::npos ? path_.substr(8)
                                                                                 : path_;
  } else {
    s = name();
  }
  if (!tag_.empty()) s += ":" + tag_;
  if (!digest_.empty()) s += "@" + digest_.str();
  return s;
}

std::string Reference::manifestReference() const {
  if (!digest_.empty()) return digest_.str();
  if (!tag_.empty()) return tag_;
  return std::string(kDefaultTag);
}

Reference Reference::withDefaultTag() const {
  Reference r = *this;
  if (r.tag_.empty() && r.digest_.empty()) r.tag_ = std::string(kDefaultTag);
  return r;
}

Reference Reference::withTag(std::string tag) const {
  Reference r = *this;
  r.tag_ = std::move(tag);
  return r;
}

Reference Reference::withDigest(Digest digest) const {
  Reference r = *this;
  r.digest_ = std::move(digest);
  return r;
}

Reference Reference::withDomain(std::string domain) const {
  Reference r = *this;
  r.domain_ = std::move(domain);
  return r;
}

}  // namespace cairn::oci
