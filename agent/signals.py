"""SIGTERM/SIGINT handling for the daemon: both only ask it to stop (optional; off in tests)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable


def install(stop: Callable[[], None]) -> Callable[[], None]:
    """Route SIGTERM and SIGINT to ``stop``; returns a function that removes the handlers."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, stop)

    def remove() -> None:
        for sig in signals:
            loop.remove_signal_handler(sig)

    return remove
