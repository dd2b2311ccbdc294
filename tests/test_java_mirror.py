"""The Java shim's generated files (CryptoOptions, FormatConstants, Schemes and its services list) are
current, and the Java read back holds exactly what the Python declarations say: format/ is the one
place the format is declared, flink.SCHEMES the one place the schemes are."""
import os
import re
import zipfile

from heliosdb_flink_crypto.flink import SCHEMES, format_java, java_mirror
from heliosdb_flink_crypto.format import header, layout

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "java-shim", "src", "main", "java", "io", "heliosdb", "flink", "crypto")


def read(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


def java_constants(src):
    return {m.group(2): int(m.group(3)) for m in re.finditer(r"static final (int|long) (\w+) = (\d+)L?;", src)}


def test_every_generated_file_is_current():
    assert java_mirror.main(["--root", ROOT, "--check"]) == 0, "run: python -m heliosdb_flink_crypto.flink.java_mirror"


def test_generator_writes_every_file_and_names_a_stale_one(tmp_path, capsys):
    assert java_mirror.main(["--root", str(tmp_path), "--check"]) == 1
    err = capsys.readouterr().err
    assert all(f"{rel} is stale" in err for rel in java_mirror.FILES)
    assert java_mirror.main(["--root", str(tmp_path)]) == 0
    for rel in java_mirror.FILES:
        assert (tmp_path / rel).read_text() == read(rel)
    assert java_mirror.main(["--root", str(tmp_path), "--check"]) == 0
    (tmp_path / java_mirror.SERVICES_FILE).write_text("io.heliosdb.flink.crypto.Schemes$EncFile\n")
    assert java_mirror.main(["--root", str(tmp_path), "--check"]) == 1
    assert capsys.readouterr().err.count("is stale") == 1


def test_java_format_constants_are_formats_values():
    """Read back from the Java source, not from the generator: a hand edit or a stale file fails here."""
    got = java_constants(read(format_java.JAVA_FILE))
    want = {"PREFIX_LEN": header.PREFIX_LEN, "VERSION_1": header.VERSION_1, "VERSION": header.VERSION,
            "SUITE_AES_GCM": header.SUITE_AES_GCM, "SUITE_AES_CBC_HMAC": header.SUITE_AES_CBC_HMAC,
            "OVERHEAD_AES_GCM": layout.overhead(header.SUITE_AES_GCM),
            "OVERHEAD_AES_CBC_HMAC": layout.overhead(header.SUITE_AES_CBC_HMAC),
            "MIN_SEGMENT_SIZE": header.MIN_SEGMENT_SIZE, "MAX_SEGMENT_SIZE": header.MAX_SEGMENT_SIZE,
            "SEGMENT_ALIGN": header.SEGMENT_ALIGN, "MAX_HEADER_LEN": header.MAX_HEADER_LEN,
            "MIN_HEADER_LEN_V1": header.min_header_length(1), "MIN_HEADER_LEN": header.min_header_length(2),
            "MAX_NAME": header.MAX_NAME, "MAX_SEGMENTS": layout.MAX_SEGMENTS}
    assert {k: got[k] for k in want} == want
    assert 'MAGIC = "HFCE"' in read(format_java.JAVA_FILE) and header.MAGIC == b"HFCE"


def test_java_prefix_offsets_are_where_the_format_puts_the_fields():
    """Each offset, applied to a real prefix, reads back the field parse_prefix reads."""
    got = java_constants(read(format_java.JAVA_FILE))
    raw = header.PREFIX.pack(header.MAGIC, header.VERSION, header.SUITE_AES_CBC_HMAC, 0, 300, 4096)
    assert raw[got["VERSION_OFFSET"]] == header.VERSION
    assert raw[got["SUITE_OFFSET"]] == header.SUITE_AES_CBC_HMAC
    assert raw[got["FLAGS_OFFSET"]:got["FLAGS_OFFSET"] + 2] == b"\0\0"
    assert int.from_bytes(raw[got["HEADER_LENGTH_OFFSET"]:][:4], "big") == 300 == header.declared_length(raw)
    assert int.from_bytes(raw[got["SEGMENT_SIZE_OFFSET"]:][:4], "big") == 4096


def test_segment_layout_has_no_format_number_of_its_own():
    """SegmentLayout takes every format number from FormatConstants: no constant, no literal 16/48/HFCE."""
    src = read(os.path.join(PACKAGE, "SegmentLayout.java"))
    code = re.sub(r"/\*.*?\*/|//[^\n]*", "", src, flags=re.S)
    assert not re.search(r"static final (int|long)", code)
    assert not re.search(r"\b(16|48|64|1024)\b|'H'|\"HFCE\"", code.replace("<< 16", "")), \
        "a format number in SegmentLayout: add it to format/ and regenerate FormatConstants"


def test_java_schemes_and_services_are_pythons():
    src = read(java_mirror.SCHEMES_FILE)
    names = re.search(r"NAMES = Collections\.unmodifiableList\(Arrays\.asList\(([^;]*)\)\);", src).group(1)
    assert re.findall(r'"([^"]+)"', names) == list(SCHEMES)
    assert re.findall(r'super\("([^"]+)"\)', src) == list(SCHEMES)
    assert read(java_mirror.SERVICES_FILE).split() == \
        [f"io.heliosdb.flink.crypto.Schemes${java_mirror.scheme_class(s)}" for s in SCHEMES]
    for s, inner in SCHEMES.items():
        assert s == "enc+" + inner and f"class {java_mirror.scheme_class(s)} extends" in src


def test_built_jar_carries_the_generated_classes_and_every_scheme():
    from heliosdb_flink_crypto.flink import jar_path
    with zipfile.ZipFile(jar_path()) as z:
        names = set(z.namelist())
        services = z.read("META-INF/services/org.apache.flink.core.fs.FileSystemFactory").decode()
    for cls in ("CryptoOptions", "FormatConstants", "Schemes", *(f"Schemes${java_mirror.scheme_class(s)}"
                                                                 for s in SCHEMES)):
        assert f"io/heliosdb/flink/crypto/{cls}.class" in names
    assert services == java_mirror.render_services()
