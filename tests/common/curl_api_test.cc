#include "cairn/common/curl_api.h"

#include <dlfcn.h>

#include <string>

#include "cairn/common/fs.h"
#include "cairn/testing/status_matchers.h"

namespace cairn {
namespace {

using ::cairn::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

size_t appendTo(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

// First in this file: with the whole binary run in order, nothing has loaded libcurl yet.
TEST(CurlApiTest, IsNotLoadedUntilFirstUse) {
  // The binary does not link libcurl (the point of the facade); only curlApi() brings it in.
  void* before = dlopen("libcurl.so.4", RTLD_NOW | RTLD_NOLOAD);
  if (before != nullptr) {
    dlclose(before);
    GTEST_SKIP() << "another test in this process loaded libcurl first (run this one alone)";
  }
  ASSERT_OK(curlApi().status());
  void* after = dlopen("libcurl.so.4", RTLD_NOW | RTLD_NOLOAD);
  EXPECT_NE(after, nullptr);
  if (after != nullptr) dlclose(after);
}

TEST(CurlApiTest, LoadsOnceAndReportsLibcurlsVersion) {
  ASSERT_OK_AND_ASSIGN(const CurlApi* api, curlApi());
  ASSERT_NE(api, nullptr);
  EXPECT_THAT(std::string(api->version()), StartsWith("libcurl/"));
  ASSERT_OK_AND_ASSIGN(const CurlApi* again, curlApi());
  EXPECT_EQ(api, again);
  EXPECT_STREQ(api->easy_strerror(CURLE_COULDNT_CONNECT), "Couldn't connect to server");
}

TEST(CurlApiTest, PerformsATransferThroughTheVariadicSetopt) {
  // A file:// transfer exercises easy_setopt with each argument kind (string, long, function
  // pointer, data pointer) and easy_getinfo, without any server.
  ASSERT_OK_AND_ASSIGN(const CurlApi* api, curlApi());
  ASSERT_OK_AND_ASSIGN(TempDir dir, TempDir::create("curl-api-test"));
  ASSERT_OK(writeFileDurable(dir.path() / "hello.txt", "hello from a file\n"));
  CURL* h = api->easy_init();
  ASSERT_NE(h, nullptr);
  std::string body;
  const std::string url = "file://" + (dir.path() / "hello.txt").string();
  EXPECT_EQ(api->easy_setopt(h, CURLOPT_URL, url.c_str()), CURLE_OK);
  EXPECT_EQ(api->easy_setopt(h, CURLOPT_NOSIGNAL, 1L), CURLE_OK);
  EXPECT_EQ(api->easy_setopt(h, CURLOPT_WRITEFUNCTION, appendTo), CURLE_OK);
  EXPECT_EQ(api->easy_setopt(h, CURLOPT_WRITEDATA, &body), CURLE_OK);
  curl_slist* headers = api->slist_append(nullptr, "X-Test: 1");
  ASSERT_NE(headers, nullptr);
  EXPECT_EQ(api->easy_setopt(h, CURLOPT_HTTPHEADER, headers), CURLE_OK);
  EXPECT_EQ(api->easy_perform(h), CURLE_OK);
  curl_off_t size = 0;
  EXPECT_EQ(api->easy_getinfo(h, CURLINFO_SIZE_DOWNLOAD_T, &size), CURLE_OK);
  EXPECT_EQ(body, "hello from a file\n");
  EXPECT_EQ(size, static_cast<curl_off_t>(body.size()));

  // reset drops the options: a missing file now fails with libcurl's own code.
  api->easy_reset(h);
  const std::string missing = "file://" + (dir.path() / "missing").string();
  EXPECT_EQ(api->easy_setopt(h, CURLOPT_URL, missing.c_str()), CURLE_OK);
  EXPECT_EQ(api->easy_setopt(h, CURLOPT_WRITEFUNCTION, appendTo), CURLE_OK);
  EXPECT_EQ(api->easy_setopt(h, CURLOPT_WRITEDATA, &body), CURLE_OK);
  EXPECT_EQ(api->easy_perform(h), CURLE_FILE_COULDNT_READ_FILE);
  api->slist_free_all(headers);
  api->easy_cleanup(h);
}

TEST(CurlApiTest, AMissingLibraryIsAClearError) {
  auto loaded = LoadedCurl::load("libcurl-cairn-test-missing.so.4");
  EXPECT_THAT(loaded, StatusIs(StatusCode::kFailedPrecondition,
                               AllOf(HasSubstr("libcurl-cairn-test-missing.so.4 not found"),
                                     HasSubstr("install libcurl4"))));
}

TEST(CurlApiTest, ALibraryWithoutCurlsFunctionsIsRejected) {
  // zlib is loaded into every Cairn process anyway; it has none of libcurl's symbols.
  auto loaded = LoadedCurl::load("libz.so.1");
  EXPECT_THAT(loaded, StatusIs(StatusCode::kFailedPrecondition,
                               AllOf(HasSubstr("libz.so.1 has no curl_global_init"),
                                     HasSubstr("libcurl"))));
}

TEST(CurlApiTest, ASeparateCopyLoads) {
  ASSERT_OK_AND_ASSIGN(auto loaded, LoadedCurl::load("libcurl.so.4"));
  EXPECT_THAT(std::string(loaded->api().version()), StartsWith("libcurl/"));
}

}  // namespace
}  // namespace cairn
