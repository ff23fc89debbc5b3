#include "cairn/sdk/errors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <typeinfo>

namespace cairn {
namespace {

using ::testing::HasSubstr;

// Runs `fn`, which must throw a DaytonaError, and returns a copy of what it threw.
template <typename E>
void expectThrows(const std::function<void()>& fn, const std::string& message,
                  std::optional<int> status) {
  try {
    fn();
    FAIL() << "nothing thrown";
  } catch (const E& e) {
    EXPECT_EQ(std::string(e.what()), message);
    EXPECT_EQ(e.statusCode(), status);
  } catch (const std::exception& e) {
    FAIL() << "wrong exception " << typeid(e).name() << ": " << e.what();
  }
}

TEST(ErrorsTest, EachStatusMapsToItsClass) {
  auto body = [](int status) {
    return std::string(R"({"statusCode":)") + std::to_string(status) + R"(,"message":"m"})";
  };
#define CAIRN_EXPECT_CLASS(status, Class)                                               \
  expectThrows<Class>([&] { sdk::throwHttpError(status, body(status)); }, "m", status); \
  {                                                                                     \
    bool exact = false;                                                                 \
    try {                                                                               \
      sdk::throwHttpError(status, body(status));                                        \
    } catch (const DaytonaError& e) {                                                   \
      exact = typeid(e) == typeid(Class);                                               \
    }                                                                                   \
    EXPECT_TRUE(exact) << status << " is not exactly " #Class;                          \
  }
  CAIRN_EXPECT_CLASS(400, DaytonaValidationError);
  CAIRN_EXPECT_CLASS(401, DaytonaAuthenticationError);
  CAIRN_EXPECT_CLASS(403, DaytonaAuthorizationError);
  CAIRN_EXPECT_CLASS(404, DaytonaNotFoundError);
  CAIRN_EXPECT_CLASS(408, DaytonaTimeoutError);
  CAIRN_EXPECT_CLASS(409, DaytonaConflictError);
  CAIRN_EXPECT_CLASS(410, DaytonaGoneError);
  CAIRN_EXPECT_CLASS(422, DaytonaUnprocessableEntityError);
  CAIRN_EXPECT_CLASS(429, DaytonaRateLimitError);
  CAIRN_EXPECT_CLASS(500, DaytonaInternalServerError);
  CAIRN_EXPECT_CLASS(502, DaytonaBadGatewayError);
  CAIRN_EXPECT_CLASS(503, DaytonaServiceUnavailableError);
  CAIRN_EXPECT_CLASS(504, DaytonaTimeoutError);
  CAIRN_EXPECT_CLASS(418, DaytonaError);
#undef CAIRN_EXPECT_CLASS
}

TEST(ErrorsTest, SubclassesAreCatchableAsTheirParents) {
  expectThrows<DaytonaBadRequestError>([] { sdk::throwHttpError(400, R"({"message":"v"})"); }, "v",
                                       400);
  expectThrows<DaytonaForbiddenError>([] { sdk::throwHttpError(403, R"({"message":"f"})"); }, "f",
                                      403);
  expectThrows<DaytonaError>([] { sdk::throwHttpError(409, R"({"message":"c"})"); }, "c", 409);
}

TEST(ErrorsTest, MessageComesFromMessageThenErrorThenRawBody) {
  expectThrows<DaytonaNotFoundError>(
      [] { sdk::throwHttpError(404, R"({"error":"Not Found","message":"Snapshot x not found"})"); },
      "Snapshot x not found", 404);
  expectThrows<DaytonaNotFoundError>([] { sdk::throwHttpError(404, R"({"error":"Not Found"})"); },
                                     "Not Found", 404);
  expectThrows<DaytonaValidationError>(
      [] { sdk::throwHttpError(400, R"({"message":["a must be x","b must be y"]})"); },
      "a must be x, b must be y", 400);
  expectThrows<DaytonaInternalServerError>([] { sdk::throwHttpError(500, "upstream exploded"); },
                                           "upstream exploded", 500);
  expectThrows<DaytonaBadGatewayError>([] { sdk::throwHttpError(502, ""); },
                                       "Request failed with status code 502 (Bad Gateway)", 502);
}

TEST(ErrorsTest, CodeAndSourceAreKept) {
  try {
    sdk::throwHttpError(409,
                        R"({"message":"dup","code":"SNAPSHOT_EXISTS","source":"DAYTONA_API"})");
    FAIL();
  } catch (const DaytonaConflictError& e) {
    EXPECT_EQ(e.code(), "SNAPSHOT_EXISTS");
    EXPECT_EQ(e.source(), "DAYTONA_API");
  }
  try {
    sdk::throwHttpError(429, R"({"message":"slow down","error_code":"RATE"})");
    FAIL();
  } catch (const DaytonaRateLimitError& e) {
    EXPECT_EQ(e.code(), "RATE");
    EXPECT_EQ(e.source(), "");
  }
}

TEST(ErrorsTest, TransportFailures) {
  expectThrows<DaytonaConnectionError>(
      [] { sdk::throwTransportError(unavailable("GET http://x: Connection refused")); },
      "GET http://x: Connection refused", std::nullopt);
  // A client-side timeout is both a connection error and a timeout.
  expectThrows<DaytonaConnectionTimeoutError>(
      [] { sdk::throwTransportError(deadlineExceeded("GET http://x: timed out")); },
      "GET http://x: timed out", std::nullopt);
  expectThrows<DaytonaTimeoutError>([] { sdk::throwTransportError(deadlineExceeded("t")); }, "t",
                                    std::nullopt);
  expectThrows<DaytonaConnectionError>([] { sdk::throwTransportError(deadlineExceeded("t")); }, "t",
                                       std::nullopt);
  expectThrows<DaytonaError>([] { sdk::throwTransportError(deadlineExceeded("t")); }, "t",
                             std::nullopt);
}

TEST(ErrorsTest, LocalStatusesMapToLocalClasses) {
  expectThrows<DaytonaNotFoundError>(
      [] { sdk::throwStatus(notFound("Path does not exist: /nope")); },
      "Path does not exist: /nope", std::nullopt);
  expectThrows<DaytonaInvalidArgumentError>([] { sdk::throwStatus(invalidArgument("bad")); }, "bad",
                                            std::nullopt);
  expectThrows<DaytonaTimeoutError>([] { sdk::throwStatus(deadlineExceeded("late")); }, "late",
                                    std::nullopt);
  expectThrows<DaytonaError>([] { sdk::throwStatus(internalError("boom")); }, "boom", std::nullopt);
}

}  // namespace
}  // namespace cairn
