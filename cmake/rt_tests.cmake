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

# rt_add_node_cases(<suite> <file.mjs> [LABEL l] [TIMEOUT s])
# Registers each `defcase("name", …)` of a Node test file (tests/lib/harness.mjs)
# as CTest entry "<suite>.<name>", with RTGW_BIN pointing at the built gateway.
function(rt_add_node_cases suite file)
  cmake_parse_arguments(N "" "LABEL;TIMEOUT" "" ${ARGN})
  if(NOT N_LABEL)
    set(N_LABEL ${suite})
  endif()
  if(NOT N_TIMEOUT)
    set(N_TIMEOUT 120)
  endif()
  find_program(RT_NODE node)
  if(NOT RT_NODE)
    set(RT_NODE node)
  endif()
  file(STRINGS ${file} lines REGEX "^defcase\\(\"[A-Za-z0-9_]+\"")
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${file})
  foreach(line ${lines})
    string(REGEX REPLACE "^defcase\\(\"([A-Za-z0-9_]+)\".*" "\\1" name "${line}")
    add_test(NAME ${suite}.${name} COMMAND ${RT_NODE} ${file} ${name})
    set_tests_properties(${suite}.${name} PROPERTIES
      ENVIRONMENT "RTGW_BIN=$<TARGET_FILE:rtgw>;TOKENTOOL=$<TARGET_FILE:tokentool>"
      SKIP_RETURN_CODE 77 TIMEOUT ${N_TIMEOUT} LABELS ${N_LABEL})
  endforeach()
endfunction()

# rt_add_python_cases(<suite> <file.py> [LABEL l] [TIMEOUT s])
# Registers each unittest method of a Python test file as CTest entry
# "<suite>.<Class>.<method>", run as `python3 <file.py> <Class>.<method>`
# (unittest.main takes test names as arguments). Methods are found by scanning for
# `class <Name>(` and `    def test_<name>(` at line start, in file order.
function(rt_add_python_cases suite file)
  cmake_parse_arguments(P "" "LABEL;TIMEOUT" "" ${ARGN})
  if(NOT P_LABEL)
    set(P_LABEL ${suite})
  endif()
  if(NOT P_TIMEOUT)
    set(P_TIMEOUT 60)
  endif()
  find_program(RT_PYTHON3 python3)
  if(NOT RT_PYTHON3)
    set(RT_PYTHON3 python3)
  endif()
  file(STRINGS ${file} lines REGEX "^(class [A-Za-z0-9_]+\\(|    def test_[a-z0-9_]+\\()")
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${file})
  set(cls "")
  foreach(line ${lines})
    if(line MATCHES "^class ([A-Za-z0-9_]+)\\(")
      set(cls ${CMAKE_MATCH_1})
    elseif(line MATCHES "^    def (test_[a-z0-9_]+)\\(" AND cls)
      set(name ${cls}.${CMAKE_MATCH_1})
      add_test(NAME ${suite}.${name} COMMAND ${RT_PYTHON3} ${file} ${name})
      set_tests_properties(${suite}.${name} PROPERTIES
        ENVIRONMENT "RTGW_BIN=$<TARGET_FILE:rtgw>;PYTHONDONTWRITEBYTECODE=1"
        SKIP_RETURN_CODE 77 TIMEOUT ${P_TIMEOUT} LABELS ${P_LABEL})
    endif()
  endforeach()
endfunction()
