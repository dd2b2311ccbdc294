"""ForSt's live database files (``<primary dir>/<job>/op_<operator>_attempt_<n>/db/<file>``) are sealed
with ``heliosdb.crypto.forst.segment-size`` (ForSt reads them by 4 KiB block at random offsets, and
every read decrypts whole segments); every other file keeps ``heliosdb.crypto.segment-size``."""
import json

import pytest

from heliosdb_flink_crypto import CheckpointCrypto, ConfigError
from heliosdb_flink_crypto.flink import hooks
from heliosdb_flink_crypto.flink.session import forst_db_file
from heliosdb_flink_crypto.format import PREFIX_LEN, parse_prefix

LIVE_SST = "enc+s3://bucket/ckpt/4f1c/shared/op_KeyedProcessOperator_7df1__1_1__attempt_0/db/000012.sst"


@pytest.fixture(autouse=True)
def _fresh_hooks():
    hooks.reset()
    yield
    hooks.reset()


@pytest.mark.parametrize("path, live", [
    (LIVE_SST, True),
    ("enc+file:///forst/4f1c/op_count_attempt_1/db/9c99f175-969a-4a4b-87b4-ef37c3f57ed5", True),
    ("/forst/4f1c/op_count_attempt_1/db/MANIFEST-000004", True),
    ("enc+s3://bucket/ckpt/4f1c/shared/2e55f189-0450-48fb-abd7-5f6214af3a92", False),  # uploaded SST
    ("enc+file:///ckpt/4f1c/chk-3/_metadata", False),
    ("enc+file:///db/forst/000001.dbtmp", False),  # a db folder, not ForSt's
    ("enc+file:///ckpt/op_count_attempt_1/db", False),  # the folder itself
    ("enc+file:///ckpt/op_count_attempt_1/db/x/y", False),
])
def test_forst_live_database_files_are_recognised_by_their_place(path, live):
    assert forst_db_file(path) is live


def _segment(sid: int, path: str) -> int:
    hid, header, seg, _ = hooks.dispatch("writer", sid, path)
    hooks.dispatch("discard", hid)
    assert parse_prefix(header[:PREFIX_LEN])[2] == seg
    return seg


def test_writer_seals_forst_files_with_their_own_segment_size(keyring_uri):
    default = hooks.dispatch("configure", json.dumps({"heliosdb.crypto.kms.uri": keyring_uri}))
    assert _segment(default, LIVE_SST) == 4096
    assert _segment(default, "enc+s3://bucket/ckpt/4f1c/shared/2e55f189") == 1 << 20
    tuned = hooks.dispatch("configure", json.dumps({
        "heliosdb.crypto.kms.uri": keyring_uri, "heliosdb.crypto.segment-size": "64kb",
        "heliosdb.crypto.forst.segment-size": "16kb"}))
    assert (_segment(tuned, LIVE_SST), _segment(tuned, "enc+file:///ckpt/x")) == (16384, 65536)


def test_new_file_takes_a_segment_size_for_that_file_only(keyring_uri):
    crypto = CheckpointCrypto([keyring_uri])
    try:
        _, raw, keys, _ = crypto.new_file(name="000012.sst", segment_size=4096)
        assert parse_prefix(raw[:PREFIX_LEN])[2] == 4096
        assert crypto.segment_size == 1 << 20  # the instance's default is untouched
    finally:
        crypto.close()


def test_a_bad_forst_segment_size_names_its_key(keyring_uri):
    with pytest.raises(ConfigError, match=r"heliosdb\.crypto\.forst\.segment-size.*multiple of 16"):
        hooks.dispatch("configure", json.dumps({"heliosdb.crypto.kms.uri": keyring_uri,
                                                "heliosdb.crypto.forst.segment-size": "100"}))
