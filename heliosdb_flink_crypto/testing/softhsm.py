"""Throw-away SoftHSMv2 tokens (a real PKCS#11 module) for the ``pkcs11://`` provider's tests.

SoftHSMv2 (Debian package ``softhsm2``) reads ``SOFTHSM2_CONF`` when the module is initialised, so
:class:`SoftHsm` writes a private config with its own token directory and sets the variable for this
process; create it before the first ``pkcs11.lib()`` call. :meth:`SoftHsm.create_token` runs
``softhsm2-util --init-token`` and re-initialises an already loaded module so it sees the new token
(sessions open at that moment become invalid; the provider reopens them).
"""
from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field

DEFAULT_MODULE = "/usr/lib/softhsm/libsofthsm2.so"


@dataclass
class Token:
    label: str
    pin: str = field(repr=False)
    so_pin: str = field(repr=False)
    module: str = DEFAULT_MODULE

    def uri(self, key_label: str) -> str:
        return f"pkcs11://{self.label}/{key_label}?module={self.module}"

    def settings(self) -> dict[str, str]:
        return {"heliosdb.crypto.kms.pkcs11.pin-password": self.pin}


class SoftHsm:
    def __init__(self, module: str = DEFAULT_MODULE):
        if not os.path.exists(module) or shutil.which("softhsm2-util") is None:
            raise RuntimeError("SoftHSMv2 is not installed: apt-get install softhsm2")
        self.module = module
        self.dir = tempfile.mkdtemp(prefix="softhsm-")
        os.makedirs(os.path.join(self.dir, "tokens"))
        self.conf = os.path.join(self.dir, "softhsm2.conf")
        with open(self.conf, "w") as f:
            f.write(f"directories.tokendir = {self.dir}/tokens\nobjectstore.backend = file\n"
                    "log.level = ERROR\nslots.removable = false\n")
        os.environ["SOFTHSM2_CONF"] = self.conf

    def create_token(self, label: str | None = None) -> Token:
        t = Token(label or f"tok-{secrets.token_hex(4)}", secrets.token_hex(8), secrets.token_hex(8), self.module)
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", t.label, "--so-pin", t.so_pin,
                        "--pin", t.pin], check=True, capture_output=True, env=dict(os.environ, SOFTHSM2_CONF=self.conf))
        import pkcs11
        lib = pkcs11.lib(self.module)
        lib.reinitialize()
        return t

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "SoftHsm":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
