// Moved to tests/testing/cairn/testing/busybox_rootfs.h (cairn::testing). These names stay
// only for tests/build/builder_test.cc, which another change is editing; drop this file once it
// includes the shared header.
#pragma once

#include "cairn/testing/busybox_rootfs.h"

namespace cairn::runtime::testing {

using ::cairn::testing::busyboxPath;
using ::cairn::testing::makeBusyboxRootfs;

}  // namespace cairn::runtime::testing
