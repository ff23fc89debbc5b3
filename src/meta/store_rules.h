// Private to src/meta: rules and messages every MetaStore implementation shares, so that they
// behave (and word their errors) the same way.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "cairn/common/status.h"
#include "cairn/meta/meta_store.h"

namespace cairn::meta::rules {

//! "Snapshot <x> not found" (spec §1.3).
std::string snapshotNotFound(std::string_view id_or_name);
//! The 409 text of spec §1.5 step 10.
std::string nameTaken(std::string_view name);
//! errorReason invariant (spec §0.4) for a transition into `next`: required (non-empty) when
//! entering an error state, refused in any other state.
Status checkErrorReason(SnapshotState next, bool state_changes,
                        const std::optional<std::string>& reason);
//! What createSnapshot refuses before touching the store: no name, general and owned (or
//! neither), created in state removing, or an errorReason that breaks checkErrorReason.
Status checkNewSnapshot(const Snapshot& snapshot);
//! "Snapshot quota exceeded. Maximum allowed: <n>" (spec §6).
Status quotaExceeded(std::int64_t max_snapshots);

}  // namespace cairn::meta::rules
