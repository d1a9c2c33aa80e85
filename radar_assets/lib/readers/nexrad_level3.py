"""NEXRAD Level III products, decoded by Py-ART and wrapped as a single-sweep structure.

Format reference
----------------
NOAA ROC, *Interface Control Document for the RPG to Class 1 User*, ICD 2620001 (Build 19.0 and
earlier revisions): the WMO/AWIPS text header, Message Header Block, Product Description Block
(Figure 3-6) and the radial data packets (codes 16 and AF1F; generic packet 28 for newer products).

Decoding is delegated to ``pyart.io.nexrad_level3.NEXRADLevel3File``, the reader the platform used
before, so values equal Py-ART's ``read_nexrad_level3``. Two choices differ from Py-ART's ``Radar``
on purpose, because overlays are drawn from them:

* ``Sweep.azimuth`` is the centre of each radial (start angle + half its width), not the start angle;
* ``Moment.first_gate_m`` is the centre of the first bin (Py-ART labels the bins by their start).

Data are kept as the raw product codes plus a per-code value table (``Moment.lut``) evaluated with
Py-ART's own decoding, so rendering works on codes like Level 2 does and values are exact.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from .nexrad_level2 import Moment, Sweep

__all__ = ["PRODUCTS", "Level3DecodeError", "Level3Product", "read_level3", "read_level3_metadata"]


class Level3DecodeError(ValueError):
    """The bytes are not a Level III product Py-ART can decode (unsupported, truncated or corrupt)."""


#: Product code -> (moment name, units, product name), ICD 2620001 Table I / III. Moment names are
#: the Level 2 ones where they exist; ``HCA`` hydrometeor class, ``PRECIP`` accumulation (inches),
#: ``RATE`` precipitation rate (inches per hour).
PRODUCTS: dict[int, tuple[str, str, str]] = {
    19: ("REF", "dBZ", "Base Reflectivity"),
    20: ("REF", "dBZ", "Base Reflectivity"),
    25: ("VEL", "m/s", "Base Velocity"),
    27: ("VEL", "m/s", "Base Velocity"),
    28: ("SW", "m/s", "Base Spectrum Width"),
    30: ("SW", "m/s", "Base Spectrum Width"),
    32: ("REF", "dBZ", "Digital Hybrid Scan Reflectivity"),
    34: ("CFC", "", "Clutter Filter Control"),
    56: ("VEL", "m/s", "Storm Relative Mean Radial Velocity"),
    78: ("PRECIP", "in", "One-Hour Precipitation"),
    79: ("PRECIP", "in", "Three-Hour Precipitation"),
    80: ("PRECIP", "in", "Storm Total Precipitation"),
    94: ("REF", "dBZ", "Digital Base Reflectivity"),
    99: ("VEL", "m/s", "Digital Base Velocity"),
    134: ("VIL", "kg/m2", "High Resolution VIL"),
    135: ("EET", "kft", "Enhanced Echo Tops"),
    138: ("PRECIP", "in", "Digital Storm Total Precipitation"),
    153: ("REF", "dBZ", "Super Resolution Base Reflectivity"),
    154: ("VEL", "m/s", "Super Resolution Base Velocity"),
    155: ("SW", "m/s", "Super Resolution Base Spectrum Width"),
    159: ("ZDR", "dB", "Digital Differential Reflectivity"),
    161: ("RHO", "unitless", "Digital Correlation Coefficient"),
    163: ("KDP", "deg/km", "Digital Specific Differential Phase"),
    165: ("HCA", "class", "Digital Hydrometeor Classification"),
    169: ("PRECIP", "in", "One Hour Accumulation"),
    170: ("PRECIP", "in", "Digital Accumulation Array"),
    171: ("PRECIP", "in", "Storm Total Accumulation"),
    172: ("PRECIP", "in", "Digital Storm Total Accumulation"),
    173: ("PRECIP", "in", "Digital User-Selectable Accumulation"),
    174: ("PRECIP", "in", "Digital One-Hour Difference Accumulation"),
    175: ("PRECIP", "in", "Digital Storm Total Difference Accumulation"),
    176: ("RATE", "in/h", "Digital Instantaneous Precipitation Rate"),
    177: ("HCA", "class", "Hybrid Hydrometeor Classification"),
    181: ("REF", "dBZ", "TDWR Base Reflectivity"),
    182: ("VEL", "m/s", "TDWR Base Velocity"),
    186: ("REF", "dBZ", "TDWR Long Range Base Reflectivity"),
}

_AWIPS_ID = re.compile(rb"\r\r\n([A-Z0-9]{3})([A-Z0-9]{3})\s*\r\r\n")


@dataclass
class Level3Product:
    """A decoded Level III radial product (one sweep).

    Attributes
    ----------
    site : str
        Four-letter site id (``K`` + the AWIPS id's site when only three letters are known), or the
        ``site_hint`` given to :func:`read_level3`.
    lat, lon, alt_m : float
        Radar location from the Product Description Block (metres above MSL).
    product_code : int
        ICD product code (94, 99, 165, ...).
    product_name : str
        ICD product name.
    mnemonic : str
        AWIPS product mnemonic from the text header (``N0Q``, ``DAA``, ...) or ``""``.
    moment : str
        Moment name of the single moment in ``sweep.moments``.
    units : str
        Units of the values.
    time : datetime
        UTC volume scan start time (the time Py-ART reports).
    elevation : float
        Elevation angle, degrees (0 for products that are not single-elevation).
    sweep : Sweep
        The data: one sweep with ``moments == {moment: Moment}``.
    """

    site: str
    lat: float
    lon: float
    alt_m: float
    product_code: int
    product_name: str
    mnemonic: str
    moment: str
    units: str
    time: datetime
    elevation: float
    sweep: Sweep

    @property
    def sweeps(self) -> list[Sweep]:
        """``[sweep]``, so that a product can be passed where a volume is expected."""
        return [self.sweep]


def _open(data: bytes):
    from pyart.io.nexrad_level3 import NEXRADLevel3File

    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"read_level3 expects bytes, got {type(data).__name__}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return NEXRADLevel3File(io.BytesIO(bytes(data)))
    except NotImplementedError as exc:
        raise Level3DecodeError(f"unsupported Level III product: {exc}") from exc
    except (ValueError, AssertionError, IndexError, KeyError, OSError, EOFError, TypeError) as exc:
        raise Level3DecodeError(f"not a decodable Level III product: {type(exc).__name__}: {exc}") from exc
    except Exception as exc:  # struct.error and friends from a truncated buffer
        raise Level3DecodeError(f"corrupt Level III product: {type(exc).__name__}: {exc}") from exc


def _awips(nfile) -> tuple[str, str]:
    match = _AWIPS_ID.search(bytes(nfile.text_header) + b"\r\r\n")
    if not match:
        return "", ""
    return match.group(1).decode(), match.group(2).decode()


def _site_id(site3: str, site_hint: str | None) -> str:
    if site_hint:
        return site_hint.strip().upper()
    if not site3:
        return ""
    from radar_assets.lib.sites import UnknownSiteError, site

    try:
        return site(site3).id
    except UnknownSiteError:
        return site3


def _value_lut(nfile) -> np.ndarray:
    """Value of every code, computed by Py-ART's own ``get_data`` on the codes present."""
    raw = nfile.raw_data
    n = 256 if raw.dtype.itemsize == 1 and raw.max(initial=0) < 256 else 65536
    codes = np.unique(raw)
    saved = nfile.raw_data
    try:
        nfile.raw_data = codes.reshape(1, -1).astype(raw.dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = nfile.get_data()
    finally:
        nfile.raw_data = saved
    lut = np.full(n, np.nan, dtype=np.float32)
    lut[codes.astype(np.int64)] = np.ma.filled(values.astype(np.float32), np.nan)[0]
    return lut


def _ray_centres(nfile) -> np.ndarray:
    start = nfile.get_azimuth().astype(np.float64)
    headers = getattr(nfile, "radial_headers", None)
    if headers and "angle_delta" in headers[0]:
        delta = np.array([h["angle_delta"] * 0.1 for h in headers], dtype=np.float64)
    else:
        gaps = np.diff(np.sort(start))
        delta = np.full(start.shape, float(np.median(gaps)) if gaps.size else 1.0)
    return ((start + delta / 2.0) % 360.0).astype(np.float32)


def read_level3(data: bytes, *, site_hint: str | None = None) -> Level3Product:
    """Decode a Level III radial product.

    Parameters
    ----------
    data : bytes
        The product file (with its WMO/AWIPS text header; bzip2-compressed symbology is handled).
    site_hint : str, optional
        Four-letter site id (e.g. from the object key), used as ``site``.

    Returns
    -------
    Level3Product
        One sweep with one moment; ``Moment.codes`` are the product's raw codes (``uint8``/``uint16``)
        and ``Moment.lut`` maps each code to its value (NaN where masked).

    Raises
    ------
    Level3DecodeError
        The product is not Level III, is not one Py-ART decodes, or is truncated/corrupt.
    """
    nfile = _open(data)
    code = int(nfile.msg_header["code"])
    moment, units, name = PRODUCTS.get(code, (f"P{code}", "", f"Product {code}"))
    try:
        raw = np.asarray(nfile.raw_data)
        if raw.ndim != 2 or raw.size == 0:
            raise Level3DecodeError(f"product {code} has no radial data")
        lut = _value_lut(nfile)
        rng = np.asarray(nfile.get_range(), dtype=np.float64)
        lat, lon, height_ft = nfile.get_location()
        start = nfile.get_volume_start_datetime().replace(tzinfo=UTC)
        elevation = float(nfile.get_elevation())
        azimuth = _ray_centres(nfile)
    except Level3DecodeError:
        raise
    except Exception as exc:
        raise Level3DecodeError(f"corrupt Level III product {code}: {type(exc).__name__}: {exc}") from exc
    spacing = float(rng[1] - rng[0]) if rng.size > 1 else 1000.0
    codes = raw.astype(np.uint8 if lut.size == 256 else np.uint16)
    nrays = codes.shape[0]
    mnemonic, site3 = _awips(nfile)
    sweep = Sweep(
        index=0,
        elevation_number=int(nfile.prod_descr.get("elevation_num", 0)),
        fixed_angle=elevation,
        elevation=np.full(nrays, elevation, dtype=np.float32),
        azimuth=azimuth,
        time=np.zeros(nrays, dtype=np.float64),
        start_time=start,
        moments={
            moment: Moment(
                name=moment,
                codes=codes,
                scale=1.0,
                offset=0.0,
                first_gate_m=float(rng[0]) + spacing / 2.0,
                gate_spacing_m=spacing,
                units=units,
                lut=lut,
            )
        },
    )
    return Level3Product(
        site=_site_id(site3, site_hint),
        lat=float(lat),
        lon=float(lon),
        alt_m=float(height_ft) * 0.3048,
        product_code=code,
        product_name=name,
        mnemonic=mnemonic,
        moment=moment,
        units=units,
        time=start,
        elevation=elevation,
        sweep=sweep,
    )


def read_level3_metadata(data: bytes, *, site_hint: str | None = None) -> dict:
    """Product metadata: ``site``, ``product_code``, ``product_name``, ``mnemonic``, ``moment``,
    ``units``, ``time`` (UTC datetime), ``elevation``, ``lat``, ``lon``, ``alt_m``.

    Raises
    ------
    Level3DecodeError
        As :func:`read_level3`.
    """
    nfile = _open(data)
    code = int(nfile.msg_header["code"])
    moment, units, name = PRODUCTS.get(code, (f"P{code}", "", f"Product {code}"))
    mnemonic, site3 = _awips(nfile)
    try:
        lat, lon, height_ft = nfile.get_location()
        when = nfile.get_volume_start_datetime().replace(tzinfo=UTC)
        elevation = float(nfile.get_elevation())
    except Exception as exc:
        raise Level3DecodeError(f"corrupt Level III product {code}: {type(exc).__name__}: {exc}") from exc
    return {
        "site": _site_id(site3, site_hint),
        "product_code": code,
        "product_name": name,
        "mnemonic": mnemonic,
        "moment": moment,
        "units": units,
        "time": when,
        "elevation": elevation,
        "lat": float(lat),
        "lon": float(lon),
        "alt_m": float(height_ft) * 0.3048,
    }
