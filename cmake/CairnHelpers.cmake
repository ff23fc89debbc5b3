# Warnings and sanitizers apply to Cairn's own targets only, never to third-party code.
set(CAIRN_WARNINGS -Wall -Wextra -Wpedantic -Wnon-virtual-dtor
    -Wold-style-cast -Wcast-align -Wunused -Woverloaded-virtual
    -Wimplicit-fallthrough)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  list(APPEND CAIRN_WARNINGS -Wshadow=local -Wno-maybe-uninitialized)
else()
  list(APPEND CAIRN_WARNINGS -Wshadow-uncaptured-local)
endif()
if(CAIRN_WERROR)
  list(APPEND CAIRN_WARNINGS -Werror)
endif()

if(CAIRN_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
if(CAIRN_FUZZ)
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

# cairn_library(<area> SOURCES ... [DEPS ...] [PRIVATE_DEPS ...])
# Defines target cairn_<area> with alias cairn::<area>, public headers under include/.
function(cairn_library area)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(cairn_${area} ${ARG_SOURCES})
  add_library(cairn::${area} ALIAS cairn_${area})
  target_include_directories(cairn_${area} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:include>)
  target_compile_options(cairn_${area} PRIVATE ${CAIRN_WARNINGS})
  target_link_libraries(cairn_${area} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  set_target_properties(cairn_${area} PROPERTIES OUTPUT_NAME cairn_${area})
endfunction()

# cairn_test(<name> SOURCES ... [DEPS ...] [LABELS ...])
# A GoogleTest binary whose cases are registered with CTest one by one. LABELS defaults to
# "unit"; tests that need root, peers or the network carry "integration".
function(cairn_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_compile_options(${name} PRIVATE ${CAIRN_WARNINGS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} cairn::testing GTest::gmock GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE
    CAIRN_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    CAIRN_SHARED_DIR="${PROJECT_SOURCE_DIR}/../shared"
    CAIRN_BINARY_DIR="${PROJECT_BINARY_DIR}")
  gtest_discover_tests(${name}
    DISCOVERY_TIMEOUT 60
    PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT})
endfunction()
