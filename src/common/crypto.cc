#include "cairn/common/crypto.h"

// libcrypto is loaded on first use (SharedLibrary), not linked: mapping and relocating it is
// ~0.9 ms of every start of `cairn`, paid by commands that never hash (`cairn version`, `cairn
// run` of a one-layer image). Only OpenSSL's headers are needed at build time.
//
// SHA-256 goes through the low-level SHA256_* functions, which 3.0 deprecates in favour of EVP.
// The EVP route fetches the algorithm from a provider: the first digest of a process
// initializes the library context, reads openssl.cnf and loads the default provider, 0.4–0.75
// ms here (docs/benchmarks.md), which every short CLI process pays. SHA256_* run the same
// assembly (SHA-NI, AVX2) with no such set-up, and OpenSSL 3.x still ships them. MD5 and HMAC,
// needed only by the S3 and Daytona paths, stay on EVP.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <limits>

#include "cairn/common/encoding.h"
#include "cairn/common/shared_library.h"

namespace cairn {
namespace {

// The OpenSSL functions used here, from libcrypto's ABI 3 (Debian's libssl3).
#define CAIRN_CRYPTO_FUNCTIONS(X) \
  X(SHA256_Init)                  \
  X(SHA256_Update)                \
  X(SHA256_Final)                 \
  X(EVP_MD_CTX_new)               \
  X(EVP_MD_CTX_free)              \
  X(EVP_DigestInit_ex)            \
  X(EVP_DigestUpdate)             \
  X(EVP_DigestFinal_ex)           \
  X(EVP_md5)                      \
  X(EVP_sha256)                   \
  X(HMAC)                         \
  X(CRYPTO_memcmp)                \
  X(RAND_bytes)

// Each field has the type of OpenSSL's own declaration, so the headers and the table agree.
struct CryptoApi {
#define CAIRN_CRYPTO_FIELD(name) decltype(&::name) name = nullptr;
  CAIRN_CRYPTO_FUNCTIONS(CAIRN_CRYPTO_FIELD)
#undef CAIRN_CRYPTO_FIELD
};

// The functions here cannot report a Status (a hash is a value), and libcrypto is part of every
// Debian system: a missing or foreign copy ends the process with the reason, as the dynamic
// linker would have at start had it been linked.
const CryptoApi& crypto() {
  // Loaded once (a function-local static: initialized once, thread-safely); the library stays
  // loaded and the table is never destroyed: contexts live until exit.
  static const CryptoApi* const api = [] {
    Result<std::unique_ptr<CryptoApi>> loaded = []() -> Result<std::unique_ptr<CryptoApi>> {
      CAIRN_ASSIGN_OR_RETURN(SharedLibrary lib, SharedLibrary::open("libcrypto.so.3", "libssl3"));
      auto table = std::make_unique<CryptoApi>();
#define CAIRN_CRYPTO_RESOLVE(name) \
  CAIRN_RETURN_IF_ERROR(lib.resolve(#name, table->name, ": is it really OpenSSL 3?"));
      CAIRN_CRYPTO_FUNCTIONS(CAIRN_CRYPTO_RESOLVE)
#undef CAIRN_CRYPTO_RESOLVE
      return table;
    }();
    if (!loaded.ok()) {
      std::fprintf(stderr, "cairn: %s\n", loaded.status().toString().c_str());
      std::abort();
    }
    return loaded->release();
  }();
  return *api;
}

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { crypto().EVP_MD_CTX_free(ctx); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

// An OpenSSL failure here means memory exhaustion or a broken library: not recoverable.
void checkOpenSsl(int rc) {
  if (rc != 1) std::abort();
}

MdCtx newDigest(const EVP_MD* md) {
  MdCtx ctx(crypto().EVP_MD_CTX_new());
  if (!ctx) std::abort();
  checkOpenSsl(crypto().EVP_DigestInit_ex(ctx.get(), md, nullptr));
  return ctx;
}

template <std::size_t N>
std::array<std::uint8_t, N> finishDigest(EVP_MD_CTX* ctx) {
  std::array<std::uint8_t, N> out{};
  unsigned int len = 0;
  checkOpenSsl(crypto().EVP_DigestFinal_ex(ctx, out.data(), &len));
  if (len != N) std::abort();
  return out;
}

}  // namespace

struct Sha256::Impl {
  SHA256_CTX ctx;
  Impl() { checkOpenSsl(crypto().SHA256_Init(&ctx)); }
};
Sha256::Sha256() : impl_(std::make_unique<Impl>()) {}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;
void Sha256::update(const void* data, std::size_t size) {
  checkOpenSsl(crypto().SHA256_Update(&impl_->ctx, data, size));
}
Sha256Bytes Sha256::finish() {
  Sha256Bytes out{};
  checkOpenSsl(crypto().SHA256_Final(out.data(), &impl_->ctx));
  return out;
}
std::string Sha256::finishHex() {
  return hexEncode(finish());
}

struct Md5::Impl {
  MdCtx ctx = newDigest(crypto().EVP_md5());
};
Md5::Md5() : impl_(std::make_unique<Impl>()) {}
Md5::~Md5() = default;
Md5::Md5(Md5&&) noexcept = default;
Md5& Md5::operator=(Md5&&) noexcept = default;
void Md5::update(const void* data, std::size_t size) {
  checkOpenSsl(crypto().EVP_DigestUpdate(impl_->ctx.get(), data, size));
}
Md5Bytes Md5::finish() {
  return finishDigest<16>(impl_->ctx.get());
}
std::string Md5::finishHex() {
  return hexEncode(finish());
}

Sha256Bytes sha256(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.finish();
}
std::string sha256Hex(std::string_view data) {
  return hexEncode(sha256(data));
}
Md5Bytes md5(std::string_view data) {
  Md5 h;
  h.update(data);
  return h.finish();
}
std::string md5Hex(std::string_view data) {
  return hexEncode(md5(data));
}

Sha256Bytes hmacSha256(std::string_view key, std::string_view data) {
  Sha256Bytes out{};
  unsigned int len = 0;
  if (key.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) std::abort();
  if (crypto().HMAC(crypto().EVP_sha256(), key.data(), static_cast<int>(key.size()),
                    reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(),
                    &len) == nullptr ||
      len != out.size()) {
    std::abort();
  }
  return out;
}

bool constantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return crypto().CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string randomBytes(std::size_t n) {
  std::string out(n, '\0');
  if (n > static_cast<std::size_t>(std::numeric_limits<int>::max())) std::abort();
  checkOpenSsl(
      crypto().RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)));
  return out;
}

std::uint32_t crc32(std::string_view data, std::uint32_t previous) {
  uLong crc = previous;
  const auto* p = reinterpret_cast<const Bytef*>(data.data());
  std::size_t left = data.size();
  while (left > 0) {
    uInt chunk = left > (1u << 30) ? (1u << 30) : static_cast<uInt>(left);
    crc = ::crc32(crc, p, chunk);
    p += chunk;
    left -= chunk;
  }
  return static_cast<std::uint32_t>(crc);
}

}  // namespace cairn
