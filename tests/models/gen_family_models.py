#!/usr/bin/env python3
"""Tiny stand-ins for every rembg model family (issue #7), with the real
exports' input and output names and shapes, written under the names rembg
gives them in a model folder (OUTDIR/home), so `cutout -m NAME` finds them.

Each network is simple enough for numpy to evaluate (tests/py/rembg_ref.py
does, from the constants saved in home/family-weights.npz):
  - the common families (u2net, u2netp, u2net_human_seg, silueta,
    isnet-anime, birefnet-*, bria-rmbg): y = (w . x + b)^2 on a 1x1
    convolution; the square makes the mask depend on the mean as well as on
    the std of the normalisation;
  - u2net_cloth_seg: four class scores, a 1x1 convolution 3 -> 4;
  - sam: the encoder averages 16x16 patches of the HWC canvas (a ViT patch
    grid on the canvas padded to 1024x1024) and mixes them into 256
    channels; the decoder's first mask is positive within a radius of each
    prompt point (weighted by max(label, 0)), the second where the patch
    average of the red channel is above a threshold, and both add
    1000 * (has_mask_input + sum(mask_input) + orig_im_size - (684, 1024)),
    so a wrong decoder input shows.
  - a model with a dynamic batch dimension for cutout_predict_mask_batch.

usage: gen_family_models.py OUTDIR   (or gen_models.py calls main(OUTDIR))
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

W = np.array([0.7, -0.4, 0.9], dtype=np.float32)
B = np.float32(0.05)
# cloth: class scores = WC . x + BC (rows: background, upper, lower, full)
WC = np.array([[0.0, 0.0, 0.0], [1.0, -0.5, 0.2], [-0.4, 1.0, -0.3],
               [0.3, 0.2, 0.9]], dtype=np.float32)
BC = np.array([0.6, 0.0, 0.1, -0.2], dtype=np.float32)
# sam
SAM_R = np.float32(120.0)           # radius of a point's disc, canvas pixels
SAM_THETA = np.float32(100.25)      # red patch average threshold
SAM_MIX = (np.arange(256 * 3, dtype=np.float32).reshape(256, 3) % 7 - 3) / 8
SAM_MIX[0] = [1.0, 0.0, 0.0]        # channel 0: the red patch average

OPSET = [helper.make_opsetid("", 13)]


def save(graph, path):
    model = helper.make_model(graph, opset_imports=OPSET)
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def common(path, size, in_name, out_names, batch=1):
    """y = (w . x + b)^2, first output; the others are side outputs."""
    n = batch if batch else "batch"
    inp = helper.make_tensor_value_info(in_name, TensorProto.FLOAT, [n, 3, size, size])
    w = numpy_helper.from_array(W.reshape(1, 3, 1, 1), "w")
    b = numpy_helper.from_array(np.array([B], dtype=np.float32), "b")
    nodes = [helper.make_node("Conv", [in_name, "w", "b"], ["y"]),
             helper.make_node("Mul", ["y", "y"], [out_names[0]])]
    outs = [helper.make_tensor_value_info(out_names[0], TensorProto.FLOAT, [n, 1, size, size])]
    for name in out_names[1:]:
        nodes.append(helper.make_node("Relu", [out_names[0]], [name]))
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [n, 1, size, size]))
    save(helper.make_graph(nodes, "tiny-family", [inp], outs, initializer=[w, b]), path)


def cloth(path):
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 768, 768])
    w = numpy_helper.from_array(WC.reshape(4, 3, 1, 1), "w")
    b = numpy_helper.from_array(BC, "b")
    nodes = [helper.make_node("Conv", ["input", "w", "b"], ["output"]),
             helper.make_node("Relu", ["output"], ["d1"])]
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4, 768, 768])
            for n in ("output", "d1")]
    save(helper.make_graph(nodes, "tiny-cloth", [inp], outs, initializer=[w, b]), path)


def sam_encoder(path):
    inp = helper.make_tensor_value_info("input_image", TensorProto.FLOAT, [684, 1024, 3])
    out = helper.make_tensor_value_info("image_embeddings", TensorProto.FLOAT, [1, 256, 64, 64])
    inits = [numpy_helper.from_array(np.array([0], dtype=np.int64), "ax0"),
             numpy_helper.from_array(np.array([1, 3, 340, 1024], dtype=np.int64), "padshape"),
             numpy_helper.from_array(SAM_MIX.reshape(256, 3, 1, 1), "mix")]
    nodes = [helper.make_node("Transpose", ["input_image"], ["chw"], perm=[2, 0, 1]),
             helper.make_node("Unsqueeze", ["chw", "ax0"], ["nchw"]),
             # Concat, not Pad: ORT would fuse a Pad into the pool's pads
             helper.make_node("ConstantOfShape", ["padshape"], ["pad"],
                              value=numpy_helper.from_array(np.zeros(1, np.float32))),
             helper.make_node("Concat", ["nchw", "pad"], ["square"], axis=2),
             helper.make_node("AveragePool", ["square"], ["patches"], kernel_shape=[16, 16],
                              strides=[16, 16]),
             helper.make_node("Conv", ["patches", "mix"], ["image_embeddings"])]
    save(helper.make_graph(nodes, "tiny-sam-encoder", [inp], [out], initializer=inits), path)


def sam_decoder(path):
    f = TensorProto.FLOAT
    ins = [helper.make_tensor_value_info("image_embeddings", f, [1, 256, 64, 64]),
           helper.make_tensor_value_info("point_coords", f, [1, "n", 2]),
           helper.make_tensor_value_info("point_labels", f, [1, "n"]),
           helper.make_tensor_value_info("mask_input", f, [1, 1, 256, 256]),
           helper.make_tensor_value_info("has_mask_input", f, [1]),
           helper.make_tensor_value_info("orig_im_size", f, [2])]
    outs = [helper.make_tensor_value_info("masks", f, [1, 2, 684, 1024]),
            helper.make_tensor_value_info("iou_predictions", f, [1, 2]),
            helper.make_tensor_value_info("low_res_masks", f, [1, 2, 256, 256])]
    c = lambda name, a, dt=np.float32: numpy_helper.from_array(np.array(a, dtype=dt), name)
    inits = [
        c("xs", np.arange(1024, dtype=np.float32).reshape(1, 1, 1, 1024)),
        c("ys", np.arange(684, dtype=np.float32).reshape(1, 1, 684, 1)),
        c("r2", SAM_R * SAM_R), c("zero", 0.0), c("k1000", 1000.0), c("theta", SAM_THETA),
        c("canvas", [684.0, 1024.0]),
        c("i0", [0], np.int64), c("i1", [1], np.int64), c("i2", [2], np.int64),
        c("ax23", [2, 3], np.int64), c("shape4", [1, 4], np.int64),
        c("sh_n11", [1, -1, 1, 1], np.int64),
        c("sh6", [1, 1, 64, 1, 64, 1], np.int64), c("ex6", [1, 1, 64, 16, 64, 16], np.int64),
        c("sh4", [1, 1, 1024, 1024], np.int64), c("st0", [0, 0], np.int64),
        c("end_canvas", [684, 1024], np.int64), c("ax_hw", [2, 3], np.int64),
        c("end_low", [256, 256], np.int64),
    ]
    N = helper.make_node
    nodes = [
        # per point: cx, cy as [1, n, 1, 1]
        N("Slice", ["point_coords", "i0", "i1", "i2"], ["px"]),
        N("Slice", ["point_coords", "i1", "i2", "i2"], ["py"]),
        N("Reshape", ["px", "sh_n11"], ["cx"]), N("Reshape", ["py", "sh_n11"], ["cy"]),
        N("Reshape", ["point_labels", "sh_n11"], ["lab"]),
        N("Max", ["lab", "zero"], ["wgt"]),
        N("Sub", ["xs", "cx"], ["dx"]), N("Sub", ["ys", "cy"], ["dy"]),
        N("Mul", ["dx", "dx"], ["dx2"]), N("Mul", ["dy", "dy"], ["dy2"]),
        N("Add", ["dx2", "dy2"], ["d2"]), N("Sub", ["r2", "d2"], ["disc"]),
        N("Mul", ["wgt", "disc"], ["term"]),
        N("ReduceMax", ["term"], ["m0"], axes=[1], keepdims=1),
        # the embedding's channel 0, 16x nearest-upsampled, cropped
        N("Slice", ["image_embeddings", "i0", "i1", "i1"], ["e0"]),
        N("Reshape", ["e0", "sh6"], ["e6"]), N("Expand", ["e6", "ex6"], ["e6x"]),
        N("Reshape", ["e6x", "sh4"], ["e4"]),
        N("Slice", ["e4", "st0", "end_canvas", "ax_hw"], ["ecrop"]),
        N("Sub", ["ecrop", "theta"], ["m1"]),
        # the other decoder inputs must be rembg's constants
        N("ReduceSum", ["mask_input"], ["msum"], keepdims=0),
        N("Sub", ["orig_im_size", "canvas"], ["odiff"]),
        N("ReduceSum", ["odiff"], ["osum"], keepdims=0),
        N("ReduceSum", ["has_mask_input"], ["hsum"], keepdims=0),
        N("Add", ["msum", "osum"], ["s1"]), N("Add", ["s1", "hsum"], ["s2"]),
        N("Mul", ["s2", "k1000"], ["bias"]),
        N("Concat", ["m0", "m1"], ["mm"], axis=1),
        N("Add", ["mm", "bias"], ["masks"]),
        N("ReduceMean", ["masks"], ["iou_predictions"], axes=[2, 3], keepdims=0),
        N("Slice", ["masks", "st0", "end_low", "ax23"], ["low_res_masks"]),
    ]
    save(helper.make_graph(nodes, "tiny-sam-decoder", ins, outs, initializer=inits), path)


U2NET_OUTS = ["1959", "1960", "1961", "1962", "1963", "1964", "1965"]
BIREFNETS = ["birefnet-general", "birefnet-general-lite", "birefnet-portrait", "birefnet-dis",
             "birefnet-hrsod", "birefnet-cod", "birefnet-massive"]


def main(outdir):
    home = os.path.join(outdir, "home")
    os.makedirs(home, exist_ok=True)
    p = lambda name: os.path.join(home, name)
    for name in ("u2net", "u2netp", "u2net_human_seg", "silueta"):
        common(p(name + ".onnx"), 320, "input.1", U2NET_OUTS)
    common(p("isnet-anime.onnx"), 1024, "img", ["mask"])
    for name in BIREFNETS:
        common(p(name + ".onnx"), 1024, "input_image", ["output_image"])
    common(p("bria-rmbg.onnx"), 1024, "pixel_values", ["alphas"])
    cloth(p("u2net_cloth_seg.onnx"))
    sam_encoder(p("sam_vit_b_01ec64.encoder.onnx"))
    sam_decoder(p("sam_vit_b_01ec64.decoder.onnx"))
    # custom models live inside the model folder (rembg's path rule)
    common(p("my-custom-u2net.onnx"), 320, "input.1", U2NET_OUTS)
    common(p("my-custom-dis.onnx"), 1024, "input", ["output"])
    # a dynamic batch dimension (cutout_predict_mask_batch)
    common(os.path.join(outdir, "tiny-dynbatch.onnx"), 64, "input", ["output"], batch=0)
    np.savez(p("family-weights.npz"), W=W, B=B, WC=WC, BC=BC, SAM_R=SAM_R,
             SAM_THETA=SAM_THETA, SAM_MIX=SAM_MIX)


if __name__ == "__main__":
    main(sys.argv[1])
