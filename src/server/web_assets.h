/*
 * web_assets.h: files built into the cutout binary (cmake/WebAssets.cmake
 * generates their definitions from src/server/web/ at build time).
 */
#ifndef CUTOUT_WEB_ASSETS_H
#define CUTOUT_WEB_ASSETS_H

#include <stddef.h>

/* The page served at `/` by `cutout s` (text/html; charset=utf-8): its
 * cutout_web_index_html_len bytes, followed by a NUL not counted in the
 * length.  Static, read-only, valid for the life of the process. */
extern const unsigned char cutout_web_index_html[];
extern const size_t cutout_web_index_html_len;

#endif
