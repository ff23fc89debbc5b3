// The S3 endpoint against the real AWS SDK for JavaScript v3 (tests/api/s3_aws_sdk.js), from
// tests/node/node_modules (installed by scripts/install-deps with `npm ci`).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "cairn/api/s3.h"
#include "cairn/api/server.h"
#include "cairn/common/fs.h"
#include "cairn/store/local_blob_store.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::api {
namespace {

const std::string kSourceDir = CAIRN_SOURCE_DIR;
const std::string kNodeModules = kSourceDir + "/tests/node/node_modules";

std::string shellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out.push_back(c);
    }
  }
  return out + "'";
}

TEST(S3AwsSdkTest, OfficialClientPutListHeadGetMultipart) {
  ASSERT_TRUE(std::filesystem::is_directory(kNodeModules + "/@aws-sdk/client-s3") &&
              std::filesystem::is_directory(kNodeModules + "/@aws-sdk/lib-storage"))
      << kNodeModules << " lacks @aws-sdk/client-s3 or @aws-sdk/lib-storage: run "
      << "scripts/install-deps (npm ci in tests/node; they come with @daytonaio/sdk)";
  ASSERT_OK_AND_ASSIGN(TempDir dir, TempDir::create("cairn-s3-sdk"));
  // The blob-backed store, as `cairn serve` uses it.
  ASSERT_OK_AND_ASSIGN(auto blobs, store::LocalBlobStore::open(dir.path()));
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<ObjectStore> store,
                       BlobObjectStore::open(dir.path() / "objects", *blobs));
  auto minter = std::make_shared<CredentialMinter>();
  Router router;
  ASSERT_OK(mountS3(router, S3Options{}, store, minter));
  ASSERT_OK_AND_ASSIGN(auto server, Server::start(ServerOptions{}, std::move(router)));
  const std::string org = "3f1e2d4c-5b6a-4978-8a1b-2c3d4e5f6a7b";
  ASSERT_OK_AND_ASSIGN(S3Credential cred, minter->mint(org));

  std::string cmd =
      "S3_ENDPOINT=" + shellQuote("http://" + server->address() + "/s3") +
      " S3_REGION=us-east-1 S3_BUCKET=daytona-volume-builds S3_ORG=" + shellQuote(org) +
      " AWS_ACCESS_KEY_ID=" + shellQuote(cred.access_key_id) +
      " AWS_SECRET_ACCESS_KEY=" + shellQuote(cred.secret_access_key) +
      " AWS_SESSION_TOKEN=" + shellQuote(cred.session_token) +
      " NODE_MODULES=" + shellQuote(kNodeModules) + " NODE_NO_WARNINGS=1 timeout 240 node " +
      shellQuote(kSourceDir + "/tests/api/s3_aws_sdk.js") + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, pipe))
    out.append(buf, n);
  int rc = ::pclose(pipe);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, ::testing::HasSubstr("OK PutObject ListObjectsV2 HeadObject GetObject "
                                        "Upload(multipart) refusals"))
      << out;

  // What the SDK stored is what the store holds.
  ASSERT_OK_AND_ASSIGN(ListResult listed, store->list("daytona-volume-builds", org + "/", 10, ""));
  ASSERT_EQ(listed.objects.size(), 2u);
  EXPECT_EQ(listed.objects[1].size, 12u * 1024 * 1024 + 12345);
  // Bodies are blobs: one per object, nothing else.
  ASSERT_OK_AND_ASSIGN(auto all, blobs->list());
  EXPECT_EQ(all.size(), 2u);
}

}  // namespace
}  // namespace cairn::api
