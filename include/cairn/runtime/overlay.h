// Overlay mounts for container root filesystems, and keeping their lower-dir stacks within what
// the kernel accepts.
//
// mount(2) passes overlay options in one page (4096 bytes), so ~60-character layer paths stop
// fitting at about 60 lower dirs, and overlayfs itself stacks at most 500. flattenLowers keeps
// a stack below a budget by merging the OLDEST lower dirs into one directory (a hardlink farm,
// cached by the list of layers it was made from), so every step still sees the same tree and
// the newest layers stay separate. See src/runtime/README.md for the design.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "cairn/common/status.h"

namespace cairn::runtime {

//! Lower dirs above this many are flattened by default.
inline constexpr std::size_t kDefaultMaxLowerDirs = 100;
//! mount(2) data is one page; leave room for upperdir/workdir and separators.
inline constexpr std::size_t kMaxOverlayOptionBytes = 4000;

struct OverlayMount {
  std::vector<std::filesystem::path> lower_dirs;  //!< newest first (the overlayfs order)
  std::filesystem::path upper_dir;                //!< empty: a read-only overlay
  std::filesystem::path work_dir;                 //!< required with upper_dir
  //! The upper dir is thrown away after this mount (a sandbox's ephemeral layer): mount with
  //! overlayfs's `volatile` option, so that neither writes nor the unmount sync it. Without it,
  //! unmounting an overlay syncs the whole filesystem holding the upper dir, which waited for
  //! every dirty page of the host (1-50 ms per `cairn run` on a busy build machine). Such an
  //! upper/work pair must never be mounted again (overlayfs refuses after a crash anyway).
  bool discard_upper = false;
};

//! "lowerdir=a:b,upperdir=u,workdir=w" (paths checked for characters overlayfs cannot take).
Result<std::string> overlayMountOptions(const OverlayMount& overlay);

//! Mounts overlayfs on `target`. A single lower with no upper is bind-mounted read-only
//! (overlayfs needs two lowers without an upper). Options longer than one page go through the
//! new mount API (fsconfig lowerdir+, Linux >= 6.8); otherwise flattenLowers first.
Status mountOverlay(const OverlayMount& overlay, const std::filesystem::path& target);

//! Unmounts `target`: retries while busy, then detaches lazily as the last resort. A path that
//! is not a mount point is OK.
Status unmountReliably(const std::filesystem::path& target);

//! Mount points at or below `dir` according to /proc/self/mountinfo, deepest first.
Result<std::vector<std::filesystem::path>> mountsUnder(const std::filesystem::path& dir);

//! Unmounts everything at or below `dir`, deepest first.
Status unmountAllUnder(const std::filesystem::path& dir);

//! Applies the overlay-format layer `layer` on top of `target`: whiteouts (0/0 char devices)
//! delete, opaque dirs (trusted.overlay.opaque=y) replace, everything else is added or
//! replaced. Regular files are hard-linked (copied across filesystems), so no data is copied.
//! `drop_whiteouts`: the result is the bottom of a stack, so whiteouts are not kept.
Status mergeLayerInto(const std::filesystem::path& layer, const std::filesystem::path& target,
                      bool drop_whiteouts = true);

//! Returns `lowers` (newest first) when they fit `max_lowers` and the option size; otherwise
//! the newest ones plus one merged dir under `cache_dir` standing for the oldest ones. The
//! merged dir is named after a hash of the paths it merges and reused when present: layer dirs
//! are immutable, so equal lists mean equal trees.
Result<std::vector<std::filesystem::path>> flattenLowers(
    const std::vector<std::filesystem::path>& lowers, const std::filesystem::path& cache_dir,
    std::size_t max_lowers = kDefaultMaxLowerDirs,
    std::size_t max_option_bytes = kMaxOverlayOptionBytes);

}  // namespace cairn::runtime
