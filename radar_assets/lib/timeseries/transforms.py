"""The series transforms SKOPE's time-series service offers, as pure functions.

A request picks, in this order (as SKOPE applies them):

1. a zonal **statistic** per time step: ``mean`` (the weighted mean) or ``median`` (the weighted p50);
2. a **transform**: ``none``; ``zscore_selected`` (standardised over the requested window itself) or
   ``zscore_fixed`` (standardised with the mean and standard deviation of a fixed reference window);
3. a **smoother**: ``none`` or a moving average, ``trailing`` (the value and the ``width - 1`` before it) or
   ``centred`` (``(width - 1) / 2`` on each side; the width must be odd), ``1 <= width <= 200``.

Missing values (SKOPE's rules)
------------------------------
- A missing input (None or NaN) stays missing; nothing is interpolated.
- Smoothing never fills a gap: a window that contains a missing value, or that runs past either end of the
  series, gives a missing value.
- The z-score's mean and standard deviation ignore missing values; the standard deviation is the
  population one (``ddof=0``, as xarray's ``std``). When it is 0 or undefined (a constant series, fewer than
  one value) every z-score is missing, not NaN or infinite.
- Outputs are lists of Python floats or None: never NaN, so JSON never contains NaN. The ``*_array``
  variants return float64 arrays with NaN for missing instead, for encoders that write NaN as ``null``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

STATISTICS = ("mean", "median")
TRANSFORMS = ("none", "zscore_selected", "zscore_fixed")
SMOOTHERS = ("none", "trailing", "centred")
MIN_WIDTH, MAX_WIDTH = 1, 200

#: The statistic name -> the summary column holding it.
STATISTIC_COLUMNS = {"mean": "mean", "median": "p50"}


class TransformError(ValueError):
    """An invalid transform request; the message says which parameter and why."""


Series = Sequence[float | None]


def as_array(values: Series | np.ndarray) -> np.ndarray:
    """float64 array with NaN for missing values (a float array is taken as is)."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        return values.astype(np.float64, copy=False)
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def to_list(values: np.ndarray) -> list[float | None]:
    """Python floats with None for every non-finite value (JSON-safe)."""
    array = np.asarray(values, dtype=np.float64)
    return np.where(np.isfinite(array), array, None).tolist()


def statistic_column(statistic: str) -> str:
    """The summary column of a statistic name (``mean`` -> ``mean``, ``median`` -> ``p50``)."""
    try:
        return STATISTIC_COLUMNS[statistic]
    except KeyError:
        raise TransformError(
            f"statistic must be one of {', '.join(STATISTICS)} (got {statistic!r})"
        ) from None


def zscore(values: Series, reference: Series | None = None) -> list[float | None]:
    """Standard scores of ``values`` against the mean and population standard deviation of ``reference``
    (default: ``values`` themselves). Missing stays missing; an undefined or zero deviation gives all missing.
    """
    return to_list(zscore_array(values, reference))


def zscore_array(values: Series | np.ndarray, reference: Series | np.ndarray | None = None) -> np.ndarray:
    """:func:`zscore` as a float64 array, NaN for missing."""
    x = as_array(values)
    ref = x if reference is None else as_array(reference)
    ref = ref[np.isfinite(ref)]
    if ref.size == 0:
        return np.full(x.size, np.nan)
    mean = float(ref.mean())
    std = float(np.sqrt(np.mean((ref - mean) ** 2)))
    if not math.isfinite(std) or std == 0.0:
        return np.full(x.size, np.nan)
    out = (x - mean) / std
    out[~np.isfinite(out)] = np.nan
    return out


def check_width(width: int, method: str) -> int:
    """Validate a moving-average width (``1..200``; odd when centred)."""
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)):
        raise TransformError(f"moving average width must be an integer (got {width!r})")
    if not MIN_WIDTH <= int(width) <= MAX_WIDTH:
        raise TransformError(
            f"moving average width must be between {MIN_WIDTH} and {MAX_WIDTH} (got {width})"
        )
    if method == "centred" and int(width) % 2 == 0:
        raise TransformError(
            f"a centred moving average needs an odd width, so that the window is symmetric (got {width})"
        )
    return int(width)


def normalise_method(method: str) -> str:
    """``centred``/``centered``/``center`` -> ``centred``; ``trailing``; ``none``."""
    m = (method or "none").strip().lower()
    if m in ("centred", "centered", "center", "centre"):
        return "centred"
    if m in ("trailing", "none"):
        return m
    raise TransformError(f"smoother must be one of {', '.join(SMOOTHERS)} (got {method!r})")


def moving_average(values: Series, width: int, method: str = "trailing") -> list[float | None]:
    """Moving average; a window with a missing value or past an end of the series gives missing.

    ``trailing``: output ``i`` averages inputs ``i - width + 1 .. i``; ``centred``: inputs
    ``i - h .. i + h`` with ``h = (width - 1) / 2``.
    """
    return to_list(moving_average_array(values, width, method))


def moving_average_array(values: Series | np.ndarray, width: int, method: str = "trailing") -> np.ndarray:
    """:func:`moving_average` as a float64 array, NaN for missing."""
    method = normalise_method(method)
    x = as_array(values)
    if method == "none":
        return x
    width = check_width(width, method)
    n = x.size
    out = np.full(n, np.nan)
    if n >= width:
        missing = ~np.isfinite(x)
        filled = np.where(missing, 0.0, x)
        sums = np.convolve(filled, np.ones(width), mode="valid")
        # Missing values per window from a running count (exact integers, O(n) whatever the width;
        # a second convolution cost as much as the sums).
        running = np.concatenate(([0], np.cumsum(missing, dtype=np.int64)))
        gaps = running[width:] - running[:-width]
        means = np.where(gaps == 0, sums / width, np.nan)
        first = width - 1 if method == "trailing" else (width - 1) // 2
        out[first : first + means.size] = means
    return out


def apply(
    values: Series,
    transform: str = "none",
    reference: Series | None = None,
    smoother: str = "none",
    width: int = 1,
) -> list[float | None]:
    """Transform then smooth one statistic's series (the statistic is chosen by the caller).

    Parameters
    ----------
    values : sequence of float or None
        The statistic per time step, in time order.
    transform : {"none", "zscore_selected", "zscore_fixed"}
    reference : sequence of float or None
        The statistic over the fixed reference window (required for ``zscore_fixed``).
    smoother : {"none", "trailing", "centred"}
    width : int
        Moving-average width (ignored for ``none``).
    """
    return to_list(apply_array(values, transform, reference, smoother, width))


def apply_array(
    values: Series | np.ndarray,
    transform: str = "none",
    reference: Series | np.ndarray | None = None,
    smoother: str = "none",
    width: int = 1,
) -> np.ndarray:
    """:func:`apply` as a float64 array, NaN for missing (never infinite): the API encodes it directly."""
    smoother = normalise_method(smoother)
    if smoother != "none":
        check_width(width, smoother)
    if transform == "none":
        out = as_array(values).copy()
        out[~np.isfinite(out)] = np.nan
    elif transform == "zscore_selected":
        out = zscore_array(values)
    elif transform == "zscore_fixed":
        if reference is None:
            raise TransformError("zscore_fixed needs a reference window (reference_start and reference_end)")
        out = zscore_array(values, reference)
    else:
        raise TransformError(f"transform must be one of {', '.join(TRANSFORMS)} (got {transform!r})")
    if smoother == "none":
        return out
    return moving_average_array(out, width, smoother)
