// The SDK's exceptions (spec §3.4), extending the DaytonaError hierarchy of the Image DSL.
//
// An HTTP error response becomes the class of its status (404 → DaytonaNotFoundError, 409 →
// DaytonaConflictError, …; any other status → DaytonaError) whose what() is the body's
// `message`, else its `error`, else the raw body; statusCode(), code() and source() carry the
// rest. Transport failures are DaytonaConnectionError; a client-side timeout is
// DaytonaConnectionTimeoutError, which is also a DaytonaTimeoutError, so
//
//   try { daytona.snapshot.create(params, {.timeout = 600}); }
//   catch (const cairn::DaytonaTimeoutError& e) { /* the server may still be building */ }
//
// catches every kind of timeout.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "cairn/common/status.h"
#include "cairn/image/errors.h"

namespace cairn {

// DaytonaBadRequestError and DaytonaValidationError live in cairn/image/errors.h, beside
// DaytonaInvalidArgumentError which derives from them.
//! 401: missing, wrong or expired credentials.
class DaytonaAuthenticationError : public DaytonaError {
 public:
  using DaytonaError::DaytonaError;
};
//! 403.
class DaytonaForbiddenError : public DaytonaError {
 public:
  using DaytonaError::DaytonaError;
};
class DaytonaAuthorizationError : public DaytonaForbiddenError {
 public:
  using DaytonaForbiddenError::DaytonaForbiddenError;
};
//! 409, e.g. a snapshot name that already exists.
class DaytonaConflictError : public DaytonaError {
 public:
  using DaytonaError::DaytonaError;
};
//! 410.
class DaytonaGoneError : public DaytonaError {
 public:
  using DaytonaError::DaytonaError;
};
//! 422.
class DaytonaUnprocessableEntityError : public DaytonaError {
 public:
  using DaytonaError::DaytonaError;
};
//! 429.
class DaytonaRateLimitError : public DaytonaError {
 public:
  using DaytonaError::DaytonaError;
};
//! 500.
class DaytonaInternalServerError : public DaytonaError {
 public:
  using DaytonaError::DaytonaError;
};
//! 502.
class DaytonaBadGatewayError : public DaytonaError {
 public:
  using DaytonaError::DaytonaError;
};
//! 503.
class DaytonaServiceUnavailableError : public DaytonaError {
 public:
  using DaytonaError::DaytonaError;
};
//! 408 and 504 from the server, and every client-side timeout (see the file comment).
class DaytonaTimeoutError : public virtual DaytonaError {
 public:
  using DaytonaError::DaytonaError;
};
//! No response: connection refused or reset, DNS failure, TLS failure.
class DaytonaConnectionError : public virtual DaytonaError {
 public:
  using DaytonaError::DaytonaError;
};
//! A request that ran out of time on the client side: both a DaytonaConnectionError and a
//! DaytonaTimeoutError, as in the TS SDK.
class DaytonaConnectionTimeoutError : public DaytonaConnectionError, public DaytonaTimeoutError {
 public:
  explicit DaytonaConnectionTimeoutError(const std::string& message)
      : DaytonaError(message), DaytonaConnectionError(message), DaytonaTimeoutError(message) {}
};

namespace sdk {

//! Throws the exception class of `status_code` (spec §3.4) for an HTTP error response whose
//! body is `body`: message = body.message, else body.error, else the raw body (or the reason
//! phrase when the body is empty); code/source from body.code (or error_code) and body.source.
[[noreturn]] void throwHttpError(long status_code, std::string_view body);

//! Throws for a transport failure from HttpClient: DeadlineExceeded →
//! DaytonaConnectionTimeoutError, anything else → DaytonaConnectionError.
[[noreturn]] void throwTransportError(const Status& status);

//! Throws the closest class for a local Status: NotFound → DaytonaNotFoundError,
//! InvalidArgument → DaytonaInvalidArgumentError, DeadlineExceeded → DaytonaTimeoutError,
//! Unavailable → DaytonaConnectionError, else DaytonaError.
[[noreturn]] void throwStatus(const Status& status);

}  // namespace sdk
}  // namespace cairn
