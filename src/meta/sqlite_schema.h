// Private to src/meta: the SQLite migrations, in order.
#pragma once

#include <string_view>
#include <vector>

namespace cairn::meta::sqlite {

struct Migration {
  int version;
  std::string_view description;
  std::string_view sql;
};

//! Versions 1, 2, … in order, without gaps.
const std::vector<Migration>& migrations();

}  // namespace cairn::meta::sqlite
