"""Reusable segment buffers for the streams of one process.

A writer or reader that allocated its own segment buffers would fault in fresh pages for every
file: a first write to a 4 KiB page costs about 4 us on the VMs measured (docs/performance.md), as
much as sealing 40 KiB. Buffers go back here when a stream closes and the next stream of the same
segment size takes them, already mapped and in the caches. A buffer never outlives its stream's
use of it: a stream gives it back only once closed, and overwrites what it reads before reading it.
"""
from __future__ import annotations

import mmap

#: Segments per batch: a writer seals up to this many per sink write, a reader opens as many per call.
BATCH = 4
#: Sources a reader decrypts from in place (no copy).
MEMORY_TYPES = (bytes, bytearray, memoryview, mmap.mmap)

#: Idle buffers kept per size (one writer's and one reader's worth for a few streams at once).
KEEP = 8

_free: dict[int, list[bytearray]] = {}


def take(size: int) -> bytearray:
    """A buffer of ``size`` bytes, reused when one is free (its contents are stale)."""
    stack = _free.get(size)
    if stack:
        try:
            return stack.pop()
        except IndexError:  # another thread took the last one
            pass
    return bytearray(size)


def give(buf: bytearray | None) -> None:
    """Back to the pool (dropped when KEEP of its size are idle already)."""
    if buf is None:
        return
    stack = _free.setdefault(len(buf), [])
    if len(stack) < KEEP:
        stack.append(buf)
