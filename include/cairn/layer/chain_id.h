// OCI image-spec chain ids: ChainID(L0) = DiffID(L0),
// ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)). A chain id names a layer *with* all
// its parents, so one unpacked directory per chain id can be shared by every image that stacks
// the same layers in the same order.
#pragma once

#include <vector>

#include "cairn/common/digest.h"

namespace cairn::layer {

//! The chain id of `diff_id` stacked on `parent` (empty parent: the bottom layer).
Digest chainId(const Digest& parent, const Digest& diff_id);

//! Chain ids of every prefix: result[i] = ChainID(L0..Li). Empty input gives empty output.
std::vector<Digest> chainIds(const std::vector<Digest>& diff_ids);

}  // namespace cairn::layer
