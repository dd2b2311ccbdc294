"""``flink install --write-config``: the settings written into a Flink configuration file in place
(flat, nested or mixed YAML; Flink 1.x's flink-conf.yaml), what it prints, the derived savepoint
directory, the memory lines, the lib jar's metrics (--flink-metrics), and what it refuses."""
from __future__ import annotations

import pytest
import yaml

from heliosdb_flink_crypto.cli import main
from heliosdb_flink_crypto.errors import ConfigError
from heliosdb_flink_crypto.flink import (JOBMANAGER_METRICS_REPORTER, METERED_STATE_BACKEND, TENANT_CHECKPOINT_STORAGE,
                                         install)
from heliosdb_flink_crypto.flink.confyaml import ConfigFile, scalar
from heliosdb_flink_crypto.flink.settings import savepoint_dir_for, settings, with_entry

from stand_ins import fake_flink_home

NESTED = """\
# my cluster
jobmanager:
  rpc:
    address: jm-0   # the service
  memory:
    process:
      size: 1600m
taskmanager:
  numberOfTaskSlots: 2
  memory:
    process:
      size: 1728m   # sized for the node
env:
  java:
    opts:
      all: -XX:+UseG1GC
classloader.parent-first-patterns.additional: com.acme.
metrics.reporters: prom
state.backend.type: rocksdb
execution:
  checkpointing:
    interval: 10 s
    dir: s3://bucket/checkpoints  # old, unencrypted
pipeline.jars:
  - file:///opt/a.jar
  - file:///opt/b.jar
"""


def flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


@pytest.fixture
def home(tmp_path, monkeypatch):
    return fake_flink_home(tmp_path, monkeypatch, name="flink-2.3.0")


def test_the_parser_reads_flat_nested_and_mixed_keys_as_yaml_does(tmp_path):
    p = tmp_path / "config.yaml"
    p.write_text(NESTED)
    got = ConfigFile(str(p)).values()
    want = {k: str(v) for k, v in flat(yaml.safe_load(NESTED)).items() if not isinstance(v, list)}
    assert got == want
    assert "pipeline.jars" not in got, "a YAML list is a value this tool does not edit"


def test_write_config_edits_in_place_keeps_comments_and_reads_back_as_flink_would(home, capsys):
    (home / "conf" / "config.yaml").write_text(NESTED)
    assert main(["flink", "install", str(home), "--write-config", "--python", "/opt/heliosdb/venv/bin/python",
                 "--kms-uri", "aws-kms://alias/flink?region=eu-west-1",
                 "--checkpoint-dir", "enc+s3://bucket/flink/checkpoints", "--flink-metrics", "--python-jobs"]) == 0
    out = capsys.readouterr().out
    text = (home / "conf" / "config.yaml").read_text()
    d = flat(yaml.safe_load(text))
    assert d["execution.checkpointing.dir"] == "enc+s3://bucket/flink/checkpoints"
    assert d["execution.checkpointing.savepoint-dir"] == "enc+s3://bucket/flink/savepoints"
    assert d["execution.checkpointing.interval"] == "10 s"
    assert d["classloader.parent-first-patterns.additional"] == "com.acme.;pemja."
    assert d["plugin.classloader.parent-first-patterns.additional"] == "pemja."
    assert d["heliosdb.crypto.kms.uri"] == "aws-kms://alias/flink?region=eu-west-1"
    assert d["heliosdb.crypto.python.executable"] == "/opt/heliosdb/venv/bin/python"
    assert d["python.executable"] == d["python.client.executable"] == "/opt/heliosdb/venv/bin/python"
    assert d["taskmanager.memory.framework.off-heap.size"] == "256m"
    assert d["taskmanager.memory.process.size"] == "1856m"
    assert d["jobmanager.memory.off-heap.size"] == "256m"
    assert d["state.backend.type"] == METERED_STATE_BACKEND and d["heliosdb.crypto.state-backend"] == "rocksdb"
    assert d[f"metrics.reporter.heliosdb.factory.class"] == JOBMANAGER_METRICS_REPORTER
    assert d["metrics.reporters"] == "prom,heliosdb"
    assert d["pipeline.jars"] == ["file:///opt/a.jar", "file:///opt/b.jar"]
    # edited where they stand, comments kept, nothing left to change by hand
    assert "    dir: enc+s3://bucket/flink/checkpoints  # old, unencrypted" in text
    assert "      size: 1856m  # sized for the node" in text and "# my cluster" in text
    assert "    address: jm-0   # the service" in text
    assert "CHANGE ME" not in text and "CHANGE ME" not in out
    assert "changed execution.checkpointing.dir: s3://bucket/checkpoints -> enc+s3://bucket/flink/checkpoints" in out
    assert "set execution.checkpointing.savepoint-dir: enc+s3://bucket/flink/savepoints" in out
    assert "changed taskmanager.memory.process.size: 1728m -> 1856m (raised by 128m" in out
    assert f"(written)" in out
    # a second run changes nothing
    assert main(["flink", "install", str(home), "--write-config", "--python", "/opt/heliosdb/venv/bin/python"]) == 0
    again = capsys.readouterr().out
    assert "(unchanged):" in again and "  changed " not in again and "  set " not in again
    assert (home / "conf" / "config.yaml").read_text() == text


def test_write_config_into_a_flat_flink_conf_yaml_and_the_dry_run(home, capsys):
    legacy = home / "conf" / "flink-conf.yaml"
    legacy.write_text("taskmanager.memory.flink.size: 1g\nheliosdb.crypto.kms.uri: local:///k.json\n")
    r = install.install(str(home), write=True, dry_run=True, python_executable="/py")
    assert legacy.read_text().startswith("taskmanager.memory.flink.size: 1g\n"), "a dry run writes nothing"
    assert not (home / "plugins" / "heliosdb-crypto").exists()
    assert "changed taskmanager.memory.flink.size: 1g -> 1152m (raised by 128m, the off-heap added: Flink takes " \
           "framework off-heap out of this total)" in r.changes
    assert any("execution.checkpointing.dir is not set" in w for w in r.warnings)
    install.install(str(home), write=True, python_executable="/py", checkpoint_dir="enc+file:///ckpt")
    lines = legacy.read_text().splitlines()
    assert lines[:2] == ["taskmanager.memory.flink.size: 1152m", "heliosdb.crypto.kms.uri: local:///k.json"]
    assert "execution.checkpointing.savepoint-dir: enc+file:///savepoints" in lines
    assert not (home / "conf" / "config.yaml").exists()


def test_write_config_without_a_kms_uri_is_refused_before_anything_is_copied(home, capsys):
    assert main(["flink", "install", str(home), "--write-config", "--checkpoint-dir", "enc+file:///c"]) == 2
    assert "heliosdb.crypto.kms.uri" in capsys.readouterr().err
    assert not (home / "plugins" / "heliosdb-crypto").exists() and not (home / "conf" / "config.yaml").exists()


def test_keys_written_as_lists_are_not_edited_and_say_so(home):
    conf = home / "conf" / "config.yaml"
    conf.write_text("plugin.classloader.parent-first-patterns.additional:\n  - com.acme.\n")
    r = install.install(str(home), write=True, python_executable="/py", kms_uri="local:///k")
    assert any("plugin.classloader.parent-first-patterns.additional" in w and "by hand" in w for w in r.warnings)
    assert conf.read_text().startswith("plugin.classloader.parent-first-patterns.additional:\n  - com.acme.\n")
    assert flat(yaml.safe_load(conf.read_text()))["classloader.parent-first-patterns.additional"] == "pemja."


def test_print_mode_derives_the_savepoint_dir_and_has_no_change_me_when_flags_are_given(capsys):
    assert main(["flink", "install", "--print-only", "--kms-uri", "local:///k", "--checkpoint-dir",
                 "enc+s3://b/flink/checkpoints", "--python", "/py"]) == 0
    out = capsys.readouterr().out
    assert "CHANGE ME" not in out
    assert "\nexecution.checkpointing.savepoint-dir: enc+s3://b/flink/savepoints  #" in out
    assert "\ntaskmanager.memory.framework.off-heap.size: 256m  #" in out
    d = yaml.safe_load(out)
    assert d["execution.checkpointing.savepoint-dir"] == "enc+s3://b/flink/savepoints"
    assert main(["flink", "install", "--print-only"]) == 0
    assert out.count("CHANGE ME") == 0 and capsys.readouterr().out.count("CHANGE ME") == 2


def test_encrypted_checkpoints_get_the_lib_jars_storage_unless_the_cluster_names_another(home, capsys):
    """The storage that refuses a savepoint to a target without enc+ (TenantCheckpointStorageITCase,
    test_wheel_e2e) is written by default; a cluster's own choice is kept, with a note saying what it
    gives up; checkpoints that are not encrypted get nothing."""
    r = install.install(str(home), write=True, python_executable="/py", kms_uri="local:///k",
                        checkpoint_dir="enc+file:///c")
    assert f"set execution.checkpointing.storage: {TENANT_CHECKPOINT_STORAGE}" in r.changes
    conf = flat(yaml.safe_load((home / "conf" / "config.yaml").read_text()))
    assert conf["execution.checkpointing.storage"] == TENANT_CHECKPOINT_STORAGE
    base = {"heliosdb.crypto.kms.uri": "local:///k", "execution.checkpointing.dir": "enc+file:///c"}
    for key in ("execution.checkpointing.storage", "state.checkpoint-storage"):
        wanted, _ = settings({**base, key: "filesystem"}, "/py")
        assert {s.key: s.value for s in wanted}["execution.checkpointing.storage"] == TENANT_CHECKPOINT_STORAGE
        wanted, notes = settings({**base, key: "jobmanager"}, "/py")
        assert not any(s.key == "execution.checkpointing.storage" for s in wanted)
        assert any(n.startswith(f"{key} is jobmanager: savepoint targets are not checked") for n in notes), notes
    wanted, _ = settings({**base, "execution.checkpointing.dir": "file:///c"}, "/py")
    assert not any(s.key == "execution.checkpointing.storage" for s in wanted)
    assert main(["flink", "install", "--print-only", "--kms-uri", "local:///k", "--checkpoint-dir", "enc+s3://b/c",
                 "--python", "/py"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["execution.checkpointing.storage"] == TENANT_CHECKPOINT_STORAGE


@pytest.mark.parametrize("cp, sp", [("enc+s3://b/flink/checkpoints", "enc+s3://b/flink/savepoints"),
                                    ("enc+s3://b/checkpoints", "enc+s3://b/savepoints"),
                                    ("enc+s3://b", "enc+s3://b/savepoints"),
                                    ("enc+file:///data/ckpt/", "enc+file:///data/savepoints"),
                                    ("/data/ckpt", "/data/savepoints")])
def test_savepoint_dir_is_next_to_the_checkpoint_dir(cp, sp):
    assert savepoint_dir_for(cp) == sp


def test_list_values_and_scalars():
    assert with_entry(None, "pemja.") == "pemja."
    assert with_entry("a.;pemja.", "pemja.") is None
    assert with_entry("a.,b.", "pemja.") == "a.,b.;pemja."
    assert with_entry("[a., 'b.']", "pemja.") == "[a., b., pemja.]" and with_entry("[pemja.]", "pemja.") is None
    for v in ("pemja.", "local:///etc/k.json", "enc+s3://b/c", "256m", "a #b", "x: y", "#x", "", "true", "-1",
              "it's", 'say "hi"'):
        assert yaml.safe_load(f"k: {scalar(v)}")["k"] in (v, int(v) if v.lstrip("-").isdigit() else v)


def test_quoted_values_and_block_scalars(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text('a: "x # y"  # c\nb: \'it\'\'s\'\nc: |\n  d: 1\n  e: 2\nf:\n  - g: 1\n    h: 2\ni: 3\n')
    c = ConfigFile(str(p))
    assert c.values() == {"a": "x # y", "b": "it's", "c": "|", "i": "3"}
    c.set("a", "z")
    c.set("i", "4")
    c.write()
    d = yaml.safe_load(p.read_text())
    assert d["a"] == "z" and d["i"] == 4 and d["c"] == "d: 1\ne: 2\n" and d["f"] == [{"g": 1, "h": 2}]
    assert p.read_text().startswith("a: z  # c\n")


def test_settings_keep_larger_memory_and_name_what_they_cannot_read():
    wanted, notes = settings({"taskmanager.memory.framework.off-heap.size": "512m",
                              "jobmanager.memory.off-heap.size": "1g", "heliosdb.crypto.kms.uri": "local:///k",
                              "execution.checkpointing.dir": "enc+file:///c",
                              "execution.checkpointing.savepoint-dir": "file:///s"}, "/py")
    assert not any("memory" in s.key for s in wanted)
    assert any("execution.checkpointing.savepoint-dir is file:///s: Flink writes savepoints there unencrypted" in n
               and "point it at enc+file:///s" in n for n in notes)
    wanted, notes = settings({"taskmanager.memory.process.size": "lots", "high-availability.storageDir": "s3://ha",
                              "high-availability.type": "kubernetes"}, "/py", checkpoint_dir="enc+s3://b/c")
    assert any("'lots' is not a size" in n for n in notes)
    assert any(n.startswith("high-availability.storageDir is s3://ha: ") and "enc+s3://ha" in n for n in notes)
    with pytest.raises(ConfigError, match="kms.uri"):
        install.write_config(ConfigFile("/nonexistent/config.yaml"), "/py")
