"""Level III products: values equal Py-ART's, metadata, and decode errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from radar_assets.lib.readers.nexrad_level3 import Level3DecodeError, read_level3, read_level3_metadata
from radar_assets_tests.conftest import level3_samples, shared_path

L3 = level3_samples()


def _local(path):
    return shared_path(*path.relative_to(path.parents[2]).parts)


@pytest.mark.parametrize("path", L3, ids=[p.name for p in L3])
def test_values_and_metadata_equal_pyart(path):
    import pyart

    path = _local(path)
    data = path.read_bytes()
    product = read_level3(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        radar = pyart.io.read_nexrad_level3(str(path))
    (field,) = radar.fields
    theirs = radar.fields[field]["data"]
    moment = product.sweep.moments[product.moment]
    ours = moment.data
    assert ours.shape == theirs.shape
    assert np.array_equal(np.ma.getmaskarray(ours), np.ma.getmaskarray(theirs))
    np.testing.assert_allclose(ours.compressed(), theirs.compressed(), rtol=1e-6)
    assert product.lat == pytest.approx(radar.latitude["data"][0])
    assert product.lon == pytest.approx(radar.longitude["data"][0])
    assert radar.time["units"] == "seconds since " + product.time.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert product.elevation == pytest.approx(float(radar.fixed_angle["data"][0]))
    # Deliberate differences: ray centres (Py-ART gives start angles) and gate centres.
    start = radar.azimuth["data"]
    half = (product.sweep.azimuth - start) % 360.0
    assert np.all((half > 0) & (half <= 1.0))
    spacing = float(radar.range["data"][1] - radar.range["data"][0])
    assert moment.first_gate_m == pytest.approx(float(radar.range["data"][0]) + spacing / 2)
    meta = read_level3_metadata(data)
    assert meta["product_code"] == product.product_code
    assert meta["site"] == product.site and len(meta["site"]) == 4
    assert meta["time"] == product.time
    assert meta["elevation"] == product.elevation
    assert meta["product_name"] and meta["moment"] == product.moment


def test_product_kinds():
    kinds = {read_level3_metadata(_local(p).read_bytes())["moment"] for p in L3}
    assert {"REF", "VEL", "HCA", "PRECIP", "RATE"} <= kinds


@pytest.mark.parametrize("cut", [0.5, 0.1])
def test_truncated_or_foreign_product_is_rejected(cut):
    path = _local(L3[0]) if L3 else shared_path("level3")
    data = path.read_bytes()
    with pytest.raises(Level3DecodeError):
        read_level3(data[: int(len(data) * cut)])
    with pytest.raises(Level3DecodeError, match="not a decodable Level III product"):
        read_level3(b"AR2V0006." + bytes(200))
