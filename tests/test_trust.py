"""Which KEKs may open a file comes from configuration, never from the file (issue 11 §2, library side):
key identities, what new headers record, the error for untrusted KMSs, and a DEK cache that a
planted file cannot poison."""
import os

import pytest

from heliosdb_flink_crypto import AuthenticationError, CheckpointCrypto, KeyAccessError
from heliosdb_flink_crypto.engine import kms_context
from heliosdb_flink_crypto.format import parse
from heliosdb_flink_crypto.kms.identity import TrustedSet, key_identity, stored_uri
from heliosdb_flink_crypto.text import shown
from heliosdb_flink_crypto.kms.local import LocalKeyring

ARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
GCP = "projects/p/locations/global/keyRings/r/cryptoKeys/k"


@pytest.mark.parametrize("a, b", [
    ("local:///etc/hfc/ring.json", "local:///etc/hfc/./ring.json"),
    ("aws-kms://alias/ckpt?region=eu-west-1&profile=prod", "aws-kms://alias/ckpt?region=eu-west-1"),
    ("aws-kms://" + ARN, "aws-kms://" + ARN + "?profile=other"),
    ("azure-kv://Vault.vault.azure.net/keys/ckpt", "azure-kv://vault.vault.azure.net/keys/ckpt/0123abcd"),
    ("gcp-kms://" + GCP, "gcp-kms:///" + GCP + "/"),
    ("pkcs11://tok/kek?module=/usr/lib/softhsm/libsofthsm2.so", "pkcs11://tok/kek?module=/tmp/evil.so"),
    ("pkcs11://tok/kek", "pkcs11://tok/kek?module=/tmp/evil.so"),
])
def test_client_parameters_are_not_part_of_a_keys_identity(a, b):
    assert key_identity(a) == key_identity(b)


@pytest.mark.parametrize("a, b", [
    ("local:///etc/hfc/ring.json", "local:///tmp/ring.json"),
    ("aws-kms://alias/ckpt?region=eu-west-1", "aws-kms://alias/ckpt?region=us-east-1"),
    ("aws-kms://alias/ckpt?region=eu-west-1", "aws-kms://alias/other?region=eu-west-1"),
    ("azure-kv://vault.vault.azure.net/keys/ckpt", "azure-kv://127.0.0.1:8443/keys/ckpt"),
    ("azure-kv://vault.vault.azure.net/keys/ckpt", "azure-kv://vault.vault.azure.net/keys/other"),
    ("gcp-kms://" + GCP, "gcp-kms://" + GCP.replace("/p/", "/q/")),
    ("pkcs11://tok/kek", "pkcs11://other-token/kek"),
    ("pkcs11://tok/kek", "local:///tok/kek"),
])
def test_another_key_has_another_identity(a, b):
    assert key_identity(a) != key_identity(b)


def test_aws_region_from_settings_or_arn():
    eu = {"heliosdb.crypto.kms.aws.region": "eu-west-1"}
    assert key_identity("aws-kms://alias/ckpt", eu) == key_identity("aws-kms://alias/ckpt?region=eu-west-1")
    assert key_identity("aws-kms://" + ARN) == ("aws-kms", "eu-west-1", ARN)
    with pytest.raises(ValueError, match="unknown KMS URI scheme 'vault'"):
        key_identity("vault://x")


def test_identities_of_header_uris_are_remembered_boundedly_and_match_key_identity(tmp_path):
    # every open asks for its slots' identities; a hostile folder naming ever new URIs must not grow
    # the memo, and a remembered answer is the one key_identity gives (None: not a KMS URI)
    ring = f"local://{tmp_path}/ring.json"
    trusted = TrustedSet([ring])
    hostile = [f"local:///planted/{i}.json" for i in range(TrustedSet.MEMO * 3)] + ["vault://x", "%%"]
    for uri in hostile + [ring.replace("/ring", "/./ring")] + hostile[:5]:
        try:
            expected = key_identity(uri)
        except ValueError:
            expected = None
        assert trusted.identity(uri) == expected
        assert trusted.identity.cache_info().currsize <= TrustedSet.MEMO
    assert trusted.uri_for(ring.replace("/ring", "/./ring")) == ring
    assert trusted.uri_for(hostile[0]) is None and trusted.uri_for("vault://x") is None


def test_new_headers_record_the_configured_uri_without_client_parameters(keyring_uri):
    assert stored_uri("pkcs11://tok/kek?module=/usr/lib/softhsm/libsofthsm2.so") == "pkcs11://tok/kek"
    assert stored_uri("aws-kms://alias/ckpt?region=eu-west-1&profile=prod") == "aws-kms://alias/ckpt?region=eu-west-1"
    assert stored_uri("gcp-kms://" + GCP) == "gcp-kms://" + GCP
    configured = "pkcs11://tok/kek?module=/opt/hsm/vendor-module.so"
    ring = LocalKeyring(keyring_uri)  # stands in for the HSM: the provider of the configured URI
    blob = CheckpointCrypto([configured], providers={configured: ring}).encrypt_bytes(b"state")
    assert [s.kms_uri for s in parse(blob).slots] == ["pkcs11://tok/kek"]
    # a reader configured with its own module path opens it through its own provider
    other_host = "pkcs11://tok/kek?module=/usr/lib/other-vendor.so"
    assert CheckpointCrypto([other_host], providers={other_host: ring}).decrypt_bytes(blob) == b"state"


def test_a_header_naming_only_untrusted_kms_names_them_escaped_and_says_how_to_trust(keyring_uri, forge):
    blob = forge([("local:///tmp/x\x1b[2J\x1b]0;owned\x07.json", "1", os.urandom(60)),
                  ("aws-kms://alias/attacker?region=eu-west-1", "1", os.urandom(60))])
    with pytest.raises(KeyAccessError) as e:
        CheckpointCrypto([keyring_uri]).decrypt_bytes(blob, path="chk-1/state")
    msg = str(e.value)
    assert msg.startswith("chk-1/state: its key slots name only KMS URIs that are not trusted here: ")
    assert r"local:///tmp/x\x1b[2J\x1b]0;owned\x07.json, aws-kms://alias/attacker?region=eu-west-1" in msg
    assert "\x1b" not in msg and "\x07" not in msg
    assert "--kms URI" in msg and "HELIOSDB_CRYPTO_KMS" in msg and "heliosdb.crypto.kms.decrypt-uris" in msg
    with pytest.raises(KeyAccessError, match="no KMS is trusted for decryption"):
        CheckpointCrypto().decrypt_bytes(blob)
    assert shown("a\u202eb\nc") == r"a\u202eb\nc"  # bidi overrides and newlines too


def test_decrypt_uris_are_trusted_for_reading_only(tmp_path, keyring_uri):
    old = CheckpointCrypto([keyring_uri]).encrypt_bytes(b"old")
    new_uri = f"local://{tmp_path}/new.json"
    LocalKeyring.create(new_uri)
    with pytest.raises(KeyAccessError, match="not trusted here"):
        CheckpointCrypto([new_uri]).decrypt_bytes(old)
    migrated = CheckpointCrypto([new_uri], decrypt_uris=[keyring_uri])
    assert migrated.decrypt_bytes(old) == b"old"
    assert [s.kms_uri for s in parse(migrated.encrypt_bytes(b"x")).slots] == [new_uri]


@pytest.mark.parametrize("order", ["planted first", "genuine first"])
def test_a_planted_file_cannot_poison_the_dek_cache(keyring_uri, forge, order):
    """Someone who may wrap under the KEK (but holds no DEK of ours) plants files with a genuine file's
    DEK id, KMS URI and KEK version: one sealed under a DEK of theirs, one that never authenticates."""
    genuine = CheckpointCrypto([keyring_uri]).encrypt_bytes(b"genuine state")
    h = parse(genuine)
    slot = h.slots[0]
    theirs = os.urandom(32)
    wrapped, version = LocalKeyring(keyring_uri).wrap(theirs, kms_context(h.dek_id, h.tenant))
    assert version == slot.key_version
    sealed_by_them = forge([(slot.kms_uri, version, wrapped)], dek=theirs, dek_id=h.dek_id)
    wrong_dek = forge([(slot.kms_uri, version, wrapped)], dek=os.urandom(32), dek_id=h.dek_id)

    reader = CheckpointCrypto([keyring_uri])  # a restoring process: one DEK cache for every file
    if order == "genuine first":
        assert reader.decrypt_bytes(genuine) == b"genuine state"
    with pytest.raises(AuthenticationError):
        reader.decrypt_bytes(wrong_dek)
    assert reader.decrypt_bytes(sealed_by_them) == b"attacker state"  # they could wrap: a valid file of theirs
    assert reader.decrypt_bytes(genuine) == b"genuine state"
    assert reader.decrypt_bytes(sealed_by_them) == b"attacker state"
    with pytest.raises(AuthenticationError):
        reader.decrypt_bytes(wrong_dek)


def test_the_cache_is_filled_only_after_the_header_authenticated(keyring_uri, forge):
    h = parse(CheckpointCrypto([keyring_uri]).encrypt_bytes(b"x"))
    wrapped, version = LocalKeyring(keyring_uri).wrap(os.urandom(32), kms_context(h.dek_id, h.tenant))
    reader = CheckpointCrypto([keyring_uri])
    for _ in range(2):  # the second try unwraps again: nothing was kept
        with pytest.raises(AuthenticationError):
            reader.decrypt_bytes(forge([(h.slots[0].kms_uri, version, wrapped)], dek_id=h.dek_id))
    assert reader.cache.stats()["entries"] == 0 and reader.cache.stats()["hits"] == 0


def test_retirement_predicates_compare_key_identities():
    from heliosdb_flink_crypto.lifecycle.usage import below, destroyed
    retired = below("pkcs11://tok/kek?module=/usr/lib/softhsm/libsofthsm2.so", 3)
    assert retired("pkcs11://tok/kek", "2") and not retired("pkcs11://tok/kek", "3")
    assert not retired("pkcs11://other/kek", "1") and not retired("nope://x", "1")
    assert destroyed("local:///a/ring.json", None)("local:///a/./ring.json", "7")
