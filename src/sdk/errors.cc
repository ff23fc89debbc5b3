#include "cairn/sdk/errors.h"

#include "cairn/common/http_status.h"
#include "cairn/common/json.h"

namespace cairn::sdk {
namespace {

// The phrase in "Request failed with status code 502 (Bad Gateway)".
std::string_view reasonPhrase(long status) {
  std::string_view phrase = httpReasonPhrase(static_cast<int>(status));
  return phrase.empty() ? "HTTP error" : phrase;
}

// A string field, or a JSON array of strings joined the way class-validator messages are.
std::string textOf(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    std::string out;
    for (const Json& item : v) {
      if (!item.is_string()) continue;
      if (!out.empty()) out += ", ";
      out += item.get<std::string>();
    }
    return out;
  }
  return {};
}

}  // namespace

void throwHttpError(long status_code, std::string_view body) {
  std::string message;
  std::string code;
  std::string source;
  Result<Json> json = parseJson(body);
  if (json.ok() && json->is_object()) {
    if (auto it = json->find("message"); it != json->end()) message = textOf(*it);
    if (message.empty()) {
      if (auto it = json->find("error"); it != json->end()) message = textOf(*it);
    }
    if (auto it = json->find("code"); it != json->end()) code = textOf(*it);
    if (code.empty()) {
      if (auto it = json->find("error_code"); it != json->end()) code = textOf(*it);
    }
    if (auto it = json->find("source"); it != json->end()) source = textOf(*it);
  }
  if (message.empty()) message = std::string(body);
  if (message.empty()) {
    message = "Request failed with status code " + std::to_string(status_code) + " (" +
              std::string(reasonPhrase(status_code)) + ")";
  }
  std::optional<int> sc = static_cast<int>(status_code);
  switch (status_code) {
    case 400:
      throw DaytonaValidationError(message, sc, code, source);
    case 401:
      throw DaytonaAuthenticationError(message, sc, code, source);
    case 403:
      throw DaytonaAuthorizationError(message, sc, code, source);
    case 404:
      throw DaytonaNotFoundError(message, sc, code, source);
    case 408:
    case 504:
      throw DaytonaTimeoutError(message, sc, code, source);
    case 409:
      throw DaytonaConflictError(message, sc, code, source);
    case 410:
      throw DaytonaGoneError(message, sc, code, source);
    case 422:
      throw DaytonaUnprocessableEntityError(message, sc, code, source);
    case 429:
      throw DaytonaRateLimitError(message, sc, code, source);
    case 500:
      throw DaytonaInternalServerError(message, sc, code, source);
    case 502:
      throw DaytonaBadGatewayError(message, sc, code, source);
    case 503:
      throw DaytonaServiceUnavailableError(message, sc, code, source);
    default:
      throw DaytonaError(message, sc, code, source);
  }
}

void throwTransportError(const Status& status) {
  if (status.code() == StatusCode::kDeadlineExceeded) {
    throw DaytonaConnectionTimeoutError(status.message());
  }
  throw DaytonaConnectionError(status.message());
}

void throwStatus(const Status& status) {
  switch (status.code()) {
    case StatusCode::kNotFound:
      throw DaytonaNotFoundError(status.message());
    case StatusCode::kInvalidArgument:
      throw DaytonaInvalidArgumentError(status.message());
    case StatusCode::kDeadlineExceeded:
      throw DaytonaTimeoutError(status.message());
    case StatusCode::kUnavailable:
      throw DaytonaConnectionError(status.message());
    default:
      throw DaytonaError(status.message());
  }
}

}  // namespace cairn::sdk
