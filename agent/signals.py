"""SIGTERM/SIGINT handling for the daemon (optional; off in tests that run it in-process).

Both signals are passed to one callback with the signal, so the daemon can tell the first
(finish what is in flight, then stop) from the second (stop at once).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

SIGNALS = (signal.SIGTERM, signal.SIGINT)


def install(on_signal: Callable[[signal.Signals], None]) -> Callable[[], None]:
    """Route SIGTERM and SIGINT to ``on_signal(sig)``; returns a function that removes them."""
    loop = asyncio.get_running_loop()
    for sig in SIGNALS:
        loop.add_signal_handler(sig, on_signal, sig)

    def remove() -> None:
        for sig in SIGNALS:
            loop.remove_signal_handler(sig)

    return remove
