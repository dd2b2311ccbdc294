"""flink-conf-examples/kubernetes: the FlinkDeployment manifest and the Dockerfile, as files (neither
is deployed or built here: no container engine, no Kubernetes; the README beside them says so).

* the manifest parses; every ``heliosdb.crypto.*`` key is a known option with a valid value;
  every other key of ``flinkConfiguration`` is an option of the Flink the manifest names, read from
  PyFlink's jars (or a reporter option under ``metrics.reporter.<name>.``);
* every setting ``heliosdb-flink-crypto flink install --write-config --flink-metrics --python-jobs``
  makes is in the manifest with the same value (the operator replaces the image's config.yaml with
  the manifest's map, so the manifest must carry them);
* manifest and Dockerfile agree: the Flink version (a supported line), the venv, the KMS URI, the
  checkpoint directory, the flink-python jar; the Dockerfile installs through install.sh.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from heliosdb_flink_crypto import config
from heliosdb_flink_crypto.flink import versions
from heliosdb_flink_crypto.flink.settings import settings

HERE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "flink-conf-examples", "kubernetes")
VENV_PYTHON = "/opt/heliosdb/venv/bin/python"
#: options of Flink's Prometheus reporter (its plugin jar is not on PyFlink's class path)
PROMETHEUS_REPORTER = {"port", "host", "filterLabelValueCharacters"}


@pytest.fixture(scope="module")
def manifest() -> dict:
    with open(os.path.join(HERE, "flink-deployment.yaml")) as f:
        docs = list(yaml.safe_load_all(f))
    (deployment,) = [d for d in docs if d["kind"] == "FlinkDeployment"]
    (account,) = [d for d in docs if d["kind"] == "ServiceAccount"]
    assert deployment["spec"]["serviceAccount"] == account["metadata"]["name"]
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    return deployment


@pytest.fixture(scope="module")
def conf(manifest) -> dict[str, str]:
    raw = manifest["spec"]["flinkConfiguration"]
    assert all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in raw.values()), \
        "the operator takes strings: quote booleans"
    return {k: str(v) for k, v in raw.items()}


@pytest.fixture(scope="module")
def dockerfile() -> str:
    with open(os.path.join(HERE, "Dockerfile")) as f:
        return f.read()


def _arg(dockerfile: str, name: str) -> str:
    return re.search(rf"^ARG {name}=(\S+)$", dockerfile, re.M).group(1)


def test_every_heliosdb_key_is_a_known_option_with_a_valid_value(conf):
    ours = {k: v for k, v in conf.items() if k.startswith(config.PREFIX)}
    assert ours
    loaded = config.load(ours)  # unknown keys and bad values raise ConfigError naming the key
    assert loaded["heliosdb.crypto.kms.uri"] == ["aws-kms://alias/flink-checkpoints?region=eu-west-1"]


def test_the_manifest_has_every_setting_flink_install_writes(conf):
    wanted, notes = settings({}, VENV_PYTHON, conf["heliosdb.crypto.kms.uri"], conf["execution.checkpointing.dir"],
                             flink_metrics=True, python_jobs=True)
    assert not notes or all("total memory" in n for n in notes), notes  # the operator sizes each process
    for s in wanted:
        assert s.key in conf, f"{s.key} missing from flinkConfiguration ({s.why})"
        if s.key != "heliosdb.crypto.state-backend":  # the manifest wraps RocksDB, flink install the default
            assert conf[s.key] == s.value, (s.key, conf[s.key], s.value)
    for key in ("execution.checkpointing.dir", "execution.checkpointing.savepoint-dir", "high-availability.storageDir"):
        assert conf[key].startswith("enc+s3://"), key
    assert conf["heliosdb.crypto.state-backend"] == "rocksdb"
    assert conf["metrics.reporter.prom.factory.class"] == "org.apache.flink.metrics.prometheus.PrometheusReporterFactory"
    assert conf["execution.checkpointing.externalized-checkpoint-retention"] == "RETAIN_ON_CANCELLATION"


def test_manifest_and_dockerfile_agree(manifest, conf, dockerfile):
    image = _arg(dockerfile, "FLINK_IMAGE")
    m = re.fullmatch(r"flink:(\d+\.\d+\.\d+)-scala_2\.12-java(\d+)", image)
    assert m, image
    flink_version, java = m.group(1), int(m.group(2))
    line = versions.line_for(flink_version, "the Dockerfile")
    assert line is versions.LINES[0], "the example follows the newest supported line"
    assert java >= 11
    assert manifest["spec"]["flinkVersion"] == "v" + line.line.replace(".", "_")
    assert manifest["spec"]["image"].endswith(":" + flink_version)
    assert manifest["spec"]["job"]["jarURI"].endswith(f"/flink-python-{flink_version}.jar")
    assert _arg(dockerfile, "HELIOSDB_KMS_URI") == conf["heliosdb.crypto.kms.uri"]
    assert _arg(dockerfile, "HELIOSDB_CHECKPOINT_DIR") == conf["execution.checkpointing.dir"]
    assert "HELIOSDB_VENV=/opt/heliosdb/venv" in dockerfile and f"{os.path.dirname(VENV_PYTHON)}:$PATH" in dockerfile
    assert "/opt/heliosdb/install.sh /tmp/wheels/heliosdb_flink_crypto-*.whl /opt/flink" in dockerfile
    assert "python3-venv" in dockerfile and "plugins/s3-fs-presto" in dockerfile
    args = manifest["spec"]["job"]["args"]
    assert args[args.index("-pyclientexec") + 1] == VENV_PYTHON
    assert manifest["spec"]["job"]["entryClass"] == "org.apache.flink.client.python.PythonDriver"


_LIST_OPTIONS = r"""
import glob, json, os, zipfile
import pyflink
from pyflink.java_gateway import get_gateway
home = os.path.dirname(os.path.abspath(pyflink.__file__))
names = set()
for jar in glob.glob(os.path.join(home, "lib", "*.jar")) + glob.glob(os.path.join(home, "opt", "flink-python*.jar")):
    for n in zipfile.ZipFile(jar).namelist():
        if n.startswith("org/apache/flink/") and n.endswith("Options.class") and "$" not in n:
            names.add(n[:-len(".class")].replace("/", "."))
jvm = get_gateway().jvm
option = jvm.java.lang.Class.forName("org.apache.flink.configuration.ConfigOption")
static = jvm.java.lang.reflect.Modifier.STATIC
keys = set()
for name in sorted(names):
    try:
        fields = jvm.java.lang.Class.forName(name).getFields()
    except Exception:
        continue
    for f in fields:
        if option.isAssignableFrom(f.getType()) and f.getModifiers() & static:
            o = f.get(None)
            keys.add(o.key())
            keys.update(k.getKey() for k in o.fallbackKeys())
print(json.dumps(sorted(keys)))
"""


def test_every_other_key_is_an_option_of_flink(conf, tmp_path):
    r = subprocess.run([sys.executable, "-c", _LIST_OPTIONS], capture_output=True, text=True, timeout=300,
                       cwd=tmp_path, env=dict(os.environ, FLINK_LOG_DIR=str(tmp_path)))
    assert r.returncode == 0, r.stderr[-3000:]
    flink = set(json.loads(r.stdout.strip().splitlines()[-1]))
    assert {"execution.checkpointing.dir", "python.executable", "state.backend.type"} <= flink, len(flink)
    unknown = []
    for key in conf:
        if key.startswith(config.PREFIX):
            continue
        m = re.fullmatch(r"metrics\.reporter\.[A-Za-z0-9_-]+\.(.+)", key)
        if m:
            if m.group(1) not in flink and m.group(1) not in PROMETHEUS_REPORTER:
                unknown.append(key)
        elif key not in flink:
            unknown.append(key)
    assert unknown == [], f"not options of Flink {versions.LINES[0].line}: {unknown}"
