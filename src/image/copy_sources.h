// Internal: COPY/ADD source discovery for fromDockerfile and dockerfileCommands (spec §3.8,
// with the improvements of §0.6).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/status.h"
#include "cairn/image/image.h"

namespace cairn::image {

//! Joins backslash-continued physical lines into logical lines exactly as the SDK does.
std::vector<std::string> dockerfileLogicalLines(std::string_view content);

//! fast-glob 3 `sync([pattern], {dot: true})` for the patterns COPY sources use: `*`, `?`,
//! `[…]`, `{a,b}`, `**`; regular files only (symlinks followed), breadth-first, each directory
//! in byte order. A pattern without glob characters yields itself if it names a file.
//! With `match_dirs`, a directory matching a pattern (without `**`) is returned too, and not
//! descended into (Docker's COPY semantics, used for unquoted globs, spec §0.6).
std::vector<std::string> globFiles(std::string_view pattern, bool match_dirs = false);

//! The context entries of the COPY (and ADD) instructions of `content`. `prefix` is joined to
//! relative sources ("" = the current directory); `context_root` is the directory strict mode
//! and the .dockerignore refer to ("" = none).
Result<std::vector<ContextEntry>> discoverContextEntries(
    std::string_view content, std::string_view prefix, bool strict,
    std::shared_ptr<const dockerfile::DockerIgnore> dockerignore);

//! Reads `<dir>/.dockerignore`; null when there is none.
Result<std::shared_ptr<const dockerfile::DockerIgnore>> loadDockerIgnore(std::string_view dir);

}  // namespace cairn::image
