"""rembg 2.0.77's alpha_matting_cutout() and upstream rembg's
decontaminate_cutout(), with the pymatting 1.1 pieces they call restated in
numpy/scipy (pymatting itself cannot be installed here).  The independent
reference the C code (src/lib/matting*.c, foreground.c) is tested against.

* trimap():        rembg's erosion-made trimap (scipy binary_erosion, as
                   rembg calls it).
* laplacian_rows(): pymatting's _cf_laplacian loop, literally, in Python
                   floats: for every window centred at an interior pixel,
                   values[i, dy, dx] += delta_ij - (1 + c_i' M c_j) / 9.
                   Slow; for tiny images (the dense unit-test oracle).
* system():        the same Laplacian vectorised (scipy.sparse), then
                   L_U and b = -R is_fg_K as estimate_alpha_cf slices them.
* solve_alpha():   a direct sparse solve instead of pymatting's PCG (which
                   stops at rtol 1e-7), clip(0, 1); raises ValueError where
                   pymatting does (empty trimap, no unknown pixel, b = 0).
* foreground_ml(): estimate_foreground_ml with numba's exact typing:
                   float32 arrays and parameters, float64 wherever a
                   Python float literal enters.  Pure Python: tiny images.
"""
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.ndimage import binary_erosion

F32 = np.float32


def trimap(mask, fg=240, bg=10, erode=10):
    is_fg = mask > fg
    is_bg = mask < bg
    structure = np.ones((erode, erode), dtype=np.uint8) if erode > 0 else None
    is_fg = binary_erosion(is_fg, structure=structure)
    is_bg = binary_erosion(is_bg, structure=structure, border_value=1)
    t = np.full(mask.shape, 128, dtype=np.uint8)
    t[is_fg] = 255
    t[is_bg] = 0
    return t


def split(tri):
    t = tri.ravel() / 255.0
    is_fg = t >= 0.9
    is_bg = t <= 0.1
    if is_bg.sum() == 0:
        raise ValueError("Trimap did not contain background values")
    if is_fg.sum() == 0:
        raise ValueError("Trimap did not contain foreground values")
    return is_fg, is_bg, is_fg | is_bg


def laplacian_rows(img, eps=1e-7):
    """values[i][(dy, dx)] exactly as pymatting's numba loop sums them."""
    im = img / 255.0
    h, w, _ = im.shape
    values = {}
    for y in range(1, h - 1):
        for x in range(1, w - 1):
            c = [[[0.0] * 3 for _ in range(3)] for _ in range(3)]
            for dc in range(3):
                s = 0.0
                for dy in range(3):
                    for dx in range(3):
                        s += float(im[y + dy - 1, x + dx - 1, dc])
                for dy in range(3):
                    for dx in range(3):
                        c[dy][dx][dc] = float(im[y + dy - 1, x + dx - 1, dc]) - s / 9
            a00, a01, a02, a11, a12, a22 = eps, 0.0, 0.0, eps, 0.0, eps
            for dy in range(3):
                for dx in range(3):
                    v = c[dy][dx]
                    a00 += v[0] * v[0]
                    a01 += v[0] * v[1]
                    a02 += v[0] * v[2]
                    a11 += v[1] * v[1]
                    a12 += v[1] * v[2]
                    a22 += v[2] * v[2]
            a00 /= 9; a01 /= 9; a02 /= 9; a11 /= 9; a12 /= 9; a22 /= 9
            det = (a00 * a12 * a12 + a01 * a01 * a22 + a02 * a02 * a11
                   - a00 * a11 * a22 - 2 * a01 * a02 * a12)
            inv_det = 1.0 / det
            m00 = (a12 * a12 - a11 * a22) * inv_det
            m01 = (a01 * a22 - a02 * a12) * inv_det
            m02 = (a02 * a11 - a01 * a12) * inv_det
            m11 = (a02 * a02 - a00 * a22) * inv_det
            m12 = (a00 * a12 - a01 * a02) * inv_det
            m22 = (a01 * a01 - a00 * a11) * inv_det
            for dyi in range(3):
                for dxi in range(3):
                    s_, t_, u_ = c[dyi][dxi]
                    c0 = m00 * s_ + m01 * t_ + m02 * u_
                    c1 = m01 * s_ + m11 * t_ + m12 * u_
                    c2 = m02 * s_ + m12 * t_ + m22 * u_
                    for dyj in range(3):
                        for dxj in range(3):
                            xi, yi = x + dxi - 1, y + dyi - 1
                            xj, yj = x + dxj - 1, y + dyj - 1
                            i, j = xi + yi * w, xj + yj * w
                            cj = c[dyj][dxj]
                            temp = c0 * cj[0] + c1 * cj[1] + c2 * cj[2]
                            value = (1.0 if i == j else 0.0) - (1 + temp) / 9
                            key = (yj - yi + 2, xj - xi + 2)
                            row = values.setdefault(i, {})
                            row[key] = row.get(key, 0.0) + value
    return values


def dense_system(img, tri, eps=1e-7):
    """L_U (dense) and b from laplacian_rows(), summed in column order."""
    h, w, _ = img.shape
    is_fg, _, is_known = split(tri)
    unk = np.flatnonzero(~is_known)
    index = {int(p): k for k, p in enumerate(unk)}
    rows = laplacian_rows(img, eps)
    n = len(unk)
    A = np.zeros((n, n))
    b = np.zeros(n)
    for k, p in enumerate(unk):
        yi, xi = divmod(int(p), w)
        fg = 0.0
        for (dy, dx), v in sorted(rows.get(int(p), {}).items()):
            yj, xj = yi + dy - 2, xi + dx - 2
            j = yj * w + xj
            if j in index:
                A[k, index[j]] = v
            elif is_fg[j]:
                fg += v
        b[k] = -fg
    return A, b, unk


def system(img, tri, eps=1e-7):
    """Vectorised: (L_U as CSR, b, unknown pixel indices)."""
    im = img / 255.0
    h, w, _ = im.shape
    is_fg, _, is_known = split(tri)
    n = h * w
    idx = np.arange(n).reshape(h, w)
    P = np.stack([im[dy:h - 2 + dy, dx:w - 2 + dx] for dy in range(3)
                  for dx in range(3)], axis=2).reshape(-1, 9, 3)
    I = np.stack([idx[dy:h - 2 + dy, dx:w - 2 + dx] for dy in range(3)
                  for dx in range(3)], axis=2).reshape(-1, 9)
    C = P - P.mean(axis=1, keepdims=True)
    cov = (np.einsum("wki,wkj->wij", C, C) + eps * np.eye(3)) / 9
    M = np.linalg.inv(cov)
    V = np.eye(9)[None] - (1 + np.einsum("wki,wij,wlj->wkl", C, M, C)) / 9
    r = np.repeat(I, 9, axis=1).ravel()
    c = np.tile(I, (1, 9)).ravel()
    L = sp.csr_matrix((V.ravel(), (r, c)), shape=(n, n))
    unk = ~is_known
    LU = L[unk][:, unk]
    R = L[unk][:, is_known]
    b = -R.dot(is_fg[is_known].astype(np.float64))
    return LU, b, np.flatnonzero(unk)


def solve_alpha(img, tri):
    LU, b, unk = system(img, tri)
    if len(unk) == 0 or not np.any(b):
        raise ValueError("Conjugate gradient descent did not converge")
    x = tri.ravel() / 255.0
    x[unk] = spla.spsolve(LU.tocsc(), b)
    return np.clip(x, 0, 1).reshape(tri.shape)


def _resize_nearest(src, h, w):
    hs, ws = src.shape[:2]
    ys = np.minimum(np.arange(h) * hs // h, hs - 1)
    xs = np.minimum(np.arange(w) * ws // w, ws - 1)
    return src[ys][:, xs].copy()


def foreground_ml(img, alpha, regularization=1e-5, n_small_iterations=10,
                  n_big_iterations=2, small_size=32, gradient_weight=1.0):
    """pymatting's _estimate_fb_ml.  img: uint8 HxWx3; alpha: float32 HxW.
    Returns F (float32 HxWx3)."""
    image0 = (img / 255.0).astype(np.float32)
    alpha0 = alpha.astype(np.float32)
    h0, w0, depth = image0.shape
    reg = F32(regularization)
    gw = F32(gradient_weight)
    fsum = np.zeros(depth, np.float32)
    bsum = np.zeros(depth, np.float32)
    fc = bc = 0
    for y in range(h0):
        for x in range(w0):
            a = float(alpha0[y, x])
            if a > 0.9:
                for c in range(depth):
                    fsum[c] = F32(fsum[c] + image0[y, x, c])
                fc += 1
            if a < 0.1:
                for c in range(depth):
                    bsum[c] = F32(bsum[c] + image0[y, x, c])
                bc += 1
    fmean = np.array([F32(float(v) / (fc + 1e-5)) for v in fsum], np.float32)
    bmean = np.array([F32(float(v) / (bc + 1e-5)) for v in bsum], np.float32)
    F_prev = np.zeros((1, 1, depth), np.float32) + fmean
    B_prev = np.zeros((1, 1, depth), np.float32) + bmean
    n_levels = int(np.ceil(np.log2(max(w0, h0))))
    for lvl in range(n_levels + 1):
        if n_levels == 0:  # a 1x1 image: pymatting divides by zero here;
            w, h = w0, h0  # cutout runs the single level
        else:
            w = round(w0 ** (lvl / n_levels))
            h = round(h0 ** (lvl / n_levels))
        image = _resize_nearest(image0, h, w)
        al = _resize_nearest(alpha0, h, w)
        F = _resize_nearest(F_prev, h, w)
        B = _resize_nearest(B_prev, h, w)
        n_iter = n_small_iterations if w <= small_size and h <= small_size \
            else n_big_iterations
        dxs, dys = (-1, 1, 0, 0), (0, 0, -1, 1)
        for _ in range(n_iter):
            for y in range(h):
                for x in range(w):
                    a0 = al[y, x]                      # float32
                    a1 = 1.0 - float(a0)               # float64
                    a00 = F32(a0 * a0)                 # float32
                    a01 = float(a0) * a1               # float64
                    a11 = a1 * a1                      # float64
                    b0 = [F32(a0 * image[y, x, c]) for c in range(depth)]
                    b1 = [F32(a1 * float(image[y, x, c])) for c in range(depth)]
                    for d in range(4):
                        x2 = max(0, min(w - 1, x + dxs[d]))
                        y2 = max(0, min(h - 1, y + dys[d]))
                        gradient = F32(abs(F32(a0 - al[y2, x2])))
                        da = F32(reg + F32(gw * gradient))
                        a00 = F32(a00 + da)
                        a11 = a11 + float(da)
                        for c in range(depth):
                            b0[c] = F32(b0[c] + F32(da * F[y2, x2, c]))
                            b1[c] = F32(b1[c] + F32(da * B[y2, x2, c]))
                    det = float(a00) * a11 - a01 * a01
                    inv_det = 1.0 / det
                    b00 = inv_det * a11
                    b01 = inv_det * -a01
                    b11 = inv_det * float(a00)
                    for c in range(depth):
                        fv = b00 * float(b0[c]) + b01 * float(b1[c])
                        bv = b01 * float(b0[c]) + b11 * float(b1[c])
                        F[y, x, c] = max(0.0, min(1.0, fv))
                        B[y, x, c] = max(0.0, min(1.0, bv))
        F_prev, B_prev = F, B
    return F


def to_rgba(F, alpha):
    """rembg: np.clip(stack_images(F, alpha) * 255, 0, 255).astype(uint8)."""
    cut = np.concatenate([F.astype(np.float64), alpha[:, :, None]], axis=2)
    return np.clip(cut * 255, 0, 255).astype(np.uint8)


def alpha_matting_cutout(img, mask, fg=240, bg=10, erode=10):
    tri = trimap(mask, fg, bg, erode)
    alpha = solve_alpha(img, tri)
    return to_rgba(foreground_ml(img, alpha), alpha)


def decontaminate_cutout(img, mask):
    alpha = mask / 255.0
    return to_rgba(foreground_ml(img, alpha), alpha)
