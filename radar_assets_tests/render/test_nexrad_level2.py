"""The fast Archive II reader agrees with Py-ART on every gate of every real volume, and rejects bad files."""

from __future__ import annotations

import bz2
import gzip
import struct
import warnings

import numpy as np
import pytest

from radar_assets.lib.readers.nexrad_level2 import (
    Level2DecodeError,
    read_level2,
    read_level2_metadata,
)
from radar_assets_tests.conftest import level2_samples, shared_path

FIELDS = {
    "REF": "reflectivity",
    "VEL": "velocity",
    "SW": "spectrum_width",
    "ZDR": "differential_reflectivity",
    "PHI": "differential_phase",
    "RHO": "cross_correlation_ratio",
    "CFP": "clutter_filter_power_removed",
}
SAMPLES = level2_samples()


def _site(path) -> str:
    return path.name[:4]


@pytest.fixture(scope="module", params=SAMPLES, ids=[p.name for p in SAMPLES])
def pair(request):
    """(path, bytes, our volume, Py-ART radar) for one real volume; one Py-ART read per file."""
    import pyart

    path = shared_path(*request.param.relative_to(request.param.parents[2]).parts)
    data = path.read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Nearest-neighbour expansion of coarse gates, so Py-ART's values are our gates repeated.
        radar = pyart.io.read_nexrad_archive(str(path), linear_interp=False, station=_site(path))
    return path, data, read_level2(data, site_hint=_site(path)), radar


def test_every_gate_of_every_moment_equals_pyart(pair):
    _, _, volume, radar = pair
    assert len(volume.sweeps) == radar.nsweeps
    first = float(radar.range["meters_to_center_of_first_gate"])
    spacing = float(radar.range["meters_between_gates"])
    ours_fields = set()
    for sweep in volume.sweeps:
        rows = radar.get_slice(sweep.index)
        for name, moment in sweep.moments.items():
            ours_fields.add(FIELDS[name])
            theirs = radar.fields[FIELDS[name]]["data"][rows]
            data = moment.data
            step = moment.gate_spacing_m / spacing
            if step == 1:
                col = round((moment.first_gate_m - first) / spacing)
                assert col >= 0
                expected = theirs[:, col : col + moment.ngates]
                ours = data[:, : expected.shape[1]]
                assert np.ma.getmaskarray(theirs[:, :col]).all()
                beyond = theirs[:, col + moment.ngates :]
            else:
                # Coarse gates (Message 1 reflectivity): Py-ART repeats each gate `step` times.
                ours = np.ma.repeat(data, int(step), axis=1)[:, : theirs.shape[1]]
                expected = theirs[:, : ours.shape[1]]
                beyond = theirs[:, ours.shape[1] :]
            assert np.array_equal(np.ma.getmaskarray(ours), np.ma.getmaskarray(expected)), (sweep.index, name)
            valid = ~np.ma.getmaskarray(ours)
            np.testing.assert_allclose(ours.data[valid], expected.data[valid], rtol=1e-6, atol=1e-5)
            assert np.ma.getmaskarray(beyond).all(), (sweep.index, name)
            assert data.dtype == np.float32
    assert ours_fields == set(radar.fields)


def test_angles_times_and_location_equal_pyart(pair):
    _, _, volume, radar = pair
    assert volume.site == radar.metadata["instrument_name"].strip() or volume.message_type == 1
    assert volume.vcp == radar.metadata.get("vcp_pattern")
    assert radar.time["units"] == "seconds since " + volume.start_time.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert volume.lat == pytest.approx(radar.latitude["data"][0])
    assert volume.lon == pytest.approx(radar.longitude["data"][0])
    if volume.message_type == 31:
        assert volume.alt_m == pytest.approx(radar.altitude["data"][0])
    else:
        # Message 1: the site table's altitude. (Py-ART's get_nexrad_location converts feet to metres
        # in place in its module-level table on every call, so its altitude depends on call history.)
        from radar_assets.lib.sites import site

        assert volume.alt_m == pytest.approx(site(volume.site).elev_m)
    assert volume.location_from_site_table == (volume.message_type == 1)
    for sweep in volume.sweeps:
        rows = radar.get_slice(sweep.index)
        np.testing.assert_array_equal(sweep.azimuth, radar.azimuth["data"][rows].astype(np.float32))
        np.testing.assert_array_equal(sweep.elevation, radar.elevation["data"][rows])
        np.testing.assert_allclose(sweep.time, radar.time["data"][rows])
        assert sweep.fixed_angle == pytest.approx(float(radar.fixed_angle["data"][sweep.index]), abs=1e-6)
        # Invariant: every moment has one row per ray.
        assert all(m.codes.shape[0] == sweep.nrays for m in sweep.moments.values())


def test_metadata_equals_pyart(pair):
    path, data, volume, radar = pair
    meta = read_level2_metadata(data)
    assert meta["site"] == radar.metadata["instrument_name"].strip()
    assert meta["vcp"] == radar.metadata.get("vcp_pattern")
    assert meta["sweep_count"] == radar.nsweeps
    np.testing.assert_allclose(meta["fixed_angles"], radar.fixed_angle["data"], atol=1e-6)
    assert radar.time["units"] == "seconds since " + meta["start_time"].strftime("%Y-%m-%dT%H:%M:%SZ")
    assert meta["start_time"].tzinfo is not None
    assert meta["message_type"] == volume.message_type
    hinted = read_level2_metadata(data, site_hint=_site(path))
    assert hinted["site"] == _site(path)
    assert hinted["lat"] == pytest.approx(volume.lat)


def test_moment_selection_and_sweep_selection():
    path = shared_path("level2", "KLOT", "KLOT20220317_000842_V06")
    data = path.read_bytes()
    full = read_level2(data)
    some = read_level2(data, moments=["VEL"], sweeps=[1, 3])
    assert [s.index for s in some.sweeps] == [1, 3]
    for s in some.sweeps:
        assert set(s.moments) <= {"VEL"}
        np.testing.assert_array_equal(s.moments["VEL"].codes, full.sweeps[s.index].moments["VEL"].codes)
    with pytest.raises(ValueError, match="unknown moment"):
        read_level2(data, moments=["DBZ"])


# ------------------------------------------------------------------------------------------------
# Truncated and corrupt files
# ------------------------------------------------------------------------------------------------

BZIP2_SAMPLES = [p for p in SAMPLES if p.read_bytes()[28:30] == b"BZ"] if SAMPLES else []


def _record_offsets(data: bytes) -> list[tuple[int, int]]:
    out, pos = [], 24
    while pos + 4 <= len(data):
        size = abs(struct.unpack_from(">i", data, pos)[0])
        out.append((pos + 4, size))
        pos += 4 + size
    return out


@pytest.mark.parametrize("path", BZIP2_SAMPLES, ids=[p.name for p in BZIP2_SAMPLES])
def test_truncated_bzip2_volume_is_rejected(path):
    data = path.read_bytes()
    with pytest.raises(Level2DecodeError, match=r"truncated LDM record at byte \d+"):
        read_level2(data[: len(data) // 2])
    with pytest.raises(Level2DecodeError, match="truncated"):
        read_level2_metadata(data[: len(data) // 2])


@pytest.mark.parametrize("path", BZIP2_SAMPLES, ids=[p.name for p in BZIP2_SAMPLES])
def test_corrupt_bzip2_record_is_rejected(path):
    data = bytearray(path.read_bytes())
    records = _record_offsets(bytes(data))
    k = len(records) // 2
    start, size = records[k]
    middle = start + size // 2
    data[middle : middle + 32] = bytes(b ^ 0xFF for b in data[middle : middle + 32])
    with pytest.raises(Level2DecodeError, match=rf"bzip2 data (corrupt|truncated) in record {k}"):
        read_level2(bytes(data))


GZIP_SAMPLES = [p for p in SAMPLES if p.name.endswith(".gz")]


@pytest.mark.parametrize("path", GZIP_SAMPLES, ids=[p.name for p in GZIP_SAMPLES])
def test_truncated_gzip_and_message_stream_are_rejected(path):
    data = path.read_bytes()
    with pytest.raises(Level2DecodeError, match="gzip stream truncated"):
        read_level2(data[: len(data) // 2])
    raw = gzip.decompress(data)
    # Cut the uncompressed stream mid-message: a message must be complete to be accepted.
    with pytest.raises(Level2DecodeError, match=r"truncated message \d+ at byte \d+"):
        read_level2(raw[: len(raw) // 2 + 7])


def test_not_archive2_is_rejected():
    with pytest.raises(Level2DecodeError, match=r"not an Archive II file: header b'"):
        read_level2(b"SDUS54 KOUN 201616\r\r\nN0QTLX" + bytes(100))
    with pytest.raises(Level2DecodeError, match="not an Archive II file"):
        read_level2(bz2.compress(b"hello"))
