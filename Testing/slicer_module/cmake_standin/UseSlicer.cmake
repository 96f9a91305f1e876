# Stand-in UseSlicer.cmake (see SlicerConfig.cmake beside it): PACKAGING CHECKS ONLY.
#
# The macros below take the same arguments as Slicer 5.8's and CTK's, check that every file
# they are given exists, copy the files into the build tree (the folders Slicer's macros
# would use) and install that folder as CTK's macro does.  Unlike the real macros they do
# not byte-compile the Python files, do not add CTest tests and do not accept absolute or
# generated file names; they are stricter in a few places (an unknown keyword, a copy
# destination outside this build tree, a module without its NAME.py) to catch packaging
# mistakes early.  Every call is recorded in ${SLICER_STANDIN_CALLS}, one line per call:
# the macro name, then KEY=VALUE fields separated by tabs (lists separated by ";").

if(NOT DEFINED EXTENSION_NAME)
  set(EXTENSION_NAME ${PROJECT_NAME})
endif()
if("${EXTENSION_NAME}" MATCHES "^$|^Slicer$|^Project$")
  message(FATAL_ERROR "stand-in UseSlicer: EXTENSION_NAME is '${EXTENSION_NAME}'; call project(<ExtensionName>) "
                      "before include(\${Slicer_USE_FILE})")
endif()

option(BUILD_TESTING "Configure the module's tests (recorded only by this stand-in)" ON)

function(_slicer_standin_record macro_name)
  string(REPLACE ";" "\t" fields "${ARGN}")
  file(APPEND "${SLICER_STANDIN_CALLS}" "${macro_name}\t${fields}\n")
endfunction()

# ctkMacroCompilePythonScript (CTK's CMake/ctkMacroCompilePythonScript.cmake): copy SCRIPTS
# (".py" appended when missing) and RESOURCES from SOURCE_DIR (default: the current source
# folder) to DESTINATION_DIR, keeping their relative paths, and install DESTINATION_DIR
# (its content with NO_INSTALL_SUBDIR) into INSTALL_DIR.
function(ctkMacroCompilePythonScript)
  cmake_parse_arguments(MY "NO_INSTALL_SUBDIR;GLOBAL_TARGET"
    "TARGET_NAME;SOURCE_DIR;DESTINATION_DIR;INSTALL_DIR" "SCRIPTS;RESOURCES" ${ARGN})
  if(MY_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "ctkMacroCompilePythonScript(${MY_TARGET_NAME}): unknown arguments '${MY_UNPARSED_ARGUMENTS}'")
  endif()
  foreach(varname TARGET_NAME SCRIPTS DESTINATION_DIR INSTALL_DIR)
    if(NOT DEFINED MY_${varname})
      message(FATAL_ERROR "ctkMacroCompilePythonScript(${MY_TARGET_NAME}): ${varname} is mandatory")
    endif()
  endforeach()
  if(NOT DEFINED MY_SOURCE_DIR)
    set(MY_SOURCE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
  endif()
  get_filename_component(MY_SOURCE_DIR ${MY_SOURCE_DIR} REALPATH)
  get_filename_component(MY_DESTINATION_DIR ${MY_DESTINATION_DIR} ABSOLUTE)
  file(RELATIVE_PATH dest_in_build "${CMAKE_BINARY_DIR}" "${MY_DESTINATION_DIR}")
  if(dest_in_build MATCHES "^\\.\\." OR IS_ABSOLUTE "${dest_in_build}")
    message(FATAL_ERROR "ctkMacroCompilePythonScript(${MY_TARGET_NAME}): DESTINATION_DIR ${MY_DESTINATION_DIR} "
                        "is outside this extension's build tree ${CMAKE_BINARY_DIR} (use \${CMAKE_BINARY_DIR}, "
                        "not \${Slicer_BINARY_DIR}, which is Slicer's own build tree)")
  endif()
  if(IS_ABSOLUTE "${MY_INSTALL_DIR}")
    message(FATAL_ERROR "ctkMacroCompilePythonScript(${MY_TARGET_NAME}): INSTALL_DIR must be relative to the "
                        "install prefix, got ${MY_INSTALL_DIR}")
  endif()

  set(scripts)
  foreach(file ${MY_SCRIPTS})
    get_filename_component(file_ext ${file} EXT)
    if(NOT "${file_ext}" MATCHES "py")
      set(file "${file}.py")
    endif()
    list(APPEND scripts ${file})
  endforeach()
  set(copied)
  foreach(file IN LISTS scripts MY_RESOURCES)
    if(IS_ABSOLUTE "${file}")
      message(FATAL_ERROR "ctkMacroCompilePythonScript(${MY_TARGET_NAME}): '${file}': the stand-in takes only "
                          "paths relative to SOURCE_DIR ${MY_SOURCE_DIR}")
    endif()
    set(src "${MY_SOURCE_DIR}/${file}")
    if(NOT EXISTS "${src}" OR IS_DIRECTORY "${src}")
      message(FATAL_ERROR "ctkMacroCompilePythonScript(${MY_TARGET_NAME}): listed file '${file}' does not exist "
                          "(looked for ${src})")
    endif()
    set(tgt "${MY_DESTINATION_DIR}/${file}")
    add_custom_command(OUTPUT "${tgt}"
      COMMAND ${CMAKE_COMMAND} -E make_directory "${MY_DESTINATION_DIR}"
      COMMAND ${CMAKE_COMMAND} -E copy "${src}" "${tgt}"
      DEPENDS "${src}"
      COMMENT "Copying python file: ${file}")
    list(APPEND copied "${tgt}")
  endforeach()
  add_custom_target(Copy${MY_TARGET_NAME}PythonFiles ALL DEPENDS ${copied})

  set(directory_to_install "${MY_DESTINATION_DIR}")
  if(MY_NO_INSTALL_SUBDIR)
    set(directory_to_install "${MY_DESTINATION_DIR}/")
  endif()
  install(DIRECTORY "${directory_to_install}"
    DESTINATION "${MY_INSTALL_DIR}" COMPONENT RuntimeLibraries
    USE_SOURCE_PERMISSIONS)

  _slicer_standin_record(ctkMacroCompilePythonScript
    "TARGET_NAME=${MY_TARGET_NAME}" "SOURCE_DIR=${MY_SOURCE_DIR}" "DESTINATION_DIR=${dest_in_build}"
    "INSTALL_DIR=${MY_INSTALL_DIR}" "NO_INSTALL_SUBDIR=${MY_NO_INSTALL_SUBDIR}")
endfunction()

# slicerMacroBuildScriptedModule (Slicer's CMake/SlicerMacroBuildScriptedModule.cmake): every
# SCRIPTS / RESOURCES entry must exist (NAME or NAME.py); the files go to
# <build>/${Slicer_QTSCRIPTEDMODULES_LIB_DIR} and are installed into
# ${Slicer_INSTALL_QTSCRIPTEDMODULES_LIB_DIR}.
function(slicerMacroBuildScriptedModule)
  cmake_parse_arguments(MY_SLICER "WITH_GENERIC_TESTS;WITH_SUBDIR;VERBOSE" "NAME" "SCRIPTS;RESOURCES" ${ARGN})
  if(MY_SLICER_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "Unknown keywords given to slicerMacroBuildScriptedModule(): \"${MY_SLICER_UNPARSED_ARGUMENTS}\"")
  endif()
  if(NOT DEFINED MY_SLICER_NAME)
    message(FATAL_ERROR "NAME is mandatory")
  endif()
  foreach(var SCRIPTS RESOURCES)
    foreach(value ${MY_SLICER_${var}})
      set(value_absolute ${CMAKE_CURRENT_SOURCE_DIR}/${value})
      if(NOT EXISTS ${value_absolute} AND NOT EXISTS ${value_absolute}.py)
        message(FATAL_ERROR "slicerMacroBuildScriptedModule(${var}) given nonexistent file or directory '${value}'")
      endif()
    endforeach()
  endforeach()
  if(NOT "${MY_SLICER_NAME}.py" IN_LIST MY_SLICER_SCRIPTS AND NOT "${MY_SLICER_NAME}" IN_LIST MY_SLICER_SCRIPTS)
    message(FATAL_ERROR "slicerMacroBuildScriptedModule(NAME ${MY_SLICER_NAME}): SCRIPTS must list ${MY_SLICER_NAME}.py "
                        "(Slicer loads the module from the file named after it)")
  endif()
  set(no_install_subdir NO_INSTALL_SUBDIR)
  set(destination_subdir "")
  if(MY_SLICER_WITH_SUBDIR)
    get_filename_component(destination_subdir ${CMAKE_CURRENT_SOURCE_DIR} NAME)
    set(destination_subdir "/${destination_subdir}")
    set(no_install_subdir "")
  endif()
  ctkMacroCompilePythonScript(
    TARGET_NAME ${MY_SLICER_NAME}
    SCRIPTS ${MY_SLICER_SCRIPTS}
    RESOURCES ${MY_SLICER_RESOURCES}
    DESTINATION_DIR ${CMAKE_BINARY_DIR}/${Slicer_QTSCRIPTEDMODULES_LIB_DIR}${destination_subdir}
    INSTALL_DIR ${Slicer_INSTALL_QTSCRIPTEDMODULES_LIB_DIR}
    ${no_install_subdir}
    )
  set(generic_tests OFF)
  if(BUILD_TESTING AND MY_SLICER_WITH_GENERIC_TESTS)
    set(generic_tests ON)
  endif()
  _slicer_standin_record(slicerMacroBuildScriptedModule "NAME=${MY_SLICER_NAME}" "GENERIC_TESTS=${generic_tests}")
endfunction()

# slicer_add_python_unittest (Slicer's CMake/SlicerMacroPythonTesting.cmake): the real macro
# adds a CTest test running the script's unittest classes inside Slicer; the stand-in checks
# that the script exists and records the call.
function(slicer_add_python_unittest)
  cmake_parse_arguments(MY "" "TESTNAME_PREFIX;SCRIPT" "SLICER_ARGS" ${ARGN})
  if(NOT DEFINED MY_SCRIPT)
    message(FATAL_ERROR "slicer_add_python_unittest: SCRIPT is mandatory")
  endif()
  set(script ${MY_SCRIPT})
  if(NOT IS_ABSOLUTE ${script})
    set(script ${CMAKE_CURRENT_SOURCE_DIR}/${script})
  endif()
  if(NOT EXISTS ${script})
    message(FATAL_ERROR "slicer_add_python_unittest: SCRIPT ${script} does not exist")
  endif()
  get_filename_component(test_name ${script} NAME_WE)
  _slicer_standin_record(slicer_add_python_unittest "SCRIPT=${script}" "TEST=py_${MY_TESTNAME_PREFIX}${test_name}")
endfunction()
