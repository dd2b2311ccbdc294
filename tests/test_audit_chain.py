"""The audit hash chain and ``audit verify``: every kind of tampering is found and named."""
from __future__ import annotations

import json
import os

import pytest

from heliosdb_flink_crypto.audit import Chain, from_event, load_key, order_files, verify
from heliosdb_flink_crypto.audit.record import GENESIS, body_of, line_of, scrub_uri
from heliosdb_flink_crypto.cli import main
from heliosdb_flink_crypto.errors import ConfigError


def write_log(path, n=6, key=None, start=0, chain=None):
    chain = chain or Chain(key)
    with open(path, "a") as f:
        for i in range(start, start + n):
            f.write(chain.seal(from_event({"op": "encrypt", "file_id": f"f{i}", "bytes": i})) + "\n")
    return chain


def lines(path):
    with open(path) as f:
        return f.read().splitlines()


def rewrite(path, new_lines):
    with open(path, "w") as f:
        f.write("".join(x + "\n" for x in new_lines))


def test_allow_list_keeps_ids_and_drops_key_material_and_unknown_fields():
    dek = os.urandom(32)
    rec = from_event({"op": "unwrap", "outcome": "ok", "kms_uri": "aws-kms://AKIA:s3cret@kms.local:4566/k?token=t",
                      "key_version": "3", "file_id": "ab", "dek": dek, "plaintext": dek.hex(),
                      "seconds": 0.1234567891, "bytes": 10, "tenant": "t", "error": "x" * 2000,
                      "path": "s3://user:pw@bucket/chk/_metadata", "weird": object()})
    assert rec["kms_uri"] == "aws-kms://kms.local:4566/k"
    assert rec["path"] == "s3://bucket/chk/_metadata"
    assert rec["seconds"] == 0.123457 and rec["bytes"] == 10 and rec["key_version"] == "3"
    assert "dek" not in rec and "plaintext" not in rec and "weird" not in rec
    assert len(rec["error"]) < 600
    assert dek.hex() not in json.dumps(rec)
    assert from_event({"op": "x", "seconds": float("nan")})["seconds"] is None
    assert scrub_uri("not a uri") == "not a uri"


def test_intact_log_verifies_and_reports_its_span(tmp_path):
    p = tmp_path / "audit.log"
    write_log(p, 6)
    r = verify(order_files([str(p)])[0])
    assert r.ok and r.records == 6 and (r.first_seq, r.last_seq) == (0, 5)
    assert r.last_hash == json.loads(lines(p)[-1])["hash"]
    first = json.loads(lines(p)[0])
    assert first["prev"] == GENESIS and first["alg"] == "sha256"


@pytest.mark.parametrize("tamper,bad_line,words", [
    ("remove", 3, "missing"),
    ("alter", 3, "hash does not match"),
    ("insert", 3, "inserted"),
    ("reorder", 3, "missing"),
    ("garbage", 4, "not a JSON"),
    ("reformat", 2, "canonical"),
])
def test_tampering_is_detected_at_the_first_bad_line(tmp_path, tamper, bad_line, words):
    p = tmp_path / "audit.log"
    write_log(p, 6)
    ls = lines(p)
    if tamper == "remove":
        del ls[2]
    elif tamper == "alter":
        rec = json.loads(ls[2])
        rec["bytes"] = 999
        ls[2] = line_of(body_of(rec), rec["hash"])  # well-formed, old hash
    elif tamper == "insert":  # a forged record chained to line 2, with a correct plain hash
        prev = json.loads(ls[1])
        forged = Chain(None, seq=prev["seq"] + 1, prev=prev["hash"]).seal({"op": "decrypt", "outcome": "ok"})
        ls.insert(2, forged)
    elif tamper == "reorder":
        ls[2], ls[3] = ls[3], ls[2]
    elif tamper == "garbage":
        ls[3] = ls[3][:40]
    elif tamper == "reformat":
        ls[1] = json.dumps(json.loads(ls[1]))
    rewrite(p, ls)
    r = verify([str(p)])
    assert not r.ok
    assert (r.bad_file, r.bad_line) == (str(p), bad_line)
    assert words in r.reason


def test_rehashed_edit_without_key_is_caught_by_the_next_record(tmp_path):
    p = tmp_path / "audit.log"
    write_log(p, 5)
    ls = lines(p)
    rec = json.loads(ls[1])
    rec.pop("hash")
    rec["outcome"] = "error"
    ls[1] = Chain(None, seq=rec["seq"], prev=rec["prev"]).seal(rec)
    rewrite(p, ls)
    r = verify([str(p)])
    assert not r.ok and r.bad_line == 3 and "does not follow" in r.reason


def test_hmac_chain_rejects_forgery_wrong_key_missing_key_and_downgrade(tmp_path):
    key, other = os.urandom(32), os.urandom(32)
    p = tmp_path / "audit.log"
    write_log(p, 4, key=key)
    assert verify([str(p)], key).ok
    assert json.loads(lines(p)[0])["alg"] == "hmac-sha256"
    r = verify([str(p)], other)
    assert not r.ok and r.bad_line == 1 and "wrong key" in r.reason
    r = verify([str(p)])
    assert not r.ok and "give the key" in r.reason
    # An attacker without the key rewrites the whole log as a plain sha256 chain: the key holder sees it.
    forged = tmp_path / "forged.log"
    write_log(forged, 4)
    r = verify([str(forged)], key)
    assert not r.ok and r.bad_line == 1 and "downgraded" in r.reason
    # A record re-sealed with a different key mid-chain.
    ls = lines(p)
    rec = json.loads(ls[2])
    rec.pop("hash")
    ls[2] = Chain(other, seq=rec["seq"], prev=rec["prev"]).seal(rec)
    rewrite(p, ls)
    r = verify([str(p)], key)
    assert not r.ok and r.bad_line == 3


def test_chain_repr_and_key_length():
    key = os.urandom(32)
    assert key.hex() not in repr(Chain(key)) and "hmac" in repr(Chain(key))
    with pytest.raises(ValueError, match="at least 32 bytes"):
        Chain(b"short")


def test_rotated_set_is_ordered_by_number_and_a_removed_file_is_found(tmp_path):
    base = tmp_path / "audit.log"
    chain = None
    for n in (1, 2, 10):  # 10 sorts before 2 as text: order must be numeric
        chain = write_log(f"{base}.{n:06d}", 3, chain=chain)
    write_log(base, 2, chain=chain)
    sets = order_files([str(base)])
    assert sets == [[f"{base}.000001", f"{base}.000002", f"{base}.000010", str(base)]]
    # the shell's glob order gives the same set
    assert order_files(sorted(str(x) for x in tmp_path.iterdir())) == sets
    assert verify(sets[0]).records == 11
    os.unlink(f"{base}.000002")
    r = verify(order_files([str(base)])[0])
    assert not r.ok and r.bad_file == f"{base}.000010" and r.bad_line == 1
    # the oldest file rotated away: still verifies, with a note; --from-start refuses
    os.unlink(f"{base}.000001")
    os.unlink(f"{base}.000010")
    r = verify(order_files([str(base)])[0])
    assert r.ok and r.first_seq == 9 and "rotated away" in r.notes[0]
    r = verify(order_files([str(base)])[0], from_start=True)
    assert not r.ok and "starts at seq 9" in r.reason


def test_verify_edge_cases(tmp_path):
    empty = tmp_path / "empty.log"
    empty.write_text("")
    assert "empty" in verify([str(empty)]).reason
    assert "no audit log" in verify([]).reason
    assert "cannot read" in verify([str(tmp_path / "nope.log")]).reason
    other = tmp_path / "other.log"
    other.write_text('{"a":1}\n')
    assert "chain fields missing" in verify([str(other)]).reason
    other.write_text('{"alg":"md5","prev":"x","seq":0,"hash":"00"}\n')
    assert "unknown hash algorithm" in verify([str(other)]).reason
    other.write_text('{"alg":"sha256","prev":"x","seq":"0","hash":"00"}\n')
    assert "bad chain fields" in verify([str(other)]).reason
    with pytest.raises(ValueError, match="directory"):
        order_files([str(tmp_path)])


def test_load_key_from_file_or_env_never_shows_the_key(tmp_path):
    key = os.urandom(32).hex()  # 64 ASCII bytes
    kf = tmp_path / "audit.key"
    kf.write_text(key + "\n")
    assert load_key(str(kf)) == key.encode()
    assert load_key(None, "AUDIT_KEY", {"AUDIT_KEY": key}) == key.encode()
    assert load_key() is None
    for args, opt in [((str(kf), "X"), "hmac-key-file"), ((str(tmp_path / "none"),), "hmac-key-file"),
                      ((None, "MISSING", {}), "hmac-key-env"), ((None, "K", {"K": "short"}), "hmac-key-env")]:
        with pytest.raises(ConfigError, match=opt) as e:
            load_key(*args)
        assert key not in str(e.value)


@pytest.mark.parametrize("content, expected", [
    (b"k" * 31 + b"\n", b"k" * 31 + b"\n"),  # a random 32-byte key whose last byte is LF: all of it
    (b"k" * 30 + b"\r\n", b"k" * 30 + b"\r\n"),
    (b"k" * 32 + b"\n", b"k" * 32),  # a newline after the key: not part of it
    (b"k" * 32 + b"\r\n\n", b"k" * 32),
    (b"k" * 40 + b"\n\r", b"k" * 40),
])
def test_a_key_files_trailing_newlines_are_dropped_unless_the_key_would_be_too_short(tmp_path, content, expected):
    # the documented `head -c 32 /dev/urandom > audit-hmac.key` makes such a key one time in 128
    kf = tmp_path / "audit.key"
    kf.write_bytes(content)
    assert load_key(str(kf)) == expected
    kf.write_bytes(b"k" * 30 + b"\n")  # 31 bytes in all: too short either way
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        load_key(str(kf))


def test_cli_verify_exit_codes_and_messages(tmp_path, capsys):
    key = os.urandom(32)
    kf = tmp_path / "k"
    kf.write_bytes(key)
    a, b = tmp_path / "tm-1.log", tmp_path / "tm-2.log"
    write_log(a, 3, key=key)
    write_log(b, 4, key=key)
    assert main(["audit", "verify", "--hmac-key-file", str(kf), str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert out.count("OK ") == 2 and "3 records" in out and "4 records" in out
    ls = lines(b)
    del ls[1]
    rewrite(b, ls)
    assert main(["audit", "verify", "--json", "--hmac-key-file", str(kf), str(a), str(b)]) == 1
    results = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["ok"] for r in results] == [True, False]
    assert results[1]["bad_line"] == 2 and results[1]["bad_file"] == str(b)
    assert main(["audit", "verify", "--hmac-key-file", str(kf), str(b)]) == 1
    assert f"FAIL {b}:2: record(s) missing" in capsys.readouterr().out
    assert main(["audit", "verify", str(a)]) == 1  # keyed log, no key
    assert main(["audit", "verify", str(tmp_path / "missing.log")]) == 2
    assert "no such audit log" in capsys.readouterr().err
    assert main(["audit", "verify", "--hmac-key-env", "NOT_SET_ANYWHERE", str(a)]) == 2
    assert key.hex() not in capsys.readouterr().err


def test_cli_from_start_and_notes(tmp_path, capsys):
    p = tmp_path / "a.log"
    write_log(p, 3, chain=Chain(None, seq=7, prev="ab" * 32))
    assert main(["audit", "verify", str(p)]) == 0
    assert "note: the set starts at seq 7" in capsys.readouterr().out
    assert main(["audit", "verify", "--from-start", str(p)]) == 1


def test_anchors_catch_a_rewritten_or_cut_off_log(tmp_path, capsys):
    p = tmp_path / "a.log"
    write_log(p, 6)
    recs = [json.loads(x) for x in lines(p)]
    anchor = {3: recs[3]["hash"]}
    assert verify([str(p)], expect=anchor).ok
    # the tail is cut after the anchor was taken at seq 5: the chain alone cannot see it, the anchor can
    rewrite(p, lines(p)[:3])
    r = verify([str(p)], expect={5: recs[5]["hash"]})
    assert not r.ok and "after its last record" in r.reason and "truncated" in r.reason
    # rewritten from scratch with a valid chain (no key: anyone can recompute a sha256 chain)
    forged = Chain(None)
    rewrite(p, [forged.seal(from_event({"op": "decrypt", "file_id": f"x{i}"})) for i in range(6)])
    r = verify([str(p)], expect=anchor)
    assert not r.ok and r.bad_line == 4 and "differs from its anchor" in r.reason
    r = verify([str(p)], expect={0: "0" * 64})
    assert not r.ok and r.bad_line == 1
    assert main(["audit", "verify", "--expect", f"3:{forged.prev}", str(p)]) == 1
    assert main(["audit", "verify", "--expect", f"5:{forged.prev}", str(p)]) == 0
    assert main(["audit", "verify", "--expect", "5:abc", str(p)]) == 2
    assert "SEQ:HASH" in capsys.readouterr().err
    later = Chain(None, seq=10, prev="ab" * 32)
    rewrite(p, [later.seal({"op": "x"})])
    r = verify([str(p)], expect={2: "cd" * 32})
    assert not r.ok and "before its first record" in r.reason and "rotated away" in r.reason
