"""The documentation a newcomer reads has no dead links: every relative link in README.md, docs/,
flink-conf-examples/ and CHANGELOG.md names a file of this repository, and every #anchor a heading
of that file (GitHub's anchor rule)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted([ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").glob("*.md"),
               *(ROOT / "flink-conf-examples").rglob("*.md")])
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(md: Path) -> set[str]:
    """GitHub's anchors of ``md``'s headings: lower case, punctuation dropped, spaces to hyphens."""
    out, fence = set(), False
    for line in md.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fence = not fence
        m = None if fence else re.match(r"#{1,6}\s+(.*)", line)
        if m:
            out.add(re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-"))
    return out


def dead_links(md: Path) -> list[str]:
    dead = []
    for target in LINK.findall(md.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):  # http(s)://, mailto: ...
            continue
        path, _, anchor = target.partition("#")
        file = (md.parent / path).resolve() if path else md
        if not file.exists():
            dead.append(f"{target} (no such file)")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            dead.append(f"{target} (no heading #{anchor} in {file.name})")
    return dead


@pytest.mark.parametrize("md", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(md):
    assert dead_links(md) == []


def test_the_checker_finds_a_dead_file_and_a_dead_anchor(tmp_path):
    (tmp_path / "a.md").write_text("# Title here\n\n## Second, part\n")
    doc = tmp_path / "b.md"
    doc.write_text("[ok](a.md#second-part) [ok](a.md#title-here) [x](gone.md) [y](a.md#nope) [w](https://x/y)\n")
    assert dead_links(doc) == ["gone.md (no such file)", "a.md#nope (no heading #nope in a.md)"]
