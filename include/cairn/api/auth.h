// Bearer authentication for the Daytona-compatible routes (spec §1.2): an API key identifies
// the organization; the key's permissions decide what it may do.
//
//   CAIRN_ASSIGN_OR_RETURN(service::Caller caller, authenticate(request, store, clock.now()));
//   CAIRN_RETURN_IF_ERROR(requirePermission(caller, meta::kPermissionWriteSnapshots));
#pragma once

#include <string_view>

#include "cairn/api/http.h"
#include "cairn/common/status.h"
#include "cairn/common/time.h"
#include "cairn/meta/meta_store.h"
#include "cairn/service/snapshot_service.h"

namespace cairn::api {

//! Unauthenticated "Unauthorized" without a Bearer token; "Invalid API key" for an unknown key
//! (JWTs are not issued by Cairn, so they are unknown keys too); "This API key has expired" /
//! "This API key has been revoked"; PermissionDenied "Invalid authentication context" when the
//! key's organization is gone or suspended, or X-Daytona-Organization-ID names another one.
Result<service::Caller> authenticate(const Request& request, meta::MetaStore& store,
                                     SystemTime now);

//! PermissionDenied "Access denied" unless the caller holds one of `any_of` (or `admin`).
Status requirePermission(const service::Caller& caller,
                         std::initializer_list<std::string_view> any_of);

}  // namespace cairn::api
