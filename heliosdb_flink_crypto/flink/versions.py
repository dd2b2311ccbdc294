"""The Flink lines this package supports, and which jar belongs to which Flink.

Each line gets its own pair of jars (the FileSystem plugin and the lib jar), compiled against that
line's Flink and the pemja its flink-python bundles: ``java-shim/pom.xml`` has one Maven profile per
line, ``scripts/build-shim.sh`` builds them all into ``flink/jars/flink-LINE/``, and the wheel ships
them. A jar writes its line into ``heliosdb-shim.properties`` and refuses to run on another one
(``FlinkLine.java``); the Python side picks the jar from the Flink it finds first: a distribution's
``lib/flink-dist-*.jar`` (``flink install``) or the PyFlink gateway's JVM (``local.enable``).
"""
from __future__ import annotations

import glob
import os
import re
import zipfile
from dataclasses import dataclass

from ..errors import ConfigError, UnsupportedFlinkError

JARS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "jars")
PROPERTIES = "io/heliosdb/flink/crypto/heliosdb-shim.properties"


@dataclass(frozen=True)
class Line:
    line: str   # major.minor, e.g. "1.20"
    first: str  # the oldest patch release supported (the pemja its flink-python bundles is the one compiled against)
    pemja: str  # pemja version the jars are compiled against
    extra: str  # the pip extra that installs a PyFlink of this line

    def __str__(self) -> str:
        return f"Flink {self.line} ({self.first} or a later {self.line}.x)"


#: newest first; java-shim/pom.xml has a profile flink-LINE for each (tests/test_versions.py checks)
LINES = (Line("2.3", "2.3.0", "0.5.7", "flink"), Line("1.20", "1.20.3", "0.5.5", "flink120"))


def supported() -> str:
    return ", ".join(str(x) for x in LINES)


def _numbers(version: str) -> tuple[int, ...] | None:
    m = re.match(r"^(\d+)\.(\d+)(?:\.(\d+))?", version.strip())
    return tuple(int(g or 0) for g in m.groups()) if m else None


def line_for(version: str | None, where: str) -> Line:
    """The supported line ``version`` (e.g. ``1.20.3``) belongs to; UnsupportedFlinkError naming
    ``where`` the version was found and the supported lines otherwise."""
    got = _numbers(version or "")
    for x in LINES:
        if got and got[:2] == _numbers(x.line)[:2] and got >= _numbers(x.first):
            return x
    raise UnsupportedFlinkError(version, where, supported())


def pyflink_version() -> str | None:
    """The installed PyFlink's version, or None without PyFlink."""
    try:
        from pyflink.version import __version__
    except ImportError:
        return None
    return __version__


def distribution_version(home: str) -> str | None:
    """The Flink version of the distribution at ``home`` (``lib/flink-dist-VERSION.jar``), or None."""
    for jar in sorted(glob.glob(os.path.join(home, "lib", "flink-dist*.jar"))):
        m = re.search(r"-(\d+\.\d+[^-]*?)\.jar$", os.path.basename(jar))
        if m:
            return m.group(1)
    return None


def default_line() -> Line:
    """The installed PyFlink's line; the newest line without PyFlink."""
    version = pyflink_version()
    return line_for(version, "the installed PyFlink") if version else LINES[0]


def jar_file(name: str, line: Line) -> str:
    return os.path.join(JARS_DIR, f"flink-{line.line}", name)


def jar_info(path: str) -> dict[str, str]:
    """What a jar was built for (version, flink.line, flink.version, pemja.version); {} if it does not say."""
    try:
        with zipfile.ZipFile(path) as z:
            text = z.read(PROPERTIES).decode("utf-8", "replace")
    except (OSError, KeyError, zipfile.BadZipFile):
        return {}
    out = {}
    for raw in text.splitlines():
        key, sep, value = raw.partition("=")
        if sep and not raw.lstrip().startswith("#"):
            out[key.strip()] = value.strip()
    return out


def check_jar(path: str, line: Line, source: str) -> None:
    """Refuses a jar (given by ``source``: an option or variable) built for another line than ``line``."""
    built = jar_info(path).get("flink.line")
    if built and built != line.line:
        raise ConfigError(source, f"{path} is built for Flink {built}, but this Flink is {line.line}: "
                          f"use the jar built for Flink {line.line}")


def describe() -> str:
    """Package, file format and jar versions (``heliosdb-flink-crypto --version``)."""
    from .. import __version__
    from ..format import VERSION
    out = [f"heliosdb-flink-crypto {__version__}", f"file format version {VERSION}"]
    for x in LINES:
        parts = []
        for name in ("heliosdb-flink-crypto-shim.jar", "heliosdb-flink-crypto-lib.jar"):
            info = jar_info(jar_file(name, x))
            parts.append(f"{name} {info['version']}" if info else f"{name} not built")
        out.append(f"{x}: {', '.join(parts)} (compiled against pemja {x.pemja}; pip extra [{x.extra}])")
    version = pyflink_version()
    if version:
        try:
            out.append(f"PyFlink {version}: uses the Flink {line_for(version, 'PyFlink').line} jars")
        except UnsupportedFlinkError as e:
            out.append(str(e))
    return "\n".join(out)


__all__ = ["LINES", "Line", "check_jar", "default_line", "describe", "distribution_version", "jar_file",
           "jar_info", "line_for", "pyflink_version", "supported"]
