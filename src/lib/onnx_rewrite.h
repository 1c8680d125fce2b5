/*
 * onnx_rewrite.h: the model cutout hands to ONNX Runtime, rewritten from
 * the .onnx file: fp16 run as fp32, unused outputs dropped (see
 * onnx_rewrite.c for why).
 */
#ifndef CUTOUT_ONNX_REWRITE_H
#define CUTOUT_ONNX_REWRITE_H

#include <stddef.h>
#include <stdint.h>

/* Bump with every change to what the rewrite produces: compiled models
 * made by an older rewrite are then built again (compiled.c). */
#define CUTOUT_REWRITE_VERSION 2

enum {
  CUTOUT_REWRITE_FP32 = 1,        /* every FLOAT16 becomes FLOAT */
  CUTOUT_REWRITE_FIRST_OUTPUT = 2 /* the main graph keeps its first output
                                     only; ORT then drops the nodes that
                                     fed the others */
};

/* What cutout__onnx_rewrite changed. */
struct cutout__rewrite_stats {
  size_t tensors;   /* fp16 tensors widened (initializers, constants) */
  size_t types;     /* fp16 element types in type protos and Cast/dtype */
  size_t bytes_in;  /* fp16 data bytes read */
  size_t outputs;   /* graph outputs dropped */
};

/*
 * Rewrite the serialized ModelProto in[0..len) as flags ask.
 * Returns 1 with *out (malloc'd, transfer full) and *out_len when there
 * was something to change; 0 when there was nothing (no output); -1 when
 * the model cannot be rewritten (malformed, or fp16 data kept outside the
 * file), with the reason in why.  Never reads outside in[0..len).
 */
int cutout__onnx_rewrite(const uint8_t *in, size_t len, unsigned flags,
                         uint8_t **out, size_t *out_len,
                         struct cutout__rewrite_stats *stats, char *why,
                         size_t whylen);

/* IEEE half to float, exactly (subnormals, infinities; a NaN keeps its
 * payload and comes out quiet, as the x86 instruction makes it). */
float cutout__half_to_float(uint16_t h);

#endif
