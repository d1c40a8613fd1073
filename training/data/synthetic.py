"""The embedded default data set: synthetic second-hand clothing listings with a known price formula.

Each modality carries information the others lack (see data/README.md for the formula):
metadata (brand tier, category, condition, age), text only (material, flaws, receipt), and the
photo only (cut, pattern, logo or print, stains). Every row is drawn from its own random stream
seeded by (seed, row), so the output does not depend on the number of worker processes.

    python -m training.data.synthetic --n 20000 --seed 0 --out data/synthetic
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

IMAGE_SIDE = 96

BRANDS = {  # brand: log-price effect of its tier
    "gucci": 1.3,
    "prada": 1.25,
    "burberry": 1.1,
    "ralph lauren": 0.65,
    "hugo boss": 0.6,
    "the north face": 0.55,
    "levi's": 0.45,
    "tommy hilfiger": 0.5,
    "zara": 0.2,
    "mango": 0.15,
    "cos": 0.3,
    "uniqlo": 0.1,
    "esprit": 0.05,
    "gap": 0.1,
    "h&m": 0.0,
    "primark": -0.25,
    "shein": -0.35,
    "kiabi": -0.2,
    "c&a": -0.1,
    "new look": -0.05,
}
CATEGORIES = {  # category: base log price (EUR)
    "t-shirt": 2.3,
    "shirt": 2.7,
    "hoodie": 3.0,
    "jacket": 3.6,
    "coat": 3.8,
    "jeans": 3.0,
    "dress": 3.1,
    "skirt": 2.7,
    "shoes": 3.4,
    "bag": 3.5,
}
CONDITIONS = {"new_with_tags": 0.3, "like_new": 0.12, "good": 0.0, "fair": -0.25, "poor": -0.55}
CONDITION_P = [0.12, 0.28, 0.35, 0.17, 0.08]
SIZES = {"XS": -0.03, "S": 0.0, "M": 0.02, "L": 0.0, "XL": -0.04}
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
MATERIALS = {  # text only: material phrase -> effect, and the categories it fits
    "genuine leather": (0.55, {"jacket", "skirt", "shoes", "bag", "coat"}),
    "faux leather": (-0.2, {"jacket", "skirt", "shoes", "bag"}),
    "cashmere blend": (0.45, {"coat", "hoodie", "dress"}),
    "merino wool": (0.35, {"coat", "hoodie", "dress", "skirt", "shirt"}),
    "pure silk": (0.4, {"shirt", "dress", "skirt"}),
    "linen": (0.15, {"shirt", "dress", "skirt", "t-shirt"}),
    "organic cotton": (0.1, {"t-shirt", "shirt", "hoodie", "dress", "jeans", "bag"}),
    "cotton": (0.0, {"t-shirt", "shirt", "hoodie", "dress", "jeans", "skirt", "bag"}),
    "denim": (0.05, {"jeans", "jacket", "skirt"}),
    "polyester": (-0.2, {"t-shirt", "shirt", "hoodie", "jacket", "coat", "dress", "skirt", "bag"}),
    "acrylic knit": (-0.25, {"hoodie", "coat", "dress"}),
    "canvas": (-0.05, {"shoes", "bag"}),
}
FLAWS = {  # text only: flaw sentence -> effect
    "": 0.0,
    "There is a small hole near the cuff.": -0.35,
    "One button is missing.": -0.18,
    "The zip sticks a little.": -0.15,
    "Colour has faded after washing.": -0.22,
    "Some pilling on the sleeves.": -0.15,
    "A seam is coming loose.": -0.25,
}
FLAW_P = [0.55, 0.08, 0.08, 0.07, 0.08, 0.08, 0.06]
FILLERS = [
    "From a smoke-free home.",
    "Fits true to size.",
    "Worn only a few times.",
    "Bought last season.",
    "Great for everyday wear.",
    "Selling because it no longer fits.",
    "Happy to bundle with other items.",
    "Washed and ready to wear.",
    "Lovely piece, hardly used.",
    "Quick postage.",
]
RECEIPT = "Original receipt included."  # text only: +0.1
PATTERNS = {"plain": 0.0, "stripes": 0.1, "dots": 0.05, "check": 0.15}  # photo only
PATTERN_P = [0.55, 0.2, 0.12, 0.13]
MARKS = {"none": 0.0, "logo": 0.4, "print": 0.2}  # photo only: a brand logo badge, a big graphic print
MARK_P = [0.65, 0.2, 0.15]
CUT_EFFECT = 0.15  # photo only: long cut (long sleeves, long coat/dress, high-top shoes, large bag)
STAIN_EFFECT = -0.15  # photo only: per visible stain, 0-3
NOISE_SD = 0.12

COLUMNS = [
    "id",
    "brand",
    "category",
    "condition",
    "size",
    "colour",
    "age_months",
    "title",
    "description",
    "image",
    "price",
]


def draw_item(rng: np.random.Generator) -> dict:
    """Draw one listing's attributes and its log price (everything but the photo's pixels)."""
    brand = rng.choice(list(BRANDS))
    category = rng.choice(list(CATEGORIES))
    condition = rng.choice(list(CONDITIONS), p=CONDITION_P)
    size = rng.choice(list(SIZES))
    colour = rng.choice(list(COLOURS))
    age = int(min(180, rng.gamma(1.6, 16.0)))
    fitting = [m for m, (_, cats) in MATERIALS.items() if category in cats]
    material = fitting[rng.integers(len(fitting))]
    flaw = rng.choice(list(FLAWS), p=FLAW_P)
    receipt = rng.random() < 0.12
    pattern = rng.choice(list(PATTERNS), p=PATTERN_P)
    mark = rng.choice(list(MARKS), p=MARK_P)
    cut = int(rng.integers(2))
    stains = int(rng.choice(4, p=[0.6, 0.2, 0.12, 0.08]))
    metadata_part = (
        CATEGORIES[category]
        + BRANDS[brand]
        + CONDITIONS[condition]
        + SIZES[size]
        + COLOURS[colour][1]
        - 0.3 * math.log1p(age / 12)
    )
    text_part = MATERIALS[material][0] + FLAWS[flaw] + (0.1 if receipt else 0.0)
    image_part = PATTERNS[pattern] + MARKS[mark] + CUT_EFFECT * cut + STAIN_EFFECT * stains
    log_price = metadata_part + text_part + image_part + rng.normal(0, NOISE_SD)
    fillers = list(rng.choice(FILLERS, size=int(rng.integers(1, 3)), replace=False))
    sentences = [f"{material.capitalize()} {category} by {brand.title()}, size {size}."]
    sentences += [flaw] if flaw else []
    tail = fillers + ([RECEIPT] if receipt else [])
    rng.shuffle(tail)
    sentences += tail
    return {
        "brand": brand,
        "category": category,
        "condition": condition,
        "size": size,
        "colour": colour,
        "age_months": age,
        "title": f"{brand.title()} {colour} {category}",
        "description": " ".join(s for s in sentences if s),
        "price": round(max(2.0, math.exp(log_price)) * 2) / 2,
        # hidden truth, for tests and the data card; not written to items.csv
        "_pattern": pattern,
        "_mark": mark,
        "_cut": cut,
        "_stains": stains,
        "_parts": (metadata_part, text_part, image_part),
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


def make_row(seed: int, i: int, images_dir: Path | None) -> dict:
    rng = np.random.default_rng([seed, i])
    item = draw_item(rng)
    item["id"] = i + 1
    item["image"] = f"images/{i + 1:06d}.jpg"
    if images_dir is not None:
        draw_photo(item, rng).save(images_dir / f"{i + 1:06d}.jpg", quality=90)
    return item


def _rows(args: tuple[int, int, int, str]) -> list[dict]:
    seed, start, stop, images_dir = args
    return [make_row(seed, i, Path(images_dir)) for i in range(start, stop)]


def generate(n: int, seed: int, out: str | Path, workers: int | None = None, quiet: bool = False) -> Path:
    """Write items.csv and images/ under `out` (via a temporary folder renamed into place)."""
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "images").mkdir(parents=True)
    workers = workers or min(4, os.cpu_count() or 1)
    chunk = 500
    jobs = [(seed, s, min(n, s + chunk), str(tmp / "images")) for s in range(0, n, chunk)]
    rows: list[dict] = []
    t0 = time.time()
    tty = sys.stderr.isatty()
    shown = 0
    with ProcessPoolExecutor(workers) as pool:
        for part in pool.map(_rows, jobs):
            rows.extend(part)
            if not quiet and (tty or len(rows) * 10 // n > shown or len(rows) == n):
                shown = len(rows) * 10 // n
                end = "" if tty and len(rows) < n else "\n"
                print(f"\rgenerating: {len(rows)}/{n} items ({time.time() - t0:.0f}s)", end=end, file=sys.stderr)
    with open(tmp / "items.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out / "items.csv"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=20000, help="number of listings")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="data/synthetic", help="output folder (replaced)")
    p.add_argument("--workers", type=int, default=None)
    a = p.parse_args(argv)
    if a.n <= 0:
        print("error: --n must be positive", file=sys.stderr)
        return 2
    path = generate(a.n, a.seed, a.out, a.workers)
    print(f"wrote {a.n} listings to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
