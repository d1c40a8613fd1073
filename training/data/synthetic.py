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

from training.data.synthetic_photo import COLOURS, draw_photo

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
