"""Engine throughput vs one-shot AES-256-GCM and Tink's streaming AEAD, measured side by side.

Prints ratios (engine / one-shot, engine / Tink) so a noisy shared machine still gives a fair
comparison: rounds interleave the engine and one-shot AES-GCM, and the best round of each counts
(the ratio of the medians is printed too). Also reports ciphertext
overhead for a 64 MiB file and the latency of random 4 KiB reads in a 1 GiB encrypted file.

    python bench/engine_bench.py [--mib 64] [--rounds 5] [--segment-size 1mb] [--skip-1gib] [--breakdown]

``--breakdown`` also times, in the same interleaved rounds, where the engine's time goes: AES-GCM
alone in the format's segment calls (bare ``cryptography`` calls, one Python frame per batch of
four, the output rotating through one batch: the floor of any engine with this segment size), the
engine's segment loop through a file already open, and so, by difference, opening and closing.
"""
from __future__ import annotations

import argparse
import atexit
import io
import os
import random
import shutil
import statistics
import sys
import tempfile
import time

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from heliosdb_flink_crypto import DEFAULT_SEGMENT_SIZE, CheckpointCrypto
from heliosdb_flink_crypto.config import parse_size
from heliosdb_flink_crypto.engine.buffers import BATCH
from heliosdb_flink_crypto.format.layout import NONCE_TAIL
from heliosdb_flink_crypto.kms.local import LocalKeyring


class NullSink:
    def __init__(self):
        self.n = 0

    def write(self, b):
        self.n += len(b)
        return len(b)

    def flush(self):
        pass


def best(fn, rounds):
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def breakdown_contenders(crypto, data, ct, seg, chunk, oneshot_enc, oneshot_dec):
    """The breakdown's contenders, each right after a one-shot call (as the engine's own are, so each
    starts with the caches as full of one-shot's 64 MiB): names in parentheses, not in the results.
    The bare calls take the engine's batches: BATCH segments per sink write (encrypt), as many whole
    segments per call as ``chunk`` holds, up to BATCH (decrypt), one Python frame per batch."""
    n = len(data)
    aead, prefix = AESGCM(AESGCM.generate_key(256)), os.urandom(7)
    sealed = b"".join(aead.encrypt(prefix + NONCE_TAIL.pack(i, 0), data[i * seg:(i + 1) * seg], None)
                      for i in range(n // seg))

    def bare_calls(call, src, sealed_in: bool, out, per: int):
        """AES-GCM ``call`` over the payload ``src``, ``per`` segments a batch into ``out``, one frame a batch."""
        step_in, step_out = (seg + 16, seg) if sealed_in else (seg, seg + 16)

        def batch(i, at):
            for j in range(per):
                call(prefix + NONCE_TAIL.pack(i + j, 0), src[at:at + step_in], None, out[j * step_out:(j + 1) * step_out])
                at += step_in

        def run():
            for i in range(0, n // seg, per):
                batch(i, i * step_in)
        return run

    calls_enc = bare_calls(aead.encrypt_into, memoryview(data), False, memoryview(bytearray(BATCH * (seg + 16))), BATCH)
    calls_dec = bare_calls(aead.decrypt_into, memoryview(sealed), True, memoryview(chunk),
                           max(1, min(BATCH, len(chunk) // seg)))

    writer = crypto.writer(NullSink())  # one file whose segments go on: indexes never repeat in a run
    reader = crypto.reader(ct)

    def loop_enc():
        writer.write(data)

    def loop_dec():
        reader.seek(0)
        while reader.readinto(chunk):
            pass

    return [("(one-shot) calls encrypt", oneshot_enc), ("(calls) encrypt", calls_enc),
            ("(one-shot) loop encrypt", oneshot_enc), ("(loop) encrypt", loop_enc),
            ("(one-shot) calls decrypt", oneshot_dec), ("(calls) decrypt", calls_dec),
            ("(one-shot) loop decrypt", oneshot_dec), ("(loop) decrypt", loop_dec)]


def print_breakdown(times, seg):
    """Best rounds in ms and against one-shot: AES-GCM alone in segment calls, the engine's loop, the
    whole engine; open and close = whole - loop."""
    best = {k: min(v) * 1e3 for k, v in times.items()}
    print("where the engine's time goes (best rounds, ms for the payload; each right after a one-shot call):")
    for op in ("encrypt", "decrypt"):
        one = min(best[f"one-shot AES-GCM {op}"], best[f"(one-shot) calls {op}"], best[f"(one-shot) loop {op}"])
        calls, loop, whole = best[f"(calls) {op}"], best[f"(loop) {op}"], best[f"engine {op}"]
        print(f"  {op}: one-shot {one:.2f}; AES-GCM alone in {seg // 1024} KiB calls {calls:.2f} ({one / calls:.3f}); "
              f"engine loop, file open {loop:.2f} ({one / loop:.3f}); engine with open and close {whole:.2f} "
              f"({one / whole:.3f}): loop around the calls {loop - calls:+.2f}, open and close {whole - loop:+.2f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--segment-size", default=str(DEFAULT_SEGMENT_SIZE))
    ap.add_argument("--skip-1gib", action="store_true")
    ap.add_argument("--breakdown", action="store_true",
                    help="also time AES-GCM alone in segment calls and the engine's loop without open/close")
    a = ap.parse_args(argv)
    seg = parse_size(a.segment_size)
    n = a.mib << 20
    data = os.urandom(n)
    tmp = tempfile.mkdtemp(prefix="engine-bench-")
    atexit.register(shutil.rmtree, tmp, True)
    uri = f"local://{tmp}/k.json"
    LocalKeyring.create(uri)
    crypto = CheckpointCrypto([uri], segment_size=seg)
    key, nonce = AESGCM.generate_key(256), os.urandom(12)
    aead = AESGCM(key)
    out_buf = bytearray(n + 16)

    def oneshot_enc():
        aead.encrypt_into(nonce, data, None, out_buf)

    ct_one = aead.encrypt(nonce, data, None)
    plain_buf = bytearray(n)

    def oneshot_dec():
        aead.decrypt_into(nonce, ct_one, None, plain_buf)

    def engine_enc():
        with crypto.writer(NullSink()) as w:
            w.write(data)

    sink = io.BytesIO()
    with crypto.writer(sink) as w:
        w.write(data)
    ct = sink.getvalue()
    chunk = bytearray(1 << 20)

    def engine_dec():
        with crypto.reader(ct) as r:
            while r.readinto(chunk):
                pass

    # rounds interleave the contenders, so a change in the machine's load weighs on all of them alike
    contenders = [("one-shot AES-GCM encrypt", oneshot_enc), ("engine encrypt", engine_enc),
                  ("one-shot AES-GCM decrypt", oneshot_dec), ("engine decrypt", engine_dec)]
    if a.breakdown:
        contenders += breakdown_contenders(crypto, data, ct, seg, chunk, oneshot_enc, oneshot_dec)
    times = {name: [] for name, _ in contenders}
    for r in range(a.rounds + 1):  # round 0 warms up
        for name, fn in contenders:
            t = time.perf_counter()
            fn()
            if r:
                times[name].append(time.perf_counter() - t)
    results = {name: n / min(ts) / 1e6 for name, ts in times.items() if not name.startswith("(")}
    tink_enc = tink_dec = None
    try:
        import tink
        from tink import streaming_aead
        streaming_aead.register()
        handle = tink.new_keyset_handle(streaming_aead.streaming_aead_key_templates.AES256_GCM_HKDF_1MB)
        saead = handle.primitive(streaming_aead.StreamingAead)

        class Keep(io.BytesIO):
            def close(self):
                pass

        def t_enc():
            b = Keep()
            with saead.new_encrypting_stream(b, b"") as s:
                s.write(data)
            return b

        tct = t_enc().getvalue()

        def t_dec():
            with saead.new_decrypting_stream(io.BytesIO(tct), b"") as s:
                while s.readinto(chunk):
                    pass

        tink_enc = n / best(t_enc, a.rounds) / 1e6
        tink_dec = n / best(t_dec, a.rounds) / 1e6
    except ImportError:
        print("tink not installed: Tink comparison skipped", file=sys.stderr)

    print(f"payload {a.mib} MiB, segment size {seg} bytes, best of {a.rounds} rounds, "
          f"load average {os.getloadavg()[0]:.1f}")
    for k, v in results.items():
        print(f"  {k:28} {v:8.0f} MB/s")
    if tink_enc:
        print(f"  {'Tink streaming AEAD encrypt':28} {tink_enc:8.0f} MB/s")
        print(f"  {'Tink streaming AEAD decrypt':28} {tink_dec:8.0f} MB/s")
    re = results["engine encrypt"] / results["one-shot AES-GCM encrypt"]
    rd = results["engine decrypt"] / results["one-shot AES-GCM decrypt"]
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"ratio engine/one-shot, best rounds: encrypt {re:.2f}, decrypt {rd:.2f} (target >= 0.9); medians: "
          f"encrypt {med['one-shot AES-GCM encrypt'] / med['engine encrypt']:.2f}, "
          f"decrypt {med['one-shot AES-GCM decrypt'] / med['engine decrypt']:.2f}")
    if tink_enc:
        print(f"ratio engine/Tink:     encrypt {results['engine encrypt'] / tink_enc:.2f}, "
              f"decrypt {results['engine decrypt'] / tink_dec:.2f} (target > 1)")
    if a.breakdown:
        print_breakdown(times, seg)
    over = len(ct) - n
    hdr = len(ct) - (n + 16 * (-(-n // seg)))
    print(f"ciphertext overhead: {over} bytes = header {hdr} + {over - hdr} in segments "
          f"({(over - hdr) / n * 100:.4f}% of the plaintext; target <= 0.1%)")

    if not a.skip_1gib:
        path = os.path.join(tmp, "big.enc")
        block = os.urandom(16 << 20)
        with open(path, "wb") as f, crypto.writer(f) as w:
            for _ in range(64):
                w.write(block)
        del block
        lat = []
        rng = random.Random(7)
        with crypto.open_path(path) as r:
            size = r.size
            for _ in range(400):
                off = rng.randrange(0, size - 4096)
                t = time.perf_counter()
                r.pread(off, 4096)
                lat.append(time.perf_counter() - t)
        os.unlink(path)
        lat.sort()
        print(f"random 4 KiB read in a 1 GiB file (cached DEK): p50 {statistics.median(lat) * 1e3:.3f} ms, "
              f"p99 {lat[int(len(lat) * 0.99)] * 1e3:.3f} ms (target < 1 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
