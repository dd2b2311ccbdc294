"""The Java shim's CryptoOptions mirrors config.OPTIONS exactly (style principle 6)."""
import os
import re

import pytest

from heliosdb_flink_crypto import config
from heliosdb_flink_crypto.flink import options_java

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JAVA = os.path.join(ROOT, options_java.JAVA_FILE)
DECL = re.compile(r'public static final ConfigOption<(\w+)> (\w+) =\s*ConfigOptions\.key\("([^"]+)"\)\s*'
                  r'\.(\w+)Type\(\)\.(noDefaultValue\(\)|defaultValue\(((?:[^()"]|"(?:[^"\\]|\\.)*"|\([^()]*\))*)\))')


def java_options():
    src = open(JAVA).read()
    return [(m.group(3), m.group(4), m.group(6)) for m in DECL.finditer(src)], src


def test_java_declares_every_python_option_in_order_and_nothing_else():
    declared, src = java_options()
    assert [k for k, _, _ in declared] == [o.key for o in config.OPTIONS]
    assert src.count("ConfigOptions.key(") == len(config.OPTIONS)


def test_types_and_defaults_agree():
    declared, _ = java_options()
    java_type = {"int": "int", "bool": "boolean", "size": "memory", "duration": "duration"}
    for (key, jtype, default), o in zip(declared, config.OPTIONS):
        assert jtype == java_type.get(o.type, "string"), key
        if o.default is None:
            assert default is None, key
            continue
        if jtype == "memory":  # MemorySize.parse("256kb"): the text Flink and Python both read
            assert config.parse_size(re.fullmatch(r'MemorySize\.parse\("([^"]+)"\)', default).group(1)) == o.default, key
            continue
        if jtype == "duration":  # Duration.ofSeconds(3600)
            unit, n = re.fullmatch(r"Duration\.of(Seconds|Millis)\((\d+)\)", default).groups()
            assert int(n) / (1000 if unit == "Millis" else 1) == o.default, key
            continue
        text = default.strip('"').replace('\\"', '"').replace("\\\\", "\\")
        if jtype == "string" and text:
            assert o.parse(text) == o.default, f"{key}: Java default {text!r} parses to another value"
        elif jtype == "int":
            assert int(text) == o.default, key
        elif jtype == "boolean":
            assert text == str(o.default).lower(), key


def test_sizes_and_durations_as_flink_writes_them_parse_in_python():
    """A typed option set in Java reaches Python as Flink's Configuration writes it (MemorySize and
    TimeUtils spellings): config.py reads every one."""
    assert [config.parse_size(v) for v in ("128 bytes", "256 kb", "64 mb", "1 gb", "1 tb", "1mebibytes")] == \
        [128, 256 << 10, 64 << 20, 1 << 30, 1 << 40, 1 << 20]
    assert [config.parse_duration(v) for v in ("500 ms", "5 min", "1 h", "30 d", "2 sec", "3 µs")] == \
        [0.5, 300, 3600, 30 * 86400, 2, 3e-6]
    for bad in ("1 xb", "١٢", "1.5 kb"):
        with pytest.raises(ValueError, match="is not a size"):
            config.parse_size(bad)
    with pytest.raises(ValueError, match="is not a duration"):
        config.parse_duration("١٢ s")
    assert options_java._size_text(100) == "100b" and options_java._java_duration(0.25) == "Duration.ofMillis(250)"


def test_the_options_page_is_generated_from_the_options():
    """docs/configuration.md lists every option with its type, default and description; regenerate it
    with ``python -m heliosdb_flink_crypto.flink.options_doc`` after changing config.py."""
    from heliosdb_flink_crypto.flink import options_doc
    with open(os.path.join(ROOT, options_doc.DOC_FILE), encoding="utf-8") as f:
        page = f.read()
    assert page == options_doc.render(), "docs/configuration.md is stale: python -m heliosdb_flink_crypto.flink.options_doc"
    for o in config.OPTIONS:
        assert f"| `{o.key}` | {o.type} |" in page
    assert "| `heliosdb.crypto.segment-size` | size | `1mb` |" in page


def test_options_page_check_mode(tmp_path, monkeypatch, capsys):
    from heliosdb_flink_crypto.flink import options_doc
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / options_doc.DOC_FILE).write_text("old")
    assert options_doc.main(["--check"]) == 1 and "stale" in capsys.readouterr().err
    assert options_doc.main([]) == 0 and options_doc.main(["--check"]) == 0
