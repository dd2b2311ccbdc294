"""Real cloud KMS SDKs inside a real Flink job (PyFlink's local MiniCluster, the Python engine in the
JVM through pemja), against the local stand-ins of ``heliosdb_flink_crypto.testing``.

* ``enc+s3://`` on moto's S3 with ``aws-kms://`` on the same moto server: Flink's own S3 plugin
  (flink-s3-fs-presto) writes the objects; every object in the bucket is ciphertext whose header
  names the aws-kms URI; stopping with a savepoint and restoring continues every key exactly.
* Two KMSs (``gcp-kms://...;azure-kv://...``) and one job: with one KMS stopped, checkpoints go on
  (new DEKs are wrapped by the KMS that answers) and a fresh process restores through the other; with
  both stopped and the grace over, checkpoints fail closed and nothing plaintext is written; with one
  back, checkpoints resume.
"""
from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
import uuid

import pytest

import harness as h
import s3_plugin
from cluster import free_port
from heliosdb_flink_crypto import CheckpointCrypto
from heliosdb_flink_crypto.format import PREFIX_LEN, binding_name, parse, parse_prefix

pytestmark = [pytest.mark.slow, pytest.mark.kms]

RECORDS, KEYS, PAD = 12000, 400, 128
RETRY = {"timeout": "1 s", "max-attempts": "2", "backoff": "10 ms", "max-backoff": "50 ms"}


def _retry(provider: str) -> dict[str, str]:
    return {f"heliosdb.crypto.kms.{provider}.{k}": v for k, v in RETRY.items()}


# -- enc+s3:// on moto's S3, aws-kms:// on moto's KMS ------------------------------------------------
@pytest.fixture(scope="module")
def moto():
    from heliosdb_flink_crypto.testing.aws import MotoKms
    with MotoKms() as kms:
        yield kms


@pytest.fixture(scope="module")
def s3_job(tmp_path_factory, moto):
    tmp = tmp_path_factory.mktemp("s3")
    s3_endpoint = f"http://127.0.0.1:{moto.moto_port}"  # S3 straight to moto; KMS through its front
    s3_plugin.s3_client(s3_endpoint).create_bucket(Bucket="bucket")
    kms = moto.client()
    arn = kms.create_key()["KeyMetadata"]["Arn"]
    kms.create_alias(AliasName="alias/checkpoints", TargetKeyId=arn)
    uri = f"aws-kms://alias/checkpoints?region={moto.region}"
    conf = {"heliosdb.crypto.kms.uri": uri, **moto.settings(), **_retry("aws"),
            "s3.endpoint": s3_endpoint, "s3.path.style.access": "true",
            "s3.access-key": "testing", "s3.secret-key": "testing"}
    plugins = s3_plugin.plugins_dir()  # fetched here, not inside the job's timeout
    assert os.path.isfile(os.path.join(plugins, "s3-fs-presto", s3_plugin.JAR))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(h, "JOB", s3_plugin.__file__)  # counter_job + the S3 plugin and s3.* options
        first = h.run_job(str(tmp), "first", "enc+s3://bucket/ckpt", mode="savepoint-cancel",
                          savepoint_dir="enc+s3://bucket/savepoints", conf=conf, records=RECORDS, keys=KEYS,
                          pad=PAD, throttle_ms=2, stop_after=3, local_crypto=True)
        assert first.ok, first.describe()
        restore = h.run_job(str(tmp), "restore", "enc+s3://bucket/restored", restore=first.result["savepoint"],
                            conf=conf, records=RECORDS, keys=KEYS, pad=PAD, local_crypto=True)
    return {"first": first, "restore": restore, "uri": uri, "arn": arn, "s3": s3_endpoint,
            "settings": {**moto.settings(), **_retry("aws")}}


def _objects(s3_job, prefix: str) -> dict[str, bytes]:
    client = s3_plugin.s3_client(s3_job["s3"])
    return {k: client.get_object(Bucket="bucket", Key=k)["Body"].read()
            for k in s3_plugin.list_objects(s3_job["s3"], f"s3://bucket/{prefix}")}


@pytest.mark.parametrize("prefix", ["ckpt", "savepoints"])
def test_s3_objects_are_ciphertext_naming_the_aws_kms_key(s3_job, prefix):
    first = s3_job["first"]
    assert first.result["savepoint"].startswith("enc+s3://bucket/savepoints/"), first.describe()
    assert any(c.startswith("enc+s3://bucket/ckpt/") for c in first.result["checkpoints"]), first.describe()
    objects = _objects(s3_job, prefix)
    names = [k.rsplit("/", 1)[1] for k in objects]
    assert "_metadata" in names and any(n != "_metadata" for n in names), sorted(objects)
    crypto = CheckpointCrypto([s3_job["uri"]], settings=s3_job["settings"])
    try:
        plain = {}
        for key, data in objects.items():
            if not data:
                continue
            assert h.MARKER not in data and h.INFLIGHT not in data, f"plaintext state in s3://bucket/{key}"
            assert data[:4] == h.MAGIC, f"s3://bucket/{key} has no encrypted header"
            _, hlen, _ = parse_prefix(data[:PREFIX_LEN], key)
            header = parse(data[:hlen], key)
            assert [(s.kms_uri, s.key_version) for s in header.slots] == [(s3_job["uri"], s3_job["arn"])]
            # authenticates with the real KMS round trip, and checks the object is bound to its key (F-24)
            plain[key] = crypto.decrypt_bytes(data, key, name=binding_name(f"s3://bucket/{key}"))
    finally:
        crypto.close()
    # the control: decrypted, the same objects do hold the keyed state
    assert any(h.MARKER in p for p in plain.values()), "the decrypted objects hold no state"


def test_s3_restore_from_encrypted_savepoint_continues_exactly(s3_job):
    restore = s3_job["restore"]
    assert restore.ok, restore.describe()
    h.assert_continued(restore.out_dir, RECORDS, KEYS)


# -- two KMSs, one job, outages ----------------------------------------------------------------------
MAX_AGE, GRACE = 2.0, 10.0  # a DEK serves 2 s, then 10 s more while a KMS is down: felt within seconds


def _counts(port: int) -> dict:
    def get(path):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return json.load(r)
    jobs = get("/jobs")["jobs"]
    running = [j["id"] for j in jobs if j["status"] == "RUNNING"]
    assert running, f"no running job: {jobs}"
    return get(f"/jobs/{running[0]}/checkpoints")["counts"]


def _wait_completed(port: int, more_than: int, timeout: float) -> dict:
    return h.wait_for(lambda: (lambda c: c if c["completed"] > more_than else None)(_counts(port)),
                      timeout, f"a checkpoint completing after #{more_than}", interval=0.3)


@pytest.fixture(scope="module")
def two_kms():
    from heliosdb_flink_crypto.testing.azure import AzureKeyVaultStandIn
    from heliosdb_flink_crypto.testing.gcp import GcpKmsStandIn
    with GcpKmsStandIn() as gcp, AzureKeyVaultStandIn() as azure:
        gcp_uri = "gcp-kms://" + gcp.create_key()
        name = f"ckpt-{uuid.uuid4().hex[:6]}"
        azure.create_key(name)
        azure_uri = f"azure-kv://{azure.host}/keys/{name}"
        p = "heliosdb.crypto.kms.azure."
        settings = {**gcp.settings(), **_retry("gcp"), **azure.settings(), **_retry("azure"),
                    p + "tenant-id": azure.tenant_id, p + "client-id": "flink", p + "client-secret": "s3cret",
                    p + "authority-host": azure.vault_url, p + "disable-instance-discovery": "true"}
        yield gcp, azure, f"{gcp_uri};{azure_uri}", settings


def test_two_kms_job_survives_one_outage_fails_closed_without_both_and_resumes_with_one(tmp_path, two_kms):
    gcp, azure, uris, settings = two_kms
    port, stop_file = free_port(), tmp_path / "stop"
    cp = tmp_path / "checkpoints"
    conf = {"heliosdb.crypto.kms.uri": uris, **settings,
            "heliosdb.crypto.cache.max-age": f"{MAX_AGE:g} s", "heliosdb.crypto.cache.outage-grace": f"{GRACE:g} s",
            "execution.checkpointing.tolerable-failed-checkpoints": "1000"}
    records = 60000  # throttled to ~2 min at most; the job is cancelled as soon as the phases are done
    box = {}
    job = threading.Thread(target=lambda: box.setdefault("run", h.run_job(
        str(tmp_path), "multi", f"enc+file://{cp}", mode="hold", stop_file=str(stop_file), conf=conf,
        records=records, keys=KEYS, pad=PAD, throttle_ms=2, local_crypto=True, rest_port=port, timeout=240)))
    job.start()
    phases = {}
    try:
        phases["both up"] = c = h.wait_for(lambda: _try_counts(port, 2), 150, "two completed checkpoints")

        gcp.stop()  # the KMS that generates DEKs is gone: new DEKs are wrapped by Azure alone
        time.sleep(MAX_AGE + GRACE + 1)  # past the cached DEK's grace: what completes now used a new DEK
        c = _counts(port)
        phases["gcp down, past the grace"] = c = _wait_completed(port, c["completed"] + 2, 60)

        azure.stop()  # both gone; once the DEK is past max-age + grace, no file can be sealed
        t_stop = time.monotonic()
        time.sleep(MAX_AGE + GRACE + 1)
        before = _counts(port)
        time.sleep(6)
        phases["both down"] = after = _counts(port)
        assert after["failed"] >= before["failed"] + 2, phases
        # a checkpoint already running at the expiry may have sealed its last files just in time
        assert after["completed"] <= before["completed"] + before["in_progress"], phases
        phases["both down for s"] = round(time.monotonic() - t_stop, 1)

        # one KMS back is enough: new DEKs are wrapped by GCP alone and checkpoints resume
        port_before = gcp.port
        gcp.start()
        assert gcp.port == port_before, "the GCP stand-in came back on another port"
        phases["gcp back"] = again = _wait_completed(port, after["completed"] + 1, 60)

        azure.start()  # the GCP-only DEK is replaced after max-age by one both KMSs wrap
        phases["both back"] = c = _wait_completed(port, again["completed"] + 1, 30)
        time.sleep(MAX_AGE + 1)
        phases["both back, new DEK"] = _wait_completed(port, c["completed"] + 1, 30)
    finally:
        stop_file.touch()
        job.join(120)
        gcp.start()
        azure.start()
    run = box["run"]
    assert run.ok, run.describe()
    assert h.files_with(str(cp)) == [], "plaintext state written during the outages"
    assert h.not_encrypted(str(cp)) == [], "a file without the encrypted header was written"
    slot_sets = set()
    for p in h.all_files(str(cp)):  # every file: the KMSs that answered when its DEK was made, in order
        with open(p, "rb") as f:
            data = f.read(64 * 1024)
        if data:
            _, hlen, _ = parse_prefix(data[:PREFIX_LEN], p)
            uris_of_file = tuple(s.kms_uri for s in parse(data[:hlen], p).slots)
            assert uris_of_file and all(u in uris.split(";") for u in uris_of_file), p
            slot_sets.add(uris_of_file)
    assert tuple(uris.split(";")) in slot_sets, "the last checkpoint's DEK is not wrapped by both KMSs"
    log = _logs(tmp_path)
    down_lines = [line for line in log.splitlines() if "KmsUnavailableError" in line]
    assert any("gcp-kms" in line and "azure-kv" in line for line in down_lines), \
        "the failed checkpoints do not name both unreachable KMSs"
    latest = run.result["checkpoints"][-1]

    # a fresh process (empty DEK cache) restores through Azure alone; its own checkpoints need a new
    # DEK (so GCP) and fail: the end of input must not wait for a final checkpoint
    gcp.stop()
    unwraps = azure.faults.calls["unwrapkey"]
    try:
        restore = h.run_job(str(tmp_path), "restore-azure-only", f"enc+file://{tmp_path}/restored", restore=latest,
                            conf={**conf, "execution.checkpointing.checkpoints-after-tasks-finish": "false"},
                            records=records, keys=KEYS, pad=PAD, local_crypto=True, timeout=240)
    finally:
        gcp.start()
    assert restore.ok, restore.describe()
    h.assert_continued(restore.out_dir, records, KEYS)
    assert azure.faults.calls["unwrapkey"] > unwraps, "the restore did not unwrap through Azure"
    assert "s3cret" not in _logs(tmp_path), "a KMS credential reached a log"
    print("checkpoint counts per phase:", json.dumps(phases))


def _logs(root) -> str:
    """Every log the job processes wrote (stdout and Flink's own logs)."""
    text = []
    for p in h.all_files(str(root)):
        if p.endswith(".log") or "-flink-log" in p:
            with open(p, errors="replace") as f:
                text.append(f.read())
    return "\n".join(text)


def _try_counts(port: int, at_least: int):
    try:
        c = _counts(port)
    except (OSError, AssertionError, ValueError, KeyError):
        return None  # the job is not up yet
    return c if c["completed"] >= at_least else None
