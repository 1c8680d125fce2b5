"""rembg 2.0.77's remove() pipeline, restated with Pillow + numpy + SciPy
(the libraries rembg itself calls), for models whose network the tests can
evaluate in numpy.  This is the independent reference the C pipeline is
compared with; it follows rembg/bg.py and rembg/sessions/base.py step by
step."""
import io

import numpy as np
from PIL import Image, ImageOps
from scipy.ndimage import gaussian_filter, grey_dilation, grey_erosion


def normalize(img, mean, std, size):
    im = img.convert("RGB").resize(size, Image.LANCZOS)
    a = np.array(im)
    a = a / max(np.max(a), 1e-6)
    t = np.zeros((a.shape[0], a.shape[1], 3))
    for c in range(3):
        t[:, :, c] = (a[:, :, c] - mean[c]) / std[c]
    return np.expand_dims(t.transpose((2, 0, 1)), 0).astype(np.float32)


def predict(img, model_fn, size, mean=(0.5, 0.5, 0.5), std=(1.0, 1.0, 1.0)):
    x = normalize(img, mean, std, (size, size))
    pred = model_fn(x)[:, 0, :, :]
    ma, mi = np.max(pred), np.min(pred)
    pred = np.squeeze((pred - mi) / (ma - mi))
    mask = Image.fromarray((pred * 255).astype("uint8"), mode="L")
    return mask.resize(img.size, Image.LANCZOS)


def post_process(mask):
    cross = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)
    m = grey_erosion(mask, footprint=cross)
    m = grey_dilation(m, footprint=cross)
    m = gaussian_filter(m.astype(np.float64), sigma=2)
    return np.where(m < 127, 0, 255).astype(np.uint8)


def remove(data, model_fn, size, only_mask=False, post_process_mask=False,
           putalpha=False, bgcolor=(0, 0, 0, 0)):
    img = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    mask = predict(img, model_fn, size)
    if post_process_mask:
        mask = Image.fromarray(post_process(np.array(mask)))
    if only_mask:
        return mask
    if putalpha:
        cut = img.copy()
        cut.putalpha(mask)
    else:
        cut = Image.composite(img, Image.new("RGBA", img.size, 0), mask)
    if bgcolor is not None:
        if cut.mode in ("LA", "PA"):  # rembg raises here; cutout expands to RGBA
            cut = cut.convert("RGBA")
        cut = Image.alpha_composite(Image.new("RGBA", cut.size, bgcolor), cut)
    return cut


def tiny_conv(weights):
    """The generated tiny models: out = w0*r + w1*g + w2*b + bias."""
    w = weights.astype(np.float32)

    def fn(x):
        y = x[:, 0:1] * w[0] + x[:, 1:2] * w[1] + x[:, 2:3] * w[2] + w[3]
        return y.astype(np.float32)
    return fn


# --- model families (issue #7) ----------------------------------------------
# rembg 2.0.77's per-family sessions, restated: the preprocessing table of
# rembg/sessions/*.py, the output handling of each predict(), cloth-seg's
# masks, SAM's warps and prompt, and remove()'s handling of several masks.
# The tiny networks of tests/models/gen_family_models.py are evaluated here
# from the constants it saves (home/family-weights.npz).
from scipy.ndimage import map_coordinates  # noqa: E402

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
HALF = ((0.5, 0.5, 0.5), (1.0, 1.0, 1.0))
ANIME = ((0.485, 0.456, 0.406), (1.0, 1.0, 1.0))
BIREFNETS = ["birefnet-general", "birefnet-general-lite", "birefnet-portrait", "birefnet-dis",
             "birefnet-hrsod", "birefnet-cod", "birefnet-massive"]
# name -> (input size, (mean, std), output handling)
FAMILIES = {
    "u2net": (320, IMAGENET, "clip"),
    "u2netp": (320, IMAGENET, "minmax"),
    "u2net_human_seg": (320, IMAGENET, "minmax"),
    "u2net_custom": (320, IMAGENET, "minmax"),
    "silueta": (320, IMAGENET, "minmax"),
    "isnet-anime": (1024, ANIME, "minmax"),
    "isnet-general-use": (1024, HALF, "minmax"),
    "dis_custom": (1024, HALF, "minmax"),
    "ben_custom": (1024, HALF, "minmax"),
    "bria-rmbg": (1024, IMAGENET, "minmax"),
    "u2net_cloth_seg": (768, IMAGENET, "cloth"),
}
for _n in BIREFNETS:
    FAMILIES[_n] = (1024, IMAGENET, "sigmoid")


def sigmoid(mat):
    return 1 / (1 + np.exp(-mat))


def predict_family(img, name, model_fn):
    """The single-mask sessions: u2net (clip), BiRefNet (sigmoid), others."""
    size, (mean, std), post = FAMILIES[name]
    pred = model_fn(normalize(img, mean, std, (size, size)))[:, 0, :, :]
    if post == "sigmoid":
        pred = sigmoid(pred)
    ma, mi = np.max(pred), np.min(pred)
    pred = np.squeeze((pred - mi) / (ma - mi))
    if post == "clip":
        pred = pred.clip(0, 1)
    mask = Image.fromarray((pred * 255).astype("uint8"), mode="L")
    return [mask.resize(img.size, Image.LANCZOS)]


CLOTH_PALETTES = {
    "upper": [0, 0, 0, 255, 255, 255, 0, 0, 0, 0, 0, 0],
    "lower": [0, 0, 0, 0, 0, 0, 255, 255, 255, 0, 0, 0],
    "full": [0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255],
}


def cloth_category(mask, cat):
    m = mask.copy()
    m.putpalette(CLOTH_PALETTES[cat])
    return m.convert("RGB").convert("L")


def cloth_masks(img, scores_fn, cc=None):
    """Unet2ClothSession.predict() (2.0.77: argmax without log_softmax)."""
    mean, std = IMAGENET
    pred = scores_fn(normalize(img, mean, std, (768, 768)))
    pred = np.argmax(pred, axis=1, keepdims=True)
    pred = np.squeeze(np.squeeze(pred, 0), 0)
    mask = Image.fromarray(pred.astype("uint8"), mode="L").resize(img.size, Image.LANCZOS)
    if cc in ("upper", "lower", "full"):
        return [cloth_category(mask, cc)]
    return [cloth_category(mask, c) for c in ("upper", "lower", "full")]


SAM_CANVAS = (684, 1024)


def sam_warp(image, matrix, out_hw):
    """warp_affine as rembg 2.0.77 does it without OpenCV: every output
    pixel samples the input at inv(matrix) @ (x, y, 1) with
    scipy.ndimage.map_coordinates, order 1, zero outside, per channel."""
    inv = np.linalg.inv(matrix)
    ys, xs = np.indices(out_hw, dtype=np.float64)
    sx = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    sy = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    if image.ndim == 2:
        return map_coordinates(image, [sy, sx], order=1, mode="constant", cval=0.0)
    return np.stack([map_coordinates(image[..., c], [sy, sx], order=1, mode="constant", cval=0.0)
                     for c in range(image.shape[2])], axis=-1)


def sam_points(prompt):
    points, labels = [], []
    for mark in prompt:
        if mark["type"] == "point":
            points.append(mark["data"])
            labels.append(mark["label"])
        elif mark["type"] == "rectangle":
            points.append([mark["data"][0], mark["data"][1]])
            points.append([mark["data"][2], mark["data"][3]])
            labels.append(2)
            labels.append(3)
    return np.array(points), np.array(labels)


def sam_apply_coords(coords, original_size, target_length):
    old_h, old_w = original_size
    scale = target_length * 1.0 / max(old_h, old_w)
    new_h, new_w = int(old_h * scale + 0.5), int(old_w * scale + 0.5)
    coords = np.array(coords, dtype=float)
    coords[..., 0] = coords[..., 0] * (new_w / old_w)
    coords[..., 1] = coords[..., 1] * (new_h / old_h)
    return coords


def sam_matrix(size):
    w, h = size
    scale = min(SAM_CANVAS[1] / w, SAM_CANVAS[0] / h)
    return np.array([[scale, 0, 0], [0, scale, 0], [0, 0, 1]])


def sam_inputs(img, prompt=None):
    """The encoder canvas (HWC float32 0..255) and the decoder's point
    coordinates and labels, with the transform matrix."""
    matrix = sam_matrix(img.size)
    canvas = sam_warp(np.array(img.convert("RGB")), matrix, SAM_CANVAS).astype(np.float32)
    coord, label = sam_prompt_tensors(img.size, prompt, matrix)
    return canvas, coord, label, matrix


def sam_prompt_tensors(size, prompt, matrix):
    if prompt is None:
        prompt = [{"type": "point", "label": 1, "data": [int(size[0] / 2), int(size[1] / 2)]}]
    points, labels = sam_points(prompt)
    coord = np.concatenate([points, np.array([[0.0, 0.0]])], axis=0)[None, :, :]
    label = np.concatenate([labels, np.array([-1])], axis=0)[None, :].astype(np.float32)
    coord = sam_apply_coords(coord, SAM_CANVAS, 1024).astype(np.float32)
    coord = np.concatenate([coord, np.ones((1, coord.shape[1], 1), dtype=np.float32)], axis=2)
    coord = np.matmul(coord, matrix.T)[:, :, :2].astype(np.float32)
    return coord, label


def sam_unwarp(masks, size, matrix):
    """The decoder's masks [1,M,684,1024] back on the photo, each as float32
    values (before rembg's m > 0.0)."""
    inv = np.linalg.inv(matrix)
    return [sam_warp(m, inv, (size[1], size[0])) for m in masks[0]]


def sam_mask(values):
    out = np.zeros(values[0].shape + (3,), dtype=np.uint8)
    for v in values:
        out[v > 0.0] = [255, 255, 255]
    return Image.fromarray(out).convert("L")


def remove_masks(img, masks, only_mask=False, post_process_mask=False, putalpha=False,
                 bgcolor=(0, 0, 0, 0)):
    """bg.remove() from the masks on, for any number of masks."""
    cutouts = []
    for mask in masks:
        if post_process_mask:
            mask = Image.fromarray(post_process(np.array(mask)))
        if only_mask:
            cutout = mask
        elif putalpha:
            cutout = img.copy()
            cutout.putalpha(mask)
        else:
            cutout = Image.composite(img, Image.new("RGBA", img.size, 0), mask)
        cutouts.append(cutout)
    cutout = cutouts[0]
    for im in cutouts[1:]:  # get_concat_v_multi
        dst = Image.new("RGBA", (cutout.width, cutout.height + im.height))
        dst.paste(cutout, (0, 0))
        dst.paste(im, (0, cutout.height))
        cutout = dst
    if bgcolor is not None and not only_mask:
        if cutout.mode == "LA":  # rembg raises here; cutout expands to RGBA
            cutout = cutout.convert("RGBA")
        cutout = Image.alpha_composite(Image.new("RGBA", cutout.size, bgcolor), cutout)
    return cutout


class TinyFamilies:
    """numpy versions of the networks in gen_family_models.py."""

    def __init__(self, home):
        k = np.load(home + "/family-weights.npz")
        self.w, self.b = k["W"], k["B"]
        self.wc, self.bc = k["WC"], k["BC"]
        self.r, self.theta, self.mix = k["SAM_R"], k["SAM_THETA"], k["SAM_MIX"]

    def common(self, x):
        y = (x[:, 0:1] * self.w[0] + x[:, 1:2] * self.w[1] + x[:, 2:3] * self.w[2]
             + self.b).astype(np.float32)
        return y * y

    def cloth(self, x):
        return (np.einsum("kc,nchw->nkhw", self.wc, x) + self.bc[None, :, None, None]).astype(np.float32)

    def sam_encoder(self, canvas):
        chw = canvas.transpose(2, 0, 1)[None]
        sq = np.concatenate([chw, np.zeros((1, 3, 340, 1024), np.float32)], axis=2)
        patches = sq.reshape(1, 3, 64, 16, 64, 16).mean(axis=(3, 5), dtype=np.float64)
        return np.einsum("kc,nchw->nkhw", self.mix, patches).astype(np.float32)

    def sam_decoder(self, emb, coord, label):
        xs = np.arange(1024, dtype=np.float32)[None, None, None, :]
        ys = np.arange(684, dtype=np.float32)[None, None, :, None]
        cx = coord[0, :, 0][None, :, None, None]
        cy = coord[0, :, 1][None, :, None, None]
        dx, dy = xs - cx, ys - cy
        d2 = dx * dx + dy * dy
        term = np.maximum(label[0], 0)[None, :, None, None] * (self.r * self.r - d2)
        m0 = term.max(axis=1, keepdims=True)
        up = np.repeat(np.repeat(emb[:, 0:1], 16, axis=2), 16, axis=3)[:, :, :684, :]
        m1 = up - self.theta
        return np.concatenate([m0, m1], axis=1).astype(np.float32)
# --- end model families ------------------------------------------------------
