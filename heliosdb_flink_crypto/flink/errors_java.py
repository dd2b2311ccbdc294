"""Generate the Java shim's map from Python error classes to Java exception classes.

``python -m heliosdb_flink_crypto.flink.java_mirror`` writes
``java-shim/src/main/java/io/heliosdb/flink/crypto/ErrorKinds.java`` with the other generated Java
files. A Python error crosses pemja as ``<class 'module.Name'>: message``; the shim turns
``Name`` into the Java class of its nearest ancestor in :data:`JAVA_CLASSES` (the
``CryptoIOException`` subclasses of the shim), so Flink's logs and callers tell an authentication
failure from a KMS outage by type. tests/test_errors_mirror.py proves the map and the Java class
tree follow this package's error tree.
"""
from __future__ import annotations

import importlib
import os
import pkgutil

from .. import errors

JAVA_FILE = os.path.join("java-shim", "src", "main", "java", "io", "heliosdb", "flink", "crypto",
                         "ErrorKinds.java")

#: Python error class -> the shim's exception class for it (and for its subclasses without one).
JAVA_CLASSES = {
    "HeliosCryptoError": "CryptoIOException",
    "FormatError": "FormatException",
    "AuthenticationError": "AuthenticationException",
    "MisplacedFileError": "MisplacedFileException",
    "KeyAccessError": "KeyAccessException",
    "TenantMismatchError": "TenantMismatchException",
    "TenantRestoreError": "TenantMismatchException",
    "KmsError": "KmsException",
    "KmsUnavailableError": "KmsUnavailableException",
    "ConfigError": "ConfigException",
}


def error_classes() -> list[type]:
    """Every subclass of HeliosCryptoError the package defines (modules imported to find them all;
    the testing stand-ins are not part of the product), by name."""
    pkg = importlib.import_module("heliosdb_flink_crypto")
    for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        if ".testing" in info.name or info.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(info.name)
        except ImportError:  # pragma: no cover - an optional extra that is not installed
            continue
    found, todo = {}, [errors.HeliosCryptoError]
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("heliosdb_flink_crypto.") and ".testing" not in cls.__module__:
            if found.get(cls.__name__, cls) is not cls:
                raise ValueError(f"two error classes named {cls.__name__}: the kind would be ambiguous")
            found[cls.__name__] = cls
        todo.extend(cls.__subclasses__())
    return [found[n] for n in sorted(found)]


def java_class(cls: type) -> str:
    """The Java class of ``cls``: that of its nearest ancestor (itself first) in JAVA_CLASSES."""
    for c in cls.__mro__:
        if c.__name__ in JAVA_CLASSES:
            return JAVA_CLASSES[c.__name__]
    raise ValueError(f"{cls.__name__} is no HeliosCryptoError")


def render() -> str:
    by_class: dict[str, list[str]] = {}
    for c in error_classes():
        by_class.setdefault(java_class(c), []).append(c.__name__)
    by_class.pop("CryptoIOException")
    cases = "".join("".join(f'            case "{n}":\n' for n in names)
                    + f"                return new {jc}(kind, message);\n" for jc, names in sorted(by_class.items()))
    return f'''package io.heliosdb.flink.crypto;

/**
 * Python error class -> shim exception class, GENERATED from heliosdb_flink_crypto's error tree by
 * {{@code python -m heliosdb_flink_crypto.flink.java_mirror}}: do not edit by hand.
 * tests/test_errors_mirror.py checks it against the error tree. A class not listed (another of the package's errors,
 * a ValueError, an OSError) becomes the base {{@link CryptoIOException}}; the kind is always Python's
 * class name.
 */
final class ErrorKinds {{
    private ErrorKinds() {{
    }}

    static CryptoIOException of(String kind, String message) {{
        switch (kind) {{
{cases}            default:
                return new CryptoIOException(kind, message);
        }}
    }}
}}
'''
