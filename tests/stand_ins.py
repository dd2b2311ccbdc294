"""Stand-ins shared by the unit tests of ``flink install`` (tests/test_flink_*.py)."""
from __future__ import annotations


def fake_flink_home(tmp_path, monkeypatch, name: str = "flink", python_in: str = "opt", lib_jar: bool = False):
    """The folders of a Flink 2.3.0 distribution with stand-in jars (``lib/flink-dist-2.3.0.jar``,
    ``<python_in>/flink-python-2.3.0.jar``); ``HELIOSDB_SHIM_JAR`` (and with ``lib_jar``
    ``HELIOSDB_LIB_JAR``) point at stand-ins holding ``PK-<name>``."""
    home = tmp_path / name
    for d in ("lib", "opt", "conf", "plugins"):
        (home / d).mkdir(parents=True)
    (home / "lib" / "flink-dist-2.3.0.jar").write_bytes(b"PK")
    (home / python_in / "flink-python-2.3.0.jar").write_bytes(b"PK-python")
    from heliosdb_flink_crypto.flink import JAR_NAME, LIB_JAR_NAME
    for jar, env in ((JAR_NAME, "HELIOSDB_SHIM_JAR"), (LIB_JAR_NAME, "HELIOSDB_LIB_JAR"))[:2 if lib_jar else 1]:
        (tmp_path / jar).write_bytes(b"PK-" + jar.encode())
        monkeypatch.setenv(env, str(tmp_path / jar))
    return home
