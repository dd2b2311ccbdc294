"""The Java shim's copy of the format constants (``FormatConstants.java``), rendered from ``format/``.

The shim frames files without Python (header prefix, segment arithmetic: ``SegmentLayout``); every
number it uses comes from here, so format/ stays the one place the format is declared.
``python -m heliosdb_flink_crypto.flink.java_mirror`` writes the file; tests/test_java_mirror.py
checks it is current and that the Java source declares nothing else.
"""
from __future__ import annotations

import os
import struct

from ..format import header, layout

JAVA_FILE = os.path.join("java-shim", "src", "main", "java", "io", "heliosdb", "flink", "crypto",
                         "FormatConstants.java")


def _offset(fmt: str) -> int:
    """Byte offset of the prefix field after the fields of ``fmt`` (a leading part of header.PREFIX)."""
    return struct.calcsize(">" + fmt)


def constants() -> list[tuple[str, str, int, str]]:
    """(Java name, Java type, value, what it is) for every constant the shim reads."""
    return [
        ("PREFIX_LEN", "int", header.PREFIX_LEN, "bytes of the prefix: enough to frame the file (F-16)"),
        ("VERSION_OFFSET", "int", _offset("4s"), "offset of the format version byte (F-2)"),
        ("SUITE_OFFSET", "int", _offset("4sB"), "offset of the suite byte (F-3)"),
        ("FLAGS_OFFSET", "int", _offset("4sBB"), "offset of the u16 flags, must be 0 (F-4)"),
        ("HEADER_LENGTH_OFFSET", "int", _offset("4sBBH"), "offset of the u32 header length H (F-5)"),
        ("SEGMENT_SIZE_OFFSET", "int", _offset("4sBBHI"), "offset of the u32 segment size S (F-6)"),
        ("VERSION_1", "int", header.VERSION_1, "format version 1: no name field, read only where enabled (F-30)"),
        ("VERSION", "int", header.VERSION, "the format version writers write"),
        ("SUITE_AES_GCM", "int", header.SUITE_AES_GCM, "suite id of AES-256-GCM"),
        ("SUITE_AES_CBC_HMAC", "int", header.SUITE_AES_CBC_HMAC, "suite id of AES-256-CBC-HMAC-SHA256"),
        ("OVERHEAD_AES_GCM", "int", layout.overhead(header.SUITE_AES_GCM), "bytes an AES-256-GCM segment grows by"),
        ("OVERHEAD_AES_CBC_HMAC", "int", layout.overhead(header.SUITE_AES_CBC_HMAC),
         "bytes an AES-256-CBC-HMAC-SHA256 segment grows by"),
        ("MIN_SEGMENT_SIZE", "int", header.MIN_SEGMENT_SIZE, "smallest segment size"),
        ("MAX_SEGMENT_SIZE", "int", header.MAX_SEGMENT_SIZE, "largest segment size"),
        ("SEGMENT_ALIGN", "int", header.SEGMENT_ALIGN, "segment sizes are multiples of this"),
        ("MAX_HEADER_LEN", "int", header.MAX_HEADER_LEN, "largest header length"),
        ("MIN_HEADER_LEN_V1", "int", header.min_header_length(header.VERSION_1),
         "smallest version 1 header: prefix, fixed fields, empty tenant, one empty slot, commitment, MAC"),
        ("MIN_HEADER_LEN", "int", header.min_header_length(header.VERSION), "smallest version 2 header"),
        ("MAX_NAME", "int", header.MAX_NAME, "longest binding name in a version 2 header, UTF-8 bytes (F-24)"),
        ("MAX_SEGMENTS", "long", layout.MAX_SEGMENTS,
         "the most segments a file may have (indexes 0 .. MAX_SEGMENTS - 1, F-14)"),
        ("BRIDGE_PROTOCOL", "long", _bridge_protocol(),
         "the version of the Java-Python call protocol (flink/bridge.py PROTOCOL): the shim refuses a "
         "package that answers another"),
    ]


def _bridge_protocol() -> int:
    from .bridge import PROTOCOL  # the bridge module loads sessions: only when rendering
    return PROTOCOL


def _literal(jtype: str, value: int) -> str:
    return f"{value}L" if jtype == "long" else str(value)


def render() -> str:
    body = "\n".join(f"    /** {doc}. */\n    static final {jtype} {name} = {_literal(jtype, value)};\n"
                     for name, jtype, value, doc in constants())
    magic = header.MAGIC.decode("ascii")
    return f'''package io.heliosdb.flink.crypto;

/**
 * The checkpoint file format's constants (docs/format.md) and the bridge protocol's version, GENERATED
 * from heliosdb_flink_crypto/format/ and flink/bridge.py
 * by {{@code python -m heliosdb_flink_crypto.flink.java_mirror}}: do not edit by hand.
 */
final class FormatConstants {{
    private FormatConstants() {{
    }}

    /** The first four bytes of every encrypted file (F-1), ASCII. */
    static final String MAGIC = "{magic}";

{body}}}
'''
