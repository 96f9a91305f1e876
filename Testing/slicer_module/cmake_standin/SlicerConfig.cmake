# Stand-in SlicerConfig.cmake for Testing/slicer_module/test_packaging.py -- PACKAGING CHECKS ONLY.
#
# This is not Slicer: it stands in for the few CMake variables and macros that the
# extension's CMakeLists.txt files use (find_package(Slicer), Slicer_USE_FILE,
# slicerMacroBuildScriptedModule, ctkMacroCompilePythonScript, slicer_add_python_unittest,
# Slicer_EXTENSION_GENERATE_CONFIG, Slicer_EXTENSION_CPACK).  The macros check that every
# listed file exists, copy the files into the build tree and install them where Slicer's
# macros would (the same folder layout), and record each call in
# ${CMAKE_BINARY_DIR}/slicer_standin_calls.txt.  Nothing is byte-compiled, no test is
# registered with CTest, no package is made.  It is not a stand-in for Slicer's Python,
# MRML, Qt or CTK: the Python code is tested against the real slicer-core wheel elsewhere.
#
# Use: cmake -S <repo> -B <build> -DSlicer_DIR=<this folder> -DCMAKE_INSTALL_PREFIX=<prefix>

set(Slicer_FOUND TRUE)
set(Slicer_VERSION_MAJOR 5)
set(Slicer_VERSION_MINOR 8)
set(Slicer_VERSION "${Slicer_VERSION_MAJOR}.${Slicer_VERSION_MINOR}")
set(Slicer_USE_PYTHONQT TRUE)

# Folder layout of Slicer 5.8 (CMake/SlicerDirectories.cmake): an extension installs its
# scripted modules into <prefix>/lib/Slicer-5.8/qt-scripted-modules.
set(Slicer_LIB_DIR "lib/Slicer-${Slicer_VERSION}")
set(Slicer_QTSCRIPTEDMODULES_SUBDIR "qt-scripted-modules")
set(Slicer_QTSCRIPTEDMODULES_LIB_DIR "${Slicer_LIB_DIR}/${Slicer_QTSCRIPTEDMODULES_SUBDIR}")
set(Slicer_INSTALL_QTSCRIPTEDMODULES_LIB_DIR "${Slicer_QTSCRIPTEDMODULES_LIB_DIR}")

# A made-up Slicer build tree: what an extension must NOT copy its files into.
set(Slicer_BINARY_DIR "${CMAKE_CURRENT_LIST_DIR}/not-a-slicer-build-tree")

set(Slicer_USE_FILE "${CMAKE_CURRENT_LIST_DIR}/UseSlicer.cmake")
set(Slicer_EXTENSION_GENERATE_CONFIG "${CMAKE_CURRENT_LIST_DIR}/SlicerExtensionGenerateConfig.cmake")
set(Slicer_EXTENSION_CPACK "${CMAKE_CURRENT_LIST_DIR}/SlicerExtensionCPack.cmake")

set(SLICER_STANDIN_CALLS "${CMAKE_BINARY_DIR}/slicer_standin_calls.txt")
file(WRITE "${SLICER_STANDIN_CALLS}" "")
