"""The lib jar's hook operations (flink/lib_ops.py: ``flink_metrics``, ``check_restore``), the Java
gauge list mirroring them, and how ``flink install`` / ``local`` handle the lib jar."""
import json
import os
import re
import zipfile

import pytest

from heliosdb_flink_crypto import KeyAccessError
from heliosdb_flink_crypto.flink import (JOBMANAGER_METRICS_REPORTER, LIB_JAR_NAME, METERED_STATE_BACKEND,
                                         TENANT_CHECKPOINT_STORAGE, bridge, hooks, install, jar_path, lib_jar_path,
                                         lib_ops, local, versions)
from heliosdb_flink_crypto.observe import BUS

from stand_ins import fake_flink_home

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GAUGES_JAVA = os.path.join(ROOT, "java-shim", "src", "main", "java", "io", "heliosdb", "flink", "crypto", "lib",
                           "FlinkGauges.java")


@pytest.fixture(autouse=True)
def _fresh_hooks():
    hooks.reset()
    yield
    hooks.reset()


@pytest.fixture
def keyring(tmp_path):
    from heliosdb_flink_crypto.kms.local import LocalKeyring
    uri = "local://" + str(tmp_path / "keyring.json")
    LocalKeyring.create(uri)
    return uri


def conf_json(uri, **extra):
    c = {"heliosdb.crypto.kms.uri": uri, "heliosdb.crypto.rotation.enabled": "false"}
    c.update(extra)
    return json.dumps(c)


def tenants_conf(tmp_path, keyring, require=False):
    return conf_json(keyring, **{
        "heliosdb.crypto.tenants.acme.path-prefix": f"s3://ckpt/acme",
        "heliosdb.crypto.tenants.acme.kms.uri": keyring,
        "heliosdb.crypto.tenants.globex.path-prefix": f"file://{tmp_path}/globex",
        "heliosdb.crypto.tenants.globex.kms.uri": keyring,
        "heliosdb.crypto.tenants.require-match": str(require).lower()})


# -- flink_metrics ------------------------------------------------------------------------------
def test_aggregate_sums_labels_and_takes_histogram_sum_and_count():
    snap = {'heliosdb_checkpoint_encryption_total{tenant=""}': 3.0,
            'heliosdb_checkpoint_encryption_total{tenant="acme"}': 2.0,
            "heliosdb_checkpoint_encryption_duration_seconds_sum": 0.5,
            "heliosdb_checkpoint_encryption_duration_seconds_count": 5.0,
            'heliosdb_kms_call_duration_seconds_sum{op="wrap",provider="local"}': 0.25,
            'heliosdb_kms_call_duration_seconds_sum{op="unwrap",provider="aws-kms"}': 0.5,
            'heliosdb_kms_calls_total{op="wrap",outcome="ok",provider="local"}': 4.0,
            "heliosdb_dek_cache_hits_total": 7.0, "heliosdb_crypto_fips_enabled": 1.0}
    out = lib_ops.aggregate(snap)
    assert list(out) == list(lib_ops.FLINK_GAUGES)
    assert out["heliosdb_checkpoint_encryption_total"] == 5.0
    assert out["heliosdb_checkpoint_encryption_duration_seconds_sum"] == 0.5
    assert out["heliosdb_checkpoint_encryption_duration_seconds_count"] == 5.0
    assert out["heliosdb_kms_call_duration_seconds_sum"] == 0.75
    assert out["heliosdb_kms_calls_total"] == 4.0 and out["heliosdb_dek_cache_hits_total"] == 7.0
    assert out["heliosdb_auth_failures_total"] == 0.0, "absent samples are 0"
    assert "heliosdb_crypto_fips_enabled" not in out


def test_flink_metrics_configures_python_if_nothing_did_and_counts_encryptions(keyring):
    before = json.loads(hooks.dispatch("flink_metrics", conf_json(keyring)))
    assert set(before) == set(lib_ops.FLINK_GAUGES)
    assert len(bridge._sessions) == 1, "no session existed: the metrics op configured one"
    sid = next(iter(bridge._sessions))
    crypto = hooks.session(sid).crypto_for("/tmp/x/chk-1/_metadata")
    blob = crypto.encrypt_bytes(b"state" * 100)
    crypto.decrypt_bytes(blob)
    after = json.loads(hooks.dispatch("flink_metrics", conf_json(keyring)))
    assert after["heliosdb_checkpoint_encryption_total"] == before["heliosdb_checkpoint_encryption_total"] + 1
    assert after["heliosdb_checkpoint_encrypted_bytes_total"] >= before["heliosdb_checkpoint_encrypted_bytes_total"] + 500
    assert after["heliosdb_kms_calls_total"] > before["heliosdb_kms_calls_total"]
    assert keyring.split("://", 1)[1] not in json.dumps(after)


def test_flink_metrics_uses_the_session_the_filesystem_made(keyring, tmp_path):
    sid = hooks.dispatch("configure", conf_json(keyring))
    other = conf_json(keyring, **{"heliosdb.crypto.segment-size": "1024"})  # e.g. a job-level setting
    json.loads(hooks.dispatch("flink_metrics", other))
    assert list(bridge._sessions) == [sid], "a second session was made although the FileSystem had one"


def test_flink_metrics_with_a_bad_configuration_names_the_key():
    with pytest.raises(Exception, match="heliosdb.crypto.kms.uri"):
        hooks.dispatch("flink_metrics", json.dumps({"heliosdb.crypto.segment-size": "64"}))


def test_java_gauges_mirror_the_python_list():
    src = open(GAUGES_JAVA).read()
    block = re.search(r"static final String\[\] NAMES = \{(.*?)\};", src, re.S).group(1)
    assert re.findall(r'"([a-z_]+)"', block) == list(lib_ops.FLINK_GAUGES)


# -- check_restore (tenant guard) ---------------------------------------------------------------
def test_check_restore_same_tenant_returns_it(tmp_path, keyring):
    sid = hooks.dispatch("configure", tenants_conf(tmp_path, keyring))
    assert hooks.dispatch("check_restore", sid, "enc+s3://ckpt/acme/job-2", "enc+s3://ckpt/acme/job-1/chk-7") == "acme"
    assert hooks.dispatch("check_restore", sid, f"enc+file://{tmp_path}/globex/cp",
                          f"enc+file://{tmp_path}/globex/sp/savepoint-1") == "globex"
    assert hooks.dispatch("check_restore", sid, "enc+file:///elsewhere/cp", "enc+file:///other/chk-1") == ""


def test_check_restore_across_tenants_names_both_and_the_path(tmp_path, keyring):
    sid = hooks.dispatch("configure", tenants_conf(tmp_path, keyring))
    seen = []
    listener = BUS.subscribe(seen.append)
    try:
        pointer = "enc+s3://ckpt/acme/job-1/chk-7"
        with pytest.raises(lib_ops.TenantRestoreError) as e:
            hooks.dispatch("check_restore", sid, f"enc+file://{tmp_path}/globex/cp", pointer)
    finally:
        BUS.unsubscribe(listener)
    msg = str(e.value)
    assert pointer in msg and "'acme'" in msg and "'globex'" in msg and "restore refused" in msg
    assert isinstance(e.value, KeyAccessError)
    assert (e.value.pointer_tenant, e.value.job_tenant) == ("acme", "globex")
    assert [(x["op"], x["outcome"], x["tenant"], x["header_tenant"]) for x in seen] == \
        [("tenant_mismatch", "denied", "globex", "acme")]
    # the default tenant is a tenant too: an untenanted job may not restore acme's checkpoint
    with pytest.raises(lib_ops.TenantRestoreError, match="'<default>'"):
        hooks.dispatch("check_restore", sid, "enc+file:///untenanted/cp", pointer)


def test_check_savepoint_target_under_another_tenant_is_refused(tmp_path, keyring):
    sid = hooks.dispatch("configure", tenants_conf(tmp_path, keyring))
    job = "enc+s3://ckpt/acme/job-1"
    assert hooks.dispatch("check_restore", sid, job, "enc+s3://ckpt/acme/savepoints", "savepoint") == "acme"
    with pytest.raises(lib_ops.TenantRestoreError) as e:
        hooks.dispatch("check_restore", sid, job, f"enc+file://{tmp_path}/globex/sp", "savepoint")
    assert str(e.value).startswith(f"enc+file://{tmp_path}/globex/sp: savepoint refused: the savepoint target "
                                   "belongs to tenant 'globex' but this job's checkpoint directory")
    assert "writes savepoints only under its own tenant's prefix" in str(e.value)
    with pytest.raises(ValueError, match="unknown tenant check"):
        hooks.dispatch("check_restore", sid, job, job, "delete")


def test_check_restore_with_require_match_refuses_untenanted_paths(tmp_path, keyring):
    sid = hooks.dispatch("configure", tenants_conf(tmp_path, keyring, require=True))
    with pytest.raises(KeyAccessError, match="no tenant"):
        hooks.dispatch("check_restore", sid, "enc+s3://ckpt/acme/cp", "enc+file:///untenanted/chk-1")


# -- the lib jar: build output, install, local ---------------------------------------------------
def test_lib_jar_holds_the_factories_and_no_filesystem():
    with zipfile.ZipFile(lib_jar_path()) as z:
        names = set(z.namelist())
    for cls in (METERED_STATE_BACKEND, TENANT_CHECKPOINT_STORAGE, JOBMANAGER_METRICS_REPORTER):
        assert cls.replace(".", "/") + ".class" in names
    assert "io/heliosdb/flink/crypto/CryptoOptions.class" in names
    services = sorted(n for n in names if n.startswith("META-INF/services/") and not n.endswith("/"))
    assert services == ["META-INF/services/org.apache.flink.metrics.reporter.MetricReporterFactory"], \
        "lib/ must not register FileSystems; Flink finds the JobManager reporter's factory by ServiceLoader"
    with zipfile.ZipFile(lib_jar_path()) as z:
        assert z.read(services[0]).decode().split() == [JOBMANAGER_METRICS_REPORTER]
    with zipfile.ZipFile(jar_path()) as z:
        assert not any("MetricReporterFactory" in n for n in z.namelist()), "the plugin jar registers no reporter"
    # the pemja bridge and the typed errors are compiled into both jars (each loads its own copy)
    assert {"io/heliosdb/flink/crypto/PythonBridge.class", "io/heliosdb/flink/crypto/PythonCall.class",
            "io/heliosdb/flink/crypto/AuthenticationException.class"} <= names
    assert not any(n.startswith("io/heliosdb/flink/crypto/") and ("FileSystem" in n or "Stream" in n) for n in names)


def test_missing_lib_jar_says_how_to_build_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HELIOSDB_LIB_JAR", str(tmp_path / "nope.jar"))
    with pytest.raises(FileNotFoundError, match="build-shim.sh"):
        lib_jar_path()
    env = {}
    assert local.add_lib_jar_to_gateway_classpath(env) is None and env == {}


def test_local_puts_the_lib_jar_on_the_gateway_class_path_once(tmp_path, monkeypatch):
    jar = tmp_path / LIB_JAR_NAME
    jar.write_bytes(b"PK")
    monkeypatch.setenv("HELIOSDB_LIB_JAR", str(jar))
    env = {"HADOOP_CLASSPATH": "/opt/hadoop/conf"}
    assert local.add_lib_jar_to_gateway_classpath(env) == str(jar)
    assert local.add_lib_jar_to_gateway_classpath(env) == str(jar)
    assert env["HADOOP_CLASSPATH"] == os.pathsep.join(["/opt/hadoop/conf", str(jar)])


@pytest.fixture
def flink_home(tmp_path, monkeypatch):
    return fake_flink_home(tmp_path, monkeypatch, python_in="lib", lib_jar=True)


def test_install_copies_the_lib_jar_and_prints_the_optional_lines(flink_home):
    r = install.install(str(flink_home), python_executable="/venv/bin/python")
    assert (flink_home / "lib" / LIB_JAR_NAME).read_bytes() == b"PK-" + LIB_JAR_NAME.encode()
    assert any(a.endswith(os.path.join("lib", LIB_JAR_NAME)) for a in r.actions)
    lines = r.config.splitlines()
    assert f"# state.backend.type: {METERED_STATE_BACKEND}" in lines
    assert "# heliosdb.crypto.state-backend: hashmap" in lines
    assert f"# metrics.reporter.heliosdb.factory.class: {JOBMANAGER_METRICS_REPORTER}" in lines
    # the placeholder checkpoint directory is enc+: the storage that guards its savepoints comes with it
    assert any(x.startswith(f"execution.checkpointing.storage: {TENANT_CHECKPOINT_STORAGE}  # ") for x in lines)
    assert any("flink_taskmanager_heliosdb_checkpoint_encryption_total" in x for x in lines)


def test_install_without_a_built_lib_jar_warns_and_installs_the_plugin(flink_home, tmp_path, monkeypatch):
    monkeypatch.setenv("HELIOSDB_LIB_JAR", str(tmp_path / "missing.jar"))
    r = install.install(str(flink_home), dry_run=True)
    assert any("metered state backend" in w for w in r.warnings)
    assert not (flink_home / "lib" / LIB_JAR_NAME).exists()


# -- python job.py: the lib jar in PyFlink's gateway JVM (a real JVM per case) --------------------
_GATEWAY_SCRIPT = r"""
import logging, sys
logging.basicConfig(level=logging.WARNING, stream=sys.stdout)
from heliosdb_flink_crypto.flink import local, METERED_STATE_BACKEND
if sys.argv[1] == "late":
    from pyflink.java_gateway import get_gateway
    get_gateway()
local.enable({"heliosdb.crypto.kms.uri": sys.argv[2], "heliosdb.crypto.rotation.enabled": "false"})
from pyflink.java_gateway import get_gateway
g = get_gateway()
print("HAS_LIB", local._has_lib(g))
if sys.argv[1] == "early":
    conf = g.jvm.org.apache.flink.configuration.Configuration()
    conf.setString("heliosdb.crypto.state-backend", "rocksdb")
    cl = g.jvm.java.lang.Thread.currentThread().getContextClassLoader()
    backend = g.jvm.java.lang.Class.forName(METERED_STATE_BACKEND).getDeclaredConstructor(None).newInstance(None) \
        .createFromConfig(conf, cl)
    print("DELEGATE", backend.getDelegate().getClass().getName())
"""


def _gateway_run(tmp_path, case, keyring):
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLINK_", "HADOOP_CLASSPATH"))}
    r = subprocess.run([sys.executable, "-c", _GATEWAY_SCRIPT, case, keyring], capture_output=True, text=True,
                       timeout=180, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


@pytest.mark.slow
def test_enable_puts_the_lib_jar_in_the_gateway_so_the_factories_load(tmp_path, keyring):
    out = _gateway_run(tmp_path, "early", keyring)
    assert "HAS_LIB True" in out
    assert "DELEGATE org.apache.flink.state.rocksdb.EmbeddedRocksDBStateBackend" in out, out


@pytest.mark.slow
def test_enable_after_the_gateway_started_warns_that_the_lib_jar_is_missing(tmp_path, keyring):
    out = _gateway_run(tmp_path, "late", keyring)
    assert "HAS_LIB False" in out
    assert "lib jar (metered state backend, tenant checkpoint storage) is not on its class path" in out


@pytest.mark.parametrize("line", versions.LINES, ids=lambda x: str(x))
@pytest.mark.parametrize("which", ["plugin", "lib"])
def test_each_jar_holds_every_class_of_the_package_its_classes_use(line, which):
    """The lib jar takes a list of the plugin's classes (pom.xml's lib-jar includes): one left out
    would fail only when Flink first loads the class that needs it (a NoClassDefFoundError in a
    TaskManager). ``jdeps`` lists every class each class of the jar refers to; every
    ``io.heliosdb`` one must be in the jar itself (Flink's and pemja's come from Flink's lib/)."""
    import shutil
    import subprocess
    if shutil.which("jdeps") is None:
        pytest.fail("jdeps (the JDK's) is not on PATH")
    jar = (lib_jar_path if which == "lib" else jar_path)(line)
    out = subprocess.run(["jdeps", "-verbose:class", jar], capture_output=True, text=True, check=True).stdout
    missing = sorted(set(re.findall(r"->\s+(io\.heliosdb\.\S+)\s+not found", out)))
    assert missing == [], f"{jar} lacks {missing}"
    assert re.search(r"io\.heliosdb\.flink\.crypto\.\S+\s+->", out), out[:500]  # jdeps did read the jar
