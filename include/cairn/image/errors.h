// The exceptions of Cairn's public client surface, mirroring the TypeScript SDK's
// `DaytonaError` family (spec §3.4). The Image DSL throws the two local ones below; the SDK area
// (cairn/sdk/errors.h) extends the hierarchy with one class per HTTP status.
//
//   try { auto image = cairn::Image::debianSlim("3.8"); }
//   catch (const cairn::DaytonaInvalidArgumentError& e) { std::cerr << e.what(); }
//
// Inside Cairn errors are Status values; throwImageError() is the one place where the Image
// DSL turns a Status into an exception.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "cairn/common/status.h"

namespace cairn {

//! Base of every SDK exception. what() is the message exactly as the TypeScript SDK words it;
//! statusCode() is the HTTP status when the error came from a server response.
class DaytonaError : public std::runtime_error {
 public:
  explicit DaytonaError(const std::string& message, std::optional<int> status_code = std::nullopt,
                        std::string code = {}, std::string source = {})
      : std::runtime_error(message),
        status_code_(status_code),
        code_(std::move(code)),
        source_(std::move(source)) {}

  std::optional<int> statusCode() const { return status_code_; }
  //! The server's machine-readable error code, "" when it sent none.
  const std::string& code() const { return code_; }
  //! Where the server says the error came from, "" when it sent none.
  const std::string& source() const { return source_; }

 private:
  std::optional<int> status_code_;
  std::string code_;
  std::string source_;
};

//! A path the caller named does not exist (404 when it comes from a server).
class DaytonaNotFoundError : public DaytonaError {
 public:
  using DaytonaError::DaytonaError;
};

//! 400 from the server.
class DaytonaBadRequestError : public DaytonaError {
 public:
  using DaytonaError::DaytonaError;
};

//! 400 (validation failures are what a 400 means in Daytona's API).
class DaytonaValidationError : public DaytonaBadRequestError {
 public:
  using DaytonaBadRequestError::DaytonaBadRequestError;
};

//! A local argument is wrong: unsupported Python version, a file where a directory is needed, …
//! As in the TS SDK it is a DaytonaValidationError, so one catch handles local and server-side
//! validation failures.
class DaytonaInvalidArgumentError : public DaytonaValidationError {
 public:
  using DaytonaValidationError::DaytonaValidationError;
};

//! Throws the exception matching a non-OK Status produced by the Image DSL: NotFound →
//! DaytonaNotFoundError, InvalidArgument → DaytonaInvalidArgumentError, anything else →
//! DaytonaError. The message is the Status message, unchanged.
[[noreturn]] void throwImageError(const Status& status);

}  // namespace cairn
