"""An adversarial corpus: hostile files and trees, each with the verdict a reader must give it.

``build(root, kms_uri)`` writes ``root/tree/...`` and ``root/manifest.json``; keys come from the
caller's keyring (made at test time). Every encrypted file is sealed by the public writer over the
file opened at its final path (so it carries whatever binding the format gives a file's name), then
cut, extended or flipped in place. Verdicts (``expect``):

* ``valid``: authenticates; decrypts to ``plaintext`` (hex).
* ``reject``: a reader or ``verify`` refuses it, naming it, and goes on with the rest.
* ``skipped``: named, not processed, not a failure (a leftover temporary file of ours).

``end_only`` marks files cut to the header and one segment's overhead: only a check that the final
segment authenticates before EOF (rule F-18) rejects them when read as a stream.

``java`` marks regular files whose bytes are the whole case (the shim's stream runs those).
Classes: see :data:`CLASSES`; the special entries (FIFO, socket, device, links, unreadable) come
from :mod:`.hostile`.
"""
from __future__ import annotations

import json
import os
import random
from dataclasses import asdict, dataclass, replace

from ..crypto import CheckpointCrypto
from ..format import SUITE_AES_CBC_HMAC, SUITE_IDS, VERSION, parse, serialize_unsigned
from ..format import overhead as suite_overhead
from . import hostile

SUITES = {"gcm": "aes-256-gcm", "cbc": "aes-256-cbc-hmac-sha256"}
SEGMENT = 16
SMALL = 40  # plaintext bytes of the file cut and flipped at every position: 3 segments
ESCAPES = "\x1b]0;owned\x07\x1b[2J\r\u202e"  # retitle, clear screen, carriage return, right-to-left
CLASSES = ("valid", "empty", "short-15", "header-only", "header-plus-n", "truncated", "appended",
           "flipped", "mutated", "forged-header", "escape-in-name", "not-utf8-name") + hostile.CLASSES


@dataclass
class Item:
    path: str  # relative to root
    cls: str
    expect: str
    java: bool = True
    plaintext: str = ""  # hex, for valid files
    end_only: bool = False  # cut right after the final segment's tag of an empty final segment (F-18)


class Corpus:
    def __init__(self, root: str, kms_uri: str, seed: int = 1):
        self.root, self.kms_uri = os.path.abspath(root), kms_uri
        self.rng = random.Random(seed)
        self.items: list[Item] = []
        self._writers: dict = {}

    # -- sealing and mutating ----------------------------------------------------------
    def seal(self, rel: str, plain: bytes, suite: str = "gcm", tenant: str = "", fresh: bool = False) -> bytes:
        """Encrypt ``plain`` to ``tree/rel`` through the public writer over a file opened by its final
        path (bound to that name where the format binds names); returns the file's bytes. ``fresh``:
        under a data key of its own (others share one per suite and tenant)."""
        path = self.path(rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        key = (suite, tenant)
        if fresh or key not in self._writers:
            self._writers[key] = CheckpointCrypto([self.kms_uri], suite=SUITE_IDS[SUITES[suite]],
                                                  segment_size=SEGMENT, tenant=tenant)
        with open(path, "wb") as f, self._writers[key].writer(f) as w:
            w.write(plain)
        if fresh:
            del self._writers[key]
        with open(path, "rb") as f:
            return f.read()

    def path(self, rel: str) -> str:
        return os.path.join(self.root, "tree", rel)

    def add(self, rel: str, cls: str, expect: str = "reject", **kw) -> None:
        self.items.append(Item(rel, cls, expect, **kw))

    def mutant(self, rel: str, cls: str, suite: str, plain: bytes, mutate) -> None:
        """Seal ``plain`` at ``rel``, replace its bytes by ``mutate(bytes)``: a file to reject."""
        raw = self.seal(rel, plain, suite)
        bad = mutate(raw)
        assert bad != raw, rel
        with open(self.path(rel), "wb") as f:
            f.write(bad)
        self.add(rel, cls)

    def valid(self, rel: str, plain: bytes, suite: str = "gcm", tenant: str = "", java: bool = True) -> None:
        self.seal(rel, plain, suite, tenant)
        self.add(rel, "valid" if not tenant else "escape-in-header", "valid", java=java, plaintext=plain.hex())

    def data(self, n: int) -> bytes:
        return self.rng.randbytes(n)

    # -- the classes -------------------------------------------------------------------
    def build(self, mutations: int) -> None:
        small = self.data(SMALL)
        for s in SUITES:
            for n in (0, 1, 15, 16, 17, SMALL, 100):
                self.valid(f"valid/{s}-{n}", small if n == SMALL else self.data(n), s)
            self.cut(f"header-only/{s}", header_len(self.seal(f"header-only/{s}", small, s)), "header-only")
            self.mutant(f"short-15/{s}", "short-15", s, small, lambda b: b[:15])
            for n in range(1, 16):
                self.mutant(f"header-plus-n/{s}-{n:02d}", "header-plus-n", s, small,
                            lambda b, n=n: b[:header_len(b) + n])
            # a header may hold the file's name: every name below has the length of this one
            probe = self.seal(f"truncated/{s}-0000", small, s)
            full, hlen = len(probe), header_len(probe)
            for cut in range(full):
                self.mutant(f"truncated/{s}-{cut:04d}", "truncated", s, small, lambda b, c=cut: b[:c])
                self.items[-1].end_only = cut == hlen + overhead(s)
            for pos in range(full):
                bit = 1 << self.rng.randrange(8)
                self.mutant(f"flipped/{s}-{pos:04d}", "flipped", s, small, lambda b, p=pos, x=bit: flip(b, p, x))
            for name, extra in (("one-zero", lambda b: b"\0"), ("block", lambda b: self.data(16)),
                                ("segment", lambda b: self.data(SEGMENT + suite_overhead(SUITE_AES_CBC_HMAC))),
                                ("last-segment-again", lambda b: b[-(SMALL % SEGMENT + overhead(s)):]),
                                ("whole-file-again", lambda b: b)):
                self.mutant(f"appended/{s}-{name}", "appended", s, small, lambda b, e=extra: b + e(b))
            big = self.data(200)
            for i in range(mutations):
                self.mutant(f"mutated/{s}-{i:03d}", "mutated", s, big, self.random_mutation)
        self.add("empty", "empty")
        open(self.path("empty"), "wb").close()
        self.forged(small)
        self.valid("escape-in-header", small, tenant=ESCAPES, java=False)  # Flink's reader: not its path's tenant
        self.valid(f"names/{ESCAPES}name", small)
        self.items[-1].cls = "escape-in-name"
        self.seal("names/not-utf8", small)  # sealed under a UTF-8 name (a name in a header is UTF-8)
        os.rename(self.path("names/not-utf8"), self.path(os.fsdecode(b"names/not-utf8-\xff\xfe")))
        self.add(os.fsdecode(b"names/not-utf8-\xff\xfe"), "not-utf8-name", "reject" if VERSION >= 2 else "valid",
                 java=False, plaintext="" if VERSION >= 2 else small.hex())  # renamed: misplaced where bound
        hostile.add_special(self, small)

    def cut(self, rel: str, n: int, cls: str) -> None:
        with open(self.path(rel), "r+b") as f:
            f.truncate(n)
        self.add(rel, cls)

    def random_mutation(self, b: bytes) -> bytes:
        r = self.rng
        i, j = sorted(r.sample(range(len(b) + 1), 2))
        op = r.choice(["truncate", "extend", "flip", "overwrite", "splice-out", "duplicate"])
        if op == "truncate":
            return b[:i]
        if op == "extend":
            return b + self.data(r.randint(1, 100))
        if op == "flip":
            out = b
            for _ in range(r.randint(1, 4)):
                out = flip(out, r.randrange(len(b)), 1 << r.randrange(8))
            return out if out != b else flip(b, i % len(b), 1)
        if op == "overwrite":
            fill = self.data(j - i)
            return b[:i] + fill + b[j:] if fill != b[i:j] else flip(b, i, 1)
        if op == "splice-out":
            return b[:i] + b[j:]
        return b[:j] + b[i:j] + b[j:]

    def forged(self, plain: bytes) -> None:
        """Headers changed without the keys: they parse, they must never authenticate."""
        bad_ring = f"local://{self.root}/keyrings/list.json"
        for rel, change in (("forged-header/escape-in-uri", lambda h: slots(h, kms_uri=f"local:///x/{ESCAPES}")),
                            ("forged-header/arabic-digit-version", lambda h: slots(h, key_version="\u0661")),
                            ("forged-header/wrong-shape-keyring", lambda h: slots(h, kms_uri=bad_ring)),
                            ("forged-header/escape-in-tenant", lambda h: replace(h, tenant=ESCAPES))):
            self.mutant(rel, "forged-header", "gcm", plain, lambda b, c=change: reheader(b, c))

    def write_manifest(self) -> dict:
        manifest = {"kms_uri": self.kms_uri, "tree": os.path.join(self.root, "tree"),
                    "keyrings": hostile.bad_keyrings(os.path.join(self.root, "keyrings")),
                    "items": [asdict(i) for i in self.items]}
        with open(os.path.join(self.root, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=1)
        return manifest


def build(root: str, kms_uri: str, *, mutations: int = 100, seed: int = 1) -> dict:
    """Write the corpus under ``root``; returns the manifest (also in ``root/manifest.json``)."""
    c = Corpus(root, kms_uri, seed)
    c.build(mutations)
    return c.write_manifest()


def flip(b: bytes, pos: int, mask: int) -> bytes:
    return b[:pos] + bytes([b[pos] ^ mask]) + b[pos + 1:]


def header_len(raw: bytes) -> int:
    return parse(raw).length


def overhead(suite: str) -> int:
    """Bytes each segment grows by under the corpus suite ``suite`` ("gcm" or "cbc")."""
    return suite_overhead(SUITE_IDS[SUITES[suite]])


def slots(h, **fields):
    return replace(h, slots=tuple(replace(s, **fields) for s in h.slots))


def reheader(raw: bytes, change) -> bytes:
    """``raw`` with its header's fields changed, the old commitment and MAC kept."""
    h = parse(raw)
    new = change(h)
    return serialize_unsigned(new) + h.commitment + h.mac + raw[h.length:]


