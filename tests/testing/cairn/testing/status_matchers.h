// GoogleTest matchers for Status and Result<T>:
//   EXPECT_THAT(doThing(), IsOk());
//   EXPECT_THAT(parse("x"), StatusIs(StatusCode::kInvalidArgument, HasSubstr("line 1")));
//   ASSERT_OK_AND_ASSIGN(auto value, makeValue());
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cairn/common/status.h"

namespace cairn::testing {

inline const Status& statusOf(const Status& s) {
  return s;
}
template <typename T>
const Status& statusOf(const Result<T>& r) {
  return r.status();
}

MATCHER(IsOk, "is OK") {
  const Status& s = statusOf(arg);
  if (!s.ok()) *result_listener << "status is " << s.toString();
  return s.ok();
}

MATCHER_P(StatusIs, code, "has status code " + std::string(statusCodeName(code))) {
  const Status& s = statusOf(arg);
  *result_listener << "status is " << s.toString();
  return s.code() == code;
}

MATCHER_P2(StatusIs, code, message_matcher,
           "has status code " + std::string(statusCodeName(code))) {
  const Status& s = statusOf(arg);
  *result_listener << "status is " << s.toString();
  return s.code() == code &&
         ::testing::ExplainMatchResult(message_matcher, s.message(), result_listener);
}

}  // namespace cairn::testing

#define ASSERT_OK(expr) ASSERT_THAT((expr), ::cairn::testing::IsOk())
#define EXPECT_OK(expr) EXPECT_THAT((expr), ::cairn::testing::IsOk())
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  ASSERT_OK_AND_ASSIGN_IMPL_(CAIRN_CONCAT_(cairn_test_result_, __LINE__), lhs, expr)
#define ASSERT_OK_AND_ASSIGN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  ASSERT_OK(tmp);                                  \
  lhs = std::move(tmp).value()
