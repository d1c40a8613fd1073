"""A calibrated price range: split conformal calibration on held-out log-price residuals.

The model predicts log price. On the valid split (never fitted on) the residuals
r = log(y) - log(y_hat) are sorted; for a level 1 - a the range of a new item is
[y_hat * exp(q_low), y_hat * exp(q_high)], with q_low the floor((n + 1) * a / 2)-th smallest
residual and q_high the ceil((n + 1) * (1 - a / 2))-th: equal-tailed split conformal with the
finite-sample correction, which covers the true price of a new item drawn like the calibration
rows with probability >= 1 - a. The range is multiplicative, so its relative width
(high - low) / price is the same for every item; the test split reports the achieved coverage.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

LEVELS = (0.5, 0.8, 0.9, 0.95)
DEFAULT_LEVEL = 0.8
METHOD = (
    "split conformal on the valid split's log-price residuals log(y) - log(y_hat): for level 1-a, "
    "q_low and q_high are the floor((n+1)a/2)-th and ceil((n+1)(1-a/2))-th smallest residuals "
    "(equal-tailed, finite-sample corrected), widened if needed so that q_low <= 0 <= q_high; "
    "low = price * exp(q_low), high = price * exp(q_high). The valid split also picked the "
    "early-stopping epoch, so the test split's coverage is reported as the check."
)


def level_key(level: float) -> str:
    """The card's key of a level: 0.8 -> "0.8"."""
    return f"{float(level):g}"


def conformal_quantiles(residuals: Iterable[float], level: float) -> tuple[float, float, bool]:
    """(q_low, q_high, exact) of the residuals at `level`.

    `exact` is False when the calibration set is too small for the finite-sample guarantee at this
    level (fewer than about 2 / (1 - level) rows): the extreme residual is used instead of infinity.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")
    r = np.sort(np.asarray(list(residuals), dtype="float64"))
    r = r[np.isfinite(r)]
    n = r.size
    if n == 0:
        raise ValueError("no finite residuals to calibrate on")
    tail = (1.0 - level) / 2.0
    k_low = math.floor((n + 1) * tail + 1e-9)  # 1-based ranks; the epsilon absorbs 0.1 + 0.2 effects
    k_high = math.ceil((n + 1) * (1.0 - tail) - 1e-9)
    exact = 1 <= k_low and k_high <= n
    q_low = float(r[max(k_low, 1) - 1])
    q_high = float(r[min(k_high, n) - 1])
    return q_low, q_high, exact


def calibrate(
    y_true: np.ndarray,
    log_pred: np.ndarray,
    level: float = DEFAULT_LEVEL,
    levels: Iterable[float] = LEVELS,
    split: str = "valid",
) -> dict[str, Any]:
    """The card's `interval` block, from true prices and log-price predictions of held-out rows."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"interval level must lie strictly between 0 and 1, got {level}")
    residuals = np.log(np.asarray(y_true, dtype="float64")) - np.asarray(log_pred, dtype="float64")
    quantiles: dict[str, list[float]] = {}
    inexact = []
    for lv in sorted({*map(float, levels), float(level)}):
        q_low, q_high, exact = conformal_quantiles(residuals, lv)
        quantiles[level_key(lv)] = [round(min(q_low, 0.0), 6), round(max(q_high, 0.0), 6)]
        if not exact:
            inexact.append(lv)
    block: dict[str, Any] = {
        "method": METHOD,
        "calibration_split": split,
        "n": int(np.isfinite(residuals).sum()),
        "level": float(level),
        "quantiles": quantiles,
    }
    if inexact:
        block["too_few_rows_for"] = inexact  # the extreme residual stands in for an infinite bound
    return block


def bounds(block: dict[str, Any], price: np.ndarray | float, level: float | None = None) -> tuple[Any, Any]:
    """(low, high) of a price (or an array of prices) at `level` (default: the block's)."""
    q_low, q_high = block["quantiles"][level_key(level if level is not None else block["level"])]
    price = np.asarray(price, dtype="float64")
    return price * math.exp(q_low), price * math.exp(q_high)


def assess(block: dict[str, Any], y_true: np.ndarray, log_pred: np.ndarray) -> dict[str, Any]:
    """Coverage and width of the stored ranges on other rows (the test split).

    Returns the default level's figures at the top and every stored level under `levels`:
    coverage (share of true prices inside the range), median relative width (high - low) / price
    and median width in the currency.
    """
    y = np.asarray(y_true, dtype="float64")
    price = np.exp(np.asarray(log_pred, dtype="float64"))
    levels: dict[str, dict[str, float]] = {}
    for key in block["quantiles"]:
        low, high = bounds(block, price, float(key))
        inside = (y >= low) & (y <= high)
        levels[key] = {
            "coverage": float(np.mean(inside)) if y.size else float("nan"),
            "median_relative_width": float(np.median((high - low) / price)) if y.size else float("nan"),
            "median_width": float(np.median(high - low)) if y.size else float("nan"),
            "below": float(np.mean(y < low)) if y.size else float("nan"),
            "above": float(np.mean(y > high)) if y.size else float("nan"),
        }
    default = levels[level_key(block["level"])]
    return {
        "level": float(block["level"]),
        "n": int(y.size),
        "coverage": default["coverage"],
        "median_relative_width": default["median_relative_width"],
        "median_width": default["median_width"],
        "levels": levels,
    }


def coverage_ok(coverage: float | None, level: float, tolerance: float = 0.05) -> bool:
    """The issue's acceptance band: test coverage within `tolerance` of the nominal level."""
    return coverage is not None and math.isfinite(coverage) and abs(coverage - level) <= tolerance + 1e-12


__all__ = [
    "DEFAULT_LEVEL",
    "LEVELS",
    "METHOD",
    "assess",
    "bounds",
    "calibrate",
    "conformal_quantiles",
    "coverage_ok",
    "level_key",
]
