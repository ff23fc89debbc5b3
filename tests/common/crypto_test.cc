#include "cairn/common/crypto.h"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "cairn/common/encoding.h"

namespace cairn {
namespace {

bool cryptoMapped() {
  void* handle = ::dlopen("libcrypto.so.3", RTLD_NOLOAD | RTLD_LAZY);
  if (handle == nullptr) return false;
  ::dlclose(handle);
  return true;
}

// Recorded during static initialization, before any test hashed: linking cairn::common does
// not map libcrypto; the first hash does.
const bool kCryptoMappedAtStart = cryptoMapped();

TEST(CryptoTest, LibcryptoIsLoadedByTheFirstHashNotAtStart) {
  EXPECT_FALSE(kCryptoMappedAtStart);
  EXPECT_EQ(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_TRUE(cryptoMapped());
}

TEST(CryptoTest, Sha256KnownVectors) {
  EXPECT_EQ(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

// FIPS 180-2's long vectors: a two-block message and a million 'a's fed in odd-sized pieces,
// through a moved-to hasher (the state moves with it).
TEST(CryptoTest, Sha256LongVectorsAndMove) {
  EXPECT_EQ(sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  Sha256 first;
  const std::string chunk(999, 'a');
  std::size_t fed = 0;
  for (; fed + chunk.size() <= 500000; fed += chunk.size())
    first.update(chunk);
  Sha256 moved = std::move(first);
  for (; fed < 1000000; fed += std::min(chunk.size(), 1000000 - fed))
    moved.update(std::string_view(chunk).substr(0, std::min(chunk.size(), 1000000 - fed)));
  EXPECT_EQ(moved.finishHex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(CryptoTest, Sha256StreamingEqualsOneShot) {
  std::string data(100000, 'x');
  for (std::size_t i = 0; i < data.size(); ++i)
    data[i] = static_cast<char>(i * 31);
  Sha256 h;
  for (std::size_t i = 0; i < data.size(); i += 777)
    h.update(std::string_view(data).substr(i, 777));
  EXPECT_EQ(h.finishHex(), sha256Hex(data));
}

TEST(CryptoTest, Md5KnownVectors) {
  EXPECT_EQ(md5Hex(""), "d41d8cd98f00b204e9800998ecf8427e");
  // Daytona context hash vector (spec §2.5): "requirements.txt" + "numpy\n".
  EXPECT_EQ(md5Hex("requirements.txtnumpy\n"), "ce59da7c62f89381d47e17c745ff7194");
}

TEST(CryptoTest, HmacSha256Rfc4231Case2) {
  EXPECT_EQ(hexEncode(hmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(CryptoTest, Crc32MatchesS3Vector) {
  // spec §2.2: "123456789" → y/Q5Jg== (big-endian bytes, base64).
  std::uint32_t c = crc32("123456789");
  EXPECT_EQ(c, 0xCBF43926u);
  std::string be = {static_cast<char>(c >> 24), static_cast<char>(c >> 16),
                    static_cast<char>(c >> 8), static_cast<char>(c)};
  EXPECT_EQ(base64Encode(be), "y/Q5Jg==");
  EXPECT_EQ(crc32("6789", crc32("12345")), c);
}

TEST(CryptoTest, ConstantTimeEquals) {
  EXPECT_TRUE(constantTimeEquals("abc", "abc"));
  EXPECT_FALSE(constantTimeEquals("abc", "abd"));
  EXPECT_FALSE(constantTimeEquals("abc", "ab"));
}

TEST(CryptoTest, RandomBytesDiffer) {
  EXPECT_EQ(randomBytes(32).size(), 32u);
  EXPECT_NE(randomBytes(32), randomBytes(32));
}

}  // namespace
}  // namespace cairn
