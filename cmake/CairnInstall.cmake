# `cmake --install`: the public headers, the static libraries the SDK links (sdk → image →
# dockerfile → common), the `cairn` binary (installed by src/cli), a CMake package
# (`find_package(cairn)` → `cairn::sdk`, `cairn::image`, …) and a pkg-config file `cairn.pc`.
# Static libraries carry their private dependencies (zlib, toml++) into the consumer's link, so
# cairnConfig.cmake finds them again with find_dependency. libcurl and libcrypto are not among
# them: they are loaded at run time (cairn/common/shared_library.h).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(CAIRN_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/cairn")
set(_cairn_sdk_targets)
foreach(_lib common dockerfile image sdk)
  if(TARGET cairn_${_lib})
    list(APPEND _cairn_sdk_targets cairn_${_lib})
    # Consumers spell them cairn::sdk, cairn::image, … as inside the build tree.
    set_target_properties(cairn_${_lib} PROPERTIES EXPORT_NAME ${_lib})
  endif()
endforeach()

if(_cairn_sdk_targets)
  install(TARGETS ${_cairn_sdk_targets}
    EXPORT cairnTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  install(EXPORT cairnTargets
    NAMESPACE cairn::
    DESTINATION ${CAIRN_INSTALL_CMAKEDIR})
endif()

# All public headers, including the umbrella <cairn/cairn.h>.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/cairn
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.h")

configure_package_config_file(
  ${PROJECT_SOURCE_DIR}/cmake/cairnConfig.cmake.in
  ${PROJECT_BINARY_DIR}/cairnConfig.cmake
  INSTALL_DESTINATION ${CAIRN_INSTALL_CMAKEDIR})
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/cairnConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${PROJECT_BINARY_DIR}/cairnConfig.cmake
  ${PROJECT_BINARY_DIR}/cairnConfigVersion.cmake
  DESTINATION ${CAIRN_INSTALL_CMAKEDIR})

# pkg-config: `pkg-config --cflags --libs cairn`. The prefix is found from the .pc file's own
# place (${pcfiledir}), so `cmake --install --prefix DIR` gives a working file too.
file(RELATIVE_PATH CAIRN_PC_TO_PREFIX "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
string(REGEX REPLACE "/$" "" CAIRN_PC_TO_PREFIX "${CAIRN_PC_TO_PREFIX}")
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(CAIRN_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  set(CAIRN_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(CAIRN_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(CAIRN_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cairn.pc.in ${PROJECT_BINARY_DIR}/cairn.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/cairn.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
