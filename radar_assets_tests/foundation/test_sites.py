import pyart
import pytest

from radar_assets.lib.sites import UnknownSiteError, site


def test_site_table_is_immune_to_pyart_mutating_its_own_table():
    # Py-ART converts its shared table's elevation to metres in place on each lookup.
    for _ in range(3):
        pyart.io.nexrad_common.get_nexrad_location("KLIX")
    assert site("KLIX").elev_m == pytest.approx(24 * 0.3048)
    assert site("LOT") == site("KLOT")
    assert site("KLOT").lat == pytest.approx(41.60444)


def test_unknown_site_names_itself():
    with pytest.raises(UnknownSiteError, match="'KXXX'"):
        site("KXXX")
