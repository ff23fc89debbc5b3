#include "cairn/common/http_status.h"

#include <gtest/gtest.h>

#include "cairn/common/status.h"

namespace cairn {
namespace {

TEST(HttpStatusTest, NamesCommonCodes) {
  EXPECT_EQ(httpReasonPhrase(200), "OK");
  EXPECT_EQ(httpReasonPhrase(206), "Partial Content");
  EXPECT_EQ(httpReasonPhrase(404), "Not Found");
  EXPECT_EQ(httpReasonPhrase(409), "Conflict");
  EXPECT_EQ(httpReasonPhrase(413), "Payload Too Large");
  EXPECT_EQ(httpReasonPhrase(422), "Unprocessable Entity");
  EXPECT_EQ(httpReasonPhrase(499), "Client Closed Request");
  EXPECT_EQ(httpReasonPhrase(502), "Bad Gateway");
}

TEST(HttpStatusTest, UnknownCodesHaveNoPhrase) {
  EXPECT_EQ(httpReasonPhrase(0), "");
  EXPECT_EQ(httpReasonPhrase(-404), "");
  EXPECT_EQ(httpReasonPhrase(299), "");
  EXPECT_EQ(httpReasonPhrase(600), "");
}

TEST(HttpStatusTest, EveryStatusCodeCairnSendsIsNamed) {
  // An error body's "error" field must never be empty for a status Cairn produces itself.
  for (StatusCode code :
       {StatusCode::kOk, StatusCode::kNotFound, StatusCode::kAlreadyExists,
        StatusCode::kInvalidArgument, StatusCode::kPermissionDenied, StatusCode::kUnauthenticated,
        StatusCode::kFailedPrecondition, StatusCode::kResourceExhausted,
        StatusCode::kDeadlineExceeded, StatusCode::kUnavailable, StatusCode::kCancelled,
        StatusCode::kInternal}) {
    EXPECT_NE(httpReasonPhrase(httpStatusFor(code)), "") << httpStatusFor(code);
  }
}

}  // namespace
}  // namespace cairn
