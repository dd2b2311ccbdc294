"""A standalone Flink cluster (JobManager and TaskManager as separate processes) for tests.

Built from the distribution PyFlink ships under ``site-packages/pyflink``: a copy in a temp dir
(bin/ and plugins/ copied, jars of lib/ and opt/ linked), its own conf/config.yaml, every port
on 127.0.0.1, PID and log files inside the copy. The processes are started in the foreground as
children of this process (so they are ours to stop) and are always stopped by :meth:`stop`.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pyflink

from heliosdb_flink_crypto.flink.local import MALLOC_ENV

PYFLINK_HOME = os.path.dirname(os.path.abspath(pyflink.__file__))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pyflink_home(python: str) -> str:
    """The pyflink package folder of another interpreter (e.g. a venv with another PyFlink)."""
    return subprocess.run([python, "-c", "import os, pyflink; print(os.path.dirname(os.path.abspath(pyflink.__file__)))"],
                          capture_output=True, text=True, check=True).stdout.strip()


def make_distribution(dest: str, source: str = PYFLINK_HOME, with_config: bool = False) -> str:
    """A private FLINK_HOME at ``dest`` from the distribution PyFlink ships at ``source``: bin/,
    plugins/ copied, lib/ and opt/ jars symlinked; conf/ copied but for config.yaml (``with_config``:
    that too, the nested YAML Flink ships)."""
    os.makedirs(dest)
    shutil.copytree(os.path.join(source, "bin"), os.path.join(dest, "bin"))
    shutil.copytree(os.path.join(source, "plugins"), os.path.join(dest, "plugins"))
    for sub in ("lib", "opt"):
        os.makedirs(os.path.join(dest, sub))
        for name in os.listdir(os.path.join(source, sub)):
            os.symlink(os.path.join(source, sub, name), os.path.join(dest, sub, name))
    os.makedirs(os.path.join(dest, "conf"))
    for name in os.listdir(os.path.join(source, "conf")):
        if name != "config.yaml" or with_config:
            shutil.copy(os.path.join(source, "conf", name), os.path.join(dest, "conf", name))
    os.makedirs(os.path.join(dest, "log"))
    return dest


def _yaml(conf: dict[str, str]) -> str:
    # flat "key: value" lines are valid config.yaml (Flink 2 reads dotted keys as nested paths)
    return "".join(f"{k}: {json.dumps(str(v))}\n" for k, v in conf.items())


class StandaloneCluster:
    def __init__(self, home: str, extra_conf: dict[str, str] | None = None, slots: int = 1,
                 extra_yaml: str = "", jm_conf: dict[str, str] | None = None,
                 tm_conf: dict[str, str] | None = None, python: str = sys.executable,
                 source: str = PYFLINK_HOME, edit_conf: bool = False):
        """``python``: the interpreter of the jobs and clients (a venv with ``source``'s PyFlink);
        ``edit_conf``: make this cluster's settings in the conf/config.yaml already there (e.g. one
        ``flink install --write-config`` wrote) instead of writing a new one."""
        self.home = home
        self.edit_conf = edit_conf
        self.python = python
        self.extra_yaml = extra_yaml  # e.g. the lines `heliosdb-flink-crypto flink install` prints
        # per-process options (`-D key=value` on the start script: e.g. a port each for the JobManager
        # and the TaskManager where one config.yaml would make them clash); they win over config.yaml
        self.process_conf = {"jobmanager.sh": dict(jm_conf or {}), "taskmanager.sh": dict(tm_conf or {})}
        self.rest_port = free_port()
        self.rpc_port = free_port()
        self.procs: list[subprocess.Popen] = []
        java_opts = _java_opts(source)
        self.conf = {
            "env.java.opts.all": java_opts,
            "env.pid.dir": os.path.join(home, "pid"),
            "env.log.dir": os.path.join(home, "log"),
            "io.tmp.dirs": os.path.join(home, "tmp"),  # the processes' working folders go with the cluster's
            "jobmanager.rpc.address": "127.0.0.1",
            "jobmanager.rpc.port": self.rpc_port,
            "jobmanager.bind-host": "127.0.0.1",
            "jobmanager.memory.process.size": "1024m",
            "taskmanager.host": "127.0.0.1",
            "taskmanager.bind-host": "127.0.0.1",
            "taskmanager.numberOfTaskSlots": slots,
            "taskmanager.memory.process.size": "1600m",
            "heartbeat.interval": "2000",
            "heartbeat.timeout": "10000",
            # leaves room for the framework off-heap `flink install` recommends for the shim's buffers
            "taskmanager.memory.managed.size": "128m",
            "rest.address": "127.0.0.1",
            "rest.bind-address": "127.0.0.1",
            "rest.port": self.rest_port,
            "blob.server.port": "0",
            "parallelism.default": 1,
            "python.executable": python,
            "python.client.executable": python,
            **(extra_conf or {}),
        }

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    def env(self) -> dict[str, str]:
        e = {**MALLOC_ENV, **os.environ}  # as docs/flink.md recommends for a cluster's processes
        e.update(FLINK_HOME=self.home, FLINK_CONF_DIR=os.path.join(self.home, "conf"),
                 FLINK_PID_DIR=os.path.join(self.home, "pid"), FLINK_LOG_DIR=os.path.join(self.home, "log"),
                 PYFLINK_CLIENT_EXECUTABLE=self.python)
        e["PATH"] = os.path.dirname(self.python) + os.pathsep + e.get("PATH", "")
        return e

    def start(self, timeout: float = 120) -> "StandaloneCluster":
        self.launch()
        return self.wait_ready(timeout)

    def launch(self) -> None:
        """Write conf/config.yaml and start both processes without waiting (clients started
        meanwhile retry until the JobManager answers; jobs wait for the TaskManager's slots)."""
        for sub in ("pid", "tmp"):
            os.makedirs(os.path.join(self.home, sub), exist_ok=True)
        self.write_conf()
        for script in ("jobmanager.sh", "taskmanager.sh"):
            self._spawn(script)

    def write_conf(self) -> None:
        path = os.path.join(self.home, "conf", "config.yaml")
        if self.edit_conf:
            from heliosdb_flink_crypto.flink.confyaml import ConfigFile
            conf = ConfigFile(path)
            for k, v in self.conf.items():
                conf.set(k, str(v))
            conf.write()
            return
        with open(path, "w") as f:
            f.write(_yaml(self.conf) + self.extra_yaml)

    def wait_ready(self, timeout: float = 120) -> "StandaloneCluster":
        """Wait until a TaskManager is registered (raises if a process exits)."""
        return self._wait_for_taskmanager(timeout)

    def _spawn(self, script: str) -> None:
        log = open(os.path.join(self.home, "log", script + ".console"), "ab")
        dyn = [a for k, v in self.process_conf[script].items() for a in ("-D", f"{k}={v}")]
        self.procs.append(subprocess.Popen([os.path.join(self.home, "bin", script), "start-foreground", *dyn],
                                           env=self.env(), stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True))

    def ensure_taskmanager(self, settle: float = 5, timeout: float = 120) -> bool:
        """Start a new TaskManager if the last one exits within ``settle`` seconds; True if it had
        to. (Cancelling a PyFlink job can kill its TaskManager: Beam's DefaultJobBundleFactory.close
        fails with "Reference count must not be negative" in the task's cleanup, which Flink treats
        as fatal. The short heartbeat timeout lets the JobManager drop the dead one quickly.)"""
        deadline = time.monotonic() + settle
        while self.procs[-1].poll() is None and time.monotonic() < deadline:
            time.sleep(0.25)
        if self.procs[-1].poll() is None:
            return False
        self.procs.pop()
        self._spawn("taskmanager.sh")
        self._wait_for_taskmanager(timeout)
        return True

    def _wait_for_taskmanager(self, timeout: float) -> "StandaloneCluster":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"{p.args[0]} exited with {p.returncode}; logs:\n{self.logs()}")
            try:
                if self.get("/taskmanagers")["taskmanagers"]:
                    return self
            except (OSError, ValueError):
                pass
            time.sleep(0.5)
        raise TimeoutError(f"cluster not up within {timeout}s; logs:\n{self.logs()}")

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)
        self.procs = []

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()

    # -- REST ----------------------------------------------------------------------
    def get(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=10) as r:
            return json.load(r)

    def patch(self, path: str) -> None:
        req = urllib.request.Request(self.url + path, method="PATCH")
        with urllib.request.urlopen(req, timeout=10):
            pass

    def job_status(self, job_id: str) -> str:
        return self.get(f"/jobs/{job_id}")["state"]

    def wait_status(self, job_id: str, states: set[str], timeout: float = 180) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self.job_status(job_id)
            if s in states:
                return s
            time.sleep(0.5)
        raise TimeoutError(f"job {job_id} not in {states} within {timeout}s (last {s})")

    def completed_checkpoints(self, job_id: str) -> int:
        return self.get(f"/jobs/{job_id}/checkpoints")["counts"]["completed"]

    def taskmanager_ids(self) -> list[str]:
        return [tm["id"] for tm in self.get("/taskmanagers")["taskmanagers"]]

    def taskmanager_metrics(self, tm_id: str, names: list[str] | None = None) -> dict[str, str]:
        """Flink metric id -> value of one TaskManager's metric group (REST); all ids when ``names``
        is None (the REST API then lists ids without values)."""
        if names is None:
            return {m["id"]: m.get("value") for m in self.get(f"/taskmanagers/{tm_id}/metrics")}
        q = urllib.parse.quote(",".join(names), safe=",")
        return {m["id"]: m.get("value") for m in self.get(f"/taskmanagers/{tm_id}/metrics?get={q}")}

    def job_exceptions(self, job_id: str) -> str:
        """The job's root exception and history as one text (REST /jobs/<id>/exceptions)."""
        return json.dumps(self.get(f"/jobs/{job_id}/exceptions"))

    def flink(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run bin/flink (the CLI frontend) against this cluster."""
        return subprocess.run([os.path.join(self.home, "bin", "flink"), *args], env=self.env(),
                              capture_output=True, text=True, timeout=timeout)

    def logs(self, tail: int | None = 60, part: str = "") -> str:
        """The last ``tail`` lines (None: all) of each log file whose name holds ``part`` (e.g.
        "taskexecutor": the TaskManagers', where a restore's failures are logged with their causes)."""
        out = []
        logdir = os.path.join(self.home, "log")
        for name in sorted(os.listdir(logdir)):
            if part not in name:
                continue
            with open(os.path.join(logdir, name), errors="replace") as f:
                lines = f.readlines()
            out.append(f"== {name}\n" + "".join(lines[-tail:] if tail else lines))
        return "\n".join(out)


def scrape(url: str, timeout: float = 5) -> str:
    """The text an HTTP endpoint (a Prometheus /metrics) serves; "" if it does not answer."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.read().decode()
    except OSError:
        return ""


def prom_value(text: str, name: str, **labels) -> float:
    """Sum of the samples of ``name`` in Prometheus text whose labels include ``labels``."""
    total = 0.0
    for m in re.finditer(rf"^{re.escape(name)}(?:\{{([^}}]*)\}})? (\S+)$", text, re.M):
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(m.group(2))
    return total


def _java_opts(source: str) -> str:
    """The add-opens list of PyFlink's shipped config.yaml (Flink needs it on Java 17)."""
    with open(os.path.join(source, "conf", "config.yaml")) as f:
        for line in f:
            if line.strip().startswith("all:"):
                return line.split(":", 1)[1].strip()
    return ""
