# rt_add_case_tests(<target> <suite> <source>...)
# Registers every RT_TEST(name) found in the sources as its own CTest entry
# "<suite>.<name>", run as "<target> <name>". Exit code 77 means skipped.
function(rt_add_case_tests target suite)
  foreach(src ${ARGN})
    file(STRINGS ${src} lines REGEX "^RT_TEST\\([A-Za-z0-9_]+\\)")
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${src})
    foreach(line ${lines})
      string(REGEX REPLACE "^RT_TEST\\(([A-Za-z0-9_]+)\\).*" "\\1" name "${line}")
      add_test(NAME ${suite}.${name} COMMAND ${target} ${name})
      set_tests_properties(${suite}.${name} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120
                           LABELS ${suite})
    endforeach()
  endforeach()
endfunction()

# rt_add_test_suite(<name> SOURCES <src>... LIBS <lib>...)
# Builds tests/unit/<name> with the harness and registers its cases.
function(rt_add_test_suite name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${T_SOURCES} ${PROJECT_SOURCE_DIR}/tests/harness/rt_test.c)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests/harness)
  target_link_libraries(${name} PRIVATE ${T_LIBS})
  rt_add_case_tests(${name} ${name} ${T_SOURCES})
endfunction()
