from datetime import UTC, datetime

import pytest

from radar_assets.lib.keys import KeyParseError, level2_prefix, level3_prefix, nws_level3_to_flat, parse_key
from radar_assets.lib.seed import archive_key


@pytest.mark.parametrize(
    ("key", "level", "site", "when", "product", "compressed", "day"),
    [
        (
            "2021/06/25/KLOT/KLOT20210625_075154_V06",
            2,
            "KLOT",
            "2021-06-25T07:51:54",
            "VOL",
            False,
            "2021-06-25",
        ),
        (
            "2014/01/01/KTLX/KTLX20140101_000624_V06.gz",
            2,
            "KTLX",
            "2014-01-01T00:06:24",
            "VOL",
            True,
            "2014-01-01",
        ),
        (
            "2010/05/01/KTLX/KTLX20100501_000444_V03.gz",
            2,
            "KTLX",
            "2010-05-01T00:04:44",
            "VOL",
            True,
            "2010-05-01",
        ),
        (
            "1995/04/13/KLOT/KLOT19950413_132143.gz",
            2,
            "KLOT",
            "1995-04-13T13:21:43",
            "VOL",
            True,
            "1995-04-13",
        ),
        (
            "2021/01/01/TORD/TORD20210101_235959_V08",
            2,
            "TORD",
            "2021-01-01T23:59:59",
            "VOL",
            False,
            "2021-01-01",
        ),
        ("LOT_N0Q_2021_01_31_11_06_30", 3, "KLOT", "2021-01-31T11:06:30", "N0Q", False, "2021-01-31"),
        ("TLX_DAA_2013_05_20_23_59_59", 3, "KTLX", "2013-05-20T23:59:59", "DAA", False, "2013-05-20"),
        ("prefix/LOT_N0H_2021_01_31_00_00_00", 3, "KLOT", "2021-01-31T00:00:00", "N0H", False, "2021-01-31"),
    ],
)
def test_parse_key_every_form(key, level, site, when, product, compressed, day):
    parsed = parse_key(key)
    assert parsed.level == level
    assert parsed.site == site
    assert parsed.time == datetime.fromisoformat(when).replace(tzinfo=UTC)
    assert parsed.product == product
    assert parsed.compressed is compressed
    assert parsed.partition_day == day
    assert parsed.store_key.startswith(f"raw/level{level}/{site}/{day.replace('-', '/')}/")
    assert parsed.scan_id == f"{site}-L{level}-{product}-{parsed.time:%Y%m%dT%H%M%SZ}"


@pytest.mark.parametrize(
    "key",
    [
        "2021/06/25/KLOT/KLOT20210625_075154_V06_MDM",  # model data, not a volume
        "2021/06/25/KLOT/KTLX20210625_075154_V06",  # folder disagrees with the name
        "2021/06/26/KLOT/KLOT20210625_075154_V06",  # folder date disagrees
        "2021/06/25/KLOT/notes.txt",
        "LOT_N0Q_2021_01_31_11_06",  # incomplete timestamp
        "",
    ],
)
def test_parse_key_rejects(key):
    with pytest.raises(KeyParseError):
        parse_key(key)


def test_listing_prefixes_map_partition_to_layout():
    assert level2_prefix("KLOT", "2021-06-25") == "2021/06/25/KLOT/"
    assert level3_prefix("KLOT", "N0Q") == "LOT_N0Q_"
    assert level3_prefix("KLOT") == "LOT_"


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("KOUN_SDUS54_N0QTLX_201305202016", "TLX_N0Q_2013_05_20_20_16_00"),
        ("KOUN_SDUS84_DAATLX_201305202016", "TLX_DAA_2013_05_20_20_16_00"),
        ("LOT_N0H_2021_01_31_11_06_30", "LOT_N0H_2021_01_31_11_06_30"),
    ],
)
def test_nws_level3_names_map_to_flat_layout(name, key):
    assert nws_level3_to_flat(name) == key
    assert parse_key(key).level == 3


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("KLOT20210625_075154_V06", "2021/06/25/KLOT/KLOT20210625_075154_V06"),
        ("KLIX20050828_180149.gz", "2005/08/28/KLIX/KLIX20050828_180149.gz"),
        ("KDDC_N0Q_20200817_0501.nids", "DDC_N0Q_2020_08_17_05_01_00"),
        ("KOUN_SDUS54_N0QTLX_201305202016", "TLX_N0Q_2013_05_20_20_16_00"),
    ],
)
def test_seed_names(name, key):
    assert archive_key(name) == key
    parse_key(key)


def test_seed_rejects_unknown_names():
    with pytest.raises(KeyParseError):
        archive_key("nexrad_level2_chunks_KLOT.tar.gz")
