"""Web Mercator output grids and the polar lookup that maps every grid pixel to a radar gate.

Geometry is the one Py-ART uses for ``Radar.gate_longitude``/``gate_latitude``, so a gate is painted
where Py-ART would place it:

* beam propagation with the 4/3 effective earth radius model (Doviak & Zrnić 1993, eq. 2.28), as in
  ``pyart.core.antenna_to_cartesian``: the ground (arc) distance ``s`` of slant range ``r`` at elevation
  ``e`` satisfies ``r = R_eff sin(s/R_eff) / cos(e + s/R_eff)`` with ``R_eff = 4/3 * 6371 km``;
* the horizontal plane is an azimuthal equidistant projection centred on the radar on a sphere of
  radius 6370997 m, as in ``pyart.core.cartesian_to_geographic_aeqd``;
* output pixels live in EPSG:3857 (spherical Mercator, radius 6378137 m).

The lookup is separable in the parts that are expensive: for a (site, grid) pair every pixel's azimuth
and ground distance are computed once and cached as 16-bit bins; per sweep only two small 1-D tables
(azimuth bin -> ray, ground-distance bin -> gate) are built, and a pixel's gate is two gathers away.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import os
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from radar_assets.lib import lru_files

#: EPSG:3857 sphere radius (metres).
MERCATOR_RADIUS = 6378137.0
#: Sphere of Py-ART's azimuthal equidistant projection (metres).
AEQD_RADIUS = 6370997.0
#: 4/3 effective earth radius of Py-ART's ``antenna_to_cartesian`` (metres).
EFFECTIVE_RADIUS = 6371.0 * 1000.0 * 4.0 / 3.0

#: Azimuth bins per degree in the cached pixel lookup (0.01 degree: well under a pixel at 460 km).
AZ_BINS_PER_DEG = 100
N_AZ_BINS = 360 * AZ_BINS_PER_DEG
#: Number of ground-distance bins between the radar and the grid's radius (the bin size scales with the
#: radius: 7.7 m at 460 km, 1 m at 60 km, always far below a pixel).
S_BINS = 60000
#: Marks a pixel beyond the grid's radius in the ground-distance bins.
S_OUTSIDE = np.iinfo(np.uint16).max


def s_bin_m(max_ground_m: float) -> float:
    """Ground-distance bin size (metres) of the lookup of a grid of this radius."""
    return float(max_ground_m) / S_BINS


_MAX_HALF_EXTENT = math.pi * MERCATOR_RADIUS  # EPSG:3857 x limit


@dataclass(frozen=True)
class Grid:
    """A north-up EPSG:3857 raster grid.

    Attributes
    ----------
    west, north : float
        Outer edges of the top-left pixel, EPSG:3857 metres.
    pixel : float
        Pixel size (square), EPSG:3857 metres.
    width, height : int
        Pixel counts.

    Invariants: ``east = west + width * pixel`` and ``south = north - height * pixel``.
    """

    west: float
    north: float
    pixel: float
    width: int
    height: int

    @property
    def east(self) -> float:
        return self.west + self.width * self.pixel

    @property
    def south(self) -> float:
        return self.north - self.height * self.pixel

    def transform(self):
        """The rasterio/affine geotransform of the grid."""
        from affine import Affine

        return Affine(self.pixel, 0.0, self.west, 0.0, -self.pixel, self.north)

    def lonlat_bounds(self) -> tuple[float, float, float, float]:
        """``(west, south, east, north)`` in degrees."""
        w, n = mercator_to_lonlat(self.west, self.north)
        e, s = mercator_to_lonlat(self.east, self.south)
        return float(w), float(s), float(e), float(n)

    def pixel_of(self, x, y):
        """Fractional ``(col, row)`` of EPSG:3857 points (pixel centres are at integer + 0.5)."""
        return (np.asarray(x) - self.west) / self.pixel, (self.north - np.asarray(y)) / self.pixel


def lonlat_to_mercator(lon, lat):
    """EPSG:4326 degrees to EPSG:3857 metres (spherical Mercator)."""
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.clip(np.asarray(lat, dtype=np.float64), -85.06, 85.06)
    x = np.radians(lon) * MERCATOR_RADIUS
    y = np.log(np.tan(np.pi / 4 + np.radians(lat) / 2)) * MERCATOR_RADIUS
    return x, y


def mercator_to_lonlat(x, y):
    """EPSG:3857 metres to EPSG:4326 degrees."""
    lon = np.degrees(np.asarray(x, dtype=np.float64) / MERCATOR_RADIUS)
    lat = np.degrees(np.arctan(np.sinh(np.asarray(y, dtype=np.float64) / MERCATOR_RADIUS)))
    return lon, lat


def slant_to_ground(r, elevation_deg):
    """Ground (arc) distance of slant range ``r`` (metres) at an elevation, as Py-ART computes it."""
    r = np.asarray(r, dtype=np.float64)
    e = math.radians(float(elevation_deg))
    big = EFFECTIVE_RADIUS
    z = np.sqrt(r**2 + big**2 + 2.0 * r * big * math.sin(e)) - big
    return big * np.arcsin(r * math.cos(e) / (big + z))


def ground_to_slant(s, elevation_deg):
    """Inverse of :func:`slant_to_ground` (law of sines in the radar-centre-target triangle)."""
    g = np.asarray(s, dtype=np.float64) / EFFECTIVE_RADIUS
    e = math.radians(float(elevation_deg))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = EFFECTIVE_RADIUS * np.sin(g) / np.cos(e + g)
    # Past the beam's horizon (e + g >= 90 degrees) no slant range reaches the point.
    return np.where(e + g < math.pi / 2, r, np.inf)


def aeqd_to_lonlat(x, y, lat0, lon0):
    """Py-ART's ``cartesian_to_geographic_aeqd``: radar-centred plane metres to degrees."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    lat0r, lon0r = math.radians(lat0), math.radians(lon0)
    rho = np.hypot(x, y)
    c = rho / AEQD_RADIUS
    with np.errstate(divide="ignore", invalid="ignore"):
        lat = np.arcsin(np.cos(c) * math.sin(lat0r) + y * np.sin(c) * math.cos(lat0r) / rho)
    lat = np.where(rho == 0, lat0r, lat)
    lon = lon0r + np.arctan2(
        x * np.sin(c), rho * math.cos(lat0r) * np.cos(c) - y * math.sin(lat0r) * np.sin(c)
    )
    lon = (np.degrees(lon) + 180.0) % 360.0 - 180.0
    return lon, np.degrees(lat)


def grid_for_range(lat: float, lon: float, max_ground_m: float, size: int) -> Grid:
    """The smallest north-up EPSG:3857 grid, ``size`` pixels on its long side, covering a radar disc.

    The grid is centred on the radar's meridian (column centres are mirror images about it), which
    halves the work of :func:`polar_lookup`.

    Parameters
    ----------
    lat, lon : float
        Radar location, degrees.
    max_ground_m : float
        Radius of the disc (ground distance), metres. Callers round it up (e.g. to 10 km) so that
        volumes of the same site share grids and therefore cached lookups.
    size : int
        Pixels on the long side.
    """
    az = np.radians(np.arange(0.0, 360.0, 0.25))
    lons, lats = aeqd_to_lonlat(max_ground_m * np.sin(az), max_ground_m * np.cos(az), lat, lon)
    # Keep longitudes continuous around the radar when the disc crosses the antimeridian.
    lons = (lons - lon + 180.0) % 360.0 - 180.0 + lon
    x, y = lonlat_to_mercator(lons, lats)
    x0, _ = lonlat_to_mercator(lon, lat)
    half_x = float(np.abs(x - x0).max())
    south, north = float(y.min()), float(y.max())
    pixel = max(2.0 * half_x, north - south) / int(size)
    width = max(1, math.ceil(2.0 * half_x / pixel - 1e-9))
    height = max(1, math.ceil((north - south) / pixel - 1e-9))
    return Grid(west=float(x0) - width * pixel / 2.0, north=north, pixel=pixel, width=width, height=height)


@lru_cache(maxsize=16)
def polar_lookup(grid: Grid, lat: float, lon: float, max_ground_m: float) -> PolarLookup:
    """Per-pixel azimuth bin and ground-distance bin of a grid around a radar (cached).

    Cached in memory (per process) and on disk (see :func:`lookup_cache_dir`), so that fresh processes
    (one per Dagster run) do not recompute the lookups of the sites they render; the disk cache holds
    exactly the arrays :func:`compute_polar_lookup` returns.
    """
    path = _lookup_cache_path(grid, lat, lon, max_ground_m)
    if path is not None:
        cached = _load_cached_lookup(path, grid, lat, lon)
        if cached is not None:
            lru_files.touch(path)
            return cached
    lookup = compute_polar_lookup(grid, lat, lon, max_ground_m)
    if path is not None:
        _store_cached_lookup(path, lookup)
        lru_files.evict(path.parent, _CACHE_MAX_BYTES[0], "polar-*.npy")
    return lookup


def compute_polar_lookup(grid: Grid, lat: float, lon: float, max_ground_m: float) -> PolarLookup:
    """Per-pixel azimuth bin and ground-distance bin of a grid around a radar (uncached).

    Returns
    -------
    PolarLookup
        ``uint16`` azimuth bins (``1/AZ_BINS_PER_DEG`` degree) and ground-distance bins
        (``s_bin_m(max_ground_m)``, rounded; ``S_OUTSIDE`` beyond ``max_ground_m``), stored for half the grid when it is mirrored
        (about 8 MB per 2048x2048 grid).

    Notes
    -----
    Mercator is separable (x depends on longitude only, y on latitude only), so the trigonometry on
    coordinates is done on 1-D rows and columns in float64 and only products, one ``arcsin`` and one
    ``arctan2`` run on the 2-D grid, in float32 (errors well below a bin). Formulas are the spherical
    azimuthal-equidistant forward projection in forms that stay accurate close to the radar
    (haversine distance; ``sin(phi - phi0)`` instead of a difference of products for the azimuth).
    When the grid is centred on the radar's meridian only the eastern half is computed and mirrored.
    """
    xs = grid.west + (np.arange(grid.width) + 0.5) * grid.pixel
    ys = grid.north - (np.arange(grid.height) + 0.5) * grid.pixel
    x0, _ = lonlat_to_mercator(lon, lat)
    mirrored = abs((grid.west + grid.east) / 2.0 - float(x0)) < 1e-6 * grid.pixel
    first = grid.width // 2 if mirrored else 0
    lon_c, _ = mercator_to_lonlat(xs[first:], 0.0)
    _, lat_r = mercator_to_lonlat(0.0, ys)
    lat0 = math.radians(lat)
    phi = np.radians(lat_r)
    dlon = np.radians(lon_c - lon)
    cos_phi = np.cos(phi)
    hav_lon = (np.sin(dlon / 2.0) ** 2).astype(np.float32)[None, :]
    # Ground distance: haversine.
    hav = (math.cos(lat0) * cos_phi).astype(np.float32)[:, None] * hav_lon
    hav += (np.sin((phi - lat0) / 2.0) ** 2).astype(np.float32)[:, None]
    np.clip(hav, 0.0, 1.0, out=hav)
    np.sqrt(hav, out=hav)
    np.arcsin(hav, out=hav)
    bin_m = s_bin_m(max_ground_m)
    hav *= np.float32(2.0 * AEQD_RADIUS / bin_m)
    outside = hav > np.float32(max_ground_m / bin_m)
    np.rint(hav, out=hav)
    hav[outside] = S_OUTSIDE
    s_half = hav.astype(np.uint16)
    # Azimuth: atan2(sin dlon cos phi, sin(phi - phi0) + 2 sin phi0 cos phi sin^2(dlon/2)).
    num = cos_phi.astype(np.float32)[:, None] * np.sin(dlon).astype(np.float32)[None, :]
    den = (2.0 * math.sin(lat0) * cos_phi).astype(np.float32)[:, None] * hav_lon
    den += np.sin(phi - lat0).astype(np.float32)[:, None]
    az = np.arctan2(num, den)
    az *= np.float32(180.0 * AZ_BINS_PER_DEG / math.pi)
    np.rint(az, out=az)
    az_half = (az.astype(np.int32) % N_AZ_BINS).astype(np.uint16)
    az_half.setflags(write=False)
    s_half.setflags(write=False)
    return PolarLookup(grid.width, first if mirrored else 0, mirrored, az_half, s_half)


# --------------------------------------------------------------------------------------------------
# Persistent lookup cache
# --------------------------------------------------------------------------------------------------

#: Bump to invalidate every cached lookup (the source of :func:`compute_polar_lookup` is hashed too).
LOOKUP_CACHE_VERSION = 1


#: Where the on-disk lookup cache lives; ``None`` disables it. Set by the entry points from
#: ``Settings.render`` (:func:`set_lookup_cache_dir`); lib code never reads the environment.
_CACHE_DIR: list[Path | None] = [Path.home() / ".cache" / "radar-assets" / "lookups"]


def set_lookup_cache_dir(path: str | Path | None) -> None:
    """Use ``path`` for the on-disk lookup cache of this process (``None`` disables it)."""
    _CACHE_DIR[0] = Path(path).expanduser() if path is not None else None


#: Size bound of the on-disk cache (bytes; 0: none); least-recently-used lookups are evicted beyond it.
_CACHE_MAX_BYTES: list[int] = [2 * 1024**3]


def set_lookup_cache_limit(max_bytes: int) -> None:
    """Bound the on-disk lookup cache of this process to ``max_bytes`` (``Settings.render.cache_max_bytes``)."""
    _CACHE_MAX_BYTES[0] = int(max_bytes)


def lookup_cache_dir() -> Path | None:
    """Directory of the on-disk lookup cache (``None``: disabled); see :func:`set_lookup_cache_dir`."""
    return _CACHE_DIR[0]


@lru_cache(maxsize=1)
def _code_fingerprint() -> str:
    try:
        source = inspect.getsource(compute_polar_lookup) + inspect.getsource(mercator_to_lonlat)
        source += inspect.getsource(lonlat_to_mercator)
    except (OSError, TypeError):
        source = ""
    return hashlib.sha256(source.encode()).hexdigest()


def _lookup_key(grid: Grid, lat: float, lon: float, max_ground_m: float) -> str:
    # Everything the arrays depend on: the grid, the radar, the radius, the binning constants, the code
    # computing them (and numpy, whose float32 transcendental functions may change between versions).
    parts = (
        LOOKUP_CACHE_VERSION,
        _code_fingerprint(),
        np.__version__,
        float(grid.west).hex(),
        float(grid.north).hex(),
        float(grid.pixel).hex(),
        int(grid.width),
        int(grid.height),
        float(lat).hex(),
        float(lon).hex(),
        float(max_ground_m).hex(),
        AZ_BINS_PER_DEG,
        S_BINS,
        int(S_OUTSIDE),
        MERCATOR_RADIUS,
        AEQD_RADIUS,
    )
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:40]


def _lookup_cache_path(grid: Grid, lat: float, lon: float, max_ground_m: float) -> Path | None:
    root = lookup_cache_dir()
    if root is None:
        return None
    return root / f"polar-{_lookup_key(grid, lat, lon, max_ground_m)}.npy"


def _layout(grid: Grid, lat: float, lon: float) -> tuple[int, bool]:
    x0, _ = lonlat_to_mercator(lon, lat)
    mirrored = abs((grid.west + grid.east) / 2.0 - float(x0)) < 1e-6 * grid.pixel
    return (grid.width // 2 if mirrored else 0), mirrored


def _load_cached_lookup(path: Path, grid: Grid, lat: float, lon: float) -> PolarLookup | None:
    """The cached lookup, or None when the file is missing, unreadable or not the expected array."""
    first, mirrored = _layout(grid, lat, lon)
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    expected = (2, grid.height, grid.width - first)
    if not isinstance(arr, np.ndarray) or arr.dtype != np.uint16 or arr.shape != expected:
        return None
    stacked = np.asarray(arr)  # plain ndarray view of the read-only map
    return PolarLookup(grid.width, first, mirrored, stacked[0], stacked[1])


def _store_cached_lookup(path: Path, lookup: PolarLookup) -> None:
    """Write the lookup atomically (temporary file + ``os.replace``); failures are ignored."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, np.stack([lookup.az, lookup.s]), allow_pickle=False)
        os.replace(tmp, path)
        tmp = None
    except OSError:
        pass
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


@dataclass(frozen=True, eq=False)
class PolarLookup:
    """Azimuth and ground-distance bins of every pixel of a grid, stored once for mirrored halves.

    Attributes
    ----------
    width : int
        Grid width.
    first : int
        First grid column held in ``az`` / ``s`` (``width // 2`` when mirrored, else 0).
    mirrored : bool
        Columns ``j`` and ``width - 1 - j`` are mirror images about the radar's meridian: the same
        ground distance, azimuth ``360 - az``. Only columns ``first..width-1`` are stored.
    az, s : numpy.ndarray
        ``uint16`` azimuth bins (``1/AZ_BINS_PER_DEG`` degree) and ground-distance bins
        (``s_bin_m(radius)``, ``S_OUTSIDE`` beyond the radius) of the stored columns.
    """

    width: int
    first: int
    mirrored: bool
    az: np.ndarray
    s: np.ndarray

    def _left(self) -> slice:
        # Left column j mirrors grid column width-1-j, i.e. stored column width-1-j-first.
        top = self.width - 1 - self.first
        return slice(top, top - self.first, -1) if top - self.first >= 0 else slice(top, None, -1)

    def combine(self, by_az: np.ndarray, by_s: np.ndarray) -> np.ndarray:
        """``by_az[az_bin] + by_s[s_bin]`` for every pixel, shape ``(height, width)``.

        With ``by_az`` = ray index times row length and ``by_s`` = gate index this is the flat index
        of each pixel's gate in a ``(rays, gates)`` array.
        """
        out = np.empty((self.az.shape[0], self.width), dtype=np.result_type(by_az, by_s))
        right = out[:, self.first :]
        np.take(by_az, self.az, out=right)
        by_s_px = np.take(by_s, self.s)
        right += by_s_px
        if self.mirrored and self.first:
            # Mirrored columns share the ground distance: reuse the gathered ``by_s`` values (reversed)
            # and gather only the mirrored azimuth table.
            mirror = by_az[(N_AZ_BINS - np.arange(N_AZ_BINS)) % N_AZ_BINS]
            left = self._left()
            by_az_px = np.take(mirror, self.az)
            np.add(by_az_px[:, left], by_s_px[:, left], out=out[:, : self.first])
        return out

    def full(self) -> tuple[np.ndarray, np.ndarray]:
        """Full-width ``(az_bin, s_bin)`` arrays (for tests and inspection)."""
        ident_az = np.arange(N_AZ_BINS, dtype=np.int64)
        az = self.combine(ident_az, np.zeros(65536, np.int64)).astype(np.uint16)
        s = self.combine(np.zeros(N_AZ_BINS, np.int64), np.arange(65536, dtype=np.int64)).astype(np.uint16)
        return az, s


@lru_cache(maxsize=256)
def gate_table(
    first_gate_m: float, gate_spacing_m: float, ngates: int, elevation_deg: float, bin_m: float
) -> np.ndarray:
    """Gate index for every ground-distance bin (``ngates`` where no gate covers it).

    A gate covers slant ranges ``[centre - spacing/2, centre + spacing/2)``.
    """
    s = np.arange(S_OUTSIDE + 1, dtype=np.float64) * bin_m
    r = ground_to_slant(s, elevation_deg)
    edge0 = first_gate_m - gate_spacing_m / 2.0
    with np.errstate(invalid="ignore"):
        g = np.floor((r - edge0) / gate_spacing_m)
    ok = np.isfinite(g) & (g >= 0) & (g < ngates)
    out = np.where(ok, g, ngates).astype(np.int32)
    out[S_OUTSIDE] = ngates
    out.setflags(write=False)
    return out


def ray_table(azimuth_deg: np.ndarray) -> np.ndarray:
    """Nearest ray for every azimuth bin (``nrays`` where the nearest ray is more than a beam away).

    Rays are assumed to be centred on their azimuth. A bin farther than the sweep's median ray spacing
    from every ray is left empty, so sector scans and gaps stay transparent while a single missing
    radial is bridged by its neighbours.
    """
    az = np.asarray(azimuth_deg, dtype=np.float64) % 360.0
    n = az.size
    order = np.argsort(az, kind="stable")
    sorted_az = az[order]
    centres = np.arange(N_AZ_BINS, dtype=np.float64) / AZ_BINS_PER_DEG
    # Pad circularly so that the nearest neighbour search wraps at 0/360.
    ext = np.concatenate([sorted_az[-1:] - 360.0, sorted_az, sorted_az[:1] + 360.0])
    ext_idx = np.concatenate([order[-1:], order, order[:1]])
    pos = np.searchsorted(ext, centres)
    pos = np.clip(pos, 1, ext.size - 1)
    left, right = ext[pos - 1], ext[pos]
    use_right = (right - centres) < (centres - left)
    nearest = np.where(use_right, ext_idx[pos], ext_idx[pos - 1])
    dist = np.where(use_right, right - centres, centres - left)
    gaps = np.diff(np.concatenate([sorted_az, sorted_az[:1] + 360.0]))
    spacing = float(np.median(gaps)) if n > 1 else 1.0
    limit = max(spacing, 1.0 / AZ_BINS_PER_DEG)
    return np.where(dist <= limit, nearest, n).astype(np.int32)
