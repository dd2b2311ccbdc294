"""The shim's Python session: FIPS mode is checked before anything starts, and scheduled key
rotation runs in the process (the cluster's TaskManager or JobManager)."""
import time

import pytest

from heliosdb_flink_crypto.fips import FipsModeError, openssl_fips_enabled
from heliosdb_flink_crypto.flink.session import Session
from heliosdb_flink_crypto.kms.local import LocalKeyring


def test_fips_mode_refuses_to_start_on_a_non_fips_openssl(keyring_uri):
    assert not openssl_fips_enabled()  # this machine's OpenSSL has no FIPS provider loaded
    with pytest.raises(FipsModeError, match="openssl-fips-provider"):
        Session({"heliosdb.crypto.kms.uri": keyring_uri, "heliosdb.crypto.fips-mode": "true"})


def test_session_rotates_on_schedule_and_new_files_use_the_new_version(keyring_uri, tmp_path):
    s = Session({"heliosdb.crypto.kms.uri": keyring_uri,
                 "heliosdb.crypto.rotation.interval": "1 s",
                 "heliosdb.crypto.rotation.check-interval": "200 ms",
                 "heliosdb.crypto.rotation.state-file": str(tmp_path / "rotation.json")})
    try:
        c = s.crypto_for(f"enc+file://{tmp_path}/ckpt/chk-1/state")
        first = c.new_file()[0].slots[0].key_version
        deadline = time.monotonic() + 20
        while LocalKeyring(keyring_uri).current_key_version() == first and time.monotonic() < deadline:
            time.sleep(0.1)
        now = LocalKeyring(keyring_uri).current_key_version()
        assert now != first, "the session's rotation thread never rotated the key"
        deadline = time.monotonic() + 5
        while c.new_file()[0].slots[0].key_version != now and time.monotonic() < deadline:
            time.sleep(0.05)
        assert c.new_file()[0].slots[0].key_version == now
    finally:
        s.close()
    assert s.rotation._thread is None


def test_rotation_can_be_switched_off(keyring_uri, tmp_path):
    s = Session({"heliosdb.crypto.kms.uri": keyring_uri, "heliosdb.crypto.rotation.enabled": "false",
                 "heliosdb.crypto.rotation.state-file": str(tmp_path / "rotation.json")})
    assert s.rotation._thread is None
    s.close()


def unguarded_events(keyring_uri: str, allow: bool, **flink) -> list[dict]:
    """The state_dirs_unguarded events of a session started (and closed) with ``flink``'s keys too."""
    from heliosdb_flink_crypto.observe import BUS
    events = []
    listener = BUS.subscribe(events.append)
    try:
        Session({"heliosdb.crypto.kms.uri": keyring_uri, "heliosdb.crypto.rotation.enabled": "false",
                 "heliosdb.crypto.allow-unencrypted-state-dirs": str(allow).lower(), **flink}).close()
    finally:
        BUS.unsubscribe(listener)
    return [e for e in events if e["op"] == "state_dirs_unguarded"]


@pytest.mark.parametrize("allow", [True, False])
def test_turning_the_state_dirs_guard_off_is_recorded_for_the_audit_log(keyring_uri, tmp_path, allow):
    recorded = unguarded_events(keyring_uri, allow)
    assert recorded == ([{"op": "state_dirs_unguarded", "outcome": "ok",
                          "reason": "heliosdb.crypto.allow-unencrypted-state-dirs is true"}] if allow else [])


def test_the_unguarded_event_names_each_place_the_shim_passes(keyring_uri):
    """With the guard off the shim's session configuration carries the Flink keys the guard read
    (StateDirs.forSession): the audit event names each unencrypted place, as the shim's warning does."""
    [event] = unguarded_events(keyring_uri, True, **{
        "execution.checkpointing.dir": "enc+s3://b/chk", "execution.checkpointing.savepoint-dir": "s3://b/sp",
        "high-availability.type": "kubernetes", "high-availability.storageDir": "s3://b/ha",
        "state.changelog.dstl.dfs.base-path": "s3://b/cl"})  # changelog off: not a place
    assert event["places"] == ("execution.checkpointing.savepoint-dir = s3://b/sp; "
                               "high-availability.storageDir = s3://b/ha")
