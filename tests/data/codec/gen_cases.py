"""gen_cases.py OUTDIR: inputs and Pillow 9.4 reference pixels for
tests/unit/test_codec.c.

For every case NAME it writes NAME.in (the encoded file) and NAME.ref (the
raw pixels Pillow gives after Image.open + ImageOps.exif_transpose,
converted to the 8-bit mode cutout decodes to), and one line
"NAME WIDTH HEIGHT CHANNELS" in OUTDIR/manifest.txt.  Formats Pillow cannot
write (2/4-bit grey, 16-bit colour, Adam7, odd BMPs, RLE) are built by
hand here; Pillow is still what reads them for the reference.
"""
import io
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin

OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)
rng = np.random.default_rng(1234)
manifest = []

CHANNELS = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}


def reference(data):
    im = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    mode, trns = im.mode, "transparency" in im.info
    if mode in ("1", "L", "I", "I;16"):
        target = "LA" if trns else "L"
    elif mode in ("P", "RGB"):
        target = "RGBA" if trns else "RGB"
    elif mode == "CMYK":
        target = "RGB"
    else:
        target = mode
    out = im if target == mode else im.convert(target)
    return out


def case(name, data):
    ref = reference(data)
    with open(os.path.join(OUT, name + ".in"), "wb") as f:
        f.write(data)
    with open(os.path.join(OUT, name + ".ref"), "wb") as f:
        f.write(ref.tobytes())
    manifest.append("%s %d %d %d" % (name, ref.size[0], ref.size[1], CHANNELS[ref.mode]))


def save(im, fmt, **kw):
    b = io.BytesIO()
    im.save(b, fmt, **kw)
    return b.getvalue()


def photo(w, h, mode="RGB"):
    """Smooth gradients plus noise: JPEG-friendly, not constant."""
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1),
                     (x + y) * 127 // max(w + h - 2, 1)], -1)
    a = np.clip(base + rng.integers(-20, 21, base.shape), 0, 255).astype(np.uint8)
    im = Image.fromarray(a, "RGB")
    return im.convert(mode) if mode != "RGB" else im


def exif_with_orientation(o):
    """An APP1-style EXIF block ("Exif\\0\\0" + TIFF) with Orientation o."""
    ex = Image.Exif()
    ex[0x0112] = o
    return ex.tobytes()


# ------------------------------------------------------------------ JPEG
case("jpeg_rgb", save(photo(61, 47), "JPEG", quality=90))
case("jpeg_rgb444", save(photo(61, 47), "JPEG", quality=85, subsampling=0))
case("jpeg_grey", save(photo(45, 33, "L"), "JPEG", quality=90))
case("jpeg_prog", save(photo(64, 40), "JPEG", quality=80, progressive=True))
case("jpeg_cmyk", save(photo(40, 30, "CMYK"), "JPEG", quality=90))
for o in range(1, 9):
    case("jpeg_orient%d" % o,
         save(photo(37, 23), "JPEG", quality=90, exif=exif_with_orientation(o)))

# ------------------------------------------------------------------ PNG


def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)


def png(w, h, depth, ctype, rows, extra=b"", interlace=0, post=b""):
    """rows: list of raw row bytes (filter 0 is added), or for interlace=1
    the list of the 7 passes' row lists."""
    if interlace:
        raw = b"".join(b"\0" + r for p in rows for r in p)
    else:
        raw = b"".join(b"\0" + r for r in rows)
    return (b"\x89PNG\r\n\x1a\n" +
            chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, interlace)) +
            extra + chunk(b"IDAT", zlib.compress(raw)) + post + chunk(b"IEND", b""))


def pack_bits(vals, depth):
    out, acc, n = bytearray(), 0, 0
    for v in vals:
        acc = (acc << depth) | int(v)
        n += depth
        if n == 8:
            out.append(acc)
            acc, n = 0, 0
    if n:
        out.append(acc << (8 - n))
    return bytes(out)


def rows_of(a, depth=8):
    """numpy (h, w[, c]) -> PNG rows; 16-bit big-endian when depth 16."""
    h = a.shape[0]
    if depth == 16:
        return [a[y].astype(">u2").tobytes() for y in range(h)]
    if depth < 8:
        return [pack_bits(a[y].ravel(), depth) for y in range(h)]
    return [a[y].astype(np.uint8).tobytes() for y in range(h)]


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def adam7(a, depth):
    passes = []
    for x0, y0, dx, dy in ADAM7:
        sub = a[y0::dy, x0::dx]
        passes.append(rows_of(sub, depth) if sub.shape[0] and sub.shape[1] else [])
    return passes


W, H = 29, 17
g = rng.integers(0, 256, (H, W))
case("png_g1", save(Image.fromarray((g > 127).astype(np.uint8) * 255).convert("1"), "PNG"))
case("png_g2", png(W, H, 2, 0, rows_of(g % 4, 2)))
case("png_g4", png(W, H, 4, 0, rows_of(g % 16, 4)))
case("png_g8", save(Image.fromarray(g.astype(np.uint8)), "PNG"))
g16 = rng.integers(0, 65536, (H, W))
g16[0, :8] = [0, 1, 5, 254, 255, 256, 261, 1000]
case("png_g16", png(W, H, 16, 0, rows_of(g16, 16)))
case("png_g8_trns", save(Image.fromarray(g.astype(np.uint8)), "PNG", transparency=int(g[3, 3])))
case("png_g8_trns_hikey", png(W, H, 8, 0, rows_of(g), chunk(b"tRNS", struct.pack(">H", 0x100 | int(g[2, 2])))))
case("png_g16_trns", png(W, H, 16, 0, rows_of(g16, 16), chunk(b"tRNS", struct.pack(">H", 0x0105))))
case("png_g1_trns1", png(W, H, 1, 0, rows_of(g % 2, 1), chunk(b"tRNS", struct.pack(">H", 1))))
case("png_g2_trns0", png(W, H, 2, 0, rows_of(g % 4, 2), chunk(b"tRNS", struct.pack(">H", 0))))
rgb = rng.integers(0, 256, (H, W, 3))
case("png_rgb8", save(Image.fromarray(rgb.astype(np.uint8)), "PNG"))
key = tuple(int(v) for v in rgb[4, 4])
case("png_rgb8_trns", save(Image.fromarray(rgb.astype(np.uint8)), "PNG", transparency=key))
rgb16 = rng.integers(0, 65536, (H, W, 3))
rgb16[1, 1] = [0x0102, 0x0304, 0x0506]
case("png_rgb16", png(W, H, 16, 2, rows_of(rgb16, 16)))
case("png_rgb16_trns", png(W, H, 16, 2, rows_of(rgb16, 16), chunk(b"tRNS", struct.pack(">HHH", 0xAA01, 0xBB03, 0xCC05))))
pal = bytes(rng.integers(0, 256, 3 * 7).astype(np.uint8))
idx = rng.integers(0, 10, (H, W))  # 7 entries: 7..9 read the grey ramp
case("png_pal8", png(W, H, 8, 3, rows_of(idx), chunk(b"PLTE", pal)))
case("png_pal8_trns", png(W, H, 8, 3, rows_of(idx), chunk(b"PLTE", pal) + chunk(b"tRNS", bytes([0, 128, 255, 7]))))
case("png_pal8_trns_simple", png(W, H, 8, 3, rows_of(idx), chunk(b"PLTE", pal) + chunk(b"tRNS", bytes([255, 0]))))
case("png_pal4", png(W, H, 4, 3, rows_of(idx % 7, 4), chunk(b"PLTE", pal)))
case("png_pal1", png(W, H, 1, 3, rows_of(idx % 2, 1), chunk(b"PLTE", pal[:6])))
pim = Image.fromarray(idx.astype(np.uint8), "P")
pim.putpalette(list(rng.integers(0, 256, 768)))
case("png_pal_pillow", save(pim, "PNG"))
la = rng.integers(0, 256, (H, W, 2)).astype(np.uint8)
case("png_la8", save(Image.fromarray(la, "LA"), "PNG"))
case("png_la16", png(W, H, 16, 4, rows_of(rng.integers(0, 65536, (H, W, 2)), 16)))
rgba = rng.integers(0, 256, (H, W, 4)).astype(np.uint8)
case("png_rgba8", save(Image.fromarray(rgba, "RGBA"), "PNG"))
case("png_rgba16", png(W, H, 16, 6, rows_of(rng.integers(0, 65536, (H, W, 4)), 16)))
case("png_adam7_rgb", png(W, H, 8, 2, adam7(rgb, 8), interlace=1))
case("png_adam7_g16_trns", png(W, H, 16, 0, adam7(g16, 16), chunk(b"tRNS", struct.pack(">H", 0x0105)), interlace=1))
case("png_adam7_g2", png(W, H, 2, 0, adam7(g % 4, 2), interlace=1))
# EXIF orientation in PNG: eXIf, XMP, ImageMagick's raw profile, broken.
base = photo(31, 19)
case("png_exif6", save(base, "PNG", exif=exif_with_orientation(6)))
info = PngImagePlugin.PngInfo()
info.add_itxt("XML:com.adobe.xmp",
              '<x:xmpmeta><rdf:Description tiff:Orientation="8"/></x:xmpmeta>')
case("png_xmp8", save(base, "PNG", pnginfo=info))
info = PngImagePlugin.PngInfo()
hexdata = exif_with_orientation(3).hex()
info.add_text("Raw profile type exif", "\nexif\n%8d\n%s\n" % (len(hexdata) // 2, hexdata), zip=True)
case("png_rawprofile3", save(base, "PNG", pnginfo=info))
case("png_badexif", png(W, H, 8, 2, rows_of(rgb), chunk(b"eXIf", b"MM\0*garbage-garbage")))
case("png_exif_after_idat", png(W, H, 8, 2, rows_of(rgb), post=chunk(b"eXIf", exif_with_orientation(5)[6:])))

# ------------------------------------------------------------------ WebP
wimg = photo(45, 27)
wa = np.array(wimg.convert("RGBA"))
wa[..., 3] = rng.integers(0, 256, (27, 45))
wrgba = Image.fromarray(wa, "RGBA")
case("webp_lossless_rgba", save(wrgba, "WEBP", lossless=True, exact=True))
case("webp_lossless_rgb", save(wimg, "WEBP", lossless=True))
case("webp_lossy_rgb", save(wimg, "WEBP", quality=80))
case("webp_lossy_rgba", save(wrgba, "WEBP", quality=70))
case("webp_exif6", save(wimg, "WEBP", quality=80, exif=exif_with_orientation(6)))
frames = [photo(40, 24), photo(40, 24).transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
case("webp_anim", save(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100, lossless=True))

# ------------------------------------------------------------------ BMP


def bmp(w, h, bits, pixels, compression=0, palette=b"", hsize=40, top_down=False, masks=None, offset=None, colors=0):
    if hsize == 12:
        dib = struct.pack("<IHHHH", 12, w, h, 1, bits)
    else:
        dib = struct.pack("<IiiHHIIiiII", hsize, w, -h if top_down else h, 1, bits,
                          compression, len(pixels), 2835, 2835, colors, 0)
        if hsize > 40:
            m = masks or (0, 0, 0, 0)
            dib += struct.pack("<IIII", *m)
            dib += b"\0" * (hsize - len(dib))
        elif masks:
            dib += struct.pack("<III", *masks[:3])
    off = 14 + len(dib) + len(palette) if offset is None else offset
    return b"BM" + struct.pack("<IHHI", off + len(pixels), 0, 0, off) + dib + palette + pixels


def bmp_rows(a, bits, bottom_up=True):
    """numpy rows -> padded BMP rows (bits 1/4/8: indices, 16: uint16,
    24/32: bytes as given)."""
    rows = []
    for y in range(a.shape[0]):
        r = a[y]
        if bits < 8:
            raw = pack_bits(r, bits)
        elif bits == 16:
            raw = r.astype("<u2").tobytes()
        else:
            raw = r.astype(np.uint8).tobytes()
        raw += b"\0" * ((-len(raw)) % 4)
        rows.append(raw)
    return b"".join(rows[::-1] if bottom_up else rows)


case("bmp_rgb24", save(photo(W, H), "BMP"))
case("bmp_l8", save(photo(W, H, "L"), "BMP"))
case("bmp_p8", save(pim, "BMP"))
case("bmp_1", save(Image.fromarray((g > 100).astype(np.uint8) * 255).convert("1"), "BMP"))
case("bmp_rgba32_birgb", save(wrgba, "BMP"))  # read back as RGB: 4th byte ignored
v16 = rng.integers(0, 65536, (H, W))
case("bmp_555", bmp(W, H, 16, bmp_rows(v16, 16)))
case("bmp_565", bmp(W, H, 16, bmp_rows(v16, 16), compression=3, masks=(0xF800, 0x7E0, 0x1F)))
case("bmp_555_bitfields", bmp(W, H, 16, bmp_rows(v16, 16), compression=3, masks=(0x7C00, 0x3E0, 0x1F)))
px32 = rng.integers(0, 256, (H, W, 4))
case("bmp_bgra_v4", bmp(W, H, 32, bmp_rows(px32, 32), compression=3, hsize=108, masks=(0xFF0000, 0xFF00, 0xFF, 0xFF000000)))
case("bmp_rgba_v5", bmp(W, H, 32, bmp_rows(px32, 32), compression=3, hsize=124, masks=(0xFF, 0xFF00, 0xFF0000, 0xFF000000)))
case("bmp_xbgr", bmp(W, H, 32, bmp_rows(px32, 32), compression=3, masks=(0xFF000000, 0xFF0000, 0xFF00)))
case("bmp_topdown", bmp(W, H, 24, bmp_rows(rgb, 24, bottom_up=False), top_down=True))
bpal = bytes(rng.integers(0, 256, 4 * 4).astype(np.uint8))
case("bmp_pal_short", bmp(W, H, 8, bmp_rows(idx * 25, 8), palette=bpal, colors=4))
case("bmp_p4", bmp(W, H, 4, bmp_rows(idx, 4), palette=bytes(rng.integers(0, 256, 64).astype(np.uint8)), colors=16))
case("bmp_os2", bmp(W, H, 8, bmp_rows(idx, 8), palette=bytes(rng.integers(0, 256, 3 * 256).astype(np.uint8)), hsize=12))
# the offset points right after the header: Pillow skips a 4*colours palette
case("bmp_offset_quirk", bmp(W, H, 8, bytes(4 * 256) + bmp_rows(idx, 8), palette=b"", offset=14 + 40))


def rle8_rows(a):
    out = bytearray()
    h, w = a.shape
    for y in range(h - 1, -1, -1):
        r = [int(v) for v in a[y]]
        if y == 1:
            out += bytes([0, 2, 0, 1])  # delta: skip this whole row
            continue
        x = 0
        if y == h - 2:
            out += bytes([0, 2, 3, 0])  # delta: 3 pixels right
            x = 3
        while x < w:
            if x == 0 and y % 3 == 0 and w >= 5:
                out += bytes([0, 5] + r[:5] + [0])  # absolute run, padded
                x = 5
                continue
            run = 1
            while x + run < w and r[x + run] == r[x] and run < 255:
                run += 1
            out += bytes([run, r[x]])
            x += run
        out += bytes([0, 0])
    out += bytes([0, 1])
    return bytes(out)


rle_idx = (rng.integers(0, 4, (H, W)) // 3) * 3 + (np.arange(W) // 7) % 2
bpal256 = bytes(rng.integers(0, 256, 4 * 256).astype(np.uint8))
case("bmp_rle8", bmp(W, H, 8, rle8_rows(rle_idx.astype(np.uint8)), compression=1, palette=bpal256))


def rle4_rows(a):
    out = bytearray()
    h, w = a.shape
    for y in range(h - 1, -1, -1):
        r = [int(v) for v in a[y]]
        x = 0
        if w >= 8:
            out += bytes([0, 4, (r[0] << 4) | r[1], (r[2] << 4) | r[3]])  # absolute, 4 pixels
            x = 4
        while x < w:
            n = min(w - x, 6)
            out += bytes([n, (r[x] << 4) | r[x + 1 if x + 1 < w else x]])
            x += n
        out += bytes([0, 0])
    out += bytes([0, 1])
    return bytes(out)


case("bmp_rle4", bmp(W, H, 4, rle4_rows((idx % 16).astype(np.uint8)), compression=2, palette=bytes(rng.integers(0, 256, 64).astype(np.uint8)), colors=16))

with open(os.path.join(OUT, "manifest.txt"), "w") as f:
    f.write("\n".join(manifest) + "\n")
