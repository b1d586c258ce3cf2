"""Giving freed memory back to the operating system after a room releases its
documents, and keeping the garbage collector's full collections short
(``freeze_startup_objects``).

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
import gc
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

M_MMAP_THRESHOLD = -3  # mallopt parameter (malloc.h)


def set_mmap_threshold(size: int) -> bool:
    """Serve allocations of ``size`` bytes and more with their own mappings
    (``mallopt(M_MMAP_THRESHOLD)``), returned to the system when freed.

    glibc raises this threshold by itself, up to 32 MB, each time such a
    block is freed: after the first multi-MB Y update (a large notebook's
    open, sync or save) every later one lands in the heap, among small
    objects that outlive it, and the heap cannot shrink around them. With a
    fixed threshold the service's idle RSS per 1000-cell room halves
    (docs/performance.md). Returns whether it was set (glibc only).
    """
    if size <= 0:
        return False
    try:
        mallopt = _libc.mallopt
    except (NameError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, size))


def freeze_startup_objects(full_every: int) -> int:
    """Collect once, then put every object the garbage collector tracks out
    of its reach for good (``gc.freeze``); returns how many. ``full_every``:
    young-generation collections between two full ones at least (1 or more:
    the trait CollabService.gc_full_every checks it).

    Called once the service runs: what exists then is nearly all import-time
    objects (modules, classes, functions, grammars), which live as long as
    the process. A full collection walks every tracked object, and these
    were 85 % of them with 100 rooms of 10 clients open (docs/performance.md,
    "Where the tail comes from"), so each full collection stopped the loop
    for 160-200 ms on this project's 2-core machine.

    Frozen objects no longer count towards when a full collection is due
    (CPython runs one once the survivors since the last reach a quarter of
    the objects it tracks), so full collections, each shorter, would come
    several times as often (about 5 times here: 430 000 objects tracked
    before, 80 000 after), which in the one-replica benchmark put them inside
    the measured window (p99 median 18 ms, against 16 unfrozen and 13.5 with
    ``full_every`` at 100). Raising the third threshold spaces them out again.
    """
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, full_every)
    return gc.get_freeze_count()


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
