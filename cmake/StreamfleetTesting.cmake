# streamfleet_test(<name> sources...): one GoogleTest binary and one ctest entry. Each suite starts its own
# redis-server (streamfleet::testing), shared by its cases. The project root is on the include path of tests
# only, for the process libraries' headers ("compactor/compactor_service.h") and tests/support.
include(GoogleTest)

function(streamfleet_test name)
  add_executable(${name} ${ARGN})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/tests)
  target_link_libraries(${name} PRIVATE test_support GTest::gtest_main)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES TIMEOUT 600)
endfunction()
