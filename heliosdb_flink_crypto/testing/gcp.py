"""A Cloud KMS stand-in: the real ``google.cloud.kms.v1.KeyManagementService`` gRPC service on
127.0.0.1, for symmetric ENCRYPT_DECRYPT keys.

Served methods: Encrypt, Decrypt (AAD and CRC32C fields honoured), GetCryptoKey,
GetCryptoKeyVersion, CreateCryptoKeyVersion, UpdateCryptoKeyPrimaryVersion, UpdateCryptoKeyVersion
(enable/disable) and DestroyCryptoKeyVersion. Decrypt is addressed to the key, as in Cloud KMS, so the
ciphertext records the version that made it. :attr:`faults` answers an operation with a gRPC status
(``faults.fail("Decrypt", "PERMISSION_DENIED")``) or stalls it; :meth:`stop`/:meth:`start` close and
reopen the same port.
"""
from __future__ import annotations

import os
import struct
import threading
import time
from concurrent import futures

import grpc
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.cloud import kms_v1

from ..kms.gcp import crc32c
from ._faults import Faults

SERVICE = "google.cloud.kms.v1.KeyManagementService"
_MAGIC = b"HSI1"
State = kms_v1.CryptoKeyVersion.CryptoKeyVersionState


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, message: str):
        self.code, self.message = code, message


class GcpKmsStandIn:
    def __init__(self):
        self.faults = Faults()
        self.keys: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._server: grpc.Server | None = None
        self.port = 0

    # -- lifecycle -----------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> "GcpKmsStandIn":
        if self._server is not None:
            return self
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        server.add_generic_rpc_handlers((self._handler(),))
        self.port = server.add_insecure_port(f"127.0.0.1:{self.port}")
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop(grace=None).wait(5)

    close = stop

    def __enter__(self) -> "GcpKmsStandIn":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def settings(self, **extra: str) -> dict[str, str]:
        s = {"heliosdb.crypto.kms.gcp.endpoint": self.endpoint,
             "heliosdb.crypto.kms.gcp.insecure-plaintext": "true"}
        s.update({f"heliosdb.crypto.kms.gcp.{k.replace('_', '-')}": v for k, v in extra.items()})
        return s

    # -- key administration (test setup) ------------------------------------------
    def create_key(self, project="p", location="global", key_ring="ring", key="key") -> str:
        name = f"projects/{project}/locations/{location}/keyRings/{key_ring}/cryptoKeys/{key}"
        with self._lock:
            self.keys[name] = {"primary": 1, "versions": {1: self._version()}}
        return name

    @staticmethod
    def _version() -> dict:
        return {"state": State.ENABLED, "material": AESGCM.generate_key(256)}

    def rotate(self, name: str) -> str:
        """A new version, made primary (CreateCryptoKeyVersion + UpdateCryptoKeyPrimaryVersion)."""
        with self._lock:
            k = self.keys[name]
            n = max(k["versions"]) + 1
            k["versions"][n] = self._version()
            k["primary"] = n
        return f"{name}/cryptoKeyVersions/{n}"

    def set_state(self, version_name: str, state) -> None:
        key, _, n = version_name.rpartition("/cryptoKeyVersions/")
        with self._lock:
            v = self.keys[key]["versions"][int(n)]
            v["state"] = state
            if state == State.DESTROYED:
                v["material"] = None

    # -- protocol ------------------------------------------------------------------
    def _key(self, name: str) -> dict:
        k = self.keys.get(name)
        if k is None:
            raise _Abort(grpc.StatusCode.NOT_FOUND, f"CryptoKey {name} not found.")
        return k

    def _split(self, name: str) -> tuple[str, dict, int]:
        key, sep, n = name.partition("/cryptoKeyVersions/")
        k = self._key(key)
        if not sep:
            return key, k, k["primary"]
        if not n.isdigit() or int(n) not in k["versions"]:
            raise _Abort(grpc.StatusCode.NOT_FOUND, f"CryptoKeyVersion {name} not found.")
        return key, k, int(n)

    def _version_msg(self, key: str, k: dict, n: int) -> kms_v1.CryptoKeyVersion:
        return kms_v1.CryptoKeyVersion(name=f"{key}/cryptoKeyVersions/{n}", state=k["versions"][n]["state"])

    def _key_msg(self, key: str) -> kms_v1.CryptoKey:
        k = self._key(key)
        return kms_v1.CryptoKey(name=key, purpose=kms_v1.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT,
                                primary=self._version_msg(key, k, k["primary"]))

    @staticmethod
    def _check_crc(data: bytes, crc, what: str) -> None:
        if crc is not None and crc != crc32c(data):
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"The checksum in field {what} did not match the data.")

    def _material(self, key: str, k: dict, n: int) -> bytes:
        v = k["versions"][n]
        if v["state"] != State.ENABLED:
            raise _Abort(grpc.StatusCode.FAILED_PRECONDITION,
                         f"{key}/cryptoKeyVersions/{n} is not enabled, current state is: {State(v['state']).name}.")
        return v["material"]

    def encrypt(self, req: kms_v1.EncryptRequest) -> kms_v1.EncryptResponse:
        self._check_crc(req.plaintext, req.plaintext_crc32c, "plaintext_crc32c")
        self._check_crc(req.additional_authenticated_data, req.additional_authenticated_data_crc32c,
                        "additional_authenticated_data_crc32c")
        with self._lock:
            key, k, n = self._split(req.name)
            material = self._material(key, k, n)
        nonce = os.urandom(12)
        head = _MAGIC + struct.pack(">I", n) + nonce
        ct = head + AESGCM(material).encrypt(nonce, req.plaintext, key.encode() + b"\0" +
                                             req.additional_authenticated_data)
        return kms_v1.EncryptResponse(
            name=f"{key}/cryptoKeyVersions/{n}", ciphertext=ct, ciphertext_crc32c=crc32c(ct),
            verified_plaintext_crc32c=req.plaintext_crc32c is not None,
            verified_additional_authenticated_data_crc32c=req.additional_authenticated_data_crc32c is not None)

    def decrypt(self, req: kms_v1.DecryptRequest) -> kms_v1.DecryptResponse:
        self._check_crc(req.ciphertext, req.ciphertext_crc32c, "ciphertext_crc32c")
        self._check_crc(req.additional_authenticated_data, req.additional_authenticated_data_crc32c,
                        "additional_authenticated_data_crc32c")
        invalid = _Abort(grpc.StatusCode.INVALID_ARGUMENT, "Decryption failed: the ciphertext is invalid.")
        ct = req.ciphertext
        if "/cryptoKeyVersions/" in req.name:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "Decrypt takes a CryptoKey name, not a version.")
        with self._lock:
            k = self._key(req.name)
            if len(ct) < 36 or ct[:4] != _MAGIC:
                raise invalid
            n = struct.unpack(">I", ct[4:8])[0]
            if n not in k["versions"]:
                raise invalid
            material = self._material(req.name, k, n)
            primary = k["primary"]
        try:
            pt = AESGCM(material).decrypt(ct[8:20], ct[20:], req.name.encode() + b"\0" +
                                          req.additional_authenticated_data)
        except InvalidTag:
            raise invalid from None
        return kms_v1.DecryptResponse(plaintext=pt, plaintext_crc32c=crc32c(pt), used_primary=n == primary)

    def get_crypto_key(self, req):
        with self._lock:
            return self._key_msg(req.name)

    def get_crypto_key_version(self, req):
        with self._lock:
            key, k, n = self._split(req.name)
            return self._version_msg(key, k, n)

    def create_crypto_key_version(self, req):
        with self._lock:
            k = self._key(req.parent)
            n = max(k["versions"]) + 1
            k["versions"][n] = self._version()
            return self._version_msg(req.parent, k, n)

    def update_crypto_key_primary_version(self, req):
        with self._lock:
            key, k, n = self._split(f"{req.name}/cryptoKeyVersions/{req.crypto_key_version_id}")
            k["primary"] = n
            return self._key_msg(key)

    def update_crypto_key_version(self, req):
        self.set_state(req.crypto_key_version.name, req.crypto_key_version.state)
        return self.get_crypto_key_version(kms_v1.GetCryptoKeyVersionRequest(name=req.crypto_key_version.name))

    def destroy_crypto_key_version(self, req):
        self._split(req.name)
        self.set_state(req.name, State.DESTROYED)
        return self.get_crypto_key_version(kms_v1.GetCryptoKeyVersionRequest(name=req.name))

    def _handler(self) -> grpc.GenericRpcHandler:
        methods = {}
        for method, fn in (("Encrypt", self.encrypt), ("Decrypt", self.decrypt),
                           ("GetCryptoKey", self.get_crypto_key),
                           ("GetCryptoKeyVersion", self.get_crypto_key_version),
                           ("CreateCryptoKeyVersion", self.create_crypto_key_version),
                           ("UpdateCryptoKeyPrimaryVersion", self.update_crypto_key_primary_version),
                           ("UpdateCryptoKeyVersion", self.update_crypto_key_version),
                           ("DestroyCryptoKeyVersion", self.destroy_crypto_key_version)):
            req_cls = getattr(kms_v1, method + "Request")
            resp_cls = getattr(kms_v1, method + "Response", None) or _RESPONSE[method]
            methods[method] = grpc.unary_unary_rpc_method_handler(
                self._wrap(method, fn), request_deserializer=req_cls.deserialize,
                response_serializer=resp_cls.serialize)
        return grpc.method_handlers_generic_handler(SERVICE, methods)

    def _wrap(self, method, fn):
        def handle(request, context):
            delay, rule = self.faults.take(method)
            if delay:
                time.sleep(delay)
            if rule is not None:
                context.abort(getattr(grpc.StatusCode, rule.code), f"injected {rule.code}")
            try:
                return fn(request)
            except _Abort as e:
                context.abort(e.code, e.message)
        return handle


_RESPONSE = {"GetCryptoKey": kms_v1.CryptoKey, "GetCryptoKeyVersion": kms_v1.CryptoKeyVersion,
             "CreateCryptoKeyVersion": kms_v1.CryptoKeyVersion, "UpdateCryptoKeyPrimaryVersion": kms_v1.CryptoKey,
             "UpdateCryptoKeyVersion": kms_v1.CryptoKeyVersion, "DestroyCryptoKeyVersion": kms_v1.CryptoKeyVersion}
