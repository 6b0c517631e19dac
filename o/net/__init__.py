"""Outbound network calls: the one policy every outbound HTTP call obeys (:mod:`o.net.outbound`) and the
HTTP client that enforces it when connecting (:mod:`o.net.transport`)."""
