# dockerfile_parse_fuzz: arbitrary bytes through the Dockerfile parser, the typed instruction
# layer, shell-word expansion and the .dockerignore matcher. Seeds in
# fuzz/seeds/dockerfile_parse/, dictionary in fuzz/dockerfile.dict.
cairn_fuzzer(dockerfile_parse_fuzz
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/dockerfile_parse_fuzz.cc
  DEPS cairn::dockerfile)
