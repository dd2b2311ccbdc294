"""The CLI's logging (issue 11 §3): -v is this package's debug log only; SDK loggers stay at WARNING
unless --insecure-sdk-wire-log, and every record goes through the redacting filter."""
import base64
import io
import logging
import os

import pytest

from heliosdb_flink_crypto import logsafe
from heliosdb_flink_crypto.cli import logs, main

DEK = bytes(range(32))
B64, B64U, HEX = base64.b64encode(DEK).decode(), base64.urlsafe_b64encode(DEK).decode().rstrip("="), DEK.hex()


@pytest.fixture(autouse=True)
def restore_logging():
    yield
    logs.setup()  # back to the default levels for the tests that follow


@pytest.mark.parametrize("message", [
    f"Response body:\nb'{{\"CiphertextBlob\":\"AQIDBA==\",\"KeyId\":\"arn:aws:kms:k\",\"Plaintext\":\"{B64}\"}}'",
    f"params: {{'body': {{'KeyId': 'alias/x', 'Plaintext': {DEK!r}}}}}",
    f"{{'Plaintext': '{B64}', 'KeyId': 'arn:aws:kms:eu-west-1:1:key/k'}}",
    f'{{"kid": "https://v.vault.azure.net/keys/k/0123", "value": "{B64U}{B64U}"}}',
    f"plaintext={B64U}&x=1",
    f"digest {HEX} and {HEX.upper()}",
    f"a bare key {B64} in the text",
    f"url-safe {B64U}",
])
def test_redact_removes_key_material(message):
    out = logsafe.redact(message)
    for form in (B64, B64U, HEX, HEX.upper(), repr(DEK)[2:-1]):
        assert form not in out
    assert logsafe.REDACTED in out


def test_redact_keeps_what_is_no_key():
    text = ("arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab "
            "sha1 0123456789abcdef0123456789abcdef01234567 POST / HTTP/1.1 200 "
            "https://v.vault.azure.net/keys/checkpoints/0123456789abcdef0123456789abcdef")
    assert logsafe.redact(text) == text


def test_verbose_is_for_this_package_only(keyring_uri, tmp_path):
    err = io.StringIO()
    logs.setup(verbose=True, stream=err)
    logs.setup(verbose=True, stream=err)  # again, as a second run in one process: one handler
    assert logging.getLogger("heliosdb_flink_crypto").isEnabledFor(logging.DEBUG)
    for name in logsafe.SDK_LOGGERS:
        assert not logging.getLogger(name).isEnabledFor(logging.DEBUG), name
    logging.getLogger("botocore.parsers").debug("Response body: %s", DEK)
    logging.getLogger("heliosdb_flink_crypto.test").debug("package debug line")
    try:
        raise ValueError(f"wrapped {B64}")
    except ValueError:
        logging.getLogger("heliosdb_flink_crypto.test").exception("failed with %s", HEX)
    text = err.getvalue()
    assert text.count("package debug line") == 1 and "botocore" not in text
    assert B64 not in text and HEX not in text and "ValueError: wrapped <redacted>" in text
    assert main(["-v", "verify", "-q", "--kms", keyring_uri, str(tmp_path / "missing")]) == 1


def test_the_loud_flag_turns_sdk_debug_on_and_says_so(capsys):
    logs.setup(verbose=False, sdk_wire=True)
    assert logging.getLogger("botocore").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger("heliosdb_flink_crypto").isEnabledFor(logging.DEBUG)
    assert "--insecure-sdk-wire-log: KMS SDK debug logging is on" in capsys.readouterr().err
    logging.getLogger("botocore.endpoint").debug("Sending %s", {"Plaintext": DEK, "KeyId": os.urandom(4).hex()})
    err = capsys.readouterr().err
    assert "DEBUG botocore.endpoint: Sending {'Plaintext': \"<redacted>\"" in err and repr(DEK)[2:-1] not in err
