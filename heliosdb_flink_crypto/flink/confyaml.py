"""Read and edit Flink's ``conf/config.yaml`` line by line, keeping every other line and comment.

Flink 2.x reads standard YAML where a dotted key may be written flat (``execution.checkpointing.dir: x``),
nested (``execution:`` / ``  checkpointing:`` / ``    dir: x``) or mixed; Flink 1.20's legacy
``flink-conf.yaml`` is flat ``key: value`` lines. :class:`ConfigFile` finds a key in any of these
forms, replaces its value where it stands (an inline comment after it stays), and appends keys that
are not there as flat lines at the end. Only block mappings are read as nesting; list items, block
scalars (``|``, ``>``) and flow collections are values, never edited inside. No YAML library is
needed (the base install has none).
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

_KEY = re.compile(r"""^(?P<indent>[ ]*)(?P<key>"[^"]*"|'[^']*'|[^\s#'"\-][^:#]*?|-[^\s:#][^:#]*?)[ ]*:(?:[ ]+(?P<rest>.*))?$""")
_PLAIN_UNSAFE = re.compile(r"""^[\s\-?:,\[\]{}#&*!|>'"%@`]|:\s|\s#|\s$|^$""")


@dataclass
class Entry:
    line: int    # index into ConfigFile.lines
    indent: str
    key: str     # as written on its line (the last part of a nested key)
    value: str   # the value as written (quotes removed)
    comment: str  # an inline comment after the value, with its "#", or ""


def _split_value(rest: str) -> tuple[str, str]:
    """``value  # comment`` -> (value without quotes, comment)."""
    rest = rest.rstrip()
    if rest[:1] in ("'", '"'):
        q = rest[0]
        end = rest.find(q, 1)
        while q == "'" and end != -1 and rest[end + 1:end + 2] == "'":  # '' inside single quotes
            end = rest.find(q, end + 2)
        if end != -1:
            raw, after = rest[:end + 1], rest[end + 1:].strip()
            value = json.loads(raw) if q == '"' else raw[1:-1].replace("''", "'")
            return value, after if after.startswith("#") else ""
    m = re.search(r"\s#", rest)
    if m:
        return rest[:m.start()].rstrip(), rest[m.start():].strip()
    return rest, ""


def scalar(value: str) -> str:
    """``value`` as a YAML scalar: plain when that reads back as the same string, else double-quoted."""
    if _PLAIN_UNSAFE.search(value) or value.lower() in ("true", "false", "yes", "no", "on", "off", "null", "~"):
        return json.dumps(value)
    return value


class ConfigFile:
    def __init__(self, path: str):
        self.path = path
        self.text = ""
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                self.text = f.read()
        self.lines = self.text.splitlines()
        self.entries: dict[str, list[Entry]] = {}
        self._parse()

    def _parse(self) -> None:
        stack: list[tuple[int, str]] = []  # (indent, dotted path) of the open nested mappings
        block_indent = None  # inside a block scalar or a list: lines indented deeper are values
        for i, line in enumerate(self.lines):
            stripped = line.strip()
            if not stripped or stripped.startswith("#") or stripped == "---":
                continue
            indent = len(line) - len(line.lstrip(" "))
            if block_indent is not None and indent > block_indent:
                continue
            block_indent = None
            if stripped == "-" or stripped.startswith("- "):  # a list item: it and its deeper lines are a value
                block_indent = indent
                continue
            m = _KEY.match(line)
            if not m:
                continue
            while stack and stack[-1][0] >= indent:
                stack.pop()
            key = m.group("key")
            name = key[1:-1] if key[:1] in ("'", '"') else key
            full = ".".join([p for _, p in stack] + [name])
            rest = m.group("rest") or ""
            value, comment = _split_value(rest) if rest and not rest.startswith("#") else ("", rest.strip())
            if not value:  # a nested mapping (or a list, or nothing) follows
                stack.append((indent, name))
            elif value[:1] in ("|", ">"):
                block_indent = indent
            self.entries.setdefault(full, []).append(Entry(i, m.group("indent"), key, value, comment))

    def get(self, key: str) -> str | None:
        """The value set last for ``key`` (flat or nested), or None."""
        found = [e for e in self.entries.get(key, []) if e.value]
        return found[-1].value if found else None

    def values(self) -> dict[str, str]:
        return {k: v for k in self.entries if (v := self.get(k)) is not None}

    def set(self, key: str, value: str) -> str | None:
        """Sets ``key`` to ``value`` where it stands (every occurrence), or appends it as a flat line.
        Returns the previous value (None when it was not set). ValueError when ``key`` holds a list or
        a mapping (lines below it), which this tool does not edit."""
        old = self.get(key)
        found = [e for e in self.entries.get(key, []) if e.value]
        if not found and key in self.entries:
            raise ValueError(f"{key} is written as a YAML list or mapping in {self.path}: set it to "
                             f"{value} by hand")
        if found:
            for e in found:
                tail = f"  {e.comment}" if e.comment else ""
                self.lines[e.line] = f"{e.indent}{e.key}: {scalar(value)}{tail}"
                e.value = value
        else:
            self.lines.append(f"{key}: {scalar(value)}")
            self.entries.setdefault(key, []).append(Entry(len(self.lines) - 1, "", key, value, ""))
        return old

    def add_comment(self, text: str) -> None:
        self.lines += ["", f"# {text}"]

    def write(self) -> None:
        """Replaces the file atomically (same folder, same permissions)."""
        tmp = f"{self.path}.heliosdb-tmp"
        mode = os.stat(self.path).st_mode & 0o7777 if os.path.exists(self.path) else 0o644
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("\n".join(self.lines) + "\n")
        os.chmod(tmp, mode)
        os.replace(tmp, self.path)


__all__ = ["ConfigFile", "Entry", "scalar"]
