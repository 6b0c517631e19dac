"""The pure parts of the web tools: reading a content type, HTML to Markdown, SearXNG's domain filter,
what the model reads of a search."""

from __future__ import annotations

import json

from o.tools.web.fetch import _content_type, html_to_markdown
from o.tools.web.search import SearchHit, SearchQuery, _domain_wanted, render


def test_content_type_and_charset() -> None:
    assert _content_type('text/HTML; Charset="ISO-8859-1"') == ("text/html", "iso-8859-1")
    assert _content_type("application/json") == ("application/json", None)
    assert _content_type("") == ("", None)


def test_a_page_without_main_content_keeps_its_body_without_banner_and_footer() -> None:
    page = (
        b"<html><body><header>Site banner</header><h2>Notes</h2><p>caf\xe9 "
        b"<a href='javascript:alert(1)'>click</a> <a href='b.html'>next</a></p>"
        b"<img src='/i.png' alt='pic'><footer>legal</footer></body></html>"
    )
    text = html_to_markdown(page, "https://example.org/a/index.html", "latin-1")
    assert "## Notes" in text and "café" in text
    assert "[next](https://example.org/a/b.html)" in text and "javascript" not in text
    assert "![pic](https://example.org/i.png)" in text
    assert "banner" not in text and "legal" not in text


def test_the_charset_a_page_declares_itself_is_used() -> None:
    page = '<html><head><meta charset="windows-1252"></head><body><p>na\u00efve</p></body></html>'.encode("cp1252")
    assert html_to_markdown(page, "https://example.org/") == "na\u00efve"


def test_domain_filters() -> None:
    only = SearchQuery("q", include_domains=("letta.com",))
    assert _domain_wanted("https://docs.letta.com/x", only) and _domain_wanted("https://letta.com/", only)
    assert not _domain_wanted("https://notletta.com/", only)
    without = SearchQuery("q", exclude_domains=("www.example.org",))
    assert not _domain_wanted("https://example.org/", without) and _domain_wanted("https://example.com/", without)


def test_what_the_model_reads_of_a_search() -> None:
    hits = [SearchHit("T", "https://t.example/", "snippet", published_date=None, author="A")]
    assert json.loads(render(SearchQuery("q"), "exa", hits)) == {
        "query": "q",
        "provider": "exa",
        "results": [{"title": "T", "url": "https://t.example/", "snippet": "snippet", "author": "A"}],
    }
