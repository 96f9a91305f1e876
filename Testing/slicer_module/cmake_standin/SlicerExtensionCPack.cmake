# Stand-in for Slicer's CMake/SlicerExtensionCPack.cmake (see SlicerConfig.cmake beside it):
# PACKAGING CHECKS ONLY; no package is made.  It makes the sanity checks of Slicer's file
# (EXTENSION_NAME set and equal to the project() name, the README and LICENSE files exist)
# as errors, requires the metadata that the Extensions Index shows, and records the values.
if("${EXTENSION_NAME}" STREQUAL "")
  message(FATAL_ERROR "stand-in SlicerExtensionCPack: EXTENSION_NAME is empty")
endif()
if(NOT "${EXTENSION_NAME}" STREQUAL "${PROJECT_NAME}")
  message(FATAL_ERROR "stand-in SlicerExtensionCPack: EXTENSION_NAME [${EXTENSION_NAME}] differs from the "
                      "project() name [${PROJECT_NAME}]; Slicer would skip packaging")
endif()
foreach(var EXTENSION_README_FILE EXTENSION_LICENSE_FILE)
  if(NOT DEFINED ${var} OR NOT EXISTS "${${var}}")
    message(FATAL_ERROR "stand-in SlicerExtensionCPack: ${var} points to an inexistent file: '${${var}}'")
  endif()
endforeach()
foreach(var HOMEPAGE CATEGORY CONTRIBUTORS DESCRIPTION ICONURL SCREENSHOTURLS DEPENDS)
  if("${EXTENSION_${var}}" STREQUAL "")
    message(FATAL_ERROR "stand-in SlicerExtensionCPack: EXTENSION_${var} is empty; set it before find_package(Slicer)")
  endif()
endforeach()
_slicer_standin_record(Slicer_EXTENSION_CPACK
  "EXTENSION_NAME=${EXTENSION_NAME}" "CATEGORY=${EXTENSION_CATEGORY}" "HOMEPAGE=${EXTENSION_HOMEPAGE}"
  "ICONURL=${EXTENSION_ICONURL}" "SCREENSHOTURLS=${EXTENSION_SCREENSHOTURLS}" "DEPENDS=${EXTENSION_DEPENDS}"
  "LICENSE_FILE=${EXTENSION_LICENSE_FILE}" "README_FILE=${EXTENSION_README_FILE}")
