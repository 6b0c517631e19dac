"""The WHERE clauses the filter builder composes: the SQL text and the values that go with it."""

from __future__ import annotations

from datetime import UTC, datetime

from o.store.filters import Where, like_pattern


def rendered(where: Where) -> tuple[str, tuple[object, ...]]:
    return where.clause().as_string(), where.params


def test_no_filter_is_true() -> None:
    assert rendered(Where()) == ("TRUE", ())


def test_filters_that_are_not_given_add_nothing() -> None:
    where = (
        Where()
        .equals("name", None)
        .equals_any("status", None)
        .equals_any("status", [])
        .tags("tags", None)
        .tags("tags", [], match="all")
        .contains("name", None)
        .contains("name", "")
        .in_range("created_at", None, None)
        .is_true("is_template", False)
    )
    assert rendered(where) == ("TRUE", ())


def test_conditions_are_joined_by_and_in_the_order_given() -> None:
    where = Where().equals("organization_id", "org-1").equals("name", "").equals_any("status", ("a", "b"))
    assert rendered(where) == (
        '"organization_id" = %s AND "name" = %s AND "status" = ANY(%s)',
        ("org-1", "", ["a", "b"]),
    )


def test_tags_any_and_all() -> None:
    assert rendered(Where().tags("tags", ("x", "y"))) == ('"tags" && %s::text[]', (["x", "y"],))
    assert rendered(Where().tags("tags", ["x"], match="all")) == ('"tags" @> %s::text[]', (["x"],))


def test_contains_escapes_the_like_wildcards() -> None:
    assert rendered(Where().contains("name", "50%_a\\b")) == ('"name" ILIKE %s', ("%50\\%\\_a\\\\b%",))
    assert like_pattern("") == "%%"


def test_time_range_bounds_are_inclusive_and_optional() -> None:
    start, end = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC)
    assert rendered(Where().in_range("created_at", start, end)) == (
        '"created_at" >= %s AND "created_at" <= %s',
        (start, end),
    )
    assert rendered(Where().in_range("created_at", None, end)) == ('"created_at" <= %s', (end,))


def test_boolean_flag() -> None:
    assert rendered(Where().is_true("is_template", True)) == ('"is_template"', ())


def test_an_alias_qualifies_every_column() -> None:
    where = Where("p").equals("agent_id", "agent-1").equals_any("role", ["user"])
    assert rendered(where) == ('"p"."agent_id" = %s AND "p"."role" = ANY(%s)', ("agent-1", ["user"]))


def test_names_are_identifiers_and_values_never_enter_the_text() -> None:
    hostile = "x'; DROP TABLE agents; --"
    text, params = rendered(Where().equals('na"me', hostile).contains("name", hostile))
    assert text == '"na""me" = %s AND "name" ILIKE %s'
    assert params[0] == hostile and hostile not in text
