"""Make tests/vectors/vectors.json (format version 1) and vectors-v2.json (version 2)
deterministically (seeded RNG, fixed clock and DEK).

Run `python tests/vectors/make_vectors.py --check` to prove the current code still produces the
committed files byte for byte; without --check it (re)writes them, which must never happen for a
released format version (rule F-30 in docs/format.md).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import sys

from heliosdb_flink_crypto.engine import DataKey, EncryptingWriter, new_header
from heliosdb_flink_crypto.format import (SUITE_AES_CBC_HMAC, SUITE_AES_GCM, VERSION_1, KeySlot, overhead, parse,
                                           segment_offset)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "vectors.json")
OUT_V2 = os.path.join(HERE, "vectors-v2.json")
SEG = 32
#: the exact error class a reader raises for an invalid vector (each vector's ``error``)
AUTH, FORMAT, MISPLACED = "AuthenticationError", "FormatError", "MisplacedFileError"


def det_rng(seed: str):
    state = {"n": 0}

    def rng(n: int) -> bytes:
        out = b""
        while len(out) < n:
            state["n"] += 1
            out += hashlib.sha256(f"{seed}/{state['n']}".encode()).digest()
        return out[:n]
    return rng


def seal(suite: int, plaintext: bytes, seed: str, tenant: str = "", version: int = VERSION_1,
         name: str = "") -> tuple[bytes, bytes]:
    rng = det_rng(seed)
    dek = rng(32)
    dk = DataKey(rng(16), dek, (KeySlot("local:///vectors/keyring.json", "1", rng(60)),), tenant)
    _, raw, keys = new_header(dk, suite, SEG, rng=rng, clock=lambda: 1_767_225_600.0, version=version,
                              name=name)
    buf = io.BytesIO()
    with EncryptingWriter(buf, raw, keys, SEG) as w:
        w.write(plaintext)
    return dek, buf.getvalue()


def flip(b: bytes, i: int) -> bytes:
    return b[:i] + bytes([b[i] ^ 1]) + b[i + 1:]


def spliced(ct: bytes, other: bytes, hl: int, at) -> dict[str, tuple[str, bytes]]:
    """The cases both versions share, made of whole pieces of ``ct`` (4 segments) and ``other`` (another
    file of the same length and key): appended, swapped, duplicated, foreign and dropped pieces."""
    hd, segs = ct[:hl], [ct[at(i):at(i + 1)] for i in range(4)]
    return {
        "appended-byte": (AUTH, ct + b"\0"),
        "segments-swapped": (AUTH, hd + segs[1] + segs[0] + segs[2] + segs[3]),
        "segment-duplicated": (AUTH, hd + segs[0] + segs[0] + segs[2] + segs[3]),
        "segment-from-other-file": (AUTH, hd + segs[0] + other[at(1):at(2)] + segs[2] + segs[3]),
        "header-from-other-file": (AUTH, other[:hl] + ct[hl:]),
        "last-segment-dropped": (AUTH, hd + b"".join(segs[:3])),
    }


def build() -> list[dict]:
    vectors = []
    for suite, sname in ((SUITE_AES_GCM, "gcm"), (SUITE_AES_CBC_HMAC, "cbc")):
        for n in (0, 1, SEG - 1, SEG, SEG + 1, 3 * SEG + 5):
            seed = f"{sname}-{n}"
            pt = det_rng("pt-" + seed)(n)
            dek, ct = seal(suite, pt, seed, tenant="tenant-a" if n == 1 else "")
            vectors.append({"name": f"{sname}-valid-{n}", "result": "valid", "error": None, "suite": suite,
                            "segment_size": SEG, "dek": dek.hex(), "plaintext": pt.hex(),
                            "ciphertext": ct.hex()})
        pt = det_rng("pt-tamper-" + sname)(3 * SEG + 5)
        dek, ct = seal(suite, pt, "tamper-" + sname)
        h = parse(ct)
        at = lambda i: segment_offset(i, h.length, SEG, suite)  # noqa: E731 (where segment i starts)
        _, other = seal(suite, pt, "tamper-other-" + sname)
        cases = {
            "header-bit-flip": (AUTH, flip(ct, 20)),
            "header-mac-flip": (AUTH, flip(ct, h.length - 1)),
            "body-bit-flip": (AUTH, flip(ct, h.length + 3)),
            "tag-bit-flip": (AUTH, flip(ct, len(ct) - 1)),
            "truncated-at-boundary": (AUTH, ct[:at(3)]),
            "truncated-inside-segment": (FORMAT, ct[:at(2) + 7]),
            **spliced(ct, other, h.length, at),
        }
        for name, (error, bad) in cases.items():
            vectors.append({"name": f"{sname}-invalid-{name}", "result": "invalid", "error": error, "suite": suite,
                            "segment_size": SEG, "dek": dek.hex(), "plaintext": pt.hex(),
                            "ciphertext": bad.hex()})
        wrong = bytes(32)
        vectors.append({"name": f"{sname}-invalid-wrong-key", "result": "invalid", "error": AUTH, "suite": suite,
                        "segment_size": SEG, "dek": wrong.hex(), "plaintext": pt.hex(),
                        "ciphertext": ct.hex()})
    return vectors


def render() -> str:
    doc = {"format": "heliosdb-flink-crypto checkpoint file, version 1",
           "generator": "tests/vectors/make_vectors.py", "vectors": build()}
    return json.dumps(doc, indent=1) + "\n"


#: the binding names of the valid version 2 vectors (F-24): a state file, a checkpoint's _metadata,
#: none (in-memory data), non-ASCII
NAMES = {0: "", 1: "9f1c2a4e-3b7d-4c55-a1e2-7f00c0ffee01", SEG - 1: "job-a1b2/chk-7/_metadata",
         SEG: "savepoint-ab12-xyz/_metadata", SEG + 1: "CURRENT", 3 * SEG + 5: "état-ü/東京"}


def build_v2() -> list[dict]:
    """Version 2: each vector names the binding name the reader checks (``bound_name``, what its
    path gives) and its exact verdict: ``error`` is the error class a reader raises, or null."""
    vectors = []

    def add(name, result, error, suite, dek, pt, ct, bound):
        vectors.append({"name": name, "result": result, "error": error, "suite": suite, "segment_size": SEG,
                        "bound_name": bound, "dek": dek.hex(), "plaintext": pt.hex(), "ciphertext": ct.hex()})

    for suite, sname in ((SUITE_AES_GCM, "gcm"), (SUITE_AES_CBC_HMAC, "cbc")):
        for n, bound in NAMES.items():
            seed = f"v2-{sname}-{n}"
            pt = det_rng("pt-" + seed)(n)
            dek, ct = seal(suite, pt, seed, tenant="tenant-a" if n == 1 else "", version=2, name=bound)
            add(f"{sname}-valid-{n}", "valid", None, suite, dek, pt, ct, bound)
        bound = "4c0ffee0-state-file"
        pt = det_rng("v2-pt-tamper-" + sname)(3 * SEG + 5)
        dek, ct = seal(suite, pt, "v2-tamper-" + sname, version=2, name=bound)
        h = parse(ct)
        hl = h.length
        at = lambda i: segment_offset(i, hl, SEG, suite)  # noqa: E731 (where segment i starts)
        _, other = seal(suite, pt, "v2-tamper-other-" + sname, version=2, name=bound)
        empty_dek, empty = seal(suite, b"", "v2-empty-" + sname, version=2, name=bound)
        name_at = ct.index(bound.encode())
        cases = {
            "header-bit-flip": (AUTH, flip(ct, 20)),
            "header-mac-flip": (AUTH, flip(ct, hl - 1)),
            "name-bit-flip": (AUTH, flip(ct, name_at)),
            "body-bit-flip": (AUTH, flip(ct, hl + 3)),
            "tag-bit-flip": (AUTH, flip(ct, len(ct) - 1)),
            "truncated-to-nothing": (FORMAT, b""),
            "truncated-inside-header": (FORMAT, ct[:hl - 1]),
            "truncated-to-header": (FORMAT, ct[:hl]),
            "truncated-to-one-overhead": (AUTH, ct[:hl + overhead(suite)]),
            "truncated-at-boundary-1": (AUTH, ct[:at(1)]),
            "truncated-at-boundary-2": (AUTH, ct[:at(2)]),
            "truncated-at-boundary-3": (AUTH, ct[:at(3)]),
            "truncated-inside-segment": (FORMAT, ct[:at(2) + 7]),
            **spliced(ct, other, hl, at),
        }
        for case, (error, bad) in cases.items():
            add(f"{sname}-invalid-{case}", "invalid", error, suite, dek, pt, bad, bound)
        add(f"{sname}-invalid-wrong-key", "invalid", AUTH, suite, bytes(32), pt, ct, bound)
        add(f"{sname}-invalid-empty-bad-tag", "invalid", AUTH, suite, empty_dek, b"", flip(empty, len(empty) - 1),
            bound)
        add(f"{sname}-invalid-name-mismatch", "invalid", MISPLACED, suite, dek, pt, ct, "5eed0000-newer-file")
        older_dek, older = seal(suite, pt, "v2-meta-" + sname, version=2, name="job-a1b2/chk-6/_metadata")
        add(f"{sname}-invalid-metadata-of-older-checkpoint", "invalid", MISPLACED, suite, older_dek, pt, older,
            "job-a1b2/chk-7/_metadata")
    return vectors


def render_v2() -> str:
    doc = {"format": "heliosdb-flink-crypto checkpoint file, version 2",
           "generator": "tests/vectors/make_vectors.py", "vectors": build_v2()}
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    outputs = {OUT: render(), OUT_V2: render_v2()}
    if "--check" in sys.argv:
        differ = []
        for path, text in outputs.items():
            with open(path, encoding="utf-8") as f:
                if f.read() != text:
                    differ.append(os.path.basename(path))
        print("vectors DIFFER from the committed files: " + ", ".join(differ) if differ else "vectors reproduce")
        sys.exit(1 if differ else 0)
    for path, text in outputs.items():
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"wrote {path}")
