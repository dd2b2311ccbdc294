"""The unencrypted-state-dirs rule: an enc+ checkpoint directory with savepoints, HA storage, the
changelog or ForSt's remote primary directory left unencrypted. The cases (tests/vectors/state-dirs.json)
are shared with the Java twin's StateDirsTest, which the enc+ file systems use to refuse to start."""
from __future__ import annotations

import json
import os

import pytest

from heliosdb_flink_crypto import config
from heliosdb_flink_crypto.flink import state_dirs

with open(os.path.join(os.path.dirname(__file__), "vectors", "state-dirs.json"), encoding="utf-8") as f:
    CASES = json.load(f)["cases"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: " ".join(f"{k}={v}" for k, v in c["conf"].items()))
def test_the_shared_cases_flag_exactly_their_keys(case):
    assert [p.key for p in state_dirs.unencrypted(case["conf"])] == case["flagged"]


def test_each_place_is_described_with_its_encrypted_form_and_the_option():
    conf = {"execution.checkpointing.dir": "enc+gs://b/c", "state.changelog.enabled": True,
            "state.changelog.dstl.dfs.base-path": "/data/dstl", "state.backend.forst.primary-dir": "gs://b/f"}
    got = [p.describe() for p in state_dirs.unencrypted(conf)]
    assert got[0].startswith("state.changelog.dstl.dfs.base-path is /data/dstl: Flink writes the changelog "
                             "backend's state changes there unencrypted") and "enc+file:///data/dstl" in got[0]
    assert got[1].startswith("state.backend.forst.primary-dir is gs://b/f: Flink writes ForSt's live SST files") \
        and "point it at enc+gs://b/f" in got[1]
    assert all(state_dirs.ALLOW + ": true" in d for d in got)
    assert config.option(state_dirs.ALLOW).default is False
