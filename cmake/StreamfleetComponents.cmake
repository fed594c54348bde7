# streamfleet_component(<name> SOURCES ... [PUBLIC deps...] [PRIVATE deps...])
#
# One component library (components/<name>/): target streamfleet_<name>, alias streamfleet::<name>, public
# headers in components/<name>/include/streamfleet/<name>/, included as "streamfleet/<name>/x.h". Headers
# in src/ are the component's own business. Static and position-independent, so an installed component can
# also be linked into a shared library of the SDK user's.
include(GNUInstallDirs)

function(streamfleet_component name)
  cmake_parse_arguments(C "" "" "SOURCES;PUBLIC;PRIVATE" ${ARGN})
  set(target streamfleet_${name})
  add_library(${target} STATIC ${C_SOURCES})
  add_library(streamfleet::${name} ALIAS ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${name} POSITION_INDEPENDENT_CODE ON)
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/include)
    target_include_directories(${target} PUBLIC $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
                                                $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  endif()
  target_link_libraries(${target} PUBLIC ${C_PUBLIC} PRIVATE ${C_PRIVATE})
endfunction()
