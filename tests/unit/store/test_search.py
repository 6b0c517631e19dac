"""The pure parts of the hybrid search: which words the GIN match uses, BM25 idf, filters, the vector half."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np

from o.store.search import SearchFilters, SearchSpec, bm25_idf, matched_lexemes, query_vector


def test_the_rarest_words_are_matched_while_the_budget_lasts() -> None:
    by_rarity = [(1, "zugspitze"), (40, "hike"), (500, "summer"), (900, "day")]
    assert matched_lexemes(by_rarity, budget=1_000) == ["zugspitze", "hike", "summer"]
    assert matched_lexemes(by_rarity, budget=541) == ["zugspitze", "hike", "summer"]
    assert matched_lexemes(by_rarity, budget=540) == ["zugspitze", "hike"]
    # a query of words all commoner than the budget matches nothing
    assert matched_lexemes([(2_000, "the")], budget=1_000) == []
    assert matched_lexemes([], budget=1_000) == []


def test_bm25_idf_falls_with_document_frequency_and_stays_positive() -> None:
    assert math.isclose(bm25_idf(100, 1), math.log(1 + 99.5 / 1.5))
    assert bm25_idf(100, 1) > bm25_idf(100, 50) > bm25_idf(100, 100) > 0


def test_no_filters_keep_the_agents_rows_only() -> None:
    where = SearchFilters().where("org-1", "agent-1")
    assert where.clause().as_string() == '"p"."organization_id" = %s AND "p"."agent_id" = %s'
    assert where.params == ("org-1", "agent-1")


def test_every_filter_is_a_condition_on_the_searched_table() -> None:
    start, end = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 31, tzinfo=UTC)
    filters = SearchFilters(tags=("a", "b"), tag_match="all", created_from=start, created_to=end, roles=("user",))
    where = filters.where("org-1", "agent-1")
    assert where.clause().as_string() == (
        '"p"."organization_id" = %s AND "p"."agent_id" = %s AND "p"."tags" @> %s::text[] '
        'AND "p"."created_at" >= %s AND "p"."created_at" <= %s AND "p"."role" = ANY(%s)'
    )
    assert where.params == ("org-1", "agent-1", ["a", "b"], start, end, ["user"])


def test_the_vector_half_runs_only_with_a_vector_a_width_and_a_weight() -> None:
    vector = np.ones(4, dtype=np.float32)
    spec = SearchSpec("passages", "archival", "org-1", "agent-1", ("id",), model="m", dim=4, query_vector=vector)
    half = query_vector(spec)
    assert half is not None and half.dim == 4 and half.model == "m" and half.vector is vector
    assert query_vector(SearchSpec("passages", "archival", "org-1", "agent-1", ("id",), dim=4)) is None
    no_dim = SearchSpec("passages", "archival", "org-1", "agent-1", ("id",), query_vector=vector)
    assert query_vector(no_dim) is None
    weightless = SearchSpec(
        "passages", "archival", "org-1", "agent-1", ("id",), dim=4, query_vector=vector, vector_weight=0.0
    )
    assert query_vector(weightless) is None
