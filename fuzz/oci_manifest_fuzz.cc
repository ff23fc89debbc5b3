// Arbitrary bytes through every parser of registry- and layout-supplied image JSON: OCI image
// manifests and indexes, Docker schema2 manifests and manifest lists, image configs, and the
// manifest-kind detection a registry GET uses. Beyond "no crash, no sanitizer report", the
// oracle is round-trip stability for accepted input: what we parse, serialise and parse again
// is the same value, and serialising that gives the same canonical bytes (so a digest we
// compute for a re-written manifest or config never depends on how often it was re-written).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cairn/oci/image.h"

using namespace cairn;

namespace {

[[noreturn]] void fail(const char* what, const std::string& first, const std::string& second) {
  std::fprintf(stderr, "ROUND TRIP: %s\n first:  %.2000s\n second: %.2000s\n", what, first.c_str(),
               second.c_str());
  std::abort();
}

// parse(bytes) accepted as `value`: serialise, parse again, compare.
template <typename T, typename Parse>
void checkRoundTrip(const char* what, const T& value, Parse parse) {
  std::string once = oci::serialize(value);
  auto again = parse(once);
  if (!again.ok()) fail(what, once, "rejected: " + again.status().message());
  std::string twice = oci::serialize(*again);
  if (!(*again == value)) fail(what, once, twice);
  if (twice != once) fail(what, once, twice);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);

  if (auto m = oci::parseManifest(bytes); m.ok()) {
    checkRoundTrip("manifest", *m, [](std::string_view b) { return oci::parseManifest(b); });
    // What we write for a manifest is classified as one, even without a Content-Type (an OCI
    // layout's blobs have none).
    auto kind = oci::detectManifestKind(oci::serialize(*m));
    if (!kind.ok() || *kind != oci::ManifestKind::kManifest) {
      fail("manifest kind", oci::serialize(*m), kind.ok() ? "index" : kind.status().message());
    }
  }

  if (auto i = oci::parseIndex(bytes); i.ok()) {
    checkRoundTrip("index", *i, [](std::string_view b) { return oci::parseIndex(b); });
    auto kind = oci::detectManifestKind(oci::serialize(*i));
    if (!kind.ok() || *kind != oci::ManifestKind::kIndex) {
      fail("index kind", oci::serialize(*i), kind.ok() ? "manifest" : kind.status().message());
    }
    // Platform selection on hostile indexes: a descriptor or a NotFound, never a crash.
    (void)oci::selectPlatform(*i, oci::Platform::host());
    auto arm = oci::Platform::parse("linux/arm64/v8");
    if (arm.ok()) (void)oci::selectPlatform(*i, *arm);
  }

  if (auto c = oci::parseImageConfig(bytes); c.ok()) {
    checkRoundTrip("image config", *c, [](std::string_view b) { return oci::parseImageConfig(b); });
    (void)c->platform().str();
  }

  (void)oci::detectManifestKind(bytes);
  (void)oci::detectManifestKind(bytes, "application/vnd.docker.distribution.manifest.v2+json");
  return 0;
}
