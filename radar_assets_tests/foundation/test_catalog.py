import subprocess
import sys
import textwrap
from datetime import UTC, datetime

import duckdb
import pyarrow as pa
import pytest

from radar_assets.lib.catalog import ReadOnlyQueryError, check_read_only, local_catalog, query_readonly


def rows(site: str, n: int) -> pa.Table:
    return pa.table(
        {
            "scan_id": [f"{site}-L2-VOL-{i:04d}" for i in range(n)],
            "site": [site] * n,
            "volume_start": [datetime(2021, 6, 25, 0, i % 60, tzinfo=UTC) for i in range(n)],
        }
    )


def test_partition_write_replaces_and_publish_swaps(tmp_path):
    cat = local_catalog(tmp_path)
    cat.write_partition("scans", "2021-06-25|KLOT", rows("KLOT", 3))
    cat.write_partition("scans", "2021-06-25|KTLX", rows("KTLX", 2))
    assert cat.publish() == {"scans": 5}
    cat.write_partition("scans", "2021-06-25|KLOT", rows("KLOT", 1))  # delete-and-replace
    assert cat.publish() == {"scans": 3}
    cols, result = query_readonly(
        cat.snapshot_path, "select site, count(*) from scans group by site order by site"
    )
    assert cols == ["site", "count_star()"]
    assert result == [("KLOT", 1), ("KTLX", 2)]
    assert not list(cat.snapshot_dir.glob("*.tmp"))


@pytest.mark.parametrize(
    "sql",
    [
        "insert into scans values (1)",
        "drop table scans",
        "create table x as select 1",
        "select 1; delete from scans",
        "attach 'x.duckdb' as x",
        "copy scans to '/tmp/x.csv'",
        "install httpfs",
        "",
    ],
)
def test_only_reads_are_accepted(sql):
    with pytest.raises(ReadOnlyQueryError):
        check_read_only(sql)


def test_snapshot_connection_is_read_only_in_duckdb_itself(tmp_path):
    cat = local_catalog(tmp_path)
    cat.write_partition("scans", "p", rows("KLOT", 1))
    cat.publish()
    con = cat.connect_readonly()
    with pytest.raises(duckdb.Error, match="read-only"):
        con.execute("insert into scans (scan_id) values ('x')")
    con.close()


def test_reader_process_holds_snapshot_open_while_publish_happens(tmp_path):
    """A separate process (like the API) keeps a read-only connection; publishing neither fails nor blocks it."""
    cat = local_catalog(tmp_path)
    cat.write_partition("scans", "p0", rows("KLOT", 2))
    cat.publish()
    reader = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, duckdb
            con = duckdb.connect({str(cat.snapshot_path)!r}, read_only=True)
            print(con.execute("select count(*) from scans").fetchone()[0], flush=True)
            sys.stdin.readline()  # hold the connection open while the parent publishes
            print(con.execute("select count(*) from scans").fetchone()[0], flush=True)
            con.close()
            con = duckdb.connect({str(cat.snapshot_path)!r}, read_only=True)
            print(con.execute("select count(*) from scans").fetchone()[0], flush=True)
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert reader.stdout.readline().strip() == "2"
    for i in range(1, 4):
        cat.write_partition("scans", f"p{i}", rows("KTLX", 5))
        cat.publish()
    out, err = reader.communicate("go\n", timeout=60)
    assert reader.returncode == 0, err
    # the held connection still reads its snapshot; a new connection sees the newest one
    assert out.split() == ["2", "17"]
