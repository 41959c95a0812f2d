"""One signal policy for every long-running command (docs/faults.md).

SIGTERM ends a command as Ctrl-C does: within :func:`terminate_on_sigterm` (``lenet``'s ``main`` holds
it around every command) it raises :class:`~lenetlab.errors.Terminated`, a KeyboardInterrupt with exit
status 143, so ``finally`` blocks release locks and remove temporary files on the way out. Code that must
finish a unit of work first (the training loop saves ``last.pt`` at a step boundary) installs a
:class:`StopRequest`. Signals reach the main thread only: elsewhere these change nothing.
"""

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator

from lenetlab.errors import Terminated


@contextlib.contextmanager
def handling(handler: Callable, signals: tuple = (signal.SIGTERM,)) -> Iterator[None]:
    """Within the block ``handler(signum, frame)`` handles ``signals``; the previous handlers come back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def terminate_on_sigterm():
    """Within the block SIGTERM raises :class:`~lenetlab.errors.Terminated` (exit status 143)."""

    def raise_terminated(signum, frame):
        raise Terminated

    return handling(raise_terminated)


class StopRequest:
    """A handler for Ctrl-C (SIGINT) and SIGTERM that asks to stop at the next safe point: the first signal
    is recorded in :attr:`signum` (0: none), a second one stops at once. Use ``with stop.installed():``
    and test ``stop.signum`` where stopping is safe."""

    def __init__(self) -> None:
        self.signum = 0

    def __call__(self, signum, frame) -> None:
        if self.signum:  # a second signal: stop at once
            self.signum = signum
            self.raise_()
        self.signum = signum

    def installed(self):
        """The block within which this request handles SIGINT and SIGTERM."""
        return handling(self, (signal.SIGINT, signal.SIGTERM))

    @property
    def terminated(self) -> bool:
        """Whether the signal was SIGTERM (exit 143) rather than Ctrl-C (exit 130)."""
        return self.signum == signal.SIGTERM

    def raise_(self):
        """Raise what the recorded signal means: Terminated for SIGTERM, KeyboardInterrupt for SIGINT."""
        raise Terminated if self.terminated else KeyboardInterrupt
