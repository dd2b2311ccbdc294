"""Key rotation: policy, persisted state, manual / scheduled / detected rotation, < 1 s to take effect."""
import json
import os
import stat
import time

import pytest

from heliosdb_flink_crypto import CheckpointCrypto, ConfigError, KmsError
from heliosdb_flink_crypto.errors import HeliosCryptoError
from heliosdb_flink_crypto.kms.local import LocalKeyring
from heliosdb_flink_crypto.lifecycle import RotationManager, RotationPolicy, TenantRouter
from heliosdb_flink_crypto.lifecycle.rotation import DAY
from heliosdb_flink_crypto.lifecycle.state import RotationState, default_state_path
from heliosdb_flink_crypto.observe import EventBus


class Clock:
    def __init__(self, t=1_800_000_000.0):
        self.t = t

    def __call__(self):
        return self.t


@pytest.fixture
def bus():
    b, events = EventBus(), []
    b.subscribe(events.append)
    b.events = events
    return b


def version_of(crypto):
    h, _, _, events = crypto.new_file()
    events.encrypted(0)
    return h.slots[0].key_version


def key_bytes(path):
    with open(path) as f:
        return [v["key"] for v in json.load(f)["versions"].values() if "key" in v]


def test_policy_defaults_match_the_spec_and_decide_when_to_rotate():
    p = RotationPolicy()
    assert (p.enabled, p.interval, p.max_age, p.auto_rotate) == (True, 30 * DAY, 90 * DAY, True)
    assert p.due(29 * DAY) is None and p.due(30 * DAY) == "interval" and p.due(91 * DAY) == "max-age"
    manual = RotationPolicy(auto_rotate=False)
    assert manual.due(60 * DAY) is None and manual.due(90 * DAY) == "max-age"
    assert RotationPolicy(enabled=False).due(1000 * DAY) is None


def test_policy_from_flink_configuration_and_errors_name_the_key():
    p = RotationPolicy.from_config({"heliosdb.crypto.rotation.interval": "7 d",
                                    "heliosdb.crypto.rotation.auto-rotate": "false",
                                    "heliosdb.crypto.rotation.check-interval": "5 s"})
    assert (p.interval, p.auto_rotate, p.check_interval, p.max_age) == (7 * DAY, False, 5.0, 90 * DAY)
    with pytest.raises(ConfigError, match="heliosdb.crypto.rotation.max-age"):
        RotationPolicy.from_config({"heliosdb.crypto.rotation.max-age": "soon"})


def test_manual_rotation_takes_effect_for_new_files_in_under_a_second(keyring_uri, tmp_path, bus):
    crypto = CheckpointCrypto([keyring_uri], segment_size=64, bus=bus)
    old_file = crypto.encrypt_bytes(b"before rotation")
    assert version_of(crypto) == "1"
    m = RotationManager([keyring_uri], state_path=str(tmp_path / "state.json"), bus=bus)
    m.attach(crypto)
    t0 = time.perf_counter()
    r = m.rotate(keyring_uri)
    new_version = version_of(crypto)  # the next file after the rotation
    took = time.perf_counter() - t0
    assert (r.previous_version, r.key_version, new_version) == ("1", "2", "2")
    assert took < 1.0, f"rotation took {took:.3f} s to reach new files"
    assert r.invalidated == 1 and r.reason == "manual"
    assert crypto.decrypt_bytes(old_file) == b"before rotation"  # old version still decrypts
    ev = [e for e in bus.events if e["op"] == "rotate"]
    assert ev == [{"op": "rotate", "outcome": "ok", "kms_uri": keyring_uri, "key_version": "2",
                   "previous_version": "1", "reason": "manual", "seconds": ev[0]["seconds"]}]
    secrets = key_bytes(LocalKeyring(keyring_uri).path)
    assert not any(s in repr(bus.events) for s in secrets)
    assert stat.S_IMODE(os.stat(tmp_path / "state.json").st_mode) == 0o600


def test_without_the_manager_a_cached_data_key_outlives_an_outside_rotation_until_check(keyring_uri, tmp_path, bus):
    crypto = CheckpointCrypto([keyring_uri], segment_size=64, bus=bus)
    m = RotationManager([keyring_uri], state_path=str(tmp_path / "s.json"), bus=bus)
    m.attach(crypto)
    assert m.check() == []  # first pass: learns version 1, nothing due
    assert version_of(crypto) == "1"
    LocalKeyring(keyring_uri).rotate()  # another process (the CLI) rotates
    assert version_of(crypto) == "1"  # the cached DEK is still the old one...
    done = m.check()  # ...until the manager's next pass notices
    assert [(d.previous_version, d.key_version, d.reason) for d in done] == [("1", "2", "detected")]
    assert version_of(crypto) == "2"
    m.detach(crypto)
    LocalKeyring(keyring_uri).rotate()
    assert m.check()[0].invalidated == 0


def test_last_rotation_survives_a_restart_and_the_schedule_rotates(keyring_uri, tmp_path, bus):
    clock, state = Clock(), str(tmp_path / "state.json")
    m1 = RotationManager([keyring_uri], state_path=state, clock=clock, bus=bus)
    m1.rotate(keyring_uri)
    rotated_at = clock.t
    clock.t += 10 * DAY
    m2 = RotationManager([keyring_uri], state_path=state, clock=clock, bus=bus)  # "restarted"
    assert m2.last_rotation(keyring_uri) == rotated_at
    assert m2.check() == [] and m2.status(keyring_uri)["due"] is None
    assert m2.status(keyring_uri)["next_rotation"] == rotated_at + 30 * DAY
    clock.t = rotated_at + 30 * DAY
    done = m2.check()
    assert [(d.key_version, d.reason) for d in done] == [("3", "interval")]
    assert RotationState(state).get(keyring_uri) == {"version": "3", "last_rotation": clock.t}


def test_max_age_forces_a_rotation_even_without_auto_rotate(keyring_uri, tmp_path):
    clock = Clock(LocalKeyring(keyring_uri).versions()["1"]["created"])  # key made "now"
    m = RotationManager([keyring_uri], RotationPolicy(auto_rotate=False), str(tmp_path / "s.json"), clock=clock)
    assert m.last_rotation(keyring_uri) == clock.t  # taken from the keyring's creation time
    clock.t += 60 * DAY
    assert m.check() == []
    clock.t += 31 * DAY
    assert [d.reason for d in m.check()] == ["max-age"]


def test_background_thread_rotates_on_schedule(keyring_uri, tmp_path, bus):
    clock = Clock(LocalKeyring(keyring_uri).versions()["1"]["created"])
    crypto = CheckpointCrypto([keyring_uri], segment_size=64, bus=bus)
    m = RotationManager([keyring_uri], RotationPolicy(check_interval=0.02), str(tmp_path / "s.json"),
                        clock=clock, bus=bus)
    m.attach(crypto)
    with m:
        deadline = time.monotonic() + 5
        while not m.state.get(keyring_uri) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert version_of(crypto) == "1"
        clock.t += 31 * DAY  # a month passes
        while version_of(crypto) == "1" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert version_of(crypto) == "2"
    assert m._thread is None
    assert [e["reason"] for e in bus.events if e["op"] == "rotate"] == ["interval"]


def test_a_provider_without_rotate_is_reported_and_the_check_carries_on(tmp_path, bus, caplog):
    """The AWS provider (through moto) cannot rotate on demand: aliases are re-pointed instead."""
    from heliosdb_flink_crypto.testing.aws import MotoKms
    with MotoKms() as kms:
        client = kms.client()
        k1 = client.create_key()["KeyMetadata"]["Arn"]
        k2 = client.create_key()["KeyMetadata"]["Arn"]
        client.create_alias(AliasName="alias/ckpt", TargetKeyId=k1)
        uri = "aws-kms://alias/ckpt"
        settings = kms.settings(**{"version-cache": "0 s"})
        crypto = CheckpointCrypto([uri], segment_size=64, settings=settings, bus=bus)
        m = RotationManager([uri], state_path=str(tmp_path / "s.json"), settings=settings, bus=bus,
                            clock=Clock())
        m.attach(crypto)
        with pytest.raises(KmsError, match="cannot rotate on demand"):
            m.rotate(uri)
        assert bus.events[-1]["op"] == "rotate" and bus.events[-1]["outcome"] == "error"
        assert m.check() == [] and version_of(crypto) == k1
        old = crypto.encrypt_bytes(b"under k1")
        client.update_alias(AliasName="alias/ckpt", TargetKeyId=k2)  # the AWS way to rotate to a new key
        assert [(d.previous_version, d.key_version) for d in m.check()] == [(k1, k2)]
        assert version_of(crypto) == k2
        assert crypto.decrypt_bytes(old) == b"under k1"
        m.clock.t += 400 * DAY  # due, but cannot: logged, the thread would carry on
        assert m.check() == []
        assert "cannot rotate on demand" in caplog.text
        m.close()
        crypto.close()


def test_state_file_defaults_and_damage(tmp_path, keyring_uri):
    path = LocalKeyring(keyring_uri).path
    assert default_state_path([keyring_uri]) == path + ".rotation.json"
    assert default_state_path(["aws-kms://alias/x"]).endswith(os.path.join(".heliosdb-flink-crypto", "rotation.json"))
    assert default_state_path([keyring_uri], "/etc/x.json") == "/etc/x.json"
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(HeliosCryptoError, match="rotation state unreadable"):
        RotationState(str(bad)).read()


def test_from_config_manages_every_tenant_key_and_invalidates_router_cryptos(tmp_path):
    uris = {}
    for name in ("default", "acme"):
        uris[name] = f"local://{tmp_path}/{name}.json"
        LocalKeyring.create(uris[name])
    conf = {"heliosdb.crypto.kms.uri": uris["default"], "heliosdb.crypto.segment-size": "64",
            "heliosdb.crypto.tenants.acme.path-prefix": str(tmp_path / "acme"),
            "heliosdb.crypto.tenants.acme.kms.uri": uris["acme"],
            "heliosdb.crypto.rotation.state-file": str(tmp_path / "rot.json")}
    router = TenantRouter.from_config(conf)
    m = RotationManager.from_config(conf, router=router)
    assert set(m.uris) == set(uris.values()) and m.state.path == str(tmp_path / "rot.json")
    acme = router.crypto_for(str(tmp_path / "acme" / "chk-1" / "f"))  # made after the manager
    assert version_of(acme) == "1"
    assert m.rotate(uris["acme"]).invalidated == 1
    assert version_of(acme) == "2"
    assert RotationManager.from_config({"heliosdb.crypto.kms.uri": uris["default"]}).uris == [uris["default"]]


def test_a_data_key_being_made_during_the_rotation_is_not_kept(keyring_uri, tmp_path):
    """A DEK wrapped under the old version while the rotation runs must not become the current one."""
    import threading
    entered, release = threading.Event(), threading.Event()

    class SlowKeyring(LocalKeyring):
        def generate_data_key(self, context):
            out = super().generate_data_key(context)  # wrapped under version 1
            entered.set()
            release.wait(5)
            return out

    crypto = CheckpointCrypto([keyring_uri], segment_size=64, providers={keyring_uri: SlowKeyring(keyring_uri)})
    m = RotationManager([keyring_uri], state_path=str(tmp_path / "s.json"))
    m.attach(crypto)
    first = []
    writer = threading.Thread(target=lambda: first.append(version_of(crypto)))
    writer.start()
    assert entered.wait(5)
    rotator = threading.Thread(target=m.rotate, args=(keyring_uri,))
    rotator.start()
    time.sleep(0.05)
    release.set()
    writer.join(5)
    rotator.join(5)
    assert first == ["1"]  # the file that was already being started
    assert version_of(crypto) == "2"  # and nothing after the rotation
