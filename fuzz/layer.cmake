# layer_apply_fuzz: arbitrary bytes as a (compressed) layer tar into applyLayerTar; aborts if
# anything appears outside the target. Seeds in fuzz/seeds/layer_apply/ (scripts/test strips "_fuzz").
cairn_fuzzer(layer_apply_fuzz
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/layer_apply_fuzz.cc
  DEPS cairn::layer)
