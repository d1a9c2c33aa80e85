"""The boundary's time series as a deterministic CSV with its Frictionless Table Schema.

Format: RFC 4180 CSV (``,`` delimiter, ``"`` quoting only where needed, ``\\n`` line ends, UTF-8, one
header row). The columns are those of the given pyarrow table, in its schema order (the time-series
table's owner decides them); rows are sorted by every column in that order, so the same rows in any order
give the same bytes. Cell formatting is fixed: timestamps as ISO 8601 UTC with ``Z`` (microseconds only
when present), floats as the shortest decimal that round-trips at their stored precision (``repr`` for
float64, the float32 shortest form for float32), NaN and nulls as empty cells, infinities as ``INF``/``-INF``,
booleans as ``true``/``false``.

The Table Schema (Frictionless *Table Schema* v2, https://datapackage.org/standard/table-schema/) maps
Arrow types to field types so that ``frictionless validate`` checks every cell.
"""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, date, datetime

import pyarrow as pa
import pyarrow.compute as pc


def field_type(arrow_type: pa.DataType) -> str:
    """Frictionless field type of an Arrow type."""
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_integer(arrow_type):
        return "integer"
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "number"
    if pa.types.is_timestamp(arrow_type):
        return "datetime"
    if pa.types.is_date(arrow_type):
        return "date"
    return "string"


def table_schema(schema: pa.Schema) -> dict:
    """Frictionless Table Schema of an Arrow schema (column order kept)."""
    return {"fields": [{"name": f.name, "type": field_type(f.type)} for f in schema]}


def _float32_decimal(value: float | None) -> float | None:
    """The double nearest the shortest decimal that identifies a float32 (so ``repr`` prints ``0.1``)."""
    import numpy as np

    if value is None or math.isnan(value):
        return value
    return float(str(np.float32(value)))


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isinf(value):  # Table Schema's spelling of infinities
            return "INF" if value > 0 else "-INF"
        return "" if math.isnan(value) else repr(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        fmt = "%Y-%m-%dT%H:%M:%S.%fZ" if value.microsecond else "%Y-%m-%dT%H:%M:%SZ"
        return value.strftime(fmt)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _sortable(table: pa.Table) -> list[tuple[str, str]]:
    keys = []
    for f in table.schema:
        t = f.type
        if pa.types.is_nested(t) or pa.types.is_dictionary(t) or pa.types.is_null(t):
            continue
        keys.append((f.name, "ascending"))
    return keys


def timeseries_csv(table: pa.Table) -> bytes:
    """Deterministic CSV bytes of a time-series table (see the module docstring for the format)."""
    keys = _sortable(table)
    if keys and table.num_rows:
        table = table.take(pc.sort_indices(table, sort_keys=keys))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(table.schema.names)
    columns = []
    for f in table.schema:
        values = table.column(f.name).to_pylist()
        if pa.types.is_float32(f.type) or pa.types.is_float16(f.type):
            # The shortest text that round-trips the stored float32 (0.5, 19.3), not its float64 widening.
            values = [_float32_decimal(v) for v in values]
        columns.append(values)
    for row in zip(*columns, strict=True):
        writer.writerow([_cell(v) for v in row])
    return buf.getvalue().encode("utf-8")
