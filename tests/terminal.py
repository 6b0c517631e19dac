"""Reading what a command drew on a pseudo-terminal, for the progress-bar tests."""

from __future__ import annotations

import os
import selectors


def read_terminal(master: int) -> str:
    """Everything written to the terminal so far (a pty hands it over in pieces): until nothing more
    arrives within 0.3 s. A selector, not select(): late in a long suite the pty's descriptor can be
    past select()'s limit of 1024."""
    pieces = []
    with selectors.DefaultSelector() as selector:
        selector.register(master, selectors.EVENT_READ)
        while selector.select(0.3):
            pieces.append(os.read(master, 65536))
    return b"".join(pieces).decode(errors="replace")
