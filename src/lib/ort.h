/*
 * ort.h: the library's window on ONNX Runtime.  Only the files that talk
 * to ORT include this header; OrtStatus is turned into cutout_status here.
 */
#ifndef CUTOUT_ORT_H
#define CUTOUT_ORT_H

#include "internal.h"

#include <onnxruntime_c_api.h>

/* The API table of the loaded library, or NULL (err says why). */
const OrtApi *cutout__ort(char *err);

/* Consume st: NULL gives CUTOUT_OK; otherwise the message is formatted as
 * "<what>: <ORT message>" into err and code is returned. */
cutout_status cutout__ort_check(OrtStatus *st, cutout_status code, char *err,
                                const char *what);

#endif
