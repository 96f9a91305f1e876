# Stand-in for Slicer's CMake/SlicerExtensionGenerateConfig.cmake (see SlicerConfig.cmake
# beside it): PACKAGING CHECKS ONLY.  Writes a minimal <ExtensionName>Config.cmake into the
# build tree and records the call.
if("${EXTENSION_NAME}" STREQUAL "")
  message(FATAL_ERROR "stand-in SlicerExtensionGenerateConfig: EXTENSION_NAME is empty")
endif()
file(WRITE "${CMAKE_BINARY_DIR}/${EXTENSION_NAME}Config.cmake"
  "# written by the packaging test's stand-in, not by Slicer\nset(${EXTENSION_NAME}_SOURCE_DIR \"${CMAKE_SOURCE_DIR}\")\n")
_slicer_standin_record(Slicer_EXTENSION_GENERATE_CONFIG "EXTENSION_NAME=${EXTENSION_NAME}")
