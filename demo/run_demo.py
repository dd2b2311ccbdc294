"""heliosdb-flink-crypto demo: a real PyFlink job with encrypted checkpoints, stopped and restored.

Run it with ``./dev demo`` (sets everything up first) or ``.venv/bin/python demo/run_demo.py``.
Steps: make a local keyring; run a stateful job (keyed counters plus a marker string per key) with
checkpoints and a savepoint in ``enc+file://``; show that the files are ciphertext (``inspect``,
a raw-byte search for the marker, ``decrypt`` for contrast); ``verify`` them; stop the job (a
savepoint, then cancel), restore it from the savepoint and print the restored state; flip one byte
and watch ``verify`` catch it.
See docs/demo.md.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "flink"))

import harness  # noqa: E402  (runs tests/flink/jobs/counter_job.py, reads its output)

RECORDS, KEYS, PAD = 6000, 200, 100
BOLD, DIM, RESET = ("\033[1m", "\033[2m", "\033[0m") if sys.stdout.isatty() else ("", "", "")


def step(n: int, total: int, text: str) -> None:
    print(f"\n{BOLD}[{n}/{total}] {text}{RESET}", flush=True)


def say(text: str = "") -> None:
    print("  " + text.replace("\n", "\n  "), flush=True)


def cmd(*args: str) -> "harness.subprocess.CompletedProcess":
    shown = " ".join(a if " " not in a else repr(a) for a in args)
    say(f"{DIM}$ heliosdb-flink-crypto {shown}{RESET}")
    r = harness.cli(*args)
    for line in (r.stdout.strip() or r.stderr.strip()).splitlines():
        say("  " + line)
    return r


def rel(path: str, base: str) -> str:
    return os.path.relpath(path, base)


def size(n: int) -> str:
    return f"{n / 1024:.1f} KiB" if n >= 1024 else f"{n} B"


def fail(msg: str, run=None) -> int:
    print(f"\nDEMO FAILED: {msg}", file=sys.stderr)
    if run is not None:
        print(run.describe(), file=sys.stderr)
    return 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workdir", help="where keyring, checkpoints and savepoints go (default: a new temp dir)")
    p.add_argument("--clean", action="store_true", help="delete the work directory at the end")
    a = p.parse_args(argv)
    try:
        from heliosdb_flink_crypto.flink import jar_path
        jar_path()
    except FileNotFoundError as e:
        return fail(f"{e}\n(`./dev demo` builds it for you)")

    work = a.workdir or tempfile.mkdtemp(prefix="heliosdb-demo-")
    os.makedirs(work, exist_ok=True)
    keyring = f"local://{work}/keyring.json"
    cp_dir, sp_dir = os.path.join(work, "checkpoints"), os.path.join(work, "savepoints")
    conf = {"heliosdb.crypto.kms.uri": keyring}
    job = dict(records=RECORDS, keys=KEYS, pad=PAD, local_crypto=True)
    total = 6
    print(f"{BOLD}heliosdb-flink-crypto demo{RESET}: a real PyFlink job whose checkpoints are encrypted")
    print(f"work directory: {work}")

    step(1, total, "Create a local development keyring (key-encryption keys in a 0600 file)")
    if os.path.exists(harness.local_path(keyring)):
        say(f"using the existing keyring {harness.local_path(keyring)}")
    elif cmd("keyring", "init", keyring).returncode:
        return fail("keyring init failed")
    say("In production the KMS URI names AWS KMS, Azure Key Vault, GCP KMS or an HSM instead.")

    step(2, total, "Run a stateful PyFlink job, checkpointing to enc+file://")
    say(f"job: {rel(harness.JOB, ROOT)} (PyFlink DataStream, local MiniCluster, HashMap state backend)")
    say(f"state: {KEYS} keys, each with a counter and a value 'HELIOS-MARKER-<key>-<count>-...'")
    say(f"execution.checkpointing.dir:           enc+file://{cp_dir}")
    say(f"execution.checkpointing.savepoint-dir: enc+file://{sp_dir}")
    say(f"heliosdb.crypto.kms.uri:               {keyring}")
    say("(heliosdb_flink_crypto.flink.local.enable(...) registers enc+file:// in PyFlink's JVM)")
    t = time.monotonic()
    first = harness.run_job(work, "first-run", f"enc+file://{cp_dir}", mode="savepoint-cancel", throttle_ms=2,
                            stop_after=3, savepoint_dir=f"enc+file://{sp_dir}", conf=conf, **job)
    if not first.ok:
        return fail("the first run failed", first)
    savepoint = first.result["savepoint"]
    sp_path = harness.local_path(savepoint)
    say(f"3 checkpoints completed, then a savepoint, then the job was cancelled (its last checkpoint\n"
        f"is retained: RETAIN_ON_CANCELLATION) after {time.monotonic() - t:.0f} s. Files written:")
    files = harness.all_files(cp_dir) + harness.all_files(sp_path)
    for f in files:
        say(f"  {rel(f, work):86} {size(os.path.getsize(f)):>10}")
    state_file = max(harness.all_files(sp_path), key=os.path.getsize)

    step(3, total, "Look inside: every file is ciphertext")
    cmd("inspect", state_file)
    hits = harness.files_with(work + "/checkpoints") + harness.files_with(sp_path)
    say(f"raw bytes of {len(files)} files searched for 'HELIOS-MARKER': found in {len(hits)} files")
    if hits:
        return fail(f"plaintext state on disk: {hits}")
    plain = os.path.join(work, "decrypted-state-file.bin")
    cmd("decrypt", "--kms", keyring, state_file, plain)
    with open(plain, "rb") as f:
        data = f.read()
    n = data.count(harness.MARKER)
    i = data.find(harness.MARKER)
    say(f"for contrast, the decrypted copy holds the state: {n} markers, e.g. "
        f"{data[i:i + 22].decode(errors='replace')!r}")
    os.remove(plain)

    step(4, total, "Verify: authenticate every byte of every file")
    if cmd("verify", "--quiet", "--kms", keyring, cp_dir, sp_path).returncode:
        return fail("verify failed")

    step(5, total, "Restore the job from the savepoint and run it to the end")
    say(f"execution.state-recovery.path: {savepoint}")
    t = time.monotonic()
    second = harness.run_job(work, "restored-run", f"enc+file://{work}/checkpoints-restored",
                             restore=savepoint, conf=conf, **job)
    if not second.ok:
        return fail("the restored run failed", second)
    restored = harness.assert_continued(second.out_dir, RECORDS, KEYS)
    out = harness.read_outputs(second.out_dir)
    say(f"restored and finished in {time.monotonic() - t:.0f} s. Restored state, first keys:")
    for k in range(5):
        prev = out[k][0][1] if out.get(k) else "(all records were before the savepoint)"
        say(f"  key {k}: count {restored[k]:3}, value {prev[:24]!r}... -> continued at {restored[k] + 1}")
    say(f"state of {sum(1 for c in restored.values() if c)} keys restored ({sum(restored.values())} of "
        f"{RECORDS} records counted before the stop); every key ended at exactly "
        f"{RECORDS // KEYS} = {RECORDS} records / {KEYS} keys: nothing lost, nothing counted twice")

    step(6, total, "Tamper with one byte: verification (and any restore) fails, naming the file")
    copy = os.path.join(work, "tampered", os.path.basename(sp_path))  # a savepoint moves as a folder
    shutil.rmtree(os.path.dirname(copy), ignore_errors=True)
    shutil.copytree(sp_path, copy)
    victim = max(harness.all_files(copy), key=os.path.getsize)
    harness.flip_byte(victim)
    say(f"flipped one bit in the middle of {rel(victim, work)}")
    r = cmd("verify", "--quiet", "--kms", keyring, copy)
    if r.returncode != 1:
        return fail("verify did not catch the flipped byte")

    print(f"\n{BOLD}Done.{RESET} Everything Flink wrote is under {work}"
          + (" (deleted)." if a.clean else "; delete it when you are done."))
    print("Next: docs/flink.md (install into a Flink cluster), docs/demo.md (what the demo showed).")
    if a.clean:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
