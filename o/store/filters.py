"""The WHERE clause of a list or search query, composed from the filters a caller gave.

Each method adds one condition when its filter is given and nothing when it is not (None, an
empty list or an empty text filter nothing), and returns the builder, so a query reads as a chain::

    where = Where().equals("organization_id", org).equals_any("status", statuses)
    conn.execute(sql.SQL("SELECT * FROM runs WHERE {}").format(where.clause()), where.params)

Column names become quoted identifiers (qualified by ``alias`` when the query names its table)
and values always travel as parameters: nothing a caller passes is formatted into the SQL text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, LiteralString

from psycopg import sql

TagMatch = Literal["any", "all"]
IdentityLink = Literal["agents", "blocks"]
# identity_<link> tables (schema 013): the link table and its column naming the row
_IDENTITY_LINKS: dict[str, tuple[LiteralString, LiteralString]] = {
    "agents": ("identity_agents", "agent_id"),
    "blocks": ("identity_blocks", "block_id"),
}


def like_pattern(text: str) -> str:
    r"""A LIKE pattern that finds ``text`` anywhere, with ``\``, ``%`` and ``_`` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass
class Where:
    alias: str | None = None
    conditions: list[sql.Composable] = field(default_factory=list, init=False)
    values: list[Any] = field(default_factory=list, init=False)

    def column(self, name: str) -> sql.Identifier:
        return sql.Identifier(self.alias, name) if self.alias else sql.Identifier(name)

    def _add(self, template: LiteralString, column: str, *values: Any) -> Where:
        self.conditions.append(sql.SQL(template).format(self.column(column)))
        self.values.extend(values)
        return self

    def equals(self, column: str, value: object) -> Where:
        """``column = value``, unless ``value`` is None."""
        return self if value is None else self._add("{} = %s", column, value)

    def equals_any(self, column: str, values: Sequence[Any] | None) -> Where:
        """``column`` is one of ``values``, unless there are none."""
        return self._add("{} = ANY(%s)", column, list(values)) if values else self

    def equals_or_any(self, column: str, value: object, other: str, values: Sequence[Any]) -> Where:
        """``column = value OR other = ANY(values)``: either part is left out when its value is None or
        empty (the caller gives at least one)."""
        if not values:
            return self.equals(column, value)
        if value is None:
            return self.equals_any(other, values)
        self.conditions.append(sql.SQL("({} = %s OR {} = ANY(%s))").format(self.column(column), self.column(other)))
        self.values.extend([value, list(values)])
        return self

    def tags(self, column: str, tags: Sequence[str] | None, *, match: TagMatch = "any") -> Where:
        """The ``text[]`` column shares a tag with ``tags`` (``any``) or holds all of them (``all``).

        Both operators are answered by a GIN index on the column.
        """
        if not tags:
            return self
        return self._add("{} @> %s::text[]" if match == "all" else "{} && %s::text[]", column, list(tags))

    def contains(self, column: str, text: str | None) -> Where:
        """``column`` contains ``text``, ignoring case, with no wildcards; an empty text filters nothing."""
        return self._add("{} ILIKE %s", column, like_pattern(text)) if text else self

    def in_range(self, column: str, start: object, end: object) -> Where:
        """``start <= column <= end``; either bound may be None (open)."""
        if start is not None:
            self._add("{} >= %s", column, start)
        if end is not None:
            self._add("{} <= %s", column, end)
        return self

    def strictly_between(self, column: str, low: object, high: object) -> Where:
        """``low < column < high``; either bound may be None (open)."""
        if low is not None:
            self._add("{} > %s", column, low)
        if high is not None:
            self._add("{} < %s", column, high)
        return self

    def is_null(self, column: str, when: bool) -> Where:
        """``column`` IS NULL, when ``when`` asks for it."""
        return self._add("{} IS NULL", column) if when else self

    def lacks_key(self, column: str, key: str, when: bool) -> Where:
        """The jsonb ``column`` has no top-level ``key``, when ``when`` asks for it."""
        return self._add("NOT {} ? %s", column, key) if when else self

    def is_true(self, column: str, when: bool) -> Where:
        """The boolean ``column`` is true, when ``when`` asks for it."""
        return self._add("{}", column) if when else self

    def identified(self, link: IdentityLink, identity_id: str | None, identifier_keys: Sequence[str] | None) -> Where:
        """The row (an agent or a block, by ``id``) is attached to the identity ``identity_id`` and to one
        of the identities whose ``identifier_key`` is in ``identifier_keys``, where given."""
        table, key = _IDENTITY_LINKS[link]
        if identity_id is not None:
            query = "{} IN (SELECT l." + key + " FROM " + table + " l WHERE l.identity_id = %s)"
            self._add(query, "id", identity_id)
        if identifier_keys:
            query = (
                "{} IN (SELECT l." + key + " FROM " + table + " l JOIN identities i ON i.id = l.identity_id"
                " WHERE i.identifier_key = ANY(%s))"
            )
            self._add(query, "id", list(identifier_keys))
        return self

    def clause(self) -> sql.Composable:
        """The conditions joined by AND (TRUE when there are none)."""
        return sql.SQL(" AND ").join(self.conditions) if self.conditions else sql.SQL("TRUE")

    @property
    def params(self) -> tuple[Any, ...]:
        """The values of the placeholders in :meth:`clause`, in order."""
        return tuple(self.values)
