"""Property tests of the Python reader over small files of both suites (issue 11 §6): cut at every
length, flipped at every bit, extended by anything, and random combinations of these. A reader
never authenticates a changed file, and whatever it hands out before failing is the original
plaintext at that offset. Both ways in: bytes in memory and a file on disk (positional reads)."""
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from heliosdb_flink_crypto import SUITE_AES_CBC_HMAC, SUITE_AES_GCM, CheckpointCrypto, HeliosCryptoError
from heliosdb_flink_crypto.kms.local import LocalKeyring

DATA = bytes(range(40))  # 3 segments of 16: two full, the last short
SUITES = {"gcm": SUITE_AES_GCM, "cbc": SUITE_AES_CBC_HMAC}
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def sealed(tmp_path_factory):
    d = tmp_path_factory.mktemp("props")
    uri = f"local://{d}/keyring.json"
    LocalKeyring.create(uri)
    out = {}
    for name, suite in SUITES.items():
        c = CheckpointCrypto([uri], suite=suite, segment_size=16)
        out[name] = (c, c.encrypt_bytes(DATA))
    return out, d


def rejected(c, raw: bytes, where: str | None = None) -> bool:
    """True if authenticating all of ``raw`` fails; reads on the way must match the plaintext."""
    try:
        r = c.open_path(where) if where else c.reader(raw)
    except HeliosCryptoError:
        return True
    with r:
        for offset, n in ((0, 16), (5, 30), (20, 100), (39, 1)):
            try:
                got = r.pread(offset, n)
            except HeliosCryptoError:
                continue
            assert got == DATA[offset:offset + len(got)], (offset, n)  # never other bytes
        try:
            r.verify_all()
        except HeliosCryptoError:
            return True
    return False


def on_disk(d, raw: bytes) -> str:
    path = os.path.join(d, "f")
    with open(path, "wb") as f:
        f.write(raw)
    return path


@pytest.mark.parametrize("suite", SUITES)
def test_every_cut_is_rejected_by_both_readers(sealed, suite):
    (crypto, ct), d = sealed[0][suite], sealed[1]
    for n in range(len(ct)):
        assert rejected(crypto, ct[:n]), n
        assert rejected(crypto, ct[:n], on_disk(d, ct[:n])), n


@pytest.mark.parametrize("suite", SUITES)
def test_every_bit_flip_is_rejected_by_both_readers(sealed, suite):
    (crypto, ct), d = sealed[0][suite], sealed[1]
    for pos in range(len(ct)):
        for bit in range(8):
            bad = ct[:pos] + bytes([ct[pos] ^ 1 << bit]) + ct[pos + 1:]
            assert rejected(crypto, bad), (pos, bit)
            with pytest.raises(HeliosCryptoError):  # read to the end: it fails, never returns data
                crypto.reader(bad).read()
        bad = ct[:pos] + bytes([ct[pos] ^ 0x80]) + ct[pos + 1:]
        assert rejected(crypto, bad, on_disk(d, bad)), pos


@SETTINGS
@given(suite=st.sampled_from(list(SUITES)), tail=st.binary(min_size=1, max_size=300))
def test_any_extension_is_rejected(sealed, suite, tail):
    (crypto, ct), d = sealed[0][suite], sealed[1]
    assert rejected(crypto, ct + tail)
    assert rejected(crypto, ct + tail, on_disk(d, ct + tail))
    with pytest.raises(HeliosCryptoError):
        crypto.reader(ct + tail).read()


MUTATION = st.one_of(
    st.tuples(st.just("cut"), st.floats(0, 1, exclude_max=True)),
    st.tuples(st.just("extend"), st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("flip"), st.floats(0, 1, exclude_max=True), st.integers(0, 7)),
    st.tuples(st.just("overwrite"), st.floats(0, 1, exclude_max=True), st.binary(min_size=1, max_size=32)),
    st.tuples(st.just("drop"), st.floats(0, 1, exclude_max=True), st.integers(1, 64)))


def mutate(raw: bytes, ops) -> bytes:
    for op in ops:
        at = int(op[1] * len(raw)) if len(op) > 1 and isinstance(op[1], float) else 0
        if op[0] == "cut":
            raw = raw[:at]
        elif op[0] == "extend":
            raw += op[1]
        elif op[0] == "flip" and raw:
            raw = raw[:at] + bytes([raw[at] ^ 1 << op[2]]) + raw[at + 1:]
        elif op[0] == "overwrite":
            raw = raw[:at] + op[2] + raw[at + len(op[2]):]
        elif op[0] == "drop":
            raw = raw[:at] + raw[at + op[2]:]
    return raw


@SETTINGS
@given(suite=st.sampled_from(list(SUITES)), ops=st.lists(MUTATION, min_size=1, max_size=4))
def test_any_combination_of_changes_is_rejected(sealed, suite, ops):
    (crypto, ct), d = sealed[0][suite], sealed[1]
    bad = mutate(ct, ops)
    if bad == ct:
        return
    assert rejected(crypto, bad)
    assert rejected(crypto, bad, on_disk(d, bad))


@pytest.mark.parametrize("suite", SUITES)
def test_reading_a_cut_file_to_its_end_always_fails(sealed, suite):
    crypto, ct = sealed[0][suite]
    for n in range(len(ct)):
        with pytest.raises(HeliosCryptoError):
            crypto.reader(ct[:n]).read()
