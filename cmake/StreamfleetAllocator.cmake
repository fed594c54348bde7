# streamfleet_use_allocator(<executable>)
#
# Links jemalloc into a process binary. Measured (docs/performance.md, "Allocator"): the compactor spends about
# a third of its CPU in glibc malloc/free (reply trees, envelopes, list elements: many small short-lived
# blocks from several threads), and jemalloc's thread caches take that share down; the processes' throughput
# rises and nothing else changes. Only executables get it, never the component libraries: an SDK user's
# program keeps the allocator it chose.
#
# Off under the sanitizers and the fuzz build: AddressSanitizer replaces malloc itself, and two allocators
# in one process would hide exactly the bugs that build is for.
option(STREAMFLEET_JEMALLOC "Link jemalloc into the process binaries and benchmarks" ON)

if(STREAMFLEET_JEMALLOC AND NOT STREAMFLEET_SANITIZE AND NOT STREAMFLEET_FUZZ)
  pkg_check_modules(JEMALLOC REQUIRED IMPORTED_TARGET jemalloc>=5)
  set(STREAMFLEET_USE_JEMALLOC ON)
else()
  set(STREAMFLEET_USE_JEMALLOC OFF)
endif()
message(STATUS "streamfleet: jemalloc in the process binaries: ${STREAMFLEET_USE_JEMALLOC}")

function(streamfleet_use_allocator target)
  if(STREAMFLEET_USE_JEMALLOC)
    # --no-as-needed: nothing names a jemalloc symbol, so an as-needed link would drop the library, and with
    # it the malloc it is linked for.
    target_link_libraries(${target} PRIVATE -Wl,--no-as-needed PkgConfig::JEMALLOC -Wl,--as-needed)
  endif()
endfunction()
