"""The bad-image corpus: photo files a marketplace receives (broken, hostile, or just unusual), each
with what the service must answer: a price, or a 4xx whose message says what is wrong.

Generated in memory (no fixtures); used by tests/robustness and by the soak's invalid traffic.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

PRICE = 200


@dataclass(frozen=True)
class BadImage:
    """One corpus entry: the file, the name and type a browser would send, what must come back."""

    name: str
    data: bytes
    status: int = PRICE  # 200: a price; else the 4xx
    message: str = ""  # part of `detail` when refused
    filename: str = "photo.jpg"
    media_type: str = "image/jpeg"


def photo(size: tuple[int, int] = (48, 32), seed: int = 0, block: int = 8) -> Image.Image:
    """An RGB test photo of flat ``block`` x ``block`` colour squares (flat blocks survive JPEG
    compression and rotation unchanged, so an upright copy decodes to the same pixels)."""
    rng = np.random.default_rng(seed)
    cells = rng.integers(0, 256, size=(size[1] // block + 1, size[0] // block + 1, 3), dtype=np.uint8)
    pixels = np.kron(cells, np.ones((block, block, 1), dtype=np.uint8))[: size[1], : size[0]]
    return Image.fromarray(np.ascontiguousarray(pixels), "RGB")


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def noise_jpeg(size: tuple[int, int] = (64, 64), seed: int = 1) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    return encode(Image.fromarray(pixels, "RGB"), "JPEG", quality=90)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels but whose data is a few bytes: a
    decompression bomb's shape (the pixel count is known from the header alone)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small JPEG whose frame header (SOF0) is patched to claim width x height."""
    data = bytearray(encode(photo((16, 16)), "JPEG"))
    at = data.index(b"\xff\xc0")
    data[at + 5 : at + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def gif_declaring(width: int, height: int) -> bytes:
    data = bytearray(encode(photo((8, 8)).convert("P"), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)  # the logical screen
    at = data.index(b"\x2c")  # the image descriptor
    data[at + 5 : at + 9] = struct.pack("<HH", width, height)
    return bytes(data)


def png_16bit(size: tuple[int, int] = (40, 24), grey: bool = False) -> bytes:
    """A 16-bit PNG (RGB, or greyscale), built by hand: Pillow writes 16-bit only for greyscale."""
    width, height = size
    channels, colour_type = (1, 0) if grey else (3, 2)
    rows = b"".join(
        b"\x00" + np.linspace(0, 65535, width * channels).astype(">u2").tobytes()[:: -1 if y % 2 else 1]
        for y in range(height)
    )
    ihdr = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(rows))
        + _png_chunk(b"IEND", b"")
    )


def palette_with_transparency() -> bytes:
    image = photo((32, 32)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return encode(image, "PNG", transparency=0)


def animated_gif(frames: int = 4) -> bytes:
    images = [photo((32, 32), seed=s).convert("P") for s in range(frames)]
    return encode(images[0], "GIF", save_all=True, append_images=images[1:], duration=80, loop=0)


def animated_webp(frames: int = 3) -> bytes:
    images = [photo((32, 32), seed=s) for s in range(frames)]
    return encode(images[0], "WEBP", save_all=True, append_images=images[1:], duration=80)


def exif_jpeg(image: Image.Image, orientation: int, **options: object) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(image, "JPEG", exif=exif.tobytes(), **options)


# Orientation tag -> the transpose that turns the stored pixels upright (EXIF 2.3).
UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# The inverse: how a camera stores an upright scene under each tag.
STORED = {2: UPRIGHT[2], 3: UPRIGHT[3], 4: UPRIGHT[4], 5: UPRIGHT[5], 6: UPRIGHT[8], 7: UPRIGHT[7], 8: UPRIGHT[6]}


def rotated_pair(orientation: int, size: tuple[int, int] = (48, 32)) -> tuple[bytes, bytes]:
    """(a JPEG stored sideways with an EXIF orientation tag, the same photo stored upright as a
    plain JPEG). Flat 8x8 blocks at full chroma resolution make both decode to the same pixels."""
    upright = photo(size, seed=5)
    stored = upright.transpose(STORED[orientation])
    options = {"quality": 95, "subsampling": 0}
    return exif_jpeg(stored, orientation, **options), encode(upright, "JPEG", **options)


@lru_cache
def bad_images() -> tuple[BadImage, ...]:
    """The corpus, each entry with its expected answer (see BadImage)."""
    base = photo()
    corrupt_png = bytearray(encode(base, "PNG"))
    corrupt_png[60] ^= 0xFF  # inside the IDAT data: its checksum no longer matches
    bad_crc_png = bytearray(encode(base, "PNG"))
    idat = bad_crc_png.index(b"IDAT")
    bad_crc_png[idat + 4 + int.from_bytes(bad_crc_png[idat - 4 : idat], "big")] ^= 0xFF  # the data is intact
    return (
        # refused: empty, broken, not images, or types we do not take
        BadImage("zero bytes", b"", 422, "image is empty"),
        BadImage("truncated JPEG", noise_jpeg()[:2500], 422, "image is truncated or corrupt"),
        BadImage("JPEG header only", noise_jpeg()[:20], 422, "image is not a decodable image"),
        BadImage("text named .jpg", b"Lovely dress, barely worn.\nPickup only.\n", 422, "image is text, not an image"),
        BadImage(
            "HTML named .jpg",
            b"<!doctype html><html><body><script>alert(1)</script><img src=x onerror=alert(2)></body></html>",
            422,
            "image is text, not an image",
            media_type="text/html",
        ),
        BadImage(
            "SVG",
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
            b"<script>alert(1)</script><rect width='10' height='10'/></svg>",
            415,
            "SVG images are not accepted",
            "photo.svg",
            "image/svg+xml",
        ),
        BadImage("random bytes", np.random.default_rng(3).bytes(4096), 422, "image is not a decodable image"),
        BadImage("PNG with a corrupt data chunk", bytes(corrupt_png), 422, "image is truncated or corrupt", "photo.png", "image/png"),
        # Pillow ignores a wrong IDAT checksum, the model's decoder (libpng) does not
        BadImage("PNG with a wrong checksum only", bytes(bad_crc_png), 422, "the model could not process this item (Invalid PNG data", "photo.png", "image/png"),
        BadImage("BMP", encode(base, "BMP"), 415, "BMP images are not accepted", "photo.bmp", "image/bmp"),
        BadImage("TIFF", encode(base, "TIFF"), 415, "TIFF images are not accepted", "photo.tiff", "image/tiff"),
        BadImage("PDF", b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", 415, "PDF images are not accepted", "photo.pdf", "application/pdf"),
        BadImage("HEIC", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64, 415, "HEIC images are not accepted", "photo.heic", "image/heic"),
        # decompression bombs: refused from the header, before any pixel is decoded
        BadImage("PNG declaring 50000x50000", png_declaring(50_000, 50_000), 413, "image has 2500000000 pixels", "bomb.png", "image/png"),
        BadImage("PNG declaring 10000x10000", png_declaring(10_000, 10_000), 413, "image is 10000x10000 = 100000000 pixels", "bomb.png", "image/png"),
        BadImage("JPEG declaring 65000x65000", jpeg_declaring(65_000, 65_000), 413, "image has 4225000000 pixels"),
        BadImage("GIF declaring 65535x65535", gif_declaring(65_535, 65_535), 413, "image has 4294836225 pixels", "bomb.gif", "image/gif"),
        # unusual but fine: each gives a price
        BadImage("very wide 100000x1 PNG", encode(Image.new("RGB", (100_000, 1), (90, 40, 20)), "PNG"), PRICE, filename="wide.png", media_type="image/png"),
        BadImage("very tall 1x100000 PNG", encode(Image.new("RGB", (1, 100_000), (20, 40, 90)), "PNG"), PRICE, filename="tall.png", media_type="image/png"),
        BadImage("1x1 pixel", encode(Image.new("RGB", (1, 1), (200, 10, 10)), "PNG"), PRICE, filename="dot.png", media_type="image/png"),
        BadImage("16-bit RGB PNG", png_16bit(), PRICE, filename="deep.png", media_type="image/png"),
        BadImage("16-bit greyscale PNG", png_16bit(grey=True), PRICE, filename="deep.png", media_type="image/png"),
        BadImage("CMYK JPEG", encode(base.convert("CMYK"), "JPEG", quality=90)),
        BadImage("progressive JPEG", encode(base, "JPEG", quality=85, progressive=True)),
        BadImage("greyscale JPEG", encode(base.convert("L"), "JPEG")),
        BadImage("greyscale PNG", encode(base.convert("L"), "PNG"), PRICE, filename="grey.png", media_type="image/png"),
        BadImage("palette PNG with transparency", palette_with_transparency(), PRICE, filename="palette.png", media_type="image/png"),
        BadImage("RGBA PNG", encode(base.convert("RGBA"), "PNG"), PRICE, filename="alpha.png", media_type="image/png"),
        BadImage("animated GIF", animated_gif(), PRICE, filename="anim.gif", media_type="image/gif"),
        BadImage("WebP", encode(base, "WEBP", quality=80), PRICE, filename="photo.webp", media_type="image/webp"),
        BadImage("lossless WebP with alpha", encode(base.convert("RGBA"), "WEBP", lossless=True), PRICE, filename="photo.webp", media_type="image/webp"),
        BadImage("animated WebP", animated_webp(), PRICE, filename="anim.webp", media_type="image/webp"),
        BadImage("EXIF-rotated JPEG (orientation 6)", rotated_pair(6)[0]),
        BadImage("JPEG with an invalid orientation (9)", exif_jpeg(base, 9)),
        BadImage("JPEG named .png, sent as text/plain", encode(base, "JPEG"), PRICE, filename="photo.png", media_type="text/plain"),
    )  # fmt: skip
