// Status and Result<T>: how errors cross module boundaries inside Cairn.
//
// A Status is OK or a canonical code plus a message that says what went wrong and, where it
// helps, where (a Dockerfile line, a digest, a path inside an archive). Result<T> holds a T or a
// non-OK Status. Both are [[nodiscard]]. Each code maps to exactly one HTTP status.
//
//   Result<Manifest> m = parseManifest(bytes);
//   if (!m.ok()) return m.status().withContext("manifest " + digest);
//   use(*m);
//
// Inside Cairn no exception crosses a module boundary; the public client surface (Image,
// Daytona, SnapshotService) converts Status to typed exceptions at its edge.
#pragma once

#include <cassert>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace cairn {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,
  kNotFound,
  kAlreadyExists,
  kPermissionDenied,
  kUnauthenticated,
  kFailedPrecondition,
  kResourceExhausted,
  kDeadlineExceeded,
  kUnavailable,
  kCancelled,
  kInternal,
};

//! "NotFound", "InvalidArgument", ...
std::string_view statusCodeName(StatusCode code);

//! The one HTTP status each code maps to (400, 404, 409, 403, 401, 412, 429, 504, 503, 499, 500).
int httpStatusFor(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status okStatus() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  //! Prefixes the message with where the error happened: "layer sha256:ab…: <message>".
  Status withContext(std::string_view context) const&;
  Status withContext(std::string_view context) &&;

  //! "NotFound: snapshot foo not found", or "OK".
  std::string toString() const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

std::ostream& operator<<(std::ostream& os, const Status& status);

inline Status okStatus() {
  return Status();
}
inline Status invalidArgument(std::string m) {
  return {StatusCode::kInvalidArgument, std::move(m)};
}
inline Status notFound(std::string m) {
  return {StatusCode::kNotFound, std::move(m)};
}
inline Status alreadyExists(std::string m) {
  return {StatusCode::kAlreadyExists, std::move(m)};
}
inline Status permissionDenied(std::string m) {
  return {StatusCode::kPermissionDenied, std::move(m)};
}
inline Status unauthenticated(std::string m) {
  return {StatusCode::kUnauthenticated, std::move(m)};
}
inline Status failedPrecondition(std::string m) {
  return {StatusCode::kFailedPrecondition, std::move(m)};
}
inline Status resourceExhausted(std::string m) {
  return {StatusCode::kResourceExhausted, std::move(m)};
}
inline Status deadlineExceeded(std::string m) {
  return {StatusCode::kDeadlineExceeded, std::move(m)};
}
inline Status unavailable(std::string m) {
  return {StatusCode::kUnavailable, std::move(m)};
}
inline Status cancelled(std::string m) {
  return {StatusCode::kCancelled, std::move(m)};
}
inline Status internalError(std::string m) {
  return {StatusCode::kInternal, std::move(m)};
}

//! An I/O failure as a Status: "open /x/y: No such file or directory". errno ENOENT maps to
//! NotFound, EEXIST to AlreadyExists, EACCES/EPERM to PermissionDenied, ENOSPC/EDQUOT to
//! ResourceExhausted, anything else to Internal.
Status errnoStatus(int err, std::string_view what);

//! A value of type T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
  static_assert(!std::is_same_v<std::decay_t<T>, Status>, "Result<Status> makes no sense");

 public:
  Result(const T& value) : v_(value) {}                   // NOLINT(google-explicit-constructor)
  Result(T&& value) : v_(std::move(value)) {}             // NOLINT(google-explicit-constructor)
  Result(const Status& status) : v_(status) { check(); }  // NOLINT(google-explicit-constructor)
  Result(Status&& status) : v_(std::move(status)) { check(); }  // NOLINT
  template <typename U, typename = std::enable_if_t<std::is_constructible_v<T, U&&> &&
                                                    !std::is_same_v<std::decay_t<U>, T> &&
                                                    !std::is_same_v<std::decay_t<U>, Status> &&
                                                    !std::is_same_v<std::decay_t<U>, Result<T>>>>
  Result(U&& value) : v_(T(std::forward<U>(value))) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  const Status& status() const& {
    static const Status kOk;
    return ok() ? kOk : std::get<1>(v_);
  }
  Status status() && { return ok() ? Status() : std::get<1>(std::move(v_)); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T valueOr(T fallback) const& { return ok() ? std::get<0>(v_) : std::move(fallback); }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  void check() const { assert(!std::get<1>(v_).ok() && "Result built from an OK Status"); }
  std::variant<T, Status> v_;
};

}  // namespace cairn

#define CAIRN_CONCAT_INNER_(a, b) a##b
#define CAIRN_CONCAT_(a, b) CAIRN_CONCAT_INNER_(a, b)

//! Returns the Status from the enclosing function if `expr` (a Status) is not OK.
#define CAIRN_RETURN_IF_ERROR(expr) \
  CAIRN_RETURN_IF_ERROR_IMPL_(CAIRN_CONCAT_(cairn_status_, __LINE__), expr)
#define CAIRN_RETURN_IF_ERROR_IMPL_(tmp, expr) \
  do {                                         \
    ::cairn::Status tmp = (expr);              \
    if (!tmp.ok()) return tmp;                 \
  } while (false)

//! `CAIRN_ASSIGN_OR_RETURN(auto x, makeX());` — declares/assigns from a Result or returns its
//! Status.
#define CAIRN_ASSIGN_OR_RETURN(lhs, expr) \
  CAIRN_ASSIGN_OR_RETURN_IMPL_(CAIRN_CONCAT_(cairn_result_, __LINE__), lhs, expr)
#define CAIRN_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return std::move(tmp).status();     \
  lhs = std::move(tmp).value()
