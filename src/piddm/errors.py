"""The exception types that the CLI turns into a one-line message and an exit status.

:class:`PiddmError` is a user error (bad input, bad config, wrong model for the data): the CLI
prints ``error: <message>`` and exits with status 2. :class:`TrainingInterrupted` is a run
stopped by a signal after saving a checkpoint: the CLI prints its message and exits with
``128 + signum`` (143 for SIGTERM, 130 for SIGINT), like a process killed by the signal.
Anything else is an internal error (exit 1).
"""

from __future__ import annotations

import signal


class PiddmError(Exception):
    """A user-facing error with a one-line message."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class TrainingInterrupted(Exception):
    """Training stopped on signal ``signum`` after saving its checkpoint at ``step``."""

    def __init__(self, signum: int, step: int) -> None:
        self.signum = int(signum)
        self.step = int(step)
        name = signal.Signals(self.signum).name
        super().__init__(
            f"interrupted by {name} at step {self.step}; checkpoint saved, continue with --resume"
        )

    @property
    def exit_code(self) -> int:
        """The shell's status of a process ended by the signal: ``128 + signum``."""
        return 128 + self.signum
