// Context hashes and context archives of an Image's context entries, as the TypeScript SDK
// makes them before uploading (spec §2.4–§2.6). The C++ SDK calls these per contextList() entry:
//
//   CAIRN_ASSIGN_OR_RETURN(std::string hash, contextHash(entry));        // MD5, lowercase hex
//   CAIRN_ASSIGN_OR_RETURN(std::uint64_t size, contextArchiveSize(entry));  // PutObject or
//   multipart CAIRN_RETURN_IF_ERROR(writeContextArchive(entry, [&](std::string_view chunk) {
//     return upload.write(chunk);
//   }));
//
// The archive is the ustar stream node-tar v7 writes with `portable: true` (uid/gid/uname/gname
// empty, directory mtime empty, modes normalised to umask 022, breadth-first member order, PAX
// headers only where a field does not fit), byte for byte. Files are read while streaming, so
// memory stays small; a file that changes size between contextArchiveSize() and the write makes
// the write fail rather than produce a corrupt archive.
//
// An entry's .dockerignore (ContextEntry::dockerignore) removes matching paths below the entry
// from both the hash and the archive (spec §0.6); entries without one are hashed and archived
// exactly as the SDK does.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/status.h"
#include "cairn/image/image.h"

namespace cairn {

namespace dockerfile {
class DockerIgnore;
}

//! Receives archive bytes in order; a non-OK Status stops the write and is returned by it.
using ContextSink = std::function<Status(std::string_view chunk)>;

//! The SDK's MD5 context hash (spec §2.5), honouring entry.dockerignore. NotFound
//! ("Path does not exist: <sourcePath>") when the source is missing.
Result<std::string> contextHash(const ContextEntry& entry);
//! Same with an explicit .dockerignore (null = none) instead of the entry's.
Result<std::string> contextHash(const ContextEntry& entry,
                                const dockerfile::DockerIgnore* dockerignore);

//! The exact byte size writeContextArchive() will produce, from one metadata walk.
Result<std::uint64_t> contextArchiveSize(const ContextEntry& entry);

//! Streams the entry's context.tar (spec §2.4) to `sink`.
Status writeContextArchive(const ContextEntry& entry, const ContextSink& sink);

//! The whole archive in memory (small contexts, tests).
Result<std::string> contextArchive(const ContextEntry& entry);

}  // namespace cairn

namespace cairn {

//! Daytona's build ref for a Dockerfile/Image snapshot (spec §5.4):
//! "daytona-" + sha256(dockerfile ++ concat(sorted hashes)) + ":daytona".
std::string daytonaSnapshotRef(std::string_view dockerfile_content,
                               std::vector<std::string> context_hashes);

}  // namespace cairn
