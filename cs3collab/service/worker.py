"""Document work that takes CPU, off the event loop: one worker process.

Parsing and validating a large notebook, building its Y state and writing it
back out take tens to hundreds of milliseconds for a notebook of a few MB,
all of it Python holding the GIL. Done on the event loop, that time is added
to the propagation of every keystroke in every room. The service therefore
sends this work, as bytes in and bytes out, to a worker process
(spawned, not forked: the service has gRPC threads, which must not be
forked). A worker that dies is replaced on the next call.

The functions below are what runs in the worker; each takes and returns
only bytes and strings, so nothing but plain data crosses the process
boundary. ``InvalidDocument`` raised in the worker is raised again here.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, TypeVar

from pycrdt import Doc

from cs3collab.service import documents, protocol, slices

log = logging.getLogger("cs3collab.service.worker")

START_TIMEOUT = 60.0
"""Seconds the worker process may take to start and answer (a few on a busy machine)."""
START_ATTEMPTS = 3

T = TypeVar("T")


def parse_content(doc_type: str, data: bytes, seed: str, where: str) -> Any:
    """File bytes → the document content (a notebook dict, or text)."""
    return documents.parse(documents.KINDS[doc_type], data, seed=seed, where=where)


def build_initial(doc_type: str, data: bytes, seed: str, where: str) -> bytes:
    """File bytes → the deterministic initial Y update (raises InvalidDocument)."""
    kind = documents.KINDS[doc_type]
    content = documents.parse(kind, data, seed=seed, where=where)
    doc = Doc(client_id=documents.INITIAL_CLIENT_ID)
    kind.wrap(doc).set(content)
    return doc.get_update()


def open_file(doc_type: str, chunks: list[bytes], seed: str, where: str) -> tuple[bytes, int, list[bytes], bytes]:
    """A file's bytes, as the chunks they were downloaded in → (the initial
    Y update framed as a SyncStep2 message, for the first tabs; the update's
    size; its slices for the room to apply a part at a time; the update
    compressed as the room's persisted state): everything of a fresh open
    that is proportional to the file, done here. Joining the chunks and
    framing a multi-MB update are copies into fresh memory: on the event loop
    they were 3-5 and 5-8 ms blocks in every other room's keystrokes."""
    update = build_initial(doc_type, b"".join(chunks), seed, where)
    return protocol.step2_message(update), len(update), slices.split_update(update), zlib.compress(update, 1)


def open_journal(updates: list[bytes], seqs: list[int], persisted_seq: int) -> tuple[list[bytes], bytes]:
    """A room's journal → (its updates as slices, in order; the compressed Y
    state of the updates up to ``persisted_seq``, what CS3 holds)."""
    parts = [part for update in updates for part in slices.split_update(update)]
    return parts, zlib.compress(state_upto(updates, seqs, persisted_seq), 1)


def state_upto(updates: list[bytes], seqs: list[int], seq: int) -> bytes:
    """The Y state of the journal updates up to ``seq``."""
    doc = Doc()
    for update, update_seq in zip(updates, seqs):
        if update_seq <= seq:
            doc.apply_update(update)
    return doc.get_update()


def serialize_state(doc_type: str, state: bytes, where: str) -> bytes:
    """A Y state → file bytes (raises InvalidDocument for an invalid notebook)."""
    kind = documents.KINDS[doc_type]
    doc = Doc()
    doc.apply_update(state)
    return documents.serialize(kind, kind.wrap(doc), where=where)


def outside_delta(doc_type: str, persisted_state: bytes, data: bytes, seed: str, where: str) -> bytes:
    """File bytes changed outside the room → the Y update from the persisted state."""
    kind = documents.KINDS[doc_type]
    content = documents.parse(kind, data, seed=seed, where=where)
    return documents.outside_edit_update(kind, persisted_state, content)


def _ready() -> bool:
    return True


def _die_with_parent(parent_pid: int) -> None:
    """Worker initializer: never outlive the service (a SIGKILLed service must
    not leave a worker holding its files and pipes). Linux says so with
    PR_SET_PDEATHSIG; elsewhere a watcher thread notices the new parent."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(0)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class DocumentWorker:
    """One worker process for document work; ``async with`` or start/stop.

    Args:
        inline: run the functions on the calling thread instead (for tools
            and tests of one module; the service always uses the process).
    """

    def __init__(self, *, inline: bool = False) -> None:
        self._inline = inline
        self._pool: ProcessPoolExecutor | None = None

    async def __aenter__(self) -> DocumentWorker:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.stop()

    async def start(self) -> None:
        if self._inline:
            return
        # pay the worker's start-up now, not on the first open; a start that
        # never answers (seen once under heavy load, cause unknown) is given
        # up and tried again, so that the service does not wait forever
        for attempt in range(1, START_ATTEMPTS + 1):
            started = time.monotonic()
            self._pool = self._new_pool()
            try:
                await asyncio.wait_for(self.run(_ready), START_TIMEOUT)
            except asyncio.TimeoutError:
                log.error("document worker did not start seconds=%.0f attempt=%d", START_TIMEOUT, attempt)
                self.stop(kill=True)
                continue
            log.info("document worker ready seconds=%.1f", time.monotonic() - started)
            return
        raise RuntimeError(f"the document worker did not start in {START_ATTEMPTS} attempts of {START_TIMEOUT:g} s")

    @staticmethod
    def _new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_die_with_parent,
            initargs=(os.getpid(),),
        )

    def stop(self, kill: bool = False) -> None:
        if self._pool is not None:
            if kill:  # a worker that does not answer would not see a shutdown request
                for process in list(getattr(self._pool, "_processes", {}).values()):
                    process.kill()
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """Run ``function(*args)`` in the worker and return its result."""
        if self._inline:
            return function(*args)
        if self._pool is None:
            raise RuntimeError("the document worker is not running")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, function, *args)
        except BrokenProcessPool:
            log.error("document worker died; starting a new one function=%s", function.__name__)
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            return await loop.run_in_executor(self._pool, function, *args)
