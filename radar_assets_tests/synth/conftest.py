"""Shared generated volumes (built once per session: generation and decoding dominate the folder's time).

Cases cover two sites and the three VCPs (precipitation 212 and 215, clear-air 35), at times and seeds where
the weather model has convection and stratiform rain near the radar (so value checks are not vacuous).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from radar_assets.lib.synth import archive2 as a2


@dataclass(frozen=True)
class Case:
    site: str
    vcp: int
    seed: int
    when: datetime


CASES = [
    Case("KLOT", 212, 0, datetime(2024, 5, 1, 21, 0, tzinfo=UTC)),
    Case("KTLX", 35, 5, datetime(2024, 5, 1, 3, 0, tzinfo=UTC)),
    Case("KLOT", 215, 0, datetime(2024, 5, 1, 21, 30, tzinfo=UTC)),
]


@dataclass
class Generated:
    case: Case
    vol: a2.SynthVolume
    data: bytes


def _generate(case: Case) -> Generated:
    t = a2.to_epoch_ms(case.when)
    number, start = a2.volume_schedule(case.site, case.vcp, t, t + 600_000)[0]
    vol = a2.build_volume(case.site, start, case.vcp, case.seed, number)
    return Generated(case, vol, a2.encode_volume(vol))


@pytest.fixture(scope="session", params=CASES, ids=lambda c: f"{c.site}-{c.vcp}")
def generated(request) -> Generated:
    return _generate(request.param)


@pytest.fixture(scope="session")
def pyart_radar(generated, tmp_path_factory):
    import warnings

    warnings.filterwarnings("ignore", category=UserWarning)
    pyart = pytest.importorskip("pyart")
    path = tmp_path_factory.mktemp("synth") / generated.vol.key.rsplit("/", 1)[-1]
    path.write_bytes(generated.data)
    return pyart.io.read_nexrad_archive(str(path))
