"""Helper process for the journal kill test: append forever, print every ack.

Usage: ``python journal_writer.py PATH SYNCHRONOUS ROOMS``. Prints ``ready``,
then one line ``<room> <seq> <n>`` per append *after* ``append`` returned
(the update was acknowledged), where the update's bytes are ``payload(room, n)``.
Runs until killed.
"""

from __future__ import annotations

import asyncio
import sys

from cs3collab.service.journal_sqlite import SQLiteJournal


def payload(room: str, n: int) -> bytes:
    """The update bytes of the ``n``-th append to ``room`` (deterministic, ~200 bytes)."""
    return f"{room}:{n}:".encode() + bytes(range(n % 256))[:200]


async def _appender(journal: SQLiteJournal, room: str) -> None:
    n = 0
    while True:
        seq = await journal.append(room, payload(room, n))
        sys.stdout.write(f"{room} {seq} {n}\n")
        sys.stdout.flush()
        n += 1


async def main(path: str, synchronous: str, rooms: int) -> None:
    async with SQLiteJournal(path, synchronous=synchronous) as journal:
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        await asyncio.gather(*(_appender(journal, f"room-{i}") for i in range(rooms)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
