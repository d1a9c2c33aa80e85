"""A deterministic, geographic weather model for synthetic radar volumes.

The model describes precipitation in an earth-fixed frame, so the same storm is seen consistently by every
radar and at every time:

- **Systems** are spawned per (2 deg x 2 deg tile, 3 h epoch) from a NumPy ``Generator`` seeded with
  ``(seed, tile, epoch)``: their number is Poisson with a rate that follows a regional, day-to-day activity
  and (for convection) a diurnal cycle peaking in the local late afternoon. A system is a *cluster* of
  convective cells, a *squall line* (regenerating cells along a line with a trailing stratiform region), or a
  *stratiform shield* with a few weak embedded cells. It moves with the steering wind at its birth.
- **Convective cells** are Gaussian-ish cores (peak 45-62 dBZ, 2.5-5.5 km wide) that grow, mature and decay
  over 30-80 minutes, with a vertical profile falling off towards a 9-15 km top; strong cells carry a
  mesocyclone. Convective systems have an **anvil** (18-25 dBZ, 8-13 km high) downstream in the upper wind.
- **Stratiform** areas (20-35 dBZ) have a bright band at the melting level and a textured (correlated random)
  structure that is advected with the system.
- **Clear air**: weak boundary-layer returns (insects, Bragg scatter) below about 1.5 km, stronger at night;
  everything below the range-dependent sensitivity threshold is "no data".

Radial velocity is the projection of the (height-dependent) environment wind, plus each echo's own motion and
rotation weighted by its share of reflectivity, onto the beam (``(u sin az + v cos az) cos el``); it is folded
into the Nyquist interval of the cut by the volume writer. Spectrum width grows with reflectivity (turbulent
cores) and with range (beam broadening). Beam height follows the 4/3 effective earth radius model, so higher
elevations overshoot shallow echoes.

Fields are evaluated on a *coarse polar grid* (1 deg x 1 km: four 250 m gates) per elevation; the writer
maps it to the real radials and gates (0.5 deg rays share their 1 deg bin; bins are paired beyond 150 km)
and adds seeded measurement noise per ray and bin, in whole quantisation steps. Each component is evaluated only inside its
polar bounding box and the height range it occupies, which keeps a volume to a few tens of milliseconds.

Invariants
----------
- Pure function of ``(seed, latitude, longitude, time, geometry)``: no wall clock, no global random state.
- A storm's position is a function of time and seed only (never of the radar that observes it).
- Reflectivity below the sensitivity threshold is NaN; velocity and width are NaN wherever reflectivity is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np

from .vcp import FIRST_GATE_M, GATE_SPACING_M, beam_height_m, ground_range_m

R_EARTH_KM = 6371.0
TILE_DEG = 2.0
EPOCH_S = 3 * 3600
MAX_LIFE_S = 6 * 3600
MAX_SPEED_MS = 20.0
SYSTEM_EXTENT_KM = 260.0
VIEW_KM = 470.0
COARSE = 4  # gates per coarse range bin
TEXTURE_N = 1024
TEXTURE_PX_KM = 2.0
COS_REF = math.cos(math.radians(38.0))
_DEG = math.pi / 180.0


# ---------------------------------------------------------------------------------------------------------
# environment


@lru_cache(maxsize=64)
def _env_params(seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, 0xE4])
    # rows: u_low, v_low, u_up, v_up; columns: mean, amplitude, period (s), phase
    means = np.array([4.0, 3.0, 17.0, 4.0]) + rng.normal(0, 1.5, 4)
    amps = np.array([5.0, 5.0, 9.0, 8.0]) * rng.uniform(0.6, 1.2, 4)
    periods = rng.uniform(1.5, 5.0, 4) * 86400.0
    phases = rng.uniform(0, 2 * math.pi, 4)
    return np.stack([means, amps, periods, phases], axis=1)


def environment_wind(seed: int, t_s: float) -> tuple[float, float, float, float]:
    """Low-level and upper-level environment wind ``(u_low, v_low, u_up, v_up)`` in m/s at time ``t_s``.

    The same everywhere (a synoptic-scale flow); it varies smoothly over days.
    """
    p = _env_params(seed)
    vals = p[:, 0] + p[:, 1] * np.sin(2 * math.pi * t_s / p[:, 2] + p[:, 3])
    return float(vals[0]), float(vals[1]), float(vals[2]), float(vals[3])


def wind_profile(seed: int, t_s: float, z_km: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Environment wind (u, v) at heights ``z_km`` (MSL): linear shear from 0.5 to 10 km."""
    ul, vl, uu, vu = environment_wind(seed, t_s)
    w = np.clip((z_km - 0.5) / 9.5, 0.0, 1.0)
    return ul + (uu - ul) * w, vl + (vu - vl) * w


def steering_wind(seed: int, t_s: float) -> tuple[float, float]:
    ul, vl, uu, vu = environment_wind(seed, t_s)
    return 0.45 * ul + 0.55 * uu, 0.45 * vl + 0.55 * vu


@lru_cache(maxsize=8)
def texture(seed: int) -> np.ndarray:
    """Periodic correlated random field (TEXTURE_N^2 float32, 2 km pixels, zero mean, unit std)."""
    rng = np.random.default_rng([seed, 0x7E])
    white = rng.standard_normal((TEXTURE_N, TEXTURE_N))
    k = np.fft.fftfreq(TEXTURE_N, d=TEXTURE_PX_KM)
    kk = np.sqrt(k[:, None] ** 2 + k[None, :] ** 2)
    # red spectrum with a roll-off below ~6 km wavelengths: cells of tens of km with finer detail
    filt = (kk + 1.0 / 300.0) ** -1.6 * np.exp(-((kk * 6.0) ** 2))
    field_ = np.fft.ifft2(np.fft.fft2(white) * filt).real
    field_ -= field_.mean()
    field_ /= field_.std()
    return field_.astype(np.float32)


# ---------------------------------------------------------------------------------------------------------
# systems


@dataclass
class System:
    kind: str  # "cluster" | "line" | "shield"
    t0: float
    t1: float
    lat0: float
    lon0: float
    u: float
    v: float
    # stratiform part (sigma along / across the axis, axis angle from east, offset from the centre in km)
    strat_dbz: float = -99.0
    strat_sa: float = 0.0
    strat_sb: float = 0.0
    strat_theta: float = 0.0
    strat_dx: float = 0.0
    strat_dy: float = 0.0
    strat_top: float = 8.0
    melt: float = 4.0
    strat_from: float = 0.0  # fraction of the life after which the stratiform part appears
    # anvil (offset from the centre, sigmas, peak)
    anvil_dbz: float = -99.0
    anvil_dx: float = 0.0
    anvil_dy: float = 0.0
    anvil_sa: float = 0.0
    anvil_sb: float = 0.0
    anvil_theta: float = 0.0
    # cells: columns dx, dy, t_birth, life, peak, sigma, top
    cells: np.ndarray = field(default_factory=lambda: np.zeros((0, 7)))

    def center(self, t: float) -> tuple[float, float]:
        dt = t - self.t0
        lat = self.lat0 + self.v * dt / 1000.0 / R_EARTH_KM / _DEG
        lon = self.lon0 + self.u * dt / 1000.0 / (R_EARTH_KM * math.cos(self.lat0 * _DEG)) / _DEG
        return lat, lon

    def envelope(self, t: float) -> float:
        """0..1 intensity of the system: ramps up over 1 h, down over the last 1.5 h."""
        a = (t - self.t0) / 3600.0
        b = (self.t1 - t) / 5400.0
        return float(np.clip(min(a, b), 0.0, 1.0))


def _activity(seed: int, lat: float, lon: float, t_s: float) -> float:
    """Regional, day-to-day activity multiplier (8 deg regions, 1-day steps, log-normal)."""
    day = int(t_s // 86400)
    ry, rx = int(math.floor(lat / 8.0)) + 100, int(math.floor(lon / 8.0)) + 100
    return _activity_cached(seed, ry, rx, day)


@lru_cache(maxsize=4096)
def _activity_cached(seed: int, ry: int, rx: int, day: int) -> float:
    rng = np.random.default_rng([seed, 0xAC, ry, rx, day])
    return float(np.exp(rng.normal(-0.1, 0.75)))


@lru_cache(maxsize=50_000)
def tile_systems(seed: int, iy: int, ix: int, epoch: int) -> tuple[System, ...]:
    """Systems born in one tile (``iy``, ``ix`` index 2-degree tiles) during one 3-hour epoch."""
    lat_lo, lon_lo = iy * TILE_DEG, ix * TILE_DEG
    t_lo = epoch * EPOCH_S
    rng = np.random.default_rng([seed, 0x5C, iy + 1000, ix + 1000, epoch])
    clat, clon = lat_lo + TILE_DEG / 2, lon_lo + TILE_DEG / 2
    act = _activity(seed, clat, clon, t_lo + EPOCH_S / 2)
    local_h = ((t_lo + EPOCH_S / 2) / 3600.0 + clon / 15.0) % 24.0
    diurnal = 0.35 + 1.3 * max(0.0, math.cos(2 * math.pi * (local_h - 17.0) / 24.0))
    n_conv = rng.poisson(0.05 * act * diurnal)
    n_shield = rng.poisson(0.025 * act)
    out: list[System] = []
    kinds = ["cluster" if rng.random() < 0.55 else "line" for _ in range(n_conv)] + ["shield"] * n_shield
    for kind in kinds:
        t0 = t_lo + rng.uniform(0, EPOCH_S)
        lat0 = lat_lo + rng.uniform(0, TILE_DEG)
        lon0 = lon_lo + rng.uniform(0, TILE_DEG)
        su, sv = steering_wind(seed, t0)
        u, v = su + rng.normal(0, 2.5), sv + rng.normal(0, 2.5)
        sp = math.hypot(u, v)
        if sp > MAX_SPEED_MS:
            u, v = u * MAX_SPEED_MS / sp, v * MAX_SPEED_MS / sp
        mdir = math.atan2(v, u)  # direction of motion, radians from east
        if kind == "cluster":
            life = rng.uniform(2.0, 4.0) * 3600
            sysm = System(kind, t0, t0 + life, lat0, lon0, u, v)
            n = int(rng.integers(4, 14))
            r = rng.normal(0, 22.0, (n, 2))
            tb = t0 + rng.uniform(0, max(life - 2400, 600), n)
            cells = np.column_stack(
                [
                    r[:, 0],
                    r[:, 1],
                    tb,
                    rng.uniform(1800, 4800, n),
                    45 + 17 * rng.beta(2.0, 2.5, n),
                    rng.uniform(2.5, 5.5, n),
                    rng.uniform(9.0, 15.0, n),
                ]
            )
            sysm.cells = cells
            sysm.strat_dbz = rng.uniform(20, 27)
            sysm.strat_sa, sysm.strat_sb = rng.uniform(25, 45), rng.uniform(18, 30)
            sysm.strat_theta = rng.uniform(0, math.pi)
            sysm.strat_top, sysm.melt = rng.uniform(7, 9), rng.uniform(3.2, 4.5)
            sysm.strat_from = 0.4
            _set_anvil(sysm, seed, rng, 45.0, 22.0)
        elif kind == "line":
            life = rng.uniform(3.0, 6.0) * 3600
            sysm = System(kind, t0, t0 + life, lat0, lon0, u, v)
            length = rng.uniform(80, 250)
            axis = mdir + math.pi / 2 + rng.normal(0, 0.35)
            spacing = rng.uniform(11, 18)
            slots = np.arange(-length / 2, length / 2, spacing)
            rows = []
            for s in slots:
                tb = t0 + rng.uniform(0, 1500)
                while tb < t0 + life - 1200:
                    lf = rng.uniform(1800, 3600)
                    off = rng.normal(0, 3.0)
                    rows.append(
                        [
                            s * math.cos(axis) - off * math.sin(axis),
                            s * math.sin(axis) + off * math.cos(axis),
                            tb,
                            lf,
                            45 + 14 * rng.beta(2.0, 2.0),
                            rng.uniform(3.0, 5.0),
                            rng.uniform(10.0, 14.0),
                        ]
                    )
                    tb += rng.uniform(1200, 2400)
            sysm.cells = np.array(rows, dtype=np.float64).reshape(-1, 7)
            back = rng.uniform(35, 55)
            sysm.strat_dbz = rng.uniform(27, 34)
            sysm.strat_sa, sysm.strat_sb = length / 2.3, rng.uniform(25, 40)
            sysm.strat_theta = axis
            sysm.strat_dx, sysm.strat_dy = -back * math.cos(mdir), -back * math.sin(mdir)
            sysm.strat_top, sysm.melt = rng.uniform(7.5, 9.5), rng.uniform(3.2, 4.5)
            sysm.strat_from = 0.2
            _set_anvil(sysm, seed, rng, length / 2.0, 24.0)
        else:
            life = rng.uniform(3.0, 6.0) * 3600
            sysm = System(kind, t0, t0 + life, lat0, lon0, u, v)
            sysm.strat_dbz = rng.uniform(26, 35)
            sysm.strat_sa, sysm.strat_sb = rng.uniform(60, 140), rng.uniform(35, 75)
            sysm.strat_theta = rng.uniform(0, math.pi)
            sysm.strat_top, sysm.melt = rng.uniform(6.5, 9.0), rng.uniform(2.5, 4.5)
            n = int(rng.integers(0, 6))
            r = rng.normal(0, 40.0, (n, 2))
            sysm.cells = np.column_stack(
                [
                    r[:, 0],
                    r[:, 1],
                    t0 + rng.uniform(0, life - 1800, n),
                    rng.uniform(1800, 4200, n),
                    rng.uniform(38, 47, n),
                    rng.uniform(4.0, 8.0, n),
                    rng.uniform(6.0, 8.5, n),
                ]
            ).reshape(-1, 7)
        out.append(sysm)
    return tuple(out)


def _set_anvil(sysm: System, seed: int, rng: np.random.Generator, along: float, dbz: float) -> None:
    _, _, uu, vu = environment_wind(seed, sysm.t0)
    ru, rv = uu - sysm.u, vu - sysm.v  # storm-relative upper wind
    d = math.atan2(rv, ru)
    dist = rng.uniform(30, 60)
    sysm.anvil_dx, sysm.anvil_dy = dist * math.cos(d), dist * math.sin(d)
    sysm.anvil_theta = d
    sysm.anvil_sa, sysm.anvil_sb = max(along, 35.0), rng.uniform(16, 26)
    sysm.anvil_dbz = dbz - rng.uniform(0, 5)


def systems_near(seed: int, lat: float, lon: float, t_s: float) -> list[System]:
    """Every system alive at ``t_s`` whose footprint may reach within VIEW_KM of (lat, lon)."""
    out = []
    for sysm in _candidates(seed, round(lat, 4), round(lon, 4), int(t_s // EPOCH_S)):
        if sysm.t0 <= t_s < sysm.t1:
            clat, clon = sysm.center(t_s)
            x, y = local_xy(lat, lon, clat, clon)
            if math.hypot(x, y) < VIEW_KM + SYSTEM_EXTENT_KM:
                out.append(sysm)
    return out


@lru_cache(maxsize=256)
def _candidates(seed: int, lat: float, lon: float, epoch: int) -> tuple[System, ...]:
    reach = VIEW_KM + SYSTEM_EXTENT_KM + MAX_SPEED_MS * MAX_LIFE_S / 1000.0
    dlat = reach / (R_EARTH_KM * _DEG)
    dlon = reach / (R_EARTH_KM * _DEG * max(math.cos(lat * _DEG), 0.2))
    iy0, iy1 = math.floor((lat - dlat) / TILE_DEG), math.floor((lat + dlat) / TILE_DEG)
    ix0, ix1 = math.floor((lon - dlon) / TILE_DEG), math.floor((lon + dlon) / TILE_DEG)
    n_back = MAX_LIFE_S // EPOCH_S + 1
    out = []
    for e in range(epoch - n_back, epoch + 1):
        for iy in range(iy0, iy1 + 1):
            for ix in range(ix0, ix1 + 1):
                out.extend(tile_systems(seed, iy, ix, e))
    return tuple(out)


def local_xy(lat0: float, lon0: float, lat: float, lon: float) -> tuple[float, float]:
    """Position of (lat, lon) in km east/north of (lat0, lon0): azimuthal equidistant projection.

    The radar's gates are placed the same way (ground range along the azimuth), so an echo centred at a
    geographic point is seen there by every radar, whatever its distance.
    """
    p0, p1 = lat0 * _DEG, lat * _DEG
    dl = (lon - lon0) * _DEG
    a = math.sin((p1 - p0) / 2) ** 2 + math.cos(p0) * math.cos(p1) * math.sin(dl / 2) ** 2
    d = 2 * R_EARTH_KM * math.asin(min(1.0, math.sqrt(a)))
    brg = math.atan2(
        math.sin(dl) * math.cos(p1), math.cos(p0) * math.sin(p1) - math.sin(p0) * math.cos(p1) * math.cos(dl)
    )
    return d * math.sin(brg), d * math.cos(brg)


# ---------------------------------------------------------------------------------------------------------
# components in the radar's frame


@dataclass
class Component:
    """One echo element in site-local km: an elliptic Gaussian in linear reflectivity.

    ``vkind`` selects the vertical profile: ``cell`` (top ``top``), ``anvil`` (``zb``..``top``), ``strat``
    (bright band at ``melt``, top ``top``), ``flat`` (boundary layer, no horizontal decay).
    """

    x: float
    y: float
    sa: float
    sb: float
    theta: float
    dbz: float
    vkind: str
    top: float
    zb: float = 0.0
    melt: float = 4.0
    textured: bool = False
    tex_dx: float = 0.0
    tex_dy: float = 0.0
    du: float = 0.0
    dv: float = 0.0
    vt: float = 0.0  # mesocyclone peak tangential speed (m/s), 0 for none
    mx: float = 0.0  # motion of the component, km/s east
    my: float = 0.0  # motion of the component, km/s north


def scene(
    seed: int, lat: float, lon: float, elev_m: float, t_s: float, clear_air_echo: bool = False
) -> list[Component]:
    """All echo components seen from a radar at (lat, lon) at time ``t_s``.

    ``clear_air_echo`` adds the boundary-layer returns around the radar (most of the echo bins of a quiet
    day, and most of the bzip2 cost of writing it).
    """
    comps: list[Component] = []
    ul, vl, uu, vu = environment_wind(seed, t_s)
    su, sv = steering_wind(seed, t_s)
    for sysm in systems_near(seed, lat, lon, t_s):
        first = len(comps)
        clat, clon = sysm.center(t_s)
        cx, cy = local_xy(lat, lon, clat, clon)
        env = sysm.envelope(t_s)
        age = (t_s - sysm.t0) / (sysm.t1 - sysm.t0)
        du, dv = sysm.u - su, sysm.v - sv
        # texture moves with the system: sample it at (position - displacement since birth)
        disp_x = sysm.u * (t_s - sysm.t0) / 1000.0
        disp_y = sysm.v * (t_s - sysm.t0) / 1000.0
        if sysm.strat_dbz > -50 and age >= sysm.strat_from:
            ramp = min(1.0, (age - sysm.strat_from) / 0.15) if sysm.strat_from > 0 else 1.0
            s_env = env * ramp
            if s_env > 0.02:
                comps.append(
                    Component(
                        cx + sysm.strat_dx,
                        cy + sysm.strat_dy,
                        sysm.strat_sa * (0.7 + 0.3 * s_env),
                        sysm.strat_sb * (0.7 + 0.3 * s_env),
                        sysm.strat_theta,
                        sysm.strat_dbz - 14.0 * (1.0 - s_env),
                        "strat",
                        sysm.strat_top,
                        melt=sysm.melt,
                        textured=True,
                        tex_dx=disp_x,
                        tex_dy=disp_y,
                        du=du,
                        dv=dv,
                    )
                )
        cells = sysm.cells
        if len(cells):
            alive = (cells[:, 2] <= t_s) & (t_s < cells[:, 2] + cells[:, 3])
            n_mature = 0
            for dx, dy, tb, life, peak, sig, top in cells[alive]:
                tau = (t_s - tb) / life
                f = math.sin(math.pi * tau) ** 0.6
                p = peak - 28.0 * (1.0 - f) - 8.0 * (1.0 - env)
                if p < 15:
                    continue
                n_mature += f > 0.6
                vt = 0.0
                if peak >= 55.0 and f > 0.5:
                    vt = min(25.0, 10.0 + 3.0 * (peak - 55.0)) * f
                s = sig * (0.6 + 0.4 * f)
                comps.append(
                    Component(
                        cx + dx, cy + dy, s, s, 0.0, p, "cell", top * (0.55 + 0.45 * f), du=du, dv=dv, vt=vt
                    )
                )
            if sysm.anvil_dbz > -50 and n_mature:
                grow = min(1.0, (t_s - sysm.t0) / 5400.0)
                comps.append(
                    Component(
                        cx + sysm.anvil_dx * grow,
                        cy + sysm.anvil_dy * grow,
                        sysm.anvil_sa * (0.5 + 0.5 * grow),
                        sysm.anvil_sb,
                        sysm.anvil_theta,
                        sysm.anvil_dbz - 10.0 * (1.0 - env) + 2.0 * min(n_mature, 4) / 4,
                        "anvil",
                        12.5,
                        zb=8.0,
                        textured=True,
                        tex_dx=disp_x,
                        tex_dy=disp_y,
                        du=uu - su,
                        dv=vu - sv,
                    )
                )
        for c in comps[first:]:
            c.mx, c.my = sysm.u / 1000.0, sysm.v / 1000.0
    if not clear_air_echo:
        return comps
    # boundary-layer clear air around the radar (insects / Bragg scatter), stronger at night
    local_h = (t_s / 3600.0 + lon / 15.0) % 24.0
    night = 0.5 + 0.5 * math.cos(2 * math.pi * (local_h - 2.0) / 24.0)
    comps.append(
        Component(
            0.0,
            0.0,
            1e9,
            1e9,
            0.0,
            -4.0 + 9.0 * night,
            "flat",
            elev_m / 1000.0 + 0.5 + 0.8 * night,
            textured=True,
            tex_dx=ul * t_s / 1000.0,
            tex_dy=vl * t_s / 1000.0,
            du=ul - su,
            dv=vl - sv,
        )
    )
    return comps


# ---------------------------------------------------------------------------------------------------------
# evaluation on a coarse polar grid


@dataclass(frozen=True)
class CoarseGeometry:
    """Coarse polar grid of one elevation: 360 x 1 deg azimuths, bins of COARSE gates (1 km)."""

    elevation: float
    nbins: int
    site_elev_m: float
    s_km: np.ndarray  # ground range of each bin centre
    z_km: np.ndarray  # beam-centre height MSL of each bin centre
    r_km: np.ndarray  # slant range of each bin centre
    sin_az: np.ndarray
    cos_az: np.ndarray
    x_km: np.ndarray  # (360, nbins) east of the radar
    y_km: np.ndarray  # (360, nbins) north of the radar


@lru_cache(maxsize=64)
def coarse_geometry(elevation: float, nbins: int, site_elev_m: float) -> CoarseGeometry:
    r = FIRST_GATE_M + GATE_SPACING_M * (COARSE * np.arange(nbins) + (COARSE - 1) / 2.0)
    az = (np.arange(360) + 0.5) * _DEG
    s = (ground_range_m(r, elevation) / 1000.0).astype(np.float32)
    sin_az, cos_az = np.sin(az).astype(np.float32), np.cos(az).astype(np.float32)
    return CoarseGeometry(
        elevation,
        nbins,
        site_elev_m,
        s,
        ((beam_height_m(r, elevation) + site_elev_m) / 1000.0).astype(np.float32),
        (r / 1000.0).astype(np.float32),
        sin_az,
        cos_az,
        s[None, :] * sin_az[:, None],
        s[None, :] * cos_az[:, None],
    )


@lru_cache(maxsize=64)
def _texture_index(elevation: float, nbins: int, site_elev_m: float, lat: float, lon: float):
    """Texture pixel (column, row) of every coarse bin in the global frame (unwrapped int32)."""
    g = coarse_geometry(elevation, nbins, site_elev_m)
    gx0 = lon * _DEG * R_EARTH_KM * COS_REF
    gy0 = lat * _DEG * R_EARTH_KM
    gxs = COS_REF / max(math.cos(lat * _DEG), 0.2)
    tx = np.floor((gx0 + g.x_km.astype(np.float64) * gxs) / TEXTURE_PX_KM).astype(np.int32)
    ty = np.floor((gy0 + g.y_km.astype(np.float64)) / TEXTURE_PX_KM).astype(np.int32)
    return tx, ty


@lru_cache(maxsize=16)
def _texture_factor(seed: int, amp_db: float) -> np.ndarray:
    """Linear reflectivity factor ``10 ** (amp_db * texture / 10)`` of the seed's texture."""
    return np.power(np.float32(10.0), texture(seed) * np.float32(amp_db / 10.0)).astype(np.float32)


def _vertical_db(c: Component, z: np.ndarray, site_elev_km: float) -> np.ndarray:
    if c.vkind == "cell":
        base = 0.35 * c.top
        q = np.clip((z - base) / (c.top - base), 0.0, None)
        return -28.0 * q * q
    if c.vkind == "anvil":
        mid = 0.5 * (c.zb + c.top)
        q = (z - mid) / (0.5 * (c.top - c.zb))
        return -8.0 * q * q
    if c.vkind == "strat":
        above = np.clip(z - c.melt, 0.0, None)
        return 6.0 * np.exp(-(((z - c.melt) / 0.3) ** 2)) - 6.5 * above
    # flat boundary layer: constant below top - 0.5 km, decaying above
    q = np.clip(z - (c.top - 0.5), 0.0, None)
    return -14.0 * q


def _zrange(c: Component, site_elev_km: float) -> tuple[float, float]:
    if c.vkind == "anvil":
        return c.zb, c.top
    if c.vkind == "flat":
        return -1.0, c.top + 0.6
    return -1.0, c.top


def _extent_km(c: Component) -> float:
    return (2.6 if c.vkind == "strat" else 3.0) * max(c.sa, c.sb)


def _az_slices(az_c: float, half: float) -> list[tuple[int, int]]:
    """Azimuth-bin ranges (start, stop) covering [az_c - half, az_c + half] degrees, wrapped into 0..360."""
    if half >= 180.0:
        return [(0, 360)]
    a0 = math.floor(az_c - half)
    a1 = math.ceil(az_c + half) + 1
    out = []
    if a0 < 0:
        out.append((a0 + 360, 360))
        a0 = 0
    if a1 > 360:
        out.append((0, a1 - 360))
        a1 = 360
    out.append((a0, a1))
    return [(a, b) for a, b in out if b > a]


@dataclass
class CoarseFields:
    """Physical fields on a coarse grid (360 x nbins); NaN where there is no echo."""

    dbz: np.ndarray
    vel: np.ndarray  # unfolded radial velocity, m/s (toward the radar is negative)
    sw: np.ndarray

    @cached_property
    def valid(self) -> np.ndarray:
        """Bins with an echo (the three fields share their "no data" bins)."""
        return ~np.isnan(self.dbz)


def evaluate(
    seed: int,
    comps: list[Component],
    geom: CoarseGeometry,
    t_s: float,
    site_lat: float,
    site_lon: float,
    dt_s: float = 0.0,
) -> CoarseFields:
    """Reflectivity, radial velocity and spectrum width of ``comps`` on a coarse polar grid.

    ``comps`` describe the scene at time ``t_s - dt_s``; each component is moved by its own motion over
    ``dt_s`` seconds (so the sweeps of one volume see storms where they are when each sweep is taken).

    Invariants: returned arrays are float32 of shape (360, nbins); ``vel``/``sw`` are NaN exactly where
    ``dbz`` is NaN; ``dbz`` is NaN below the range-dependent sensitivity threshold.
    """
    nb = geom.nbins
    zsum = np.zeros((360, nb), np.float32)
    zu = np.zeros((360, nb), np.float32)
    zv = np.zeros((360, nb), np.float32)
    s, z = geom.s_km, geom.z_km
    s_max = float(s[-1])
    site_elev_km = geom.site_elev_m / 1000.0
    tex = texture(seed)
    tex_x, tex_y = _texture_index(geom.elevation, nb, geom.site_elev_m, site_lat, site_lon)
    mask = TEXTURE_N - 1
    z_max = float(z[-1])
    for c in comps:
        zlo, zhi = _zrange(c, site_elev_km)
        if zlo > z_max:
            continue
        cx, cy = c.x + c.mx * dt_s, c.y + c.my * dt_s
        if c.vkind == "flat":
            a_sl = [(0, 360)]
            j_lo, j_hi = 0, int(np.searchsorted(z, zhi))
        else:
            ext = _extent_km(c)
            dc = math.hypot(cx, cy)
            if dc - ext > s_max:
                continue
            # bins inside the component's horizontal reach and height range (z increases with range)
            j_lo = int(np.searchsorted(s, dc - ext))
            j_hi = int(np.searchsorted(s, dc + ext))
            if zlo > -1.0:
                j_lo = max(j_lo, int(np.searchsorted(z, zlo)))
            j_hi = min(j_hi, int(np.searchsorted(z, zhi)))
            if j_hi <= j_lo:
                continue
            half = 180.0 if dc <= ext else math.degrees(math.asin(ext / dc))
            a_sl = _az_slices(math.degrees(math.atan2(cx, cy)) % 360.0, half)
        if j_hi <= j_lo:
            continue
        vfac = np.power(
            np.float32(10.0), (c.dbz + _vertical_db(c, z[j_lo:j_hi], site_elev_km)) / 10.0
        ).astype(np.float32)
        ct, st = math.cos(c.theta), math.sin(c.theta)
        for a0, a1 in a_sl:
            X = geom.x_km[a0:a1, j_lo:j_hi]
            Y = geom.y_km[a0:a1, j_lo:j_hi]
            if c.vkind == "flat":
                val = np.broadcast_to(vfac[None, :], X.shape).copy()
            else:
                dx = X - np.float32(cx)
                dy = Y - np.float32(cy)
                if c.sa == c.sb:
                    q = (dx * dx + dy * dy) * np.float32(1.0 / (c.sa * c.sa))
                else:
                    pa = dx * np.float32(ct) + dy * np.float32(st)
                    pb = -dx * np.float32(st) + dy * np.float32(ct)
                    q = pa * pa * np.float32(1.0 / (c.sa * c.sa)) + pb * pb * np.float32(1.0 / (c.sb * c.sb))
                if c.vkind == "strat":
                    hq = np.float32(0.5) * q  # super-Gaussian: flat top, edges near 2 sigma
                    val = np.exp(-hq * hq) * vfac[None, :]
                else:
                    val = np.exp(np.float32(-0.5) * q) * vfac[None, :]
            if c.textured:
                # the texture moves with the echo: shift by its displacement (whole 2 km pixels)
                sx = int(round(c.tex_dx / TEXTURE_PX_KM))
                sy = int(round(c.tex_dy / TEXTURE_PX_KM))
                ix = (tex_x[a0:a1, j_lo:j_hi] - sx) & mask
                iy = (tex_y[a0:a1, j_lo:j_hi] - sy) & mask
                val *= _texture_factor(seed, {"strat": 7.0, "anvil": 4.0}.get(c.vkind, 5.0))[iy, ix]
            zsum[a0:a1, j_lo:j_hi] += val
            if c.du or c.dv:
                zu[a0:a1, j_lo:j_hi] += val * np.float32(c.du)
                zv[a0:a1, j_lo:j_hi] += val * np.float32(c.dv)
            if c.vt and c.vkind == "cell":
                d = np.sqrt(dx * dx + dy * dy) + np.float32(1e-3)
                rc = 0.6 * c.sa
                prof = np.where(d < rc, d / np.float32(rc), np.float32(rc) / d) * np.float32(c.vt)
                zu[a0:a1, j_lo:j_hi] += val * prof * (-dy / d)
                zv[a0:a1, j_lo:j_hi] += val * prof * (dx / d)

    # post-processing only where there is any echo at all (most of a sweep is empty)
    ai, ji = np.nonzero(zsum > 0)
    zs = zsum[ai, ji]
    dbz_v = np.float32(10.0) * np.log10(zs)
    thresh = np.maximum(np.float32(-25.0), np.float32(-9.0) + 20.0 * np.log10(geom.r_km / np.float32(50.0)))
    keep = dbz_v >= thresh[ji]
    ai, ji, zs, dbz_v = ai[keep], ji[keep], zs[keep], dbz_v[keep]
    ue, ve = wind_profile(seed, t_s, z.astype(np.float64))
    u = ue.astype(np.float32)[ji] + zu[ai, ji] / zs
    v = ve.astype(np.float32)[ji] + zv[ai, ji] / zs
    cos_e = np.float32(math.cos(math.radians(geom.elevation)))
    vel_v = np.clip((u * geom.sin_az[ai] + v * geom.cos_az[ai]) * cos_e, -60.0, 60.0)
    sw_v = (
        np.float32(1.2)
        + np.float32(3.5) * np.clip((dbz_v - np.float32(30.0)) / np.float32(25.0), 0.0, 1.0)
        + np.float32(0.004) * geom.r_km[ji]
        + np.float32(0.5) * np.abs(tex[(ai * 5) & (TEXTURE_N - 1), (ji * 3 + ai * 7) & (TEXTURE_N - 1)])
    )
    dbz = np.full((360, nb), np.nan, np.float32)
    vel = np.full((360, nb), np.nan, np.float32)
    sw = np.full((360, nb), np.nan, np.float32)
    dbz[ai, ji] = np.clip(dbz_v, -30.0, 90.0)
    vel[ai, ji] = vel_v
    sw[ai, ji] = np.clip(sw_v, 1.0, 12.0)
    return CoarseFields(dbz, vel, sw)
