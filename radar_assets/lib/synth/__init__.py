"""Synthetic NEXRAD data: realistic Archive II (Message 31) volumes from a deterministic weather model.

- :mod:`.vcp` -- VCP 212 / 35 / 215 elevation cuts, azimuth spacing, gate geometry, timing.
- :mod:`.weather` -- moving, evolving convective cells, anvils, stratiform areas and clear air in an
  earth-fixed frame, evaluated on a radar's polar grid.
- :mod:`.archive2` -- the byte writer (volume header, bzip2 LDM records, Messages 15/18/3/5/2/31) and the
  volume schedule (keys in the public Level 2 layout).

Same seed and arguments give byte-identical volumes; nothing reads the wall clock.
"""

from .archive2 import (
    SynthVolume,
    VolumeJob,
    build_volume,
    encode_volume,
    generate_many,
    generate_volume,
    plan,
    to_epoch_ms,
    volume_key,
    volume_schedule,
)
from .vcp import SUPPORTED_VCPS, get_vcp

__all__ = [
    "SUPPORTED_VCPS",
    "SynthVolume",
    "VolumeJob",
    "build_volume",
    "encode_volume",
    "generate_many",
    "generate_volume",
    "get_vcp",
    "plan",
    "to_epoch_ms",
    "volume_key",
    "volume_schedule",
]
