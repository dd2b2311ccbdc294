"""Release packaging: the Flink lines the package supports, the jars built for each and how the
right one is picked, the version command, and the wheel build's refusal to make a wheel without jars.

(The wheel itself, built and installed into a fresh venv, runs in tests/flink/test_wheel_e2e.py.)
"""
from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET

import pytest

from heliosdb_flink_crypto import __version__
from heliosdb_flink_crypto.cli import main
from heliosdb_flink_crypto.errors import ConfigError, UnsupportedFlinkError
from heliosdb_flink_crypto.flink import JAR_NAME, LIB_JAR_NAME, install, jar_path, lib_jar_path, local, versions
from heliosdb_flink_crypto.format import VERSION

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINE = {x.line: x for x in versions.LINES}


def _pom():
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    root = ET.parse(os.path.join(ROOT, "java-shim", "pom.xml")).getroot()
    props = {p.tag.split("}")[1]: p.text for p in root.find("m:properties", ns)}
    profiles = {}
    for prof in root.findall("m:profiles/m:profile", ns):
        mine = dict(props)
        own = prof.find("m:properties", ns)
        mine.update({p.tag.split("}")[1]: p.text for p in (own if own is not None else [])})
        profiles[prof.find("m:id", ns).text] = mine
    return root.find("m:version", ns).text, profiles


def test_every_line_has_its_maven_profile_build_and_extra():
    version, profiles = _pom()
    assert version == __version__, "java-shim/pom.xml and the package must carry one version"
    assert set(profiles) == {f"flink-{x.line}" for x in versions.LINES}
    for x in versions.LINES:
        p = profiles[f"flink-{x.line}"]
        assert (p["flink.line"], p["flink.version"], p["pemja.version"]) == (x.line, x.first, x.pemja)
    setup_py = open(os.path.join(ROOT, "setup.py")).read()
    assert ast.literal_eval(re.search(r"^LINES = (\(.*\))$", setup_py, re.M).group(1)) == \
        tuple(x.line for x in versions.LINES)
    script = open(os.path.join(ROOT, "scripts", "build-shim.sh")).read()
    assert re.search(r'^ALL_LINES="(.*)"$', script, re.M).group(1).split() == [x.line for x in versions.LINES]
    cfg = open(os.path.join(ROOT, "setup.cfg")).read()
    for x in versions.LINES:
        major, minor = x.line.split(".")
        assert f"\n{x.extra} = apache-flink>={x.first},<{major}.{int(minor) + 1}\n" in cfg


@pytest.mark.parametrize("version, line", [("1.20.3", "1.20"), ("1.20.5", "1.20"), ("2.3.0", "2.3"),
                                           ("2.3.2", "2.3"), ("2.3-SNAPSHOT", "2.3")])
def test_a_supported_version_maps_to_its_line(version, line):
    assert versions.line_for(version, "here").line == line


@pytest.mark.parametrize("version", ["1.20.2", "1.19.1", "2.2.0", "2.4.0", "3.0.0", "", None, "<unknown>"])
def test_an_unsupported_flink_is_refused_naming_the_supported_lines(version):
    with pytest.raises(UnsupportedFlinkError) as e:
        versions.line_for(version, "/opt/flink/lib/flink-dist-*.jar")
    assert str(e.value).startswith("/opt/flink/lib/flink-dist-*.jar: ")
    assert str(e.value).endswith("supported: Flink 2.3 (2.3.0 or a later 2.3.x), "
                                 "Flink 1.20 (1.20.3 or a later 1.20.x)")


def test_each_lines_jars_are_built_for_it():
    for x in versions.LINES:
        for jar in (jar_path(x), lib_jar_path(x)):
            info = versions.jar_info(jar)
            assert (info["flink.line"], info["version"], info["pemja.version"]) == (x.line, __version__, x.pemja), jar


def _distribution(tmp_path, version: str):
    home = tmp_path / f"flink-{version}"
    for d in ("lib", "opt", "conf", "plugins"):
        (home / d).mkdir(parents=True)
    (home / "lib" / f"flink-dist-{version}.jar").write_bytes(b"PK")
    (home / "opt" / f"flink-python-{version}.jar").write_bytes(b"PK")
    return home


@pytest.mark.parametrize("version, line", [("1.20.5", "1.20"), ("2.3.0", "2.3")])
def test_flink_install_installs_the_jars_of_the_distributions_line(tmp_path, capsys, version, line):
    home = _distribution(tmp_path, version)
    assert main(["flink", "install", str(home)]) == 0
    assert f"Flink {version}: the jars built for Flink {line}" in capsys.readouterr().err
    with open(jar_path(LINE[line]), "rb") as f:
        assert (home / "plugins" / "heliosdb-crypto" / JAR_NAME).read_bytes() == f.read()
    assert versions.jar_info(str(home / "lib" / LIB_JAR_NAME))["flink.line"] == line


def test_flink_install_refuses_an_unsupported_flink_and_a_jar_of_another_line(tmp_path, capsys):
    home = _distribution(tmp_path, "1.19.1")
    assert main(["flink", "install", str(home)]) == 2
    err = capsys.readouterr().err
    assert "Flink 1.19.1 is not supported; supported: Flink 2.3" in err and "Flink 1.20 (1.20.3" in err
    assert not (home / "plugins" / "heliosdb-crypto").exists() and not (home / "lib" / LIB_JAR_NAME).exists()
    home = _distribution(tmp_path, "1.20.4")
    other = jar_path(LINE["2.3"])
    with pytest.raises(ConfigError, match=rf"--jar: {re.escape(other)} is built for Flink 2.3, but this Flink is 1.20"):
        install.install(str(home), jar=other)
    assert main(["flink", "jar", "--flink-version", "1.20.4", "--lib"]) == 0
    assert capsys.readouterr().out.strip() == lib_jar_path(LINE["1.20"])


def test_a_gateway_started_from_flink_home_uses_that_distributions_lib_jar(tmp_path):
    home = _distribution(tmp_path, "1.20.3")
    env = {"FLINK_HOME": str(home)}
    assert local.gateway_line(env).line == "1.20"
    assert local.add_lib_jar_to_gateway_classpath(env) == lib_jar_path(LINE["1.20"])
    assert local.gateway_line({}).line == versions.line_for(versions.pyflink_version(), "").line


def test_without_pyflink_the_newest_line_is_the_default_and_an_unsupported_one_is_reported(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyflink.version", None)
    assert versions.pyflink_version() is None and versions.default_line() == versions.LINES[0]
    assert "PyFlink" not in versions.describe()
    monkeypatch.setattr(versions, "pyflink_version", lambda: "1.19.1")
    assert versions.describe().splitlines()[-1] == ("PyFlink: Flink 1.19.1 is not supported; supported: "
                                                    + versions.supported())


def test_version_prints_package_format_and_jar_versions(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == [f"heliosdb-flink-crypto {__version__}", f"file format version {VERSION}"]
    for x in versions.LINES:
        assert (f"{x}: {JAR_NAME} {__version__}, {LIB_JAR_NAME} {__version__} (compiled against pemja "
                f"{x.pemja}; pip extra [{x.extra}])") in out
    assert f"PyFlink {versions.pyflink_version()}: uses the Flink 2.3 jars" in out


# -- the wheel build refuses to make a wheel without jars ---------------------------------------------
@pytest.fixture(scope="module")
def sdist(tmp_path_factory, clean_tree) -> str:
    """The sdist of a clean checkout, unpacked."""
    tmp = tmp_path_factory.mktemp("sdist")
    r = subprocess.run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(tmp / "dist"),
                        clean_tree], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    (archive,) = (tmp / "dist").iterdir()
    with tarfile.open(archive) as t:
        names = t.getnames()
        t.extractall(tmp / "unpacked")
    top = f"heliosdb_flink_crypto-{__version__}"
    for need in ("setup.py", "java-shim/pom.xml", "scripts/build-shim.sh", "CHANGELOG.md",
                 "java-shim/src/main/java/io/heliosdb/flink/crypto/FlinkLine.java"):
        assert f"{top}/{need}" in names, need
    assert not [n for n in names if n.endswith(".jar")], "the sdist must not carry jars built elsewhere"
    return str(tmp / "unpacked" / top)


def _build_wheel(src: str, tmp_path, path: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir",
                           str(tmp_path / "wheels"), src], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PATH=path))


def test_a_wheel_build_without_maven_fails_naming_what_is_missing(sdist, tmp_path):
    tools = tmp_path / "bin"  # java, but no mvn
    tools.mkdir()
    os.symlink(shutil.which("java"), tools / "java")
    r = _build_wheel(sdist, tmp_path, f"{tools}{os.pathsep}{os.path.dirname(sys.executable)}")
    assert r.returncode != 0
    assert "heliosdb-flink-crypto: cannot build the wheel: mvn not found on PATH" in r.stdout + r.stderr, r.stderr
    assert not (tmp_path / "wheels").exists() or not os.listdir(tmp_path / "wheels")


def test_a_wheel_build_from_a_tree_without_the_java_sources_fails(sdist, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(sdist, src)
    shutil.rmtree(src / "java-shim")
    r = _build_wheel(str(src), tmp_path, os.environ["PATH"])
    assert r.returncode != 0
    assert "this source tree has no java-shim/pom.xml or scripts/build-shim.sh" in r.stdout + r.stderr, r.stderr
    assert not (tmp_path / "wheels").exists() or not os.listdir(tmp_path / "wheels")
