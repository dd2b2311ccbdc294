"""The release wheel, as a Flink user gets it.

Built from a clean checkout with ``python -m build`` (the sdist, then the wheel from the sdist: its
build runs Maven for the jars of every Flink line), then installed with ``pip install
'heliosdb_flink_crypto-*.whl[flink]'`` into a fresh venv: the base install and PyFlink, no other
extra. From there on no Maven on PATH, no clone on ``sys.path`` (every process runs in a temp
folder), no editable install:

* the CLI: ``--version`` lists the jars of both Flink lines; a keyring;
* ``heliosdb-flink-crypto flink install FLINK_HOME`` into a Flink 2.3 distribution (PyFlink's, as
  ``cluster.make_distribution`` lays it out) and into a Flink 1.20 one: each gets its line's jars;
* the smallest end-to-end PyFlink job with encrypted checkpoints, with the wheel's jars only:
  ``python job.py`` (local MiniCluster) checkpoints, is cancelled and restores exactly; the same job
  on a standalone cluster with ``flink run -py`` checkpoints, is cancelled and resumes exactly.
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
from cluster import StandaloneCluster, make_distribution, pyflink_home

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

    def __init__(self, root, wheel: str, path: str):
        self.root, self.wheel, self.path = root, wheel, path
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
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True)
    inst = Installed(root, wheel, path)
    r = inst.run(inst.python, "-m", "pip", "install", "-q", f"{wheel}[flink]", timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    return inst


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
    home = make_distribution(str(installed.root / "cluster-flink"), pyflink_home(installed.python))
    cp = f"enc+file://{installed.root}/cluster-checkpoints"
    r = installed.cli("flink", "install", home, "--kms-uri", job["kms"], "--python", installed.python,
                      "--checkpoint-dir", cp)
    assert r.returncode == 0, r.stderr
    with pytest.MonkeyPatch.context() as mp:
        for k, v in installed.env.items():
            mp.setenv(k, v)
        with StandaloneCluster(home, extra_yaml=r.stdout, python=installed.python,
                               source=pyflink_home(installed.python)) as cluster:
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
