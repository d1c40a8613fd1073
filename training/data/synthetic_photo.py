"""The synthetic listings' photos: each item drawn as a silhouette in its colour, with its pattern,
its logo or print, and its stains (the photo-only parts of the price formula, data/README.md)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

IMAGE_SIDE = 96


COLOURS = {  # colour: (RGB, log-price effect)
    "black": ((30, 30, 34), 0.05),
    "white": ((238, 238, 232), 0.0),
    "navy": ((28, 40, 90), 0.03),
    "red": ((190, 30, 40), -0.02),
    "green": ((40, 120, 60), -0.03),
    "beige": ((215, 195, 160), 0.04),
    "grey": ((128, 128, 130), 0.0),
    "pink": ((235, 140, 170), -0.04),
    "yellow": ((230, 200, 40), -0.05),
    "brown": ((110, 70, 40), 0.02),
}


def _silhouette(category: str, cut: int, s: float) -> list[tuple[float, float]]:
    """The garment's outline on a unit square scaled to s pixels."""
    shapes = {
        "t-shirt": [
            (0.3, 0.2),
            (0.42, 0.16),
            (0.58, 0.16),
            (0.7, 0.2),
            (0.88, 0.34),
            (0.8, 0.42),
            (0.7, 0.36),
            (0.7, 0.85),
            (0.3, 0.85),
            (0.3, 0.36),
            (0.2, 0.42),
            (0.12, 0.34),
        ],
        "shirt": [
            (0.3, 0.18),
            (0.44, 0.14),
            (0.5, 0.22),
            (0.56, 0.14),
            (0.7, 0.18),
            (0.84, 0.5),
            (0.76, 0.52),
            (0.7, 0.34),
            (0.7, 0.86),
            (0.3, 0.86),
            (0.3, 0.34),
            (0.24, 0.52),
            (0.16, 0.5),
        ],
        "hoodie": [
            (0.32, 0.22),
            (0.4, 0.1),
            (0.6, 0.1),
            (0.68, 0.22),
            (0.86, 0.55),
            (0.78, 0.58),
            (0.7, 0.4),
            (0.7, 0.86),
            (0.3, 0.86),
            (0.3, 0.4),
            (0.22, 0.58),
            (0.14, 0.55),
        ],
        "jacket": [
            (0.3, 0.16),
            (0.5, 0.26),
            (0.7, 0.16),
            (0.86, 0.55),
            (0.78, 0.58),
            (0.72, 0.38),
            (0.72, 0.8),
            (0.28, 0.8),
            (0.28, 0.38),
            (0.22, 0.58),
            (0.14, 0.55),
        ],
        "coat": [
            (0.32, 0.1),
            (0.5, 0.2),
            (0.68, 0.1),
            (0.84, 0.6),
            (0.76, 0.62),
            (0.7, 0.34),
            (0.74, 0.8),
            (0.26, 0.8),
            (0.3, 0.34),
            (0.24, 0.62),
            (0.16, 0.6),
        ],
        "jeans": [(0.3, 0.12), (0.7, 0.12), (0.74, 0.7), (0.58, 0.7), (0.5, 0.3), (0.42, 0.7), (0.26, 0.7)],
        "dress": [(0.4, 0.1), (0.6, 0.1), (0.62, 0.35), (0.76, 0.72), (0.24, 0.72), (0.38, 0.35)],
        "skirt": [(0.34, 0.25), (0.66, 0.25), (0.78, 0.62), (0.22, 0.62)],
        "shoes": [(0.15, 0.55), (0.45, 0.55), (0.5, 0.62), (0.85, 0.68), (0.85, 0.78), (0.15, 0.78)],
        "bag": [(0.25, 0.4), (0.75, 0.4), (0.8, 0.75), (0.2, 0.75)],
    }
    pts = list(shapes[category])
    if cut:  # the long cut stretches the lower edge (or raises the top for shoes and bags)
        lo = {"shoes": (0.78, -0.18), "bag": (0.75, -0.1)}.get(category, (0, 0.12))
        if category in ("shoes", "bag"):
            pts = [(x, y + lo[1] if y < 0.6 else y) for x, y in pts]
        else:
            bottom = max(y for _, y in pts)
            pts = [(x, min(0.95, y + lo[1]) if y > bottom - 0.2 else y) for x, y in pts]
        if category in ("t-shirt", "shirt"):  # long sleeves
            pts = [(min(0.97, x * 1.08) if x > 0.8 else max(0.03, x - 0.05) if x < 0.2 else x, y) for x, y in pts]
    return [(x * s, y * s) for x, y in pts]


def _pattern(
    layer: Image.Image, pattern: str, box: tuple[float, float, float, float], side: int, contrast: tuple[int, int, int]
) -> None:
    """Stripes, dots or checks over the garment's bounding box (the mask keeps them inside it)."""
    x0, x1, y0, y1 = box
    ld = ImageDraw.Draw(layer)
    step = max(4, side // 12)
    if pattern == "stripes":
        for y in range(int(y0), int(y1), step):
            ld.rectangle([x0, y, x1, y + step // 3], fill=contrast)
    elif pattern == "dots":
        for y in range(int(y0) + 2, int(y1), step):
            for x in range(int(x0) + 2, int(x1), step):
                ld.ellipse([x, y, x + step // 3, y + step // 3], fill=contrast)
    elif pattern == "check":
        for v in range(int(min(x0, y0)), int(max(x1, y1)), step):
            ld.line([v, y0, v, y1], fill=contrast, width=1)
            ld.line([x0, v, x1, v], fill=contrast, width=1)


def _mark(draw: ImageDraw.ImageDraw, mark: str, box: tuple[float, float, float, float], side: int) -> None:
    """A logo badge or a big print on the chest."""
    x0, x1, y0, y1 = box
    cx, cy = (x0 + x1) / 2, y0 + (y1 - y0) * 0.35
    if mark == "logo":  # a small gold badge with a dark monogram
        r = side * 0.07
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(212, 175, 55), outline=(60, 40, 10))
        draw.line([cx - r / 2, cy, cx + r / 2, cy], fill=(60, 40, 10), width=2)
    elif mark == "print":  # a big contrasting graphic
        w = (x1 - x0) * 0.28
        draw.rectangle([cx - w, cy - w * 0.6, cx + w, cy + w * 0.6], fill=(20, 160, 200))
        draw.polygon(
            [(cx - w * 0.6, cy + w * 0.4), (cx, cy - w * 0.5), (cx + w * 0.6, cy + w * 0.4)], fill=(250, 90, 20)
        )


def _stains(
    draw: ImageDraw.ImageDraw,
    mask: Image.Image,
    n: int,
    box: tuple[float, float, float, float],
    side: int,
    rng: np.random.Generator,
) -> None:
    """Brown-grey blotches inside the garment."""
    x0, x1, y0, y1 = box
    for _ in range(n):
        for _try in range(20):
            x, y = rng.uniform(x0, x1), rng.uniform(y0, y1)
            if mask.getpixel((int(min(side - 1, x)), int(min(side - 1, y)))):
                break
        r = side * rng.uniform(0.04, 0.07)
        draw.ellipse([x - r, y - r * 0.8, x + r, y + r * 0.8], fill=(92, 70, 38))


def draw_photo(item: dict, rng: np.random.Generator, side: int = IMAGE_SIDE) -> Image.Image:
    """Draw the item: its silhouette in its colour, its pattern, logo or print, and stains."""
    bg = int(rng.integers(215, 250))
    img = Image.new("RGB", (side, side), (bg, bg, bg - int(rng.integers(0, 12))))
    draw = ImageDraw.Draw(img)
    colour = np.array(COLOURS[item["colour"]][0]) + rng.integers(-12, 13, size=3)
    colour = tuple(int(c) for c in np.clip(colour, 0, 255))
    poly = _silhouette(item["category"], item["_cut"], side)
    mask = Image.new("L", (side, side), 0)
    ImageDraw.Draw(mask).polygon(poly, fill=255)
    draw.polygon(poly, fill=colour)
    xs = [p[0] for p in poly]
    ys = [p[1] for p in poly]
    box = (min(xs), max(xs), min(ys), max(ys))
    contrast = (250, 250, 250) if sum(colour) < 380 else (25, 25, 30)
    layer = Image.new("RGB", (side, side), colour)
    _pattern(layer, item["_pattern"], box, side, contrast)
    img.paste(layer, (0, 0), mask)
    draw = ImageDraw.Draw(img)
    _mark(draw, item["_mark"], box, side)
    _stains(draw, mask, item["_stains"], box, side, rng)
    return img
