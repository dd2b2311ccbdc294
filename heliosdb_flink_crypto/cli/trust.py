"""Where the CLI's settings and trusted KMS URIs come from (docs/operations.md, "Which KMS the CLI trusts").

Settings (``heliosdb.crypto.*``): a config file (``--config FILE``, else env ``HELIOSDB_CRYPTO_CONFIG``;
Flink's ``config.yaml`` works as is), overridden by ``-D KEY=VALUE``.

Trusted KMS URIs, highest source first (the first one that names any wins, the others are ignored):

1. ``--kms URI`` (repeatable; ``rewrap``/``reencrypt`` also call it ``--from``);
2. env ``HELIOSDB_CRYPTO_KMS`` (';'-separated);
3. the settings: ``heliosdb.crypto.kms.uri``, ``heliosdb.crypto.kms.decrypt-uris`` and every tenant's
   ``heliosdb.crypto.tenants.<id>.kms.uri`` / ``.kms.decrypt-uris``.

Nothing read from a file's header ever adds to this set.
"""
from __future__ import annotations

import logging
import os
import re

from ..config import PREFIX, parse_list
from ..errors import ConfigError, KeyAccessError

log = logging.getLogger(__name__)
ENV_KMS, ENV_CONFIG = "HELIOSDB_CRYPTO_KMS", "HELIOSDB_CRYPTO_CONFIG"
_TRUST_KEY = re.compile(r"^heliosdb\.crypto\.(tenants\.[A-Za-z0-9_-]+\.)?kms\.(uri|decrypt-uris)$")


def add_conf(p) -> None:
    p.add_argument("-D", dest="conf", action="append", default=[], metavar="KEY=VALUE",
                   help="a heliosdb.crypto.* setting (KMS provider settings, rotation policy, trusted "
                        "KMS URIs); repeatable; overrides --config")
    p.add_argument("--config", metavar="FILE", default=None,
                   help=f"a config file with heliosdb.crypto.* keys (Flink's config.yaml works; "
                        f"default: env {ENV_CONFIG})")


def add_trust(p, *names: str) -> None:
    """The repeatable flag naming a trusted KMS URI (``--kms``, plus aliases such as ``--from``)."""
    p.add_argument(*(names or ("--kms",)), dest="kms", action="append", default=[], metavar="URI",
                   help=f"trust this KMS URI to unwrap data keys; repeatable (else env {ENV_KMS}, "
                        "else the config file's heliosdb.crypto.kms.uri / decrypt-uris)")


def conf_of(args) -> dict[str, str]:
    """The settings: config file entries, then ``-D`` entries over them."""
    path = getattr(args, "config", None) or os.environ.get(ENV_CONFIG) or ""
    out = read_config_file(path) if path else {}
    for item in getattr(args, "conf", []):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"-D {item!r}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def settings_of(conf: dict[str, str]) -> dict[str, str]:
    """The provider settings (``heliosdb.crypto.kms.<provider>.<name>``) among ``conf``."""
    return {k: v for k, v in conf.items() if k.startswith("heliosdb.crypto.kms.") and k.count(".") >= 4}


def trusted_uris(args, conf: dict[str, str], required: bool = True) -> list[str]:
    """The trusted KMS URIs by the precedence above; KeyAccessError when none (and ``required``)."""
    uris, source = list(getattr(args, "kms", []) or []), "--kms"
    if not uris:
        uris, source = [u.strip() for u in os.environ.get(ENV_KMS, "").split(";") if u.strip()], ENV_KMS
    if not uris:
        source = "the config file / -D"
        for key in sorted(conf):
            if _TRUST_KEY.match(key):
                uris += [u for u in parse_list(conf[key]) if u not in uris]
    if not uris and required:
        raise KeyAccessError(f"no trusted KMS: name the KMS whose keys may open these files with --kms URI, "
                             f"env {ENV_KMS}, or heliosdb.crypto.kms.uri in a config file (--config FILE or "
                             f"env {ENV_CONFIG}); a file's header is never trusted to choose one")
    log.debug("trusted KMS URIs from %s: %s", source, "; ".join(uris))
    return uris


def opener(args, targets=(), **kw):
    """A CheckpointCrypto that decrypts with the trusted KMS URIs (and wraps with ``targets``)."""
    from ..crypto import CheckpointCrypto
    conf = conf_of(args)
    return CheckpointCrypto(targets, decrypt_uris=trusted_uris(args, conf), settings=settings_of(conf), **kw)


def read_config_file(path: str) -> dict[str, str]:
    """The ``heliosdb.crypto.*`` entries of a YAML file (nested or flat keys, as Flink's config.yaml)
    or of a flat ``key: value`` file; lists become ';'-separated strings."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError("--config", f"cannot read {path}: {e.strerror}") from None
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML comes with every extra; flat files still work
        data = _flat(text, path)
    else:
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            raise ConfigError("--config", f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError("--config", f"{path}: expected key: value lines")
    return {k: v for k, v in _flatten(data) if k.startswith(PREFIX)}


def _flatten(data: dict, prefix: str = ""):
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            yield from _flatten(v, key + ".")
        elif isinstance(v, list):
            yield key, ";".join(str(x) for x in v)
        elif v is not None:
            yield key, str(v).lower() if isinstance(v, bool) else str(v)


def _flat(text: str, path: str) -> dict[str, str]:
    """Flat ``key: value`` lines (what the CLI reads when PyYAML is not installed)."""
    out = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise ConfigError("--config", f"{path} line {n}: expected key: value")
        out[key.strip()] = value.strip().strip("'\"")
    return out
