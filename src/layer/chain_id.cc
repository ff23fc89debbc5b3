#include "cairn/layer/chain_id.h"

namespace cairn::layer {

Digest chainId(const Digest& parent, const Digest& diff_id) {
  if (parent.empty()) return diff_id;
  return Digest::ofBytes(parent.str() + " " + diff_id.str());
}

std::vector<Digest> chainIds(const std::vector<Digest>& diff_ids) {
  std::vector<Digest> out;
  out.reserve(diff_ids.size());
  Digest parent;
  for (const Digest& d : diff_ids) {
    parent = chainId(parent, d);
    out.push_back(parent);
  }
  return out;
}

}  // namespace cairn::layer
