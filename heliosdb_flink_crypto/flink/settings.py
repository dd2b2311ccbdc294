"""The Flink settings the shim needs, worked out from what a cluster's configuration already holds.

``heliosdb-flink-crypto flink install`` prints them or writes them into ``conf/config.yaml``
(:mod:`.confyaml`); the Kubernetes example's manifest is checked against them
(tests/test_kubernetes_example.py). :func:`settings` returns them in order, each with the reason
shown next to it:

* ``pemja.`` in both parent-first pattern lists (merged into lists already there);
* the Python executable, the KMS URI, the checkpoint directory (``enc+``), the savepoint
  directory (given, or derived: ``savepoints`` next to the checkpoint directory); a warning for each
  other place the configuration has Flink write state to unencrypted (:mod:`.state_dirs`);
* the lib jar's checkpoint storage (``execution.checkpointing.storage``) when the checkpoints are
  encrypted and the cluster has Flink's default storage: it refuses a savepoint of them to a target
  without ``enc+`` and guards tenants (a note when the cluster names another storage);
* off-heap memory for the encrypted streams' direct buffers: ``256m`` of framework off-heap on
  TaskManagers (Flink's default is 128m) with the TaskManager's total raised by the difference (so task
  heap and managed memory stay as they were), and ``256m`` off-heap on the JobManager;
* with ``flink_metrics``: the lib jar's metered state backend around the backend the cluster had, and
  its JobManager reporter; with ``python_jobs``: PyFlink's ``python.executable`` and
  ``python.client.executable`` (the same environment runs the jobs' Python code).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from .. import config
from . import JOBMANAGER_METRICS_REPORTER, METERED_STATE_BACKEND, TENANT_CHECKPOINT_STORAGE, state_dirs
from .local import PARENT_FIRST

OFF_HEAP = 256 << 20
FLINK_DEFAULT_OFF_HEAP = 128 << 20
REPORTER = "heliosdb"  # metrics.reporter.<name>.factory.class
STORAGE_KEY, OLD_STORAGE_KEY = "execution.checkpointing.storage", "state.checkpoint-storage"


@dataclass(frozen=True)
class Setting:
    key: str
    value: str
    why: str = ""


def savepoint_dir_for(checkpoint_dir: str) -> str:
    """``savepoints`` next to the checkpoint directory: ``enc+s3://b/flink/checkpoints`` ->
    ``enc+s3://b/flink/savepoints``, ``enc+s3://b`` -> ``enc+s3://b/savepoints``."""
    scheme, sep, rest = checkpoint_dir.rstrip("/").rpartition("://")
    authority, _, path = rest.partition("/") if sep else ("", "", rest.lstrip("/"))
    parent = path.rsplit("/", 1)[0] if "/" in path else ""
    return f"{scheme}{sep}{authority}/{parent + '/' if parent else ''}savepoints"


def _mib(n: int) -> str:
    return f"{n >> 20}m" if n % (1 << 20) == 0 else str(n)


def _size(value: str | None) -> int | None:
    try:
        return config.parse_size(value) if value else None
    except ValueError:
        return None


def with_entry(current: str | None, item: str) -> str | None:
    """A Flink list value (``a;b``, ``a,b`` or ``[a, b]``) with ``item`` added; None when it holds it."""
    if not current:
        return item
    if current.startswith("[") and current.endswith("]"):
        inner = [x.strip().strip("'\"") for x in current[1:-1].split(",") if x.strip()]
        return None if item in inner else "[" + ", ".join(inner + [item]) + "]"
    if item in config.parse_list(current):
        return None
    return current.rstrip(";, ") + ";" + item


def settings(existing: Mapping[str, str], python: str, kms_uri: str | None = None,
             checkpoint_dir: str | None = None, savepoint_dir: str | None = None,
             flink_metrics: bool = False, python_jobs: bool = False) -> tuple[list[Setting], list[str]]:
    """The settings to make on top of ``existing`` (flat keys -> values), and warnings."""
    out: list[Setting] = []
    notes: list[str] = []
    for key in ("plugin.classloader.parent-first-patterns.additional", "classloader.parent-first-patterns.additional"):
        merged = with_entry(existing.get(key), PARENT_FIRST)
        out.append(Setting(key, merged or existing[key], "the plugin and PyFlink share the JVM's one pemja (lib/flink-python)"))
    out.append(Setting("heliosdb.crypto.python.executable", python,
                       "the Python environment (on every host) where heliosdb-flink-crypto is installed"))
    if python_jobs:
        for key in ("python.executable", "python.client.executable"):
            out.append(Setting(key, python, "PyFlink jobs run in the same environment"))
    kms = kms_uri or existing.get("heliosdb.crypto.kms.uri")
    if kms:
        out.append(Setting("heliosdb.crypto.kms.uri", kms, "the KMS that wraps the data keys (docs/kms.md)"))
    else:
        notes.append("heliosdb.crypto.kms.uri is not set: pass --kms-uri (nothing can be encrypted without it)")
    cp = checkpoint_dir or existing.get("execution.checkpointing.dir")
    if cp:
        out.append(Setting("execution.checkpointing.dir", cp, "checkpoints through the encrypted scheme"))
    if not cp or not cp.startswith("enc+"):
        notes.append(f"execution.checkpointing.dir is {cp or 'not set'}: pass --checkpoint-dir enc+<scheme>://... "
                     "to encrypt checkpoints")
    sp = savepoint_dir or existing.get("execution.checkpointing.savepoint-dir") or (
        savepoint_dir_for(checkpoint_dir) if checkpoint_dir else None)
    if sp:
        out.append(Setting("execution.checkpointing.savepoint-dir", sp, "savepoints encrypted too" + (
            "" if savepoint_dir or existing.get("execution.checkpointing.savepoint-dir") else
            " (next to the checkpoints; --savepoint-dir to choose)")))
    notes += [p.describe() for p in state_dirs.unencrypted(
        {**existing, "execution.checkpointing.dir": cp or "", "execution.checkpointing.savepoint-dir": sp or ""})]
    out += storage(existing, cp, notes)
    out += _memory(existing, notes)
    if flink_metrics:
        out += _flink_metrics(existing)
    return out, notes


def storage(existing: Mapping[str, str], cp: str | None, notes: list[str]) -> list[Setting]:
    """The lib jar's checkpoint storage (Flink's file-system storage plus its guards) when the
    checkpoints are encrypted and the cluster has the default storage; a note when it has another."""
    if not cp or not cp.startswith("enc+"):
        return []
    key = STORAGE_KEY if existing.get(STORAGE_KEY) else OLD_STORAGE_KEY  # the one Flink reads
    have = existing.get(key)
    if have in (None, "", "filesystem", TENANT_CHECKPOINT_STORAGE):
        return [Setting(STORAGE_KEY, TENANT_CHECKPOINT_STORAGE,
                        "Flink's file-system checkpoint storage, plus: a savepoint of the encrypted checkpoints to "
                        "a target without enc+ is refused, and with tenants a job restores only its own tenant's "
                        "checkpoints (lib jar)")]
    notes.append(f"{key} is {have}: savepoint targets are not checked (a savepoint to a target without enc+ "
                 f"is written unencrypted) and tenants are not guarded; {TENANT_CHECKPOINT_STORAGE} does both")
    return []


def _memory(existing: Mapping[str, str], notes: list[str]) -> list[Setting]:
    why = "encrypted streams use direct buffers (up to ~16 MiB per large stream): off-heap room"
    out = []
    tm_key = "taskmanager.memory.framework.off-heap.size"
    have = _size(existing.get(tm_key)) or FLINK_DEFAULT_OFF_HEAP
    if have < OFF_HEAP:
        out.append(Setting(tm_key, _mib(OFF_HEAP), why))
        for total in ("taskmanager.memory.process.size", "taskmanager.memory.flink.size"):
            size = _size(existing.get(total))
            if size:
                out.append(Setting(total, _mib(size + OFF_HEAP - have),
                                   f"raised by {_mib(OFF_HEAP - have)}, the off-heap added: Flink takes framework "
                                   "off-heap out of this total"))
                break
            if existing.get(total):
                notes.append(f"{total}: {existing[total]!r} is not a size this tool reads: raise it by "
                             f"{_mib(OFF_HEAP - have)} yourself")
                break
        else:
            notes.append(f"the TaskManager's total memory is not set here: give it {_mib(OFF_HEAP - have)} more "
                         "(e.g. the container's memory on Kubernetes)")
    jm_key = "jobmanager.memory.off-heap.size"
    if (_size(existing.get(jm_key)) or FLINK_DEFAULT_OFF_HEAP) < OFF_HEAP:
        out.append(Setting(jm_key, _mib(OFF_HEAP), why + " (taken from the JobManager's heap)"))
    return out


def _flink_metrics(existing: Mapping[str, str]) -> list[Setting]:
    out = []
    backend = existing.get("state.backend.type") or existing.get("state.backend")
    if backend != METERED_STATE_BACKEND:
        out.append(Setting("heliosdb.crypto.state-backend", backend or "hashmap",
                           "the real state backend, wrapped by the metered one"))
        out.append(Setting("state.backend.type", METERED_STATE_BACKEND,
                           "the crypto metrics on TaskManagers and keyed operators (lib jar)"))
    out.append(Setting(f"metrics.reporter.{REPORTER}.factory.class", JOBMANAGER_METRICS_REPORTER,
                       "the crypto metrics on the JobManager, which writes _metadata (lib jar)"))
    reporters = existing.get("metrics.reporters")
    if reporters:
        merged = with_entry(reporters, REPORTER)
        if merged:
            out.append(Setting("metrics.reporters", merged.replace(";", ","), "only listed reporters run"))
    return out


__all__ = ["Setting", "savepoint_dir_for", "settings", "storage", "with_entry"]
