# `cmake --install`: the component libraries, their public headers, the generated wire-format headers and
# .proto files, a CMake package (find_package(streamfleet) -> streamfleet::<component>) and a pkg-config
# file. tests/install/run.sh builds a project against an installed copy in CI, and
# tests/install/custom_worker_test.sh builds and runs examples/custom-worker (the C++ task SDK,
# streamfleet::worker) against one.
include(CMakePackageConfigHelpers)

set(STREAMFLEET_INSTALLED_COMPONENTS base redis http observability sql artifacts cache taskqueue chunk_wire chunks live_wire live operations
    daemon worker)
set(STREAMFLEET_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/streamfleet)

# worker_lib (queue-worker/): what streamfleet::worker runs; installed as streamfleet::worker_impl, without
# headers of its own.
set(_targets streamfleet_proto worker_lib)
foreach(c IN LISTS STREAMFLEET_INSTALLED_COMPONENTS)
  list(APPEND _targets streamfleet_${c})
endforeach()
install(TARGETS ${_targets} EXPORT streamfleetTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT streamfleetTargets NAMESPACE streamfleet:: DESTINATION ${STREAMFLEET_CMAKE_DIR})

# Public headers: every components/<name>/include tree (private headers stay in src/).
file(GLOB _include_dirs LIST_DIRECTORIES true ${PROJECT_SOURCE_DIR}/components/*/include)
foreach(dir IN LISTS _include_dirs)
  if(NOT dir MATCHES "/testing/include$")
    install(DIRECTORY ${dir}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  endif()
endforeach()
install(DIRECTORY ${PROJECT_BINARY_DIR}/proto/streamfleet/v1 DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/streamfleet
        FILES_MATCHING PATTERN "*.pb.h")
install(DIRECTORY ${PROJECT_SOURCE_DIR}/proto/streamfleet DESTINATION ${CMAKE_INSTALL_DATADIR}/streamfleet/proto
        FILES_MATCHING PATTERN "*.proto")

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/streamfleetConfig.cmake.in
  ${PROJECT_BINARY_DIR}/streamfleetConfig.cmake INSTALL_DESTINATION ${STREAMFLEET_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/streamfleetConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
# FindSOCI.cmake too: Debian's SOCI ships no CMake package, and the exported targets link SOCI::*.
install(FILES ${PROJECT_BINARY_DIR}/streamfleetConfig.cmake ${PROJECT_BINARY_DIR}/streamfleetConfigVersion.cmake
        ${PROJECT_SOURCE_DIR}/cmake/FindSOCI.cmake DESTINATION ${STREAMFLEET_CMAKE_DIR})

# pkg-config: one module, every component, for builds that do not use CMake. The archives depend on each
# other in this (reverse) order.
set(STREAMFLEET_PC_LIBS "")
foreach(c worker worker_impl daemon operations chunks chunk_wire cache taskqueue artifacts sql observability http redis base)
  string(APPEND STREAMFLEET_PC_LIBS " -lstreamfleet_${c}")
endforeach()
string(APPEND STREAMFLEET_PC_LIBS " -lstreamfleet_proto")
configure_file(${PROJECT_SOURCE_DIR}/cmake/streamfleet.pc.in ${PROJECT_BINARY_DIR}/streamfleet.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/streamfleet.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
