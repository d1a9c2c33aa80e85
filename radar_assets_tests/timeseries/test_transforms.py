"""SKOPE's series transforms: exact numbers, missing-value rules, width limits."""

from __future__ import annotations

import json
import math

import pytest

from radar_assets.lib.timeseries import transforms as tf


def test_zscore_of_the_selected_window_has_exact_values():
    # Mean 5, population standard deviation exactly 2.
    assert tf.zscore([2, 4, 4, 4, 5, 5, 7, 9]) == [-1.5, -0.5, -0.5, -0.5, 0.0, 0.0, 1.0, 2.0]


def test_zscore_against_a_fixed_reference_window():
    # Reference 1, 3: mean 2, standard deviation 1.
    assert tf.zscore([0, 2, 5, None], reference=[1, 3]) == [-2.0, 0.0, 3.0, None]
    assert tf.apply([0, 2, 5], "zscore_fixed", reference=[1, None, 3]) == [-2.0, 0.0, 3.0]


def test_constant_series_zscore_is_missing_not_nan():
    out = tf.zscore([3.5, 3.5, None, 3.5])
    assert out == [None, None, None, None]
    assert tf.zscore([]) == [] and tf.zscore([None, None]) == [None, None]
    assert tf.zscore([1.0, 2.0], reference=[7.0, 7.0]) == [None, None]  # constant reference window
    assert "NaN" not in json.dumps(tf.apply([3.5, 3.5], "zscore_selected", smoother="trailing", width=2))


def test_missing_inputs_stay_missing_and_smoothing_never_fills_a_gap():
    series = [1.0, 2.0, None, 4.0, 5.0, 6.0, float("nan"), 8.0]
    assert tf.moving_average(series, 2, "trailing") == [None, 1.5, None, None, 4.5, 5.5, None, None]
    assert tf.moving_average(series, 3, "centred") == [None, None, None, None, 5.0, None, None, None]
    assert tf.moving_average(series, 1, "trailing") == [1.0, 2.0, None, 4.0, 5.0, 6.0, None, 8.0]
    assert tf.moving_average(series, 1, "centred") == [1.0, 2.0, None, 4.0, 5.0, 6.0, None, 8.0]
    assert tf.apply(series) == [1.0, 2.0, None, 4.0, 5.0, 6.0, None, 8.0]


def test_widths_at_the_limits():
    ramp = list(range(1, 251))  # 1..250
    trailing = tf.moving_average(ramp, 200, "trailing")
    assert trailing[:199] == [None] * 199
    assert trailing[199] == pytest.approx(100.5)  # mean of 1..200
    assert trailing[249] == pytest.approx(150.5)  # mean of 51..250
    centred = tf.moving_average(ramp, 199, "centred")
    assert centred[98] is None and centred[99] == pytest.approx(100.0) and centred[151] is None
    assert centred[150] == pytest.approx(151.0)
    with pytest.raises(tf.TransformError, match="between 1 and 200 .got 201."):
        tf.moving_average(ramp, 201)
    with pytest.raises(tf.TransformError, match="between 1 and 200 .got 0."):
        tf.moving_average(ramp, 0)
    assert tf.moving_average([1.0, 2.0], 3, "trailing") == [None, None]  # window longer than the series


def test_even_centred_width_is_rejected_with_a_clear_message():
    with pytest.raises(tf.TransformError, match=r"centred moving average needs an odd width.*\(got 4\)"):
        tf.moving_average([1, 2, 3, 4, 5], 4, "centred")
    with pytest.raises(tf.TransformError, match="odd width"):
        tf.apply([1, 2, 3], smoother="centered", width=2)  # SKOPE's spelling is accepted too
    assert tf.moving_average([1, 2, 3, 4, 5], 4, "trailing") == [None, None, None, 2.5, 3.5]


def test_transform_then_smooth_order_and_bad_names():
    # z-scores of 1..5: (x - 3) / sqrt(2); trailing mean of two consecutive ones.
    out = tf.apply([1, 2, 3, 4, 5], "zscore_selected", smoother="trailing", width=2)
    s = math.sqrt(2.0)
    assert out[0] is None
    assert out[1:] == pytest.approx([-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s])
    with pytest.raises(tf.TransformError, match="transform must be one of"):
        tf.apply([1.0], "log")
    with pytest.raises(tf.TransformError, match="smoother must be one of"):
        tf.apply([1.0], smoother="gaussian", width=3)
    with pytest.raises(tf.TransformError, match="needs a reference window"):
        tf.apply([1.0], "zscore_fixed")
    assert tf.statistic_column("median") == "p50" and tf.statistic_column("mean") == "mean"
    with pytest.raises(tf.TransformError, match="statistic must be one of mean, median"):
        tf.statistic_column("mode")
    with pytest.raises(tf.TransformError, match="must be an integer"):
        tf.moving_average([1.0], 2.5)
