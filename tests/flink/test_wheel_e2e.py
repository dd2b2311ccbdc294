"""The release wheel, as a Flink user gets it.

Built from a clean checkout with ``python -m build`` (the sdist, then the wheel from the sdist: its
build runs Maven for the jars of every Flink line), then installed by
``flink-conf-examples/kubernetes/install.sh`` (what the Kubernetes image's build runs) into a fresh
venv and a copy of the Flink 2.3 distribution PyFlink ships: the base install and PyFlink of the
distribution's version, no other extra. From there on no Maven on PATH, no clone on ``sys.path``
(every process runs in a temp folder), no editable install:

* install.sh's layout: the wheel's jars in ``plugins/heliosdb-crypto/`` and ``lib/``, flink-python in
  ``lib/``, the settings in the distribution's own (nested) ``conf/config.yaml`` as Flink reads it
  back, its comments kept;

* the CLI: ``--version`` lists the jars of both Flink lines; a keyring;
* ``heliosdb-flink-crypto flink install FLINK_HOME`` into a Flink 2.3 distribution (PyFlink's, as
  ``cluster.make_distribution`` lays it out) and into a Flink 1.20 one: each gets its line's jars;
* the smallest end-to-end PyFlink job with encrypted checkpoints, with the wheel's jars only:
  ``python job.py`` (local MiniCluster) checkpoints, is cancelled and restores exactly; the same job
  on a standalone cluster (install.sh's layout and configuration) with ``flink run -py``
  checkpoints, refuses a savepoint to a plain ``file://`` target (the checkpoint storage that
  configuration names), is cancelled and resumes exactly.
"""
from __future__ import annotations

import ast
import glob
import os
import re
import shutil
import subprocess
import sys

import pytest

import harness as h
from cluster import PYFLINK_HOME, StandaloneCluster, make_distribution, pyflink_home

INSTALL_SH = os.path.join(os.path.dirname(os.path.dirname(h.HERE)), "flink-conf-examples", "kubernetes", "install.sh")

pytestmark = pytest.mark.slow

RECORDS, KEYS, PAD = 6000, 200, 128
#: modules of the optional extras: none is installed, so the jobs below run on the base install
EXTRAS = ("prometheus_client", "boto3", "azure.keyvault", "google.cloud.kms_v1", "pkcs11")


def _without_maven(tmp) -> str:
    """A PATH with every program of /usr/bin and /bin but Maven's."""
    tools = tmp / "tools"
    tools.mkdir()
    for d in ("/usr/local/bin", "/usr/bin", "/bin"):
        for name in os.listdir(d) if os.path.isdir(d) else ():
            if not name.startswith("mvn") and not (tools / name).exists():
                os.symlink(os.path.join(d, name), tools / name)
    return str(tools)


class Installed:
    """The fresh venv the wheel went into."""

    def __init__(self, root, wheel: str, path: str, home: str):
        self.root, self.wheel, self.path, self.home = root, wheel, path, home
        self.python = str(root / "venv" / "bin" / "python")
        self.env = {"PATH": f"{os.path.dirname(self.python)}{os.pathsep}{path}", "PYTHONPATH": ""}

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, cwd=self.root,
                              env=dict(os.environ, **self.env))

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return self.run(os.path.join(os.path.dirname(self.python), "heliosdb-flink-crypto"), *args)

    def package_jar(self, line: str, name: str) -> str:
        code = "import os, heliosdb_flink_crypto as m; print(os.path.dirname(m.__file__))"
        pkg = self.run(self.python, "-c", code).stdout.strip()
        return os.path.join(pkg, "flink", "jars", f"flink-{line}", name)


@pytest.fixture(scope="module")
def installed(tmp_path_factory, clean_tree) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "build", "--outdir", str(root / "dist"), clean_tree],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    (wheel,) = glob.glob(str(root / "dist" / "*.whl"))
    path = _without_maven(root)
    assert shutil.which("mvn", path=path) is None and shutil.which("java", path=path)
    home = make_distribution(str(root / "image-flink"), PYFLINK_HOME, with_config=True)
    inst = Installed(root, wheel, path, home)
    env = {"HELIOSDB_VENV": str(root / "venv"), "HELIOSDB_EXTRAS": "", "HELIOSDB_FLINK_METRICS": "no",
           "PIP_ARGS": "", "PYTHON": sys.executable, "HELIOSDB_KMS_URI": f"local://{root}/keyring/keyring.json",
           "HELIOSDB_CHECKPOINT_DIR": f"enc+file://{root}/cluster-checkpoints"}
    r = subprocess.run(["bash", INSTALL_SH, wheel, home], capture_output=True, text=True, timeout=1200, cwd=root,
                       env=dict(os.environ, **inst.env, **env))
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    inst.install_output = r.stdout
    return inst


def test_the_install_script_lays_out_the_distribution(installed):
    home = installed.home
    for installed_jar, name in ((os.path.join(home, "plugins", "heliosdb-crypto", "heliosdb-flink-crypto-shim.jar"),
                                 "heliosdb-flink-crypto-shim.jar"),
                                (os.path.join(home, "lib", "heliosdb-flink-crypto-lib.jar"),
                                 "heliosdb-flink-crypto-lib.jar")):
        with open(installed_jar, "rb") as a, open(installed.package_jar("2.3", name), "rb") as b:
            assert a.read() == b.read(), f"{installed_jar} is not the wheel's Flink 2.3 jar"
    assert glob.glob(os.path.join(home, "lib", "flink-python-2.3.0.jar"))
    out = installed.install_output
    assert "conf/config.yaml (written):" in out and "heliosdb-flink-crypto 0" in out, out
    # the configuration as Flink reads it (its own parser, the one bin/config.sh runs)
    cp = os.pathsep.join([os.path.join(home, "bin", "bash-java-utils.jar"), *glob.glob(f"{home}/lib/flink-dist*.jar")])
    flat = installed.run("java", "-classpath", cp, "org.apache.flink.runtime.util.bash.BashJavaUtils",
                         "UPDATE_AND_GET_FLINK_CONFIGURATION", "--configDir", os.path.join(home, "conf"), "-flatten")
    assert flat.returncode == 0, flat.stdout[-3000:] + flat.stderr[-3000:]
    got = dict(line.split("BASH_JAVA_UTILS_EXEC_RESULT:", 1)[1].split(": ", 1) for line in flat.stdout.splitlines()
               if line.startswith("BASH_JAVA_UTILS_EXEC_RESULT:") and ": " in line)
    root = installed.root
    assert got["heliosdb.crypto.python.executable"] == got["python.executable"] == installed.python
    assert got["heliosdb.crypto.kms.uri"] == f"local://{root}/keyring/keyring.json"
    assert got["execution.checkpointing.dir"] == f"enc+file://{root}/cluster-checkpoints"
    assert got["execution.checkpointing.savepoint-dir"] == f"enc+file://{root}/savepoints"
    assert got["execution.checkpointing.storage"] == "io.heliosdb.flink.crypto.lib.TenantCheckpointStorageFactory"
    assert got["plugin.classloader.parent-first-patterns.additional"] == "pemja."
    assert got["classloader.parent-first-patterns.additional"] == "pemja."
    assert got["taskmanager.memory.framework.off-heap.size"] == "256m"
    assert got["taskmanager.memory.process.size"] == "1856m" and got["jobmanager.memory.off-heap.size"] == "256m"
    assert got["jobmanager.rpc.address"] == "localhost", "the distribution's own settings stay"
    tm = installed.run("java", "-classpath", cp, "org.apache.flink.runtime.util.bash.BashJavaUtils",
                       "GET_TM_RESOURCE_PARAMS", "--configDir", os.path.join(home, "conf"))
    assert tm.returncode == 0 and "framework.off-heap.size=268435456b" in tm.stdout, tm.stdout[-3000:]
    with open(os.path.join(PYFLINK_HOME, "conf", "config.yaml")) as f:
        comments = [line for line in f if line.lstrip().startswith("#")]
    with open(os.path.join(home, "conf", "config.yaml")) as f:
        text = f.read()
    assert comments and all(c in text for c in comments), "the distribution's comments are gone"


def test_the_installed_package_is_the_wheels_not_the_clone(installed):
    code = ("import sys, importlib, heliosdb_flink_crypto as m, pyflink.version as v\n"
            "def there(name):\n"
            "    try:\n        importlib.import_module(name)\n    except ImportError:\n        return False\n"
            "    return True\n"
            f"print(m.__file__); print(v.__version__); print(sys.path); print([x for x in {EXTRAS!r} if there(x)])")
    out = installed.run(installed.python, "-c", code).stdout.splitlines()
    assert out[0].startswith(str(installed.root / "venv")), out
    assert out[1].startswith("2.3."), out
    assert out[3] == "[]", f"the base install (plus PyFlink) holds an optional dependency: {out[3]}"
    clone = os.path.dirname(os.path.dirname(h.HERE))
    assert not any(p.startswith(clone) for p in ast.literal_eval(out[2])), "the clone is on sys.path"
    names = installed.run(installed.python, "-m", "zipfile", "-l", installed.wheel).stdout
    for line in ("2.3", "1.20"):
        for jar in ("heliosdb-flink-crypto-shim.jar", "heliosdb-flink-crypto-lib.jar"):
            assert f"heliosdb_flink_crypto/flink/jars/flink-{line}/{jar}" in names


def test_the_cli_and_flink_install_into_both_lines(installed, flink120_python):
    r = installed.cli("--version")
    assert r.returncode == 0, r.stderr
    assert re.search(r"^Flink 2\.3 .*shim\.jar \d", r.stdout, re.M) and \
        re.search(r"^Flink 1\.20 .*lib\.jar \d", r.stdout, re.M), r.stdout
    for line, source in (("2.3", pyflink_home(installed.python)), ("1.20", pyflink_home(flink120_python))):
        home = make_distribution(str(installed.root / f"flink-{line}"), source)
        r = installed.cli("flink", "install", home, "--kms-uri", "local:///etc/keyring.json")
        assert r.returncode == 0, r.stderr
        for installed_jar, name in ((os.path.join(home, "plugins", "heliosdb-crypto", "heliosdb-flink-crypto-shim.jar"),
                                     "heliosdb-flink-crypto-shim.jar"),
                                    (os.path.join(home, "lib", "heliosdb-flink-crypto-lib.jar"),
                                     "heliosdb-flink-crypto-lib.jar")):
            with open(installed_jar, "rb") as a, open(installed.package_jar(line, name), "rb") as b:
                assert a.read() == b.read(), f"{installed_jar} is not the wheel's Flink {line} jar"
        assert "heliosdb.crypto.kms.uri: local:///etc/keyring.json" in r.stdout


@pytest.fixture(scope="module")
def job(installed):
    """The counter job and a keyring, both outside the clone."""
    shutil.copy(h.JOB, installed.root / "job.py")
    uri = f"local://{installed.root}/keyring/keyring.json"
    r = installed.cli("keyring", "init", uri)
    assert r.returncode == 0, r.stderr
    return {"script": str(installed.root / "job.py"), "kms": uri}


def _assert_ciphertext(installed, job, root: str) -> None:
    assert h.files_with(root) == [] and h.not_encrypted(root) == [], root
    r = installed.cli("verify", "--kms", job["kms"], root)
    assert r.returncode == 0, r.stdout + r.stderr


def test_local_job_checkpoints_encrypted_and_restores(installed, job):
    work, conf = str(installed.root / "local"), {"heliosdb.crypto.kms.uri": job["kms"]}
    os.makedirs(work)
    common = dict(conf=conf, python=installed.python, job=job["script"], env=installed.env, records=RECORDS,
                  keys=KEYS, pad=PAD, local_crypto=True)
    first = h.run_job(work, "first", f"enc+file://{work}/checkpoints", mode="cancel", stop_after=2,
                      throttle_ms=3, **common)
    assert first.ok, first.describe()
    _assert_ciphertext(installed, job, f"{work}/checkpoints")
    again = h.run_job(work, "restore", f"enc+file://{work}/restored", restore=first.result["checkpoints"][-1],
                      **common)
    assert again.ok, again.describe()
    h.assert_continued(again.out_dir, RECORDS, KEYS)


def test_standalone_cluster_job_checkpoints_encrypted_and_resumes(installed, job):
    """On install.sh's layout and configuration (the cluster adds only its ports and addresses)."""
    cp = f"enc+file://{installed.root}/cluster-checkpoints"
    with pytest.MonkeyPatch.context() as mp:
        for k, v in installed.env.items():
            mp.setenv(k, v)
        with StandaloneCluster(installed.home, python=installed.python, source=pyflink_home(installed.python),
                               edit_conf=True) as cluster:
            def submit(name, *flink_opts, throttle=0):
                args = ["run", "-d", *flink_opts, "-py", job["script"], "--mode", "submit", "--checkpoint-dir",
                        cp, "--out-dir", str(installed.root / name), "--records", str(RECORDS), "--keys",
                        str(KEYS), "--pad", str(PAD)] + (["--throttle-ms", str(throttle)] if throttle else [])
                out = cluster.flink(*args)
                m = re.search(r"JobID ([0-9a-f]{32})", out.stdout)
                assert out.returncode == 0 and m, out.stdout + out.stderr + cluster.logs()
                return m.group(1)

            first = submit("cluster-out1", throttle=3)
            h.wait_for(lambda: cluster.completed_checkpoints(first) >= 2 or
                       cluster.job_status(first) in ("FAILED", "FINISHED"), 180, "two checkpoints")
            assert cluster.job_status(first) == "RUNNING", cluster.job_exceptions(first)[:4000]
            # install.sh's configuration names the lib jar's checkpoint storage: a savepoint of the
            # encrypted checkpoints to a plain target is refused, nothing is written, the job runs on
            plain = installed.root / "plain-savepoints"
            r = cluster.flink("savepoint", first, f"file://{plain}")
            assert r.returncode != 0 and f"savepoint refused: its target file://{plain} is not encrypted" in \
                r.stdout + r.stderr, r.stdout + r.stderr
            assert not plain.exists() and cluster.job_status(first) == "RUNNING"
            c = cluster.flink("cancel", first)
            assert c.returncode == 0, c.stdout + c.stderr
            cluster.wait_status(first, {"CANCELED"})
            retained = h.retained_checkpoint(cluster, installed.root / "cluster-checkpoints", first)
            cluster.ensure_taskmanager()  # the Beam bug on cancel (cluster.py)
            _assert_ciphertext(installed, job, str(installed.root / "cluster-checkpoints"))
            second = submit("cluster-out2", "-s", retained)
            assert cluster.wait_status(second, {"FINISHED", "FAILED", "CANCELED"}, 240) == "FINISHED", \
                cluster.job_exceptions(second)[:4000] + cluster.logs()
    h.assert_continued(str(installed.root / "cluster-out2"), RECORDS, KEYS)
