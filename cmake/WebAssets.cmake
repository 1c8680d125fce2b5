# WebAssets.cmake: the page of `cutout s` (src/server/web/index.html), built
# into the cutout executable as cutout_web_index_html (src/server/web_assets.h).
# Included once, after the cutout target exists.
set(CUTOUT_WEB_INDEX ${PROJECT_SOURCE_DIR}/src/server/web/index.html)
set(CUTOUT_WEB_INDEX_C ${PROJECT_BINARY_DIR}/generated/web_index_html.c)
add_custom_command(OUTPUT ${CUTOUT_WEB_INDEX_C}
  COMMAND ${CMAKE_COMMAND} -DIN=${CUTOUT_WEB_INDEX} -DOUT=${CUTOUT_WEB_INDEX_C}
          -DSYMBOL=cutout_web_index_html -DHEADER=web_assets.h
          -P ${PROJECT_SOURCE_DIR}/cmake/EmbedFile.cmake
  DEPENDS ${CUTOUT_WEB_INDEX} ${PROJECT_SOURCE_DIR}/cmake/EmbedFile.cmake
  COMMENT "Embedding src/server/web/index.html"
  VERBATIM)
target_sources(cutout PRIVATE ${CUTOUT_WEB_INDEX_C})
# The generated file includes web_assets.h, so its definitions are checked
# against the declarations the server uses.
set_source_files_properties(${CUTOUT_WEB_INDEX_C} PROPERTIES
  INCLUDE_DIRECTORIES ${PROJECT_SOURCE_DIR}/src/server)
