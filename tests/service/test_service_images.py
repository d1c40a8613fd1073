"""Image checks and conversions of service.images (no model needed)."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from service.images import ImageError, decode_base64_image, prepare_image
from tests.support.service_testkit import image_bytes

LIMITS = {"max_bytes": 1_000_000, "max_pixels": 1_000_000}


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but whose data is tiny (a decompression bomb's
    shape: the pixel count is known before anything is decoded)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def png_16bit_rgb(width: int, height: int) -> bytes:
    rows = b"".join(b"\x00" + np.full(width * 3, 40000 + 100 * y, dtype=">u2").tobytes() for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


def jpeg_with_orientation(orientation: int) -> tuple[bytes, Image.Image]:
    """A JPEG tagged with an EXIF orientation, and the pixels it holds as stored."""
    stored = Image.open(io.BytesIO(image_bytes("PNG", size=(32, 16), seed=4))).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    stored.save(out, format="JPEG", quality=95, exif=exif.tobytes())
    return out.getvalue(), decoded(out.getvalue()).convert("RGB")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_plain_rgb_jpeg_and_png_pass_through_byte_for_byte(fmt: str) -> None:
    data = image_bytes(fmt)
    prepared = prepare_image(data, **LIMITS)
    assert prepared.passthrough is True
    assert prepared.data == data
    assert (prepared.width, prepared.height) == (32, 32)


def test_exif_rotated_jpeg_is_turned_upright_and_reencoded_as_png() -> None:
    data, stored = jpeg_with_orientation(6)  # stored 32x16, to be shown rotated 90 deg clockwise
    prepared = prepare_image(data, **LIMITS)
    assert prepared.passthrough is False
    upright = decoded(prepared.data)
    assert upright.format == "PNG" and upright.mode == "RGB"
    assert upright.size == (16, 32)
    expected = stored.transpose(Image.Transpose.ROTATE_270)
    assert np.array_equal(np.asarray(upright), np.asarray(expected))


@pytest.mark.parametrize(
    ("fmt", "mode", "save"),
    [
        ("PNG", "L", {}),
        ("JPEG", "L", {}),
        ("PNG", "P", {}),
        ("PNG", "RGBA", {}),
        ("PNG", "LA", {}),
        ("JPEG", "CMYK", {}),
        ("GIF", "P", {}),
        ("WEBP", "RGB", {"lossless": True}),
        ("WEBP", "RGBA", {"lossless": True}),
    ],
)
def test_other_modes_and_formats_become_rgb_png(fmt: str, mode: str, save: dict) -> None:
    prepared = prepare_image(image_bytes(fmt, mode=mode, **save), **LIMITS)
    assert prepared.passthrough is False
    image = decoded(prepared.data)
    assert (image.format, image.mode, image.size) == ("PNG", "RGB", (32, 32))


def test_transparent_pixels_are_composited_over_white() -> None:
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (0, 0, 255, 255))
    out = io.BytesIO()
    rgba.save(out, format="PNG")
    image = decoded(prepare_image(out.getvalue(), **LIMITS).data)
    assert image.getpixel((5, 5)) == (255, 255, 255)
    assert image.getpixel((0, 0)) == (0, 0, 255)


def test_sixteen_bit_png_is_converted_and_not_passed_through() -> None:
    data = png_16bit_rgb(8, 8)
    prepared = prepare_image(data, **LIMITS)
    assert prepared.passthrough is False
    image = decoded(prepared.data)
    assert image.mode == "RGB"
    assert image.getpixel((0, 0)) == (156, 156, 156)  # 40000 / 65535 * 255


def test_sixteen_bit_greyscale_png_is_scaled_not_clipped() -> None:
    grey = Image.fromarray(np.full((8, 8), 65535, dtype=np.uint16))
    out = io.BytesIO()
    grey.save(out, format="PNG")
    image = decoded(prepare_image(out.getvalue(), **LIMITS).data)
    assert image.getpixel((3, 3)) == (255, 255, 255)


def test_animated_gif_uses_its_first_frame() -> None:
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((255, 0, 0), (0, 255, 0))]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:])
    image = decoded(prepare_image(out.getvalue(), **LIMITS).data)
    assert image.getpixel((0, 0)) == (255, 0, 0)


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        (b"", 422, "image is empty"),
        (b"hello, this is plain text and not a photo", 422, "image is text, not an image"),
        (b"\x00\x01\x02\x03garbage\xff\xfe" * 10, 422, "image is not a decodable image"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', 415, "SVG images are not accepted"),
        (b"<svg width='10' height='10'></svg>", 415, "SVG images are not accepted"),
        (b"%PDF-1.4 ...", 415, "PDF images are not accepted"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", 415, "HEIC images are not accepted"),
    ],
)
def test_refused_payloads(data: bytes, status: int, message: str) -> None:
    with pytest.raises(ImageError) as caught:
        prepare_image(data, **LIMITS)
    assert caught.value.status == status
    assert message in caught.value.message


def test_bmp_is_refused_with_415() -> None:
    with pytest.raises(ImageError) as caught:
        prepare_image(image_bytes("BMP"), **LIMITS)
    assert (caught.value.status, caught.value.message) == (
        415,
        "BMP images are not accepted; send a JPEG, PNG, WebP or GIF photo",
    )


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF"])
def test_truncated_images_are_422(fmt: str) -> None:
    data = image_bytes(fmt, size=(64, 64))
    with pytest.raises(ImageError) as caught:
        prepare_image(data[: len(data) * 2 // 3], **LIMITS)
    assert caught.value.status == 422
    assert caught.value.message.startswith("image ")


def test_file_over_max_bytes_is_413() -> None:
    data = image_bytes("PNG", size=(64, 64))
    with pytest.raises(ImageError) as caught:
        prepare_image(data, max_bytes=len(data) - 1, max_pixels=10**6)
    assert caught.value.status == 413
    assert f"over the limit of {len(data) - 1} bytes (MAX_IMAGE_BYTES)" in caught.value.message


def test_decompression_bomb_is_413_before_decoding() -> None:
    bomb = png_header_only(60_000, 60_000)  # 3.6 billion pixels announced in 100 bytes
    assert len(bomb) < 200
    with pytest.raises(ImageError) as caught:
        prepare_image(bomb, max_bytes=10**7, max_pixels=50_000_000)
    assert caught.value.status == 413
    assert "pixels" in caught.value.message


def test_image_over_max_pixels_is_413() -> None:
    with pytest.raises(ImageError) as caught:
        prepare_image(image_bytes("PNG", size=(40, 30)), max_bytes=10**6, max_pixels=1000)
    assert caught.value.status == 413
    assert caught.value.message == ("image is 40x30 = 1200 pixels, over the limit of 1000 (MAX_IMAGE_PIXELS)")


@pytest.mark.parametrize(
    "encode",
    [
        lambda b: base64.b64encode(b).decode(),
        lambda b: base64.urlsafe_b64encode(b).decode(),
        lambda b: base64.urlsafe_b64encode(b).decode().rstrip("="),
        lambda b: "data:image/png;base64," + base64.b64encode(b).decode(),
        lambda b: "DATA:image/jpeg;BASE64," + base64.urlsafe_b64encode(b).decode(),
        lambda b: base64.encodebytes(b).decode(),  # MIME style, with line breaks
    ],
)
def test_base64_variants_decode(encode) -> None:
    data = bytes(range(256)) * 3 + b"\xfb\xff"  # bytes that need + / (or - _) in base64
    assert decode_base64_image(encode(data), 10_000) == data


@pytest.mark.parametrize(
    ("text", "status", "message"),
    [
        ("not base64 at all!", 422, "image is not valid base64"),
        ("abcde", 422, "image is not valid base64"),
        ("", 422, "image is empty"),
        ("data:image/png;base64,", 422, "image is empty"),
        ("data:image/svg+xml;base64,PHN2Zz4=", 415, "SVG images are not accepted"),
        ("data:text/plain;base64,aGVsbG8=", 415, "media type 'text/plain' is not an image"),
        ("data:image/png,rawdata", 422, "data URI must be base64-encoded"),
    ],
)
def test_bad_base64(text: str, status: int, message: str) -> None:
    with pytest.raises(ImageError) as caught:
        decode_base64_image(text, 10_000)
    assert caught.value.status == status
    assert message in caught.value.message


def test_base64_over_the_limit_is_413_before_decoding() -> None:
    with pytest.raises(ImageError) as caught:
        decode_base64_image("A" * 4000, 1000)
    assert caught.value.status == 413
    assert "MAX_IMAGE_BYTES" in caught.value.message
