"""The shim's exception classes follow the package's error tree (ErrorKinds.java is generated with the
other Java mirrors: tests/test_java_mirror.py checks it is current)."""
import os
import re

import pytest

from heliosdb_flink_crypto import errors
from heliosdb_flink_crypto.flink import errors_java

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JAVA_DIR = os.path.dirname(os.path.join(ROOT, errors_java.JAVA_FILE))


def java_parent(name):
    src = open(os.path.join(JAVA_DIR, name + ".java")).read()
    return re.search(rf"public class {name} extends (\w+)", src).group(1)


def test_every_error_of_the_package_is_found_and_typed_by_its_nearest_mapped_ancestor():
    found = {c.__name__: c for c in errors_java.error_classes()}
    # defined in errors.py and elsewhere in the package (the lib's tenant guard, the tenant router)
    for name in ("AuthenticationError", "MisplacedFileError", "KmsUnavailableError", "MetadataFormatError",
                 "TenantMismatchError", "TenantRestoreError", "ConfigError"):
        assert name in found
    assert set(errors_java.JAVA_CLASSES) <= set(found), "a mapped class the package does not define"
    assert errors_java.java_class(found["KmsAccessDeniedError"]) == "KmsException"
    assert errors_java.java_class(found["MetadataFormatError"]) == "FormatException"
    assert errors_java.java_class(errors.NotRegularFileError) == "CryptoIOException"
    with pytest.raises(ValueError, match="no HeliosCryptoError"):
        errors_java.java_class(ValueError)


def test_java_classes_extend_what_their_python_classes_extend():
    """AuthenticationException <- MisplacedFileException as AuthenticationError <- MisplacedFileError, ..."""
    found = {c.__name__: c for c in errors_java.error_classes()}
    for py, jc in errors_java.JAVA_CLASSES.items():
        if jc == "CryptoIOException":
            assert "class CryptoIOException extends IOException" in open(os.path.join(JAVA_DIR, jc + ".java")).read()
            continue
        parent = found[py].__mro__[1]
        assert java_parent(jc) == errors_java.java_class(parent), (py, jc)


def test_the_lib_jar_carries_the_exception_classes():
    import zipfile
    from heliosdb_flink_crypto.flink import lib_jar_path
    with zipfile.ZipFile(lib_jar_path()) as z:
        names = set(z.namelist())
    for jc in set(errors_java.JAVA_CLASSES.values()) | {"ErrorKinds", "PythonErrors"}:
        assert f"io/heliosdb/flink/crypto/{jc}.class" in names, jc


def test_two_error_classes_of_one_name_are_refused(monkeypatch):
    class ConfigError(errors.HeliosCryptoError):  # noqa: F811 - a second class of that name
        pass
    ConfigError.__module__ = "heliosdb_flink_crypto.other"
    try:
        with pytest.raises(ValueError, match="two error classes named ConfigError"):
            errors_java.error_classes()
    finally:
        del ConfigError
        import gc
        gc.collect()
