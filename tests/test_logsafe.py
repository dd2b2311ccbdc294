"""In a Flink process pemja hands every Python record to Java's logging with Python's root logger at
DEBUG. There the package holds the KMS SDKs' loggers at WARNING, redacts every record, and a record
pemja cannot take (a thread it did not start: Flink 1.20's pemja raises) goes to stderr instead of
raising out of the log call, so the key rotation thread keeps running."""
import base64
import logging
import sys
import threading
import time

import pytest

from heliosdb_flink_crypto import logsafe
from heliosdb_flink_crypto.lifecycle.rotation import RotationManager, RotationPolicy

DEK = bytes(range(32))
B64 = base64.b64encode(DEK).decode()


class PemjaLike(logging.Handler):
    """What Flink 1.20's pemja installs on the root logger (pemja.logger.PythonLogHandler, which
    needs a JVM): it forwards records to Java, and only on a thread pemja made (here: the one that
    made the handler); elsewhere it raises as pemja does. Only pemja's handlers are guarded (by the
    class's module), so it carries pemja's module name."""

    __module__ = "pemja.logger"

    def __init__(self):
        super().__init__()
        self.owner, self.got = threading.get_ident(), []

    def emit(self, record):
        if threading.get_ident() != self.owner:
            raise RuntimeError("No JcpThread instance available on current thread.")
        self.got.append(self.format(record))


@pytest.fixture
def embedded():
    """The root logger as pemja leaves it (DEBUG, its handler), guarded as hooks.py guards it."""
    root, package = logging.getLogger(), logging.getLogger("heliosdb_flink_crypto")
    saved_level, saved_handlers, saved_package = root.level, list(root.handlers), package.level
    sdk_levels = {n: logging.getLogger(n).level for n in logsafe.SDK_LOGGERS}
    package.setLevel(logging.NOTSET)  # as in a fresh Flink process (the CLI's tests set it to WARNING)
    pemja = PemjaLike()
    root.addHandler(pemja)
    root.setLevel(logging.DEBUG)
    logsafe.guard_embedded()
    logsafe.guard_embedded()  # the package loaded again (another interpreter): wrapped once
    yield pemja
    for h in list(root.handlers):
        if h not in saved_handlers:
            root.removeHandler(h)
    root.setLevel(saved_level)
    package.setLevel(saved_package)
    for n, level in sdk_levels.items():
        logging.getLogger(n).setLevel(level)


def test_sdk_wire_logs_and_key_material_never_reach_javas_log(embedded):
    logging.getLogger("botocore.parsers").debug(
        "Response body:\nb'{\"KeyId\":\"arn:aws:kms:k\",\"Plaintext\":\"%s\"}'", B64)  # GenerateDataKey's answer
    logging.getLogger("urllib3.connectionpool").debug("https://kms.eu-west-1.amazonaws.com:443 POST / 200")
    logging.getLogger("heliosdb_flink_crypto.kms").warning("unwrap answered %s", B64)
    logging.getLogger("heliosdb_flink_crypto.kms").debug("data key cache: 1 entry")
    assert [h.inner for h in logging.getLogger().handlers if isinstance(h, logsafe._Guarded)] == [embedded]
    assert embedded.got == ["unwrap answered <redacted>", "data key cache: 1 entry"]
    logging.getLogger("botocore.hooks").warning("a real SDK warning")  # SDK warnings still get through
    assert embedded.got[-1] == "a real SDK warning"


def test_a_record_from_a_thread_pemja_did_not_start_goes_to_stderr(embedded, capfd):
    raised = []

    def background():
        try:
            logging.getLogger("heliosdb_flink_crypto.metrics").warning("endpoint failed: %s", B64)
        except Exception as e:  # noqa: BLE001
            raised.append(e)

    t = threading.Thread(target=background)
    t.start()
    t.join()
    assert raised == []
    assert "WARNING heliosdb_flink_crypto.metrics: endpoint failed: <redacted>" in capfd.readouterr().err
    assert embedded.got == []


def test_a_hostile_file_name_cannot_forge_records_or_reach_a_terminal(embedded, capfd):
    """Whoever writes to storage names the files that log messages quote: through pemja's handler
    and through the stderr fallback a record stays one line, its controls escaped, and an exception's
    message in a traceback too (the traceback keeps its own lines)."""
    name = "/ckpt/chk-7/x\nERROR org.apache.flink forged\x1b[2J\r"
    log = logging.getLogger("heliosdb_flink_crypto.flink")
    try:
        raise ValueError(f"{name}: not an encrypted file")
    except ValueError:
        log.exception("cannot open %s", name)
    msg, _, trace = embedded.got[0].partition("\n")
    assert msg == "cannot open /ckpt/chk-7/x\\nERROR org.apache.flink forged\\x1b[2J\\r"
    assert trace.startswith("Traceback (most recent call last):\n") and "\x1b" not in trace and "\r" not in trace
    assert trace.endswith("\nValueError: /ckpt/chk-7/x\\nERROR org.apache.flink forged\\x1b[2J\\r: not an encrypted file")
    t = threading.Thread(target=lambda: log.warning("opened %s", name))  # not pemja's thread: stderr
    t.start()
    t.join()
    err = capfd.readouterr().err
    assert "WARNING heliosdb_flink_crypto.flink: opened /ckpt/chk-7/x\\nERROR org.apache.flink forged" \
           "\\x1b[2J\\r\n" in err
    assert not any(line.startswith("ERROR org.apache") for line in err.split("\n")) and "\x1b" not in err


def test_a_record_filtered_by_two_handlers_reads_the_same_in_both():
    """A record reaches every handler of the root logger (pemja may install more than one); the
    second filter finds it redacted and escaped already and leaves it as it is."""
    try:
        raise OSError(f"/ckpt/x\n\x1b[2J {B64}")
    except OSError:
        record = logging.LogRecord("heliosdb_flink_crypto.x", logging.ERROR, __file__, 1, "failed: %s",
                                   ("/ckpt/y\r",), sys.exc_info())
    f = logsafe.RedactingFilter()
    f.filter(record)
    once = logging.Formatter("%(message)s").format(record)
    f.filter(record)
    assert logging.Formatter("%(message)s").format(record) == once
    assert once.startswith("failed: /ckpt/y\\r\nTraceback") and once.endswith(
        "OSError: /ckpt/x\\n\\x1b[2J <redacted>")


def test_the_rotation_thread_survives_failing_checks(embedded, tmp_path, capfd):
    gone = f"local://{tmp_path}/no-such-keyring.json"  # every check fails and logs a warning
    m = RotationManager([gone], RotationPolicy(check_interval=0.02), str(tmp_path / "s.json")).start()
    try:
        deadline = time.monotonic() + 10
        while capfd.readouterr().err.count("key rotation check of") < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        assert m._thread.is_alive(), "the rotation thread died on its own log call"
        assert "key rotation check of" in capfd.readouterr().err  # it went on checking
    finally:
        m.stop()
