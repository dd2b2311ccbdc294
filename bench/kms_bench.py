"""KMS provider benchmark against the local stand-ins (moto, HTTPS Key Vault, gRPC Cloud KMS, SoftHSMv2).

Per provider: wrap and unwrap latency (p50/p99 over --calls round trips, real SDK over the real
protocol on 127.0.0.1), and KMS calls made by CheckpointCrypto for checkpoint-like batches of
--files files: the first batch (cold cache), the next one (warm: should be 0), and reading a batch
back in a fresh process (empty cache: one unwrap per DEK).

    .venv/bin/python bench/kms_bench.py [--calls 200] [--files 100] [--json] [--only aws,gcp]

Loopback figures measure SDK + protocol overhead, not a cloud region's network latency.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

from heliosdb_flink_crypto import CheckpointCrypto
from heliosdb_flink_crypto.engine import kms_context
from heliosdb_flink_crypto.observe import EventBus


def _pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def setups():
    """name -> context manager factory yielding (uri, settings, providers-or-None)."""
    import contextlib

    @contextlib.contextmanager
    def aws():
        from heliosdb_flink_crypto.testing.aws import MotoKms
        with MotoKms() as kms:
            arn = kms.client().create_key()["KeyMetadata"]["Arn"]
            yield "aws-kms://" + arn, kms.settings(), None

    @contextlib.contextmanager
    def azure():
        from heliosdb_flink_crypto.kms.azure import AzureKeyVaultProvider
        from heliosdb_flink_crypto.testing.azure import AzureKeyVaultStandIn, StaticTokenCredential
        with AzureKeyVaultStandIn() as kv:
            kv.create_key("bench", "RSA")
            uri = f"azure-kv://{kv.host}/keys/bench"
            yield uri, kv.settings(), lambda: {uri: AzureKeyVaultProvider(uri, kv.settings(),
                                                                          credential=StaticTokenCredential())}

    @contextlib.contextmanager
    def gcp():
        from heliosdb_flink_crypto.testing.gcp import GcpKmsStandIn
        with GcpKmsStandIn() as s:
            yield "gcp-kms://" + s.create_key(), s.settings(), None

    @contextlib.contextmanager
    def pkcs11():
        from heliosdb_flink_crypto.kms import open_provider
        from heliosdb_flink_crypto.testing.softhsm import SoftHsm
        with SoftHsm() as hsm:
            t = hsm.create_token()
            uri = t.uri("bench")
            open_provider(uri, t.settings()).create_key()
            yield uri, t.settings(), None

    return {"aws": aws, "azure": azure, "gcp": gcp, "pkcs11": pkcs11}


def bench_one(uri, settings, providers, calls: int, files: int) -> dict:
    cc = CheckpointCrypto([uri], settings=settings, providers=providers() if providers else None)
    p = cc.provider(uri)
    ctx = kms_context(os.urandom(16), "bench")
    p.wrap(os.urandom(32), ctx)  # connect, warm up
    wraps, unwraps = [], []
    for _ in range(calls):
        dek = os.urandom(32)
        t = time.perf_counter()
        w, v = p.wrap(dek, ctx)
        t2 = time.perf_counter()
        assert p.unwrap(w, v, ctx) == dek
        unwraps.append(time.perf_counter() - t2)
        wraps.append(t2 - t)

    bus = EventBus()
    n = {"calls": 0}
    bus.subscribe(lambda e: n.__setitem__("calls", n["calls"] + (e["op"] == "kms_call")))
    writer = CheckpointCrypto([uri], settings=settings, bus=bus, providers=providers() if providers else None)
    payload = os.urandom(4096)
    batches = []
    blobs = []
    for _ in range(2):
        before = n["calls"]
        blobs = [writer.encrypt_bytes(payload) for _ in range(files)]
        batches.append(n["calls"] - before)
    reader = CheckpointCrypto([uri], settings=settings, bus=bus, providers=providers() if providers else None)
    before = n["calls"]
    t = time.perf_counter()
    assert all(reader.decrypt_bytes(b) == payload for b in blobs)
    read_s = time.perf_counter() - t
    ms = lambda s: round(s * 1000, 3)  # noqa: E731
    return {"uri": uri.split("?")[0], "wrap_p50_ms": ms(statistics.median(wraps)), "wrap_p99_ms": ms(_pct(wraps, 99)),
            "unwrap_p50_ms": ms(statistics.median(unwraps)), "unwrap_p99_ms": ms(_pct(unwraps, 99)),
            "kms_calls_first_batch": batches[0], "kms_calls_warm_batch": batches[1],
            "kms_calls_read_batch_fresh": n["calls"] - before, "read_batch_ms": ms(read_s)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--only", default="aws,azure,gcp,pkcs11")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    results = {}
    for name, factory in setups().items():
        if name not in args.only.split(","):
            continue
        try:
            with factory() as (uri, settings, providers):
                results[name] = bench_one(uri, settings, providers, args.calls, args.files)
        except Exception as e:  # noqa: BLE001 - report and go on with the other providers
            results[name] = {"error": f"{type(e).__name__}: {e}"}
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    print(f"{'provider':8} {'wrap p50':>9} {'wrap p99':>9} {'unwrap p50':>10} {'unwrap p99':>10} "
          f"{'calls 1st':>9} {'calls warm':>10} {'calls read':>10}   ({args.calls} round trips, batches of {args.files} files)")
    for name, r in results.items():
        if "error" in r:
            print(f"{name:8} error: {r['error']}")
            continue
        print(f"{name:8} {r['wrap_p50_ms']:>7} ms {r['wrap_p99_ms']:>6} ms {r['unwrap_p50_ms']:>7} ms "
              f"{r['unwrap_p99_ms']:>7} ms {r['kms_calls_first_batch']:>9} {r['kms_calls_warm_batch']:>10} "
              f"{r['kms_calls_read_batch_fresh']:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
