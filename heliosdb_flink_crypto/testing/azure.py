"""An Azure Key Vault stand-in: the Key Vault REST protocol over HTTPS on 127.0.0.1.

The SDK sends bearer tokens over TLS only, so the stand-in makes a throw-away CA-less self-signed
certificate (SAN localhost / 127.0.0.1) and :meth:`settings` points ``ca-file`` at it. It answers the
first unauthenticated request with the usual 401 bearer challenge and accepts any token from
:class:`StaticTokenCredential` (or any token at all unless :attr:`tokens` is set). It is also a
minimal Entra ID authority (``/{tenant}/v2.0/.well-known/openid-configuration`` and the
client-credentials ``/{tenant}/oauth2/v2.0/token``), so azure-identity's ``ClientSecretCredential``
works against it with ``authority-host`` = :attr:`vault_url` (secrets checked if :attr:`clients` is set).

Served (``?api-version=`` ignored): ``POST /keys/{n}/create``, ``GET /keys/{n}[/{v}]``,
``POST /keys/{n}/rotate``, ``PATCH /keys/{n}/{v}`` (enable/disable), ``DELETE /keys/{n}``,
``POST /keys/{n}/{v}/wrapkey|unwrapkey`` with RSA-OAEP-256 (RSA / RSA-HSM keys) or A256KW (oct-HSM
keys, as a Managed HSM). Errors use Key Vault's body ``{"error": {"code", "message"}}``.
"""
from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import os
import shutil
import ssl
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler

from cryptography import x509
from cryptography.hazmat.primitives import hashes, keywrap, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from ._faults import Faults
from ._server import RestartableServer

_OAEP256 = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def b64u(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def unb64u(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class StaticTokenCredential:
    """An azure-core token credential handing out one fixed token (for the stand-in only)."""

    def __init__(self, token: str = "standin-token"):
        self.token = token

    def get_token(self, *scopes, **kwargs):
        from azure.core.credentials import AccessToken
        return AccessToken(self.token, int(time.time()) + 3600)


class _KvError(Exception):
    def __init__(self, status: int, code: str, message: str):
        self.status, self.code, self.message = status, code, message


class _Handler(BaseHTTPRequestHandler):
    owner: "AzureKeyVaultStandIn"
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, status: int, body: dict | None, headers: dict | None = None):
        data = json.dumps(body).encode() if body is not None else b""
        try:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass

    def _dispatch(self):
        kv = self.owner
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = [p for p in self.path.split("?", 1)[0].split("/") if p]
        if parts and parts[0] != "keys":
            return self._identity(parts, raw)
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return self._send(401, {"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer"}},
                              {"WWW-Authenticate": f'Bearer authorization="https://login.microsoftonline.com/'
                                                  f'{kv.tenant_id}", resource="https://vault.azure.net"'})
        op = parts[-1] if parts and parts[-1] in ("wrapkey", "unwrapkey", "rotate", "create") else self.command
        delay, rule = kv.faults.take(op)
        if delay:
            time.sleep(delay)
        if rule is not None:
            return self._send(rule.status or 500, {"error": {"code": rule.code, "message": f"injected {rule.code}"}})
        if kv.tokens is not None and auth[7:] not in kv.tokens:
            return self._send(403, {"error": {"code": "Forbidden", "message": "Caller is not authorized to perform "
                                              "action on resource (no access policy)."}})
        try:
            body = json.loads(raw) if raw else {}
            status, answer = kv.handle(self.command, parts, body)
        except _KvError as e:
            return self._send(e.status, {"error": {"code": e.code, "message": e.message}})
        except (ValueError, KeyError, TypeError):
            return self._send(400, {"error": {"code": "BadParameter", "message": "malformed request"}})
        self._send(status, answer)

    def _identity(self, parts: list[str], raw: bytes):
        """A minimal Entra ID (AAD) authority: OpenID metadata and the client-credentials token endpoint."""
        kv = self.owner
        if len(parts) < 2:
            return self._send(404, {"error": "not_found"})
        tenant, base = parts[0], f"{kv.vault_url}/{parts[0]}"
        if parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            return self._send(200, {"issuer": f"{base}/v2.0", "token_endpoint": f"{base}/oauth2/v2.0/token",
                                    "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                                    "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                                    "tenant_region_scope": "WW"})
        if parts[1:] == ["oauth2", "v2.0", "token"] and self.command == "POST":
            from urllib.parse import parse_qs
            form = {k: v[-1] for k, v in parse_qs(raw.decode()).items()}
            cid, secret = form.get("client_id"), form.get("client_secret")
            if kv.clients is not None and kv.clients.get((tenant, cid)) != secret:
                return self._send(401, {"error": "invalid_client",
                                        "error_description": "AADSTS7000215: Invalid client secret provided."})
            token = f"standin-{uuid.uuid4().hex}"
            kv.issued.add(token)
            return self._send(200, {"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600,
                                    "access_token": token})
        return self._send(404, {"error": "not_found"})

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _dispatch


class AzureKeyVaultStandIn:
    def __init__(self):
        self.faults = Faults()
        self.tokens: set[str] | None = None
        self.tenant_id = "00000000-0000-0000-0000-000000000000"  # the vault's tenant, named in the challenge
        self.clients: dict[tuple[str, str], str] | None = None  # (tenant, client id) -> secret; None: any
        self.issued: set[str] = set()
        self.keys: dict[str, dict] = {}  # name -> {"order": [versions], version: {...}}
        self._lock = threading.Lock()
        self._dir = tempfile.mkdtemp(prefix="kv-standin-")
        self.ca_file = self._make_certificate()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.ca_file, os.path.join(self._dir, "key.pem"))
        self._server = RestartableServer(_Handler, self, ctx)

    def _make_certificate(self) -> str:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                            x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                .sign(key, hashes.SHA256()))
        cert_path = os.path.join(self._dir, "cert.pem")
        with open(cert_path, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        fd = os.open(os.path.join(self._dir, "key.pem"), os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        return cert_path

    # -- lifecycle -----------------------------------------------------------------
    @property
    def vault_url(self) -> str:
        return f"https://127.0.0.1:{self._server.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.port}"

    @property
    def running(self) -> bool:
        return self._server.running

    def start(self) -> "AzureKeyVaultStandIn":
        self._server.start()
        return self

    def stop(self) -> None:
        """Close the port (an outage); :meth:`start` reopens it with the same keys."""
        self._server.stop()

    def close(self) -> None:
        """Stop for good and delete the certificate files."""
        self._server.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "AzureKeyVaultStandIn":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def settings(self, **extra: str) -> dict[str, str]:
        s = {"heliosdb.crypto.kms.azure.ca-file": self.ca_file,
             "heliosdb.crypto.kms.azure.verify-challenge-resource": "false"}
        s.update({f"heliosdb.crypto.kms.azure.{k.replace('_', '-')}": v for k, v in extra.items()})
        return s

    # -- keys (also reachable over the protocol) ------------------------------------
    def create_key(self, name: str, kty: str = "RSA") -> str:
        with self._lock:
            return self._new_version(name, kty)["key"]["kid"]

    def _new_version(self, name: str, kty: str) -> dict:
        if kty not in ("RSA", "RSA-HSM", "oct-HSM"):
            raise _KvError(400, "BadParameter", f"unsupported kty {kty}")
        version = uuid.uuid4().hex
        kid = f"{self.vault_url}/keys/{name}/{version}"
        jwk = {"kid": kid, "kty": kty, "key_ops": ["wrapKey", "unwrapKey", "encrypt", "decrypt"]}
        if kty.startswith("RSA"):
            secret = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pub = secret.public_key().public_numbers()
            jwk.update(n=b64u(pub.n.to_bytes(256, "big")), e=b64u(pub.e.to_bytes(3, "big")))
        else:
            secret = os.urandom(32)
        now = int(time.time())
        entry = {"key": jwk, "secret": secret,
                 "attributes": {"enabled": True, "created": now, "updated": now, "recoveryLevel": "Recoverable"}}
        k = self.keys.setdefault(name, {"order": []})
        k[version] = entry
        k["order"].append(version)
        return entry

    def set_enabled(self, name: str, version: str | None, enabled: bool) -> None:
        with self._lock:
            self._entry(name, version)["attributes"]["enabled"] = enabled

    def _entry(self, name: str, version: str | None) -> dict:
        k = self.keys.get(name)
        if k is None or (version and version not in k):
            raise _KvError(404, "KeyNotFound", f"A key with (name/id) {name}{'/' + version if version else ''} "
                                               "was not found in this key vault.")
        return k[version or k["order"][-1]]

    @staticmethod
    def _bundle(e: dict) -> dict:
        return {"key": dict(e["key"]), "attributes": dict(e["attributes"])}

    def handle(self, method: str, parts: list[str], body: dict) -> tuple[int, dict]:
        if len(parts) < 2 or parts[0] != "keys":
            raise _KvError(404, "NotFound", "no such endpoint")
        name = parts[1]
        with self._lock:
            if method == "POST" and parts[2:] == ["create"]:
                return 200, self._bundle(self._new_version(name, body.get("kty", "RSA")))
            if method == "POST" and parts[2:] == ["rotate"]:
                kty = self._entry(name, None)["key"]["kty"]
                return 200, self._bundle(self._new_version(name, kty))
            if method == "DELETE" and len(parts) == 2:
                e = self._entry(name, None)
                del self.keys[name]
                return 200, self._bundle(e)
            version = parts[2] if len(parts) > 2 and parts[2] else None
            if method == "GET" and len(parts) <= 3:
                return 200, self._bundle(self._entry(name, version))
            if method == "PATCH" and len(parts) == 3:
                e = self._entry(name, version)
                e["attributes"].update({k: v for k, v in body.get("attributes", {}).items() if k == "enabled"})
                return 200, self._bundle(e)
            if method == "POST" and len(parts) == 4 and parts[3] in ("wrapkey", "unwrapkey"):
                e = self._entry(name, version)
                if not e["attributes"]["enabled"]:
                    raise _KvError(403, "Forbidden", f"Operation {parts[3]} is not allowed on a disabled key.")
                return 200, {"kid": e["key"]["kid"], "value": b64u(self._crypt(e, parts[3], body))}
        raise _KvError(405, "MethodNotAllowed", f"{method} not served here")

    @staticmethod
    def _crypt(e: dict, op: str, body: dict) -> bytes:
        alg, value = body["alg"], unb64u(body["value"])
        rsa_key = e["key"]["kty"].startswith("RSA")
        if (alg, rsa_key) not in (("RSA-OAEP-256", True), ("A256KW", False)):
            raise _KvError(400, "BadParameter", f"Algorithm {alg} is not supported for this key type")
        try:
            if rsa_key:
                return (e["secret"].public_key().encrypt(value, _OAEP256) if op == "wrapkey"
                        else e["secret"].decrypt(value, _OAEP256))
            return (keywrap.aes_key_wrap(e["secret"], value) if op == "wrapkey"
                    else keywrap.aes_key_unwrap(e["secret"], value))
        except (ValueError, keywrap.InvalidUnwrap):
            raise _KvError(400, "BadParameter", "Unwrap failed: the wrapped key is invalid.") from None
