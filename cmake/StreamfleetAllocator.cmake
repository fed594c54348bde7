# streamfleet_use_allocator(<executable>)
#
# Links jemalloc into an executable. Used for the compactor and the benchmarks that run compactors in-process:
# the compactor spends about a third of its CPU in glibc malloc/free (reply trees, envelopes, list elements:
# many small short-lived blocks from several threads) and runs 12-15% faster end to end with jemalloc
# (docs/performance.md, "Allocator"). Not ingest: there it gained 3-11% and took RSS after load from 31 to
# 57 MB, past its 50 MB target (a thread cache per handler thread); not the queue-worker: no gain measured,
# 2 MB more. Never the component libraries: an SDK user's program keeps the allocator it chose.
#
# Off under the sanitizers and the fuzz build: AddressSanitizer replaces malloc itself, and two allocators
# in one process would hide exactly the bugs that build is for.
option(STREAMFLEET_JEMALLOC "Link jemalloc into the compactor and its benchmarks" ON)

if(STREAMFLEET_JEMALLOC AND NOT STREAMFLEET_SANITIZE AND NOT STREAMFLEET_FUZZ)
  pkg_check_modules(JEMALLOC REQUIRED IMPORTED_TARGET jemalloc>=5)
  set(STREAMFLEET_USE_JEMALLOC ON)
else()
  set(STREAMFLEET_USE_JEMALLOC OFF)
endif()
message(STATUS "streamfleet: jemalloc in the compactor: ${STREAMFLEET_USE_JEMALLOC}")

function(streamfleet_use_allocator target)
  if(STREAMFLEET_USE_JEMALLOC)
    # --no-as-needed: nothing names a jemalloc symbol, so an as-needed link would drop the library, and with
    # it the malloc it is linked for.
    target_link_libraries(${target} PRIVATE -Wl,--no-as-needed PkgConfig::JEMALLOC -Wl,--as-needed)
  endif()
endfunction()
