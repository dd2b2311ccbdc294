"""Make tests/vectors/vectors.json deterministically (seeded RNG, fixed clock and DEK).

Run `python tests/vectors/make_vectors.py --check` to prove the current code still produces the
committed file byte for byte; without --check it (re)writes the file, which must never happen for a
released format version (rule F-30 in docs/format.md).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import sys

from heliosdb_flink_crypto.engine import DataKey, EncryptingWriter, new_header
from heliosdb_flink_crypto.format import SUITE_AES_CBC_HMAC, SUITE_AES_GCM, KeySlot, parse

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "vectors.json")
SEG = 32


def det_rng(seed: str):
    state = {"n": 0}

    def rng(n: int) -> bytes:
        out = b""
        while len(out) < n:
            state["n"] += 1
            out += hashlib.sha256(f"{seed}/{state['n']}".encode()).digest()
        return out[:n]
    return rng


def seal(suite: int, plaintext: bytes, seed: str, tenant: str = "") -> tuple[bytes, bytes]:
    rng = det_rng(seed)
    dek = rng(32)
    dk = DataKey(rng(16), dek, (KeySlot("local:///vectors/keyring.json", "1", rng(60)),), tenant)
    _, raw, keys = new_header(dk, suite, SEG, rng=rng, clock=lambda: 1_767_225_600.0)
    buf = io.BytesIO()
    with EncryptingWriter(buf, raw, keys, SEG) as w:
        w.write(plaintext)
    return dek, buf.getvalue()


def build() -> list[dict]:
    vectors = []
    for suite, sname in ((SUITE_AES_GCM, "gcm"), (SUITE_AES_CBC_HMAC, "cbc")):
        for n in (0, 1, SEG - 1, SEG, SEG + 1, 3 * SEG + 5):
            seed = f"{sname}-{n}"
            pt = det_rng("pt-" + seed)(n)
            dek, ct = seal(suite, pt, seed, tenant="tenant-a" if n == 1 else "")
            vectors.append({"name": f"{sname}-valid-{n}", "result": "valid", "suite": suite,
                            "segment_size": SEG, "dek": dek.hex(), "plaintext": pt.hex(),
                            "ciphertext": ct.hex()})
        pt = det_rng("pt-tamper-" + sname)(3 * SEG + 5)
        dek, ct = seal(suite, pt, "tamper-" + sname)
        h = parse(ct)
        o = 16 if suite == SUITE_AES_GCM else 48
        segs = [ct[h.length + i * (SEG + o):h.length + (i + 1) * (SEG + o)] for i in range(4)]
        _, other = seal(suite, pt, "tamper-other-" + sname)
        hd = ct[:h.length]
        flip = lambda b, i: b[:i] + bytes([b[i] ^ 1]) + b[i + 1:]  # noqa: E731
        cases = {
            "header-bit-flip": flip(ct, 20),
            "header-mac-flip": flip(ct, h.length - 1),
            "body-bit-flip": flip(ct, h.length + 3),
            "tag-bit-flip": flip(ct, len(ct) - 1),
            "truncated-at-boundary": ct[:h.length + 3 * (SEG + o)],
            "truncated-inside-segment": ct[:h.length + 2 * (SEG + o) + 7],
            "appended-byte": ct + b"\0",
            "segments-swapped": hd + segs[1] + segs[0] + segs[2] + segs[3],
            "segment-duplicated": hd + segs[0] + segs[0] + segs[2] + segs[3],
            "segment-from-other-file": hd + segs[0] + other[h.length + (SEG + o):h.length + 2 * (SEG + o)]
                                       + segs[2] + segs[3],
            "header-from-other-file": other[:h.length] + ct[h.length:],
            "last-segment-dropped": hd + b"".join(segs[:3]),
        }
        for name, bad in cases.items():
            vectors.append({"name": f"{sname}-invalid-{name}", "result": "invalid", "suite": suite,
                            "segment_size": SEG, "dek": dek.hex(), "plaintext": pt.hex(),
                            "ciphertext": bad.hex()})
        wrong = bytes(32)
        vectors.append({"name": f"{sname}-invalid-wrong-key", "result": "invalid", "suite": suite,
                        "segment_size": SEG, "dek": wrong.hex(), "plaintext": pt.hex(),
                        "ciphertext": ct.hex()})
    return vectors


def render() -> str:
    doc = {"format": "heliosdb-flink-crypto checkpoint file, version 1",
           "generator": "tests/vectors/make_vectors.py", "vectors": build()}
    return json.dumps(doc, indent=1) + "\n"


if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv:
        with open(OUT) as f:
            same = f.read() == text
        print("vectors reproduce" if same else "vectors DIFFER from the committed file")
        sys.exit(0 if same else 1)
    with open(OUT, "w") as f:
        f.write(text)
    print(f"wrote {OUT}")
