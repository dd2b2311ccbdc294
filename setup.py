"""Builds the wheel with the Java shim's jars in it (the metadata is in setup.cfg).

``build_py`` first runs ``scripts/build-shim.sh`` (Maven: one pair of jars per supported Flink line,
heliosdb_flink_crypto/flink/versions.py), so ``python -m build`` and ``pip wheel .`` make a wheel
that holds every jar. A tree that cannot build them (no java-shim/ sources, no Maven or JDK on PATH,
a failing build) stops with a message saying what is missing: never a wheel without its jars.
Editable installs skip it (``./dev setup`` builds the jars itself).
"""
import os
import shutil
import subprocess
import zipfile

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = os.path.dirname(os.path.abspath(__file__))
JARS = os.path.join(ROOT, "heliosdb_flink_crypto", "flink", "jars")
#: the lines of heliosdb_flink_crypto/flink/versions.py (tests/test_packaging.py checks they match)
LINES = ("2.3", "1.20")
NAMES = ("heliosdb-flink-crypto-shim.jar", "heliosdb-flink-crypto-lib.jar")
PROPERTIES = "io/heliosdb/flink/crypto/heliosdb-shim.properties"


def _fail(why: str) -> None:
    raise SystemExit(f"heliosdb-flink-crypto: cannot build the wheel: {why}. The wheel must hold the Java "
                     "shim's jars; build it where a JDK 11+ and Maven 3.8 are on PATH, from a source tree or "
                     "sdist with java-shim/ and scripts/build-shim.sh (`./dev dist`).")


def build_jars() -> None:
    script = os.path.join(ROOT, "scripts", "build-shim.sh")
    if not (os.path.isfile(script) and os.path.isfile(os.path.join(ROOT, "java-shim", "pom.xml"))):
        _fail("this source tree has no java-shim/pom.xml or scripts/build-shim.sh to build the jars from")
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        _fail(f"{' and '.join(missing)} not found on PATH")
    r = subprocess.run(["bash", script, *LINES], cwd=ROOT)
    if r.returncode:
        _fail(f"scripts/build-shim.sh exited with {r.returncode} (its output is above)")
    for line in LINES:
        for name in NAMES:
            path = os.path.join(JARS, f"flink-{line}", name)
            try:
                with zipfile.ZipFile(path) as z:
                    built = z.read(PROPERTIES).decode()
            except (OSError, KeyError, zipfile.BadZipFile) as e:
                _fail(f"{path}: {e}")
            if f"flink.line={line}\n" not in built:
                _fail(f"{path} is not built for Flink {line}")


class BuildPyWithJars(build_py):
    def run(self):
        if not getattr(self, "editable_mode", False):
            build_jars()
        super().run()


setup(cmdclass={"build_py": BuildPyWithJars})
