# Debian 12's libsoci-dev 4.0.3 ships no SOCIConfig.cmake / soci.pc. This module defines the same
# imported targets upstream's config does: SOCI::soci_core, SOCI::soci_sqlite3, SOCI::soci_postgresql.
find_path(SOCI_INCLUDE_DIR soci/soci.h)
find_library(SOCI_CORE_LIBRARY NAMES soci_core)
find_package(Boost 1.74 REQUIRED)  # soci-config.h defines SOCI_HAVE_BOOST -> headers include boost/fusion
foreach(_c IN LISTS SOCI_FIND_COMPONENTS)
  find_library(SOCI_${_c}_LIBRARY NAMES soci_${_c})
  if(SOCI_${_c}_LIBRARY)
    set(SOCI_${_c}_FOUND TRUE)
  endif()
endforeach()
if(SOCI_INCLUDE_DIR AND EXISTS "${SOCI_INCLUDE_DIR}/soci/version.h")
  file(STRINGS "${SOCI_INCLUDE_DIR}/soci/version.h" _v REGEX "#define SOCI_LIB_VERSION \"")
  string(REGEX REPLACE ".*\"([0-9_]+)\".*" "\\1" SOCI_VERSION "${_v}")
  string(REPLACE "_" "." SOCI_VERSION "${SOCI_VERSION}")
endif()
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(SOCI REQUIRED_VARS SOCI_INCLUDE_DIR SOCI_CORE_LIBRARY
                                  VERSION_VAR SOCI_VERSION HANDLE_COMPONENTS)
if(SOCI_FOUND AND NOT TARGET SOCI::soci_core)
  add_library(SOCI::soci_core UNKNOWN IMPORTED)
  set_target_properties(SOCI::soci_core PROPERTIES IMPORTED_LOCATION "${SOCI_CORE_LIBRARY}"
                        INTERFACE_INCLUDE_DIRECTORIES "${SOCI_INCLUDE_DIR}"
                        INTERFACE_LINK_LIBRARIES "Boost::headers;${CMAKE_DL_LIBS}")
  foreach(_c IN LISTS SOCI_FIND_COMPONENTS)
    if(SOCI_${_c}_FOUND)
      add_library(SOCI::soci_${_c} UNKNOWN IMPORTED)
      set_target_properties(SOCI::soci_${_c} PROPERTIES IMPORTED_LOCATION "${SOCI_${_c}_LIBRARY}"
                            INTERFACE_LINK_LIBRARIES SOCI::soci_core)
    endif()
  endforeach()
endif()
