"""A PyFlink SQL job whose keyed aggregation runs on async state (State V2) in ForSt, for the end-to-end
tests: ``SELECT id % KEYS, COUNT(*), SUM(id) FROM datagen GROUP BY id % KEYS`` over a bounded sequence
``1..ROWS``, printed to stdout (``agg> +U[k, count, sum]``), checkpoints every second to
``--checkpoint-dir`` (retained on cancel), in PyFlink's local MiniCluster with the encrypted schemes
registered (``heliosdb_flink_crypto.flink.local.enable``). ``--s3-endpoint``: ``enc+s3://`` through
Flink's S3 plugin (``s3_plugin.py``) against that endpoint (moto's S3 in the tests).

* ``--stop-at N``: cancel once checkpoint N (or a later one) is complete; the result file names it.
* otherwise: run to the end (restoring from ``--restore``, a checkpoint folder, if given); the result
  file says whether the job succeeded, or its failure.

Restarts are off: a failure ends the job (and the run) at once.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time

from pyflink.common import Configuration
from pyflink.table import EnvironmentSettings, TableEnvironment

from heliosdb_flink_crypto.flink import local as crypto_local

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import s3_plugin  # noqa: E402


def completed(checkpoint_dir: str, s3_endpoint: str) -> list[str]:
    """The URIs of the complete checkpoints (a ``_metadata`` in each) under ``checkpoint_dir``, oldest first."""
    if s3_endpoint:
        return s3_plugin.completed_checkpoints(s3_endpoint, checkpoint_dir)
    scheme, root = checkpoint_dir.split("://", 1)
    found = [c for c in glob.glob(os.path.join(root, "*", "chk-*")) if os.path.exists(os.path.join(c, "_metadata"))]
    return [f"{scheme}://{c}" for c in sorted(found, key=lambda c: int(c.rsplit("-", 1)[1]))]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--checkpoint-dir", required=True, help="enc+file:// URI")
    p.add_argument("--kms-uri", required=True)
    p.add_argument("--result", required=True)
    p.add_argument("--restore", default="")
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--keys", type=int, default=100)
    p.add_argument("--rate", type=int, default=20_000, help="rows per second")
    p.add_argument("--stop-at", type=int, default=0)
    p.add_argument("--timeout", type=float, default=150)
    p.add_argument("--s3-endpoint", default="")
    a = p.parse_args()
    if a.s3_endpoint:
        crypto_local.enable({"heliosdb.crypto.kms.uri": a.kms_uri, "s3.endpoint": a.s3_endpoint,
                             "s3.path.style.access": "true", "s3.access-key": "testing", "s3.secret-key": "testing"},
                            plugins_dir=s3_plugin.plugins_dir())
    else:
        crypto_local.enable({"heliosdb.crypto.kms.uri": a.kms_uri})
    conf = Configuration()
    for k, v in {"state.backend.type": "forst", "table.exec.async-state.enabled": "true",
                 "execution.checkpointing.dir": a.checkpoint_dir, "execution.checkpointing.interval": "1 s",
                 "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
                 "restart-strategy.type": "none", "parallelism.default": "1",
                 # SST files of this small state stay above the size Flink inlines into _metadata
                 "state.backend.forst.compression.per.level": "NO_COMPRESSION"}.items():
        conf.set_string(k, v)
    if a.restore:
        conf.set_string("execution.state-recovery.path", a.restore)
    t = TableEnvironment.create(EnvironmentSettings.new_instance().in_streaming_mode().with_configuration(conf).build())
    t.execute_sql(f"CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'fields.id.kind' = 'sequence', "
                  f"'fields.id.start' = '1', 'fields.id.end' = '{a.rows}', 'rows-per-second' = '{a.rate}')")
    t.execute_sql("CREATE TABLE agg_out (k BIGINT, c BIGINT, s BIGINT) "
                  "WITH ('connector' = 'print', 'print-identifier' = 'agg')")
    job = t.execute_sql(f"INSERT INTO agg_out SELECT id % {a.keys}, COUNT(*), SUM(id) FROM src GROUP BY id % {a.keys}")
    result: dict = {}
    try:
        if a.stop_at:
            deadline = time.time() + a.timeout
            while time.time() < deadline:
                done = completed(a.checkpoint_dir, a.s3_endpoint)
                if done and int(done[-1].rsplit("-", 1)[1]) >= a.stop_at:
                    break
                time.sleep(0.2)
            else:
                raise TimeoutError(f"no checkpoint {a.stop_at} within {a.timeout} s")
            job.get_job_client().cancel().result()
            result = {"status": "CANCELED", "checkpoint": completed(a.checkpoint_dir, a.s3_endpoint)[-1]}
        else:
            job.wait(int(a.timeout * 1000))
            result = {"status": "FINISHED"}
    except Exception as e:  # the failure goes to the result file, whole (the test looks for the file at fault)
        result = {"status": "ERROR", "error": str(e)}
    with open(a.result, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
