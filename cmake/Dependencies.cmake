# Third-party libraries.  ONNX Runtime comes, in this order, from
# ONNXRUNTIME_ROOT (include/ + lib/), pkg-config libonnxruntime, or the copy
# scripts/bootstrap.sh unpacked into .deps/onnxruntime.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)

pkg_check_modules(JPEG REQUIRED IMPORTED_TARGET libjpeg)
pkg_check_modules(SPNG REQUIRED IMPORTED_TARGET spng)
pkg_check_modules(WEBP REQUIRED IMPORTED_TARGET libwebp libwebpdemux libwebpmux)
pkg_check_modules(ZLIB REQUIRED IMPORTED_TARGET zlib)
pkg_check_modules(DEFLATE REQUIRED IMPORTED_TARGET libdeflate)
pkg_check_modules(EXIF REQUIRED IMPORTED_TARGET libexif)
pkg_check_modules(CRYPTO REQUIRED IMPORTED_TARGET libcrypto)
pkg_check_modules(CJSON REQUIRED IMPORTED_TARGET libcjson)
# Model downloads (cutout d, first use): libcurl with OpenSSL, as Debian ships it.
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)

set(ONNXRUNTIME_ROOT "$ENV{ONNXRUNTIME_ROOT}" CACHE PATH "ONNX Runtime prefix (include/, lib/)")
add_library(cutout_ort INTERFACE)
if(ONNXRUNTIME_ROOT)
  find_path(ORT_INCLUDE_DIR onnxruntime_c_api.h
    PATHS ${ONNXRUNTIME_ROOT}/include ${ONNXRUNTIME_ROOT}/include/onnxruntime NO_DEFAULT_PATH REQUIRED)
  find_library(ORT_LIBRARY onnxruntime PATHS ${ONNXRUNTIME_ROOT}/lib ${ONNXRUNTIME_ROOT}/lib64 NO_DEFAULT_PATH REQUIRED)
  target_include_directories(cutout_ort INTERFACE ${ORT_INCLUDE_DIR})
  target_link_libraries(cutout_ort INTERFACE ${ORT_LIBRARY})
  message(STATUS "ONNX Runtime: ${ORT_LIBRARY} (ONNXRUNTIME_ROOT)")
else()
  pkg_check_modules(ORT QUIET IMPORTED_TARGET libonnxruntime)
  if(ORT_FOUND)
    target_link_libraries(cutout_ort INTERFACE PkgConfig::ORT)
    message(STATUS "ONNX Runtime: system, ${ORT_VERSION}")
  else()
    set(_ort ${PROJECT_SOURCE_DIR}/.deps/onnxruntime)
    if(NOT EXISTS ${_ort}/include/onnxruntime_c_api.h)
      message(FATAL_ERROR "ONNX Runtime not found: run scripts/bootstrap.sh, or set ONNXRUNTIME_ROOT")
    endif()
    target_include_directories(cutout_ort INTERFACE ${_ort}/include)
    target_link_libraries(cutout_ort INTERFACE ${_ort}/lib/libonnxruntime.so.1)
    # Binaries find the library through their rpath, no LD_LIBRARY_PATH.
    set(CMAKE_BUILD_RPATH ${_ort}/lib)
    set(CMAKE_INSTALL_RPATH ${_ort}/lib)
    message(STATUS "ONNX Runtime: ${_ort} (bootstrap)")
  endif()
endif()

add_library(cutout_deps INTERFACE)
target_link_libraries(cutout_deps INTERFACE cutout_ort PkgConfig::JPEG PkgConfig::SPNG
  PkgConfig::WEBP PkgConfig::ZLIB PkgConfig::DEFLATE PkgConfig::EXIF PkgConfig::CRYPTO PkgConfig::CURL Threads::Threads m)
add_library(cutout::deps ALIAS cutout_deps)
add_library(cutout::cjson ALIAS PkgConfig::CJSON)
