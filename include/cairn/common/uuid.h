// RFC 4122 version-4 UUIDs (snapshot and organization ids).
#pragma once

#include <string>
#include <string_view>

namespace cairn {

//! Lowercase "xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx" from a CSPRNG.
std::string uuidV4();
//! Any RFC 4122 UUID text (8-4-4-4-12 hex, either case).
bool isUuid(std::string_view s);
//! What the TS SDK treats as an id (spec §3.2): versions 1–5 with the RFC variant, or nil.
bool isSdkUuid(std::string_view s);

}  // namespace cairn
