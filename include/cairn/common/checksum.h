// Checksums in the text form HTTP headers carry them, shared by the S3 endpoint, its object
// store and the SDK's S3 client (all three send or verify x-amz-checksum-crc32).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace cairn {

//! base64 of the big-endian bytes of a CRC-32/IEEE value, as in x-amz-checksum-crc32
//! (crc32("123456789") = 0xCBF43926 → "y/Q5Jg=="). Takes a running crc32() for streamed data.
std::string crc32Base64(std::uint32_t crc);

//! crc32Base64(crc32(data)).
std::string crc32Base64(std::string_view data);

}  // namespace cairn
