"""The three outside-world built-ins as Letta names and describes them: what an organization's tool
records of them say (:mod:`o.tools.base`). Apart from what runs them (:mod:`o.tools.web.tools`), so the
records are read and made without importing the HTTP client or the outbound transport: the API's cold
start and a GET of an agent never load them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from o.tools.web import code

TOOL_TYPE = "letta_builtin"
_STR = {"type": "string"}
_STRS = {"type": "array", "items": _STR}


@dataclass(frozen=True)
class WebTool:
    name: str
    description: str
    parameters: dict[str, Any]
    tool_type: str = TOOL_TYPE
    # the limit a new record starts with (users may change it, as on any base tool)
    return_char_limit: int = 20_000

    def schema(self) -> dict[str, Any]:
        """The JSON schema its record shows: Letta's name, description and parameters."""
        return {"name": self.name, "description": self.description, "parameters": self.parameters}


def _tool(name: str, description: str, properties: dict[str, Any], required: list[str]) -> WebTool:
    return WebTool(name, description, {"type": "object", "properties": properties, "required": required})


WEB_TOOLS: dict[str, WebTool] = {
    t.name: t
    for t in (
        _tool(
            "run_code",
            "Run code in a sandbox and return its result, stdout, stderr and error. Python only: "
            "the value of a final expression is the result; use print for anything else.",
            {
                "code": {**_STR, "description": "The code to run."},
                "language": {**_STR, "enum": list(code.LANGUAGES), "description": "The language of the code."},
            },
            ["code", "language"],
        ),
        _tool(
            "fetch_webpage",
            "Fetch a webpage and return its main content as Markdown.",
            {"url": {**_STR, "description": "The URL of the webpage to fetch (http or https)."}},
            ["url"],
        ),
        _tool(
            "web_search",
            "Search the web. Returns JSON with each result's title, url and snippet (and published date, "
            "author, full text when asked for and known).",
            {
                "query": {**_STR, "description": "The search query."},
                "num_results": {"type": "integer", "description": "How many results (1-100). Defaults to 10."},
                "category": {
                    **_STR,
                    "enum": [
                        "company",
                        "research paper",
                        "news",
                        "pdf",
                        "github",
                        "tweet",
                        "personal site",
                        "linkedin profile",
                        "financial report",
                    ],
                    "description": "Focus on a kind of content.",
                },
                "include_text": {"type": "boolean", "description": "Include each page's text (long)."},
                "include_domains": {**_STRS, "description": "Only results from these domains."},
                "exclude_domains": {**_STRS, "description": "No results from these domains."},
                "start_published_date": {**_STR, "description": "Published after this date (ISO 8601)."},
                "end_published_date": {**_STR, "description": "Published before this date (ISO 8601)."},
                "user_location": {**_STR, "description": "Two-letter country code of the user."},
            },
            ["query"],
        ),
    )
}
