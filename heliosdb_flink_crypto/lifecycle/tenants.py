"""Tenants by path prefix (docs/operations.md, Tenants): which tenant, and so which KMS keys, a checkpoint path belongs to.

Configuration (Flink cluster configuration, one block per tenant id)::

    heliosdb.crypto.tenants.acme.path-prefix: s3://checkpoints/acme
    heliosdb.crypto.tenants.acme.kms.uri: aws-kms://...acme-key
    heliosdb.crypto.tenants.acme.kms.decrypt-uris: local:///etc/hfc/acme-old.json   (optional)

The longest matching prefix wins (on whole path components: ``/a/acme`` does not match
``/a/acme2/x``). A path under no prefix belongs to the default tenant ``""`` with the global
``heliosdb.crypto.kms.uri``, unless ``heliosdb.crypto.tenants.require-match`` is on (then it is
refused). The tenant id is bound into every header, the file keys and the KMS context; on read,
:class:`TenantCrypto` refuses a file whose header names another tenant than its path resolves to.
"""
from __future__ import annotations

import os
import posixpath
import re
import threading
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from .. import config as cfg
from ..crypto import CheckpointCrypto
from ..errors import ConfigError, KeyAccessError, TenantMismatchError  # noqa: F401 (re-exported)
from ..format import SUITE_AES_GCM, SUITE_IDS, parse
from ..kms.cache import CachePolicy
from ..observe import BUS, EventBus

TENANT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_KEY = re.compile(r"^heliosdb\.crypto\.tenants\.([A-Za-z0-9_-]+)\.(path-prefix|kms\.uri|kms\.decrypt-uris)$")
_FILE = re.compile(r"^(?:enc\+)?file:(?://)?(?=/)", re.I)
_ENC = re.compile(r"^enc\+", re.I)


def normalize(path: str) -> str:
    """Comparable form of a path or URI: ``enc+`` dropped, ``file:`` URIs as plain paths, no ``..``."""
    s = _ENC.sub("", _FILE.sub("", str(path)))
    scheme, sep, rest = s.partition("://")
    if not sep:
        s = posixpath.normpath(s if s.startswith("/") else os.path.abspath(s))
        return s
    authority, slash, tail = rest.partition("/")
    tail = posixpath.normpath("/" + tail) if slash else ""
    return f"{scheme.lower()}://{authority}{tail.rstrip('/') if tail != '/' else ''}"


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix if prefix.endswith("/") else prefix + "/")


@dataclass(frozen=True)
class Tenant:
    id: str
    prefix: str | None  # normalized; None for the default tenant
    kms_uris: tuple[str, ...]
    decrypt_uris: tuple[str, ...] = ()


class TenantMap:
    """Path -> tenant by longest path prefix."""

    def __init__(self, tenants: Iterable[Tenant], default: Tenant | None = None):
        self.tenants = sorted(tenants, key=lambda t: len(t.prefix or ""), reverse=True)
        self.default = default
        seen: dict[str, str] = {}
        for t in self.tenants:
            if not TENANT_ID.match(t.id):
                raise ConfigError(f"heliosdb.crypto.tenants.{t.id}", "tenant ids are 1-64 of A-Z a-z 0-9 _ -")
            if t.prefix in seen:
                raise ConfigError(f"heliosdb.crypto.tenants.{t.id}.path-prefix",
                                  f"same prefix as tenant {seen[t.prefix]!r}")
            seen[t.prefix] = t.id

    @classmethod
    def from_config(cls, conf: Mapping[str, Any]) -> "TenantMap":
        """From a Flink configuration (raw strings or the output of ``config.load``)."""
        blocks: dict[str, dict[str, Any]] = {}
        for key, value in conf.items():
            m = _KEY.match(key)
            if m:
                blocks.setdefault(m.group(1), {})[m.group(2)] = value
        tenants = []
        for tid, b in sorted(blocks.items()):
            for need in ("path-prefix", "kms.uri"):
                if not b.get(need):
                    raise ConfigError(f"heliosdb.crypto.tenants.{tid}.{need}", "is required for a tenant")
            tenants.append(Tenant(tid, normalize(str(b["path-prefix"])), tuple(_list(b["kms.uri"])),
                                  tuple(_list(b.get("kms.decrypt-uris", [])))))
        require = conf.get("heliosdb.crypto.tenants.require-match", False)
        require = cfg.parse_bool(require) if isinstance(require, str) else bool(require)
        default = None
        if not require and conf.get("heliosdb.crypto.kms.uri"):
            default = Tenant("", None, tuple(_list(conf["heliosdb.crypto.kms.uri"])),
                             tuple(_list(conf.get("heliosdb.crypto.kms.decrypt-uris") or [])))
        return cls(tenants, default)

    def tenant_for(self, path: str) -> Tenant:
        p = normalize(path)
        for t in self.tenants:
            if _under(p, t.prefix):
                return t
        if self.default is None:
            raise KeyAccessError("path is under no tenant's path-prefix (heliosdb.crypto.tenants.*) "
                                 "and no default KMS applies", str(path))
        return self.default

    def resolve(self, path: str) -> tuple[str, tuple[str, ...]]:
        """(tenant id, KMS URIs) for ``path``; KeyAccessError if it belongs to no tenant."""
        t = self.tenant_for(path)
        return t.id, t.kms_uris

    def all(self) -> list[Tenant]:
        return self.tenants + ([self.default] if self.default else [])


def _list(v) -> list[str]:
    return cfg.parse_list(v) if isinstance(v, str) else [str(x) for x in v]


class TenantCrypto(CheckpointCrypto):
    """A CheckpointCrypto bound to one tenant: writes only that tenant's files, and refuses to open
    a file whose header names another tenant (before any KMS call)."""

    def new_file(self, tenant: str | None = None, **kw):
        if tenant not in (None, self.tenant):
            raise ValueError(f"this crypto belongs to tenant {self.tenant!r}, not {tenant!r}")
        return super().new_file(None, **kw)

    def open_file(self, raw: bytes, path: str | None = None, **kw):
        h = parse(raw, path)
        if h.tenant != self.tenant:
            self.bus.emit("tenant_mismatch", "denied", path=path, file_id=h.file_id, tenant=self.tenant,
                          header_tenant=h.tenant)
            raise TenantMismatchError(path, h.tenant, self.tenant)
        return super().open_file(raw, path, **kw)


class TenantRouter:
    """One :class:`TenantCrypto` per tenant, made on first use: ``crypto_for(path)``.

    Tenants never share a DEK cache; providers are opened per tenant.
    """

    def __init__(self, tenants: TenantMap, *, suite: int = SUITE_AES_GCM, segment_size: int | None = None,
                 settings: Mapping[str, str] | None = None, cache_policy: CachePolicy | None = None,
                 bus: EventBus | None = None, read_v1: bool = False):
        self.map = tenants
        self._kw = {"suite": suite, "settings": dict(settings or {}), "cache_policy": cache_policy,
                    "bus": bus or BUS, "read_v1": read_v1}
        if segment_size:
            self._kw["segment_size"] = segment_size
        self._cryptos: dict[str, TenantCrypto] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, conf: Mapping[str, Any], bus: EventBus | None = None) -> "TenantRouter":
        """From a Flink configuration: raw strings (validated with ``config.load``) or its output."""
        v = conf if isinstance(conf.get("heliosdb.crypto.kms.uri"), list) else cfg.load(conf)
        policy = CachePolicy(max_age=v["heliosdb.crypto.cache.max-age"],
                             max_bytes=v["heliosdb.crypto.cache.max-bytes"],
                             max_files=v["heliosdb.crypto.cache.max-files"],
                             outage_grace=v["heliosdb.crypto.cache.outage-grace"])
        settings = {k: x for k, x in v.items() if k.startswith("heliosdb.crypto.kms.") and k.count(".") >= 4}
        return cls(TenantMap.from_config(v), suite=SUITE_IDS[v["heliosdb.crypto.algorithm"]],
                   segment_size=v["heliosdb.crypto.segment-size"], settings=settings,
                   cache_policy=policy, bus=bus, read_v1=v["heliosdb.crypto.format.read-v1"])

    def crypto_for_tenant(self, tenant: Tenant) -> TenantCrypto:
        with self._lock:
            c = self._cryptos.get(tenant.id)
            if c is None:
                c = self._cryptos[tenant.id] = TenantCrypto(
                    tenant.kms_uris, tenant=tenant.id, decrypt_uris=tenant.decrypt_uris, **self._kw)
            return c

    def crypto_for(self, path: str) -> TenantCrypto:
        """The crypto for the file at ``path`` (its tenant's keys); KeyAccessError if no tenant."""
        return self.crypto_for_tenant(self.map.tenant_for(path))

    def cryptos(self) -> list[TenantCrypto]:
        with self._lock:
            return list(self._cryptos.values())

    def encryption_uris(self) -> list[str]:
        """Every KMS URI that wraps new data keys, over all tenants (what rotation manages)."""
        out: list[str] = []
        for t in self.map.all():
            out += [u for u in t.kms_uris if u not in out]
        return out

    def close(self) -> None:
        for c in self.cryptos():
            c.close()
