/*
 * web_placeholder.c: a minimal page for `/` until the web page of issue #5
 * (src/server/web/index.html, embedded by cmake/WebAssets.cmake) is merged.
 */
#include "web_assets.h"

#define PAGE                                                               \
  "<!doctype html><html><head><meta charset=\"utf-8\"><title>cutout</title>" \
  "</head><body><h1>cutout</h1><form action=\"/api/remove\" method=\"post\" " \
  "enctype=\"multipart/form-data\"><input type=\"file\" name=\"file\" "   \
  "accept=\"image/*\"> <button>Remove background</button></form>"         \
  "<p><a href=\"/api\">API (OpenAPI)</a></p></body></html>\n"

const unsigned char cutout_web_index_html[] = PAGE;
const size_t cutout_web_index_html_len = sizeof PAGE - 1;
