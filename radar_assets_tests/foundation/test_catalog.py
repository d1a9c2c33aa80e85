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


def _dump(path, table):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return sorted(con.execute(f"select * exclude (_file) from {table}").fetchall())
    finally:
        con.close()


def test_incremental_publish_equals_a_full_rebuild(tmp_path):
    cat = local_catalog(tmp_path / "a")
    cat.write_partition("scans", "p1", rows("KLOT", 3))
    cat.write_partition("scans", "p2", rows("KTLX", 2))
    cat.write_partition("rejects", "p1", pa.table({"source_key": ["x"], "reason": ["bad"]}))
    cat.publish()
    cat.write_partition("scans", "p1", rows("KLOT", 4))  # rewritten
    cat.write_partition("scans", "p3", rows("KICT", 1))  # added
    cat.store.delete(cat.partition_key("scans", "p2"))  # removed
    cat.store.delete(cat.partition_key("rejects", "p1"))  # whole table gone
    incremental = cat.publish()
    assert incremental == {"scans": 5}
    got = _dump(cat.snapshot_path, "scans")
    full = cat.publish(incremental=False)
    assert full == incremental and _dump(cat.snapshot_path, "scans") == got
    con = duckdb.connect(str(cat.snapshot_path), read_only=True)
    tables = {r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()}
    con.close()
    assert "rejects" not in tables


def test_incremental_publish_rebuilds_a_table_whose_schema_grew(tmp_path):
    cat = local_catalog(tmp_path)
    cat.write_partition("scans", "p1", rows("KLOT", 2))
    cat.publish()
    wider = rows("KTLX", 1).append_column("vcp", pa.array([212], pa.int16()))
    cat.write_partition("scans", "p2", wider)
    assert cat.publish() == {"scans": 3}
    _, result = query_readonly(cat.snapshot_path, "select site, vcp from scans order by site")
    assert result == [("KLOT", None), ("KLOT", None), ("KTLX", 212)]


def test_appended_rows_are_resorted_once_they_outnumber_the_sorted_ones(tmp_path):
    cat = local_catalog(tmp_path)
    cat.write_partition("scans", "p00", rows("KTLX", 40))
    cat.publish()

    def state():
        con = duckdb.connect(str(cat.snapshot_path), read_only=True)
        try:
            return con.execute("select sorted_rows, appended_rows from catalog_tables").fetchone()
        finally:
            con.close()

    cat.write_partition("scans", "p01", rows("KLOT", 5))
    cat.publish()
    assert state() == (40, 5)  # patched in, appended after the sorted rows
    cat.write_partition("scans", "p02", rows("KABR", 36))
    cat.publish()
    assert state() == (81, 0)  # 41 appended > 40 sorted: rebuilt in sort order
    _, order = query_readonly(cat.snapshot_path, "select site from scans")
    assert [r[0] for r in order] == sorted(r[0] for r in order)
