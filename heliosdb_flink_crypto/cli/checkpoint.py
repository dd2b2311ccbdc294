"""``verify --checkpoint``: checkpoint, savepoint and job folders checked as a whole.

The checking is :func:`heliosdb_flink_crypto.lifecycle.checkpoints.verify_checkpoints`; this module
only renders its result: one line per problem naming the file, a summary, exit 1 on any problem
(or when nothing was checked), or the whole result as JSON with ``--json``.
"""
from __future__ import annotations

import json

from ..crypto import CheckpointCrypto
from ..lifecycle.checkpoints import CheckpointVerification, verify_checkpoints
from ..text import shown
from .term import say


def run(crypto: CheckpointCrypto, paths, as_json: bool) -> int:
    result = verify_checkpoints(crypto, paths)
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        for line in render(result).split("\n"):
            say(line)
    return 0 if result.ok else 1


def render(result: CheckpointVerification) -> str:
    lines = [f"{p.kind.upper()} {shown(p.path)}: {shown(p.detail)}" for p in result.problems]
    kinds = [c.kind for c in result.checked]
    what = " and ".join(_count(n, k) for k in ("checkpoint", "savepoint") if (n := kinds.count(k)))
    counts = ", ".join(f"{n} {k}" for k, n in sorted(result.counts().items()))
    lines.append(f"checked {what or 'no checkpoint'}: {_count(result.files_verified, 'file')} "
                 f"({result.bytes_verified} bytes) authenticated; {_count(len(result.problems), 'problem')}"
                 + (f" ({counts})" if counts else ""))
    return "\n".join(lines)


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"
