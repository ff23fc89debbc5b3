// The Daytona-compatible REST routes of `cairn serve` (spec §1.3, §1.8, §2.1) over the
// SnapshotService: every endpoint authenticates the Bearer API key (auth.h), calls one service
// method and maps its Status to the Daytona error body.
//
// Log followers (`GET …/build-logs?follow=true`) cost no thread each: the response is a
// ResponseStream fed by one shared pump thread that the service's watchLogs() callbacks wake.
//
//   Router router;
//   CAIRN_RETURN_IF_ERROR(mountSnapshotRoutes(router, {store, service, minter, clock}, opts));
//   CAIRN_RETURN_IF_ERROR(mountS3(router, s3_options, object_store, minter));
//   CAIRN_ASSIGN_OR_RETURN(auto server, Server::start(server_options, std::move(router)));
//
// The service (and store) must outlive the server: handlers and the log pump refer to them.
#pragma once

#include <memory>
#include <string>

#include "cairn/api/object_store.h"
#include "cairn/api/router.h"
#include "cairn/api/s3.h"
#include "cairn/common/status.h"
#include "cairn/common/time.h"
#include "cairn/meta/meta_store.h"
#include "cairn/service/snapshot_service.h"

namespace cairn::api {

struct SnapshotRoutesOptions {
  //! Base of the URL build-logs-url returns ("https://cairn.example"); empty = "http://" + the
  //! request's Host header.
  std::string public_url;
  //! storageUrl of push access; empty = the public URL (or "http://" + Host) + s3_prefix.
  std::string storage_url;
  std::string s3_prefix = "/s3";
  std::string bucket = "daytona-volume-builds";
  std::string region = "us-east-1";
  //! Largest POST /api/snapshots body (a Dockerfile and the context hashes).
  std::size_t max_create_body_bytes = 1024 * 1024;
  //! A non-follow log read returns at most this much (the tail beyond it is dropped).
  std::size_t max_log_response_bytes = 64 * 1024 * 1024;
};

struct SnapshotRoutesDeps {
  meta::MetaStore& store;
  service::SnapshotService& service;
  //! Null: push access answers 503 "Object storage is not configured".
  std::shared_ptr<CredentialMinter> minter;
  const Clock& clock;
};

//! Adds every route of spec §1.3 under /api (plus the deprecated build-logs route).
Status mountSnapshotRoutes(Router& router, SnapshotRoutesDeps deps,
                           SnapshotRoutesOptions options = {});

//! The service's view of the S3 endpoint's objects: reads `<bucket>/<key>` into a file.
class ObjectStoreContextReader final : public service::ContextReader {
 public:
  ObjectStoreContextReader(std::shared_ptr<ObjectStore> store, std::string bucket)
      : store_(std::move(store)), bucket_(std::move(bucket)) {}
  Status fetchObject(std::string_view key, const std::filesystem::path& dest) override;

 private:
  std::shared_ptr<ObjectStore> store_;
  std::string bucket_;
};

//! The OpenAPI 3 document served at /api/openapi.json: the routes mountSnapshotRoutes adds.
std::string snapshotOpenApiJson();

}  // namespace cairn::api
