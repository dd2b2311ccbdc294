"""The Java shim's files generated from Python declarations; do not edit them by hand.

* ``CryptoOptions.java`` from :data:`heliosdb_flink_crypto.config.OPTIONS` (:mod:`.options_java`)
* ``FormatConstants.java`` from ``format/`` (:mod:`.format_java`)
* ``ErrorKinds.java`` from the error tree (:mod:`.errors_java`)
* ``Schemes.java`` and ``META-INF/services/org.apache.flink.core.fs.FileSystemFactory`` from
  :data:`heliosdb_flink_crypto.flink.SCHEMES`

``python -m heliosdb_flink_crypto.flink.java_mirror`` rewrites them; ``--check`` exits 1 if one is
stale. tests/test_java_mirror.py runs the check and reads the Java back.
"""
from __future__ import annotations

import argparse
import os
import sys

from . import SCHEMES, errors_java, format_java, options_java

_PACKAGE = os.path.join("java-shim", "src", "main", "java", "io", "heliosdb", "flink", "crypto")
SCHEMES_FILE = os.path.join(_PACKAGE, "Schemes.java")
SERVICES_FILE = os.path.join("java-shim", "src", "main", "resources", "META-INF", "services",
                             "org.apache.flink.core.fs.FileSystemFactory")


def scheme_class(scheme: str) -> str:
    """Java factory class of an encrypted scheme: ``enc+s3a`` -> ``EncS3a``."""
    return "Enc" + SCHEMES[scheme].capitalize()


def render_schemes() -> str:
    classes = "\n".join(f'''    /** {{@code {s}://}} over Flink's {{@code {inner}://}} file system. */
    public static final class {scheme_class(s)} extends EncryptedFileSystemFactory {{
        public {scheme_class(s)}() {{
            super("{s}");
        }}
    }}
''' for s, inner in SCHEMES.items())
    names = ",\n            ".join(f'"{s}"' for s in SCHEMES)
    return f'''package io.heliosdb.flink.crypto;

import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * The encrypted schemes, one factory class each (ServiceLoader needs a no-argument constructor),
 * listed in META-INF/services/org.apache.flink.core.fs.FileSystemFactory. GENERATED from
 * heliosdb_flink_crypto/flink/__init__.py SCHEMES by
 * {{@code python -m heliosdb_flink_crypto.flink.java_mirror}}: do not edit by hand.
 */
public final class Schemes {{
    private Schemes() {{
    }}

    /** Every encrypted scheme, in SCHEMES order. */
    public static final List<String> NAMES = Collections.unmodifiableList(Arrays.asList(
            {names}));

{classes}}}
'''


def render_services() -> str:
    return "".join(f"io.heliosdb.flink.crypto.Schemes${scheme_class(s)}\n" for s in SCHEMES)


#: every generated file (relative to the repository root) and what renders it
FILES = {options_java.JAVA_FILE: options_java.render, format_java.JAVA_FILE: format_java.render,
         errors_java.JAVA_FILE: errors_java.render, SCHEMES_FILE: render_schemes, SERVICES_FILE: render_services}


def stale(root: str) -> list[str]:
    """The generated files under ``root`` whose text differs from what the declarations render."""
    out = []
    for rel, render in FILES.items():
        path = os.path.join(root, rel)
        current = open(path, encoding="utf-8").read() if os.path.exists(path) else None
        if current != render():
            out.append(rel)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default=".", help="repository root")
    p.add_argument("--check", action="store_true", help="exit 1 if a generated file is stale")
    a = p.parse_args(argv)
    todo = stale(a.root)
    if a.check:
        for rel in todo:
            print(f"{rel} is stale: run python -m heliosdb_flink_crypto.flink.java_mirror", file=sys.stderr)
        return 1 if todo else 0
    for rel in todo:
        path = os.path.join(a.root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(FILES[rel]())
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
