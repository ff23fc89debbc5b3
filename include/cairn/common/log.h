// Logging is spdlog. Call initLogging once from main(); libraries log through spdlog's default
// logger (spdlog::info(...)) and never configure it themselves.
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace cairn {

//! level: "trace", "debug", "info", "warn", "error", "off". Logs go to stderr.
void initLogging(std::string_view level = "info");

}  // namespace cairn
