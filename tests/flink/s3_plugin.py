"""Flink's S3 FileSystem plugin for the ``enc+s3://`` end-to-end test, and a launcher for the
counter job that uses it.

* :func:`plugins_dir` returns a plugins folder holding ``s3-fs-presto/flink-s3-fs-presto-<v>.jar``,
  fetched from Maven Central with ``mvn dependency:copy`` into ``~/.cache/heliosdb-flink-crypto/``
  the first time (about 95 MiB; later runs reuse it).
* Run as a script, this module is ``jobs/counter_job.py`` with two differences: the FileSystems of
  its MiniCluster are also given the ``s3.*`` options of ``--conf`` and the S3 plugin
  (``counter_job`` hands ``enable()`` only ``heliosdb.crypto.*``), and completed checkpoints are
  found by listing the bucket (``counter_job`` globs a local directory).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

FLINK_VERSION = "2.3.0"
ARTIFACT = f"org.apache.flink:flink-s3-fs-presto:{FLINK_VERSION}"
JAR = f"flink-s3-fs-presto-{FLINK_VERSION}.jar"
CACHE = os.path.join(os.path.expanduser("~"), ".cache", "heliosdb-flink-crypto")
HERE = os.path.dirname(os.path.abspath(__file__))


def plugins_dir(cache: str = CACHE) -> str:
    """``<cache>/plugins`` with ``s3-fs-presto/<jar>`` in it, fetched with Maven if absent."""
    root = os.path.join(cache, "plugins")
    target = os.path.join(root, "s3-fs-presto", JAR)
    if not os.path.isfile(target):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        tmp = tempfile.mkdtemp(prefix="s3-plugin-", dir=cache)
        try:
            r = subprocess.run(["mvn", "-q", "-B", "dependency:copy", f"-Dartifact={ARTIFACT}",
                                f"-DoutputDirectory={tmp}"], capture_output=True, text=True, timeout=600,
                               cwd=tmp)
            got = os.path.join(tmp, JAR)
            if r.returncode != 0 or not os.path.isfile(got):
                raise RuntimeError(f"mvn could not fetch {ARTIFACT}:\n{r.stdout[-3000:]}{r.stderr[-3000:]}")
            os.replace(got, target)  # atomic: a concurrent run never sees half a jar
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return root


def s3_client(endpoint: str):
    import boto3
    return boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def split_uri(uri: str) -> tuple[str, str]:
    """``enc+s3://bucket/a/b`` -> ``("bucket", "a/b")``"""
    bucket, _, key = uri.split("://", 1)[1].partition("/")
    return bucket, key.strip("/")


def list_objects(endpoint: str, uri: str) -> dict[str, int]:
    """key -> size of every object under ``uri``'s prefix."""
    bucket, prefix = split_uri(uri)
    out = {}
    for page in s3_client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
    return out


def completed_checkpoints(endpoint: str, checkpoint_dir: str) -> list[str]:
    """URIs of ``chk-N`` "directories" holding a ``_metadata`` object, oldest first."""
    scheme = checkpoint_dir.split("://", 1)[0]
    bucket, _ = split_uri(checkpoint_dir)
    dirs = [k.rsplit("/", 1)[0] for k in list_objects(endpoint, checkpoint_dir)
            if k.endswith("/_metadata") and k.rsplit("/", 2)[1].startswith("chk-")]
    dirs.sort(key=lambda d: int(d.rsplit("-", 1)[1]))
    return [f"{scheme}://{bucket}/{d}" for d in dirs]


def main(argv: list[str]) -> int:
    sys.path.insert(0, os.path.join(HERE, "jobs"))
    import counter_job
    from heliosdb_flink_crypto.flink import local as crypto_local

    a = counter_job.parse_args(argv)
    fs_conf = dict(kv.partition("=")[::2] for kv in a.conf if kv.startswith("s3."))
    endpoint = fs_conf["s3.endpoint"]
    enable = crypto_local.enable

    def enable_with_s3(conf=None, **kw):
        return enable({**(conf or {}), **fs_conf}, plugins_dir=plugins_dir(), **kw)

    crypto_local.enable = enable_with_s3
    counter_job.completed_checkpoints = lambda d: completed_checkpoints(endpoint, d)
    return counter_job.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
