"""What ``verify --checkpoint`` found (lifecycle/checkpoints.py): the checkpoints checked and every
problem, each naming the file or folder at fault, as the CLI prints them and as JSON."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..errors import (AuthenticationError, FormatError, KeyAccessError, MetadataFormatError,
                      MisplacedFileError)


@dataclass(frozen=True)
class Problem:
    """One thing wrong, naming the file (or folder) at fault. ``kind``: missing, unauthenticated,
    misplaced, key-unavailable, unreadable, size, checkpoint-id, metadata, unchecked or orphan."""
    path: str
    kind: str
    detail: str


@dataclass
class Checked:
    """One checkpoint or savepoint that was checked."""
    folder: str
    kind: str  # "checkpoint" or "savepoint"
    checkpoint_id: int | None = None
    metadata_version: int | None = None
    files: int = 0  # distinct files referenced
    inline: int = 0  # state handles stored inside _metadata
    external: int = 0  # files referenced outside the folder checked (checked where they are)


@dataclass
class CheckpointVerification:
    checked: list[Checked] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files_verified: int = 0
    bytes_verified: int = 0

    @property
    def ok(self) -> bool:
        return bool(self.checked) and not self.problems

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.problems:
            out[p.kind] = out.get(p.kind, 0) + 1
        return out

    def to_dict(self) -> dict:
        return {"ok": self.ok, "checkpoints": [asdict(c) for c in self.checked],
                "files_verified": self.files_verified, "bytes_verified": self.bytes_verified,
                "problem_counts": self.counts(), "problems": [asdict(p) for p in self.problems]}


def problem_kind(e: Exception) -> tuple[str, str]:
    """(problem kind, detail) for a file that could not be opened or did not authenticate."""
    if isinstance(e, MisplacedFileError):  # sealed for another place (rule F-24)
        return "misplaced", str(e)
    if isinstance(e, AuthenticationError):
        return "unauthenticated", "authentication failed (tampered, truncated, swapped or wrong key)"
    if isinstance(e, KeyAccessError):
        return "key-unavailable", str(e)
    if isinstance(e, MetadataFormatError):
        return "metadata", str(e)
    if isinstance(e, FormatError):
        return "unauthenticated", str(e)
    if isinstance(e, FileNotFoundError):
        return "missing", "not there"
    return "unreadable", str(e)
