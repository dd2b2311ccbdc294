"""The binding name of a file (rule F-24): which place a version 2 header is sealed for.

A pure function of the path or URI a file is written to or read from, computed the same way by the
Java shim (BindingName.java; tests/vectors/binding-names.json holds the table both check):

* scheme and authority are dropped (``enc+s3://bucket/``, ``file://``, ``file:``), the rest is split
  into components (empty and ``.`` components dropped, ``..`` removes the one before it);
* the name is the last component;
* if that is ``_metadata``, its parent folder is prefixed (``savepoint-ab12-xyz/_metadata``), and if
  that parent is ``chk-<n>``, the grandparent too (``<job-id>/chk-7/_metadata``).

So Flink's state files (written under their final, unique names) and ``_metadata`` files are bound
to their place, while savepoint folders stay relocatable and entropy injection (which rewrites
folder parts only) keeps every binding.
"""
from __future__ import annotations

import re

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_CHECKPOINT = re.compile(r"chk-[0-9]+")  # ASCII digits only, as in Java
METADATA = "_metadata"


def is_uri(path: str) -> bool:
    """True if ``path`` starts with a scheme (``s3:``, ``enc+file:``): then it is never relative."""
    return bool(_SCHEME.match(str(path)))


def components(path: str) -> list[str]:
    """The path components of ``path`` (a plain path or a URI), scheme and authority dropped."""
    s = str(path)
    m = _SCHEME.match(s)
    if m:
        s = s[m.end():]
        if s.startswith("//"):
            s = s[2:].partition("/")[2]
    parts: list[str] = []
    for c in s.split("/"):
        if c in ("", "."):
            continue
        if c == "..":
            if parts:
                parts.pop()
            continue
        parts.append(c)
    return parts


def binding_name(path: str) -> str:
    """The name a file at ``path`` is bound to (F-24); "" for a path with no components."""
    parts = components(path)
    if not parts:
        return ""
    name = parts[-1]
    if name == METADATA and len(parts) >= 2:
        name = parts[-2] + "/" + name
        if _CHECKPOINT.fullmatch(parts[-2]) and len(parts) >= 3:
            name = parts[-3] + "/" + name
    return name
