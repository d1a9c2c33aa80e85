"""Small helpers to build parameterised queries.

SQL text comes only from constants in the routers (column names, ``?`` placeholders); request values are
always bound as parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Where:
    """AND-ed conditions with ``?`` placeholders and their bound values."""

    clauses: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def add(self, clause: str, *params: Any) -> Where:
        if clause.count("?") != len(params):
            raise ValueError(f"{clause!r} takes {clause.count('?')} parameters, got {len(params)}")
        self.clauses.append(clause)
        self.params.extend(params)
        return self

    def add_if(self, value: Any, clause: str) -> Where:
        """``clause`` (with one ``?``) bound to ``value``, unless ``value`` is None."""
        if value is not None:
            self.add(clause, value)
        return self

    def after(self, columns: tuple[str, ...], values: tuple[Any, ...] | None) -> Where:
        """Keyset condition ``(c1, c2, ...) > (v1, v2, ...)`` spelled out so zone maps still apply."""
        if values is None:
            return self
        ors: list[str] = []
        params: list[Any] = []
        for i, col in enumerate(columns):
            parts = [f'"{c}" = ?' for c in columns[:i]] + [f'"{col}" > ?']
            ors.append("(" + " AND ".join(parts) + ")")
            params.extend(values[: i + 1])
        lead = f'"{columns[0]}" >= ?'
        return self.add(f"{lead} AND ({' OR '.join(ors)})", values[0], *params)

    def sql(self) -> str:
        return (" WHERE " + " AND ".join(self.clauses)) if self.clauses else ""
