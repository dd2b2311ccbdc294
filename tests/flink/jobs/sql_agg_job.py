"""A PyFlink SQL job whose keyed aggregation runs on async state (State V2) in ForSt, for the end-to-end
tests: ``SELECT id % KEYS, COUNT(*), SUM(id) FROM datagen GROUP BY id % KEYS`` over a bounded sequence
``1..ROWS``, printed to stdout (``agg> +U[k, count, sum]``), checkpoints every second to
``--checkpoint-dir`` (retained on cancel), in PyFlink's local MiniCluster with the encrypted schemes
registered (``heliosdb_flink_crypto.flink.local.enable``). Run by ``harness.run_job`` (its arguments):

* ``--mode cancel``: cancel once checkpoint ``--stop-after`` (or a later one) is complete; the result
  file names it.
* ``--mode run``: run to the end (restoring from ``--restore``, a checkpoint, if given); the result file
  says whether the job finished, or its failure.

``--conf KEY=VALUE``: ``heliosdb.crypto.*`` and ``s3.*`` go to the FileSystems (with ``s3.endpoint``,
Flink's S3 plugin too: ``s3_plugin.py``), the others to the job. Restarts are off: a failure ends the
job (and the run) at once.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from pyflink.common import Configuration
from pyflink.table import EnvironmentSettings, TableEnvironment

from heliosdb_flink_crypto.flink import local as crypto_local

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import s3_plugin  # noqa: E402
from counter_job import completed_checkpoints  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--checkpoint-dir", required=True)
    p.add_argument("--mode", choices=["run", "cancel"], default="run")
    p.add_argument("--stop-after", type=int, default=3, help="--mode cancel: the checkpoint to cancel after")
    p.add_argument("--restore", default="")
    p.add_argument("--result", required=True)
    p.add_argument("--out-dir", help="not used: the rows go to stdout")
    p.add_argument("--timeout", type=float, default=150)
    p.add_argument("--conf", action="append", default=[], help="KEY=VALUE")
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--keys", type=int, default=100)
    p.add_argument("--rate", type=int, default=20_000, help="rows per second")
    p.add_argument("--snapshot", help="SRC=DEST, local folders: --mode cancel copies the files under SRC (as "
                   "they are on disk) to DEST before it cancels; ForSt removes its primary directory's files "
                   "when the job ends")
    a = p.parse_args()
    given = dict(kv.partition("=")[::2] for kv in a.conf)
    job_conf = {"state.backend.type": "forst", "table.exec.async-state.enabled": "true",
                "execution.checkpointing.dir": a.checkpoint_dir, "execution.checkpointing.interval": "1 s",
                "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
                "restart-strategy.type": "none", "parallelism.default": "1",
                # SST files of this small state stay above the size Flink inlines into _metadata
                "state.backend.forst.compression.per.level": "NO_COMPRESSION", **given}
    endpoint = given.get("s3.endpoint", "")
    # the FileSystems see this configuration (the job's own they never see), as counter_job gives them
    crypto_local.enable(job_conf, plugins_dir=s3_plugin.plugins_dir() if endpoint else None)
    completed = (lambda: s3_plugin.completed_checkpoints(endpoint, a.checkpoint_dir)) if endpoint else \
        (lambda: completed_checkpoints(a.checkpoint_dir))
    conf = Configuration()
    for k, v in job_conf.items():
        conf.set_string(k, v)
    if a.restore:
        conf.set_string("execution.state-recovery.path", a.restore)
    t = TableEnvironment.create(EnvironmentSettings.new_instance().in_streaming_mode().with_configuration(conf).build())
    t.execute_sql(f"CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'fields.id.kind' = 'sequence', "
                  f"'fields.id.start' = '1', 'fields.id.end' = '{a.rows}', 'rows-per-second' = '{a.rate}')")
    t.execute_sql("CREATE TABLE agg_out (k BIGINT, c BIGINT, s BIGINT) "
                  "WITH ('connector' = 'print', 'print-identifier' = 'agg')")
    job = t.execute_sql(f"INSERT INTO agg_out SELECT id % {a.keys}, COUNT(*), SUM(id) FROM src GROUP BY id % {a.keys}")
    try:
        if a.mode == "cancel":
            deadline = time.time() + a.timeout
            while not (done := completed()) or int(done[-1].rsplit("-", 1)[1]) < a.stop_after:
                if time.time() > deadline:
                    raise TimeoutError(f"no checkpoint {a.stop_after} within {a.timeout} s")
                time.sleep(0.2)
            if a.snapshot:
                _snapshot(*a.snapshot.split("=", 1))
            job.get_job_client().cancel().result()
            result = {"status": "CANCELED", "checkpoint": completed()[-1]}
        else:
            job.wait(int(a.timeout * 1000))
            result = {"status": "FINISHED"}
    except Exception as e:  # the failure goes to the result file, whole (the test looks for the file at fault)
        result = {"status": "ERROR", "error": str(e)}
    with open(a.result, "w") as f:
        json.dump(result, f)


def _snapshot(src: str, dest: str) -> None:
    """The files under ``src`` as they are now into ``dest`` (one that goes away meanwhile is skipped:
    ForSt compacts while the job runs)."""
    for folder, _, names in os.walk(src):
        for name in names:
            path = os.path.join(folder, name)
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                continue
            target = os.path.join(dest, os.path.relpath(path, src))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
