"""Graceful stop of a training run on SIGTERM / SIGINT.

While installed, the two signals no longer kill the process (or raise
``KeyboardInterrupt``): the handler only records the first signal, and the training loop,
which polls :attr:`StopSignals.signum` once per step, finishes the step, saves a checkpoint
and raises :class:`~piddm.errors.TrainingInterrupted`. A second signal while saving is
recorded and otherwise ignored, so the checkpoint files (written atomically anyway) stay
whole. :meth:`StopSignals.restore` puts the previous handlers back.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

#: The signals that stop a run gracefully (a batch system's SIGTERM, a terminal's Ctrl-C).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """Records SIGTERM / SIGINT in :attr:`signum` (0 while none arrived) between
    :meth:`install` and :meth:`restore`.

    Signal handlers can only be installed from the main thread; elsewhere (e.g. a run
    started from a worker thread) nothing is installed and the signals act as usual.
    """

    def __init__(self) -> None:
        self.signum = 0
        self._previous: dict[int, Any] = {}

    def _record(self, signum: int, frame: FrameType | None) -> None:
        if not self.signum:
            self.signum = signum

    def install(self) -> StopSignals:
        """Start recording the signals (a no-op outside the main thread); returns ``self``."""
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._record)
        return self

    def restore(self) -> None:
        """Put the handlers back that were in place before :meth:`install`."""
        for sig, handler in self._previous.items():
            # None: the previous handler was not installed from Python; fall back to default.
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        self._previous.clear()
