"""Where Flink writes state besides the checkpoint directory, and which of those places a
configuration leaves unencrypted while its checkpoints are encrypted.

Checkpoints through ``enc+`` protect nothing if the same state also lands in plaintext next to them:
in savepoints, in ``high-availability.storageDir`` (completed checkpoints' handles, with state small
enough to be inline), in the changelog backend's files, or in ForSt's live SST files on a remote
primary directory. The ``enc+`` file systems refuse to start on such a configuration (the same rule in
java-shim's ``StateDirs``, called by ``EncryptedFileSystemFactory.configure``) unless
``heliosdb.crypto.allow-unencrypted-state-dirs`` is on; ``flink install`` warns about it
(:mod:`.settings`). Local working directories (RocksDB's, ForSt's on local disk, its file cache,
local recovery) are outside this rule: docs/threat-model.md.
"""
from __future__ import annotations

from typing import Mapping, NamedTuple

ALLOW = "heliosdb.crypto.allow-unencrypted-state-dirs"
CHECKPOINT_DIR = ("execution.checkpointing.dir", "state.checkpoints.dir")
SAVEPOINT_DIR = ("execution.checkpointing.savepoint-dir", "state.savepoints.dir")
HA_MODE = ("high-availability.type", "high-availability")
HA_DIR = "high-availability.storageDir"
CHANGELOG = "state.changelog.enabled"
CHANGELOG_DIR = "state.changelog.dstl.dfs.base-path"
FORST_PRIMARY = "state.backend.forst.primary-dir"
FORST_SHORTCUTS = ("checkpoint-dir", "local-dir")  # ForSt's own names for its default choices


class Place(NamedTuple):
    key: str
    value: str
    what: str

    def describe(self) -> str:
        return (f"{self.key} is {self.value}: Flink writes {self.what} there unencrypted while checkpoints are "
                f"encrypted; point it at {encrypted(self.value)} (the enc+ file systems refuse to start so, "
                f"unless {ALLOW}: true)")


def first(conf: Mapping[str, object], keys: tuple[str, ...]) -> tuple[str, str]:
    """The first of ``keys`` set (Flink's key, then its deprecated one) and its value, stripped."""
    for k in keys:
        v = str(conf.get(k) or "").strip()
        if v:
            return k, v
    return keys[0], ""


def encrypted(value: str) -> str:
    """``value`` as an ``enc+`` URI (a bare path is a local one)."""
    return "enc+" + (value if "://" in value else "file://" + value)


def _remote(value: str) -> bool:
    return "://" in value and value.split("://", 1)[0].lower() != "file"


def unencrypted(conf: Mapping[str, object]) -> list[Place]:
    """The places ``conf`` (Flink's flat keys) has Flink write state to without ``enc+`` when its
    checkpoint directory is ``enc+``; none otherwise (nothing to be consistent with)."""
    if not first(conf, CHECKPOINT_DIR)[1].startswith("enc+"):
        return []
    value = lambda k: first(conf, (k,))[1]  # noqa: E731
    forst = value(FORST_PRIMARY)
    checks = [
        (*first(conf, SAVEPOINT_DIR), "savepoints", True),
        (HA_DIR, value(HA_DIR), "completed checkpoints' handles (with state small enough to be inline)",
         first(conf, HA_MODE)[1].lower() not in ("", "none")),
        (CHANGELOG_DIR, value(CHANGELOG_DIR), "the changelog backend's state changes", value(CHANGELOG).lower() == "true"),
        (FORST_PRIMARY, forst, "ForSt's live SST files", forst not in FORST_SHORTCUTS and _remote(forst)),
    ]
    return [Place(k, v, what) for k, v, what, applies in checks if v and applies and not v.startswith("enc+")]
