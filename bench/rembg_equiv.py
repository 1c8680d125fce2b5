#!/usr/bin/env python3
"""rembg 2.0.77's `i` and `p` commands restated with the libraries rembg
calls (Pillow, numpy, SciPy from Debian) and ONNX Runtime through ctypes
(ort_ctypes.py) with rembg's session options (ORT defaults).  rembg itself
cannot be installed on a machine without PyPI; this stand-in runs the same
work on the same machine so cutout can be compared A/B.  It is generous to
rembg: it skips rembg's heavier imports (onnxruntime's Python layer,
pymatting/numba, scikit-image, click, filetype, pooch).

  rembg_equiv.py i MODEL.onnx IN OUT
  rembg_equiv.py p MODEL.onnx IN_DIR OUT_DIR
"""
import io
import os
import sys
import time

t_start = time.time()
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "py"))
import numpy as np  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

import ort_ctypes  # noqa: E402
import rembg_ref  # noqa: E402


def remove(session, data):
    """rembg.bg.remove(bytes, session) with the CLI's bgcolor (0,0,0,0)."""
    img = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    mask = rembg_ref.predict(img, lambda x: session.run(x)[0], 1024)
    cut = Image.composite(img, Image.new("RGBA", img.size, 0), mask)
    cut = Image.alpha_composite(Image.new("RGBA", cut.size, (0, 0, 0, 0)), cut)
    out = io.BytesIO()
    cut.save(out, "PNG")
    return out.getvalue()


def main():
    cmd, model = sys.argv[1], sys.argv[2]
    omp = int(os.environ.get("OMP_NUM_THREADS", "0"))
    session = ort_ctypes.InferenceSession(model, intra=omp, inter=omp)
    if cmd == "i":
        with open(sys.argv[3], "rb") as f:
            data = f.read()
        with open(sys.argv[4], "wb") as f:
            f.write(remove(session, data))
    else:
        src, dst = sys.argv[3], sys.argv[4]
        os.makedirs(dst, exist_ok=True)
        for root, _, files in os.walk(src):
            for name in sorted(files):
                out = os.path.join(dst, os.path.splitext(name)[0] + ".png")
                if os.path.exists(out):
                    continue
                with open(os.path.join(root, name), "rb") as f:
                    data = f.read()
                with open(out, "wb") as f:
                    f.write(remove(session, data))
    print(f"rembg-equivalent {cmd}: {time.time() - t_start:.2f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
