"""What one lifecycle of bench/store.py sends the database, counted rather than assumed.

- SQLite: ``sqlite3``'s trace callback (:func:`sqlite_tracer`) sees every statement the library
  runs, the ``BEGIN`` and ``COMMIT`` the ``sqlite3`` module issues by itself included (a
  read-only transaction has none: ``sqlite3`` begins one only before a write);
- PostgreSQL: :class:`WireCounter` is a TCP relay between the client and the server that reads
  the client's protocol messages: ``BEGIN`` (transactions), every executed statement (an
  ``Execute`` message or a simple query), and round trips (each time the client sends after the
  server has answered).

The counting runs in a pass of its own after the timed one (the relay costs CPU).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Counts:
    """What went to the database: transactions, statements, round trips (PostgreSQL only)."""

    transactions: int = 0
    statements: int = 0
    round_trips: int = 0

    def per(self, lifecycles: int) -> dict[str, float]:
        return {
            "transactions": round(self.transactions / lifecycles, 2),
            "statements": round(self.statements / lifecycles, 2),
            "round_trips": round(self.round_trips / lifecycles, 2),
        }


def sqlite_tracer(counts: Counts) -> Callable[[str], None]:
    """A ``sqlite3`` trace callback that counts into ``counts``."""

    def trace(sql: str) -> None:
        word = sql.lstrip()[:8].upper()
        if word.startswith("BEGIN"):
            counts.transactions += 1
        elif not word.startswith(("COMMIT", "ROLLBACK")):
            counts.statements += 1

    return trace


class WireCounter:
    """A TCP relay to PostgreSQL that counts the client's messages (see the module docstring)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.counts = Counts()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(self.host, self.port)
        answered = [True]  # the server has spoken since the client last sent

        async def upstream() -> None:
            buffer, started = b"", False
            while data := await client_r.read(65536):
                if answered[0]:
                    self.counts.round_trips += 1
                    answered[0] = False
                server_w.write(data)
                buffer += data
                while True:
                    if not started:  # the startup (or SSL request) message has no type byte
                        if len(buffer) < 4:
                            break
                        (size,) = struct.unpack("!i", buffer[:4])
                        if len(buffer) < size:
                            break
                        started = struct.unpack("!i", buffer[4:8])[0] != 80877103
                        buffer = buffer[size:]
                        continue
                    if len(buffer) < 5:
                        break
                    kind, (size,) = buffer[:1], struct.unpack("!i", buffer[1:5])
                    if len(buffer) < size + 1:
                        break
                    self._count(kind, buffer[5 : size + 1])
                    buffer = buffer[size + 1 :]
            server_w.close()

        async def downstream() -> None:
            while data := await server_r.read(65536):
                answered[0] = True
                client_w.write(data)
            client_w.close()

        await asyncio.gather(upstream(), downstream(), return_exceptions=True)

    def _count(self, kind: bytes, body: bytes) -> None:
        if kind == b"Q":
            sql = body[:16].decode(errors="replace").lstrip().upper()
            if sql.startswith(("BEGIN", "START TRANSACTION")):
                self.counts.transactions += 1
            elif not sql.startswith(("COMMIT", "ROLLBACK")):
                self.counts.statements += 1
        elif kind == b"E":
            self.counts.statements += 1
