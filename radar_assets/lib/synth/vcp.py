"""Volume Coverage Pattern (VCP) definitions for the synthetic NEXRAD generator.

Three operational WSR-88D patterns are modelled after the RDA/RPG ICD (2620002, Message 5 "Volume Coverage
Pattern Data") and after real Archive II volumes:

- **VCP 212** (precipitation, SZ-2 Doppler): 14 elevations, split cuts (surveillance CS + Doppler CD) at the
  three lowest, about 4.5 minutes per volume.
- **VCP 35** (clear air, SZ-2): 9 elevations up to 6.4 deg, split cuts at the three lowest, about 6 minutes.
- **VCP 215** (precipitation, more elevations): 15 elevations up to 19.5 deg, split cuts at the three lowest,
  about 6 minutes.

Geometry (as in real Build 19+ volumes): 250 m gates, first gate centred at 2125 m; reflectivity to at most
1832 gates (460 km) and below 70 kft; Doppler moments to at most 1192 gates (300 km). Split cuts use 0.5 deg
azimuth spacing (super resolution, 720 radials); all other cuts 1.0 deg (360 radials).

Invariants
----------
- Elevation angles are exactly representable in the ICD 16-bit angle code (``code * 360 / 65536``), so the
  fixed angle read back from Message 5 equals :attr:`Cut.elevation` to float32 precision.
- Gate counts are multiples of 4 (so every Message 31 has an even length, as the ICD requires).
- :attr:`VCP.period_s` is the spacing of successive volume starts and is larger than the last radial time
  of a volume; it lies within [240, 360] s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

GATE_SPACING_M = 250
FIRST_GATE_M = 2125
MAX_REF_GATES = 1832
MAX_DOP_GATES = 1192
EARTH_RADIUS_M = 6_371_000.0
KE = 4.0 / 3.0  # effective earth radius factor (standard refraction)
TOP_HEIGHT_M = 21_336.0  # 70 kft: reflectivity is not recorded above this height
TRANSITION_S = 1.2  # antenna transition time between cuts


def angle_code(deg: float) -> int:
    """ICD 16-bit angle code (binary angle, LSB 360/65536 deg) of an angle in degrees."""
    return int(round(deg * 65536.0 / 360.0)) & 0xFFFF


def code_angle(code: int) -> float:
    return code * 360.0 / 65536.0


def beam_height_m(range_m, elevation_deg: float, ke: float = KE):
    """Height of the beam centre above the antenna (4/3 earth model); works on numbers and arrays."""
    import numpy as np

    a = ke * EARTH_RADIUS_M
    r = np.asarray(range_m, dtype=np.float64)
    e = math.radians(elevation_deg)
    return np.sqrt(r * r + a * a + 2.0 * r * a * math.sin(e)) - a


def ground_range_m(range_m, elevation_deg: float, ke: float = KE):
    """Distance along the earth's surface to the point below the beam centre (4/3 earth model)."""
    import numpy as np

    a = ke * EARTH_RADIUS_M
    r = np.asarray(range_m, dtype=np.float64)
    h = beam_height_m(r, elevation_deg, ke)
    return a * np.arcsin(r * math.cos(math.radians(elevation_deg)) / (a + h))


@dataclass(frozen=True)
class Cut:
    """One elevation cut (one 360-degree sweep) of a VCP.

    ``waveform`` is ``"CS"`` (contiguous surveillance, reflectivity only, long PRT), ``"CD"`` (contiguous
    Doppler, paired with the preceding CS cut), or ``"B"`` (batch / single-cut: all moments).
    """

    elevation: float
    waveform: str
    super_res: bool
    duration_s: float
    nyquist_ms: float
    unambiguous_range_km: float

    @property
    def azimuth_spacing(self) -> float:
        return 0.5 if self.super_res else 1.0

    @property
    def nrays(self) -> int:
        return 720 if self.super_res else 360

    @property
    def moments(self) -> tuple[str, ...]:
        return ("REF",) if self.waveform == "CS" else ("REF", "VEL", "SW")

    @property
    def ref_gates(self) -> int:
        """Reflectivity gates: all of 460 km unless the beam climbs above 70 kft first (multiple of 4)."""
        if self.waveform == "CD":
            return MAX_DOP_GATES
        return _gates_below_top(self.elevation, MAX_REF_GATES)

    @property
    def dop_gates(self) -> int:
        """Velocity and spectrum-width gates (0 for surveillance cuts)."""
        if self.waveform == "CS":
            return 0
        return min(MAX_DOP_GATES, self.ref_gates)

    @property
    def elevation_code(self) -> int:
        return angle_code(self.elevation)


@cache
def _gates_below_top(elevation: float, max_gates: int) -> int:
    import numpy as np

    ranges = FIRST_GATE_M + GATE_SPACING_M * np.arange(max_gates)
    below = np.nonzero(beam_height_m(ranges, elevation) <= TOP_HEIGHT_M)[0]
    n = int(below[-1]) + 1 if below.size else 4
    return max(4, min(max_gates, n - n % 4))


@dataclass(frozen=True)
class VCP:
    number: int
    cuts: tuple[Cut, ...]
    period_s: float
    clear_air: bool

    @property
    def elevations(self) -> list[float]:
        """Distinct elevation angles, lowest first (split cuts counted once)."""
        seen: list[float] = []
        for c in self.cuts:
            if c.elevation not in seen:
                seen.append(c.elevation)
        return seen

    def cut_start_offsets_s(self) -> list[float]:
        """Start of each cut in seconds after the volume start (cuts follow one another with a transition)."""
        out, t = [], 0.0
        for c in self.cuts:
            out.append(t)
            t += c.duration_s + TRANSITION_S
        return out

    @property
    def scan_duration_s(self) -> float:
        offs = self.cut_start_offsets_s()
        return offs[-1] + self.cuts[-1].duration_s


def _exact(deg: float) -> float:
    """Round an angle to the nearest ICD angle code (so Message 5 and Message 31 agree exactly)."""
    return code_angle(angle_code(deg))


def _split(elev: float, cs_s: float, cd_s: float, cd_nyq: float, cd_ur: float) -> list[Cut]:
    e = _exact(elev)
    return [
        Cut(e, "CS", True, cs_s, 8.32, 466.0),
        Cut(e, "CD", True, cd_s, cd_nyq, cd_ur),
    ]


def _batch(elev: float, dur: float, nyq: float, ur: float) -> Cut:
    return Cut(_exact(elev), "B", False, dur, nyq, ur)


@cache
def get_vcp(number: int) -> VCP:
    """The VCP definition for 212, 35 or 215.

    Raises
    ------
    ValueError
        For any other VCP number.
    """
    if number == 212:
        cuts = [
            *_split(0.4834, 16.2, 20.3, 28.34, 137.0),
            *_split(0.88, 16.2, 20.3, 28.34, 137.0),
            *_split(1.32, 14.9, 20.3, 28.34, 137.0),
            _batch(1.80, 13.0, 26.24, 148.0),
            _batch(2.417, 12.5, 26.24, 148.0),
            _batch(3.12, 12.1, 26.24, 148.0),
            _batch(4.00, 12.9, 26.24, 148.0),
            _batch(5.10, 12.9, 26.24, 148.0),
            _batch(6.416, 12.9, 26.24, 148.0),
            _batch(8.00, 12.0, 28.34, 137.0),
            _batch(10.02, 12.0, 30.60, 127.0),
            _batch(12.48, 11.8, 33.21, 117.0),
            _batch(15.60, 11.8, 33.21, 117.0),
            _batch(19.51, 11.8, 33.21, 117.0),
        ]
        return VCP(212, tuple(cuts), 270.0, False)
    if number == 35:
        cuts = [
            *_split(0.4834, 45.0, 24.5, 23.96, 162.0),
            *_split(0.88, 45.0, 24.5, 23.96, 162.0),
            *_split(1.32, 42.0, 24.5, 23.96, 162.0),
            _batch(1.80, 22.9, 23.96, 162.0),
            _batch(2.417, 19.8, 23.96, 162.0),
            _batch(3.12, 20.8, 23.96, 162.0),
            _batch(4.00, 19.4, 23.96, 162.0),
            _batch(5.10, 19.4, 23.96, 162.0),
            _batch(6.416, 19.4, 23.96, 162.0),
        ]
        return VCP(35, tuple(cuts), 348.0, True)
    if number == 215:
        cuts = [
            *_split(0.4834, 19.0, 22.0, 28.34, 137.0),
            *_split(0.88, 19.0, 22.0, 28.34, 137.0),
            *_split(1.32, 18.0, 22.0, 28.34, 137.0),
            _batch(1.80, 18.0, 26.24, 148.0),
            _batch(2.417, 18.0, 26.24, 148.0),
            _batch(3.12, 18.0, 26.24, 148.0),
            _batch(4.00, 17.0, 26.24, 148.0),
            _batch(5.10, 17.0, 26.24, 148.0),
            _batch(6.416, 17.0, 26.24, 148.0),
            _batch(8.00, 16.0, 28.34, 137.0),
            _batch(10.00, 16.0, 30.60, 127.0),
            _batch(12.00, 16.0, 33.21, 117.0),
            _batch(14.00, 15.5, 33.21, 117.0),
            _batch(16.70, 15.5, 33.21, 117.0),
            _batch(19.51, 15.5, 33.21, 117.0),
        ]
        return VCP(215, tuple(cuts), 354.0, False)
    raise ValueError(f"unsupported VCP {number}: the generator knows 212, 35 and 215")


SUPPORTED_VCPS = (212, 35, 215)
