"""Core sub-commands: keyring init, encrypt, decrypt, inspect, verify."""
from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile

from ..config import parse_size
from ..crypto import DEFAULT_SEGMENT_SIZE, CheckpointCrypto, name_for
from ..errors import (AuthenticationError, FormatError, HeliosCryptoError, KeyAccessError, MisplacedFileError,
                      NotRegularFileError)
from ..format import SUITE_IDS, SUITE_NAMES
from ..format.layout import plaintext_length
from ..kms.local import LocalKeyring
from ..lifecycle.files import iter_files, open_file, read_header, reason
from .progress import Progress
from .trust import add_conf, add_trust, conf_of, opener, settings_of
from .term import say

CHUNK = 1 << 20


def register(sub) -> None:
    kr = sub.add_parser("keyring", help="manage a local development keyring")
    krs = kr.add_subparsers(dest="keyring_command", required=True, metavar="ACTION")
    init = krs.add_parser("init", help="create a new keyring file (0600) with one key version")
    init.add_argument("uri", help="local://PATH")
    init.set_defaults(func=cmd_keyring_init)

    enc = sub.add_parser("encrypt", help="encrypt a file")
    enc.add_argument("--kms", action="append", required=True, metavar="URI",
                     help="KMS URI; repeat to wrap the data key under several KMS (any one decrypts)")
    enc.add_argument("--algorithm", choices=sorted(SUITE_IDS), default="aes-256-gcm")
    enc.add_argument("--segment-size", default=str(DEFAULT_SEGMENT_SIZE), help="e.g. 1mb (default) or 256kb")
    enc.add_argument("--tenant", default="", help="tenant id bound into the header")
    enc.add_argument("--name", help="binding name sealed into the header (default: OUTPUT's, rule F-24)")
    enc.add_argument("input", help="plaintext file, or - for standard input")
    enc.add_argument("output", help="encrypted file to write")
    add_conf(enc)
    enc.set_defaults(func=cmd_encrypt)

    dec = sub.add_parser("decrypt", help="decrypt a file with a trusted KMS (--kms, env or config file)")
    dec.add_argument("input")
    dec.add_argument("output", help="plaintext file, or - for standard output")
    add_trust(dec)
    add_conf(dec)
    add_read_options(dec)
    dec.set_defaults(func=cmd_decrypt)

    ins = sub.add_parser("inspect", help="show a file's header (never key material)")
    ins.add_argument("file")
    ins.add_argument("--json", action="store_true", help="machine-readable output")
    ins.set_defaults(func=cmd_inspect)

    ver = sub.add_parser("verify", help="authenticate every byte of files or whole directories")
    ver.add_argument("paths", nargs="+", metavar="PATH")
    ver.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    add_trust(ver)
    add_conf(ver)
    add_read_options(ver)
    ver.add_argument("--checkpoint", action="store_true",
                     help="each PATH is a checkpoint (chk-N), savepoint or job folder: check it as a whole "
                          "(referenced files, their place, orphans)")
    ver.add_argument("--json", action="store_true", help="with --checkpoint: machine-readable output")
    ver.set_defaults(func=cmd_verify)


def add_read_options(p, expect_name: bool = True) -> None:
    if expect_name:
        p.add_argument("--expect-name", metavar="NAME",
                       help="the binding name the file must be sealed for (a file deliberately moved; "
                            "default: the one its path gives, rule F-24)")
    p.add_argument("--read-v1", action="store_true",
                   help="also read format version 1 files (not bound to their place)")


def cmd_keyring_init(args) -> int:
    ring = LocalKeyring.create(args.uri)
    say(f"created keyring {ring.path} (key version {ring.current_key_version()}, mode 0600)")
    return 0


def cmd_encrypt(args) -> int:
    crypto = CheckpointCrypto(args.kms, suite=SUITE_IDS[args.algorithm], settings=settings_of(conf_of(args)),
                              segment_size=parse_size(args.segment_size), tenant=args.tenant)
    src = sys.stdin.buffer if args.input == "-" else open(args.input, "rb")
    try:
        name = name_for(args.output) if args.name is None else args.name
        with atomic_output(args.output) as out, crypto.writer(out, name=name) as w:
            _copy(src, w)
    finally:
        if src is not sys.stdin.buffer:
            src.close()
    return 0


def cmd_decrypt(args) -> int:
    crypto = opener(args, read_v1=args.read_v1)
    with crypto.open_path(args.input, name=args.expect_name) as r:
        if args.output == "-":
            _copy(r, sys.stdout.buffer)
        else:
            with atomic_output(args.output) as out:
                _copy(r, out)
    return 0


def describe(path: str) -> dict:
    """Header fields of ``path`` as plain data: ids, URIs, versions, sizes. No key material."""
    with open_file(path) as f:
        h, _ = read_header(f, path)
        size = os.fstat(f.fileno()).st_size
    return {
        "path": path, "format_version": h.version, "algorithm": SUITE_NAMES[h.suite],
        "segment_size": h.segment_size, "header_length": h.length, "file_id": h.file_id,
        "dek_id": h.dek_id.hex(), "created_ms": h.created_ms, "tenant": h.tenant, "name": h.name,
        "ciphertext_length": size,
        "plaintext_length": plaintext_length(size, h.length, h.segment_size, h.suite, path),
        "key_slots": [{"kms_uri": s.kms_uri, "key_version": s.key_version,
                       "wrapped_dek_length": len(s.wrapped)} for s in h.slots],
    }


def cmd_inspect(args) -> int:
    d = describe(args.file)
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    for k, v in d.items():
        if k != "key_slots":
            say(f"{k:18} {v}")
    for i, s in enumerate(d["key_slots"]):
        say(f"key slot {i}:        {s['kms_uri']} (version {s['key_version']}, "
            f"{s['wrapped_dek_length']}-byte wrapped DEK)")
    return 0


def verify_file(crypto: CheckpointCrypto, path: str, name: str | None = None) -> tuple[bool, str]:
    try:
        with crypto.open_path(path, name=name) as r:
            return True, f"{r.verify_all()} bytes"
    except KeyAccessError as e:
        return False, f"key unavailable: {reason(e, path)}"
    except MisplacedFileError as e:
        return False, reason(e, path)
    except AuthenticationError:
        return False, "authentication failed (tampered, truncated or wrong key)"
    except NotRegularFileError as e:
        return False, e.what + ", not a regular file"
    except FormatError as e:
        return False, f"not a valid encrypted file: {reason(e, path)}"
    except (HeliosCryptoError, OSError, ValueError) as e:
        return False, reason(e, path)
    except Exception as e:  # a bug; the run goes on to the other files
        return False, f"unexpected error ({type(e).__name__}: {e}); this is a bug, please report it"


def cmd_verify(args) -> int:
    if args.json and not args.checkpoint:
        raise ValueError("--json needs --checkpoint")
    if args.checkpoint and args.expect_name:
        raise ValueError("--expect-name names one file's place; --checkpoint checks every file at its own")
    crypto = opener(args, read_v1=args.read_v1)
    if args.checkpoint:
        from .checkpoint import run
        return run(crypto, args.paths, args.json)
    entries = list(iter_files(args.paths))
    progress = Progress(sum(1 for e in entries if not (e.problem or e.note)), "verify", enabled=not args.quiet)
    failed, notes, checked = [], [], 0
    for e in entries:
        if e.problem or e.note:
            (failed if e.problem else notes).append((e.path, e.problem or e.note))
            checked += bool(e.problem)
            continue
        ok, why = verify_file(crypto, e.path, args.expect_name)
        checked += 1
        if not ok:
            failed.append((e.path, why))
        progress.step(e.path)
    progress.done()
    for path, why in failed:
        say(f"FAILED {path}: {why}")
    for path, why in notes:
        say(f"skipped {path}: {why}")
    say(f"verified {checked - len(failed)} of {checked} files; {len(failed)} failed")
    return 1 if failed or not checked else 0


def _copy(src, dst) -> None:
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    while True:
        n = src.readinto(buf) if hasattr(src, "readinto") else None
        if n is None:
            chunk = src.read(CHUNK)
            if not chunk:
                return
            dst.write(chunk)
            continue
        if not n:
            return
        dst.write(view[:n])


class atomic_output:
    """Write to a temp file beside ``path``; rename into place only on success. On any failure
    (writing, flushing, renaming) the temp file is removed: no partial output is ever left."""

    def __init__(self, path: str, mode: int = 0o600):
        self.path, self.mode = path, mode

    def __enter__(self):
        d = os.path.dirname(os.path.abspath(self.path))
        fd, self.tmp = tempfile.mkstemp(prefix=".", suffix=".part", dir=d)
        os.fchmod(fd, self.mode)
        self.f = os.fdopen(fd, "wb")
        return self.f

    def __exit__(self, exc_type, *rest):
        try:
            if exc_type is None:
                self.f.flush()
                os.fsync(self.f.fileno())
                self.f.close()
                os.replace(self.tmp, self.path)
                return False
        except BaseException:
            self._discard()
            raise
        self._discard()
        return False

    def _discard(self) -> None:
        with contextlib.suppress(OSError):
            self.f.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)
