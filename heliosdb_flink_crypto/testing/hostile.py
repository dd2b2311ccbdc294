"""The corpus entries that are not bytes: FIFOs, sockets, devices, links, unreadable files and
folders, a file that shrinks while it is read, keyrings of the wrong shape; and what a test needs to
make permissions count when it runs as root (:func:`drop_dac_override`).
"""
from __future__ import annotations

import contextlib
import ctypes
import json
import os
import socket
import stat
import tempfile

CLASSES = ("escape-in-header", "fifo", "socket", "device", "unreadable-file", "unreadable-folder",
           "symlink-loop", "dangling-link", "symlink", "leftover", "shrinks")

_CAP_DAC = (1 << 1) | (1 << 2)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH


def add_special(c, plain: bytes) -> None:
    """Add the special entries to corpus ``c`` (a :class:`.corpus.Corpus`) under ``tree/special``."""
    d = c.path("special")
    os.makedirs(d, exist_ok=True)
    os.mkfifo(os.path.join(d, "fifo"))
    c.add("special/fifo", "fifo", java=False)
    make_socket(os.path.join(d, "socket"))
    c.add("special/socket", "socket", java=False)
    make_device(os.path.join(d, "device"))
    c.add("special/device", "device", java=False)
    c.seal("special/unreadable", plain)
    os.chmod(os.path.join(d, "unreadable"), 0)
    c.add("special/unreadable", "unreadable-file", java=False)
    c.seal("special/unreadable-folder/state", plain)
    os.chmod(os.path.join(d, "unreadable-folder"), 0)
    c.add("special/unreadable-folder", "unreadable-folder", java=False)
    os.symlink("loop-b", os.path.join(d, "loop-a"))
    os.symlink("loop-a", os.path.join(d, "loop-b"))
    c.add("special/loop-a", "symlink-loop", java=False)
    c.add("special/loop-b", "symlink-loop", java=False)
    os.symlink("nowhere", os.path.join(d, "dangling"))
    c.add("special/dangling", "dangling-link", java=False)
    os.symlink("../valid/gcm-40", os.path.join(d, "link-to-valid"))
    c.add("special/link-to-valid", "symlink", java=False)
    os.makedirs(os.path.join(d, "empty-folder"))
    c.seal("special/.state.hfc-tmp-4242-0badcafe", plain)
    c.add("special/.state.hfc-tmp-4242-0badcafe", "leftover", "skipped", java=False)
    c.seal("special/shrinks", plain, fresh=True)  # its own data key: the hook knows it by its id
    c.add("special/shrinks", "shrinks", java=False)


def make_device(path: str) -> bool:
    """A character device node at ``path`` (the null device): True. Where this user may not make device
    nodes, a symbolic link to /dev/null stands in (followed when named, reported as a link in a tree): False."""
    try:
        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        return True
    except PermissionError:  # pragma: no cover - only without CAP_MKNOD
        os.symlink("/dev/null", path)
        return False


def make_socket(path: str) -> None:
    """A Unix socket file at ``path`` (bound in a short folder and moved: socket paths are short)."""
    with tempfile.TemporaryDirectory(prefix="s", dir="/tmp") as short:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.bind(os.path.join(short, "s"))
            os.rename(os.path.join(short, "s"), path)
        finally:
            s.close()


def bad_keyrings(folder: str) -> list[dict]:
    """Keyring files that are valid JSON of the wrong shape: [{"path": ..., "shape": ...}]."""
    good = {"format": 1, "current": "1", "min_decrypt_version": 1,
            "versions": {"1": {"state": "enabled", "created": 0, "key": "A" * 43 + "="}}}
    shapes = {
        "list": [], "string": "keyring", "number": 7, "null": None, "no-versions": {"format": 1, "current": "1"},
        "versions-list": {**good, "versions": [1, 2]},
        "version-not-object": {**good, "versions": {"1": "enabled"}},
        "key-not-base64": {**good, "versions": {"1": {"state": "enabled", "created": 0, "key": "%%%"}}},
        "key-too-short": {**good, "versions": {"1": {"state": "enabled", "created": 0, "key": "AAAA"}}},
        "key-a-number": {**good, "versions": {"1": {"state": "enabled", "created": 0, "key": 5}}},
        "state-a-list": {**good, "versions": {"1": {"state": [], "key": "A" * 43 + "="}}},
        "created-a-string": {**good, "versions": {"1": {**good["versions"]["1"], "created": "yesterday"}}},
        "current-a-list": {**good, "current": ["1"]},
        "current-unknown": {**good, "current": "9"},
        "min-version-a-string": {**good, "min_decrypt_version": "2"},
        "arabic-digit-version": {**good, "current": "\u0661", "versions": {"\u0661": good["versions"]["1"]}},
    }
    os.makedirs(folder, exist_ok=True)
    out = []
    for name, shape in shapes.items():
        path = os.path.join(folder, f"{name}.json")
        with open(path, "w") as f:
            json.dump(shape, f)
        out.append({"path": path, "shape": name})
    return out


# -- permissions when running as root ----------------------------------------------------------
class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _caps(change=None) -> int:
    """The calling thread's effective capabilities (low word); ``change(effective)`` sets new ones."""
    libc = ctypes.CDLL(None, use_errno=True)
    h, d = _Header(0x20080522, 0), (_Data * 2)()
    if libc.capget(ctypes.byref(h), d) != 0:  # pragma: no cover - no capabilities API
        raise OSError(ctypes.get_errno(), "capget")
    if change is not None:
        d[0].effective = change(d[0].effective)
        if libc.capset(ctypes.byref(h), d) != 0:  # pragma: no cover - not allowed to change them
            raise OSError(ctypes.get_errno(), "capset")
    return d[0].effective


def drop_dac_override() -> bool:
    """Make file permissions apply to this thread even as root (drop CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH from the effective set; they stay permitted). True if permissions apply now."""
    if os.geteuid() != 0:  # pragma: no cover - the tests run as root here, not everywhere
        return True
    try:
        _caps(lambda eff: eff & ~_CAP_DAC)
    except (OSError, AttributeError):  # pragma: no cover - a kernel or sandbox without capset
        return False
    return True


@contextlib.contextmanager
def permissions_enforced():
    """``with permissions_enforced() as ok:`` permissions apply inside when ``ok``; restored after."""
    before = _caps() if os.geteuid() == 0 else None
    ok = drop_dac_override()
    try:
        yield ok
    finally:
        if before is not None and ok:
            _caps(lambda eff: before)


def shrink_on_unwrap(victim: str, keep: int) -> None:
    """Test hook: when a local keyring unwraps ``victim``'s data key (a reader has opened ``victim`` and
    read its header, and not yet its body), cut ``victim`` to ``keep`` bytes: a file that shrinks
    while it is read."""
    from ..format import parse
    from ..kms.local import LocalKeyring
    with open(victim, "rb") as f:
        dek_id = parse(f.read(65536)).dek_id.hex()
    unwrap = LocalKeyring.unwrap

    def shrinking(self, wrapped, key_version, context):
        if context.get("heliosdb:dek-id") == dek_id:
            os.truncate(victim, keep)
        return unwrap(self, wrapped, key_version, context)
    LocalKeyring.unwrap = shrinking
