"""Letta's built-in outside-world tools: ``run_code`` (the sandbox), ``fetch_webpage`` and ``web_search``
(through the outbound URL policy of :mod:`o.net`). Unlike the memory built-ins they run outside any
transaction (they may be slow), like a user's tool: :class:`o.tools.web.tools.WebTools` runs them."""
