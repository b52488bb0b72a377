"""When the commands draw progress bars: only for a person watching a terminal."""

from __future__ import annotations

import sys


def show_progress(quiet: bool = False) -> bool:
    """True when stderr is a terminal and nothing asked for silence (``quiet``: ``--quiet`` or
    ``--json``); a log file or a pipe gets no progress bars."""
    return not quiet and sys.stderr.isatty()


__all__ = ["show_progress"]
