"""Tenants by path prefix: resolution, isolation of keys and files, copied files refused, shredding."""
import os

import pytest

from heliosdb_flink_crypto import (CheckpointCrypto, ConfigError, KeyAccessError, KmsAccessDeniedError,
                                   KmsInvalidCiphertextError)
from heliosdb_flink_crypto.engine import kms_context
from heliosdb_flink_crypto.format import parse
from heliosdb_flink_crypto.cli import main
from heliosdb_flink_crypto.kms.local import LocalKeyring
from heliosdb_flink_crypto.lifecycle import (Tenant, TenantMap, TenantMismatchError, TenantRouter, destroy)
from heliosdb_flink_crypto.lifecycle.tenants import normalize
from heliosdb_flink_crypto.observe import EventBus


@pytest.fixture
def setup(tmp_path):
    uris = {}
    for name in ("default", "acme", "globex", "acme-eu"):
        uris[name] = f"local://{tmp_path}/keys/{name}.json"
        LocalKeyring.create(uris[name])
    root = tmp_path / "ckpt"
    conf = {"heliosdb.crypto.kms.uri": uris["default"], "heliosdb.crypto.segment-size": "64",
            "heliosdb.crypto.tenants.acme.path-prefix": f"file://{root}/acme",
            "heliosdb.crypto.tenants.acme.kms.uri": uris["acme"],
            "heliosdb.crypto.tenants.acme-eu.path-prefix": f"enc+file://{root}/acme/eu/",
            "heliosdb.crypto.tenants.acme-eu.kms.uri": uris["acme-eu"],
            "heliosdb.crypto.tenants.globex.path-prefix": str(root / "globex"),
            "heliosdb.crypto.tenants.globex.kms.uri": uris["globex"]}
    return conf, uris, root


def write(router, path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f, router.crypto_for(str(path)).writer(f) as w:
        w.write(data)


def read(router, path):
    with open(path, "rb") as f, router.crypto_for(str(path)).reader(f, path=str(path)) as r:
        return r.read()


def test_longest_prefix_wins_on_whole_path_components(setup):
    conf, uris, root = setup
    m = TenantMap.from_config(conf)
    assert m.resolve(f"enc+file://{root}/acme/chk-1/x") == ("acme", (uris["acme"],))
    assert m.resolve(f"{root}/acme/eu/chk-2/x") == ("acme-eu", (uris["acme-eu"],))
    assert m.resolve(f"file:{root}/acme/eu") == ("acme-eu", (uris["acme-eu"],))
    assert m.resolve(f"{root}/acmeX/chk-1") == ("", (uris["default"],))  # not a component match
    assert m.resolve(f"{root}/globex/../acme/y")[0] == "acme"  # '..' resolved before matching
    assert m.resolve("s3://bucket/other")[0] == ""


def test_normalize_uris():
    assert normalize("enc+s3://Bucket/a//b/") == "s3://Bucket/a/b"
    assert normalize("s3://bucket") == normalize("s3://bucket/") == "s3://bucket"
    assert normalize("file:///tmp/x/") == normalize("enc+file:/tmp/x") == "/tmp/x"
    assert normalize("rel/dir") == os.path.abspath("rel/dir")


def test_configuration_errors_name_the_key(setup):
    conf, uris, root = setup
    with pytest.raises(ConfigError, match=r"tenants\.x\.kms\.uri"):
        TenantMap.from_config({"heliosdb.crypto.tenants.x.path-prefix": "/x"})
    with pytest.raises(ConfigError, match="same prefix"):
        TenantMap.from_config({**conf, "heliosdb.crypto.tenants.dup.path-prefix": str(root / "globex"),
                               "heliosdb.crypto.tenants.dup.kms.uri": uris["acme"]})
    with pytest.raises(ConfigError, match="tenant ids"):
        TenantMap([Tenant("bad id", "/x", ("local:///k",))])
    with pytest.raises(ConfigError, match="unknown option"):
        TenantRouter.from_config({**conf, "heliosdb.crypto.tenants.acme.colour": "red"})


def test_require_match_refuses_paths_of_no_tenant(setup):
    conf, uris, root = setup
    router = TenantRouter.from_config({**conf, "heliosdb.crypto.tenants.require-match": "true"})
    assert router.crypto_for(str(root / "acme" / "f")).tenant == "acme"
    with pytest.raises(KeyAccessError, match="under no tenant"):
        router.crypto_for(str(root / "elsewhere" / "f"))
    assert "" not in [t.id for t in router.map.all()]


def test_each_tenant_writes_under_its_own_key_and_reads_its_own_files(setup):
    conf, uris, root = setup
    router = TenantRouter.from_config(conf)
    files = {t: root / t / "chk-1" / "state" for t in ("acme", "globex", "acme/eu", "plain")}
    for t, path in files.items():
        write(router, path, f"state of {t}".encode())
    for t, path in files.items():
        assert read(router, path) == f"state of {t}".encode()
    tenants = {"acme": "acme", "globex": "globex", "acme/eu": "acme-eu", "plain": ""}
    for t, path in files.items():
        h = main_inspect(path)
        assert h["tenant"] == tenants[t]
        assert [s["kms_uri"] for s in h["key_slots"]] == [uris[tenants[t] or "default"]]
    assert router.crypto_for(str(files["acme"])) is router.crypto_for(str(root / "acme" / "other"))
    assert len({id(c.cache) for c in router.cryptos()}) == 4  # no shared DEK cache
    with pytest.raises(ValueError, match="belongs to tenant"):
        router.crypto_for(str(files["acme"])).new_file("globex")


def main_inspect(path):
    from heliosdb_flink_crypto.cli.core import describe
    return describe(str(path))


def test_a_file_copied_into_another_tenants_prefix_is_refused_before_any_kms_call(setup):
    conf, uris, root = setup
    bus, events = EventBus(), []
    bus.subscribe(events.append)
    router = TenantRouter.from_config(conf, bus=bus)
    src, dst = root / "acme" / "chk-1" / "s", root / "globex" / "chk-1" / "s"
    write(router, src, b"acme secrets")
    os.makedirs(dst.parent)
    dst.write_bytes(src.read_bytes())
    events.clear()
    with pytest.raises(TenantMismatchError, match="belongs to tenant 'acme' but its path belongs to tenant 'globex'"):
        read(router, dst)
    ops = [e["op"] for e in events]
    assert ops[0] == "tenant_mismatch" and "unwrap" not in ops and "kms_call" not in ops  # before any KMS call
    plain = root / "x" / "s"
    os.makedirs(plain.parent)
    plain.write_bytes(src.read_bytes())
    with pytest.raises(TenantMismatchError, match="'<default>'"):
        read(router, plain)


def test_a_tenants_key_cannot_unwrap_another_tenants_data_key(setup):
    conf, uris, root = setup
    router = TenantRouter.from_config(conf)
    path = root / "acme" / "s"
    write(router, path, b"acme only")
    data = path.read_bytes()
    h = parse(data)
    # globex's KEK, directly, with acme's own context: refused
    with pytest.raises(KmsInvalidCiphertextError):
        LocalKeyring(uris["globex"]).unwrap(h.slots[0].wrapped, h.slots[0].key_version, kms_context(h.dek_id, "acme"))
    # globex's crypto does not even try acme's KMS (not one of its URIs)
    with pytest.raises(KeyAccessError, match="not trusted here"):
        CheckpointCrypto([uris["globex"]], tenant="acme").decrypt_bytes(data)
    # acme's URI pointed at globex's key material: the unwrap fails, nothing decrypts
    swapped = CheckpointCrypto([uris["acme"]], tenant="acme", providers={uris["acme"]: LocalKeyring(uris["globex"])})
    with pytest.raises(KeyAccessError, match="does not open"):
        swapped.decrypt_bytes(data)


def test_one_tenant_cannot_read_another_in_the_same_process_even_with_a_shared_kms(tmp_path):
    shared = f"local://{tmp_path}/shared.json"
    LocalKeyring.create(shared)
    conf = {"heliosdb.crypto.kms.uri": shared, "heliosdb.crypto.segment-size": "64",
            "heliosdb.crypto.tenants.a.path-prefix": str(tmp_path / "a"), "heliosdb.crypto.tenants.a.kms.uri": shared,
            "heliosdb.crypto.tenants.b.path-prefix": str(tmp_path / "b"), "heliosdb.crypto.tenants.b.kms.uri": shared}
    router = TenantRouter.from_config(conf)
    write(router, tmp_path / "a" / "f", b"tenant a")
    assert read(router, tmp_path / "a" / "f") == b"tenant a"
    b = router.crypto_for(str(tmp_path / "b" / "f"))
    blob = (tmp_path / "a" / "f").read_bytes()
    with pytest.raises(TenantMismatchError):
        b.decrypt_bytes(blob, path=str(tmp_path / "b" / "f"))
    # even bypassing the check, b's own header tenant cannot be forged onto a's file
    forged = blob.replace(b"\x00\x01a", b"\x00\x01b", 1)
    assert forged != blob
    with pytest.raises(KeyAccessError, match="does not open"):  # the KMS context binds the tenant
        b.decrypt_bytes(forged, path="forged")


def test_shredding_a_tenant_makes_every_one_of_its_checkpoints_unreadable(setup, capsys):
    conf, uris, root = setup
    router = TenantRouter.from_config(conf)
    for i in range(3):
        write(router, root / "acme" / f"chk-{i}" / "s", b"acme")
        write(router, root / "globex" / f"chk-{i}" / "s", b"globex")
    LocalKeyring(uris["acme"]).rotate()
    write(router, root / "acme" / "chk-9" / "s", b"acme, version 1 still cached")
    acme = router.crypto_for(str(root / "acme" / "x"))
    assert read(router, root / "acme" / "chk-0" / "s") == b"acme"  # DEK now cached in this process
    destroy(LocalKeyring(uris["acme"]), cryptos=router.cryptos())
    for i in range(3):
        with pytest.raises(KeyAccessError, match="destroyed"):
            read(router, root / "acme" / f"chk-{i}" / "s")
        assert read(router, root / "globex" / f"chk-{i}" / "s") == b"globex"
    with pytest.raises(KmsAccessDeniedError, match="destroyed"):
        acme.new_file()  # and nothing new is written under the shredded key
    capsys.readouterr()
    assert main(["verify", "-q", "--kms", uris["acme"], str(root / "acme")]) == 1
    out = capsys.readouterr().out
    assert out.count("key unavailable") == 4 and "destroyed" in out
    assert main(["verify", "-q", "--kms", uris["globex"], str(root / "globex")]) == 0
