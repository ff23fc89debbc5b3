# oci_manifest_fuzz: arbitrary bytes through the OCI / Docker schema2 manifest, index
# (manifest list) and image config parsers; aborts if an accepted document does not survive
# parse → serialize → parse unchanged. Seeds in fuzz/seeds/oci_manifest/, dictionary in
# fuzz/oci_manifest.dict.
cairn_fuzzer(oci_manifest_fuzz
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/oci_manifest_fuzz.cc
  DEPS cairn::oci)
