// Everything a user of Cairn's C++ SDK needs, in one include: the Daytona client with its
// SnapshotService and ObjectStorage, the Snapshot types, the exceptions, and the declarative
// Image DSL.
//
//   #include <cairn/cairn.h>
//
//   int main() {
//     cairn::Daytona daytona;  // DAYTONA_API_KEY / DAYTONA_API_URL from the environment
//     auto image = cairn::Image::debianSlim("3.12").pipInstall({"numpy"});
//     cairn::Snapshot s = daytona.snapshot.create(
//         {.name = "numpy", .image = image},
//         {.onLogs = [](std::string_view line) { std::cout << line << "\n"; }});
//   }
#pragma once

#include "cairn/image/errors.h"          // IWYU pragma: export
#include "cairn/image/image.h"           // IWYU pragma: export
#include "cairn/sdk/api.h"               // IWYU pragma: export
#include "cairn/sdk/daytona.h"           // IWYU pragma: export
#include "cairn/sdk/errors.h"            // IWYU pragma: export
#include "cairn/sdk/object_storage.h"    // IWYU pragma: export
#include "cairn/sdk/snapshot.h"          // IWYU pragma: export
#include "cairn/sdk/snapshot_service.h"  // IWYU pragma: export
