"""The VM's free page reporting: a source of noise in every write figure, and how to hold it off.

A VM guest with free page reporting (virtio-balloon, Linux ``page_reporting``) hands blocks of free
memory back to its host a few seconds after they were freed (here 2 MiB blocks, once more than
``max_waiting_mib`` waits). The next allocation of those pages faults them back in on the host, and
the guest thread that touches them first pays for it as CPU time. A write into the page cache or
tmpfs allocates fresh pages, so a write that follows a deleted checkpoint (or a deleted benchmark
round) pays that too: on this VM 2 GiB written to tmpfs in 1 MiB calls cost 1.09-1.27 CPU s/GiB after
5-10 s in which the host took 0.5-0.7 GiB back, against 0.38-0.41 s/GiB without a pause, and
0.38-0.39 after pauses with reporting held off (docs/performance.md). Which side of a comparison meets
such a phase is chance; it is not encryption.

:func:`held` raises ``page_reporting_order`` beyond the largest block the page allocator makes (so no
block is reported) for the duration of a benchmark and restores it after, when the parameter exists
and may be written (root); :func:`reported_mib` tells how much memory the host took back meanwhile.
On a machine without free page reporting (bare metal, most clouds' VMs) both are no-ops.
"""
from __future__ import annotations

import contextlib
import os
import signal

PARAMS = "/sys/module/page_reporting/parameters"
ORDER = os.path.join(PARAMS, "page_reporting_order")
REPORTED = os.path.join(PARAMS, "reported_kib")
HOLD_ORDER = 11  # above MAX_PAGE_ORDER (10): no free block is ever that large


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def reported_mib() -> float | None:
    """MiB of free memory handed back to the host since boot (None without free page reporting)."""
    kib = _read(REPORTED)
    return int(kib) / 1024 if kib and kib.isdigit() else None


def describe() -> str:
    """One line for a benchmark's header: whether free page reporting is on, and its order."""
    order = _read(ORDER)
    if order is None:
        return "free page reporting: none (no host takes freed memory back)"
    state = "held off" if order.isdigit() and int(order) >= HOLD_ORDER else "ON"
    return (f"free page reporting: {state} (page_reporting_order {order}; {reported_mib():.0f} MiB handed back "
            f"since boot){'' if state == 'held off' else ': writes after a pause pay the host faulting pages back in; --hold-page-reporting holds it off'}")


@contextlib.contextmanager
def held(enabled: bool = True, say=print):
    """Free page reporting held off inside the block (when ``enabled`` and possible); the old order
    is restored on the way out, whatever happens inside. Says first how it stands (:func:`describe`)."""
    say(describe())
    old = _read(ORDER)
    if not enabled or old is None:
        yield False
        return
    try:
        with open(ORDER, "w") as f:
            f.write(str(HOLD_ORDER))
    except OSError as e:
        say(f"free page reporting: cannot hold it off ({ORDER}: {e.strerror}); figures include its noise")
        yield False
        return
    say(f"free page reporting: held off for this run (page_reporting_order {old} -> {HOLD_ORDER}, restored after)")

    def stop(signum, frame):  # SIGTERM (a timeout) still restores the order
        raise SystemExit(128 + signum)
    term = signal.signal(signal.SIGTERM, stop)
    try:
        yield True
    finally:
        signal.signal(signal.SIGTERM, term)
        with open(ORDER, "w") as f:
            f.write(old)
