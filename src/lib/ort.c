/*
 * ort.c: one-time lookup of the ONNX Runtime API table and status
 * conversion.  The table is a constant of the loaded library (not mutable
 * state), so it is kept in a static initialised once.
 */
#include "ort.h"

#include <pthread.h>
#include <stdio.h>

static pthread_once_t ort_once = PTHREAD_ONCE_INIT;
static const OrtApi *ort_api;

static void ort_init(void)
{
  const OrtApiBase *base = OrtGetApiBase();
  if (base) ort_api = base->GetApi(ORT_API_VERSION);
}

const OrtApi *cutout__ort(char *err)
{
  pthread_once(&ort_once, ort_init);
  if (!ort_api)
    cutout__err(err, CUTOUT_ERUNTIME,
                "ONNX Runtime %s is too old: cutout needs API version %d "
                "(ONNX Runtime 1.%d or newer)",
                OrtGetApiBase()->GetVersionString(), ORT_API_VERSION,
                ORT_API_VERSION);
  return ort_api;
}

cutout_status cutout__ort_check(OrtStatus *st, cutout_status code, char *err,
                                const char *what)
{
  if (!st) return CUTOUT_OK;
  const OrtApi *api = cutout__ort(NULL);
  cutout__err(err, code, "%s: %s", what, api->GetErrorMessage(st));
  api->ReleaseStatus(st);
  return code;
}

const char *cutout_ort_version(void)
{
  return OrtGetApiBase()->GetVersionString();
}
