"""An AWS KMS stand-in: moto's server behind a fault-injecting pass-through on 127.0.0.1.

moto speaks the real KMS JSON protocol and enforces encryption context, but it does not refuse
disabled keys nor throttle. The front asks moto for the key's state before Encrypt / Decrypt /
GenerateDataKey and answers ``DisabledException`` / ``KMSInvalidStateException`` as KMS does
(``enforce_key_state``); :attr:`MotoKms.faults` answers chosen operations with real KMS errors
(``{"__type": "DisabledException"}`` ...) or holds them past the client's timeout, and
:meth:`MotoKms.stop` / :meth:`MotoKms.start` close and reopen the port (an outage).

    with MotoKms() as kms:
        key = kms.client().create_key()["KeyMetadata"]["Arn"]
        settings = kms.settings()          # heliosdb.crypto.kms.aws.* for the provider
"""
from __future__ import annotations

import http.client
import json
import logging
import time
from http.server import BaseHTTPRequestHandler

from ._faults import Faults, Rule
from ._server import RestartableServer

_USES_KEY = {"Encrypt", "Decrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "ReEncrypt"}
_STATUS = {"ThrottlingException": 400, "LimitExceededException": 400, "KMSInternalException": 500,
           "InternalFailure": 500, "ServiceUnavailable": 503, "DependencyTimeoutException": 503}


class _Proxy(BaseHTTPRequestHandler):
    owner: "MotoKms"
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _forward(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        op = (self.headers.get("X-Amz-Target") or self.path).rsplit(".", 1)[-1]
        delay, rule = self.owner.faults.take(op)
        if delay:
            time.sleep(delay)
        if rule is None and op in _USES_KEY and self.owner.enforce_key_state:
            rule = self._key_state_error(body)
        if rule is not None:
            data = json.dumps({"__type": rule.code, "message": f"injected {rule.code}"}).encode()
            return self._answer(rule.status or _STATUS.get(rule.code, 400), data,
                                {"Content-Type": "application/x-amz-json-1.1"})
        status, headers, data = self._moto(self.command, self.path, body, dict(self.headers.items()))
        self._answer(status, data, headers)

    def _moto(self, method, path, body, headers):
        conn = http.client.HTTPConnection("127.0.0.1", self.owner.moto_port, timeout=30)
        skip = ("host", "connection", "content-length")
        conn.request(method, path, body, {k: v for k, v in headers.items() if k.lower() not in skip})
        r = conn.getresponse()
        data = r.read()
        conn.close()
        hop = ("transfer-encoding", "connection", "content-length")
        return r.status, {k: v for k, v in r.getheaders() if k.lower() not in hop}, data

    def _key_state_error(self, body: bytes):
        """What real KMS does and moto does not: refuse crypto with a disabled or pending-deletion key."""
        try:
            key_id = json.loads(body or b"{}").get("KeyId") or json.loads(body or b"{}").get("DestinationKeyId")
        except ValueError:
            return None
        if not key_id:
            return None
        headers = dict(self.headers.items())
        headers["X-Amz-Target"] = "TrentService.DescribeKey"
        status, _, data = self._moto("POST", "/", json.dumps({"KeyId": key_id}).encode(), headers)
        if status != 200:
            return None  # let moto answer (NotFoundException ...)
        state = json.loads(data)["KeyMetadata"].get("KeyState", "Enabled")
        if state == "Disabled":
            return Rule("*", code="DisabledException")
        if state != "Enabled":
            return Rule("*", code="KMSInvalidStateException")
        return None

    def _answer(self, status, data, headers):
        try:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up (timeout)
            pass

    do_POST = do_GET = _forward


class MotoKms:
    """moto's KMS on a private port, reachable through a fault-injecting front port."""

    region = "us-east-1"

    def __init__(self):
        from moto.server import ThreadedMotoServer
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.moto_port = 0
        self.faults = Faults()
        self.enforce_key_state = True
        self._front = RestartableServer(_Proxy, self)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._front.port}"

    @property
    def running(self) -> bool:
        return self._front.running

    def start(self) -> "MotoKms":
        if not self.moto_port:
            logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one INFO line per request otherwise
            self._moto.start()
            self.moto_port = self._moto.get_host_and_port()[1]
        self._front.start()
        return self

    def stop(self) -> None:
        """Close the front port: clients get "connection refused" until :meth:`start`."""
        self._front.stop()

    def close(self) -> None:
        self._front.stop()
        if self.moto_port:
            self._moto.stop()
            self.moto_port = 0

    def __enter__(self) -> "MotoKms":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def reset(self) -> None:
        """Forget every key (moto's reset API) and every injected fault."""
        self.faults.clear()
        conn = http.client.HTTPConnection("127.0.0.1", self.moto_port, timeout=10)
        conn.request("POST", "/moto-api/reset")
        conn.getresponse().read()
        conn.close()

    def settings(self, **extra: str) -> dict[str, str]:
        """``heliosdb.crypto.kms.aws.*`` settings that point the provider here with test credentials."""
        s = {"heliosdb.crypto.kms.aws.endpoint": self.endpoint,
             "heliosdb.crypto.kms.aws.region": self.region,
             "heliosdb.crypto.kms.aws.access-key-id": "testing",
             "heliosdb.crypto.kms.aws.secret-access-key": "testing"}
        s.update({f"heliosdb.crypto.kms.aws.{k.replace('_', '-')}": v for k, v in extra.items()})
        return s

    def client(self):
        """A boto3 KMS client talking to moto directly (for test setup: create keys, aliases)."""
        import boto3
        return boto3.client("kms", region_name=self.region, endpoint_url=f"http://127.0.0.1:{self.moto_port}",
                            aws_access_key_id="testing", aws_secret_access_key="testing")
