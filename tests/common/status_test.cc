#include "cairn/common/status.h"

#include "cairn/testing/status_matchers.h"

namespace cairn {
namespace {

using ::cairn::testing::IsOk;
using ::cairn::testing::StatusIs;
using ::testing::HasSubstr;

Result<int> half(int x) {
  if (x % 2) return invalidArgument(std::to_string(x) + " is odd");
  return x / 2;
}

Result<int> quarter(int x) {
  CAIRN_ASSIGN_OR_RETURN(int h, half(x));
  CAIRN_ASSIGN_OR_RETURN(int q, half(h));
  return q;
}

Status checkEven(int x) {
  CAIRN_RETURN_IF_ERROR(half(x).status());
  return okStatus();
}

TEST(StatusTest, EveryCodeMapsToOneHttpStatus) {
  EXPECT_EQ(httpStatusFor(StatusCode::kOk), 200);
  EXPECT_EQ(httpStatusFor(StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(httpStatusFor(StatusCode::kUnauthenticated), 401);
  EXPECT_EQ(httpStatusFor(StatusCode::kPermissionDenied), 403);
  EXPECT_EQ(httpStatusFor(StatusCode::kNotFound), 404);
  EXPECT_EQ(httpStatusFor(StatusCode::kAlreadyExists), 409);
  EXPECT_EQ(httpStatusFor(StatusCode::kResourceExhausted), 429);
  EXPECT_EQ(httpStatusFor(StatusCode::kInternal), 500);
  EXPECT_EQ(httpStatusFor(StatusCode::kUnavailable), 503);
  EXPECT_EQ(httpStatusFor(StatusCode::kDeadlineExceeded), 504);
}

TEST(StatusTest, MacrosPropagate) {
  EXPECT_THAT(quarter(8), IsOk());
  EXPECT_EQ(*quarter(8), 2);
  EXPECT_THAT(quarter(6), StatusIs(StatusCode::kInvalidArgument, "3 is odd"));
  EXPECT_THAT(checkEven(3), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(checkEven(4), IsOk());
}

TEST(StatusTest, ContextIsPrefixed) {
  Status s = notFound("no such blob").withContext("layer sha256:abc");
  EXPECT_EQ(s.message(), "layer sha256:abc: no such blob");
  EXPECT_EQ(s.toString(), "NotFound: layer sha256:abc: no such blob");
  EXPECT_TRUE(okStatus().withContext("x").ok());
}

TEST(StatusTest, ErrnoMapping) {
  EXPECT_THAT(errnoStatus(ENOENT, "open /x"),
              StatusIs(StatusCode::kNotFound, HasSubstr("open /x: No such file")));
  EXPECT_THAT(errnoStatus(EEXIST, "mkdir"), StatusIs(StatusCode::kAlreadyExists));
  EXPECT_THAT(errnoStatus(EACCES, "open"), StatusIs(StatusCode::kPermissionDenied));
  EXPECT_THAT(errnoStatus(ENOSPC, "write"), StatusIs(StatusCode::kResourceExhausted));
  EXPECT_THAT(errnoStatus(EIO, "read"), StatusIs(StatusCode::kInternal));
}

TEST(StatusTest, ResultOfStringFromLiteral) {
  Result<std::string> r = "hello";
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "hello");
  EXPECT_EQ(Result<std::string>(notFound("x")).valueOr("d"), "d");
}

}  // namespace
}  // namespace cairn
