"""The demo (the README's first command) runs end to end and says what it showed."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

DEMO = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                    "demo", "run_demo.py")


def test_demo_runs_and_shows_ciphertext_restore_and_tamper_detection(tmp_path):
    r = subprocess.run([sys.executable, DEMO, "--workdir", str(tmp_path / "demo")], capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    out = r.stdout
    assert "found in 0 files" in out                      # no raw file shows the marker
    assert "AES-256-GCM" in out                           # inspect printed the header
    assert "the decrypted copy holds the state: 200 markers" in out
    assert "0 failed" in out                              # verify of the real files
    assert "nothing lost, nothing counted twice" in out   # the restore continued exactly
    assert "authentication failed" in out and "1 failed" in out  # the tampered copy
    assert "keyring.json" in out and "key material" not in out.lower()
