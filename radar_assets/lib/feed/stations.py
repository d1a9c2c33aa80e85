"""SuperDARN station locations: three-letter station id -> name, latitude, longitude.

Coordinates are the radar sites' geographic positions as listed in the SuperDARN hardware files
(``hdw.dat.<id>``, github.com/SuperDARN/hdw), rounded to 0.01 degree — enough to place a station on a
map; beam geometry is not derived from them. Ids are lower case as they appear in fitacf file names and
on the live feed.

Invariants
----------
- Every latitude is in [-90, 90], every longitude in [-180, 180].
- An unknown station has no location (``None``), never a guessed one.
"""

from __future__ import annotations

from typing import NamedTuple


class Station(NamedTuple):
    name: str
    lat: float
    lon: float


STATIONS: dict[str, Station] = {
    # Canada (SuperDARN Canada, the live feed's operator)
    "sas": Station("Saskatoon", 52.16, -106.53),
    "pgr": Station("Prince George", 53.98, -122.59),
    "rkn": Station("Rankin Inlet", 62.82, -93.11),
    "inv": Station("Inuvik", 68.41, -133.77),
    "cly": Station("Clyde River", 70.49, -68.50),
    # Rest of the northern hemisphere
    "kap": Station("Kapuskasing", 49.39, -82.32),
    "gbr": Station("Goose Bay", 53.32, -60.46),
    "kod": Station("Kodiak", 57.60, -152.19),
    "ksr": Station("King Salmon", 58.68, -156.65),
    "bks": Station("Blackstone", 37.10, -77.95),
    "wal": Station("Wallops Island", 37.93, -75.47),
    "fhe": Station("Fort Hays East", 38.86, -99.39),
    "fhw": Station("Fort Hays West", 38.86, -99.39),
    "cve": Station("Christmas Valley East", 43.27, -120.36),
    "cvw": Station("Christmas Valley West", 43.27, -120.36),
    "ade": Station("Adak Island East", 51.89, -176.63),
    "adw": Station("Adak Island West", 51.89, -176.63),
    "hok": Station("Hokkaido East", 43.53, 143.61),
    "hkw": Station("Hokkaido West", 43.54, 143.61),
    "han": Station("Hankasalmi", 62.32, 26.61),
    "pyk": Station("Pykkvibaer", 63.77, -20.54),
    "sto": Station("Stokkseyri", 63.86, -22.02),
    "lyr": Station("Longyearbyen", 78.15, 16.07),
    # Southern hemisphere
    "mcm": Station("McMurdo", -77.84, 166.67),
    "sps": Station("South Pole", -89.99, 118.29),
    "hal": Station("Halley", -75.52, -26.63),
    "san": Station("SANAE", -71.68, -2.83),
    "sys": Station("Syowa South", -69.00, 39.58),
    "sye": Station("Syowa East", -69.01, 39.61),
    "ker": Station("Kerguelen", -49.35, 70.26),
    "tig": Station("Tasmania (TIGER)", -43.40, 147.20),
    "unw": Station("Unwin", -46.51, 168.38),
    "bpk": Station("Buckland Park", -34.62, 138.46),
    "zho": Station("Zhongshan", -69.38, 76.38),
    "fir": Station("Falkland Islands", -51.83, -58.98),
    "dce": Station("Dome C East", -75.09, 123.35),
}


def station_location(station: str | None) -> tuple[float, float] | tuple[None, None]:
    """``(lat, lon)`` of ``station`` (case-insensitive), ``(None, None)`` when the table has none."""
    found = STATIONS.get((station or "").lower())
    return (found.lat, found.lon) if found else (None, None)
