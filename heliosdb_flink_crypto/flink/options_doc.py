"""Generate docs/configuration.md from :data:`heliosdb_flink_crypto.config.OPTIONS`.

``python -m heliosdb_flink_crypto.flink.options_doc`` rewrites ``docs/configuration.md``; ``--check``
exits 1 if the file is stale. tests/test_options_mirror.py checks the committed page is current, so
the page cannot drift from the options the package accepts.
"""
from __future__ import annotations

import argparse
import os
import sys

from .. import config
from .options_java import _default_text

DOC_FILE = os.path.join("docs", "configuration.md")

HEADER = """\
# Configuration: every `heliosdb.crypto.*` option

<!-- generated from heliosdb_flink_crypto/config.py by `python -m heliosdb_flink_crypto.flink.options_doc`;
     tests/test_options_mirror.py fails when this page is stale: edit config.py, then regenerate -->

Set them in Flink's `conf/config.yaml` (flat dotted keys or nested YAML), in the configuration given to
`heliosdb_flink_crypto.flink.local.enable(...)` for `python job.py`, or for the CLI in `--config FILE`
or `-D KEY=VALUE`. The FileSystem sees the cluster's configuration only, never a job's. Every key is
validated when Python starts in a Flink process: an unknown `heliosdb.crypto.*` key or a bad value
fails the first file operation with a message naming the key (`ConfigError: heliosdb.crypto.segment-size:
'abc' is not a size such as 256kb or 1mb`). `heliosdb-flink-crypto flink install --write-config` writes
the ones a cluster needs ([flink.md](flink.md#standalone-cluster-or-any-flink-distribution)).

Sizes: `256kb`, `1mb`, `4 mib`, bytes. Durations: `30 s`, `5 min`, `1 h`, `30 d`, seconds. Lists: `;` or
`,` between entries.

| option | type | default | meaning |
|---|---|---|---|
"""

FOOTER = """
Besides these keys:

* `heliosdb.crypto.kms.<provider>.<setting>`: settings of one KMS provider (region, endpoint,
  credentials, CA file, ...), passed to it as they are: [kms.md](kms.md).
* `heliosdb.crypto.tenants.<id>.path-prefix`, `.kms.uri`, `.kms.decrypt-uris`: a tenant's files and
  keys: [operations.md](operations.md).
* JVM system properties of the Java shim (`env.java.opts.all: -Dheliosdb.crypto.pipeline-depth=4 ...`):
  `heliosdb.crypto.pipeline-depth`, `heliosdb.crypto.write-batch-bytes`, `heliosdb.crypto.seal-bytes`, `heliosdb.crypto.batch-bytes`,
  `heliosdb.crypto.local-read-bytes`, `heliosdb.crypto.caller-python`, `heliosdb.crypto.python-workers`, `heliosdb.crypto.worker-streams`, `heliosdb.crypto.spin-nanos`, `heliosdb.crypto.no-inner-channel`, `heliosdb.crypto.buffer-idle-seconds`:
  [flink.md](flink.md#throughput-and-knobs).
* Flink options the shim needs (`flink install` writes them): `plugin.classloader.parent-first-patterns.additional`
  and `classloader.parent-first-patterns.additional` with `pemja.`, off-heap memory, `enc+` paths
  in `execution.checkpointing.dir`, `execution.checkpointing.savepoint-dir` and
  `high-availability.storageDir`: [flink.md](flink.md).
* When `execution.checkpointing.dir` is `enc+`, every other place of the cluster's configuration where
  Flink writes state must be too, or the `enc+` file systems refuse to start (the process, client or
  MiniCluster fails with a message naming each key and its `enc+` form): the savepoint directory,
  `high-availability.storageDir` (HA on), `state.changelog.dstl.dfs.base-path` (changelog on) and a
  remote `state.backend.forst.primary-dir` (`checkpoint-dir`, `local-dir` and local paths are not
  remote). `heliosdb.crypto.allow-unencrypted-state-dirs: true` accepts such a configuration (each
  process logs the places as a warning, the audit log records `state_dirs_unguarded`); `flink install`
  warns about it beforehand. With the lib jar's checkpoint storage
  (`execution.checkpointing.storage: io.heliosdb.flink.crypto.lib.TenantCheckpointStorageFactory`, which
  `flink install` sets when the checkpoint directory is `enc+` and the cluster names no other storage), a
  savepoint of encrypted checkpoints to a target that is not `enc+` (a job's own savepoint directory,
  a `savepoint` command's target) is refused too.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _default(o: config.Option) -> str:
    if o.required:
        return "required"
    if o.type == "size":
        n = int(o.default)
        for unit, shift in (("gb", 30), ("mb", 20), ("kb", 10)):
            if n >= 1 << shift and n % (1 << shift) == 0:
                return f"`{n >> shift}{unit}`"
    if o.type == "bool":
        return f"`{str(o.default).lower()}`"
    text = _default_text(o)
    return "(empty)" if text in (None, "") else f"`{text}`"


def render() -> str:
    rows = []
    for o in config.OPTIONS:
        default = _default(o)
        rows.append(f"| `{o.key}` | {o.type} | {default} | {_cell(o.description)} |")
    return HEADER + "\n".join(rows) + "\n" + FOOTER


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 1 if docs/configuration.md is stale")
    a = p.parse_args(argv)
    text = render()
    if a.check:
        with open(DOC_FILE, encoding="utf-8") as f:
            stale = f.read() != text
        if stale:
            print(f"{DOC_FILE} is stale: python -m heliosdb_flink_crypto.flink.options_doc", file=sys.stderr)
        return 1 if stale else 0
    with open(DOC_FILE, "w", encoding="utf-8") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
