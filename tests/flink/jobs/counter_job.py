"""A stateful PyFlink DataStream job with known, checkable keyed state.

Reads the numbers 0..records-1 (a checkpointed FLIP-27 source), keys them by ``n % keys`` and keeps,
per key, a counter and a marker string ``HELIOS-MARKER-<key>-<count>`` (optionally padded to make
the state large). Every element writes one JSON line ``[key, count, previous_marker]`` to
``--out-dir`` (one file per subtask and attempt), so a restored run shows exactly where each key's
state continued from.

Modes:
  run            execute and wait for the end (a restore run, or a run that should fail)
  stop           execute_async, wait for ``--stop-after`` completed checkpoints, stop with a savepoint
                 into ``--savepoint-dir`` (the savepoint path goes to the result file)
  cancel         execute_async, wait for ``--stop-after`` completed checkpoints, cancel (the last
                 checkpoint is retained: RETAIN_ON_CANCELLATION)
  savepoint-cancel  as cancel, but first take a savepoint (so one run leaves both to restore from)
  observe        after ``--stop-after`` checkpoints, remove ``--remove-file`` (e.g. the keyring: the KMS
                 becomes unreachable), watch ``--observe-seconds`` (or until ``--observe-failed`` more
                 checkpoints failed), record the REST checkpoint counts, cancel
  hold           run until ``--stop-file`` exists (the benchmark watches the REST API meanwhile), cancel
  submit         env.execute() under ``flink run -d`` (detached: returns after submission)
Results (status, savepoint path, error) are written as JSON to ``--result``.
Used by tests/flink, demo/run_demo.py and bench/flink_checkpoint_bench.py.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
import traceback

MARKER = "HELIOS-MARKER"
INFLIGHT = "HELIOS-INFLIGHT"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint-dir", required=True, help="URI, e.g. file:///tmp/cp or enc+file:///tmp/cp")
    p.add_argument("--backend", choices=["hashmap", "rocksdb", "forst"], default="hashmap")
    p.add_argument("--incremental", action="store_true")
    p.add_argument("--unaligned", action="store_true")
    p.add_argument("--interval-ms", type=int, default=1000)
    p.add_argument("--records", type=int, default=20000)
    p.add_argument("--keys", type=int, default=400,
                   help="keep keys*2 under python.state.cache-size (1000) or state access gets slow")
    p.add_argument("--pad", type=int, default=0, help="bytes of padding in each key's marker value")
    p.add_argument("--throttle-ms", type=float, default=0.0,
                   help="sleep per element before the shuffle (slows run 1, no backpressure)")
    p.add_argument("--slow-ms", type=float, default=0.0,
                   help="sleep per element in the keyed operator (backpressure: records wait in flight)")
    p.add_argument("--parallelism", type=int, default=1)
    p.add_argument("--restore", default="", help="checkpoint or savepoint path to restore from")
    p.add_argument("--mode", choices=["run", "stop", "cancel", "savepoint-cancel", "observe", "hold", "submit"], default="run")
    p.add_argument("--stop-after", type=int, default=1, help="completed checkpoints before stop/cancel")
    p.add_argument("--savepoint-dir", default="")
    p.add_argument("--savepoint-format", choices=["canonical", "native"], default="canonical")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--result", default="")
    p.add_argument("--rest-port", type=int, default=0)
    p.add_argument("--timeout", type=float, default=240.0)
    p.add_argument("--remove-file", default="")
    p.add_argument("--stop-file", default="")
    p.add_argument("--random-pad", action="store_true",
                   help="pad with random text (incompressible) instead of a repeated letter")
    p.add_argument("--observe-seconds", type=float, default=8.0)
    p.add_argument("--observe-failed", type=int, default=0,
                   help="observe: stop watching early once this many more checkpoints have failed")
    p.add_argument("--conf", action="append", default=[], help="extra KEY=VALUE Flink options")
    p.add_argument("--local-crypto", action="store_true",
                   help="enable enc+*:// in this MiniCluster (heliosdb_flink_crypto.flink.local)")
    return p.parse_args(argv)


def flink_config(a) -> dict[str, str]:
    conf = {
        "execution.checkpointing.interval": f"{a.interval_ms} ms",
        "execution.checkpointing.dir": a.checkpoint_dir,
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "execution.checkpointing.num-retained": "1",
        "execution.checkpointing.unaligned.enabled": str(a.unaligned).lower(),
        "execution.checkpointing.incremental": str(a.incremental).lower(),
        "state.backend.type": a.backend,
        "restart-strategy.type": "none",
        "python.executable": sys.executable,
        "python.client.executable": sys.executable,
        "parallelism.default": str(a.parallelism),
        "rest.address": "127.0.0.1",
        "rest.bind-address": "127.0.0.1",
    }
    if a.throttle_ms or a.slow_ms:
        # small Python bundles: a barrier waits for the bundle in the Python worker to finish, and
        # with the default 100000 elements a throttled run would hold each checkpoint for minutes
        conf["python.fn-execution.bundle.size"] = "200"
        conf["python.fn-execution.bundle.time"] = "100"
    if a.savepoint_dir:
        conf["execution.checkpointing.savepoint-dir"] = a.savepoint_dir
    if a.rest_port:
        conf["rest.port"] = str(a.rest_port)
    if a.restore:
        conf["execution.state-recovery.path"] = a.restore
    for kv in a.conf:
        k, _, v = kv.partition("=")
        conf[k] = v
    return conf


def build(env, a):
    from pyflink.common import Types, WatermarkStrategy
    from pyflink.datastream import KeyedProcessFunction, RuntimeContext
    from pyflink.datastream.connectors.number_seq import NumberSequenceSource
    from pyflink.datastream.state import ValueStateDescriptor

    keys, pad, out_dir, random_pad = a.keys, a.pad, a.out_dir, a.random_pad
    throttle, slow = a.throttle_ms / 1000.0, a.slow_ms / 1000.0

    class Count(KeyedProcessFunction):
        def open(self, ctx: RuntimeContext):
            self.count = ctx.get_state(ValueStateDescriptor("count", Types.LONG()))
            self.marker = ctx.get_state(ValueStateDescriptor("marker", Types.STRING()))
            os.makedirs(out_dir, exist_ok=True)
            name = f"part-{ctx.get_index_of_this_subtask()}-{ctx.get_attempt_number()}-{os.getpid()}.jsonl"
            self.out = open(os.path.join(out_dir, name), "a", buffering=1 << 16)
            if random_pad:  # one random block per worker: incompressible, cheap per update
                import base64
                self.padding = base64.b64encode(os.urandom(pad))[:pad].decode()
            else:
                self.padding = "x" * pad

        def process_element(self, value, ctx):
            if slow:
                time.sleep(slow)
            key = int(value.rsplit("-", 1)[1]) % keys
            prev_marker = self.marker.value()
            n = (self.count.value() or 0) + 1
            self.count.update(n)
            self.marker.update(f"{MARKER}-{key}-{n}-{self.padding}")
            self.out.write(json.dumps([key, n, (prev_marker or "")[:40]]) + "\n")
            yield key

        def close(self):
            self.out.close()

    ds = env.from_source(NumberSequenceSource(0, a.records - 1), WatermarkStrategy.no_watermarks(),
                         "numbers").uid("numbers")
    # records cross the network as marker strings: in-flight data of unaligned checkpoints
    def tag(n):
        if throttle:
            time.sleep(throttle)
        return f"{INFLIGHT}-{n}"

    tagged = ds.map(tag, output_type=Types.STRING()).uid("tag").name("tag")
    counted = (tagged.key_by(lambda s: int(s.rsplit("-", 1)[1]) % keys, key_type=Types.LONG())
               .process(Count(), output_type=Types.LONG()).uid("count").name("count"))
    counted.sink_to(_discarding_sink()).uid("discard").name("discard")


def _discarding_sink():
    from pyflink.datastream.connectors.base import Sink
    from pyflink.java_gateway import get_gateway
    jvm = get_gateway().jvm
    return Sink(jvm.org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink())


def completed_checkpoints(checkpoint_dir: str) -> list[str]:
    """URIs of chk-N directories holding a _metadata file (completed checkpoints), oldest first."""
    scheme, _, path = checkpoint_dir.rpartition("://")
    found = glob.glob(os.path.join(path, "*", "chk-*", "_metadata"))
    dirs = sorted((os.path.dirname(p) for p in found), key=lambda d: int(d.rsplit("-", 1)[1]))
    # restore through the same scheme: an enc+file:// checkpoint read as file:// is ciphertext
    return [f"{scheme}://{d}" if scheme else d for d in dirs]


def wait_checkpoints(a, client, t0) -> str:
    seen = set()
    while True:
        for c in completed_checkpoints(a.checkpoint_dir):
            seen.add(c)
        if len(seen) >= a.stop_after:
            return max(seen, key=lambda d: int(d.rsplit("-", 1)[1]))
        status = str(client.get_job_status().result())
        if status in ("FAILED", "CANCELED", "FINISHED"):
            raise RuntimeError(f"job ended ({status}) before {a.stop_after} checkpoint(s) completed")
        if time.monotonic() - t0 > a.timeout:
            raise TimeoutError(f"no {a.stop_after} completed checkpoint(s) within {a.timeout}s")
        time.sleep(0.2)


def savepoint_format(name: str):
    from pyflink.java_gateway import get_gateway
    return getattr(get_gateway().jvm.org.apache.flink.core.execution.SavepointFormatType, name.upper())


def stop_with_savepoint(client, savepoint_dir: str, fmt: str) -> str:
    """JobClient.stop_with_savepoint of PyFlink 2.3 calls a Java overload that no longer exists
    (it lacks the SavepointFormatType argument): call the Java client directly."""
    return str(client._j_job_client.stopWithSavepoint(False, savepoint_dir or None, savepoint_format(fmt)).get())


def trigger_savepoint(client, savepoint_dir: str, fmt: str) -> str:
    return str(client._j_job_client.triggerSavepoint(savepoint_dir or None, savepoint_format(fmt)).get())


def rest(a, path: str) -> dict:
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{a.rest_port}{path}", timeout=10) as r:
        return json.load(r)


def observe(a, client, result) -> None:
    before = rest(a, f"/jobs/{result['job_id']}/checkpoints")["counts"]
    if a.remove_file:
        os.remove(a.remove_file)
    end = time.monotonic() + a.observe_seconds
    status = ""
    while time.monotonic() < end:
        status = str(client.get_job_status().result())
        if status in ("FAILED", "CANCELED", "FINISHED"):
            break
        if a.observe_failed and rest(a, f"/jobs/{result['job_id']}/checkpoints")["counts"]["failed"] \
                >= before["failed"] + a.observe_failed:
            break
        time.sleep(0.5)
    result["counts_before"] = before
    result["counts_after"] = rest(a, f"/jobs/{result['job_id']}/checkpoints")["counts"]
    result["job_status"] = status
    if status not in ("FAILED", "CANCELED", "FINISHED"):
        client.cancel().result()


def main(argv=None) -> int:
    a = parse_args(argv)
    result: dict = {"mode": a.mode}
    t0 = time.monotonic()
    try:
        from pyflink.common import Configuration
        from pyflink.datastream import StreamExecutionEnvironment
        conf = flink_config(a)
        if a.local_crypto:  # the FileSystems see this configuration (the job's own they never see)
            from heliosdb_flink_crypto.flink import local as crypto_local
            crypto_local.enable(conf)
        cfg = Configuration()
        for k, v in conf.items():
            cfg.set_string(k, v)
        env = StreamExecutionEnvironment.get_execution_environment(cfg)
        build(env, a)
        if a.mode == "submit":
            env.execute("helios-counter")
            result["status"] = "SUBMITTED"
        elif a.mode == "run":
            r = env.execute("helios-counter")
            result["status"] = "FINISHED"
            result["job_id"] = str(r.get_job_id())
        else:
            client = env.execute_async("helios-counter")
            result["job_id"] = str(client.get_job_id())
            if a.mode != "hold":
                result["checkpoint"] = wait_checkpoints(a, client, t0)
            if a.mode == "hold":
                while not os.path.exists(a.stop_file) and time.monotonic() - t0 < a.timeout:
                    time.sleep(0.2)
                client.cancel().result()
                result["status"] = "CANCELED"
            elif a.mode == "observe":
                observe(a, client, result)
                result["status"] = "OBSERVED"
            elif a.mode == "stop":
                result["savepoint"] = stop_with_savepoint(client, a.savepoint_dir, a.savepoint_format)
                result["status"] = "STOPPED"
            else:
                if a.mode == "savepoint-cancel":
                    result["savepoint"] = trigger_savepoint(client, a.savepoint_dir, a.savepoint_format)
                client.cancel().result()
                result["status"] = "CANCELED"
            result["checkpoints"] = completed_checkpoints(a.checkpoint_dir)
    except Exception as e:  # the harness reads the error from the result file
        result["status"] = "ERROR"
        result["error"] = f"{type(e).__name__}: {e}"
        result["traceback"] = traceback.format_exc()
    result["seconds"] = round(time.monotonic() - t0, 3)
    if a.result:
        with open(a.result, "w") as f:
            json.dump(result, f, indent=1)
    print(json.dumps({k: v for k, v in result.items() if k != "traceback"}), flush=True)
    return 0 if result["status"] != "ERROR" else 1


if __name__ == "__main__":
    sys.exit(main())
