"""Giving freed memory back to the operating system after a room releases its documents.

A released room's documents are freed (yrs frees them when Python drops
them), but glibc keeps freed heap pages mapped for reuse: without a trim
the process's RSS stays where it was. ``malloc_trim(0)`` returns them; it
takes a few milliseconds on a large heap, so it runs in a thread (glibc
locks its arenas itself), at most one at a time: releases that come while
one runs ask for one more afterwards. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging

log = logging.getLogger("cs3collab.service.memory")

_trim = None
try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _trim = _libc.malloc_trim
    _trim.argtypes = [ctypes.c_size_t]
    _trim.restype = ctypes.c_int
except (OSError, AttributeError):  # not glibc
    _trim = None

_running = False
_again = False


def give_back() -> None:
    """Trim the heap soon, in a thread (called on the event loop)."""
    global _running, _again
    if _trim is None:
        return
    if _running:
        _again = True
        return
    try:
        future = asyncio.get_running_loop().run_in_executor(None, _trim, 0)
    except RuntimeError:  # no loop, or the executor is shut down (the service is stopping)
        return
    _running = True
    future.add_done_callback(_done)


def _done(future: asyncio.Future) -> None:
    global _running, _again
    _running = False
    if not future.cancelled() and future.exception() is not None:
        log.warning("malloc_trim failed error=%r", future.exception())
        return
    if _again:
        _again = False
        give_back()
